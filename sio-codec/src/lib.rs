//! # chat-sio-codec
//!
//! A small sans-IO codec for the text packets of Engine.IO v4 and Socket.IO v5, as they
//! travel in WebSocket text frames (one Engine.IO packet per frame). No IO, no clock, no
//! allocation beyond the decoded values; every input, however malformed, gives a value or
//! a [`CodecError`], never a panic (see the property tests).
//!
//! Binary attachments are not carried: a `BINARY_EVENT` decodes with its placeholders in
//! place (the chat contract has no binary payloads, so the server answers it with an
//! error) and [`attachments`] says how many binary frames to skip after it. Long-polling payloads (several packets joined by `\x1e`) can
//! be split with [`split_polling_payload`].

use serde_json::Value;
use std::fmt;

/// Engine.IO protocol version spoken here.
pub const EIO_VERSION: &str = "4";

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The frame is empty.
    Empty,
    /// The first character is not an Engine.IO packet type.
    UnknownEngineType(char),
    /// The first character of a Socket.IO packet is not a packet type.
    UnknownSocketType(char),
    /// Binary packets are not supported by this codec.
    Binary,
    /// The namespace part is malformed (no closing `,`).
    BadNamespace,
    /// The acknowledgement id is not a number that fits in 64 bits.
    BadAckId,
    /// The JSON part does not parse.
    BadJson(String),
    /// The JSON parses but has the wrong shape for the packet type.
    BadPayload(&'static str),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => f.write_str("empty packet"),
            CodecError::UnknownEngineType(c) => write!(f, "unknown Engine.IO packet type {c:?}"),
            CodecError::UnknownSocketType(c) => write!(f, "unknown Socket.IO packet type {c:?}"),
            CodecError::Binary => f.write_str("binary packets are not supported"),
            CodecError::BadNamespace => f.write_str("malformed namespace"),
            CodecError::BadAckId => f.write_str("malformed acknowledgement id"),
            CodecError::BadJson(why) => write!(f, "invalid JSON: {why}"),
            CodecError::BadPayload(why) => write!(f, "invalid payload: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

// --- Engine.IO ---------------------------------------------------------------------------

/// One Engine.IO v4 packet; `Message` carries a Socket.IO packet (or any text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `0{...}`: the handshake, server → client.
    Open(&'a str),
    /// `1`
    Close,
    /// `2` (server → client heartbeat, or `2probe` during an upgrade).
    Ping(&'a str),
    /// `3` (the answer to a ping).
    Pong(&'a str),
    /// `4...`
    Message(&'a str),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// Decodes one Engine.IO text packet.
pub fn decode_engine(frame: &str) -> Result<EnginePacket<'_>, CodecError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(CodecError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EnginePacket::Open(rest),
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping(rest),
        '3' => EnginePacket::Pong(rest),
        '4' => EnginePacket::Message(rest),
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        other => return Err(CodecError::UnknownEngineType(other)),
    })
}

/// Encodes one Engine.IO text packet.
pub fn encode_engine(packet: &EnginePacket<'_>) -> String {
    match packet {
        EnginePacket::Open(data) => format!("0{data}"),
        EnginePacket::Close => "1".to_string(),
        EnginePacket::Ping(data) => format!("2{data}"),
        EnginePacket::Pong(data) => format!("3{data}"),
        EnginePacket::Message(data) => format!("4{data}"),
        EnginePacket::Upgrade => "5".to_string(),
        EnginePacket::Noop => "6".to_string(),
    }
}

/// The handshake data of an Engine.IO `open` packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub sid: String,
    /// Transports the client may upgrade to (empty for a WebSocket connection).
    pub upgrades: Vec<String>,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: u64,
}

impl Handshake {
    /// The whole `open` packet: `0{"sid":…,"upgrades":[…],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`.
    pub fn encode(&self) -> String {
        let data = serde_json::json!({
            "sid": self.sid,
            "upgrades": self.upgrades,
            "pingInterval": self.ping_interval_ms,
            "pingTimeout": self.ping_timeout_ms,
            "maxPayload": self.max_payload,
        });
        encode_engine(&EnginePacket::Open(&data.to_string()))
    }

    /// Reads the data of an `open` packet (a client's view, for load generators and tests).
    pub fn decode(data: &str) -> Result<Handshake, CodecError> {
        let value: Value = serde_json::from_str(data).map_err(|e| CodecError::BadJson(e.to_string()))?;
        let sid = value.get("sid").and_then(Value::as_str).ok_or(CodecError::BadPayload("open packet without sid"))?;
        let number = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        let upgrades = value
            .get("upgrades")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Handshake {
            sid: sid.to_string(),
            upgrades,
            ping_interval_ms: number("pingInterval"),
            ping_timeout_ms: number("pingTimeout"),
            max_payload: number("maxPayload"),
        })
    }
}

/// Splits an HTTP long-polling payload into its packets (separator U+001E).
pub fn split_polling_payload(payload: &str) -> impl Iterator<Item = &str> {
    payload.split('\u{1e}')
}

// --- Socket.IO ---------------------------------------------------------------------------

/// One Socket.IO v5 packet (without binary attachments).
#[derive(Clone, Debug, PartialEq)]
pub enum SocketPacket {
    /// `0`: client → server with the handshake `auth` (or nothing); server → client with `{ sid }`.
    Connect { nsp: String, data: Option<Value> },
    /// `1`
    Disconnect { nsp: String },
    /// `2`: an event with its arguments; `id` asks for an acknowledgement.
    Event { nsp: String, id: Option<u64>, event: String, args: Vec<Value> },
    /// `3`: the answer to the event with this id.
    Ack { nsp: String, id: u64, args: Vec<Value> },
    /// `4`: a refused connection; `data` is `{ message, data? }`.
    ConnectError { nsp: String, data: Value },
}

impl SocketPacket {
    pub fn nsp(&self) -> &str {
        match self {
            SocketPacket::Connect { nsp, .. }
            | SocketPacket::Disconnect { nsp }
            | SocketPacket::Event { nsp, .. }
            | SocketPacket::Ack { nsp, .. }
            | SocketPacket::ConnectError { nsp, .. } => nsp,
        }
    }

    /// The Socket.IO text of the packet (to put in an Engine.IO `message`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        self.encode_into(&mut out);
        out
    }

    /// The whole WebSocket frame: an Engine.IO `message` carrying this packet.
    pub fn to_frame(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push('4');
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut String) {
        let (kind, nsp) = match self {
            SocketPacket::Connect { nsp, .. } => ('0', nsp),
            SocketPacket::Disconnect { nsp } => ('1', nsp),
            SocketPacket::Event { nsp, .. } => ('2', nsp),
            SocketPacket::Ack { nsp, .. } => ('3', nsp),
            SocketPacket::ConnectError { nsp, .. } => ('4', nsp),
        };
        out.push(kind);
        push_nsp(out, nsp);
        match self {
            SocketPacket::Connect { data, .. } => {
                if let Some(data) = data {
                    push_json(out, data);
                }
            }
            SocketPacket::Disconnect { .. } => {}
            SocketPacket::Event { id, event, args, .. } => {
                if let Some(id) = id {
                    push_id(out, *id);
                }
                push_array(out, Some(event), args);
            }
            SocketPacket::Ack { id, args, .. } => {
                push_id(out, *id);
                push_array(out, None, args);
            }
            SocketPacket::ConnectError { data, .. } => push_json(out, data),
        }
    }

    /// Decodes the Socket.IO text of an Engine.IO `message`.
    pub fn decode(text: &str) -> Result<SocketPacket, CodecError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(CodecError::Empty)?;
        let mut rest = chars.as_str();
        let kind = match kind {
            '0'..='4' => kind,
            // BINARY_EVENT / BINARY_ACK (`5<n>-…`) decode as EVENT / ACK with their
            // `{"_placeholder":true,"num":i}` objects left in place; the `n` attachments
            // follow as binary frames ([`attachments`] tells how many to skip).
            '5' | '6' => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || rest.as_bytes().get(digits) != Some(&b'-') || rest[..digits].parse::<u64>().is_err() {
                    return Err(CodecError::Binary);
                }
                rest = &rest[digits + 1..];
                if kind == '5' { '2' } else { '3' }
            }
            other => return Err(CodecError::UnknownSocketType(other)),
        };
        let nsp = if rest.starts_with('/') {
            match rest.find(',') {
                Some(end) => {
                    let nsp = &rest[..end];
                    rest = &rest[end + 1..];
                    nsp.to_string()
                }
                // A namespace with nothing after it (`1/chat`) is allowed.
                None if !rest.contains(['[', '{', '"']) => {
                    let nsp = rest.to_string();
                    rest = "";
                    nsp
                }
                None => return Err(CodecError::BadNamespace),
            }
        } else {
            "/".to_string()
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            let id = rest[..digits].parse::<u64>().map_err(|_| CodecError::BadAckId)?;
            rest = &rest[digits..];
            Some(id)
        } else {
            None
        };
        let json = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| CodecError::BadJson(e.to_string()));
        match kind {
            '0' => {
                if id.is_some() {
                    return Err(CodecError::BadAckId);
                }
                let data = if rest.is_empty() { None } else { Some(json(rest)?) };
                if data.as_ref().is_some_and(|d| !d.is_object()) {
                    return Err(CodecError::BadPayload("CONNECT data must be an object"));
                }
                Ok(SocketPacket::Connect { nsp, data })
            }
            '1' => {
                if id.is_some() || !rest.is_empty() {
                    return Err(CodecError::BadPayload("DISCONNECT carries nothing"));
                }
                Ok(SocketPacket::Disconnect { nsp })
            }
            '2' => {
                let Value::Array(mut all) = json(rest)? else {
                    return Err(CodecError::BadPayload("EVENT data must be an array"));
                };
                if all.is_empty() {
                    return Err(CodecError::BadPayload("EVENT without a name"));
                }
                let Value::String(event) = all.remove(0) else {
                    return Err(CodecError::BadPayload("EVENT name must be a string"));
                };
                Ok(SocketPacket::Event { nsp, id, event, args: all })
            }
            '3' => {
                let id = id.ok_or(CodecError::BadAckId)?;
                let Value::Array(args) = json(rest)? else {
                    return Err(CodecError::BadPayload("ACK data must be an array"));
                };
                Ok(SocketPacket::Ack { nsp, id, args })
            }
            _ => {
                if id.is_some() {
                    return Err(CodecError::BadAckId);
                }
                // As socket.io-parser: an object (`{ message, data? }`) or a string. Other
                // values could not be encoded back unambiguously (`4` + `2` reads as an id).
                let data = json(rest)?;
                if !(data.is_object() || data.is_string()) {
                    return Err(CodecError::BadPayload("CONNECT_ERROR data must be an object or a string"));
                }
                Ok(SocketPacket::ConnectError { nsp, data })
            }
        }
    }
}

