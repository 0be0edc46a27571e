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
//! - storage, HTTP answers and logs are carried out where they were produced;
//! - the directory (`crate::directory`) hears of sockets let in and of room changes.

use crate::addr::split_socket;
use crate::directory::Counts;
use crate::wire::{Item, SocketOut};
use chat_core::chat::ChatPartition;
use chat_core::config::Limits;
use chat_core::effect::{connect_error_json, Effect, LogLevel, Room, Target};
use chat_core::ids::{ChatId, ClientId, CorrelationId, IdMaker, Millis, OpId, RequestId, SocketId, UserId};
use chat_core::model::{Chat, Message};
use chat_core::route::{chat_arrival, user_arrival, ChatArrival, ChatMsg, Ctx, Envelope, Outbox, UserArrival, UserMsg};
use chat_core::storage::{StorageOp, StorageResult};
use chat_core::user::{Presence, UserPartition};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// An object that items are sent to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dest {
    Chat(ChatId),
    User(UserId),
    /// A connection object, by `sid`.
    Conn(String),
    /// A directory shard (admin sockets, metrics), by number.
    Directory(u32),
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
    /// Who is typing and until when, as last persisted (the `stop` must survive the
    /// object losing its memory).
    pub typing: BTreeMap<UserId, Millis>,
}

impl ChatHost {
    pub fn new(id: ChatId, rooms: BTreeMap<SocketId, UserId>, typing: BTreeMap<UserId, Millis>) -> Self {
        Self { id, partition: None, rooms, typing }
    }

    /// A partition that stored state says has a live room or typing users: rebuilt by
    /// loading, with both put back.
    fn rebuild(&mut self, core: &mut Core, now: Millis, out: &mut Outbox) {
        let id = self.id.clone();
        let mut partition = core.run(now, out, |ctx| ChatPartition::load(id, ctx));
        for (socket, user) in &self.rooms {
            partition.restore_joined(socket.clone(), user.clone());
        }
        for (user, deadline) in &self.typing {
            partition.restore_typing(user.clone(), *deadline);
        }
        self.partition = Some(partition);
    }

    pub fn deliver(&mut self, core: &mut Core, now: Millis, msg: ChatMsg, out: &mut Outbox) {
        if self.partition.is_none() {
            let id = self.id.clone();
            let live = !self.rooms.is_empty() || !self.typing.is_empty();
            let arrival = if live { ChatArrival::Load } else { chat_arrival(&msg) };
            match arrival {
                ChatArrival::Drop => return,
                ChatArrival::Create => {
                    self.partition = Some(core.run(now, out, |ctx| ChatPartition::create(id, msg, ctx)));
                    return;
                }
                ChatArrival::Load => self.rebuild(core, now, out),
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

    /// The object's alarm: the partition's timers, rebuilt from what was persisted if the
    /// object lost its memory in between.
    pub fn timeout(&mut self, core: &mut Core, now: Millis, out: &mut Outbox) {
        if self.partition.is_none() && !self.typing.is_empty() {
            self.rebuild(core, now, out);
        }
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_timeout(ctx));
        }
    }

    /// Drops the partition once it holds nothing storage lacks; the next timer, and the
    /// typing changes to persist (`Some(deadline)` to write, `None` to delete).
    pub fn settle(&mut self) -> (Option<Millis>, Vec<(UserId, Option<Millis>)>) {
        let (deadline, current) = match self.partition.as_ref() {
            None => (None, BTreeMap::new()),
            Some(partition) if partition.is_idle() => {
                self.partition = None;
                (None, BTreeMap::new())
            }
            Some(partition) => (partition.next_deadline(), partition.typing_deadlines().clone()),
        };
        let changes = map_changes(&self.typing, &current);
        self.typing = current;
        (deadline, changes)
    }
}

/// What changed between two snapshots of a persisted map: `Some` to write, `None` to delete.
pub fn map_changes<K: Ord + Clone, V: PartialEq + Clone>(before: &BTreeMap<K, V>, after: &BTreeMap<K, V>) -> Vec<(K, Option<V>)> {
    let mut changes: Vec<(K, Option<V>)> =
        after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    changes.extend(before.keys().filter(|k| !after.contains_key(*k)).map(|k| (k.clone(), None)));
    changes
}

/// Room changes to persist between two snapshots of a chat object's room.
pub fn room_changes(before: &BTreeMap<SocketId, UserId>, after: &BTreeMap<SocketId, UserId>) -> Vec<(SocketId, Option<UserId>)> {
    map_changes(before, after)
}

/// A user object's partition, made and dropped by the core's rules ([`user_arrival`]).
pub struct UserHost {
    pub id: UserId,
    pub partition: Option<UserPartition>,
    /// The partition's sockets and the chats each asked to join, as last persisted.
    pub sockets: BTreeMap<SocketId, BTreeSet<ChatId>>,
    /// The partition's presence, as last persisted (kept while the partition is in memory,
    /// so an update due at the end of a throttle window survives the object losing it).
    pub presence: Option<Presence>,
    /// Sockets let in (their CONNECT went out): what the directory lists.
    accepted: BTreeSet<SocketId>,
    /// What the directory was last told; `None` since the object (re)started.
    listed: Option<Vec<SocketId>>,
    /// Counter increments not yet reported to the directory.
    pub counts: Counts,
}

/// What a user object persists and sends after handling something.
#[derive(Debug, Default)]
pub struct UserSettled {
    /// The partition's next timer.
    pub deadline: Option<Millis>,
    /// Sockets to persist (`Some(chats)` to write, `None` to delete).
    pub sockets: Vec<(SocketId, Option<BTreeSet<ChatId>>)>,
    /// The presence to persist, if it changed (`Some(None)`: delete it).
    pub presence: Option<Option<Presence>>,
    /// For the user's directory shard: the sockets let in now, if that changed.
    pub directory: Option<Item>,
}

impl UserHost {
    /// A host over what the object persisted; sockets that stayed connected were let in.
    pub fn new(id: UserId, sockets: BTreeMap<SocketId, BTreeSet<ChatId>>, presence: Option<Presence>) -> Self {
        let accepted = sockets.keys().cloned().collect();
        Self { id, partition: None, sockets, presence, accepted, listed: None, counts: Counts::default() }
    }

