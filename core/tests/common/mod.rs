//! A small world for contract tests: one engine, the reference storage answering every
//! storage effect at once, a manual clock, and everything else the engine did, kept.
//!
//! With `WORLD_NODES=n` (n > 1) in the environment the same tests run against a cluster:
//! n engines, each owning its share of the partitions (`chat_core::placement`), sockets and
//! HTTP calls spread over them, and the mail between partitions on different engines
//! carried as the cluster hosts carry it (`Engine::poll_remote` → `Input::Mail`).
//!
//! The world also plays the host's part for rooms: it keeps which socket is in which
//! Socket.IO room (from `AcceptConnection`, `JoinRoom`, `LeaveRoom` and disconnects) and
//! delivers every `Emit` to the sockets it reaches at that moment, so a test can ask what
//! one socket actually received ([`World::received`]).
#![allow(dead_code)]

use chat_core::auth::{sign_token, Handshake};
use chat_core::command::HttpRequest;
use chat_core::config::Limits;
use chat_core::effect::{Effect, Room, ServerEvent, Target};
use chat_core::ids::{AckId, ChatId, CorrelationId, IdSource, Millis, OpId, RequestId, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::placement::{NodeId, Placement};
use chat_core::storage::{StorageOp, StorageResult};
use chat_core::{Engine, Input};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const SECRET: &[u8] = b"test-secret";
pub const T0: Millis = Millis(1_700_000_000_000);

struct Lcg(u128);
impl IdSource for Lcg {
    fn random_u128(&mut self) -> u128 {
        self.0 = self.0.wrapping_mul(0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645).wrapping_add(0x5851_F42D_4C95_7F2D_1405_7B7E_F767_814F);
        self.0
    }
}

pub struct World {
    engines: Vec<Engine>,
    /// Which engine each socket is connected to.
    homes: BTreeMap<SocketId, usize>,
    pub store: MemoryStore,
    pub now: Millis,
    /// Every effect except storage, in order.
    pub log: Vec<Effect>,
    next_ack: u64,
    next_socket: u64,
    next_request: u64,
    limits: Limits,
    restarts: u128,
    /// Connected sockets and whose they are, as the host knows them.
    pub owners: BTreeMap<SocketId, UserId>,
    /// Socket.IO rooms as the host keeps them.
    pub rooms: BTreeMap<Room, BTreeSet<SocketId>>,
    /// What each socket received, in order.
    pub delivered: BTreeMap<SocketId, Vec<(ServerEvent, Value)>>,
    /// While true, storage operations wait in `held` until stepped or released.
    hold: bool,
    held: VecDeque<(usize, OpId, StorageOp)>,
}

/// How many engines the world runs: `WORLD_NODES`, 1 when unset.
pub fn world_nodes() -> usize {
    std::env::var("WORLD_NODES").ok().and_then(|n| n.parse().ok()).filter(|n: &usize| *n >= 1).unwrap_or(1)
}

fn make_engines(limits: &Limits, seed: u128) -> Vec<Engine> {
    let n = world_nodes();
    let nodes: Vec<NodeId> = (1..=n as u32).map(NodeId).collect();
    (0..n)
        .map(|i| {
            let mut engine = Engine::new(limits.clone(), SECRET.to_vec(), Box::new(Lcg(seed + 7_919 * i as u128)));
            if n > 1 {
                engine.set_placement(Placement::new(nodes[i], nodes.iter().copied()));
            }
            engine
        })
        .collect()
}

impl World {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            engines: make_engines(&limits, 42),
            homes: BTreeMap::new(),
            store: MemoryStore::new(),
            now: T0,
            log: Vec::new(),
            next_ack: 0,
            next_socket: 0,
            next_request: 0,
            limits,
            restarts: 0,
            owners: BTreeMap::new(),
            rooms: BTreeMap::new(),
            delivered: BTreeMap::new(),
            hold: false,
            held: VecDeque::new(),
        }
    }

    /// A world whose rate limit never gets in the way (for tests that need many messages).
    pub fn unlimited() -> Self {
        Self::with_limits(Limits { rate_limit_messages: 1_000_000, ..Limits::default() })
    }

    /// The process dies and a new one starts over the same storage: every connection is
    /// gone, and the new engine knows only what storage has.
    pub fn restart(&mut self) {
        self.restarts += 1;
        self.engines = make_engines(&self.limits, 42 + 1_000_003 * self.restarts);
        self.homes.clear();
        self.owners.clear();
        self.rooms.clear();
        self.held.clear();
    }

    pub fn token(&self, user: &str) -> String {
        sign_token(SECRET, &UserId::from(user), false, self.now.plus(3_600_000))
    }

    pub fn bearer(&self, user: &str) -> String {
        format!("Bearer {}", self.token(user))
    }

    /// Feeds an input to the engine it reaches and runs storage to completion.
    pub fn input(&mut self, input: Input) {
        let n = self.engines.len();
        let at = match &input {
            Input::Connect { socket, .. } | Input::Disconnect { socket } | Input::Event { socket, .. } | Input::Overloaded { socket, .. } => {
                self.homes.get(socket).copied().unwrap_or(0)
            }
            Input::Http { request, .. } | Input::HttpRejected { request, .. } => request.0 as usize % n,
            Input::Storage { .. } | Input::Mail { .. } => 0,
        };
        self.engines[at].handle(self.now, input);
        self.settle();
    }

    fn settle(&mut self) {
        loop {
            let mut busy = false;
            for at in 0..self.engines.len() {
                while let Some(effect) = self.engines[at].poll_effect() {
                    busy = true;
                    match effect {
                        Effect::Storage { op, request } if self.hold => self.held.push_back((at, op, request)),
                        Effect::Storage { op, request } => {
                            let result = self.store.apply(&request);
                            self.engines[at].handle(self.now, Input::Storage { op, result });
                        }
                        other => {
                            // A refusal decided on another engine: the socket's own forgets it.
                            if let Effect::RejectConnection { socket, .. } = &other {
                                if let Some(home) = self.homes.get(socket) {
                                    self.engines[*home].forget_socket(socket);
                                }
                            }
                            self.host(&other);
                            self.log.push(other);
                        }
                    }
                }
                // Mail after the effects, as hosts carry it.
                while let Some(remote) = self.engines[at].poll_remote() {
                    busy = true;
                    let to = remote.to.0 as usize - 1;
                    self.engines[to].handle(self.now, Input::Mail { envelope: remote.envelope, forwarded: remote.forwarded });
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// How many engines hold at least one partition in memory.
    pub fn engines_in_use(&self) -> usize {
        self.engines.iter().filter(|engine| engine.partitions() != (0, 0)).count()
    }

    /// How many partitions are in memory, over every engine: (chats, users).
    pub fn partitions(&self) -> (usize, usize) {
        self.engines.iter().map(|engine| engine.partitions()).fold((0, 0), |(c, u), (ec, eu)| (c + ec, u + eu))
    }

    /// From now on storage operations wait until [`World::step_storage`] or
    /// [`World::release_storage`]: several inputs can then be in flight at once.
    pub fn hold_storage(&mut self) {
        self.hold = true;
    }

    /// Storage operations waiting, oldest first.
    pub fn held(&self) -> impl Iterator<Item = &StorageOp> {
        self.held.iter().map(|(_, _, op)| op)
    }

    /// Carries out the oldest waiting storage operation; returns it.
    pub fn step_storage(&mut self) -> Option<StorageOp> {
        let (at, op, request) = self.held.pop_front()?;
        let result = self.store.apply(&request);
        self.engines[at].handle(self.now, Input::Storage { op, result });
        self.settle();
        Some(request)
    }

    /// Carries out the oldest waiting storage operation that `pick` accepts; returns it.
    pub fn step_storage_where(&mut self, pick: impl Fn(&StorageOp) -> bool) -> Option<StorageOp> {
        let index = self.held.iter().position(|(_, _, op)| pick(op))?;
        let (at, op, request) = self.held.remove(index)?;
        let result = self.store.apply(&request);
        self.engines[at].handle(self.now, Input::Storage { op, result });
        self.settle();
        Some(request)
    }

    /// Answers the oldest waiting storage operation that `pick` accepts with a failure,
    /// applying nothing; returns it.
    pub fn fail_storage_where(&mut self, pick: impl Fn(&StorageOp) -> bool) -> Option<StorageOp> {
        let index = self.held.iter().position(|(_, _, op)| pick(op))?;
        let (at, op, request) = self.held.remove(index)?;
        self.engines[at].handle(self.now, Input::Storage { op, result: StorageResult::Failed("injected".into()) });
        self.settle();
        Some(request)
    }

    /// Carries out every waiting storage operation, and answers storage at once again.
    pub fn release_storage(&mut self) {
        self.hold = false;
        while self.step_storage().is_some() {}
    }

    /// What the host does with an effect, as far as rooms and deliveries go.
    fn host(&mut self, effect: &Effect) {
        match effect {
            Effect::AcceptConnection { socket, user } => {
                self.owners.insert(socket.clone(), user.clone());
            }
            // A connecting socket joins its rooms before it is let in, as hosts do.
            Effect::JoinRoom { socket, room } => {
                self.rooms.entry(room.clone()).or_default().insert(socket.clone());
            }
            Effect::RejectConnection { socket, .. } => {
                for members in self.rooms.values_mut() {
                    members.remove(socket);
                }
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
    }

    /// Moves the clock and fires due timers.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now.plus(ms);
        while let Some((index, at)) =
            self.engines.iter().enumerate().filter_map(|(i, engine)| engine.poll_timeout().map(|at| (i, at))).min_by_key(|(_, at)| *at)
        {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.engines[index].handle_timeout(self.now);
            self.settle();
        }
        self.now = target;
    }

    /// Moves the clock to `T0 + ms` (firing due timers).
    pub fn advance_to(&mut self, ms: u64) {
        let target = T0.plus(ms);
        assert!(target >= self.now, "the clock does not go back");
        self.advance(target.since(self.now));
    }

    fn new_socket(&mut self, user: &str) -> SocketId {
        self.next_socket += 1;
        let socket = SocketId::new(format!("{user}#{}", self.next_socket));
        self.homes.insert(socket.clone(), self.next_socket as usize % self.engines.len());
        socket
    }

    /// Connects a socket for `user` with `auth`; returns it and whether it was accepted.
    pub fn connect_with(&mut self, user: &str, auth: Value) -> (SocketId, bool) {
        let socket = self.new_socket(user);
        let mut auth = auth;
        auth["token"] = json!(self.token(user));
        self.input(Input::Connect { socket: socket.clone(), handshake: Handshake { auth: Some(auth), ..Default::default() } });
        let accepted = self.accepted(&socket);
        (socket, accepted)
    }

    /// Connects a socket with exactly this handshake; returns it.
    pub fn connect_handshake(&mut self, name: &str, handshake: Handshake) -> SocketId {
        let socket = self.new_socket(name);
        self.input(Input::Connect { socket: socket.clone(), handshake });
        socket
    }

    pub fn accepted(&self, socket: &SocketId) -> bool {
        self.log.iter().any(|e| matches!(e, Effect::AcceptConnection { socket: s, .. } if s == socket))
    }

    /// The code and correlation id the socket's handshake was refused with.
    pub fn rejection(&self, socket: &SocketId) -> Option<(&'static str, CorrelationId)> {
        self.log.iter().find_map(|e| match e {
            Effect::RejectConnection { socket: s, error, correlation_id } if s == socket => Some((error.code(), correlation_id.clone())),
            _ => None,
        })
    }

    pub fn connect(&mut self, user: &str) -> SocketId {
        let (socket, accepted) = self.connect_with(user, json!({}));
        assert!(accepted, "{user} could not connect");
        socket
    }

    /// Connects with `autoJoin: true`.
    pub fn connect_auto(&mut self, user: &str) -> SocketId {
        let (socket, accepted) = self.connect_with(user, json!({ "autoJoin": true }));
        assert!(accepted, "{user} could not connect");
        socket
    }

    /// The socket goes away; as in Socket.IO, it leaves every room first.
    pub fn disconnect(&mut self, socket: &SocketId) {
        self.owners.remove(socket);
        for members in self.rooms.values_mut() {
            members.remove(socket);
        }
        self.input(Input::Disconnect { socket: socket.clone() });
    }

    /// Sends an event with a callback and returns its ack.
    pub fn call(&mut self, socket: &SocketId, event: &str, payload: Value) -> Value {
        self.next_ack += 1;
        let ack = AckId(self.next_ack);
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: Some(ack) });
        self.ack_of(socket, ack).unwrap_or_else(|| panic!("no ack for {event}"))
    }

    /// Sends an event with a callback without waiting for it; see [`World::ack_of`].
    pub fn start(&mut self, socket: &SocketId, event: &str, payload: Value) -> AckId {
        self.next_ack += 1;
        let ack = AckId(self.next_ack);
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: Some(ack) });
        ack
    }

    /// Sends an event with a callback and returns its ack, if any came.
    pub fn try_call(&mut self, socket: &SocketId, event: &str, payload: Value) -> Option<Value> {
        self.next_ack += 1;
        let ack = AckId(self.next_ack);
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: Some(ack) });
        self.ack_of(socket, ack)
    }

    /// Sends an event without waiting for an answer.
    pub fn send_event(&mut self, socket: &SocketId, event: &str, payload: Value) {
        self.input(Input::Event { socket: socket.clone(), event: event.into(), payload, ack: None });
    }

    pub fn ack_of(&self, socket: &SocketId, ack: AckId) -> Option<Value> {
        self.log.iter().find_map(|e| match e {
            Effect::Ack { socket: s, ack: a, reply } if s == socket && *a == ack => Some(reply.to_value()),
            _ => None,
        })
    }

    /// `message:send` with `clientId` `uuid(n)`; returns the ack.
    pub fn send(&mut self, socket: &SocketId, chat: &str, body: &str, n: u32) -> Value {
        self.call(socket, "message:send", json!({ "chatId": chat, "body": body, "clientId": uuid(n) }))
    }

    /// Creates a group of `creator` and `others`, returning its id.
    pub fn group(&mut self, creator: &SocketId, others: &[&str]) -> String {
        let ack = self.call(creator, "chat:create", json!({ "kind": "group", "memberIds": others, "title": "team" }));
        assert_eq!(ack["ok"], true, "{ack}");
        ack["data"]["chat"]["id"].as_str().unwrap().to_string()
    }

    /// Creates (or finds) the DM of the socket's user with `other`, returning its id.
    pub fn dm(&mut self, socket: &SocketId, other: &str) -> String {
        let ack = self.call(socket, "chat:create", json!({ "kind": "dm", "memberIds": [other] }));
        assert_eq!(ack["ok"], true, "{ack}");
        ack["data"]["chat"]["id"].as_str().unwrap().to_string()
    }

    /// `room:join`, asserting it succeeded.
    pub fn join(&mut self, socket: &SocketId, chat: &str) {
        let ack = self.call(socket, "room:join", json!({ "chatId": chat }));
        assert_eq!(ack["ok"], true, "{ack}");
    }

    /// An HTTP call with this `Authorization` header; returns (status, body).
    pub fn http_as(&mut self, authorization: Option<String>, call: HttpRequest) -> (u16, Value) {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.input(Input::Http { request, authorization, call });
        self.log
            .iter()
            .find_map(|e| match e {
                Effect::HttpRespond { request: r, status, body } if *r == request => Some((*status, body.clone())),
                _ => None,
            })
            .expect("no HTTP response")
    }

    /// An HTTP call made by `user` with a valid token; returns (status, body).
    pub fn http(&mut self, user: &str, call: HttpRequest) -> (u16, Value) {
        let authorization = Some(self.bearer(user));
        self.http_as(authorization, call)
    }

    /// Emits so far of `event` to a room or socket, as payloads.
    pub fn emits(&self, event: ServerEvent) -> Vec<(Target, Option<UserId>, Value)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::Emit { to, except_user, event: ev, payload } if *ev == event => Some((to.clone(), except_user.clone(), payload.to_value())),
                _ => None,
            })
            .collect()
    }

    pub fn emits_to_room(&self, event: ServerEvent, room: &Room) -> Vec<Value> {
        self.emits(event).into_iter().filter(|(to, _, _)| *to == Target::Room(room.clone())).map(|(_, _, p)| p).collect()
    }

    /// What `socket` received of `event`, in order.
    pub fn received(&self, socket: &SocketId, event: ServerEvent) -> Vec<Value> {
        self.delivered
            .get(socket)
            .map(|all| all.iter().filter(|(e, _)| *e == event).map(|(_, p)| p.clone()).collect())
            .unwrap_or_default()
    }

    /// Everything `socket` received, in order.
    pub fn received_all(&self, socket: &SocketId) -> Vec<(ServerEvent, Value)> {
        self.delivered.get(socket).cloned().unwrap_or_default()
    }

    /// A position in the log, for looking only at what comes after it.
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    /// Effects logged since `mark`.
    pub fn since(&self, mark: usize) -> &[Effect] {
        &self.log[mark..]
    }

    /// Emits logged since `mark` (any event).
    pub fn emits_since(&self, mark: usize) -> Vec<&Effect> {
        self.since(mark).iter().filter(|e| matches!(e, Effect::Emit { .. })).collect()
    }

    /// True when some log line carries `correlation_id`.
    pub fn logged(&self, correlation_id: &str) -> bool {
        self.log.iter().any(|e| matches!(e, Effect::Log { correlation_id: Some(id), .. } if id.as_str() == correlation_id))
    }

    /// Sockets in a room now, as the host sees it.
    pub fn in_room(&self, room: &Room) -> BTreeSet<SocketId> {
        self.rooms.get(room).cloned().unwrap_or_default()
    }

    pub fn clear(&mut self) {
        self.log.clear();
        self.delivered.clear();
    }
}

pub fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

pub fn chat_room(chat: &str) -> Room {
    Room::Chat(ChatId::from(chat))
}

pub fn user_room(user: &str) -> Room {
    Room::User(UserId::from(user))
}

/// The `data` of a successful ack (panics with the ack otherwise).
pub fn data(ack: &Value) -> Value {
    assert_eq!(ack["ok"], true, "expected success, got {ack}");
    ack.get("data").cloned().unwrap_or(Value::Null)
}

/// The error code of a failed ack (panics with the ack otherwise).
pub fn code(ack: &Value) -> String {
    assert_eq!(ack["ok"], false, "expected failure, got {ack}");
    ack["error"].as_str().unwrap_or_else(|| panic!("no error code in {ack}")).to_string()
}

/// The ISO 8601 text of `T0 + ms`.
pub fn at(ms: u64) -> String {
    chat_core::time::iso8601(T0.plus(ms))
}