/// The whole WebSocket frame of an EVENT without an ack id whose one argument is already
/// JSON text: a payload written once is sent to many sockets without being parsed and
/// written again for each.
pub fn event_frame(nsp: &str, event: &str, payload_json: &str) -> String {
    let mut out = String::with_capacity(payload_json.len() + event.len() + nsp.len() + 8);
    out.push_str("42");
    push_nsp(&mut out, nsp);
    out.push('[');
    push_json(&mut out, event);
    out.push(',');
    out.push_str(payload_json);
    out.push(']');
    out
}

/// The whole WebSocket frame of an ACK whose one argument is already JSON text.
pub fn ack_frame(nsp: &str, id: u64, reply_json: &str) -> String {
    let mut out = String::with_capacity(reply_json.len() + nsp.len() + 24);
    out.push_str("43");
    push_nsp(&mut out, nsp);
    push_id(&mut out, id);
    out.push('[');
    out.push_str(reply_json);
    out.push(']');
    out
}

/// `[first?, ...args]` as JSON.
fn push_array(out: &mut String, first: Option<&str>, args: &[Value]) {
    out.push('[');
    let mut comma = false;
    if let Some(first) = first {
        push_json(out, first);
        comma = true;
    }
    for arg in args {
        if comma {
            out.push(',');
        }
        push_json(out, arg);
        comma = true;
    }
    out.push(']');
}

