//! The acknowledgement callbacks of client events, kept until the core answers them.
//!
//! A callback holds its socket alive (socketioxide's `AckSender` owns an `Arc` of it), so
//! one that is never answered keeps the whole socket in memory after it disconnects.
//! `typing:*` is never answered (PROTOCOL.md §2), so its callback is not kept at all; any
//! other callback still waiting when its socket disconnects (an event the core dropped)
//! goes with the socket.

use chat_core::ids::{AckId, SocketId};
use chat_core::route::never_answered;
use socketioxide::extract::AckSender;
use std::collections::HashMap;

#[derive(Default)]
pub struct PendingAcks {
    next: u64,
    waiting: HashMap<AckId, (SocketId, AckSender)>,
}

impl PendingAcks {
    /// Keeps the callback of `event` from `socket`; the id the core answers with, or
    /// `None` for an event that is never answered.
    pub fn register(&mut self, socket: &SocketId, event: &str, ack: AckSender) -> Option<AckId> {
        if never_answered(event) {
            return None;
        }
        self.next += 1;
        let id = AckId(self.next);
        self.waiting.insert(id, (socket.clone(), ack));
        Some(id)
    }

    /// The callback to answer, once.
    pub fn take(&mut self, ack: AckId) -> Option<AckSender> {
        self.waiting.remove(&ack).map(|(_, sender)| sender)
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
