//! One user's partition: their sockets on every device, presence, the rate limit across
//! devices, idempotency of their sends, and what they learn of their chats' members.

use crate::chat::send_ack_json;
use crate::command::{ClientCommand, CreateChat, HistoryQuery, HttpCommand, SendCommand};
use crate::effect::{connect_error_json, Effect, LogLevel, Payload, Room, ServerEvent, Target};
use crate::error::ChatError;
use crate::ids::{ChatId, ClientId, Millis, OpId, Seq, SocketId, UserId};
use crate::model::{Chat, ChatKind, Message};
use crate::route::{ChatMsg, Ctx, Reply, UserMsg};
use crate::sorted::{VecMap, VecSet};
use crate::storage::{InboxRow, StorageOp, StorageResult, UserRecord};
use crate::time::iso8601;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many of the user's stored messages stay in memory for answering retries.
const KNOWN_SENDS: usize = 256;

pub struct UserPartition {
    id: UserId,
    phase: Phase,
    /// Messages that arrived while the user was loading (empty, and unallocated, after).
    waiting: VecDeque<UserMsg>,
    /// Connected sockets, each with the chats whose room it asked to join. A user has one
    /// or two: sorted `Vec`s, not B-trees, so an idle socket costs what it holds.
    sockets: VecMap<SocketId, VecSet<ChatId>>,
    /// Sockets let in once this many `autoJoin` answers are back (emptied for good once
    /// they are: a `BTreeMap` would keep its node).
    connecting: VecMap<SocketId, usize>,
    /// The user's chats and their members (contacts are everyone in them).
    chats: BTreeMap<ChatId, Vec<UserId>>,
    /// `createdAt` of the user's stored messages inside the rate window, oldest first.
    sends: VecDeque<Millis>,
    /// Sends on their way to storage, each holding a place in the rate window.
    reserved: usize,
    /// Recently stored messages by client id, for answering retries without storage.
    known: BTreeMap<ClientId, Message>,
    known_order: VecDeque<ClientId>,
    /// Sends in progress by client id, with retries of the same id waiting behind them.
    sending: BTreeMap<ClientId, Vec<(SendCommand, Reply)>>,
    /// Sends handed to a chat partition, with when to stop waiting for its answer.
    awaiting: BTreeMap<ClientId, Millis>,
    /// Sends whose answer was given up on; they count in `sends` from that moment.
    given_up: BTreeSet<ClientId>,
    lookups: BTreeMap<OpId, Lookup>,
    presence: Presence,
    /// `presence:snapshot`s waiting for answers, one per connecting socket at most.
    snapshots: VecMap<u64, Snapshot>,
    next_token: u64,
    /// A timer fired before the user's chats were loaded: it runs once they are.
    timeout_after_load: bool,
}

enum Phase {
    Loading(OpId),
    /// Loading failed; the next message tries again.
    Unloaded,
    Ready,
}

enum Lookup {
    Find { command: SendCommand, reply: Reply },
    Inbox { reply: Reply },
}

/// Presence as a partition keeps it; a host whose partition memory can vanish keeps a copy
/// (see [`UserPartition::presence`] and [`UserPartition::restore_presence`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Latest connect, event or disconnect.
    pub last_seen: Millis,
    /// The status contacts were last told.
    pub announced: bool,
    pub announced_at: Option<Millis>,
    /// End of the throttle window, when a change inside it is due.
    pub due: Option<Millis>,
}

struct Snapshot {
    socket: SocketId,
    waiting: BTreeSet<UserId>,
    online: BTreeSet<UserId>,
}

impl UserPartition {
    pub fn new(id: UserId) -> Self {
        Self {
            id,
            phase: Phase::Unloaded,
            waiting: VecDeque::new(),
            sockets: VecMap::new(),
            connecting: VecMap::new(),
            chats: BTreeMap::new(),
            sends: VecDeque::new(),
            reserved: 0,
            known: BTreeMap::new(),
            known_order: VecDeque::new(),
            sending: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            given_up: BTreeSet::new(),
            lookups: BTreeMap::new(),
            presence: Presence { last_seen: Millis(0), announced: false, announced_at: None, due: None },
            snapshots: VecMap::new(),
            next_token: 0,
            timeout_after_load: false,
        }
    }

