//! Engine.IO's answers to requests it cannot serve, against the real binary: each is an
//! HTTP 400 with Engine.IO's `{ code, message }`, as socket.io's own server gives them.

mod running_server;

use running_server::Server;
use serde_json::Value;
use std::time::Duration;

fn engine_error(server: &Server, method: &str, target: &str) -> (u16, Value) {
    let answer = server.request(method, target, &[], b"");
    let body = serde_json::from_str(&answer.text()).unwrap_or(Value::Null);
    (answer.status, body)
}

#[test]
fn requests_engine_io_cannot_serve_get_its_error_codes() {
    let server = Server::start_with(&[]);
    let cases = [
        ("GET", "/socket.io/?EIO=3&transport=polling", 5),
        ("GET", "/socket.io/?transport=polling", 5),
        ("GET", "/socket.io/?EIO=4&transport=carrier-pigeon", 0),
        ("GET", "/socket.io/?EIO=4&transport=polling&sid=no-such-session", 1),
        ("POST", "/socket.io/?EIO=4&transport=polling&sid=no-such-session", 1),
        ("POST", "/socket.io/?EIO=4&transport=polling", 2),
        // A WebSocket request without the WebSocket handshake.
        ("GET", "/socket.io/?EIO=4&transport=websocket", 3),
    ];
    for (method, target, code) in cases {
        let (status, body) = engine_error(&server, method, target);
        assert_eq!(status, 400, "{method} {target}: {body}");
        assert_eq!(body["code"], code, "{method} {target}: {body}");
        assert!(body["message"].is_string(), "{method} {target}: {body}");
    }
}

#[test]
fn a_second_polling_get_while_one_waits_closes_the_session() {
    let server = Server::start_with(&[]);
    let open = server.request("GET", "/socket.io/?EIO=4&transport=polling", &[], b"");
    let data: Value = serde_json::from_str(open.text().trim_start_matches('0')).expect("an open packet");
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", data["sid"].as_str().expect("a sid"));
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| server.request("GET", &path, &[], b""));
        // Give the first GET time to start waiting (nothing is queued for it).
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = engine_error(&server, "GET", &path);
        assert_eq!((status, body["code"].clone()), (400, Value::from(3)), "{body}");
        let first = waiting.join().expect("the first GET returns");
        assert_eq!(first.text(), "1", "the waiting GET is told the session closed");
    });
    let (status, body) = engine_error(&server, "GET", &path);
    assert_eq!((status, body["code"].clone()), (400, Value::from(1)), "the session is gone: {body}");
}
