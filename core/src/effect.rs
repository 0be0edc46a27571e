//! What the core asks the host to do. The host carries effects out in the order given.

use crate::error::ChatError;
use crate::ids::{AckId, ChatId, CorrelationId, OpId, RequestId, SocketId, UserId};
use crate::storage::StorageOp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

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
    Ack { socket: SocketId, ack: AckId, reply: Value },
    /// Send `event` to `to`, skipping the sockets of `except_user` (their `user:` room).
    Emit { to: Target, except_user: Option<UserId>, event: ServerEvent, payload: Value },
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

/// The success shape of an acknowledgement.
pub fn ack_ok_json(data: Option<Value>) -> Value {
    match data {
        Some(data) => serde_json::json!({ "ok": true, "data": data }),
        None => serde_json::json!({ "ok": true }),
    }
}
