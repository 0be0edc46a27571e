//! The contract's data: messages and chats, and their JSON shapes (PROTOCOL.md §4).

use crate::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use crate::time::iso8601;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    Text,
    Image,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChatKind {
    Dm,
    Group,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Dm => "dm",
            ChatKind::Group => "group",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub body: String,
    pub kind: MessageKind,
    pub client_id: ClientId,
    pub created_at: Millis,
}

impl Message {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.as_str(),
            "chatId": self.chat_id.as_str(),
            "seq": self.seq.0,
            "senderId": self.sender_id.as_str(),
            "body": self.body,
            "kind": self.kind.as_str(),
            "clientId": self.client_id.as_str(),
            "createdAt": iso8601(self.created_at),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
    pub title: Option<String>,
    /// Members in the order they joined; no repeats.
    pub member_ids: Vec<UserId>,
    pub created_by: UserId,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Chat {
    pub fn is_member(&self, user: &UserId) -> bool {
        self.member_ids.contains(user)
    }

    /// The key that makes a DM between two users unique: both ids, sorted.
    pub fn dm_key(a: &UserId, b: &UserId) -> String {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        // Lengths first, so no choice of ids can make two different pairs collide.
        format!("{}:{}:{}", first.as_str().len(), first, second)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.as_str(),
            "kind": self.kind.as_str(),
            "title": self.title,
            "memberIds": self.member_ids.iter().map(UserId::as_str).collect::<Vec<_>>(),
            "createdBy": self.created_by.as_str(),
            "createdAt": iso8601(self.created_at),
            "updatedAt": iso8601(self.updated_at),
        })
    }
}

/// A page of history, as `messages:sync` and the HTTP history call answer it.
pub fn page_json(messages: &[Message], has_more: bool) -> Value {
    json!({
        "messages": messages.iter().map(Message::to_json).collect::<Vec<_>>(),
        "hasMore": has_more,
    })
}
