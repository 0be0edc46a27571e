//! What the core asks the host to do. The host carries effects out in the order given.

use crate::error::ChatError;
use crate::ids::{AckId, ChatId, CorrelationId, OpId, RequestId, SocketId, UserId};
use crate::storage::StorageOp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A Socket.IO room the core uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Room {
    /// `chat:<chatId>`: sockets that joined the chat's live stream.
    Chat(ChatId),
    /// `user:<userId>`: every socket of one user.
    User(UserId),
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Chat(chat) => write!(f, "chat:{chat}"),
            Room::User(user) => write!(f, "user:{user}"),
        }
    }
}

/// Where an emitted event goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Room(Room),
    Socket(SocketId),
}

/// A server → client event name (PROTOCOL.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerEvent {
    MessageNew,
    TypingUpdate,
    ReceiptUpdate,
    InboxUpdate,
    ChatUpdate,
    PresenceUpdate,
    PresenceSnapshot,
}

impl ServerEvent {
    pub fn name(self) -> &'static str {
        match self {
            ServerEvent::MessageNew => "message:new",
            ServerEvent::TypingUpdate => "typing:update",
            ServerEvent::ReceiptUpdate => "receipt:update",
            ServerEvent::InboxUpdate => "inbox:update",
            ServerEvent::ChatUpdate => "chat:update",
            ServerEvent::PresenceUpdate => "presence:update",
            ServerEvent::PresenceSnapshot => "presence:snapshot",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// The handshake passed: complete the connection for `user`.
    AcceptConnection { socket: SocketId, user: UserId },
    /// The handshake failed: answer CONNECT_ERROR with `error.code()` as the message and
    /// `{ code, message, correlationId }` as data.
    RejectConnection { socket: SocketId, error: ChatError, correlation_id: CorrelationId },
    /// Call the socket's acknowledgement callback with `reply`.
    Ack { socket: SocketId, ack: AckId, reply: AckReply },
    /// Send `event` to `to`, skipping the sockets of `except_user` (their `user:` room).
    Emit { to: Target, except_user: Option<UserId>, event: ServerEvent, payload: Payload },
    /// Put the socket in the room.
    JoinRoom { socket: SocketId, room: Room },
    /// Take the socket out of the room.
    LeaveRoom { socket: SocketId, room: Room },
    /// Carry out a storage operation and hand its result back with the same `op`.
    Storage { op: OpId, request: StorageOp },
    /// Answer an HTTP request.
    HttpRespond { request: RequestId, status: u16, body: Value },
    /// Write a log line; failures carry the correlation id their answer carries.
    Log { level: LogLevel, correlation_id: Option<CorrelationId>, message: String },
}

/// An emitted event's data as JSON text, serialised once where it is made.
///
/// A send to a group of M members emits M `inbox:update`s around one message: building
/// each as a `Value` tree and serialising it per receiver was most of the fan-out's
/// allocation. Text is written once, shared by every receiver and every process of a
/// cluster (cloning is a reference count), and serialises verbatim.
#[derive(Clone)]
pub struct Payload(Arc<RawValue>);

impl Payload {
    /// The JSON text of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Payload {
        // Serialising fails only for a map with non-string keys, which no payload has;
        // `null` then is a visible defect rather than a crash of the host.
        let raw = serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Payload(Arc::from(raw))
    }

    /// The payload as JSON text, to embed in a larger document unchanged.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The payload parsed back into a tree, for tests and tools that inspect it.
    pub fn to_value(&self) -> Value {
        // The text was written by serde_json, so it parses.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::of(&value)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Payload(Arc::from(raw)))
    }
}

/// An acknowledgement's one argument (PROTOCOL.md §2), written once as JSON text, with its
/// outcome for hosts that count answers. Every send is acked: built as a `Value` tree and
/// serialised by the host, its ack was ~4 % of a DM send's instructions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckReply {
    /// `None` on success, else the contract's error code.
    pub error: Option<Cow<'static, str>>,
    pub json: Payload,
}

impl AckReply {
    /// `{ ok: true, data? }`.
    pub fn ok<T: Serialize + ?Sized>(data: Option<&T>) -> AckReply {
        AckReply { error: None, json: Payload::of(&AckOk { data, ok: true }) }
    }