/// `value` as compact JSON. Through serde_json's byte writer, not `Display`: `Display`
/// takes every small write through `fmt` and re-checks it as UTF-8 (3-4 % of a DM's
/// server CPU when acks and events were written that way).
fn push_json<T: serde::Serialize + ?Sized>(out: &mut String, value: &T) {
    // A `Value` or a `str` always serialises (map keys are strings).
    if let Ok(json) = serde_json::to_string(value) {
        out.push_str(&json);
    }
}

/// An ack id in decimal.
fn push_id(out: &mut String, id: u64) {
    use std::fmt::Write;
    // Writing into a `String` cannot fail.
    let _ = write!(out, "{id}");
}

/// A packet names its namespace, followed by a comma, unless it is the main one.
fn push_nsp(out: &mut String, nsp: &str) {
    if !nsp.is_empty() && nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
}

/// How many binary frames follow this Socket.IO packet (0 unless it is a binary packet).
pub fn attachments(text: &str) -> u64 {
    let Some(rest) = text.strip_prefix('5').or_else(|| text.strip_prefix('6')) else { return 0 };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if rest.as_bytes().get(digits) != Some(&b'-') {
        return 0;
    }
    rest[..digits].parse().unwrap_or(0)
}

/// The namespace, ack id and name of an EVENT whose arguments do not parse (invalid
/// JSON such as a lone surrogate, or nesting deeper than the parser goes), so that a
/// server can still answer it (with an error) instead of dropping the connection.
pub fn event_head(text: &str) -> Option<(String, Option<u64>, String)> {
    let mut rest = text.strip_prefix('2').or_else(|| text.strip_prefix("50-"))?;
    let mut nsp = "/".to_string();
    if rest.starts_with('/') {
        let end = rest.find(',')?;
        nsp = rest[..end].to_string();
        rest = &rest[end + 1..];
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 { Some(rest[..digits].parse::<u64>().ok()?) } else { None };
    let rest = rest[digits..].strip_prefix('[')?;
    let mut names = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let event = names.next()?.ok()?;
    Some((nsp, id, event))
}

/// What a client's text packet asks of a server that serves one namespace: the rules
/// every host follows, in one place.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientAsks {
    /// `2<data>`: answer `3<data>` (Engine.IO v4 clients do not ping; an answer costs nothing).
    Ping(String),
    /// `3`: the answer to the server's ping.
    Pong,
    /// `1`: the client closes the session.
    Close,
    /// Nothing to do: a noop or upgrade packet, a packet for a namespace other than the
    /// server's, an answer to a server emit, a client-sent error.
    Nothing,
    /// A CONNECT to another namespace: send this CONNECT_ERROR frame back.
    Refuse(String),
    /// CONNECT to the namespace, with the handshake's `auth` (`None` when absent or null).
    Connect { auth: Option<Value> },
    /// An event and its first argument: `null` when it has none, or when its arguments do
    /// not parse (it is still an event: the server answers it with an error).
    Event { id: Option<u64>, event: String, payload: Value },
    /// The client leaves the namespace.
    Disconnect,
    /// Not readable as Engine.IO or Socket.IO: close the session.
    Unreadable(CodecError),
}

