//! Several engines as one cluster (cluster hosts): each owns its share of the partitions
//! (`chat_core::placement`), mail between them travels as `Engine::poll_remote` →
//! `Input::Mail`, and processes die and join. The contract must hold across them.
//! (Every other contract test also runs against three engines with `WORLD_NODES=3`.)

use chat_core::auth::sign_token;
use chat_core::auth::Handshake;
use chat_core::config::Limits;
use chat_core::effect::{Effect, Room, ServerEvent, Target};
use chat_core::engine::HeldSocket;
use chat_core::ids::{AckId, ChatId, IdSource, Millis, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::placement::{NodeId, PartitionKey, Placement};
use chat_core::route::{Envelope, UserMsg};
use chat_core::{Engine, Input};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const SECRET: &[u8] = b"cluster-secret";

struct Lcg(u128);
impl IdSource for Lcg {
    fn random_u128(&mut self) -> u128 {
        self.0 = self.0.wrapping_mul(0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645).wrapping_add(0x5851_F42D_4C95_7F2D_1405_7B7E_F767_814F);
        self.0
    }
}

/// A cluster as the hosts run it, with a perfect bus and rooms kept by whoever holds the socket.
struct Cluster {
    engines: BTreeMap<NodeId, Engine>,
    limits: Limits,
    store: MemoryStore,
    now: Millis,
    log: Vec<Effect>,
    homes: BTreeMap<SocketId, NodeId>,
    owners: BTreeMap<SocketId, UserId>,
    rooms: BTreeMap<Room, BTreeSet<SocketId>>,
    delivered: BTreeMap<SocketId, Vec<(ServerEvent, Value)>>,
    next: u64,
}

fn node_of(socket: &SocketId) -> Option<NodeId> {
    socket.as_str().get(..8).and_then(NodeId::parse)
}

impl Cluster {
    fn new(nodes: &[u32], limits: Limits) -> Self {
        let mut cluster = Self {
            engines: BTreeMap::new(),
            limits,
            store: MemoryStore::new(),
            now: Millis(1_700_000_000_000),
            log: Vec::new(),
            homes: BTreeMap::new(),
            owners: BTreeMap::new(),
            rooms: BTreeMap::new(),
            delivered: BTreeMap::new(),
            next: 0,
        };
        for node in nodes {
            cluster.add_engine(NodeId(*node));
        }
        let live: Vec<NodeId> = cluster.engines.keys().copied().collect();
        for (me, engine) in cluster.engines.iter_mut() {
            engine.set_placement(Placement::new(*me, live.iter().copied()));
        }
        cluster
    }

    fn add_engine(&mut self, node: NodeId) {
        let engine = Engine::new(self.limits.clone(), SECRET.to_vec(), Box::new(Lcg(u128::from(node.0) * 7_919 + 1)));
        self.engines.insert(node, engine);
    }

    fn engine(&mut self, node: NodeId) -> &mut Engine {
        self.engines.get_mut(&node).expect("a live node")
    }

    fn settle(&mut self) {
        loop {
            let mut busy = false;
            let nodes: Vec<NodeId> = self.engines.keys().copied().collect();
            for node in nodes {
                while let Some(effect) = self.engine(node).poll_effect() {
                    busy = true;
                    match effect {
                        Effect::Storage { op, request } => {
                            let result = self.store.apply(&request);
                            let now = self.now;
                            self.engine(node).handle(now, Input::Storage { op, result });
                        }
                        other => self.host(other),
                    }
                }
                while let Some(remote) = self.engine(node).poll_remote() {
                    busy = true;
                    let now = self.now;
                    // Mail for a dead process is lost, as on a real bus.
                    if let Some(engine) = self.engines.get_mut(&remote.to) {
                        engine.handle(now, Input::Mail { envelope: remote.envelope, forwarded: remote.forwarded });
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// What the process holding the socket does with an effect.
    fn host(&mut self, effect: Effect) {
        match &effect {
            Effect::AcceptConnection { socket, user } => {
                self.owners.insert(socket.clone(), user.clone());
            }
            Effect::RejectConnection { socket, .. } => {
                if let Some(home) = self.homes.get(socket).copied() {
                    if let Some(engine) = self.engines.get_mut(&home) {
                        engine.forget_socket(socket);
                    }
                }
            }
            Effect::JoinRoom { socket, room } if self.homes.get(socket).is_some_and(|home| self.engines.contains_key(home)) => {
                self.rooms.entry(room.clone()).or_default().insert(socket.clone());
            }
            Effect::LeaveRoom { socket, room } => {
                if let Some(members) = self.rooms.get_mut(room) {
                    members.remove(socket);
                }
            }
            Effect::Emit { to, except_user, event, payload } => {
                let mut reached: BTreeSet<SocketId> = match to {
                    Target::Room(room) => self.rooms.get(room).cloned().unwrap_or_default(),
                    Target::Socket(socket) => self.owners.contains_key(socket).then(|| socket.clone()).into_iter().collect(),
                };
                if let Some(user) = except_user {
                    let theirs = self.rooms.get(&Room::User(user.clone())).cloned().unwrap_or_default();
                    reached.retain(|socket| !theirs.contains(socket));
                }
                for socket in reached {
                    self.delivered.entry(socket).or_default().push((*event, payload.to_value()));
                }
            }
            _ => {}
        }
        self.log.push(effect);
    }

    fn connect(&mut self, node: u32, user: &str) -> Option<SocketId> {
        self.next += 1;
        let node = NodeId(node);
        let socket = SocketId::new(format!("{node}.{user}-{}", self.next));
        self.homes.insert(socket.clone(), node);
        let token = sign_token(SECRET, &UserId::from(user), false, self.now.plus(3_600_000));
        let handshake = Handshake { auth: Some(json!({ "token": token })), ..Default::default() };
        let now = self.now;
        self.engine(node).handle(now, Input::Connect { socket: socket.clone(), handshake });
        self.settle();
        self.owners.contains_key(&socket).then_some(socket)
    }

    fn call(&mut self, socket: &SocketId, event: &str, payload: Value) -> Option<Value> {
        self.next += 1;
        let ack = AckId(self.next);
        let home = self.homes[socket];
        let now = self.now;
        self.engine(home).handle(now, Input::Event { socket: socket.clone(), event: event.into(), payload, ack: Some(ack) });
        self.settle();
        self.log.iter().find_map(|effect| match effect {
            Effect::Ack { socket: s, ack: a, reply } if s == socket && *a == ack => Some(reply.to_value()),
            _ => None,
        })
    }

    fn ok(&mut self, socket: &SocketId, event: &str, payload: Value) -> Value {
        let ack = self.call(socket, event, payload).unwrap_or_else(|| panic!("no ack for {event}"));
        assert_eq!(ack["ok"], true, "{event}: {ack}");
        ack["data"].clone()
    }

    fn group(&mut self, socket: &SocketId, others: &[&str]) -> String {
        let data = self.ok(socket, "chat:create", json!({ "kind": "group", "memberIds": others, "title": "team" }));
        data["chat"]["id"].as_str().expect("a chat id").to_string()
    }

    /// A group whose partition `node` owns.
    fn group_owned_by(&mut self, socket: &SocketId, others: &[&str], node: u32) -> String {
        let view = Placement::new(NodeId(node), self.engines.keys().copied());
        for _ in 0..64 {
            let chat = self.group(socket, others);
            if view.owner(&PartitionKey::Chat(ChatId::new(chat.clone()))) == NodeId(node) {
                return chat;
            }
        }
        panic!("no group landed on node {node}");
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now.plus(ms);
        loop {
            let due = self.engines.iter().filter_map(|(node, engine)| engine.poll_timeout().map(|at| (at, *node))).min();
            match due {
                Some((at, node)) if at <= target => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    self.engine(node).handle_timeout(now);
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// The sockets `node` holds, with their users and chat rooms.
    fn held(&self, node: NodeId) -> Vec<HeldSocket> {
        self.homes
            .iter()
            .filter(|(socket, home)| **home == node && self.owners.contains_key(*socket))
            .map(|(socket, _)| HeldSocket {
                socket: socket.clone(),
                user: self.owners[socket].clone(),
                chats: self
                    .rooms
                    .iter()
                    .filter_map(|(room, members)| match room {
                        Room::Chat(chat) if members.contains(socket) => Some(chat.clone()),
                        _ => None,
                    })
                    .collect(),
            })
            .collect()
    }

    fn membership_changed(&mut self) {
        let live: Vec<NodeId> = self.engines.keys().copied().collect();
        let now = self.now;
        for node in live.clone() {
            let held = self.held(node);
            let placement = Placement::new(node, live.iter().copied());
            self.engine(node).change_placement(now, placement, held, node_of);
            self.settle();
        }
    }

    /// `kill -9` of a process: its sockets vanish; the others learn it is gone, and one of
    /// them hands its sockets to their users' partitions as lost.
    fn kill(&mut self, node: u32) {
        let node = NodeId(node);
        self.engines.remove(&node);
        let dead: Vec<SocketId> = self.homes.iter().filter(|(_, home)| **home == node).map(|(socket, _)| socket.clone()).collect();
        for members in self.rooms.values_mut() {
            members.retain(|socket| !dead.contains(socket));
        }
        self.membership_changed();
        let janitor = *self.engines.keys().next().expect("a survivor");
        let now = self.now;
        for socket in dead {
            if let Some(user) = self.owners.remove(&socket) {
                let envelope = Envelope::ToUser(user, UserMsg::Lost { socket });
                self.engine(janitor).handle(now, Input::Mail { envelope, forwarded: false });
                self.settle();
            }
        }
    }

    fn start(&mut self, node: u32) {
        self.add_engine(NodeId(node));
        self.membership_changed();
    }

    fn received(&self, socket: &SocketId, event: ServerEvent) -> Vec<Value> {
        self.delivered
            .get(socket)
            .map(|all| all.iter().filter(|(e, _)| *e == event).map(|(_, p)| p.clone()).collect())
            .unwrap_or_default()
    }
}

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn unlimited() -> Limits {
    Limits { rate_limit_messages: 1_000_000, ..Limits::default() }
}

#[test]
fn senders_on_different_processes_share_one_gap_free_seq() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(2, "bob").unwrap();
    let carol = c.connect(3, "carol").unwrap();
    let chat = c.group(&alice, &["bob", "carol"]);
    let mut seqs = Vec::new();
    for n in 0..12u32 {
        let socket = [&alice, &bob, &carol][n as usize % 3].clone();
        let data = c.ok(&socket, "message:send", json!({ "chatId": chat, "body": format!("m{n}"), "clientId": uuid(n) }));
        seqs.push(data["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
}

#[test]
fn every_member_on_every_process_receives_each_message_once() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(2, "bob").unwrap();
    let carol = c.connect(3, "carol").unwrap();
    let chat = c.group(&alice, &["bob", "carol"]);
    for socket in [&alice, &bob, &carol] {
        c.ok(socket, "room:join", json!({ "chatId": chat }));
    }
    c.ok(&bob, "message:send", json!({ "chatId": chat, "body": "hi", "clientId": uuid(1) }));
    for socket in [&alice, &bob, &carol] {
        assert_eq!(c.received(socket, ServerEvent::MessageNew).len(), 1, "{socket}");
        assert_eq!(c.received(socket, ServerEvent::InboxUpdate).len(), 1, "{socket}");
    }
}

#[test]
fn a_client_id_retried_on_another_process_acks_the_same_message() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let phone = c.connect(1, "alice").unwrap();
    let laptop = c.connect(3, "alice").unwrap();
    let chat = c.group(&phone, &["bob"]);
    let first = c.ok(&phone, "message:send", json!({ "chatId": chat, "body": "once", "clientId": uuid(7) }));
    let again = c.ok(&laptop, "message:send", json!({ "chatId": chat, "body": "once", "clientId": uuid(7) }));
    assert_eq!(first["serverId"], again["serverId"]);
    assert_eq!(first["seq"], again["seq"]);
}

#[test]
fn the_rate_limit_counts_sends_from_every_process() {
    let limits = Limits { rate_limit_messages: 3, ..Limits::default() };
    let mut c = Cluster::new(&[1, 2, 3], limits);
    let sockets = [c.connect(1, "alice").unwrap(), c.connect(2, "alice").unwrap(), c.connect(3, "alice").unwrap()];
    let chat = c.group(&sockets[0], &["bob"]);
    for n in 0..3u32 {
        c.ok(&sockets[n as usize], "message:send", json!({ "chatId": chat, "body": "x", "clientId": uuid(n) }));
    }
    let refused = c.call(&sockets[1], "message:send", json!({ "chatId": chat, "body": "x", "clientId": uuid(9) })).unwrap();
    assert_eq!(refused["error"], "RATE_LIMITED", "{refused}");
}

#[test]
fn max_sockets_counts_sockets_on_every_process() {
    let limits = Limits { max_sockets_per_user: 2, ..Limits::default() };
    let mut c = Cluster::new(&[1, 2, 3], limits);
    assert!(c.connect(1, "alice").is_some());
    assert!(c.connect(2, "alice").is_some());
    assert!(c.connect(3, "alice").is_none(), "a third socket on a third process must be refused");
    let refused = c.log.iter().any(|e| matches!(e, Effect::RejectConnection { error, .. } if error.code() == "TOO_MANY_CONNECTIONS"));
    assert!(refused);
}

#[test]
fn users_of_a_dead_process_go_offline() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    c.ok(&alice, "chat:create", json!({ "kind": "dm", "memberIds": ["bob"] }));
    let _bob = c.connect(3, "bob").unwrap();
    let online: Vec<Value> = c.received(&alice, ServerEvent::PresenceUpdate);
    assert_eq!(online.last().map(|p| p["status"].clone()), Some(json!("online")), "{online:?}");
    c.advance(60_000);
    c.kill(3);
    c.advance(60_000);
    let updates = c.received(&alice, ServerEvent::PresenceUpdate);
    let last = updates.last().expect("presence updates");
    assert_eq!(last["userId"], "bob");
    assert_eq!(last["status"], "offline", "{updates:?}");
}

#[test]
fn a_chat_whose_process_died_keeps_its_room_on_the_survivors() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(2, "bob").unwrap();
    let chat = c.group_owned_by(&alice, &["bob"], 3);
    c.ok(&alice, "room:join", json!({ "chatId": chat }));
    c.ok(&bob, "message:send", json!({ "chatId": chat, "body": "before", "clientId": uuid(1) }));
    c.kill(3);
    let data = c.ok(&bob, "message:send", json!({ "chatId": chat, "body": "after", "clientId": uuid(2) }));
    assert_eq!(data["seq"], 2, "the new owner continues from storage");
    let bodies: Vec<Value> = c.received(&alice, ServerEvent::MessageNew).iter().map(|m| m["body"].clone()).collect();
    assert_eq!(bodies, vec![json!("before"), json!("after")]);
}

#[test]
fn a_process_that_joins_takes_its_share_and_rooms_keep_working() {
    let mut c = Cluster::new(&[1, 2], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(2, "bob").unwrap();
    // Chats that will move to process 3 once it starts.
    let mut moving = Vec::new();
    for _ in 0..24 {
        let chat = c.group(&alice, &["bob"]);
        let view = Placement::new(NodeId(3), [NodeId(1), NodeId(2), NodeId(3)]);
        if view.owns(&PartitionKey::Chat(ChatId::new(chat.clone()))) {
            moving.push(chat);
        }
    }
    assert!(!moving.is_empty());
    for chat in &moving {
        c.ok(&alice, "room:join", json!({ "chatId": chat }));
    }
    c.start(3);
    for (n, chat) in moving.iter().enumerate() {
        c.ok(&bob, "message:send", json!({ "chatId": chat, "body": "hello", "clientId": uuid(n as u32) }));
    }
    assert_eq!(c.received(&alice, ServerEvent::MessageNew).len(), moving.len());
    // Leaving a moved chat's room works too: its new owner knows the socket is in it.
    c.ok(&alice, "room:leave", json!({ "chatId": moving[0] }));
    c.ok(&bob, "message:send", json!({ "chatId": moving[0], "body": "unheard", "clientId": uuid(99) }));
    assert_eq!(c.received(&alice, ServerEvent::MessageNew).len(), moving.len());
}

#[test]
fn a_removed_member_leaves_the_room_on_the_process_holding_the_socket() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(3, "bob").unwrap();
    let chat = c.group(&alice, &["bob"]);
    c.ok(&bob, "room:join", json!({ "chatId": chat }));
    let room = Room::Chat(ChatId::new(chat.clone()));
    assert!(c.rooms[&room].contains(&bob));
    let token = sign_token(SECRET, &UserId::from("alice"), false, c.now.plus(3_600_000));
    let now = c.now;
    let call = chat_core::command::HttpRequest::RemoveMember { chat_id: chat.clone(), user_id: "bob".into() };
    c.engine(NodeId(2)).handle(now, Input::Http { request: chat_core::ids::RequestId(1), authorization: Some(format!("Bearer {token}")), call });
    c.settle();
    assert!(!c.rooms[&room].contains(&bob), "bob's socket must leave the room on process 3");
}

#[test]
fn restores_that_reach_a_process_before_it_sees_the_change_wait_for_it() {
    let mut c = Cluster::new(&[1, 2, 3], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let bob = c.connect(2, "bob").unwrap();
    // Several chats of the dying process: their new owners are processes 1 and 2, and
    // process 2 learns of the death only after process 1 has sent it the restores.
    let chats: Vec<String> = (0..8).map(|_| c.group_owned_by(&alice, &["bob"], 3)).collect();
    for chat in &chats {
        c.ok(&alice, "room:join", json!({ "chatId": chat }));
    }
    c.kill(3);
    for (n, chat) in chats.iter().enumerate() {
        c.ok(&bob, "message:send", json!({ "chatId": chat, "body": "after", "clientId": uuid(n as u32) }));
    }
    assert_eq!(c.received(&alice, ServerEvent::MessageNew).len(), chats.len());
}

#[test]
fn mail_for_a_partition_this_process_never_comes_to_own_goes_on_after_a_while() {
    let mut c = Cluster::new(&[1, 2], unlimited());
    let alice = c.connect(1, "alice").unwrap();
    let view = Placement::new(NodeId(1), [NodeId(1), NodeId(2)]);
    let owner = view.owner(&PartitionKey::User(UserId::from("alice")));
    let wrong = if owner == NodeId(1) { NodeId(2) } else { NodeId(1) };
    // A sender with a stale view tells the wrong process that alice's socket is gone.
    let envelope = Envelope::ToUser(UserId::from("alice"), UserMsg::Lost { socket: alice.clone() });
    let now = c.now;
    c.engine(wrong).handle(now, Input::Mail { envelope, forwarded: false });
    c.settle();
    assert!(c.call(&alice, "presence:ping", json!({})).is_some(), "the message waits: the socket still counts");
    c.advance(chat_core::engine::MISROUTED_HOLD_MS);
    assert!(c.call(&alice, "presence:ping", json!({})).is_none(), "then it reaches the owner: the socket is gone");
}
