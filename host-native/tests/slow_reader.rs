//! A client that stops reading is cut off, and one that reads again is told so: after the
//! server gave up on it (its send buffer full, `send_buffer`), the DISCONNECT packet
//! reaches it once it drains its backlog, instead of the socket staying connected but
//! out of its chats' broadcasts (a zombie that only the 30 s write-stall limit closed,
//! and never if it kept reading).
//!
//! Raw WebSocket clients over std TCP, so one can stop reading at a chosen moment; its
//! receive buffer is kept small so that the server's queue, not the kernel's, fills.

mod running_server;

use running_server::{good_token, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const BODY_CHARS: usize = 7_900;

/// A Socket.IO client on one WebSocket, packet by packet.
struct WsClient {
    stream: TcpStream,
    /// Bytes read and not yet taken as frames.
    pending: Vec<u8>,
    /// Acknowledgements read and not yet waited for, by ack id.
    answers: HashMap<u64, Value>,
}

impl WsClient {
    /// Upgrades to a WebSocket and connects to the namespace with `autoJoin`.
    fn connect(port: u16, user: &str) -> WsClient {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // Set before connecting, so the window is small from the start and never grows.
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
        let mut client = WsClient { stream: socket.into(), pending: Vec::new(), answers: HashMap::new() };
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        client.stream.write_all(request.as_bytes()).unwrap();
        let head_end = loop {
            if let Some(end) = client.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            client.fill(Duration::from_secs(10)).expect("an answer to the upgrade");
        };
        let head = String::from_utf8_lossy(&client.pending[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
        client.pending.drain(..head_end + 4);
        let open = client.next_packet(Duration::from_secs(10)).expect("the Engine.IO open packet");
        assert!(open.starts_with('0'), "not an open packet: {open}");
        client.send(&format!("40{}", json!({ "token": good_token(user), "autoJoin": true })));
        let connected = client.next_packet(Duration::from_secs(10)).expect("an answer to CONNECT");
        assert!(connected.starts_with("40"), "{user} was not let in: {connected}");
        client
    }

    /// Sends one masked text frame (RFC 6455 §5.2).
    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81];
        match payload.len() {
            len if len < 126 => frame.push(0x80 | len as u8),
            len if len <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads more bytes; `None` once the connection is closed or `timeout` passes.
    fn fill(&mut self, timeout: Duration) -> Option<()> {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Some(())
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => None,
            Err(error) => panic!("read failed: {error}"),
        }
    }

    /// The next Engine.IO packet (a text frame's payload), answering pings on the way;
    /// `None` if none comes within `timeout` or the connection closes.
    fn next_packet(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((opcode, payload)) = self.take_frame() {
                match opcode {
                    0x1 => {
                        let text = String::from_utf8(payload).expect("text frames are UTF-8");
                        if text == "2" {
                            self.send("3");
                            continue;
                        }
                        return Some(text);
                    }
                    0x8 => return None,
                    _ => continue,
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.fill(left.max(Duration::from_millis(1)))?;
        }
    }

    /// One whole unmasked server frame from `pending`, if it holds one.
    fn take_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let bytes = &self.pending;
        if bytes.len() < 2 {
            return None;
        }
        let opcode = bytes[0] & 0x0f;
        let (len, start) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return None,
            len => (len as usize, 2),
        };
        if bytes.len() < start + len {
            return None;
        }
        let payload = bytes[start..start + len].to_vec();
        self.pending.drain(..start + len);
        Some((opcode, payload))
    }

    /// Reads until the answer to `ack` arrives and returns its data. Answers come in
    /// the order the server finishes the events, so others seen on the way are kept.
    fn wait_ack(&mut self, ack: u64) -> Value {
        loop {
            if let Some(data) = self.answers.remove(&ack) {
                return data;
            }
            let packet = self.next_packet(Duration::from_secs(20)).unwrap_or_else(|| panic!("no answer to ack {ack}"));
            let Some(answer) = packet.strip_prefix("43") else { continue };
            let split = answer.find('[').expect("an ack packet carries an array");
            let id: u64 = answer[..split].parse().expect("an ack id");
            let data = serde_json::from_str::<Value>(&answer[split..]).expect("ack data is JSON")[0].take();
            self.answers.insert(id, data);
        }
    }
}

fn send_message(client: &mut WsClient, ack: u64, chat_id: &str, body: &str) {
    let client_id = format!("00000000-0000-4000-8000-{ack:012}");
    client.send(&format!("42{ack}{}", json!(["message:send", { "chatId": chat_id, "body": body, "clientId": client_id }])));
}

/// The value of a counter or gauge in the server's `/metrics`.
fn metric(server: &Server, name: &str) -> f64 {
    let text = server.request("GET", "/metrics", &[], b"").text();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_client_cut_off_for_not_reading_gets_its_disconnect_once_it_reads_again() {
    let server = Server::start_with(&[("RATE_LIMIT_MESSAGES", "100000000"), ("EVENT_BURST", "1000000"), ("EVENT_RATE_PER_SEC", "1000000")]);
    let authorization = format!("Bearer {}", good_token("talker"));
    let created = server.request(
        "POST",
        "/api/v1/chats",
        &[("Authorization", authorization.as_bytes()), ("Content-Type", b"application/json")],
        json!({ "kind": "group", "memberIds": ["sleeper"], "title": "slow" }).to_string().as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let chat_id = created.json()["chat"]["id"].as_str().expect("a chat id").to_owned();
    let mut sleeper = WsClient::connect(server.port, "sleeper");
    let mut talker = WsClient::connect(server.port, "talker");

    // The sleeper reads nothing while the talker fills its queue with large messages,
    // until broadcasts start skipping it.
    let body = "x".repeat(BODY_CHARS);
    let mut ack = 0;
    while metric(&server, "chat_packets_skipped_total") == 0.0 {
        assert!(ack < 5_000, "the sleeper's queue never filled");
        let first = ack + 1;
        for _ in 0..20 {
            ack += 1;
            send_message(&mut talker, ack, &chat_id, &body);
        }
        for ack in first..=ack {
            assert_eq!(talker.wait_ack(ack)["ok"], true);
        }
    }

    // Its own send is answered into the full queue: the server cuts it off.
    send_message(&mut sleeper, 1, &chat_id, "still here");
    server.wait_log_line("does not read its packets", 1);

    // Reading again, it gets the backlog and then the DISCONNECT packet.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let packet = sleeper.next_packet(deadline.saturating_duration_since(Instant::now()));
        match packet.as_deref() {
            Some("41") => break,
            Some(_) => continue,
            None => panic!("no DISCONNECT within 30 s of reading again (the socket is left connected)"),
        }
    }
    // The server has let go of it too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "chat_connections") != 1.0 {
        assert!(Instant::now() < deadline, "the server still counts the sleeper's socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The talker is untouched.
    send_message(&mut talker, ack + 1, &chat_id, "after");
    assert_eq!(talker.wait_ack(ack + 1)["ok"], true);
}
