//! What travels between the edge objects (JSON over Durable Object fetches).

use chat_core::ids::{AckId, ChatId, RequestId, SocketId, UserId};
use chat_core::route::{ChatMsg, UserMsg};
use serde::{Deserialize, Serialize};
use chat_core::effect::{AckReply, Payload};
use serde_json::Value;

/// One item of a batch sent to an object; a batch keeps the order its sender made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// Core mail for the chat partition of the receiving chat object.
    Chat(ChatMsg),
    /// Core mail for the user partition of the receiving user object.
    User(UserMsg),
    /// A packet for one socket: a user object passes it on to the socket's connection
    /// object, which writes it to the WebSocket.
    Socket { socket: SocketId, out: SocketOut },
    /// An event for every socket of the receiving user (the `user:<id>` room).
    UserRoom { event: String, payload: Payload },
    /// The answer to an HTTP call that entered through the receiving user object.
    HttpDone { request: RequestId, status: u16, body: Value },
    /// For a directory shard: the user's connected (let in) sockets now, replacing what
    /// the shard held for them.
    DirUser { user: UserId, sockets: Vec<SocketId> },
    /// For a directory shard: sockets that joined (`Some(user)`) or left (`None`) a chat room.
    DirRoom { chat: ChatId, changes: Vec<(SocketId, Option<UserId>)> },
    /// For a directory shard: counter increments since the sender's last report.
    DirCounts(crate::directory::Counts),
}

/// What a connection object does with its WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SocketOut {
    /// The core let the socket in: send CONNECT.
    Accept,
    /// The core refused it: send CONNECT_ERROR with `message: code` and `data`.
    Reject { code: String, data: Value },
    Ack { ack: AckId, reply: AckReply },
    Event { event: String, payload: Payload },
}

/// The body of a batch request to an object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The receiving object's own name (chat id, user id or sid): an object does not know
    /// the name it was reached by.
    pub to: String,
    /// The user object that sent the batch, if one did (HTTP answers go back there).
    pub from_user: Option<String>,
    pub items: Vec<Item>,
}

/// The body of `/http` to a user object: a call of that user, authenticated by the Worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    pub user: String,
    pub call: chat_core::command::HttpRequest,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::ids::{ChatId, UserId};

    #[test]
    fn batches_round_trip_through_json() {
        let batch = Batch {
            to: "c".into(),
            from_user: Some("u".into()),
            items: vec![
                Item::Chat(ChatMsg::Typing { user: UserId::new("u"), typing: true }),
                Item::User(UserMsg::Left { socket: SocketId::new("s"), chat: ChatId::new("c") }),
                Item::Socket { socket: SocketId::new("s"), out: SocketOut::Ack { ack: AckId(3), reply: AckReply::ok(Some(&serde_json::json!({"seq": 1}))) } },
                Item::HttpDone { request: RequestId(9), status: 201, body: serde_json::json!({}) },
            ],
        };
        let text = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&text).unwrap(), batch);
    }
}
