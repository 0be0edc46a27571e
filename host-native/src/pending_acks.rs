//! The acknowledgement ids of client events, kept until the core answers them.
//!
//! The core answers with its own [`AckId`]; the client's id (if it asked for an answer at
//! all) is found here. `typing:*` is never answered (PROTOCOL.md §2), so nothing is kept
//! for it; any other id still waiting when its socket disconnects (an event the core
//! dropped) goes with the socket.

use chat_core::ids::{AckId, SocketId};
use chat_core::route::never_answered;
use std::collections::HashMap;

#[derive(Default)]
pub struct PendingAcks {
    next: u64,
    waiting: HashMap<AckId, (SocketId, Option<u64>)>,
}

impl PendingAcks {
    /// Keeps the client's ack id of `event` from `socket` (`None`: it asked for no answer);
    /// the id the core answers with, or `None` for an event that is never answered.
    pub fn register(&mut self, socket: &SocketId, event: &str, ack: Option<u64>) -> Option<AckId> {
        if never_answered(event) {
            return None;
        }
        self.next += 1;
        let id = AckId(self.next);
        self.waiting.insert(id, (socket.clone(), ack));
        Some(id)
    }

    /// The client's id to answer with, once; `None` when no answer is due.
    pub fn take(&mut self, ack: AckId) -> Option<u64> {
        self.waiting.remove(&ack).and_then(|(_, client)| client)
    }

    /// Drops every callback of a socket that is gone; the ids dropped.
    pub fn forget_socket(&mut self, socket: &SocketId) -> Vec<AckId> {
        let gone: Vec<AckId> = self.waiting.iter().filter(|(_, (owner, _))| owner == socket).map(|(ack, _)| *ack).collect();
        for ack in &gone {
            self.waiting.remove(ack);
        }
        gone
    }
}
