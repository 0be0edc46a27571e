//! The Engine.IO heartbeat and Socket.IO's connect timeout, over long-polling against the
//! real binary: a session lives while its client answers pings and holds a socket, and
//! only then.

mod running_server;

use running_server::{good_token, Server};
use serde_json::json;
use std::time::{Duration, Instant};

/// A server that pings every 100 ms and gives up on a session without a socket after 300 ms.
fn server() -> Server {
    Server::start_with(&[("PING_INTERVAL_MS", "100"), ("PING_TIMEOUT_MS", "400"), ("CONNECT_TIMEOUT_MS", "300")])
}

/// Opens a polling session; its path for GETs and POSTs.
fn open(server: &Server) -> String {
    let open = server.request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"");
    assert_eq!(open.status, 200, "{}", open.text());
    let data: serde_json::Value = serde_json::from_str(open.text().trim_start_matches('0')).expect("an open packet");
    assert_eq!(data["pingInterval"], 100);
    assert_eq!(data["pingTimeout"], 400);
    format!("/socket.io/?EIO=4&transport=polling&sid={}", data["sid"].as_str().expect("a sid"))
}

/// Polls for `how_long`, answering every ping when `answer` says so; true if the session
/// was still open at the end.
fn keep_polling(server: &Server, path: &str, how_long: Duration, answer: bool) -> bool {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        let polled = server.request("GET", path, &[], b"");
        if polled.status != 200 || polled.text().split('\u{1e}').any(|packet| packet == "1") {
            return false;
        }
        if answer && polled.text().split('\u{1e}').any(|packet| packet == "2") {
            assert_eq!(server.request("POST", path, &[], b"3").status, 200);
        }
    }
    true
}

#[test]
fn a_session_that_never_connects_a_socket_is_closed_after_the_connect_timeout() {
    let server = server();
    let path = open(&server);
    assert!(!keep_polling(&server, &path, Duration::from_secs(10), true), "a session without a socket lived 10 s");
}

/// Opens a polling session and connects a socket of alice's in it; its path.
fn open_connected(server: &Server) -> String {
    let path = open(server);
    let connect = format!("40{}", json!({ "token": good_token("alice") }));
    assert_eq!(server.request("POST", &path, &[], connect.as_bytes()).status, 200);
    path
}

#[test]
fn a_session_with_a_socket_lives_while_it_answers_pings() {
    let server = server();
    let path = open_connected(&server);
    assert!(keep_polling(&server, &path, Duration::from_secs(2), true), "a connected session that answers pings was closed");
}

#[test]
fn a_session_that_stops_answering_pings_is_closed() {
    let server = server();
    let path = open_connected(&server);
    assert!(!keep_polling(&server, &path, Duration::from_secs(10), false), "a session that never answered a ping lived 10 s");
}