/// Reads one text packet from a client of a server serving `namespace`; also how many
/// binary attachments follow it (the chat uses none: they are to be dropped).
pub fn read_client_packet(text: &str, namespace: &str) -> (ClientAsks, u64) {
    let body = match decode_engine(text) {
        Ok(EnginePacket::Message(body)) => body,
        Ok(EnginePacket::Ping(data)) => return (ClientAsks::Ping(data.to_owned()), 0),
        Ok(EnginePacket::Pong(_)) => return (ClientAsks::Pong, 0),
        Ok(EnginePacket::Close) => return (ClientAsks::Close, 0),
        Ok(EnginePacket::Open(_) | EnginePacket::Upgrade | EnginePacket::Noop) => return (ClientAsks::Nothing, 0),
        Err(error) => return (ClientAsks::Unreadable(error), 0),
    };
    let binary = attachments(body);
    let packet = match SocketPacket::decode(body) {
        Ok(packet) => packet,
        Err(error) => match event_head(body) {
            Some((nsp, id, event)) => SocketPacket::Event { nsp, id, event, args: Vec::new() },
            None => return (ClientAsks::Unreadable(error), binary),
        },
    };
    if packet.nsp() != namespace {
        let asks = match packet {
            SocketPacket::Connect { nsp, .. } => {
                ClientAsks::Refuse(SocketPacket::ConnectError { nsp, data: serde_json::json!({ "message": "Invalid namespace" }) }.to_frame())
            }
            _ => ClientAsks::Nothing,
        };
        return (asks, binary);
    }
    let asks = match packet {
        SocketPacket::Connect { data, .. } => ClientAsks::Connect { auth: data.filter(|auth| !auth.is_null()) },
        SocketPacket::Event { id, event, args, .. } => ClientAsks::Event { id, event, payload: args.into_iter().next().unwrap_or(Value::Null) },
        SocketPacket::Disconnect { .. } => ClientAsks::Disconnect,
        SocketPacket::Ack { .. } | SocketPacket::ConnectError { .. } => ClientAsks::Nothing,
    };
    (asks, binary)
}

