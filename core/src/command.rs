//! Typed commands: what untrusted input becomes once [`crate::validate`] accepts it.

use crate::ids::{ChatId, ClientId, MessageId, Seq, UserId};
use crate::model::MessageKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who a connection or HTTP request belongs to, as the handshake's token proved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user: UserId,
    pub admin: bool,
}

/// A client → server socket event, validated (PROTOCOL.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCommand {
    JoinRoom { chat: ChatId },
    LeaveRoom { chat: ChatId },
    Send(SendCommand),
    Typing { chat: ChatId, typing: bool },
    Read { chat: ChatId, message: MessageId },
    Ping,
    CreateChat(CreateChat),
    Sync { chat: ChatId, after: Seq, limit: u32 },
}

impl ClientCommand {
    /// `typing:*` never answers, even with a callback (§2).
    pub fn is_fire_and_forget(&self) -> bool {
        matches!(self, ClientCommand::Typing { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCommand {
    pub chat: ChatId,
    pub body: String,
    pub client_id: ClientId,
    pub kind: MessageKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateChat {
    Dm { other: UserId },
    /// `members` is deduplicated, in the order given; it may or may not name the creator.
    Group { members: Vec<UserId>, title: String },
}

/// Which page of history a read asks for (PROTOCOL.md §3 `messages:sync`, §9 history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryQuery {
    /// The oldest `limit` messages with `seq > after`.
    After(Seq),
    /// The newest `limit` messages with `seq < before` (or overall when `None`).
    Before(Option<Seq>),
}

/// An HTTP call of PROTOCOL.md §9 as the host routed it, still untrusted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HttpRequest {
    ListChats,
    CreateChat { body: Value },
    History { chat_id: String, after_seq: Option<String>, before_seq: Option<String>, limit: Option<String> },
    RenameChat { chat_id: String, body: Value },
    AddMember { chat_id: String, body: Value },
    RemoveMember { chat_id: String, user_id: String },
}

/// An HTTP call, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpCommand {
    ListChats,
    CreateChat(CreateChat),
    History { chat: ChatId, query: HistoryQuery, limit: u32 },
    RenameChat { chat: ChatId, title: String },
    AddMember { chat: ChatId, user: UserId },
    RemoveMember { chat: ChatId, user: UserId },
}
