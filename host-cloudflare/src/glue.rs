//! The host glue that needs no Workers API, so it is tested natively: one partition per
//! object with the core's own rules for making and dropping it, and the routing of the
//! core's effects and mail to the objects that carry them out.
//!
//! Routing rules (see also `wire`):
//! - core mail goes to the object of its partition (`Dest::Chat`, `Dest::User`);
//! - everything for one socket (acks, emits, CONNECT answers) goes through the socket's
//!   **user object**, which passes it to the socket's connection object: one ordered path
//!   per user, so "message:new, then inbox:update, then the ack" stays in order;
//! - a `chat:` room emit is expanded by the chat object over the sockets in its room
//!   (kept from the JoinRoom/LeaveRoom effects), grouped by their users;
//! - a `user:` room emit goes to that user's object, which knows the user's sockets;
//! - storage, HTTP answers and logs are carried out where they were produced.

use crate::addr::split_socket;
use crate::wire::{Item, SocketOut};
use chat_core::chat::ChatPartition;
use chat_core::config::Limits;
use chat_core::effect::{connect_error_json, Effect, LogLevel, Room, Target};
use chat_core::ids::{ChatId, CorrelationId, IdMaker, Millis, OpId, RequestId, SocketId, UserId};
use chat_core::route::{chat_arrival, user_arrival, ChatArrival, ChatMsg, Ctx, Envelope, Outbox, UserArrival, UserMsg};
use chat_core::storage::{StorageOp, StorageResult};
use chat_core::user::UserPartition;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An object that items are sent to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    Chat(ChatId),
    User(UserId),
    /// A connection object, by `sid`.
    Conn(String),
}

/// What the producing object carries out itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Local {
    Storage { op: OpId, request: StorageOp },
    Http { request: RequestId, status: u16, body: Value },
    Log { level: LogLevel, correlation_id: Option<CorrelationId>, message: String },
}

#[derive(Debug, Default)]
pub struct Routed {
    pub local: Vec<Local>,
    /// In the order produced; a sender keeps that order per destination.
    pub remote: Vec<(Dest, Item)>,
}

/// Routes what a partition produced. `rooms` is the chat object's room (socket → user),
/// updated in effect order; other objects pass an empty map.
pub fn route(out: Outbox, rooms: &mut BTreeMap<SocketId, UserId>) -> Routed {
    let mut routed = Routed::default();
    // Mail first: a user object records a SendDone before it passes the ack on.
    for envelope in out.mail {
        routed.remote.push(match envelope {
            Envelope::ToChat(chat, msg) => (Dest::Chat(chat), Item::Chat(msg)),
            Envelope::ToUser(user, msg) => (Dest::User(user), Item::User(msg)),
        });
    }
    for effect in out.effects {
        route_effect(effect, rooms, &mut routed);
    }
    routed
}

fn to_socket(routed: &mut Routed, socket: SocketId, out: SocketOut) {
    if let Some((_, user)) = split_socket(&socket) {
        routed.remote.push((Dest::User(user), Item::Socket { socket, out }));
    }
}

fn route_effect(effect: Effect, rooms: &mut BTreeMap<SocketId, UserId>, routed: &mut Routed) {
    match effect {
        Effect::AcceptConnection { socket, .. } => to_socket(routed, socket, SocketOut::Accept),
        Effect::RejectConnection { socket, error, correlation_id } => {
            let data = connect_error_json(&error, &correlation_id);
            to_socket(routed, socket, SocketOut::Reject { code: error.code().to_string(), data });
        }
        Effect::Ack { socket, ack, reply } => to_socket(routed, socket, SocketOut::Ack { ack, reply }),
        Effect::Emit { to: Target::Socket(socket), event, payload, .. } => {
            to_socket(routed, socket, SocketOut::Event { event: event.name().to_string(), payload })
        }
        Effect::Emit { to: Target::Room(Room::Chat(_)), except_user, event, payload } => {
            for (socket, user) in rooms.iter() {
                if except_user.as_ref() != Some(user) {
                    let out = SocketOut::Event { event: event.name().to_string(), payload: payload.clone() };
                    routed.remote.push((Dest::User(user.clone()), Item::Socket { socket: socket.clone(), out }));
                }
            }
        }
        Effect::Emit { to: Target::Room(Room::User(user)), except_user, event, payload } => {
            if except_user.as_ref() != Some(&user) {
                routed.remote.push((Dest::User(user), Item::UserRoom { event: event.name().to_string(), payload }));
            }
        }
        Effect::JoinRoom { socket, room: Room::Chat(_) } => {
            if let Some((_, user)) = split_socket(&socket) {
                rooms.insert(socket, user);
            }
        }
        Effect::LeaveRoom { socket, room: Room::Chat(_) } => {
            rooms.remove(&socket);
        }
        // A user room is every socket the user partition holds.
        Effect::JoinRoom { room: Room::User(_), .. } | Effect::LeaveRoom { room: Room::User(_), .. } => {}
        Effect::Storage { op, request } => routed.local.push(Local::Storage { op, request }),
        Effect::HttpRespond { request, status, body } => routed.local.push(Local::Http { request, status, body }),
        Effect::Log { level, correlation_id, message } => routed.local.push(Local::Log { level, correlation_id, message }),
    }
}

