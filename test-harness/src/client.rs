//! The clients: users with devices whose sockets connect, drop and reconnect, and who
//! keep what they sent so they can retry it with the same `clientId`.

use chat_core::command::HistoryQuery;
use chat_core::ids::{ChatId, MessageId, SocketId, UserId};

/// Most sends a user keeps for retrying.
const KEEP_SENDS: usize = 32;

/// A message as the client made it: sending it again is a retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSpec {
    pub chat: ChatId,
    pub body: String,
    pub image: bool,
    pub client_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conn {
    Offline,
    /// The handshake is out; no answer yet.
    Connecting(SocketId),
    Online(SocketId),
}

#[derive(Clone, Debug)]
pub struct Device {
    pub conn: Conn,
}

impl Device {
    pub fn socket(&self) -> Option<&SocketId> {
        match &self.conn {
            Conn::Offline => None,
            Conn::Connecting(socket) | Conn::Online(socket) => Some(socket),
        }
    }

    pub fn online(&self) -> Option<&SocketId> {
        match &self.conn {
            Conn::Online(socket) => Some(socket),
            _ => None,
        }
    }
}

pub struct UserModel {
    pub id: UserId,
    /// The JWT, signed once.
    pub token: String,
    pub devices: Vec<Device>,
    /// Sends with no answer (lost to a disconnect or crash) or a failure worth retrying.
    pub unsure: Vec<SendSpec>,
    /// Sends acked `ok`, kept to retry anyway (idempotency).
    pub acked: Vec<SendSpec>,
}

impl UserModel {
    pub fn new(id: UserId, token: String, devices: usize) -> Self {
        Self { id, token, devices: vec![Device { conn: Conn::Offline }; devices], unsure: Vec::new(), acked: Vec::new() }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A send whose outcome the client does not know.
    pub fn unsure(&mut self, spec: SendSpec) {
        self.acked.retain(|known| known.client_id != spec.client_id);
        if !self.unsure.contains(&spec) {
            push_bounded(&mut self.unsure, spec);
        }
    }

    pub fn acked(&mut self, spec: SendSpec) {
        self.unsure.retain(|known| known.client_id != spec.client_id);
        if !self.acked.contains(&spec) {
            push_bounded(&mut self.acked, spec);
        }
    }

    /// A send that was refused for good.
    pub fn forget(&mut self, spec: &SendSpec) {
        self.unsure.retain(|known| known != spec);
    }

    /// The `pick`-th of every send the user could retry.
    pub fn retryable(&self, pick: usize) -> Option<&SendSpec> {
        let all = self.unsure.len() + self.acked.len();
        if all == 0 {
            return None;
        }
        let pick = pick % all;
        self.unsure.get(pick).or_else(|| self.acked.get(pick - self.unsure.len()))
    }
}

fn push_bounded(list: &mut Vec<SendSpec>, spec: SendSpec) {
    if list.len() == KEEP_SENDS {
        list.remove(0);
    }
    list.push(spec);
}

/// What storage held for a `(sender, clientId)` when a send left the client.
#[derive(Clone, Debug)]
pub struct Known {
    pub server_id: MessageId,
    pub seq: u64,
    /// Same chat, body and kind: a true retry.
    pub same: bool,
}

/// What an acknowledgement answers.
#[derive(Clone, Debug)]
pub enum CallKind {
    Send { spec: SendSpec, known: Option<Known> },
    Join { chat: ChatId },
    Leave { chat: ChatId },
    /// `seq` is that of the message read, when storage has it.
    Read { chat: ChatId, seq: Option<u64> },
    Sync { chat: ChatId, after: u64, limit: u32 },
    Ping,
    /// `dm_with`: the other user of a DM.
    Create { dm_with: Option<UserId> },
    /// Must never be answered.
    Typing,
    /// Must be `VALIDATION_ERROR`.
    Malformed,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub socket: SocketId,
    pub user: usize,
    pub device: usize,
    pub kind: CallKind,
}

/// What an HTTP request asked.
#[derive(Clone, Debug)]
pub enum HttpKind {
    List,
    History { chat: ChatId, query: HistoryQuery, limit: u32 },
    Add { chat: ChatId, member: UserId },
    Remove { chat: ChatId, member: UserId },
    Rename,
    /// Must be refused with `refusal` (and its status).
    Refused { refusal: &'static str },
}

#[derive(Clone, Debug)]
pub struct HttpCall {
    pub user: usize,
    pub kind: HttpKind,
}
