//! The simulated world: the engine, storage with faults, a clock, and the host's part
//! (sockets, Socket.IO rooms, acknowledgement callbacks, HTTP requests), driven one
//! [`Step`] at a time. Everything the engine does passes through the [`Checker`].

mod actions;

use crate::action::{Fault, Step};
use crate::client::{Call, CallKind, Conn, HttpCall, UserModel};
use crate::config::SimConfig;
use crate::faults::{is_write, FaultyStore, PendingOp};
use crate::invariants::Checker;
use crate::rng::{derive, Rng, SeededIds};
use crate::stats::Stats;
use crate::trace::Trace;
use chat_core::auth::sign_token;
use chat_core::effect::{Effect, Room, Target};
use chat_core::ids::{ChatId, Millis, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{Chat, ChatKind};
use chat_core::storage::{StorageOp, StorageResult, Write};
use chat_core::{Engine, Input};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const SECRET: &[u8] = b"simulation-secret";
pub const T0: Millis = Millis(1_700_000_000_000);

/// Most timers fired by one clock move before the engine is deemed stuck.
const MAX_TIMERS_PER_ADVANCE: usize = 10_000;

/// A socket the host has open (handshake sent, not yet closed).
struct OpenSocket {
    user: usize,
    device: usize,
    accepted: bool,
    /// The code the handshake must be refused with, if it must be.
    refusal: Option<&'static str>,
    /// Other sockets of the user open (connected or in a handshake) when this handshake came.
    others_at_connect: usize,
}

pub struct World {
    pub cfg: SimConfig,
    engine: Engine,
    pub storage: FaultyStore,
    pub now: Millis,
    pub users: Vec<UserModel>,
    /// Every chat storage holds, in the order it was stored.
    pub chats: Vec<ChatId>,
    open: BTreeMap<SocketId, OpenSocket>,
    /// Socket.IO rooms: each socket in it, with the effect counter when it joined.
    rooms: BTreeMap<Room, BTreeMap<SocketId, u64>>,
    socket_rooms: BTreeMap<SocketId, BTreeSet<Room>>,
    calls: BTreeMap<u64, Call>,
    requests: BTreeMap<u64, HttpCall>,
    /// Results to deliver before the step ends, with their fault.
    immediate: VecDeque<(PendingOp, Fault)>,
    /// Counts every effect; orders room joins against storage requests.
    mark: u64,
    next_ack: u64,
    next_request: u64,
    next_socket: u64,
    crashes: u64,
    /// Deliver everything at once, without faults (the end of a run).
    calm: bool,
    /// (chat, user) typing when their last socket left the chat's room: a stop is due.
    stop_due: BTreeSet<(ChatId, UserId)>,
    /// Sockets accepted in the current call.
    accepted_now: Vec<SocketId>,
    /// Sends made without a callback since the last crash: (user, clientId).
    ackless: BTreeSet<(usize, String)>,
    /// `presence:snapshot`s each open socket received.
    snapshots: BTreeMap<SocketId, u32>,
    step_rng: Rng,
    pub step_no: usize,
    pub checker: Checker,
    pub trace: Trace,
    pub stats: Stats,
}

impl World {
    pub fn new(cfg: SimConfig, trace: Trace) -> Self {
        let mut setup = Rng::new(derive(cfg.seed, 0x5E7));
        let users: Vec<UserModel> = (0..cfg.users)
            .map(|i| {
                let id = UserId::new(format!("u{i}"));
                let token = sign_token(SECRET, &id, false, T0.plus(10 * 365 * 86_400_000));
                UserModel::new(id, token, cfg.devices)
            })
            .collect();
        let mut world = Self {
            engine: Engine::new(cfg.limits.clone(), SECRET.to_vec(), Box::new(SeededIds(Rng::new(derive(cfg.seed, 0x1D))))),
            storage: FaultyStore::new(MemoryStore::new()),
            now: T0,
            users,
            chats: Vec::new(),
            open: BTreeMap::new(),
            rooms: BTreeMap::new(),
            socket_rooms: BTreeMap::new(),
            calls: BTreeMap::new(),
            requests: BTreeMap::new(),
            immediate: VecDeque::new(),
            mark: 0,
            next_ack: 0,
            next_request: 0,
            next_socket: 0,
            crashes: 0,
            calm: false,
            stop_due: BTreeSet::new(),
            ackless: BTreeSet::new(),
            accepted_now: Vec::new(),
            snapshots: BTreeMap::new(),
            step_rng: Rng::new(0),
            step_no: 0,
            checker: Checker::new(cfg.limits.clone()),
            trace,
            stats: Stats::default(),
            cfg,
        };
        // Storage already holds some groups when the host starts.
        for g in 0..world.cfg.initial_groups {
            let members: Vec<UserId> =
                world.users.iter().filter(|_| setup.chance(700)).map(|u| u.id.clone()).collect::<Vec<_>>();
            let creator = world.users[setup.index(world.users.len())].id.clone();
            let mut member_ids = vec![creator.clone()];
            member_ids.extend(members.into_iter().filter(|m| *m != creator));
            let chat = Chat {
                id: ChatId::new(format!("00000000-0000-7000-8000-{g:012}")),
                kind: ChatKind::Group,
                title: Some(format!("group {g}")),
                member_ids,
                created_by: creator,
                created_at: T0,
                updated_at: T0,
            };
            let request = StorageOp::CreateChat { chat, dm_key: None };
            let result = world.storage.store.apply(&request);
            world.applied(&request, &result);
        }
        world
    }

    // --- driving --------------------------------------------------------------------

    /// Runs one step and its consequences.
    pub fn step(&mut self, step: &Step) {
        self.step_rng = Rng::new(step.salt);
        self.checker.begin_step(self.step_no, self.now);
        let no = self.step_no;
        self.trace.line(|| format!("#{no} @{} {step:?}", self.now.0 - T0.0));
        self.stats.steps += 1;
        self.act(&step.action);
        self.settle();
        self.checker.end_step(self.now);
        self.step_no += 1;
    }

    /// Delivers everything in flight, fires every timer, and checks the end state; then
    /// everyone disconnects, and the engine must end up holding nothing.
    pub fn quiesce(&mut self) {
        self.calm = true;
        self.checker.begin_step(self.step_no, self.now);
        self.trace.line(|| "quiescence".to_string());
        self.settle_all();
        self.end_checks();
        if self.checker.failed() {
            return;
        }
        self.trace.line(|| "everyone disconnects".to_string());
        let sockets: Vec<SocketId> = self.open.keys().cloned().collect();
        for socket in sockets {
            self.close(&socket);
            self.feed(Input::Disconnect { socket });
            self.settle();
        }
        self.settle_all();
        self.end_checks();
        let (chats, users) = self.engine.partitions();
        if !self.checker.failed() && (chats, users) != (0, 0) {
            self.checker.fail("partitions-leak", || format!("{chats} chat and {users} user partitions left in memory with nobody connected"));
        }
    }

    /// Delivers every result and fires every timer until nothing is left to happen.
    fn settle_all(&mut self) {
        let horizon = self.cfg.limits.typing_timeout_ms.max(self.cfg.limits.presence_throttle_ms) + 1;
        for _ in 0..1_000 {
            if self.checker.failed() {
                return;
            }
            while !self.storage.pending.is_empty() && !self.checker.failed() {
                let op = self.storage.take(0);
                self.deliver(op, Fault::None);
                self.settle();
            }
            match self.engine.poll_timeout() {
                Some(at) => self.advance(at.since(self.now).max(1)),
                None => {
                    // Past every window, so late obligations show.
                    self.advance(horizon);
                    self.checker.end_step(self.now);
                    if self.engine.poll_timeout().is_none() && self.storage.pending.is_empty() {
                        return;
                    }
                }
            }
            self.checker.end_step(self.now);
        }
        self.checker.fail("no-quiescence", || "timers or storage still busy after 1000 rounds".to_string());
    }

    fn end_checks(&mut self) {
        if self.checker.failed() {
            return;
        }
        let online: BTreeSet<UserId> =
            self.open.values().filter(|s| s.accepted).map(|s| self.users[s.user].id.clone()).collect();
        self.checker.quiescence(|user| online.contains(user), &self.storage.store);
        // Every callback of a connected socket was called; every request answered.
        if let Some((ack, call)) = self.calls.iter().find(|(_, call)| {
            !matches!(call.kind, CallKind::Typing) && self.open.get(&call.socket).is_some_and(|s| s.accepted)
        }) {
            let detail = format!("ack {ack} of {:?} on connected {} never answered", call.kind, call.socket);
            self.checker.fail("ack-missing", || detail);
        }
        if let Some((request, call)) = self.requests.iter().next() {
            let detail = format!("HTTP request {request} ({:?}) never answered", call.kind);
            self.checker.fail("http-missing", || detail);
        }
        // §1: every handshake is answered (let in, or refused).
        if let Some((socket, _)) = self.open.iter().find(|(_, open)| !open.accepted) {
            let detail = format!("{socket}'s handshake never answered");
            self.checker.fail("handshake-unanswered", || detail);
        }
        // §4: every connected socket got its presence:snapshot.
        if let Some((socket, _)) = self.open.iter().find(|(socket, open)| open.accepted && !self.snapshots.contains_key(*socket)) {
            let detail = format!("{socket} connected but never got presence:snapshot");
            self.checker.fail("snapshot-missing", || detail);
        }
    }

    // --- the engine ---------------------------------------------------------------------

    fn feed(&mut self, input: Input) {
        self.trace.debug("  > ", &input);
        self.checker.begin_call(self.now);
        self.engine.handle(self.now, input);
        self.drain();
    }

    /// Carries out what the engine asked, in order.
    fn drain(&mut self) {
        let effects: Vec<Effect> = self.engine.drain_effects().collect();
        for effect in effects {
            self.mark += 1;
            self.trace.debug("    ", &effect);
            self.effect(effect);
        }
        // §1: a connected socket is in its user's room.
        for socket in std::mem::take(&mut self.accepted_now) {
            if let Some(open) = self.open.get(&socket) {
                let room = Room::User(self.users[open.user].id.clone());
                if !self.rooms.get(&room).is_some_and(|members| members.contains_key(&socket)) {
                    self.checker.fail("user-room-missing", || format!("{socket} accepted without joining {room}"));
                }
            }
        }
        // §6: a user typing when their last socket left a chat's room stops typing there,
        // in that step (or, when the chat is reading storage, once it has read it).
        for (chat, user) in std::mem::take(&mut self.stop_due) {
            if !self.checker.is_typing(&chat, &user) || self.in_room(&chat, &user) {
                continue;
            }
            if self.loading(&chat) {
                self.stop_due.insert((chat, user));
            } else {
                self.checker.fail("typing-not-stopped-on-leave", || format!("{user}'s last socket left chat:{chat}; typing not stopped"));
            }
        }
        self.checker.end_call();
    }

    /// Sends of user `u` that may still be on their way: unanswered callbacks, and sends
    /// without a callback that are not stored (they may have failed: counted anyway).
    fn sends_in_flight(&mut self, u: usize) -> usize {
        let id = self.users[u].id.clone();
        let checker = &self.checker;
        self.ackless.retain(|(user, client_id)| *user != u || checker.stored_pair(&id, client_id).is_none());
        let unanswered = self.calls.values().filter(|call| call.user == u && matches!(call.kind, CallKind::Send { .. })).count();
        unanswered + self.ackless.iter().filter(|(user, _)| *user == u).count()
    }

    /// Sockets of user `u` open now (connected, or in a handshake with a good token).
    fn open_sockets(&self, u: usize) -> usize {
        self.open.values().filter(|o| o.user == u && o.refusal.is_none()).count()
    }

    /// Whether a socket of `user` is in the room of `chat`.
    fn in_room(&self, chat: &ChatId, user: &UserId) -> bool {
        let room = Room::Chat(chat.clone());
        self.rooms.get(&room).is_some_and(|members| members.keys().any(|socket| self.users[self.open[socket].user].id == *user))
    }

    /// A socket of `user` left the room of `chat`.
    fn left_room(&mut self, chat: ChatId, user: UserId) {
        if !self.in_room(&chat, &user) && self.checker.is_typing(&chat, &user) {
            self.stop_due.insert((chat, user));
        }
    }

    /// Whether storage is reading (or creating) `chat` for the engine right now.
    fn loading(&self, chat: &ChatId) -> bool {
        let reads = |request: &StorageOp| match request {
            StorageOp::LoadChat { chat: c } => c == chat,
            StorageOp::CreateChat { chat: c, .. } => c.id == *chat,
            _ => false,
        };
        self.storage.pending.iter().any(|p| reads(&p.request)) || self.immediate.iter().any(|(p, _)| reads(&p.request))
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::AcceptConnection { socket, user } => {
                if let Some(open) = self.open.get_mut(&socket) {
                    if self.users[open.user].id != user {
                        return self.checker.fail("accept-wrong-user", || format!("{socket} accepted as {user}"));
                    }
                    if let Some(refusal) = open.refusal {
                        return self.checker.fail("bad-handshake-accepted", || format!("{socket} accepted; expected {refusal}"));
                    }
                    open.accepted = true;
                    self.accepted_now.push(socket.clone());
                    self.users[open.user].devices[open.device].conn = Conn::Online(socket);
                }
            }
            Effect::RejectConnection { socket, error, correlation_id } => {
                self.checker.rejected(correlation_id.as_str(), error.code());
                *self.stats.codes.entry(error.code()).or_insert(0) += 1;
                if let Some(open) = self.open.get(&socket) {
                    if open.accepted {
                        return self.checker.fail("reject-after-accept", || format!("{socket} refused after it was accepted"));
                    }
                    let code = error.code();
                    // Sockets of the user at once, when this handshake came.
                    let connected = open.others_at_connect;
                    let fine = match open.refusal {
                        Some(refusal) => code == refusal,
                        None => code == "INTERNAL" || (code == "TOO_MANY_CONNECTIONS" && connected >= self.cfg.limits.max_sockets_per_user),
                    };
                    if !fine {
                        let expected = open.refusal;
                        return self.checker.fail("handshake-refusal", || {
                            format!("{socket} refused {code} (expected {expected:?}) with {connected} sockets connected")
                        });
                    }
                    self.close(&socket);
                }
            }
            Effect::Ack { socket, ack, reply } => {
                let Some(call) = self.calls.remove(&ack.0) else {
                    return self.checker.fail("ack-unknown", || format!("ack {} on {socket}: no such callback waiting", ack.0));
                };
                if call.socket != socket {
                    return self.checker.fail("ack-wrong-socket", || format!("ack {} for {} sent to {socket}", ack.0, call.socket));
                }
                let user = self.users[call.user].id.clone();
                let value = reply.to_value();
                self.checker.ack(&call, &user, &value, &self.storage.store);
                let code = value["error"].as_str().unwrap_or("ok");
                if code != reply.code() {
                    let counted = reply.code().to_owned();
                    return self.checker.fail("ack-code", || format!("ack {} says {code} but is counted as {counted}", ack.0));
                }
                if code == "RATE_LIMITED" {
                    let in_flight = self.sends_in_flight(call.user);
                    self.checker.rate_limited(&user, in_flight);
                }
                if code == "ok" && self.open.contains_key(&socket) {
                    let (chat, want_in) = match &call.kind {
                        CallKind::Join { chat } => (Some(chat), true),
                        CallKind::Leave { chat } => (Some(chat), false),
                        _ => (None, false),
                    };
                    if let Some(chat) = chat {
                        let room = Room::Chat(chat.clone());
                        let is_in = self.rooms.get(&room).is_some_and(|members| members.contains_key(&socket));
                        if is_in != want_in {
                            return self.checker.fail("room-ack-mismatch", || format!("{socket} acked ok for {:?} but in {room}: {is_in}", call.kind));
                        }
                    }
                }
                *self.stats.codes.entry(code_name(code)).or_insert(0) += 1;
                if self.open.contains_key(&socket) {
                    if let CallKind::Send { spec, .. } = call.kind {
                        let client = &mut self.users[call.user];
                        match code {
                            "ok" => client.acked(spec),
                            "INTERNAL" | "RATE_LIMITED" => client.unsure(spec),
                            _ => client.forget(&spec),
                        }
                    }
                }
            }
            Effect::HttpRespond { request, status, body } => {
                let Some(call) = self.requests.remove(&request.0) else {
                    return self.checker.fail("http-unknown", || format!("response to unknown request {}", request.0));
                };
                let user = self.users[call.user].id.clone();
                self.checker.http(&call, &user, status, &body, &self.storage.store);
                let code = body["error"].as_str().unwrap_or("ok");
                *self.stats.codes.entry(code_name(code)).or_insert(0) += 1;
            }
            Effect::Emit { to, except_user, event, payload } => {
                let recipients: Vec<(SocketId, UserId)> = match &to {
                    Target::Room(room) => self
                        .rooms
                        .get(room)
                        .into_iter()
                        .flat_map(|members| members.keys())
                        .map(|socket| (socket.clone(), self.users[self.open[socket].user].id.clone()))
                        .filter(|(_, user)| Some(user) != except_user.as_ref())
                        .collect(),
                    Target::Socket(socket) => match self.open.get(socket) {
                        Some(open) if open.accepted => vec![(socket.clone(), self.users[open.user].id.clone())],
                        _ => Vec::new(),
                    },
                };
                self.stats.deliveries += recipients.len() as u64;
                if event == chat_core::effect::ServerEvent::PresenceSnapshot {
                    for (socket, _) in &recipients {
                        let count = self.snapshots.entry(socket.clone()).or_insert(0);
                        *count += 1;
                        if *count > 1 {
                            return self.checker.fail("snapshot-twice", || format!("{socket} got a second presence:snapshot"));
                        }
                    }
                }
                *self.stats.events.entry(event.name()).or_insert(0) += 1;
                // The checker reads fields; the simulation pays for parsing, the core does not.
                let payload = payload.to_value();
                self.checker.emit(&to, except_user.as_ref(), event, &payload, &recipients, &self.storage.store);
                if event == chat_core::effect::ServerEvent::TypingUpdate && payload["state"] == "stop" {
                    let chat = ChatId::from(payload["chatId"].as_str().unwrap_or_default());
                    self.stop_due.remove(&(chat, UserId::from(payload["userId"].as_str().unwrap_or_default())));
                }
            }
            Effect::JoinRoom { socket, room } => {
                // A socket joins rooms from its handshake on (autoJoin rooms come before
                // `AcceptConnection`); one the host closed already joins nothing.
                if let Some(open) = self.open.get(&socket) {
                    if let Room::User(owner) = &room {
                        if *owner != self.users[open.user].id {
                            return self.checker.fail("joined-other-user-room", || format!("{socket} joined {room}"));
                        }
                    }
                    let mark = self.mark;
                    self.rooms.entry(room.clone()).or_default().entry(socket.clone()).or_insert(mark);
                    self.socket_rooms.entry(socket).or_default().insert(room);
                }
            }
            Effect::LeaveRoom { socket, room } => {
                if let Some(members) = self.rooms.get_mut(&room) {
                    members.remove(&socket);
                }
                if let Some(rooms) = self.socket_rooms.get_mut(&socket) {
                    if rooms.remove(&room) {
                        if let (Room::Chat(chat), Some(open)) = (&room, self.open.get(&socket)) {
                            self.left_room(chat.clone(), self.users[open.user].id.clone());
                        }
                    }
                }
            }
            Effect::Storage { op, request } => {
                let pending = PendingOp { op, request, issued_mark: self.mark, issued_at: self.now };
                if !self.calm && self.step_rng.chance(self.cfg.faults.defer) {
                    self.storage.pending.push(pending);
                } else {
                    let fault = if self.calm {
                        Fault::None
                    } else {
                        FaultyStore::choose_fault(&mut self.step_rng, &self.cfg.faults, &pending.request)
                    };
                    self.immediate.push_back((pending, fault));
                }
            }
            Effect::Log { correlation_id, .. } => {
                if let Some(cid) = correlation_id {
                    self.checker.log(cid.as_str());
                }
            }
        }
    }

    /// Delivers the results due at once, one engine call each.
    fn settle(&mut self) {
        while let Some((op, fault)) = self.immediate.pop_front() {
            if self.checker.failed() {
                return;
            }
            self.deliver(op, fault);
        }
    }

    /// One storage result reaches the engine (or the host dies first).
    fn deliver(&mut self, pending: PendingOp, fault: Fault) {
        let delivery = self.storage.deliver(&pending.request, fault);
        self.trace.line(|| format!("  storage {:?} {fault:?} applied={} crash={}", pending.op, delivery.applied, delivery.crash));
        match fault {
            Fault::Fail => self.stats.failed_ops += 1,
            Fault::LostCommit => self.stats.lost_commits += 1,
            Fault::None => {}
        }
        if delivery.applied || (fault == Fault::None && is_write(&pending.request)) {
            self.applied(&pending.request, &delivery.result);
        }
        if delivery.crash {
            return self.crash();
        }
        self.checker.loading_done(&pending.request, self.now);
        // (5) Sockets in the room since before the commit was asked for get its messages.
        let watch: Vec<(SocketId, u64)> = match (&pending.request, &delivery.result) {
            (StorageOp::Commit { chat, .. }, StorageResult::Committed) => self
                .rooms
                .get(&Room::Chat(chat.clone()))
                .into_iter()
                .flat_map(|members| members.iter())
                .filter(|(_, joined)| **joined < pending.issued_mark)
                .map(|(socket, joined)| (socket.clone(), *joined))
                .collect(),
            _ => Vec::new(),
        };
        let committed = matches!(delivery.result, StorageResult::Committed | StorageResult::Created { existing: None });
        self.feed(Input::Storage { op: pending.op, result: delivery.result });
        let changed = match &pending.request {
            StorageOp::Commit { chat, writes } if committed && writes.iter().any(|w| matches!(w, Write::Chat(_))) => Some(chat),
            StorageOp::CreateChat { chat, .. } if committed => Some(&chat.id),
            _ => None,
        };
        if let Some(chat) = changed {
            self.checker.chat_update_reached_everyone(chat);
            // §9: the removed member's sockets leave chat:<chatId> at once.
            let room = Room::Chat(chat.clone());
            for user in self.checker.removed_from(chat) {
                if self.in_room(chat, &user) {
                    self.checker.fail("removed-member-in-room", || format!("{user} removed from {chat}, a socket still in {room}"));
                }
            }
        }
        if let StorageOp::Commit { chat, writes } = &pending.request {
            let room = Room::Chat(chat.clone());
            for (socket, joined) in watch {
                if self.rooms.get(&room).and_then(|m| m.get(&socket)) != Some(&joined) {
                    continue;
                }
                for write in writes {
                    if let Write::Message(message) = write {
                        if !self.checker.received(&socket, chat, message.seq.0) {
                            let detail = format!("{socket}, in {room} since before the commit, missed seq {}", message.seq.0);
                            self.checker.fail("message-missed", || detail);
                        }
                    }
                }
            }
        }
    }

    /// A write is in storage: the chat list and the checker's indexes learn it.
    fn applied(&mut self, request: &StorageOp, result: &StorageResult) {
        if let (StorageOp::CreateChat { chat, .. }, StorageResult::Created { existing: None }) = (request, result) {
            self.chats.push(chat.id.clone());
        }
        self.checker.applied(request, result, &self.storage.store);
    }

    /// Moves the clock by `ms`, firing every timer due on the way.
    fn advance(&mut self, ms: u64) {
        let target = self.now.plus(ms);
        let mut fired = 0;
        while let Some(at) = self.engine.poll_timeout() {
            if at > target || self.checker.failed() {
                break;
            }
            fired += 1;
            if fired > MAX_TIMERS_PER_ADVANCE {
                return self.checker.fail("timer-loop", || format!("timers keep firing at {at:?}"));
            }
            self.now = self.now.max(at);
            self.trace.line(|| format!("  timeout @{}", self.now.0 - T0.0));
            self.checker.begin_call(self.now);
            self.engine.handle_timeout(self.now);
            self.drain();
            self.settle();
        }
        self.now = self.now.max(target);
    }

    /// The host dies and restarts: memory is gone, storage stays. A write in flight may
    /// or may not have reached storage.
    fn crash(&mut self) {
        self.stats.crashes += 1;
        self.crashes += 1;
        self.trace.line(|| "  CRASH".to_string());
        let in_flight: Vec<PendingOp> =
            self.storage.pending.drain(..).chain(self.immediate.drain(..).map(|(op, _)| op)).collect();
        for pending in in_flight {
            if is_write(&pending.request) && self.step_rng.chance(500) {
                let result = self.storage.store.apply(&pending.request);
                self.stats.lost_commits += 1;
                self.applied(&pending.request, &result);
            }
        }
        let ids = SeededIds(Rng::new(derive(self.cfg.seed, 0x1D + self.crashes)));
        self.engine = Engine::new(self.cfg.limits.clone(), SECRET.to_vec(), Box::new(ids));
        let sockets: Vec<SocketId> = self.open.keys().cloned().collect();
        for socket in sockets {
            self.close(&socket);
        }
        self.calls.clear();
        self.requests.clear();
        self.rooms.clear();
        self.socket_rooms.clear();
        self.stop_due.clear();
        self.ackless.clear();
        self.accepted_now.clear();
        self.checker.crashed();
    }
}

fn code_name(code: &str) -> &'static str {
    match code {
        "ok" => "ok",
        "VALIDATION_ERROR" => "VALIDATION_ERROR",
        "UNAUTHORIZED" => "UNAUTHORIZED",
        "FORBIDDEN" => "FORBIDDEN",
        "NOT_FOUND" => "NOT_FOUND",
        "RATE_LIMITED" => "RATE_LIMITED",
        "PAYLOAD_TOO_LARGE" => "PAYLOAD_TOO_LARGE",
        "INTERNAL" => "INTERNAL",
        "TOO_MANY_CONNECTIONS" => "TOO_MANY_CONNECTIONS",
        _ => "other",
    }
}