/// A user object passes on what arrived for its sockets: to each socket's connection object.
pub fn user_fanout(item: Item, sockets: &[SocketId]) -> Vec<(Dest, Item)> {
    match item {
        Item::Socket { socket, out } => match split_socket(&socket) {
            Some((sid, _)) => vec![(Dest::Conn(sid.to_string()), Item::Socket { socket, out })],
            None => vec![],
        },
        Item::UserRoom { event, payload } => sockets
            .iter()
            .filter_map(|socket| {
                let (sid, _) = split_socket(socket)?;
                let out = SocketOut::Event { event: event.clone(), payload: payload.clone() };
                Some((Dest::Conn(sid.to_string()), Item::Socket { socket: socket.clone(), out }))
            })
            .collect(),
        _ => vec![],
    }
}

/// The core's context for one object: limits, ids, storage operation numbers.
pub struct Core {
    pub limits: Limits,
    pub ids: IdMaker,
    pub next_op: u64,
}

impl Core {
    pub fn new(limits: Limits, ids: IdMaker) -> Self {
        Self { limits, ids, next_op: 0 }
    }

    pub fn run<T>(&mut self, now: Millis, out: &mut Outbox, f: impl FnOnce(&mut Ctx) -> T) -> T {
        let mut ctx = Ctx { now, limits: &self.limits, ids: &mut self.ids, out, next_op: &mut self.next_op };
        f(&mut ctx)
    }
}

/// A chat object's partition, made and dropped by the core's rules ([`chat_arrival`]).
pub struct ChatHost {
    pub id: ChatId,
    pub partition: Option<ChatPartition>,
    /// Sockets in the `chat:` room and their users. The object persists it, so that a
    /// partition rebuilt after the object lost its memory still knows its room.
    pub rooms: BTreeMap<SocketId, UserId>,
}

impl ChatHost {
    pub fn new(id: ChatId, rooms: BTreeMap<SocketId, UserId>) -> Self {
        Self { id, partition: None, rooms }
    }

    pub fn deliver(&mut self, core: &mut Core, now: Millis, msg: ChatMsg, out: &mut Outbox) {
        if self.partition.is_none() {
            let id = self.id.clone();
            let arrival = if self.rooms.is_empty() { chat_arrival(&msg) } else { ChatArrival::Load };
            match arrival {
                ChatArrival::Drop => return,
                ChatArrival::Create => {
                    self.partition = Some(core.run(now, out, |ctx| ChatPartition::create(id, msg, ctx)));
                    return;
                }
                ChatArrival::Load => {
                    let mut partition = core.run(now, out, |ctx| ChatPartition::load(id, ctx));
                    for (socket, user) in &self.rooms {
                        partition.restore_joined(socket.clone(), user.clone());
                    }
                    self.partition = Some(partition);
                }
            }
        }
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle(ctx, msg));
        }
    }

    pub fn storage(&mut self, core: &mut Core, now: Millis, op: OpId, result: StorageResult, out: &mut Outbox) {
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_storage(ctx, op, result));
        }
    }

    pub fn timeout(&mut self, core: &mut Core, now: Millis, out: &mut Outbox) {
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_timeout(ctx));
        }
    }

    /// Drops the partition once it holds nothing storage lacks; the next timer.
    pub fn settle(&mut self) -> Option<Millis> {
        let partition = self.partition.as_ref()?;
        if partition.is_idle() {
            self.partition = None;
            return None;
        }
        partition.next_deadline()
    }
}

/// A user object's partition, made and dropped by the core's rules ([`user_arrival`]).
pub struct UserHost {
    pub id: UserId,
    pub partition: Option<UserPartition>,
    /// The partition's sockets and the chats each asked to join, as last persisted.
    pub sockets: BTreeMap<SocketId, BTreeSet<ChatId>>,
}

impl UserHost {
    pub fn new(id: UserId, sockets: BTreeMap<SocketId, BTreeSet<ChatId>>) -> Self {
        Self { id, partition: None, sockets }
    }

