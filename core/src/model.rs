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
    /// The contract's message object (PROTOCOL.md §4), to serialise.
    pub fn wire(&self) -> MessageWire<'_> {
        MessageWire {
            body: &self.body,
            chat_id: self.chat_id.as_str(),
            client_id: self.client_id.as_str(),
            created_at: iso8601(self.created_at),
            id: self.id.as_str(),
            kind: self.kind.as_str(),
            sender_id: self.sender_id.as_str(),
            seq: self.seq.0,
        }
    }

    pub fn to_json(&self) -> Value {
        // A struct of plain fields always serialises.
        serde_json::to_value(self.wire()).unwrap_or(Value::Null)
    }
}

/// A message as the contract shows it, borrowed from a [`Message`]: serialised straight to
/// text on the send path (every delivered message), with no `Value` tree in between. The
/// fields are in alphabetical order, as a `Value` object writes its keys, so both give
/// the same text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageWire<'a> {
    body: &'a str,
    chat_id: &'a str,
    client_id: &'a str,
    created_at: String,
    id: &'a str,
    kind: &'static str,
    sender_id: &'a str,
    seq: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            id: MessageId::from("m-1"),
            chat_id: ChatId::from("c-1"),
            seq: Seq(7),
            sender_id: UserId::from("alice"),
            body: "héllo \"there\"".to_owned(),
            kind: MessageKind::Image,
            client_id: ClientId::from("k-1"),
            created_at: Millis(0),
        }
    }

    #[test]
    fn a_message_is_written_with_the_contracts_fields() {
        let text = serde_json::to_string(&message().wire()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({
                "id": "m-1", "chatId": "c-1", "seq": 7, "senderId": "alice", "body": "héllo \"there\"",
                "kind": "image", "clientId": "k-1", "createdAt": "1970-01-01T00:00:00.000Z",
            })
        );
    }

    #[test]
    fn a_message_is_written_with_its_keys_in_the_order_a_value_writes_them() {
        // Payloads written from `wire` and from a `Value` tree are compared as text.
        let text = serde_json::to_string(&message().wire()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
    }
}