    fn rebuild(&mut self) {
        let mut partition = UserPartition::new(self.id.clone());
        for (socket, chats) in &self.sockets {
            partition.restore_socket(socket.clone(), chats.iter().cloned());
        }
        if let Some(presence) = &self.presence {
            partition.restore_presence(presence.clone());
        }
        self.partition = Some(partition);
    }

    pub fn deliver(&mut self, core: &mut Core, now: Millis, msg: UserMsg, out: &mut Outbox) {
        if let UserMsg::SendDone { outcome: Ok(_), .. } = &msg {
            self.counts.messages_sent += 1;
        }
        if self.partition.is_none() {
            let live = !self.sockets.is_empty() || self.presence.is_some();
            let arrival = if live { UserArrival::New } else { user_arrival(&self.id, &msg) };
            match arrival {
                UserArrival::Drop => return,
                UserArrival::Answer(envelope) => return out.mail.push(envelope),
                UserArrival::New => self.rebuild(),
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

    /// The object's alarm: the partition's timers, rebuilt from what was persisted if the
    /// object lost its memory in between (the core loads the user's chats first).
    pub fn timeout(&mut self, core: &mut Core, now: Millis, out: &mut Outbox) {
        if self.partition.is_none() && self.presence.as_ref().is_some_and(|p| p.due.is_some()) {
            self.rebuild();
        }
        if let Some(partition) = self.partition.as_mut() {
            core.run(now, out, |ctx| partition.handle_timeout(ctx));
        }
    }

    /// Something this object passes on to one of its user's sockets: a CONNECT marks the
    /// socket let in, an ack is counted.
    pub fn note_outgoing(&mut self, item: &Item) {
        match item {
            Item::Socket { socket, out: SocketOut::Accept } => {
                self.accepted.insert(socket.clone());
            }
            Item::Socket { out: SocketOut::Ack { reply, .. }, .. } => self.counts.ack(reply.code()),
            _ => {}
        }
    }

    /// The sockets now (every socket of the `user:` room).
    pub fn socket_list(&self) -> Vec<SocketId> {
        self.partition.as_ref().map(|p| p.sockets().cloned().collect()).unwrap_or_default()
    }

    /// Drops an idle partition; what to persist and what the directory must hear.
    pub fn settle(&mut self, now: Millis, presence_throttle_ms: u64) -> UserSettled {
        if self.partition.as_ref().is_some_and(|partition| partition.is_idle(now, presence_throttle_ms)) {
            self.partition = None;
        }
        let (deadline, presence) = match self.partition.as_ref() {
            None => (None, None),
            Some(partition) => (partition.next_deadline(presence_throttle_ms), Some(partition.presence().clone())),
        };
        let sockets = self.sync_sockets();
        let presence = (presence != self.presence).then(|| presence.clone());
        if let Some(changed) = &presence {
            self.presence = changed.clone();
        }
        self.accepted.retain(|socket| self.sockets.contains_key(socket));
        let listed: Vec<SocketId> = self.accepted.iter().cloned().collect();
        let directory = (self.listed.as_ref() != Some(&listed)).then(|| {
            self.listed = Some(listed.clone());
            Item::DirUser { user: self.id.clone(), sockets: listed }
        });
        UserSettled { deadline, sockets, presence, directory }
    }

    /// Brings the persisted copy of the partition's sockets (none without a partition) up
    /// to date; the changes to persist. This runs after everything the object handles, so
    /// only what changed is copied, not every socket's chats each time.
    fn sync_sockets(&mut self) -> Vec<(SocketId, Option<BTreeSet<ChatId>>)> {
        let live: Vec<(&SocketId, &[ChatId])> = self.partition.as_ref().map(|p| p.socket_chats().collect()).unwrap_or_default();
        let same = |kept: Option<&BTreeSet<ChatId>>, chats: &[ChatId]| kept.is_some_and(|kept| kept.iter().eq(chats));
        let mut changes: Vec<(SocketId, Option<BTreeSet<ChatId>>)> = live
            .iter()
            .filter(|(socket, chats)| !same(self.sockets.get(*socket), chats))
            .map(|(socket, chats)| ((*socket).clone(), Some(chats.iter().cloned().collect())))
            .collect();
        // `socket_chats` is in socket order.
        let gone = |kept: &&SocketId| live.binary_search_by(|(socket, _)| (*socket).cmp(*kept)).is_err();
        changes.extend(self.sockets.keys().filter(gone).map(|socket| (socket.clone(), None)));
        for (socket, chats) in &changes {
            match chats {
                Some(chats) => self.sockets.insert(socket.clone(), chats.clone()),
                None => self.sockets.remove(socket),
            };
        }
        changes
    }
}

// --- the user's index and crash windows between objects --------------------------------------

/// A user object's own storage: its user's chats and members, their sent messages by
/// clientId, and sends on their way to a chat. SQLite at the edge, memory in tests.
pub trait UserIndex {
    /// The user's membership of `chat` now (`None`: not a member).
    fn put_members(&mut self, chat: &ChatId, members: Option<&[UserId]>) -> Result<(), String>;
    /// A message the user sent (this also settles its pending entry).
    fn put_sent(&mut self, message: &Message) -> Result<(), String>;
    fn put_pending(&mut self, client_id: &ClientId, chat: &ChatId) -> Result<(), String>;
    fn drop_pending(&mut self, client_id: &ClientId) -> Result<(), String>;
    fn sent(&self, client_id: &ClientId) -> Result<Option<Message>, String>;
    fn pending(&self, client_id: &ClientId) -> Result<Option<ChatId>, String>;
}

/// Mail arriving at a user object updates the index first (durable before anything the
/// mail causes goes out).
pub fn index_arrival(index: &mut dyn UserIndex, me: &UserId, msg: &UserMsg) -> Result<(), String> {
    match msg {
        UserMsg::ChatMembers { chat, members } => index.put_members(chat, members.contains(me).then_some(members.as_slice())),
        UserMsg::SendDone { outcome: Ok(message), .. } => index.put_sent(message),
        UserMsg::SendDone { client_id, outcome: Err(_) } => index.drop_pending(client_id),
        _ => Ok(()),
    }
}

/// Before a send leaves for its chat, the index notes where it went: if that chat stores
/// it and dies before its `SendDone` arrives (or this object loses its memory), a retry
/// of the clientId asks that chat instead of sending it again (gap 2a of NOTES.md).
pub fn index_departures(index: &mut dyn UserIndex, remote: &[(Dest, Item)]) -> Result<(), String> {
    for (dest, item) in remote {
        if let (Dest::Chat(chat), Item::Chat(ChatMsg::Send { command, .. })) = (dest, item) {
            index.put_pending(&command.client_id, chat)?;
        }
    }
    Ok(())
}

/// The first step of answering `FindMessage` on a user object.
#[derive(Debug, PartialEq)]
pub enum Find {
    Done(Option<Message>),
    /// The message may be stored in this chat without the index knowing: ask it.
    AskChat(ChatId),
}

pub fn find_sent(index: &dyn UserIndex, client_id: &ClientId) -> Result<Find, String> {
    if let Some(message) = index.sent(client_id)? {
        return Ok(Find::Done(Some(message)));
    }
    Ok(match index.pending(client_id)? {
        Some(chat) => Find::AskChat(chat),
        None => Find::Done(None),
    })
}

/// What the chat answered for a pending send; a stored message enters the index.
pub fn found_in_chat(index: &mut dyn UserIndex, client_id: &ClientId, found: Option<Message>) -> Result<Option<Message>, String> {
    match &found {
        Some(message) => index.put_sent(message)?,
        None => index.drop_pending(client_id)?,
    }
    Ok(found)
}

/// Mail a chat object keeps in its outbox, in the same storage transaction as the commit
/// that caused it, until its user object has it: membership (gap 2b of NOTES.md). Each
/// entry is the latest word for its user, so a redelivery never goes back in time.
pub fn outbox_entry(dest: &Dest, item: &Item) -> Option<UserId> {
    match (dest, item) {
        (Dest::User(user), Item::User(UserMsg::ChatMembers { .. })) => Some(user.clone()),
        _ => None,
    }
}

/// How long after a failed delivery a chat object tries its outbox again.
pub const OUTBOX_RETRY_MS: u64 = 2_000;

/// Creating a DM across objects (gap 2c of NOTES.md). The `dm:<key>` registry names one
/// chat per key; a chat object claims the key, then stores its chat. If it died in
/// between, the key names a chat that was never stored: the next creator asks that chat
/// for its record, which also makes that chat refuse to store one later (a tombstone), and
/// then takes the key over.
#[derive(Debug)]
pub struct DmCreate {
    me: ChatId,
    takeovers: u8,
}

#[derive(Debug, PartialEq)]
pub enum DmStep {
    /// Ask the registry for the key, taking it over from `replacing` if that still holds it.
    Claim { replacing: Option<ChatId> },
    /// Ask that chat for its record (tombstoning it if it has none).
    AskRecord(ChatId),
    /// The key is ours: store the chat here (unless this object was tombstoned).
    Store,
    Done(StorageResult),
}

impl DmCreate {
    pub fn start(me: ChatId) -> (Self, DmStep) {
        (Self { me, takeovers: 0 }, DmStep::Claim { replacing: None })
    }

    pub fn claimed(&mut self, owner: ChatId) -> DmStep {
        if owner == self.me {
            DmStep::Store
        } else {
            DmStep::AskRecord(owner)
        }
    }

    pub fn recorded(&mut self, owner: ChatId, record: Option<Chat>) -> DmStep {
        match record {
            Some(existing) => DmStep::Done(StorageResult::Created { existing: Some(existing) }),
            None if self.takeovers < 3 => {
                self.takeovers += 1;
                DmStep::Claim { replacing: Some(owner) }
            }
            None => DmStep::Done(StorageResult::Failed(format!("the DM key keeps naming chats that are not stored (last {owner})"))),
        }
    }
}

/// The registry's rule: the first claimant owns a key; a claim that names the current
/// owner as abandoned takes it over.
pub fn registry_claim(current: Option<&ChatId>, claimant: &ChatId, replacing: Option<&ChatId>) -> ChatId {
    match current {
        None => claimant.clone(),
        Some(owner) if Some(owner) == replacing => claimant.clone(),
        Some(owner) => owner.clone(),
    }
}

#[cfg(test)]
mod tests {
    //! A whole edge deployment in memory: objects exchange the same items as over Durable
    //! Object fetches; each object keeps what it persists apart from its memory, so a test
    //! can make an object lose its memory (eviction, a crash) and keep only its disk. Chat
    //! storage is the core's reference store, each user object has its own index, the DM
    //! registry is its own map, and connection objects are recorders of what would go to
    //! each WebSocket.
    use super::*;
    use crate::addr::{make_sid, socket_id};
    use crate::directory::Shard;
    use chat_core::auth::{sign_token, Handshake};
    use chat_core::ids::{AckId, IdSource};
    use chat_core::memory::MemoryStore;
    use chat_core::route::{connect_envelope, event_envelope};
    use chat_core::storage::UserRecord;
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

    /// A user object's index as its SQLite tables hold it.
    #[derive(Default)]
    struct MemIndex {
        chats: BTreeMap<ChatId, Vec<UserId>>,
        sent: BTreeMap<ClientId, Message>,
        pending: BTreeMap<ClientId, ChatId>,
    }

    impl UserIndex for MemIndex {
        fn put_members(&mut self, chat: &ChatId, members: Option<&[UserId]>) -> Result<(), String> {
            match members {
                Some(members) => self.chats.insert(chat.clone(), members.to_vec()),
                None => self.chats.remove(chat),
            };
            Ok(())
        }
        fn put_sent(&mut self, message: &Message) -> Result<(), String> {
            self.pending.remove(&message.client_id);
            self.sent.entry(message.client_id.clone()).or_insert_with(|| message.clone());
            Ok(())
        }
        fn put_pending(&mut self, client_id: &ClientId, chat: &ChatId) -> Result<(), String> {
            self.pending.insert(client_id.clone(), chat.clone());
            Ok(())
        }
        fn drop_pending(&mut self, client_id: &ClientId) -> Result<(), String> {
            self.pending.remove(client_id);
            Ok(())
        }
        fn sent(&self, client_id: &ClientId) -> Result<Option<Message>, String> {
            Ok(self.sent.get(client_id).cloned())
        }
        fn pending(&self, client_id: &ClientId) -> Result<Option<ChatId>, String> {
            Ok(self.pending.get(client_id).cloned())
        }
    }

    /// What a chat object persists besides the chat itself (in `store`).
    #[derive(Default)]
    struct ChatDisk {
        rooms: BTreeMap<SocketId, UserId>,
        typing: BTreeMap<UserId, Millis>,
        outbox: BTreeMap<UserId, Item>,
    }

    #[derive(Default)]
    struct UserDisk {
        sockets: BTreeMap<SocketId, BTreeSet<ChatId>>,
        presence: Option<Presence>,
        index: MemIndex,
    }

    #[derive(Default)]
    struct World {
        store: MemoryStore,
        registry: BTreeMap<String, ChatId>,
        tombstones: BTreeSet<ChatId>,
        /// Objects' memory.
        chats: BTreeMap<ChatId, (ChatHost, Core)>,
        users: BTreeMap<UserId, (UserHost, Core)>,
        /// Objects' storage.
        chat_disk: BTreeMap<ChatId, ChatDisk>,
        user_disk: BTreeMap<UserId, UserDisk>,
        directory: Shard,
        queue: VecDeque<(Dest, Item)>,
        /// What each connection object wrote to its socket.
        wire: BTreeMap<String, Vec<SocketOut>>,
        now: u64,
        /// The next chat object to handle something dies once its storage is written,
        /// before anything it sends leaves, losing its memory.
        crash_next_chat: bool,
        /// Each object start draws fresh ids (as from real randomness).
        seeds: u128,
    }

    fn core(seed: u128) -> Core {
        Core::new(Limits::default(), IdMaker::new(Box::new(Counter(seed))))
    }

    impl World {
        fn now(&self) -> Millis {
            Millis(1_700_000_000_000 + self.now)
        }

        /// The chat object, woken from its disk if it lost its memory (it then sends its
        /// outbox again).
        fn wake_chat(&mut self, id: &ChatId) {
            if self.chats.contains_key(id) {
                return;
            }
            let disk = self.chat_disk.entry(id.clone()).or_default();
            let host = ChatHost::new(id.clone(), disk.rooms.clone(), disk.typing.clone());
            let redeliver: Vec<(Dest, Item)> = disk.outbox.iter().map(|(user, item)| (Dest::User(user.clone()), item.clone())).collect();
            self.queue.extend(redeliver);
            self.seeds += 1;
            self.chats.insert(id.clone(), (host, core(7 + self.seeds)));
        }

        fn wake_user(&mut self, id: &UserId) {
            if self.users.contains_key(id) {
                return;
            }
            let disk = self.user_disk.entry(id.clone()).or_default();
            let host = UserHost::new(id.clone(), disk.sockets.clone(), disk.presence.clone());
            self.seeds += 1;
            self.users.insert(id.clone(), (host, core(1_000 + self.seeds)));
        }

        fn chat_storage(&mut self, request: &StorageOp) -> StorageResult {
            let StorageOp::CreateChat { chat, dm_key: Some(key) } = request else { return self.store.apply(request) };
            let (mut dm, mut step) = DmCreate::start(chat.id.clone());
            loop {
                step = match step {
                    DmStep::Claim { replacing } => {
                        let owner = registry_claim(self.registry.get(key), &chat.id, replacing.as_ref());
                        self.registry.insert(key.clone(), owner.clone());
                        dm.claimed(owner)
                    }
                    DmStep::AskRecord(owner) => {
                        let record = self.store.chat(&owner).cloned();
                        if record.is_none() {
                            self.tombstones.insert(owner.clone());
                        }
                        dm.recorded(owner, record)
                    }
                    DmStep::Store if self.tombstones.contains(&chat.id) => return StorageResult::Failed("taken over".into()),
                    DmStep::Store => return self.store.apply(&StorageOp::CreateChat { chat: chat.clone(), dm_key: None }),
                    DmStep::Done(result) => return result,
                }
            }
        }

        fn user_storage(&mut self, user: &UserId, request: &StorageOp) -> StorageResult {
            let index = &mut self.user_disk.entry(user.clone()).or_default().index;
            match request {
                StorageOp::LoadUser { sends_since, .. } => StorageResult::User(UserRecord {
                    chats: index.chats.iter().map(|(c, m)| (c.clone(), m.clone())).collect(),
                    recent_sends: index.sent.values().map(|m| m.created_at).filter(|at| *at > *sends_since).collect(),
                }),
                StorageOp::FindMessage { sender, client_id } => match find_sent(index, client_id).unwrap() {
                    Find::Done(found) => StorageResult::Message(found),
                    Find::AskChat(chat) => {
                        let found = match self.store.apply(&StorageOp::FindMessage { sender: sender.clone(), client_id: client_id.clone() }) {
                            StorageResult::Message(Some(m)) if m.chat_id == chat => Some(m),
                            _ => None,
                        };
                        let index = &mut self.user_disk.get_mut(user).unwrap().index;
                        StorageResult::Message(found_in_chat(index, client_id, found).unwrap())
                    }
                },
                other => self.store.apply(other),
            }
        }

        /// Carries out a partition's output in its object, like the Durable Object does.
        fn settle_outputs(&mut self, here: Dest, mut out: Outbox) {
            let crash = matches!(here, Dest::Chat(_)) && std::mem::take(&mut self.crash_next_chat);
            let mut sends = Vec::new();
            loop {
                let routed = match &here {
                    Dest::Chat(id) => route(out, &mut self.chats.get_mut(id).unwrap().0.rooms),
                    _ => route(out, &mut BTreeMap::new()),
                };
                match &here {
                    Dest::Chat(id) => {
                        let disk = self.chat_disk.get_mut(id).unwrap();
                        for (dest, item) in &routed.remote {
                            if let Some(user) = outbox_entry(dest, item) {
                                disk.outbox.insert(user, item.clone());
                            }
                        }
                    }
                    Dest::User(id) => index_departures(&mut self.user_disk.get_mut(id).unwrap().index, &routed.remote).unwrap(),
                    _ => {}
                }
                sends.extend(routed.remote);
                out = Outbox::default();
                let mut again = false;
                for local in routed.local {
                    if let Local::Storage { op, request } = local {
                        let now = self.now();
                        match &here {
                            Dest::Chat(id) => {
                                let result = self.chat_storage(&request);
                                let (host, core) = self.chats.get_mut(id).unwrap();
                                host.storage(core, now, op, result, &mut out);
                            }
                            Dest::User(id) => {
                                let result = self.user_storage(id, &request);
                                let (host, core) = self.users.get_mut(id).unwrap();
                                host.storage(core, now, op, result, &mut out);
                            }
                            _ => {}
                        }
                        again = true;
                    }
                }
                if !again {
                    break;
                }
            }
            if crash {
                if let Dest::Chat(id) = &here {
                    self.chats.remove(id);
                }
                return;
            }
            self.queue.extend(sends);
            self.settle(&here);
        }

        fn settle(&mut self, here: &Dest) {
            let now = self.now();
            match here {
                Dest::Chat(id) => {
                    let (host, _) = self.chats.get_mut(id).unwrap();
                    let (_, typing) = host.settle();
                    let disk = self.chat_disk.get_mut(id).unwrap();
                    let room = room_changes(&disk.rooms, &host.rooms);
                    if !room.is_empty() {
                        self.queue.push_front((Dest::Directory(0), Item::DirRoom { chat: id.clone(), changes: room }));
                    }
                    disk.rooms = host.rooms.clone();
                    for (user, deadline) in typing {
                        match deadline {
                            Some(at) => disk.typing.insert(user, at),
                            None => disk.typing.remove(&user),
                        };
                    }
                }
                Dest::User(id) => {
                    let (host, _) = self.users.get_mut(id).unwrap();
                    let settled = host.settle(now, Limits::default().presence_throttle_ms);
                    let disk = self.user_disk.get_mut(id).unwrap();
                    disk.sockets = host.sockets.clone();
                    if let Some(presence) = settled.presence {
                        disk.presence = presence;
                    }
                    if let Some(item) = settled.directory {
                        self.queue.push_front((Dest::Directory(0), item));
                    }
                }
                _ => {}
            }
        }

        fn pump(&mut self) {
            while let Some((dest, item)) = self.queue.pop_front() {
                let now = self.now();
                let mut out = Outbox::default();
                match (&dest, item) {
                    (Dest::Chat(id), Item::Chat(msg)) => {
                        self.wake_chat(id);
                        let (host, core) = self.chats.get_mut(id).unwrap();
                        host.deliver(core, now, msg, &mut out);
                    }
                    (Dest::User(id), Item::User(msg)) => {
                        self.wake_user(id);
                        if let UserMsg::ChatMembers { chat, .. } = &msg {
                            // Delivered: the chat object's outbox lets go of it.
                            let delivered = Item::User(msg.clone());
                            if let Some(disk) = self.chat_disk.get_mut(chat) {
                                if disk.outbox.get(id) == Some(&delivered) {
                                    disk.outbox.remove(id);
                                }
                            }
                        }
                        index_arrival(&mut self.user_disk.get_mut(id).unwrap().index, id, &msg).unwrap();
                        let (host, core) = self.users.get_mut(id).unwrap();
                        host.deliver(core, now, msg, &mut out);
                    }
                    (Dest::User(id), item @ (Item::Socket { .. } | Item::UserRoom { .. })) => {
                        self.wake_user(id);
                        let (host, _) = self.users.get_mut(id).unwrap();
                        host.note_outgoing(&item);
                        let sockets = host.socket_list();
                        self.queue.extend(user_fanout(item, &sockets));
                        self.settle(&dest);
                        continue;
                    }
                    (Dest::Conn(sid), Item::Socket { out: packet, .. }) => {
                        self.wire.entry(sid.clone()).or_default().push(packet);
                        continue;
                    }
                    (Dest::Directory(_), item) => {
                        self.directory.apply(&item);
                        continue;
                    }
                    (dest, item) => panic!("{item:?} cannot go to {dest:?}"),
                }
                self.settle_outputs(dest, out);
            }
        }

        /// The object's alarm fires (waking it from its disk if it lost its memory).
        fn alarm(&mut self, dest: Dest) {
            let now = self.now();
            let mut out = Outbox::default();
            match &dest {
                Dest::Chat(id) => {
                    self.wake_chat(id);
                    let (host, core) = self.chats.get_mut(id).unwrap();
                    host.timeout(core, now, &mut out);
                }
                Dest::User(id) => {
                    self.wake_user(id);
                    let (host, core) = self.users.get_mut(id).unwrap();
                    host.timeout(core, now, &mut out);
                }
                _ => return,
            }
            self.settle_outputs(dest, out);
            self.pump();
        }

        fn connect_with(&mut self, sid: &str, user: &str, auto_join: bool) -> SocketId {
            let token = sign_token(SECRET, &UserId::new(user), false, Millis(4_000_000_000_000));
            let handshake = Handshake { auth: Some(json!({ "token": token, "autoJoin": auto_join })), authorization_header: None, query_token: None };
            let mut out = Outbox::default();
            let socket = SocketId::new(format!("{sid}{user}"));
            let admitted = core(3).run(self.now(), &mut out, |ctx| connect_envelope(ctx, socket.clone(), &handshake, SECRET));
            let (user, Envelope::ToUser(_, msg)) = admitted.expect("token accepted") else { panic!() };
            let socket = socket_id(sid, &user);
            self.queue.push_back((Dest::User(user), Item::User(msg)));
            self.pump();
            socket
        }

        fn connect(&mut self, sid: &str, user: &str) -> SocketId {
            self.connect_with(sid, user, false)
        }

        fn disconnect(&mut self, socket: &SocketId) {
            let (_, user) = split_socket(socket).unwrap();
            self.queue.push_back((Dest::User(user), Item::User(UserMsg::Disconnect { socket: socket.clone() })));
            self.pump();
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
                SocketOut::Ack { ack, reply } => Some((ack.0, reply.to_value())),
                _ => None,
            }).collect()
        }

        fn ack(&self, sid: &str, id: u64) -> Option<Value> {
            self.acks(sid).into_iter().find(|(ack, _)| *ack == id).map(|(_, reply)| reply)
        }

        fn events(&self, sid: &str, name: &str) -> Vec<Value> {
            self.wire.get(sid).into_iter().flatten().filter_map(|p| match p {
                SocketOut::Event { event, payload } if event == name => Some(payload.to_value()),
                _ => None,
            }).collect()
        }

        /// `owner` makes a group with `others` over a socket; its id.
        fn group(&mut self, socket: &SocketId, others: &[&str], ack: u64) -> String {
            self.emit(socket, "chat:create", json!({ "kind": "group", "memberIds": others, "title": "t" }), ack);
            let (sid, _) = split_socket(socket).unwrap();
            let created = self.ack(sid, ack).expect("chat:create answered");
            assert_eq!(created["ok"], true, "{created}");
            created["data"]["chat"]["id"].as_str().unwrap().to_string()
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
        let chat_id = world.group(&a, &["ben"], 1);
        world.emit(&a, "room:join", json!({ "chatId": chat_id }), 2);
        let id = ChatId::new(chat_id.as_str());
        assert_eq!(world.chat_disk[&id].rooms.len(), 1);
        // The object is evicted: only what it persisted (its room) survives.
        world.chats.remove(&id);
        world.emit(&a, "message:send", json!({ "chatId": chat_id, "body": "still here", "clientId": "0189c6f0-0000-4000-8000-000000000002" }), 3);
        assert_eq!(world.events(&sid_a, "message:new").len(), 1);
    }

    #[test]
    fn a_user_object_that_lost_its_memory_keeps_its_sockets() {
        let mut world = World::default();
        let sid = make_sid(5);
        let socket = world.connect(&sid, "cy");
        let user = UserId::new("cy");
        assert_eq!(world.user_disk[&user].sockets.len(), 1);
        world.users.remove(&user);
        world.emit(&socket, "presence:ping", json!({}), 9);
        let (ack, reply) = world.acks(&sid).pop().unwrap();
        assert_eq!(ack, 9);
        assert_eq!(reply["ok"], true, "{reply}");
    }

    #[test]
    fn the_directory_lists_sockets_let_in_and_chat_rooms_as_the_admin_call_answers() {
        let mut world = World::default();
        let (sid_1, sid_2, sid_3) = (make_sid(6), make_sid(7), make_sid(8));
        let first = world.connect(&sid_1, "dee");
        let _other = world.connect(&sid_3, "eve");
        let chat_id = world.group(&first, &["eve"], 1);
        let second = world.connect_with(&sid_2, "dee", true);
        let view = world.directory.admin_view();
        assert_eq!(view["connections"], 3, "{view}");
        assert_eq!(view["users"], 2, "{view}");
        assert_eq!(
            view["rooms"],
            json!([
                { "room": format!("chat:{chat_id}"), "sockets": 1, "userIds": ["dee"] },
                { "room": "user:dee", "sockets": 2, "userIds": ["dee"] },
                { "room": "user:eve", "sockets": 1, "userIds": ["eve"] },
            ])
        );
        world.disconnect(&second);
        world.emit(&first, "room:join", json!({ "chatId": chat_id }), 2);
        let view = world.directory.admin_view();
        assert_eq!(view["connections"], 2, "{view}");
        assert_eq!(view["rooms"][0], json!({ "room": format!("chat:{chat_id}"), "sockets": 1, "userIds": ["dee"] }));
        assert_eq!(view["rooms"][1], json!({ "room": "user:dee", "sockets": 1, "userIds": ["dee"] }));
    }

    #[test]
    fn user_objects_count_acks_and_messages_for_the_metrics() {
        let mut world = World::default();
        let sid = make_sid(9);
        let socket = world.connect(&sid, "fay");
        let chat_id = world.group(&socket, &["zed"], 1);
        world.emit(&socket, "message:send", json!({ "chatId": chat_id, "body": "x", "clientId": "0189c6f0-0000-4000-8000-000000000009" }), 2);
        world.emit(&socket, "room:join", json!({ "chatId": "no-such-chat" }), 3);
        let counts = &world.users[&UserId::new("fay")].0.counts;
        assert_eq!(counts.messages_sent, 1);
        assert_eq!(counts.acks.get("ok"), Some(&2));
        assert_eq!(counts.acks.get("NOT_FOUND"), Some(&1), "{counts:?}");
    }

    #[test]
    fn a_retried_client_id_acks_the_stored_message_after_its_send_done_was_lost() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(10), make_sid(11));
        let a = world.connect(&sid_a, "gil");
        let b = world.connect(&sid_b, "hal");
        let chat_id = world.group(&a, &["hal"], 1);
        world.emit(&b, "room:join", json!({ "chatId": chat_id }), 1);
        let client_id = "0189c6f0-0000-4000-8000-00000000000a";
        let send = json!({ "chatId": chat_id, "body": "once", "clientId": client_id });
        // The chat stores the message and dies before its batch (the ack, SendDone,
        // message:new) leaves; the sender's object loses its memory too.
        world.crash_next_chat = true;
        world.emit(&a, "message:send", send.clone(), 2);
        assert!(world.ack(&sid_a, 2).is_none());
        assert_eq!(world.store.messages(&ChatId::new(chat_id.as_str())).len(), 1);
        world.users.remove(&UserId::new("gil"));

        world.emit(&a, "message:send", send, 3);
        let retry = world.ack(&sid_a, 3).expect("the retry is answered");
        assert_eq!(retry["ok"], true, "{retry}");
        let stored = &world.store.messages(&ChatId::new(chat_id.as_str()))[0];
        assert_eq!(retry["data"]["serverId"], stored.id.as_str());
        assert_eq!(retry["data"]["seq"], 1);
        assert_eq!(world.store.messages(&ChatId::new(chat_id.as_str())).len(), 1);
        // The next message takes the next seq.
        world.emit(&a, "message:send", json!({ "chatId": chat_id, "body": "next", "clientId": "0189c6f0-0000-4000-8000-00000000000b" }), 4);
        let next = world.ack(&sid_a, 4).unwrap();
        assert_eq!(next["data"]["seq"], 2, "{next}");
    }