    pub fn deliver(&mut self, core: &mut Core, now: Millis, msg: UserMsg, out: &mut Outbox) {
        if self.partition.is_none() {
            let arrival = if self.sockets.is_empty() { user_arrival(&self.id, &msg) } else { UserArrival::New };
            match arrival {
                UserArrival::Drop => return,
                UserArrival::Answer(envelope) => return out.mail.push(envelope),
                UserArrival::New => {
                    let mut partition = UserPartition::new(self.id.clone());
                    for (socket, chats) in &self.sockets {
                        partition.restore_socket(socket.clone(), chats.clone());
                    }
                    self.partition = Some(partition);
                }
            }
        }
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle(ctx, msg));
        }
    }

    pub fn storage(&mut self, core: &mut Core, now: Millis, op: OpId, result: StorageResult, out: &mut Outbox) {
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_storage(ctx, op, result));
        }
    }

    pub fn timeout(&mut self, core: &mut Core, now: Millis, out: &mut Outbox) {
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_timeout(ctx));
        }
    }

    /// The sockets now (every socket of the `user:` room).
    pub fn socket_list(&self) -> Vec<SocketId> {
        self.partition.as_ref().map(|p| p.socket_chats().keys().cloned().collect()).unwrap_or_default()
    }

    /// Drops an idle partition; the next timer, and the socket changes to persist
    /// (`Some(chats)` to write, `None` to delete).
    pub fn settle(&mut self, now: Millis, presence_throttle_ms: u64) -> (Option<Millis>, Vec<(SocketId, Option<BTreeSet<ChatId>>)>) {
        let (deadline, current) = match self.partition.as_ref() {
            None => (None, BTreeMap::new()),
            Some(partition) if partition.is_idle(now, presence_throttle_ms) => {
                self.partition = None;
                (None, BTreeMap::new())
            }
            Some(partition) => (partition.next_deadline(presence_throttle_ms), partition.socket_chats().clone()),
        };
        let mut changes = Vec::new();
        for (socket, chats) in &current {
            if self.sockets.get(socket) != Some(chats) {
                changes.push((socket.clone(), Some(chats.clone())));
            }
        }
        for socket in self.sockets.keys() {
            if !current.contains_key(socket) {
                changes.push((socket.clone(), None));
            }
        }
        self.sockets = current;
        (deadline, changes)
    }
}

/// Room changes to persist between two snapshots of a chat object's room.
pub fn room_changes(before: &BTreeMap<SocketId, UserId>, after: &BTreeMap<SocketId, UserId>) -> Vec<(SocketId, Option<UserId>)> {
    let mut changes: Vec<(SocketId, Option<UserId>)> =
        after.iter().filter(|(s, u)| before.get(*s) != Some(*u)).map(|(s, u)| (s.clone(), Some(u.clone()))).collect();
    changes.extend(before.keys().filter(|s| !after.contains_key(*s)).map(|s| (s.clone(), None)));
    changes
}

#[cfg(test)]
mod tests {
    //! A whole edge deployment in memory: objects exchange the same items as over Durable
    //! Object fetches, storage is the core's reference store, and connection objects are
    //! recorders of what would go to each WebSocket.
    use super::*;
    use crate::addr::{make_sid, socket_id};
    use chat_core::auth::{sign_token, Handshake};
    use chat_core::ids::{AckId, IdSource};
    use chat_core::memory::MemoryStore;
    use chat_core::route::{connect_envelope, event_envelope};
    use serde_json::json;
    use std::collections::VecDeque;