/// A whole WebSocket text frame, decoded as far as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame<'a> {
    /// An Engine.IO packet other than `message`.
    Engine(EnginePacket<'a>),
    /// A Socket.IO packet inside an Engine.IO `message`.
    Socket(SocketPacket),
}

/// Decodes a WebSocket text frame: Engine.IO first, then the Socket.IO packet it carries.
pub fn decode_frame(frame: &str) -> Result<Frame<'_>, CodecError> {
    match decode_engine(frame)? {
        EnginePacket::Message(text) => SocketPacket::decode(text).map(Frame::Socket),
        other => Ok(Frame::Engine(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_client_packet_is_read_for_the_server_s_namespace() {
        let nsp = "/chat";
        assert_eq!(read_client_packet("3", nsp), (ClientAsks::Pong, 0));
        assert_eq!(read_client_packet("2x", nsp), (ClientAsks::Ping("x".into()), 0));
        assert_eq!(read_client_packet("1", nsp), (ClientAsks::Close, 0));
        assert_eq!(read_client_packet("6", nsp), (ClientAsks::Nothing, 0));
        assert_eq!(read_client_packet(r#"40/chat,{"token":"t"}"#, nsp), (ClientAsks::Connect { auth: Some(json!({ "token": "t" })) }, 0));
        assert_eq!(read_client_packet("40/chat,", nsp), (ClientAsks::Connect { auth: None }, 0));
        assert_eq!(read_client_packet("41/chat,", nsp), (ClientAsks::Disconnect, 0));
        assert_eq!(
            read_client_packet(r#"42/chat,7["message:send",{"a":1},"ignored"]"#, nsp),
            (ClientAsks::Event { id: Some(7), event: "message:send".into(), payload: json!({ "a": 1 }) }, 0)
        );
        assert_eq!(read_client_packet(r#"42/chat,["presence:ping"]"#, nsp).0, ClientAsks::Event { id: None, event: "presence:ping".into(), payload: Value::Null });
        assert_eq!(read_client_packet(r#"43/chat,1[null]"#, nsp).0, ClientAsks::Nothing, "answers to server emits are ignored");
    }

    #[test]
    fn a_connect_to_another_namespace_is_refused_and_its_other_packets_ignored() {
        assert_eq!(read_client_packet("40", "/chat"), (ClientAsks::Refuse(r#"44{"message":"Invalid namespace"}"#.into()), 0));
        assert_eq!(read_client_packet(r#"42["x",1]"#, "/chat").0, ClientAsks::Nothing);
    }

    #[test]
    fn an_event_whose_arguments_do_not_parse_is_still_an_event() {
        let (asks, _) = read_client_packet(r#"423["message:send",{"body":"\ud800"]"#, "/");
        assert_eq!(asks, ClientAsks::Event { id: Some(3), event: "message:send".into(), payload: Value::Null });
    }

    #[test]
    fn a_binary_event_says_how_many_attachments_follow() {
        let (asks, binary) = read_client_packet(r#"452-["upload",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, "/");
        assert_eq!(binary, 2);
        assert!(matches!(asks, ClientAsks::Event { .. }));
    }

    #[test]
    fn what_is_not_engine_io_is_unreadable() {
        assert!(matches!(read_client_packet("", "/").0, ClientAsks::Unreadable(_)));
        assert!(matches!(read_client_packet("9", "/").0, ClientAsks::Unreadable(_)));
        assert!(matches!(read_client_packet("4zzz", "/").0, ClientAsks::Unreadable(_)));
    }

    #[test]
    fn an_event_frame_from_raw_json_is_the_frame_of_the_parsed_packet() {
        for nsp in ["/", "/api/v1/sockets"] {
            let payload = json!({ "chatId": "c\"1", "body": "h\u{e9}llo \\ \n", "seq": 3 });
            let packet = SocketPacket::Event { nsp: nsp.into(), id: None, event: "message:new".into(), args: vec![payload.clone()] };
            assert_eq!(event_frame(nsp, "message:new", &payload.to_string()), packet.to_frame());
        }
    }

    #[test]
    fn an_ack_frame_from_raw_json_is_the_frame_of_the_parsed_packet() {
        for nsp in ["/", "/api/v1/sockets"] {
            let reply = json!({ "ok": true, "data": { "clientId": "k\"1", "seq": 3 } });
            let packet = SocketPacket::Ack { nsp: nsp.into(), id: 12, args: vec![reply.clone()] };
            assert_eq!(ack_frame(nsp, 12, &reply.to_string()), packet.to_frame());
        }
    }

    #[test]
    fn engine_packets_round_trip() {
        for frame in ["0{}", "1", "2", "3", "2probe", "3probe", "4hello", "5", "6"] {
            let packet = decode_engine(frame).unwrap();
            assert_eq!(encode_engine(&packet), frame);
        }
        assert_eq!(decode_engine(""), Err(CodecError::Empty));
        assert_eq!(decode_engine("9"), Err(CodecError::UnknownEngineType('9')));
    }

    #[test]
    fn handshake_encodes_what_engine_io_clients_read() {
        let open = Handshake { sid: "abc".into(), upgrades: vec![], ping_interval_ms: 25000, ping_timeout_ms: 20000, max_payload: 65536 };
        let frame = open.encode();
        assert!(frame.starts_with('0'));
        let back = Handshake::decode(&frame[1..]).unwrap();
        assert_eq!(back, open);
        let value: Value = serde_json::from_str(&frame[1..]).unwrap();
        assert_eq!(value, json!({"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}));
    }

    #[test]
    fn connect_with_and_without_auth_and_namespace() {
        assert_eq!(SocketPacket::decode("0").unwrap(), SocketPacket::Connect { nsp: "/".into(), data: None });
        assert_eq!(
            SocketPacket::decode("0{\"token\":\"t\"}").unwrap(),
            SocketPacket::Connect { nsp: "/".into(), data: Some(json!({"token":"t"})) }
        );
        assert_eq!(
            SocketPacket::decode("0/api/v1/sockets,{\"token\":\"t\"}").unwrap(),
            SocketPacket::Connect { nsp: "/api/v1/sockets".into(), data: Some(json!({"token":"t"})) }
        );
        assert_eq!(SocketPacket::decode("0/admin,").unwrap(), SocketPacket::Connect { nsp: "/admin".into(), data: None });
        assert_eq!(SocketPacket::decode("1/admin").unwrap(), SocketPacket::Disconnect { nsp: "/admin".into() });
        assert!(SocketPacket::decode("0[1]").is_err());
    }

    #[test]
    fn events_with_and_without_ack_ids() {
        assert_eq!(
            SocketPacket::decode("2[\"room:join\",{\"chatId\":\"c\"}]").unwrap(),
            SocketPacket::Event { nsp: "/".into(), id: None, event: "room:join".into(), args: vec![json!({"chatId":"c"})] }
        );
        assert_eq!(
            SocketPacket::decode("212[\"presence:ping\",{}]").unwrap(),
            SocketPacket::Event { nsp: "/".into(), id: Some(12), event: "presence:ping".into(), args: vec![json!({})] }
        );
        assert_eq!(
            SocketPacket::decode("2/ns,7[\"x\"]").unwrap(),
            SocketPacket::Event { nsp: "/ns".into(), id: Some(7), event: "x".into(), args: vec![] }
        );
        assert!(matches!(SocketPacket::decode("2[]"), Err(CodecError::BadPayload(_))));
        assert!(matches!(SocketPacket::decode("2[1,2]"), Err(CodecError::BadPayload(_))));
        assert!(matches!(SocketPacket::decode("2{\"a\":1}"), Err(CodecError::BadPayload(_))));
        assert!(matches!(SocketPacket::decode("2[\"x\""), Err(CodecError::BadJson(_))));
        assert_eq!(SocketPacket::decode("299999999999999999999999[\"x\"]"), Err(CodecError::BadAckId));
        assert_eq!(
            SocketPacket::decode("51-[\"x\",{\"_placeholder\":true,\"num\":0}]").unwrap(),
            SocketPacket::Event { nsp: "/".into(), id: None, event: "x".into(), args: vec![json!({"_placeholder":true,"num":0})] }
        );
        assert_eq!(attachments("51-[\"x\",{\"_placeholder\":true,\"num\":0}]"), 1);
        assert_eq!(attachments("2[\"x\"]"), 0);
        assert_eq!(SocketPacket::decode("5[\"x\"]"), Err(CodecError::Binary));
        assert_eq!(
            SocketPacket::decode("50-3[\"x\",{}]").unwrap(),
            SocketPacket::Event { nsp: "/".into(), id: Some(3), event: "x".into(), args: vec![json!({})] }
        );
        assert_eq!(SocketPacket::decode("6-[]"), Err(CodecError::Binary));
    }

    #[test]
    fn server_packets_encode_like_the_javascript_server() {
        let ack = SocketPacket::Ack { nsp: "/".into(), id: 3, args: vec![json!({"ok":true})] };
        assert_eq!(ack.to_frame(), "433[{\"ok\":true}]");
        let event = SocketPacket::Event { nsp: "/".into(), id: None, event: "message:new".into(), args: vec![json!({"seq":1})] };
        assert_eq!(event.to_frame(), "42[\"message:new\",{\"seq\":1}]");
        let connect = SocketPacket::Connect { nsp: "/api".into(), data: Some(json!({"sid":"s"})) };
        assert_eq!(connect.to_frame(), "40/api,{\"sid\":\"s\"}");
        let refused = SocketPacket::ConnectError { nsp: "/".into(), data: json!({"message":"UNAUTHORIZED"}) };
        assert_eq!(refused.to_frame(), "44{\"message\":\"UNAUTHORIZED\"}");
        for packet in [ack, event, connect, refused] {
            assert_eq!(SocketPacket::decode(&packet.encode()).unwrap(), packet);
        }
    }

    /// Found by `cargo fuzz` (sio_codec, input `44\n2`): a CONNECT_ERROR carrying a
    /// number decoded, then encoded as `42`, which reads back as an ack id.
    #[test]
    fn connect_error_data_must_be_an_object_or_a_string() {
        assert_eq!(SocketPacket::decode("4\n2"), Err(CodecError::BadPayload("CONNECT_ERROR data must be an object or a string")));
        for data in [" 2", "[1]", "true", "null"] {
            assert!(matches!(SocketPacket::decode(&format!("4{data}")), Err(CodecError::BadPayload(_))), "{data}");
        }
        let text = SocketPacket::ConnectError { nsp: "/".into(), data: json!("UNAUTHORIZED") };
        assert_eq!(SocketPacket::decode(&text.encode()).unwrap(), text);
    }

    /// Found by `cargo fuzz` (sio_codec): a 105-digit integer parsed one ulp off, so the
    /// packet encoded back to a different number (serde_json's `float_roundtrip` fixes it).
    #[test]
    fn long_number_literals_round_trip_exactly() {
        let text = format!("2[\"p\",{},1]", "9".repeat(105));
        let packet = SocketPacket::decode(&text).unwrap();
        assert_eq!(SocketPacket::decode(&packet.encode()).unwrap(), packet);
        let near = SocketPacket::decode("2[\"p\",1.0000000000000001e+105]").unwrap();
        assert_eq!(SocketPacket::decode(&near.encode()).unwrap(), near);
    }

    #[test]
    fn unreadable_event_arguments_still_name_the_event() {
        let lone = "212[\"message:send\",{\"body\":\"a \\ud800 b\"}]";
        assert!(matches!(SocketPacket::decode(lone), Err(CodecError::BadJson(_))));
        assert_eq!(event_head(lone), Some(("/".into(), Some(12), "message:send".into())));
        let deep = format!("2/ns,[\"room:join\",{}x{}]", "[".repeat(300), "]".repeat(300));
        assert!(SocketPacket::decode(&deep).is_err());
        assert_eq!(event_head(&deep), Some(("/ns".into(), None, "room:join".into())));
        assert_eq!(event_head("3[\"x\"]"), None);
        assert_eq!(event_head("2[1]"), None);
    }

    #[test]
    fn frames_decode_through_both_layers() {
        assert_eq!(decode_frame("2").unwrap(), Frame::Engine(EnginePacket::Ping("")));
        assert!(matches!(decode_frame("42[\"a\",1]").unwrap(), Frame::Socket(SocketPacket::Event { .. })));
        assert!(decode_frame("4").is_err());
        assert_eq!(split_polling_payload("40\u{1e}42[\"a\"]").collect::<Vec<_>>(), vec!["40", "42[\"a\"]"]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any text whatsoever decodes to a value or an error, never a panic.
        #[test]
        fn arbitrary_frames_never_panic(frame in ".{0,64}") {
            let _ = decode_frame(&frame);
            let _ = event_head(&frame);
        }

        /// Frames that look almost right (a valid prefix, then noise) never panic either.
        #[test]
        fn near_miss_frames_never_panic(prefix in prop::sample::select(vec!["4", "40", "42", "43", "44", "41", "42/", "42/ns,", "4212", "431", "45", "450-", "460-", "0", "2", "3"]), noise in "[\\[\\]{}\",:0-9a-z/\\\\-]{0,40}") {
            let frame = format!("{prefix}{noise}");
            let _ = decode_frame(&frame);
            let _ = event_head(&frame[1..]);
        }

        /// Whatever the server encodes, a decoder reads back the same packet.
        #[test]
        fn events_round_trip(nsp in prop::sample::select(vec!["/", "/api/v1/sockets", "/x"]), id in prop::option::of(any::<u64>()), event in "[a-z:]{1,16}", args in prop::collection::vec(json_value(), 0..3)) {
            let packet = SocketPacket::Event { nsp: nsp.to_string(), id, event, args };
            let frame = packet.to_frame();
            prop_assert_eq!(decode_frame(&frame).unwrap(), Frame::Socket(packet));
        }

        #[test]
        fn acks_round_trip(id in any::<u64>(), args in prop::collection::vec(json_value(), 0..3)) {
            let packet = SocketPacket::Ack { nsp: "/".to_string(), id, args };
            prop_assert_eq!(SocketPacket::decode(&packet.encode()).unwrap(), packet);
        }
    }
}
