//! A running `chat-server` for the tests that speak to it over the network: the real
//! binary on a free loopback port, its log captured, and tokens signed with its secret.
//! Each test binary uses part of it.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "attack-test-secret-0123456789abcdef";

/// Settings a developer's shell may have set; a test's server must not inherit them.
pub const SETTINGS: [&str; 16] = [
    "DATABASE_URL",
    "CHAT_DATA_DIR",
    "BIND",
    "JWT_SECRET",
    "CHAT_NAMESPACE",
    "CHAT_DEMO",
    "MAX_SOCKETS_PER_USER",
    "RATE_LIMIT_MESSAGES",
    "RATE_LIMIT_WINDOW_MS",
    "TYPING_TIMEOUT_MS",
    "PRESENCE_THROTTLE_MS",
    "MAX_PAYLOAD_BYTES",
    "MAX_GROUP_MEMBERS",
    "PING_INTERVAL_MS",
    "PING_TIMEOUT_MS",
    "CONNECT_TIMEOUT_MS",
];

pub struct Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `chat-server serve` with the settings in `env` on top of the defaults.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        command.arg("serve");
        for name in SETTINGS {
            command.env_remove(name);
        }
        command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("CHAT_DATA_DIR", dir.path().join("data"))
            .env("JWT_SECRET", SECRET)
            .envs(env.iter().copied())
            // tracing's fmt subscriber writes to stdout.
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null());
        let child = command.spawn().expect("chat-server starts");
        let server = Server { child, port, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.try_request("GET", "/healthz", &[], b"").map(|r| r.status) != Some(200) {
            assert!(Instant::now() < deadline, "chat-server did not become healthy:\n{}", server.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn log_text(&self) -> String {
        let raw = std::fs::read(&self.log).unwrap_or_default();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    /// Log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log_text().lines().filter(|line| line.contains(needle)).map(str::to_owned).collect()
    }

    /// Waits for the `n`-th log line containing `needle` and returns it.
    pub fn wait_log_line(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log_lines(needle).into_iter().nth(n - 1) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line #{n} with {needle:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Response {
        self.try_request(method, target, headers, body).unwrap_or_else(|| panic!("{method} {target}: no answer"))
    }

    /// One HTTP/1.1 request on a fresh connection.
    pub fn try_request(&self, method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Option<Response> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len())
            .into_bytes();
        for (name, value) in headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        // A server may refuse before reading all of a large request: write errors are answers too.
        let _ = stream.write_all(&head).and_then(|()| stream.write_all(body));
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Response::parse(&raw)
    }

    /// A Socket.IO handshake over long-polling: the Engine.IO open request (with `query`
    /// appended and `headers`), then `CONNECT` with `auth` (raw JSON, if any).
    pub fn handshake(&self, query: &str, headers: &[(&str, &[u8])], auth: Option<&str>) -> Handshake {
        let open = self.request("GET", &format!("/socket.io/?EIO=4&transport=polling{query}"), headers, b"");
        if open.status != 200 {
            return Handshake::TransportRefused(open.status);
        }
        let text = open.text();
        let sid = text
            .strip_prefix('0')
            .and_then(|data| serde_json::from_str::<Value>(data).ok())
            .and_then(|data| data["sid"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no Engine.IO open packet: {text:?}"));
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let connect = format!("40{}", auth.unwrap_or(""));
        let posted = self.request("POST", &path, &[("Content-Type", b"text/plain;charset=UTF-8")], connect.as_bytes());
        if posted.status != 200 {
            return Handshake::TransportRefused(posted.status);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let polled = self.request("GET", &path, &[], b"");
            for packet in polled.text().split('\u{1e}') {
                if packet.starts_with("40") {
                    return Handshake::Connected;
                }
                if let Some(data) = packet.strip_prefix("44") {
                    return Handshake::Refused(serde_json::from_str(data).expect("CONNECT_ERROR data is JSON"));
                }
            }
            assert!(Instant::now() < deadline, "no CONNECT answer");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Option<Response> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let mut body = raw[end + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        Some(Response { status, body })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text()))
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

#[derive(Debug, PartialEq)]
pub enum Handshake {
    Connected,
    /// The CONNECT_ERROR's data (`{ message, data? }`).
    Refused(Value),
    /// The transport answered this HTTP status before any handshake.
    TransportRefused(u16),
}

pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first UUID in `text`.
pub fn uuid_in(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).map(|i| &text[i..i + 36]).find(|candidate| {
        candidate.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
    })
}

pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hmac_sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

pub fn hs256() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

pub fn valid_claims(user: &str) -> Value {
    json!({ "sub": user, "exp": now_secs() + 3600 })
}

pub fn good_token(user: &str) -> String {
    hmac_sign(&hs256(), &valid_claims(user), SECRET.as_bytes())
}