    struct Counter(u128);
    impl IdSource for Counter {
        fn random_u128(&mut self) -> u128 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 ^ (self.0 >> 61)
        }
    }

    const SECRET: &[u8] = b"edge-test";

    #[derive(Default)]
    struct World {
        store: MemoryStore,
        chats: BTreeMap<ChatId, (ChatHost, Core)>,
        users: BTreeMap<UserId, (UserHost, Core)>,
        queue: VecDeque<(Dest, Item)>,
        /// What each connection object wrote to its socket.
        wire: BTreeMap<String, Vec<SocketOut>>,
        now: u64,
    }

    fn core(seed: u128) -> Core {
        Core::new(Limits::default(), IdMaker::new(Box::new(Counter(seed))))
    }

    impl World {
        fn now(&self) -> Millis {
            Millis(1_700_000_000_000 + self.now)
        }

        /// Carries out a partition's output in its object, like the Durable Object does.
        fn settle_outputs(&mut self, here: Dest, mut out: Outbox) {
            loop {
                let routed = match &here {
                    Dest::Chat(id) => route(out, &mut self.chats.get_mut(id).unwrap().0.rooms),
                    _ => route(out, &mut BTreeMap::new()),
                };
                self.queue.extend(routed.remote);
                out = Outbox::default();
                let mut again = false;
                for local in routed.local {
                    if let Local::Storage { op, request } = local {
                        let result = self.store.apply(&request);
                        let now = self.now();
                        match &here {
                            Dest::Chat(id) => {
                                let (host, core) = self.chats.get_mut(id).unwrap();
                                host.storage(core, now, op, result, &mut out);
                            }
                            Dest::User(id) => {
                                let (host, core) = self.users.get_mut(id).unwrap();
                                host.storage(core, now, op, result, &mut out);
                            }
                            Dest::Conn(_) => {}
                        }
                        again = true;
                    }
                }
                if !again {
                    break;
                }
            }
            match &here {
                Dest::Chat(id) => {
                    self.chats.get_mut(id).unwrap().0.settle();
                }
                Dest::User(id) => {
                    self.users.get_mut(id).unwrap().0.settle(Millis(0), 0);
                }
                Dest::Conn(_) => {}
            }
        }

        fn pump(&mut self) {
            while let Some((dest, item)) = self.queue.pop_front() {
                let now = self.now();
                let mut out = Outbox::default();
                match (&dest, item) {
                    (Dest::Chat(id), Item::Chat(msg)) => {
                        let (host, core) = self.chats.entry(id.clone()).or_insert_with(|| (ChatHost::new(id.clone(), BTreeMap::new()), core(7)));
                        host.deliver(core, now, msg, &mut out);
                    }
                    (Dest::User(id), Item::User(msg)) => {
                        let (host, core) = self.users.entry(id.clone()).or_insert_with(|| (UserHost::new(id.clone(), BTreeMap::new()), core(11)));
                        host.deliver(core, now, msg, &mut out);
                    }
                    (Dest::User(id), item @ (Item::Socket { .. } | Item::UserRoom { .. })) => {
                        let sockets = self.users.get(id).map(|(host, _)| host.socket_list()).unwrap_or_default();
                        self.queue.extend(user_fanout(item, &sockets));
                        continue;
                    }
                    (Dest::Conn(sid), Item::Socket { out: packet, .. }) => {
                        self.wire.entry(sid.clone()).or_default().push(packet);
                        continue;
                    }
                    (dest, item) => panic!("{item:?} cannot go to {dest:?}"),
                }
                self.settle_outputs(dest, out);
            }
        }

        fn connect(&mut self, sid: &str, user: &str) -> SocketId {
            let token = sign_token(SECRET, &UserId::new(user), false, Millis(4_000_000_000_000));
            let handshake = Handshake { auth: Some(json!({ "token": token })), authorization_header: None, query_token: None };
            let mut out = Outbox::default();
            let socket = SocketId::new(format!("{sid}{user}"));
            let admitted = core(3).run(self.now(), &mut out, |ctx| connect_envelope(ctx, socket.clone(), &handshake, SECRET));
            let (user, Envelope::ToUser(_, msg)) = admitted.expect("token accepted") else { panic!() };
            let socket = socket_id(sid, &user);
            self.queue.push_back((Dest::User(user), Item::User(msg)));
            self.pump();
            socket
        }

        fn emit(&mut self, socket: &SocketId, event: &str, payload: Value, ack: u64) {
            let (_, user) = split_socket(socket).unwrap();
            let envelope = event_envelope(user.clone(), socket.clone(), event.to_string(), &payload, Some(AckId(ack))).expect("valid event");
            let Envelope::ToUser(_, msg) = envelope else { panic!() };
            self.queue.push_back((Dest::User(user), Item::User(msg)));
            self.pump();
        }

        fn acks(&self, sid: &str) -> Vec<(u64, Value)> {
            self.wire.get(sid).into_iter().flatten().filter_map(|p| match p {
                SocketOut::Ack { ack, reply } => Some((ack.0, reply.clone())),
                _ => None,
            }).collect()
        }

        fn events(&self, sid: &str, name: &str) -> Vec<Value> {
            self.wire.get(sid).into_iter().flatten().filter_map(|p| match p {
                SocketOut::Event { event, payload } if event == name => Some(payload.clone()),
                _ => None,
            }).collect()
        }
    }

    #[test]
    fn a_message_travels_between_two_users_objects_in_contract_order() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(1), make_sid(2));
        let a = world.connect(&sid_a, "alice");
        let b = world.connect(&sid_b, "bob");
        assert_eq!(world.wire[&sid_a].first(), Some(&SocketOut::Accept));
        assert_eq!(world.wire[&sid_b].first(), Some(&SocketOut::Accept));

        world.emit(&a, "chat:create", json!({ "kind": "dm", "memberIds": ["bob"] }), 1);
        let (_, created) = world.acks(&sid_a).pop().unwrap();
        assert_eq!(created["ok"], true, "{created}");
        let chat_id = created["data"]["chat"]["id"].as_str().unwrap().to_string();
        assert_eq!(world.events(&sid_b, "chat:update").len(), 1);

        world.emit(&a, "room:join", json!({ "chatId": chat_id }), 2);
        world.emit(&b, "room:join", json!({ "chatId": chat_id }), 1);
        let client_id = "0189c6f0-0000-4000-8000-000000000001";
        world.emit(&a, "message:send", json!({ "chatId": chat_id, "body": "hi", "clientId": client_id }), 3);

        let (ack, reply) = world.acks(&sid_a).pop().unwrap();
        assert_eq!((ack, &reply["ok"]), (3, &json!(true)), "{reply}");
        assert_eq!(reply["data"]["seq"], 1);
        assert_eq!(world.events(&sid_b, "message:new")[0]["body"], "hi");
        assert_eq!(world.events(&sid_b, "inbox:update")[0]["unreadCount"], 1);
        // The sender's socket: message:new, then inbox:update, then the ack.
        let order: Vec<&str> = world.wire[&sid_a]
            .iter()
            .filter_map(|p| match p {
                SocketOut::Event { event, .. } if event == "message:new" || event == "inbox:update" => Some(event.as_str()),
                SocketOut::Ack { ack: AckId(3), .. } => Some("ack"),
                _ => None,
            })
            .collect();
        assert_eq!(order, ["message:new", "inbox:update", "ack"]);

        // A retry acks the same message and broadcasts nothing.
        let before = world.events(&sid_b, "message:new").len();
        world.emit(&a, "message:send", json!({ "chatId": chat_id, "body": "hi", "clientId": client_id }), 4);
        let (_, retry) = world.acks(&sid_a).pop().unwrap();
        assert_eq!(retry["data"]["serverId"], reply["data"]["serverId"]);
        assert_eq!(world.events(&sid_b, "message:new").len(), before);
    }

    #[test]
    fn a_chat_object_that_lost_its_memory_keeps_its_room() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(3), make_sid(4));
        let a = world.connect(&sid_a, "ann");
        let _b = world.connect(&sid_b, "ben");
        world.emit(&a, "chat:create", json!({ "kind": "group", "memberIds": ["ben"], "title": "t" }), 1);
        let chat_id = world.acks(&sid_a)[0].1["data"]["chat"]["id"].as_str().unwrap().to_string();
        world.emit(&a, "room:join", json!({ "chatId": chat_id }), 2);
        // The object is evicted: only what it persisted (its room) survives.
        let id = ChatId::new(chat_id.as_str());
        let rooms = world.chats[&id].0.rooms.clone();
        assert_eq!(rooms.len(), 1);
        world.chats.insert(id.clone(), (ChatHost::new(id, rooms), core(99)));
        world.emit(&a, "message:send", json!({ "chatId": chat_id, "body": "still here", "clientId": "0189c6f0-0000-4000-8000-000000000002" }), 3);
        assert_eq!(world.events(&sid_a, "message:new").len(), 1);
    }

    #[test]
    fn a_user_object_that_lost_its_memory_keeps_its_sockets() {
        let mut world = World::default();
        let sid = make_sid(5);
        let socket = world.connect(&sid, "cy");
        let user = UserId::new("cy");
        let (host, _) = world.users.get_mut(&user).unwrap();
        let (_, changes) = host.settle(Millis(0), 0);
        assert!(changes.is_empty(), "settled already: {changes:?}");
        let persisted = host.sockets.clone();
        assert_eq!(persisted.len(), 1);
        world.users.insert(user.clone(), (UserHost::new(user, persisted), core(5)));
        world.emit(&socket, "presence:ping", json!({}), 9);
        let (ack, reply) = world.acks(&sid).pop().unwrap();
        assert_eq!(ack, 9);
        assert_eq!(reply["ok"], true, "{reply}");
    }

    #[test]
    fn room_changes_list_joins_and_leaves() {
        let s = |n: &str| SocketId::new(n);
        let u = UserId::new("u");
        let before: BTreeMap<_, _> = [(s("a"), u.clone()), (s("b"), u.clone())].into();
        let after: BTreeMap<_, _> = [(s("b"), u.clone()), (s("c"), u.clone())].into();
        assert_eq!(room_changes(&before, &after), vec![(s("c"), Some(u)), (s("a"), None)]);
    }
}