    #[test]
    fn membership_lost_with_a_chat_object_reaches_the_members_from_its_outbox() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(12), make_sid(13));
        let a = world.connect(&sid_a, "ida");
        world.crash_next_chat = true;
        world.emit(&a, "chat:create", json!({ "kind": "group", "memberIds": ["jon"], "title": "t" }), 1);
        let chat = world.store.chats().next().expect("the chat was stored").id.clone();
        assert!(world.user_disk.get(&UserId::new("jon")).is_none_or(|disk| disk.index.chats.is_empty()));
        // The object wakes (its alarm, or any request) and sends its outbox again.
        world.alarm(Dest::Chat(chat.clone()));
        assert!(world.chat_disk[&chat].outbox.is_empty());
        let b = world.connect_with(&sid_b, "jon", true);
        assert_eq!(world.chat_disk[&chat].rooms.get(&b), Some(&UserId::new("jon")), "autoJoin found the chat");
    }

    #[test]
    fn a_dm_key_held_by_a_chat_that_was_never_stored_is_taken_over() {
        let mut world = World::default();
        let sid = make_sid(14);
        let a = world.connect(&sid, "kim");
        // A chat object claimed the key and died before storing its chat.
        let key = Chat::dm_key(&UserId::new("kim"), &UserId::new("lee"));
        world.registry.insert(key.clone(), ChatId::new("phantom"));
        world.emit(&a, "chat:create", json!({ "kind": "dm", "memberIds": ["lee"] }), 1);
        let created = world.ack(&sid, 1).unwrap();
        assert_eq!(created["ok"], true, "{created}");
        let id = created["data"]["chat"]["id"].as_str().unwrap().to_string();
        assert_eq!(world.registry[&key].as_str(), id);
        assert!(world.tombstones.contains(&ChatId::new("phantom")), "the phantom may never store it later");
        world.emit(&a, "chat:create", json!({ "kind": "dm", "memberIds": ["lee"] }), 2);
        assert_eq!(world.ack(&sid, 2).unwrap()["data"]["chat"]["id"].as_str(), Some(id.as_str()));
    }

    #[test]
    fn the_registry_lets_a_claim_take_over_only_the_owner_it_names() {
        let (x, y, z) = (ChatId::new("x"), ChatId::new("y"), ChatId::new("z"));
        assert_eq!(registry_claim(None, &x, None), x);
        assert_eq!(registry_claim(Some(&x), &y, None), x);
        assert_eq!(registry_claim(Some(&x), &y, Some(&x)), y);
        assert_eq!(registry_claim(Some(&z), &y, Some(&x)), z);
    }

    #[test]
    fn typing_stops_after_the_chat_object_lost_its_memory() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(15), make_sid(16));
        let a = world.connect(&sid_a, "mo");
        let b = world.connect(&sid_b, "ned");
        let chat_id = world.group(&a, &["ned"], 1);
        world.emit(&a, "room:join", json!({ "chatId": chat_id }), 2);
        world.emit(&b, "room:join", json!({ "chatId": chat_id }), 1);
        world.emit(&b, "typing:start", json!({ "chatId": chat_id }), 2);
        assert_eq!(world.events(&sid_a, "typing:update").len(), 1);
        let id = ChatId::new(chat_id.as_str());
        world.chats.remove(&id);
        world.now += Limits::default().typing_timeout_ms + 1;
        world.alarm(Dest::Chat(id));
        let updates = world.events(&sid_a, "typing:update");
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert_eq!(updates[1]["state"], "stop");
        assert_eq!(updates[1]["userId"], "ned");
    }

    #[test]
    fn a_deferred_presence_update_goes_out_after_the_user_object_lost_its_memory() {
        let mut world = World::default();
        let (sid_a, sid_b) = (make_sid(17), make_sid(18));
        let a = world.connect(&sid_a, "oli");
        let _chat = world.group(&a, &["pat"], 1);
        let b = world.connect(&sid_b, "pat");
        assert_eq!(world.events(&sid_a, "presence:update").last().unwrap()["status"], "online");
        // Inside the throttle window: the offline update is due at its end.
        world.disconnect(&b);
        assert_eq!(world.events(&sid_a, "presence:update").len(), 1);
        world.users.remove(&UserId::new("pat"));
        world.now += Limits::default().presence_throttle_ms + 1;
        world.alarm(Dest::User(UserId::new("pat")));
        let updates = world.events(&sid_a, "presence:update");
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert_eq!(updates[1]["status"], "offline");
    }

    #[test]
    fn map_changes_list_writes_and_deletes() {
        let s = |n: &str| SocketId::new(n);
        let u = UserId::new("u");
        let before: BTreeMap<_, _> = [(s("a"), u.clone()), (s("b"), u.clone())].into();
        let after: BTreeMap<_, _> = [(s("b"), u.clone()), (s("c"), u.clone())].into();
        assert_eq!(room_changes(&before, &after), vec![(s("c"), Some(u)), (s("a"), None)]);
    }
}
