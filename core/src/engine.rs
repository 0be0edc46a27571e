//! One process's worth of partitions, with the messages between them routed in memory.
//!
//! In the manner of `quinn-proto`: the host feeds [`Input`]s and timeouts in, each with the
//! time, and drains [`Effect`]s out; [`Engine::poll_timeout`] says when to call back.

use crate::auth::{authenticate_bearer, Handshake};
use crate::chat::ChatPartition;
use crate::command::{HttpRequest, Principal};
use crate::config::Limits;
use crate::effect::{http_error_json, Effect, LogLevel};
use crate::error::ChatError;
use crate::ids::{AckId, ChatId, IdMaker, IdSource, Millis, OpId, RequestId, SocketId, UserId};
use crate::placement::{NodeId, PartitionKey as Key, Placement};
use crate::route::{chat_arrival, connect_envelope, event_envelope, event_reply, http_envelope, user_arrival, ChatArrival, ChatMsg, Ctx, Envelope, Outbox, Reply, UserArrival, UserMsg};
use crate::storage::StorageResult;
use crate::user::UserPartition;
use crate::validate::parse_http;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Something that happened in the world.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A socket's handshake arrived; the core authenticates it and answers with
    /// [`Effect::AcceptConnection`] or [`Effect::RejectConnection`].
    Connect { socket: SocketId, handshake: Handshake },
    Disconnect { socket: SocketId },
    /// A client event with its raw payload.
    Event { socket: SocketId, event: String, payload: Value, ack: Option<AckId> },
    /// An HTTP call of PROTOCOL.md §9, with its `Authorization` header.
    Http { request: RequestId, authorization: Option<String>, call: HttpRequest },
    /// An HTTP call the host could not even read (body too large, not JSON): the core
    /// answers it with `error`, a correlation id and a log line like any other failure.
    HttpRejected { request: RequestId, error: ChatError },
    /// A client event the host would not queue: its sender already has too many events
    /// waiting (see [`crate::intake`]). Answered `RATE_LIMITED`; `typing:*` never answers.
    Overloaded { socket: SocketId, event: String, ack: Option<AckId> },
    /// The result of an [`Effect::Storage`].
    Storage { op: OpId, result: StorageResult },
    /// A message from a partition on another process (cluster hosts). The sender thought
    /// this process owns the partition; if this process's view disagrees, one of the two
    /// views is about to change: the message waits [`MISROUTED_HOLD_MS`] for this view to
    /// catch up, then goes on to the owner this view names, marked `forwarded`. A forwarded
    /// message is handled where it arrives, so views that disagree cannot bounce it forever.
    Mail { envelope: Envelope, forwarded: bool },
}

/// How long a message for a partition this process does not own (in its view) waits for
/// the view to change before it goes on: longer than processes take to see the same
/// membership change (cluster hosts poll it every 500 ms).
pub const MISROUTED_HOLD_MS: u64 = 1_500;

/// A socket this process holds, as [`Engine::change_placement`] needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldSocket {
    pub socket: SocketId,
    pub user: UserId,
    /// The chats whose room the socket is in.
    pub chats: Vec<ChatId>,
}

/// A message for a partition that another process owns (see [`Engine::poll_remote`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    pub to: NodeId,
    pub envelope: Envelope,
    pub forwarded: bool,
}

fn key_of(envelope: &Envelope) -> Key {
    match envelope {
        Envelope::ToChat(chat, _) => Key::Chat(chat.clone()),
        Envelope::ToUser(user, _) => Key::User(user.clone()),
    }
}