    /// `{ ok: false, error, message, correlationId }`.
    pub fn error(error: &ChatError, correlation_id: &CorrelationId) -> AckReply {
        AckReply { error: Some(Cow::Borrowed(error.code())), json: Payload::of(&ack_error_json(error, correlation_id)) }
    }

    /// `ok`, or the error code: the label hosts count answers under.
    pub fn code(&self) -> &str {
        self.error.as_deref().unwrap_or("ok")
    }

    /// The reply parsed back into a tree, for tests and tools that inspect it.
    pub fn to_value(&self) -> Value {
        self.json.to_value()
    }
}

/// The success shape, its fields in the order a `Value` object writes them.
#[derive(Serialize)]
struct AckOk<'a, T: ?Sized> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
    ok: bool,
}

/// The error shape of an acknowledgement (PROTOCOL.md §2).
pub fn ack_error_json(error: &ChatError, correlation_id: &CorrelationId) -> Value {
    serde_json::json!({
        "ok": false,
        "error": error.code(),
        "message": error.message(),
        "correlationId": correlation_id.as_str(),
    })
}

/// The error body of an HTTP answer (PROTOCOL.md §9).
pub fn http_error_json(error: &ChatError, correlation_id: &CorrelationId) -> Value {
    serde_json::json!({
        "error": error.code(),
        "message": error.message(),
        "correlationId": correlation_id.as_str(),
    })
}

/// The `data` of a refused handshake's CONNECT_ERROR (PROTOCOL.md §1).
pub fn connect_error_json(error: &ChatError, correlation_id: &CorrelationId) -> Value {
    serde_json::json!({
        "code": error.code(),
        "message": error.message(),
        "correlationId": correlation_id.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_is_embedded_verbatim_in_a_larger_document() {
        let inner = Payload::of(&json!({"seq": 7, "text": "héllo \"there\""}));
        let outer = serde_json::to_string(&json!({"lastMessage": inner.raw()})).unwrap();
        assert_eq!(outer, format!("{{\"lastMessage\":{}}}", inner.as_str()));
    }

    #[test]
    fn a_payload_survives_a_serde_roundtrip_unchanged() {
        let payload = Payload::of(&json!({"chatId": "c1", "unreadCount": 3}));
        let text = serde_json::to_string(&payload).unwrap();
        let back: Payload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, payload);
        assert_eq!(back.to_value(), json!({"chatId": "c1", "unreadCount": 3}));
    }

    #[test]
    fn a_success_ack_is_ok_true_with_its_data_if_any() {
        let bare = AckReply::ok::<Value>(None);
        assert_eq!((bare.code(), bare.json.as_str()), ("ok", r#"{"ok":true}"#));
        let with = AckReply::ok(Some(&json!({"seq": 3, "clientId": "k"})));
        assert_eq!(with.to_value(), json!({"ok": true, "data": {"seq": 3, "clientId": "k"}}));
    }

    #[test]
    fn a_success_ack_is_written_as_a_value_would_write_it() {
        let reply = AckReply::ok(Some(&json!({"b": 1, "a": [null]})));
        assert_eq!(reply.json.as_str(), serde_json::to_string(&reply.to_value()).unwrap());
    }

    #[test]
    fn a_failure_ack_carries_its_code_for_counting() {
        let reply = AckReply::error(&ChatError::RateLimited("slow down".into()), &CorrelationId::new("c-1"));
        assert_eq!(reply.code(), "RATE_LIMITED");
        assert_eq!(reply.to_value()["error"], "RATE_LIMITED");
    }

    #[test]
    fn an_ack_reply_survives_a_serde_roundtrip_unchanged() {
        let reply = AckReply::error(&ChatError::NotFound("no chat".into()), &CorrelationId::new("c-2"));
        let back: AckReply = serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    #[test]
    fn payloads_compare_by_their_text() {
        assert_eq!(Payload::from(json!([1, 2])), Payload::of(&vec![1, 2]));
        assert_ne!(Payload::from(json!([1, 2])), Payload::from(json!([2, 1])));
    }
}
