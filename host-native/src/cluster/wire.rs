//! What processes of a cluster tell each other, and how ids say which process they
//! belong to.

use chat_core::ids::{RequestId, SocketId};
use chat_core::placement::NodeId;
use chat_core::route::Envelope;
use chat_core::Effect;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One message on the bus. Everything one process sends to another goes through one
/// ordered connection and arrives in the order sent (Redis keeps a publisher's order).
#[derive(Debug, Serialize, Deserialize)]
pub enum BusMsg {
    /// Mail for partitions the receiver owns.
    Mail { envelope: Envelope, forwarded: bool },
    /// Effects for the receiver's sockets and HTTP requests, in order.
    Effects(Vec<Effect>),
    /// Room emits: every process delivers them to the room members it holds.
    Broadcast { from: NodeId, effects: Vec<Effect> },
    /// An operator asks for every process's sockets (admin sockets).
    AdminAsk { from: NodeId, token: u64 },
    AdminTell { from: NodeId, token: u64, view: AdminView },
}

/// One process's sockets and rooms, as `GET /api/v1/admin/sockets` reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminView {
    pub connections: usize,
    pub users: BTreeSet<String>,
    /// Room name → (sockets in it, their users).
    pub rooms: BTreeMap<String, (usize, BTreeSet<String>)>,
}

impl AdminView {
    pub fn merge(&mut self, other: AdminView) {
        self.connections += other.connections;
        self.users.extend(other.users);
        for (room, (sockets, users)) in other.rooms {
            let entry = self.rooms.entry(room).or_default();
            entry.0 += sockets;
            entry.1.extend(users);
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rooms: Vec<serde_json::Value> = self
            .rooms
            .iter()
            .map(|(room, (sockets, users))| serde_json::json!({ "room": room, "sockets": sockets, "userIds": users }))
            .collect();
        serde_json::json!({ "connections": self.connections, "users": self.users.len(), "rooms": rooms })
    }
}

/// Names sockets and HTTP requests so that any process can tell whose they are.
#[derive(Clone, Debug)]
pub struct Naming {
    /// `None` for a process alone: ids stay as Socket.IO made them.
    node: Option<NodeId>,
}

impl Naming {
    pub fn solo() -> Self {
        Self { node: None }
    }

    pub fn cluster(node: NodeId) -> Self {
        Self { node: Some(node) }
    }

    pub fn node(&self) -> Option<NodeId> {
        self.node
    }

    /// `<node>.<sid>` in a cluster, the bare Socket.IO id alone.
    pub fn socket(&self, sid: &str) -> SocketId {
        match self.node {
            Some(node) => SocketId::new(format!("{node}.{sid}")),
            None => SocketId::new(sid),
        }
    }

    /// The `n`-th request of this process: its high 32 bits are the process.
    pub fn request(&self, n: u32) -> RequestId {
        let node = self.node.map_or(0, |node| u64::from(node.0));
        RequestId((node << 32) | u64::from(n))
    }
}

/// The process a socket of a cluster lives on (`None`: this process's own naming).
pub fn node_of_socket(socket: &SocketId) -> Option<NodeId> {
    let text = socket.as_str();
    match text.as_bytes().get(8) {
        Some(b'.') => NodeId::parse(&text[..8]),
        _ => None,
    }
}

pub fn node_of_request(request: RequestId) -> NodeId {
    NodeId((request.0 >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_names_its_process() {
        let naming = Naming::cluster(NodeId(0xdead_beef));
        let socket = naming.socket("AbC-123_x");
        assert_eq!(socket.as_str(), "deadbeef.AbC-123_x");
        assert_eq!(node_of_socket(&socket), Some(NodeId(0xdead_beef)));
    }

    #[test]
    fn a_lone_process_keeps_socket_io_ids() {
        let socket = Naming::solo().socket("AbC-123_x");
        assert_eq!(socket.as_str(), "AbC-123_x");
        assert_eq!(node_of_socket(&socket), None);
    }

    #[test]
    fn a_request_names_its_process() {
        let naming = Naming::cluster(NodeId(7));
        let request = naming.request(41);
        assert_eq!(node_of_request(request), NodeId(7));
        assert_ne!(naming.request(42), request);
    }

    #[test]
    fn admin_views_of_processes_add_up() {
        let mut a = AdminView { connections: 2, users: ["alice".into()].into(), rooms: BTreeMap::new() };
        a.rooms.insert("chat:1".into(), (1, ["alice".into()].into()));
        let mut b = AdminView { connections: 1, users: ["bob".into()].into(), rooms: BTreeMap::new() };
        b.rooms.insert("chat:1".into(), (1, ["bob".into()].into()));
        a.merge(b);
        assert_eq!(a.connections, 3);
        assert_eq!(a.users.len(), 2);
        assert_eq!(a.rooms["chat:1"], (2, ["alice".into(), "bob".into()].into()));
    }

    #[test]
    fn bus_messages_survive_the_wire() {
        let msg = BusMsg::AdminAsk { from: NodeId(3), token: 9 };
        let text = serde_json::to_vec(&msg).unwrap();
        let back: BusMsg = serde_json::from_slice(&text).unwrap();
        assert!(matches!(back, BusMsg::AdminAsk { from: NodeId(3), token: 9 }));
    }
}