    pub fn id(&self) -> &UserId {
        &self.id
    }

    pub fn is_online(&self) -> bool {
        !self.sockets.is_empty()
    }

    pub fn sockets(&self) -> impl Iterator<Item = &SocketId> {
        self.sockets.keys()
    }

    /// Each connected socket in order, with the chats whose room it asked to join, in
    /// order. A host whose partition memory can vanish while sockets stay connected (a
    /// Durable Object that is evicted or hibernates) keeps this and hands it back through
    /// [`UserPartition::restore_socket`].
    pub fn socket_chats(&self) -> impl Iterator<Item = (&SocketId, &[ChatId])> {
        self.sockets.iter().map(|(socket, chats)| (socket, chats.as_slice()))
    }

    /// Re-registers a socket that stayed connected while the host lost this partition's
    /// memory. Nothing is emitted: the socket is in its rooms already, and its contacts
    /// were told the user is online when it connected.
    pub fn restore_socket(&mut self, socket: SocketId, chats: impl IntoIterator<Item = ChatId>) {
        self.sockets.insert(socket, chats.into_iter().collect());
        self.presence.announced = true;
    }

    /// The presence state (what contacts were told, and any update still due).
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Puts back the presence state of a partition whose memory the host lost, so that an
    /// update due at the end of a throttle window still goes out. Nothing is emitted.
    pub fn restore_presence(&mut self, presence: Presence) {
        self.presence = presence;
    }