pub struct Engine {
    limits: Limits,
    secret: Vec<u8>,
    ids: IdMaker,
    chats: BTreeMap<ChatId, ChatPartition>,
    /// Boxed: a partition is hundreds of bytes, and a B-tree node has room for eleven
    /// entries whether or not they are used; boxed, a node's spare room costs a pointer
    /// each, and moving a partition in and out (see [`Engine::with_user`]) copies one.
    users: BTreeMap<UserId, Box<UserPartition>>,
    /// Whose each connected (or connecting) socket is.
    sockets: BTreeMap<SocketId, UserId>,
    /// Which partition waits for each storage result.
    ops: BTreeMap<OpId, Key>,
    next_op: u64,
    deadlines: BTreeMap<Key, Millis>,
    timers: BTreeSet<(Millis, Key)>,
    mail: VecDeque<Envelope>,
    effects: VecDeque<Effect>,
    placement: Placement,
    remote: VecDeque<Remote>,
    /// Mail that arrived for partitions this process does not own, with when it arrived.
    misrouted: VecDeque<(Millis, Envelope)>,
}

impl Engine {
    pub fn new(limits: Limits, jwt_secret: Vec<u8>, ids: Box<dyn IdSource + Send>) -> Self {
        Self {
            limits,
            secret: jwt_secret,
            ids: IdMaker::new(ids),
            chats: BTreeMap::new(),
            users: BTreeMap::new(),
            sockets: BTreeMap::new(),
            ops: BTreeMap::new(),
            next_op: 0,
            deadlines: BTreeMap::new(),
            timers: BTreeSet::new(),
            mail: VecDeque::new(),
            effects: VecDeque::new(),
            placement: Placement::solo(),
            remote: VecDeque::new(),
            misrouted: VecDeque::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Connect { socket, handshake } => self.connect(now, socket, handshake),
            Input::Disconnect { socket } => {
                if let Some(user) = self.sockets.remove(&socket) {
                    self.mail.push_back(Envelope::ToUser(user, UserMsg::Disconnect { socket }));
                }
            }
            Input::Event { socket, event, payload, ack } => self.event(now, socket, event, payload, ack),
            Input::Http { request, authorization, call } => self.http(now, request, authorization, call),
            Input::HttpRejected { request, error } => self.reply_here(now, &Reply::Http { request }, error),
            Input::Overloaded { socket, event, ack } => {
                self.reply_here(now, &event_reply(socket, event, ack), crate::intake::overload_error());
            }
            Input::Mail { envelope, forwarded } => {
                if forwarded || self.placement.owns(&key_of(&envelope)) {
                    self.deliver(now, envelope);
                } else {
                    self.misrouted.push_back((now, envelope));
                }
            }
            Input::Storage { op, result } => match self.ops.remove(&op) {
                Some(Key::Chat(chat)) => {
                    self.with_chat(now, &chat, |partition, ctx| partition.handle_storage(ctx, op, result));
                }
                Some(Key::User(user)) => {
                    self.with_user(now, &user, |partition, ctx| partition.handle_storage(ctx, op, result));
                }
                None => {}
            },
        }
        self.pump(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        while self.misrouted.front().is_some_and(|(at, _)| at.plus(MISROUTED_HOLD_MS) <= now) {
            if let Some((_, envelope)) = self.misrouted.pop_front() {
                let owner = self.placement.owner(&key_of(&envelope));
                if owner == self.placement.me() {
                    self.deliver(now, envelope);
                    self.pump(now);
                } else {
                    self.remote.push_back(Remote { to: owner, envelope, forwarded: true });
                }
            }
        }
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key.clone()));
            self.deadlines.remove(&key);
            match &key {
                Key::Chat(chat) => self.with_chat(now, chat, |partition, ctx| partition.handle_timeout(ctx)),
                Key::User(user) => self.with_user(now, user, |partition, ctx| partition.handle_timeout(ctx)),
            }
            // A deadline that did not move is spent: it must not fire again.
            if self.deadlines.get(&key).is_some_and(|next| *next <= now) {
                self.set_deadline(&key, None);
            }
            self.pump(now);
        }
    }

    /// When [`Engine::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let timer = self.timers.first().map(|(at, _)| *at);
        let misrouted = self.misrouted.front().map(|(at, _)| at.plus(MISROUTED_HOLD_MS));
        match (timer, misrouted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Every effect produced so far, in order.
    pub fn drain_effects(&mut self) -> impl Iterator<Item = Effect> + '_ {
        self.effects.drain(..)
    }

    /// Checks an HTTP caller's bearer token (for host-level calls such as admin sockets).
    pub fn authenticate_http(&self, authorization: Option<&str>, now: Millis) -> Result<Principal, ChatError> {
        authenticate_bearer(authorization, &self.secret, now, self.limits.jwt_leeway_secs)
    }

    /// `GET /api/v1/admin/sockets` is for operators only (§9). On refusal, the error and
    /// the HTTP body to answer with (its correlation id is logged).
    pub fn authorize_admin(&mut self, authorization: Option<&str>, now: Millis) -> Result<Principal, (ChatError, Value)> {
        let checked = self.authenticate_http(authorization, now).and_then(|principal| {
            if principal.admin {
                Ok(principal)
            } else {
                Err(ChatError::forbidden("admin only"))
            }
        });
        checked.map_err(|error| {
            let correlation_id = self.ids.correlation_id();
            self.effects.push_back(Effect::Log {
                level: LogLevel::Warn,
                correlation_id: Some(correlation_id.clone()),
                message: format!("admin sockets refused: {} ({})", error.code(), error.message()),
            });
            let body = http_error_json(&error, &correlation_id);
            (error, body)
        })
    }

    /// Whose a connected (or connecting) socket of this process is.
    pub fn user_of(&self, socket: &SocketId) -> Option<&UserId> {
        self.sockets.get(socket)
    }

    /// How many partitions are in memory: (chats, users).
    pub fn partitions(&self) -> (usize, usize) {
        (self.chats.len(), self.users.len())
    }

    fn connect(&mut self, now: Millis, socket: SocketId, handshake: Handshake) {
        let mut out = Outbox::default();
        let admitted = {
            let mut ctx = Ctx { now, limits: &self.limits, ids: &mut self.ids, out: &mut out, next_op: &mut self.next_op };
            connect_envelope(&mut ctx, socket.clone(), &handshake, &self.secret)
        };
        self.effects.extend(out.effects);
        if let Some((user, envelope)) = admitted {
            self.sockets.insert(socket, user);
            self.mail.push_back(envelope);
        }
    }

    fn event(&mut self, now: Millis, socket: SocketId, event: String, payload: Value, ack: Option<AckId>) {
        let Some(user) = self.sockets.get(&socket).cloned() else {
            return;
        };
        match event_envelope(user, socket, event, &payload, ack) {
            Ok(envelope) => self.mail.push_back(envelope),
            Err((reply, error)) => self.reply_here(now, &reply, error),
        }
    }

    fn http(&mut self, now: Millis, request: RequestId, authorization: Option<String>, call: HttpRequest) {
        let reply = Reply::Http { request };
        let principal = match self.authenticate_http(authorization.as_deref(), now) {
            Ok(principal) => principal,
            Err(error) => return self.reply_here(now, &reply, error),
        };
        let command = match parse_http(&call) {
            Ok(command) => command,
            Err(error) => return self.reply_here(now, &reply, error),
        };
        self.mail.push_back(http_envelope(principal.user, command, reply));
    }

    /// Answers an error found before any partition was involved.
    fn reply_here(&mut self, now: Millis, reply: &Reply, error: ChatError) {
        let mut out = Outbox::default();
        let mut ctx = Ctx { now, limits: &self.limits, ids: &mut self.ids, out: &mut out, next_op: &mut self.next_op };
        ctx.reply_err(reply, error);
        self.effects.extend(out.effects);
    }

    /// Delivers messages between partitions until none is left; those for partitions
    /// another process owns wait in [`Engine::poll_remote`].
    fn pump(&mut self, now: Millis) {
        while let Some(envelope) = self.mail.pop_front() {
            let owner = self.placement.owner(&key_of(&envelope));
            if owner == self.placement.me() {
                self.deliver(now, envelope);
            } else {
                self.remote.push_back(Remote { to: owner, envelope, forwarded: false });
            }
        }
    }

    fn deliver(&mut self, now: Millis, envelope: Envelope) {
        match envelope {
            Envelope::ToChat(chat, msg) => self.deliver_to_chat(now, chat, msg),
            Envelope::ToUser(user, msg) => self.deliver_to_user(now, user, msg),
        }
    }

    /// The next message for a partition on another process. Carry them after this call's
    /// effects, in order: an effect never depends on mail sent after it.
    pub fn poll_remote(&mut self) -> Option<Remote> {
        self.remote.pop_front()
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The live processes changed. Partitions this process no longer owns are dropped:
    /// their new owner rebuilds them from storage (and from the restores hosts send for
    /// the sockets they hold), and what was in flight here gets no answer, as if this
    /// process had crashed, which clients survive by retrying.
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
        let lost: Vec<Key> = self
            .chats
            .keys()
            .map(|chat| Key::Chat(chat.clone()))
            .chain(self.users.keys().map(|user| Key::User(user.clone())))
            .filter(|key| !self.placement.owns(key))
            .collect();
        for key in &lost {
            match key {
                Key::Chat(chat) => {
                    self.chats.remove(chat);
                }
                Key::User(user) => {
                    self.users.remove(user);
                }
            }
            self.set_deadline(key, None);
        }
        self.ops.retain(|_, key| !lost.contains(key));
    }

    /// The live processes changed (cluster hosts): partitions move ([`Engine::set_placement`]);
    /// the new owners of the partitions that `held` sockets belong to hear that those
    /// sockets are still here ([`UserMsg::Restore`], [`ChatMsg::Restore`]); and the rooms
    /// of the chats this process owns forget the sockets of processes that left
    /// (`node_of` says which process holds a socket).
    pub fn change_placement(
        &mut self,
        now: Millis,
        placement: Placement,
        held: impl IntoIterator<Item = HeldSocket>,
        node_of: impl Fn(&SocketId) -> Option<NodeId>,
    ) {
        let before = std::mem::replace(&mut self.placement, placement.clone());
        self.set_placement(placement);
        let after = &self.placement;
        let moved = |key: &Key| before.owner(key) != after.owner(key);
        let mut restores = Vec::new();
        for HeldSocket { socket, user, chats } in held {
            if moved(&Key::User(user.clone())) {
                restores.push(Envelope::ToUser(user.clone(), UserMsg::Restore { socket: socket.clone(), chats: chats.clone() }));
            }
            for chat in chats {
                if moved(&Key::Chat(chat.clone())) {
                    restores.push(Envelope::ToChat(chat, ChatMsg::Restore { socket: socket.clone(), user: user.clone() }));
                }
            }
        }
        self.mail.extend(restores);
        // Mail that waited for this view: what it makes this process's is handled now.
        let (mine, others): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.misrouted).into_iter().partition(|(_, envelope)| self.placement.owns(&key_of(envelope)));
        self.misrouted = others;
        self.mail.extend(mine.into_iter().map(|(_, envelope)| envelope));
        let gone: Vec<NodeId> = before.nodes().iter().filter(|node| !after.nodes().contains(node)).copied().collect();
        if gone.is_empty() {
            self.pump(now);
        } else {
            self.drop_joined(now, |socket| node_of(socket).is_some_and(|node| gone.contains(&node)));
        }
    }

    /// A socket of this process that a partition elsewhere refused (its
    /// [`Effect::RejectConnection`] came from another process): it has no user here.
    pub fn forget_socket(&mut self, socket: &SocketId) {
        self.sockets.remove(socket);
    }

    /// Sockets that died with their process leave the rooms of the chats this process
    /// owns. Nothing is emitted: their users' partitions hear of them through
    /// [`UserMsg::Lost`] and announce what changed.
    pub fn drop_joined(&mut self, now: Millis, gone: impl Fn(&SocketId) -> bool) {
        let mut mail = Vec::new();
        for (chat, partition) in &self.chats {
            for (socket, user) in partition.joined() {
                if gone(socket) {
                    mail.push(Envelope::ToChat(chat.clone(), ChatMsg::SocketGone { socket: socket.clone(), user: user.clone() }));
                }
            }
        }
        self.mail.extend(mail);
        self.pump(now);
    }

    fn deliver_to_chat(&mut self, now: Millis, chat: ChatId, msg: ChatMsg) {
        if !self.chats.contains_key(&chat) {
            match chat_arrival(&msg) {
                ChatArrival::Drop => return,
                ChatArrival::Create => {
                    let partition = self.run(now, Key::Chat(chat.clone()), |ctx| ChatPartition::create(chat.clone(), msg, ctx));
                    self.chats.insert(chat.clone(), partition);
                    return self.after(now, Key::Chat(chat));
                }
                ChatArrival::Load => {
                    let partition = self.run(now, Key::Chat(chat.clone()), |ctx| ChatPartition::load(chat.clone(), ctx));
                    self.chats.insert(chat.clone(), partition);
                }
            }
        }
        self.with_chat(now, &chat, |partition, ctx| partition.handle(ctx, msg));
    }

    fn deliver_to_user(&mut self, now: Millis, user: UserId, msg: UserMsg) {
        if !self.users.contains_key(&user) {
            match user_arrival(&user, &msg) {
                UserArrival::Drop => return,
                UserArrival::Answer(envelope) => return self.mail.push_back(envelope),
                UserArrival::New => {
                    self.users.insert(user.clone(), Box::new(UserPartition::new(user.clone())));
                }
            }
        }
        self.with_user(now, &user, |partition, ctx| partition.handle(ctx, msg));
    }

    fn with_chat(&mut self, now: Millis, chat: &ChatId, f: impl FnOnce(&mut ChatPartition, &mut Ctx)) {
        let Some(mut partition) = self.chats.remove(chat) else { return };
        self.run(now, Key::Chat(chat.clone()), |ctx| f(&mut partition, ctx));
        self.chats.insert(chat.clone(), partition);
        self.after(now, Key::Chat(chat.clone()));
    }

    fn with_user(&mut self, now: Millis, user: &UserId, f: impl FnOnce(&mut UserPartition, &mut Ctx)) {
        let Some(mut partition) = self.users.remove(user) else { return };
        self.run(now, Key::User(user.clone()), |ctx| f(&mut partition, ctx));
        self.users.insert(user.clone(), partition);
        self.after(now, Key::User(user.clone()));
    }

    /// Runs `f` with a fresh context and files what it produced.
    fn run<T>(&mut self, now: Millis, key: Key, f: impl FnOnce(&mut Ctx) -> T) -> T {
        let mut out = Outbox::default();
        let value = {
            let mut ctx = Ctx { now, limits: &self.limits, ids: &mut self.ids, out: &mut out, next_op: &mut self.next_op };
            f(&mut ctx)
        };
        for effect in &out.effects {
            match effect {
                Effect::Storage { op, .. } => {
                    self.ops.insert(*op, key.clone());
                }
                Effect::RejectConnection { socket, .. } => {
                    self.sockets.remove(socket);
                }
                _ => {}
            }
        }
        self.effects.extend(out.effects);
        self.mail.extend(out.mail);
        value
    }

    /// Re-arms the partition's timer, and drops the partition once it holds nothing.
    fn after(&mut self, now: Millis, key: Key) {
        let throttle = self.limits.presence_throttle_ms;
        let (deadline, idle) = match &key {
            Key::Chat(chat) => match self.chats.get(chat) {
                Some(partition) => (partition.next_deadline(), partition.is_idle()),
                None => return,
            },
            Key::User(user) => match self.users.get(user) {
                Some(partition) => (partition.next_deadline(throttle), partition.is_idle(now, throttle)),
                None => return,
            },
        };
        if idle {
            match &key {
                Key::Chat(chat) => {
                    self.chats.remove(chat);
                }
                Key::User(user) => {
                    self.users.remove(user);
                }
            }
            self.set_deadline(&key, None);
        } else {
            self.set_deadline(&key, deadline);
        }
    }

    fn set_deadline(&mut self, key: &Key, deadline: Option<Millis>) {
        if let Some(old) = self.deadlines.remove(key) {
            self.timers.remove(&(old, key.clone()));
        }
        if let Some(at) = deadline {
            self.deadlines.insert(key.clone(), at);
            self.timers.insert((at, key.clone()));
        }
    }
}
