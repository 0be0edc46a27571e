//! The directory: what `GET /api/v1/admin/sockets` and `/metrics` need to see across
//! objects. No object sees every socket at the edge, so user objects report their users'
//! connected sockets and chat objects their rooms to a few directory shards (objects named
//! `dir:<n>`), only when those change (connect, disconnect, join, leave), in order on the
//! objects' courier lanes and before the ack or CONNECT that follows the change goes out.
//! The admin listing reads every shard and merges them exactly as the native host lists
//! its rooms: `user:<id>` and `chat:<id>` rooms, each with its socket count and users.

use crate::wire::Item;
use chat_core::ids::{ChatId, SocketId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// How many directory shards a deployment has (fixed at deploy time: moving it would
/// strand what the old shards hold).
pub const DEFAULT_SHARDS: u32 = 8;

/// The shard of a user or chat id (FNV-1a, stable across builds).
pub fn shard_of(name: &str, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

/// Counter increments (the native host's metric names), reported by user objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages stored and delivered (`chat_messages_sent_total`).
    pub messages_sent: u64,
    /// Acknowledgements sent, by result code (`chat_acks_total`).
    pub acks: BTreeMap<String, u64>,
}

impl Counts {
    pub fn is_empty(&self) -> bool {
        self.messages_sent == 0 && self.acks.values().all(|n| *n == 0)
    }

    pub fn add(&mut self, other: &Counts) {
        self.messages_sent += other.messages_sent;
        for (code, n) in &other.acks {
            *self.acks.entry(code.clone()).or_default() += n;
        }
    }

    /// One ack with this code went out (`ok`, or the error code, as natively).
    pub fn ack(&mut self, code: &str) {
        *self.acks.entry(code.to_string()).or_default() += 1;
    }
}

/// What one directory shard holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// Users with sockets let in, and those sockets.
    pub users: BTreeMap<UserId, BTreeSet<SocketId>>,
    /// Chat rooms with sockets in them, and whose they are.
    pub rooms: BTreeMap<ChatId, BTreeMap<SocketId, UserId>>,
    pub counts: Counts,
}

impl Shard {
    pub fn apply(&mut self, item: &Item) {
        match item {
            Item::DirUser { user, sockets } => {
                if sockets.is_empty() {
                    self.users.remove(user);
                } else {
                    self.users.insert(user.clone(), sockets.iter().cloned().collect());
                }
            }
            Item::DirRoom { chat, changes } => {
                let room = self.rooms.entry(chat.clone()).or_default();
                for (socket, user) in changes {
                    match user {
                        Some(user) => room.insert(socket.clone(), user.clone()),
                        None => room.remove(socket),
                    };
                }
                if room.is_empty() {
                    self.rooms.remove(chat);
                }
            }
            Item::DirCounts(counts) => self.counts.add(counts),
            _ => {}
        }
    }

    /// Every shard's content in one.
    pub fn merge(shards: impl IntoIterator<Item = Shard>) -> Shard {
        let mut all = Shard::default();
        for shard in shards {
            all.users.extend(shard.users);
            for (chat, room) in shard.rooms {
                all.rooms.entry(chat).or_default().extend(room);
            }
            all.counts.add(&shard.counts);
        }
        all
    }

    /// The body of `GET /api/v1/admin/sockets` (PROTOCOL.md §9), as the native host makes
    /// it: rooms by name, each with its socket count and the users of its connected sockets.
    pub fn admin_view(&self) -> Value {
        let connected: BTreeMap<&SocketId, &UserId> =
            self.users.iter().flat_map(|(user, sockets)| sockets.iter().map(move |socket| (socket, user))).collect();
        let mut rooms: BTreeMap<String, Value> = BTreeMap::new();
        for (user, sockets) in &self.users {
            rooms.insert(format!("user:{user}"), json!({ "room": format!("user:{user}"), "sockets": sockets.len(), "userIds": [user.as_str()] }));
        }
        for (chat, room) in &self.rooms {
            let users: BTreeSet<&str> = room.keys().filter_map(|socket| connected.get(socket)).map(|user| user.as_str()).collect();
            rooms.insert(format!("chat:{chat}"), json!({ "room": format!("chat:{chat}"), "sockets": room.len(), "userIds": users }));
        }
        json!({ "connections": connected.len(), "users": self.users.len(), "rooms": rooms.into_values().collect::<Vec<_>>() })
    }