    /// True when dropping this partition loses nothing storage does not have.
    pub fn is_idle(&self, now: Millis, presence_throttle_ms: u64) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Unloaded)
            && self.waiting.is_empty()
            && self.sockets.is_empty()
            && self.reserved == 0
            && self.sending.is_empty()
            && self.lookups.is_empty()
            && self.snapshots.is_empty()
            && self.presence.due.is_none()
            // A partition that just announced keeps its throttle window.
            && self.presence.announced_at.is_none_or(|at| now.since(at) >= presence_throttle_ms)
    }

    /// When [`UserPartition::handle_timeout`] is next due.
    pub fn next_deadline(&self, presence_throttle_ms: u64) -> Option<Millis> {
        let presence = self.presence.due.or_else(|| {
            let at = self.presence.announced_at?;
            self.sockets.is_empty().then(|| at.plus(presence_throttle_ms))
        });
        let answer = self.awaiting.values().min().copied();
        match (presence, answer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle(&mut self, ctx: &mut Ctx, msg: UserMsg) {
        match self.phase {
            Phase::Ready => self.handle_ready(ctx, msg),
            Phase::Loading(_) => self.waiting.push_back(msg),
            Phase::Unloaded => {
                let since = Millis(ctx.now.0.saturating_sub(ctx.limits.rate_limit_window_ms));
                self.phase = Phase::Loading(ctx.storage(StorageOp::LoadUser { user: self.id.clone(), sends_since: since }));
                self.waiting.push_back(msg);
            }
        }
    }

    pub fn handle_timeout(&mut self, ctx: &mut Ctx) {
        let overdue: Vec<ClientId> = self.awaiting.iter().filter(|(_, at)| **at <= ctx.now).map(|(id, _)| id.clone()).collect();
        for client_id in overdue {
            // The chat's answer is lost: its sender hears nothing (and retries); retries
            // waiting here go ahead and find out from storage what became of the message.
            ctx.log(LogLevel::Warn, None, format!("no answer from the chat to the send of clientId {client_id} of user {}; letting retries through", self.id));
            remove_releasing(&mut self.awaiting, &client_id);
            self.reserved = self.reserved.saturating_sub(1);
            // The message may yet be stored, at a time no later than now: it counts against
            // the rate limit as if stored now, for a whole window.
            let at = self.sends.partition_point(|sent| *sent <= ctx.now);
            self.sends.insert(at, ctx.now);
            self.given_up.insert(client_id.clone());
            self.release_retries(ctx, &client_id);
        }
        // Announcing needs the contacts: a partition rebuilt by a host loads them first.
        match self.phase {
            Phase::Ready => {}
            Phase::Loading(_) => return self.timeout_after_load = true,
            Phase::Unloaded => {
                let since = Millis(ctx.now.0.saturating_sub(ctx.limits.rate_limit_window_ms));
                self.phase = Phase::Loading(ctx.storage(StorageOp::LoadUser { user: self.id.clone(), sends_since: since }));
                return self.timeout_after_load = true;
            }
        }
        if self.presence.due.is_some_and(|due| due <= ctx.now) {
            self.presence.due = None;
            if self.is_online() != self.presence.announced {
                self.announce(ctx);
            }
        }
    }

    pub fn handle_storage(&mut self, ctx: &mut Ctx, op: OpId, result: StorageResult) {
        if matches!(self.phase, Phase::Loading(loading) if loading == op) {
            return self.on_loaded(ctx, result);
        }
        match remove_releasing(&mut self.lookups, &op) {
            Some(Lookup::Find { command, reply }) => self.on_found(ctx, command, reply, result),
            Some(Lookup::Inbox { reply }) => match result {
                StorageResult::Inbox(rows) => ctx.reply_ok(&reply, Some(inbox_json(rows))),
                other => ctx.reply_err(&reply, ChatError::internal(format!("could not list chats: {other:?}"))),
            },
            None => {}
        }
    }

    fn on_loaded(&mut self, ctx: &mut Ctx, result: StorageResult) {
        match result {
            StorageResult::User(UserRecord { chats, mut recent_sends }) => {
                self.chats = chats.into_iter().collect();
                recent_sends.sort();
                self.sends = recent_sends.into();
                self.phase = Phase::Ready;
                // Members that changed while loading first (each chat's last word is its
                // newest), so no queued command runs on a view older than what was read.
                // Taken, not drained: the queue's allocation goes with it (nothing waits once
                // the user is ready, and most users never queue again).
                let (members, rest): (Vec<UserMsg>, Vec<UserMsg>) =
                    std::mem::take(&mut self.waiting).into_iter().partition(|msg| matches!(msg, UserMsg::ChatMembers { .. }));
                for msg in members.into_iter().chain(rest) {
                    self.handle_ready(ctx, msg);
                }
                if std::mem::take(&mut self.timeout_after_load) {
                    self.handle_timeout(ctx);
                }
            }
            other => {
                self.phase = Phase::Unloaded;
                self.timeout_after_load = false;
                let error = ChatError::internal(format!("could not load the user: {other:?}"));
                for msg in std::mem::take(&mut self.waiting) {
                    self.fail(ctx, msg, error.clone());
                }
            }
        }
    }

    /// Answers a message that could not be carried out.
    fn fail(&mut self, ctx: &mut Ctx, msg: UserMsg, error: ChatError) {
        match msg {
            UserMsg::Connect { socket, .. } => self.reject(ctx, socket, error),
            UserMsg::Command { reply, .. } | UserMsg::Http { reply, .. } => ctx.reply_err(&reply, error),
            UserMsg::PresenceAsk { asker, token } => {
                ctx.to_user(asker, UserMsg::PresenceTell { token, user: self.id.clone(), online: false })
            }
            // The socket is connected whatever storage says: keep it.
            UserMsg::Restore { socket, chats } => {
                if !self.sockets.contains_key(&socket) {
                    self.restore_socket(socket, chats);
                }
            }
            // Announcing needs the user's chats; a lost socket is simply forgotten.
            UserMsg::Lost { socket } => {
                self.sockets.remove(&socket);
            }
            // Nothing of these lives without the loaded state: sockets connect only once loaded.
            UserMsg::Disconnect { .. }
            | UserMsg::SendDone { .. }
            | UserMsg::Left { .. }
            | UserMsg::AutoJoined { .. }
            | UserMsg::ChatMembers { .. }
            | UserMsg::PresenceTell { .. } => {}
        }
    }

    fn reject(&mut self, ctx: &mut Ctx, socket: SocketId, error: ChatError) {
        let correlation_id = ctx.ids.correlation_id();
        ctx.log(
            LogLevel::Warn,
            Some(correlation_id.clone()),
            format!("connection {socket} of user {} refused: {} ({}) {}", self.id, error.code(), error.message(), connect_error_json(&error, &correlation_id)),
        );
        ctx.effect(Effect::RejectConnection { socket, error, correlation_id });
    }

    fn handle_ready(&mut self, ctx: &mut Ctx, msg: UserMsg) {
        match msg {
            UserMsg::Connect { socket, auto_join } => self.connect(ctx, socket, auto_join),
            UserMsg::Disconnect { socket } => self.disconnect(ctx, socket),
            UserMsg::Command { socket, command, reply } => {
                if !self.sockets.contains_key(&socket) {
                    return;
                }
                self.presence.last_seen = self.presence.last_seen.max(ctx.now);
                self.command(ctx, socket, command, reply);
            }
            UserMsg::Http { command, reply } => self.http(ctx, command, reply),
            UserMsg::SendDone { client_id, outcome } => {
                // A late answer to a send given up on: it already counts in the window.
                let late = self.given_up.remove(&client_id);
                if !late {
                    self.reserved = self.reserved.saturating_sub(1);
                }
                remove_releasing(&mut self.awaiting, &client_id);
                if let Ok(message) = outcome {
                    if !late {
                        // Sends of different chats complete in any order: keep the window
                        // sorted, or an expired time behind a newer one would never leave it.
                        let at = self.sends.partition_point(|sent| *sent <= message.created_at);
                        self.sends.insert(at, message.created_at);
                    }
                    self.remember(message);
                }
                self.release_retries(ctx, &client_id);
            }
            UserMsg::AutoJoined { socket, .. } => {
                let Some(waiting) = self.connecting.get_mut(&socket) else { return };
                *waiting = waiting.saturating_sub(1);
                if *waiting == 0 {
                    self.connecting.remove(&socket);
                    self.let_in(ctx, socket);
                }
            }
            UserMsg::Left { socket, chat } => {
                if let Some(chats) = self.sockets.get_mut(&socket) {
                    chats.remove(&chat);
                }
            }
            UserMsg::ChatMembers { chat, members } => {
                if members.contains(&self.id) {
                    self.chats.insert(chat, members);
                } else {
                    self.chats.remove(&chat);
                }
            }
            UserMsg::PresenceAsk { asker, token } => {
                ctx.to_user(asker, UserMsg::PresenceTell { token, user: self.id.clone(), online: self.is_online() });
            }
            UserMsg::PresenceTell { token, user, online } => self.snapshot_answer(ctx, token, user, online),
            UserMsg::Restore { socket, chats } => {
                // A socket this partition already knows keeps what it knows.
                if !self.sockets.contains_key(&socket) {
                    self.restore_socket(socket, chats);
                }
            }
            UserMsg::Lost { socket } => {
                if !self.sockets.contains_key(&socket) {
                    self.restore_socket(socket.clone(), []);
                }
                self.disconnect(ctx, socket);
            }
        }
    }

    fn connect(&mut self, ctx: &mut Ctx, socket: SocketId, auto_join: bool) {
        if self.sockets.len() >= ctx.limits.max_sockets_per_user {
            let max = ctx.limits.max_sockets_per_user;
            return self.reject(ctx, socket, ChatError::TooManyConnections(format!("at most {max} sockets per user")));
        }
        ctx.effect(Effect::JoinRoom { socket: socket.clone(), room: Room::User(self.id.clone()) });
        self.presence.last_seen = self.presence.last_seen.max(ctx.now);
        let joining: VecSet<ChatId> = if auto_join { self.chats.keys().cloned().collect() } else { VecSet::new() };
        for chat in &joining {
            let reply = Reply::AutoJoin { socket: socket.clone(), user: self.id.clone(), chat: chat.clone() };
            ctx.to_chat(chat.clone(), ChatMsg::Join { socket: socket.clone(), user: self.id.clone(), reply });
        }
        let waiting = joining.len();
        self.sockets.insert(socket.clone(), joining);
        if waiting == 0 {
            self.let_in(ctx, socket);
        } else {
            // The client hears `connect` only once it is in every chat room it asked for.
            self.connecting.insert(socket, waiting);
        }
    }

    /// Completes a connection: the socket is in its rooms, so the client may start.
    fn let_in(&mut self, ctx: &mut Ctx, socket: SocketId) {
        ctx.effect(Effect::AcceptConnection { socket: socket.clone(), user: self.id.clone() });
        self.presence_changed(ctx);
        self.ask_snapshot(ctx, socket);
    }

    fn disconnect(&mut self, ctx: &mut Ctx, socket: SocketId) {
        let Some(chats) = self.sockets.remove(&socket) else { return };
        self.connecting.remove(&socket);
        for chat in chats {
            ctx.to_chat(chat, ChatMsg::SocketGone { socket: socket.clone(), user: self.id.clone() });
        }
        self.snapshots.retain(|(_, snapshot)| snapshot.socket != socket);
        self.presence.last_seen = self.presence.last_seen.max(ctx.now);
        self.presence_changed(ctx);
    }

    fn command(&mut self, ctx: &mut Ctx, socket: SocketId, command: ClientCommand, reply: Reply) {
        let user = self.id.clone();
        match command {
            ClientCommand::JoinRoom { chat } => {
                if let Some(chats) = self.sockets.get_mut(&socket) {
                    chats.insert(chat.clone());
                }
                ctx.to_chat(chat, ChatMsg::Join { socket, user, reply });
            }
            ClientCommand::LeaveRoom { chat } => {
                if let Some(chats) = self.sockets.get_mut(&socket) {
                    chats.remove(&chat);
                }
                ctx.to_chat(chat, ChatMsg::Leave { socket, user, reply });
            }
            ClientCommand::Send(command) => self.send(ctx, command, reply),
            ClientCommand::Typing { chat, typing } => ctx.to_chat(chat, ChatMsg::Typing { user, typing }),
            ClientCommand::Read { chat, message } => ctx.to_chat(chat, ChatMsg::Read { user, message, reply }),
            ClientCommand::Ping => ctx.reply_ok(&reply, Some(json!({ "serverTime": iso8601(ctx.now) }))),
            ClientCommand::CreateChat(create) => self.create_chat(ctx, create, reply),
            ClientCommand::Sync { chat, after, limit } => {
                ctx.to_chat(chat, ChatMsg::History { user, query: HistoryQuery::After(after), limit, reply })
            }
        }
    }

    fn http(&mut self, ctx: &mut Ctx, command: HttpCommand, reply: Reply) {
        let user = self.id.clone();
        match command {
            HttpCommand::ListChats => {
                let op = ctx.storage(StorageOp::ListInbox { user });
                self.lookups.insert(op, Lookup::Inbox { reply });
            }
            HttpCommand::CreateChat(create) => self.create_chat(ctx, create, reply),
            HttpCommand::History { chat, query, limit } => ctx.to_chat(chat, ChatMsg::History { user, query, limit, reply }),
            HttpCommand::RenameChat { chat, title } => ctx.to_chat(chat, ChatMsg::Rename { user, title, reply }),
            HttpCommand::AddMember { chat, user: member } => ctx.to_chat(chat, ChatMsg::AddMember { actor: user, member, reply }),
            HttpCommand::RemoveMember { chat, user: member } => {
                ctx.to_chat(chat, ChatMsg::RemoveMember { actor: user, member, reply })
            }
        }
    }

    /// `message:send`: a retry answers what was stored; a new message needs a place in the
    /// rate window, and storage decides whether it was stored before.
    fn send(&mut self, ctx: &mut Ctx, command: SendCommand, reply: Reply) {
        if let Some(waiters) = self.sending.get_mut(&command.client_id) {
            waiters.push((command, reply));
            return;
        }
        if let Some(known) = self.known.get(&command.client_id) {
            return ctx.reply(&reply, retry_answer(known, &command));
        }
        self.sending.insert(command.client_id.clone(), Vec::new());
        let op = ctx.storage(StorageOp::FindMessage { sender: self.id.clone(), client_id: command.client_id.clone() });
        self.lookups.insert(op, Lookup::Find { command, reply });
    }

    fn on_found(&mut self, ctx: &mut Ctx, command: SendCommand, reply: Reply, result: StorageResult) {
        let client_id = command.client_id.clone();
        match result {
            StorageResult::Message(Some(message)) => {
                ctx.reply(&reply, retry_answer(&message, &command));
                self.remember(message);
            }
            StorageResult::Message(None) => {
                if self.rate_window_full(ctx) {
                    let limits = ctx.limits;
                    let error = ChatError::RateLimited(format!(
                        "at most {} messages per {} ms",
                        limits.rate_limit_messages, limits.rate_limit_window_ms
                    ));
                    ctx.reply_err(&reply, error);
                } else {
                    self.reserved += 1;
                    if let Some(timeout) = ctx.limits.send_answer_timeout_ms {
                        self.awaiting.insert(client_id, ctx.now.plus(timeout));
                    }
                    ctx.to_chat(command.chat.clone(), ChatMsg::Send { user: self.id.clone(), command, reply });
                    // The chat partition answers with SendDone; retries wait until then.
                    return;
                }
            }
            other => ctx.reply_err(&reply, ChatError::internal(format!("could not check the clientId: {other:?}"))),
        }
        self.release_retries(ctx, &client_id);
    }

    /// Retries of a clientId that waited behind its send (for storage or the chat) go ahead.
    fn release_retries(&mut self, ctx: &mut Ctx, client_id: &ClientId) {
        for (command, reply) in remove_releasing(&mut self.sending, client_id).unwrap_or_default() {
            self.send(ctx, command, reply);
        }
    }

    /// The sliding window (§5): stored messages in the last window, plus those on their way.
    fn rate_window_full(&mut self, ctx: &Ctx) -> bool {
        let window = ctx.limits.rate_limit_window_ms;
        while self.sends.front().is_some_and(|at| ctx.now.since(*at) >= window) {
            self.sends.pop_front();
        }
        let used = self.sends.len() + self.reserved;
        #[cfg(feature = "mutants")]
        if crate::mutants::active(crate::mutants::Mutant::RateLimitOffByOne) {
            return used > ctx.limits.rate_limit_messages;
        }
        used >= ctx.limits.rate_limit_messages
    }

    fn remember(&mut self, message: Message) {
        if self.known.insert(message.client_id.clone(), message.clone()).is_none() {
            self.known_order.push_back(message.client_id);
        }
        while self.known_order.len() > KNOWN_SENDS {
            if let Some(oldest) = self.known_order.pop_front() {
                self.known.remove(&oldest);
            }
        }
    }

    fn create_chat(&mut self, ctx: &mut Ctx, create: CreateChat, reply: Reply) {
        let me = self.id.clone();
        let (kind, title, members, dm_key) = match create {
            CreateChat::Dm { other } => {
                if other == me {
                    return ctx.reply_err(&reply, ChatError::validation("a direct chat needs another user"));
                }
                let key = Chat::dm_key(&me, &other);
                (ChatKind::Dm, None, vec![me.clone(), other], Some(key))
            }
            CreateChat::Group { members, title } => {
                let mut all = vec![me.clone()];
                all.extend(members.into_iter().filter(|member| *member != me));
                if all.len() > ctx.limits.max_group_members {
                    let max = ctx.limits.max_group_members;
                    return ctx.reply_err(&reply, ChatError::validation(format!("a group has at most {max} members")));
                }
                (ChatKind::Group, Some(title), all, None)
            }
        };
        let chat = Chat {
            id: ChatId::new(ctx.ids.uuid_v7(ctx.now)),
            kind,
            title,
            member_ids: members,
            created_by: me,
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        ctx.to_chat(chat.id.clone(), ChatMsg::Create { chat, dm_key, reply });
    }

    fn contacts(&self) -> BTreeSet<UserId> {
        self.chats.values().flatten().filter(|user| **user != self.id).cloned().collect()
    }

    /// Online and offline go to contacts at most once per throttle window (§8).
    fn presence_changed(&mut self, ctx: &mut Ctx) {
        if self.presence.due.is_some() || self.is_online() == self.presence.announced {
            return;
        }
        match self.presence.announced_at {
            Some(at) if ctx.now.since(at) < ctx.limits.presence_throttle_ms => {
                self.presence.due = Some(at.plus(ctx.limits.presence_throttle_ms));
            }
            _ => self.announce(ctx),
        }
    }

    fn announce(&mut self, ctx: &mut Ctx) {
        let online = self.is_online();
        self.presence.announced = online;
        self.presence.announced_at = Some(ctx.now);
        let payload: Payload = json!({
            "userId": self.id.as_str(),
            "status": if online { "online" } else { "offline" },
            "lastSeenAt": iso8601(self.presence.last_seen),
        })
        .into();
        for contact in self.contacts() {
            ctx.effect(Effect::Emit {
                to: Target::Room(Room::User(contact)),
                except_user: None,
                event: ServerEvent::PresenceUpdate,
                payload: payload.clone(),
            });
        }
    }

    /// `presence:snapshot` needs every contact's answer; a user nobody hosts is offline.
    fn ask_snapshot(&mut self, ctx: &mut Ctx, socket: SocketId) {
        let contacts = self.contacts();
        if contacts.is_empty() {
            return emit_snapshot(ctx, socket, &BTreeSet::new());
        }
        self.next_token += 1;
        let token = self.next_token;
        for contact in &contacts {
            ctx.to_user(contact.clone(), UserMsg::PresenceAsk { asker: self.id.clone(), token });
        }
        self.snapshots.insert(token, Snapshot { socket, waiting: contacts, online: BTreeSet::new() });
    }

    fn snapshot_answer(&mut self, ctx: &mut Ctx, token: u64, user: UserId, online: bool) {
        let Some(snapshot) = self.snapshots.get_mut(&token) else { return };
        snapshot.waiting.remove(&user);
        if online {
            snapshot.online.insert(user);
        }
        if snapshot.waiting.is_empty() {
            if let Some(done) = self.snapshots.remove(&token) {
                emit_snapshot(ctx, done.socket, &done.online);
            }
        }
    }
}

/// `map.remove(key)`, and an emptied map gives its memory back. A `BTreeMap` keeps its node
/// once emptied, and the maps of a user's sends are empty but for the moments the user
/// sends: a user who sent once would otherwise keep a node of each while connected.
fn remove_releasing<K: Ord, V>(map: &mut BTreeMap<K, V>, key: &K) -> Option<V> {
    let value = map.remove(key);
    if map.is_empty() {
        *map = BTreeMap::new();
    }
    value
}

fn emit_snapshot(ctx: &mut Ctx, socket: SocketId, online: &BTreeSet<UserId>) {
    ctx.effect(Effect::Emit {
        to: Target::Socket(socket),
        except_user: None,
        event: ServerEvent::PresenceSnapshot,
        payload: json!({ "online": online.iter().map(UserId::as_str).collect::<Vec<_>>() }).into(),
    });
}

/// A retried clientId acks what was stored, if it is the same message (§5).
fn retry_answer(stored: &Message, command: &SendCommand) -> Result<Option<serde_json::Value>, ChatError> {
    if stored.chat_id == command.chat && stored.body == command.body && stored.kind == command.kind {
        Ok(Some(send_ack_json(stored)))
    } else {
        Err(ChatError::validation("clientId was already used for a different message"))
    }
}

/// `GET /api/v1/chats`: newest activity first (§9).
fn inbox_json(mut rows: Vec<InboxRow>) -> serde_json::Value {
    let activity = |row: &InboxRow| row.last_message.as_ref().map_or(row.chat.created_at, |m| m.created_at);
    rows.sort_by(|a, b| activity(b).cmp(&activity(a)).then_with(|| b.chat.id.cmp(&a.chat.id)));
    let chats: Vec<_> = rows
        .iter()
        .map(|row| {
            let last_seq = row.last_message.as_ref().map_or(Seq::ZERO, |m| m.seq);
            let unread = row.read.cursor.clone().unwrap_or_default().unread(last_seq, row.read.sent);
            json!({
                "chat": row.chat.to_json(),
                "lastMessage": row.last_message.as_ref().map(Message::to_json),
                "unreadCount": unread,
            })
        })
        .collect();
    json!({ "chats": chats })
}
