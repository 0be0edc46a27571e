//! Which process owns which partition when several processes share one database.
//!
//! Every partition has exactly one owner among the live processes, chosen by rendezvous
//! hashing: each process computes the same owner from the same list of live processes, and
//! when a process joins or leaves only the partitions it owned (or comes to own) move. The
//! list itself is the host's business (the native host keeps it in Redis); this is the pure
//! rule that turns it into owners.

use crate::ids::{ChatId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One process of a cluster. A process takes a fresh random id each time it starts, so
/// nothing of a dead process is ever mistaken for its successor's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl NodeId {
    /// Reads the form [`NodeId`]'s `Display` writes (eight hex digits).
    pub fn parse(text: &str) -> Option<NodeId> {
        if text.len() != 8 {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(NodeId)
    }
}

/// A partition: the unit of ownership.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartitionKey {
    Chat(ChatId),
    User(UserId),
}

/// This process and the live processes it knows of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    me: NodeId,
    /// Sorted, without duplicates, always holding `me`.
    nodes: Vec<NodeId>,
}

impl Placement {
    /// A process alone: it owns everything.
    pub fn solo() -> Self {
        Self { me: NodeId(0), nodes: vec![NodeId(0)] }
    }

    /// `me` among `live`; `me` counts as live whatever the list says (a process that is
    /// running owns its share until it learns otherwise).
    pub fn new(me: NodeId, live: impl IntoIterator<Item = NodeId>) -> Self {
        let mut nodes: Vec<NodeId> = live.into_iter().chain(std::iter::once(me)).collect();
        nodes.sort_unstable();
        nodes.dedup();
        Self { me, nodes }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    pub fn is_solo(&self) -> bool {
        self.nodes.len() == 1
    }

    pub fn owner(&self, key: &PartitionKey) -> NodeId {
        match key {
            PartitionKey::Chat(chat) => self.owner_of(b'c', chat.as_str()),
            PartitionKey::User(user) => self.owner_of(b'u', user.as_str()),
        }
    }

    pub fn owns(&self, key: &PartitionKey) -> bool {
        self.owner(key) == self.me
    }

    /// Rendezvous (highest random weight) hashing: the node whose mix with the key scores
    /// highest. Ties cannot split the cluster: every process breaks them the same way.
    fn owner_of(&self, kind: u8, id: &str) -> NodeId {
        let key = fnv1a(kind, id.as_bytes());
        let mut best = self.me;
        let mut best_score = 0u64;
        let mut first = true;
        for node in &self.nodes {
            let score = mix(key ^ (u64::from(node.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            if first || score > best_score || (score == best_score && *node < best) {
                best = *node;
                best_score = score;
                first = false;
            }
        }
        best
    }
}

/// FNV-1a, 64 bit: stable across processes, platforms and releases (unlike std's hasher).
fn fnv1a(kind: u8, bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in std::iter::once(&kind).chain(bytes) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(i: usize) -> PartitionKey {
        PartitionKey::Chat(ChatId::new(format!("chat-{i}")))
    }

    #[test]
    fn a_process_alone_owns_everything() {
        let solo = Placement::solo();
        assert!((0..100).all(|i| solo.owns(&chat(i))));
    }

    #[test]
    fn every_process_computes_the_same_owner() {
        let live = [NodeId(7), NodeId(3), NodeId(11)];
        let views: Vec<Placement> = live.iter().map(|me| Placement::new(*me, live)).collect();
        for i in 0..500 {
            let owners: Vec<NodeId> = views.iter().map(|view| view.owner(&chat(i))).collect();
            assert!(owners.windows(2).all(|pair| pair[0] == pair[1]), "key {i}: {owners:?}");
            assert_eq!(views.iter().filter(|view| view.owns(&chat(i))).count(), 1);
        }
    }

    #[test]
    fn load_spreads_over_processes() {
        let view = Placement::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..3000 {
            *counts.entry(view.owner(&chat(i))).or_insert(0) += 1;
        }
        assert!(counts.values().all(|count| *count > 800), "{counts:?}");
    }

    #[test]
    fn only_the_leaving_process_partitions_move() {
        let before = Placement::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        let after = Placement::new(NodeId(1), [NodeId(1), NodeId(2)]);
        for i in 0..1000 {
            let was = before.owner(&chat(i));
            if was != NodeId(3) {
                assert_eq!(after.owner(&chat(i)), was, "key {i} moved though its owner stayed");
            }
        }
    }

    #[test]
    fn chats_and_users_with_the_same_id_are_placed_independently() {
        let view = Placement::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        let differ = (0..200)
            .filter(|i| {
                let id = format!("x-{i}");
                view.owner(&PartitionKey::Chat(ChatId::new(id.clone()))) != view.owner(&PartitionKey::User(UserId::new(id)))
            })
            .count();
        assert!(differ > 50);
    }

    #[test]
    fn node_ids_read_back_what_they_print() {
        let node = NodeId(0x00ab_cdef);
        assert_eq!(NodeId::parse(&node.to_string()), Some(node));
        assert_eq!(NodeId::parse("xyz"), None);
        assert_eq!(NodeId::parse("0000000g"), None);
    }
}