    /// `/metrics` in Prometheus text: the native host's names where the edge can count
    /// them honestly (the commit latency histogram it cannot: Workers clocks do not move
    /// while code runs).
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let connections: usize = self.users.values().map(BTreeSet::len).sum();
        let _ = writeln!(out, "# HELP chat_connections Sockets connected now (as the directory last heard).");
        let _ = writeln!(out, "# TYPE chat_connections gauge");
        let _ = writeln!(out, "chat_connections {connections}");
        let _ = writeln!(out, "# HELP chat_messages_sent_total Messages stored and delivered.");
        let _ = writeln!(out, "# TYPE chat_messages_sent_total counter");
        let _ = writeln!(out, "chat_messages_sent_total {}", self.counts.messages_sent);
        let _ = writeln!(out, "# HELP chat_acks_total Acknowledgements sent, by result code.");
        let _ = writeln!(out, "# TYPE chat_acks_total counter");
        for (code, count) in &self.counts.acks {
            let _ = writeln!(out, "chat_acks_total{{code=\"{code}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> SocketId {
        SocketId::new(n)
    }

    fn u(n: &str) -> UserId {
        UserId::new(n)
    }

    #[test]
    fn the_admin_view_lists_user_and_chat_rooms_like_the_native_host() {
        let mut shard = Shard::default();
        shard.apply(&Item::DirUser { user: u("a"), sockets: vec![s("s1"), s("s2")] });
        shard.apply(&Item::DirUser { user: u("b"), sockets: vec![s("s3")] });
        shard.apply(&Item::DirRoom { chat: ChatId::new("c"), changes: vec![(s("s1"), Some(u("a"))), (s("s3"), Some(u("b")))] });
        let view = shard.admin_view();
        assert_eq!(view["connections"], 3);
        assert_eq!(view["users"], 2);
        assert_eq!(
            view["rooms"],
            json!([
                { "room": "chat:c", "sockets": 2, "userIds": ["a", "b"] },
                { "room": "user:a", "sockets": 2, "userIds": ["a"] },
                { "room": "user:b", "sockets": 1, "userIds": ["b"] },
            ])
        );
    }

    #[test]
    fn leaving_and_disconnecting_empties_rooms() {
        let mut shard = Shard::default();
        shard.apply(&Item::DirUser { user: u("a"), sockets: vec![s("s1")] });
        shard.apply(&Item::DirRoom { chat: ChatId::new("c"), changes: vec![(s("s1"), Some(u("a")))] });
        shard.apply(&Item::DirRoom { chat: ChatId::new("c"), changes: vec![(s("s1"), None)] });
        shard.apply(&Item::DirUser { user: u("a"), sockets: vec![] });
        assert_eq!(shard, Shard::default());
        assert_eq!(shard.admin_view(), json!({ "connections": 0, "users": 0, "rooms": [] }));
    }

    #[test]
    fn shards_merge_into_one_view() {
        let mut one = Shard::default();
        let mut two = Shard::default();
        one.apply(&Item::DirUser { user: u("a"), sockets: vec![s("s1")] });
        two.apply(&Item::DirRoom { chat: ChatId::new("c"), changes: vec![(s("s1"), Some(u("a")))] });
        let mut counts = Counts::default();
        counts.ack("ok");
        counts.ack("RATE_LIMITED");
        counts.messages_sent = 2;
        two.apply(&Item::DirCounts(counts));
        let all = Shard::merge([one, two]);
        assert_eq!(all.admin_view()["rooms"][0], json!({ "room": "chat:c", "sockets": 1, "userIds": ["a"] }));
        let text = all.metrics_text();
        assert!(text.contains("chat_connections 1"), "{text}");
        assert!(text.contains("chat_messages_sent_total 2"), "{text}");
        assert!(text.contains("chat_acks_total{code=\"RATE_LIMITED\"} 1"), "{text}");
    }

    #[test]
    fn ids_spread_over_shards_and_stay_put() {
        let used: BTreeSet<u32> = (0..100).map(|i| shard_of(&format!("user-{i}"), 8)).collect();
        assert_eq!(used.len(), 8);
        assert_eq!(shard_of("alice", 8), shard_of("alice", 8));
        assert_eq!(shard_of("alice", 0), 0);
    }
}
