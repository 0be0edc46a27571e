//! One chat's partition: its members, `seq`, read cursors, typing and live room.
//!
//! Writes go through a single committer: intents queue while one commit is in flight and
//! the next commit carries all that queued (group commit). Rules are checked when an
//! intent enters a commit, against the stored state plus what that commit already holds,
//! and the state changes only once storage says the commit is durable.

use crate::command::{HistoryQuery, SendCommand};
use crate::effect::{Effect, Payload, Room, ServerEvent, Target};
use crate::error::ChatError;
use crate::ids::{ChatId, MessageId, Millis, OpId, Seq, SocketId, UserId};
use crate::model::{page_json, Chat, ChatKind, Message};
use crate::pace::TokenBucket;
use crate::route::{ChatMsg, Ctx, Reply, UserMsg};
use crate::storage::{ChatRecord, MemberRead, ReadCursor, ReadTarget, StorageOp, StorageResult, Write};
use crate::time::iso8601;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

pub struct ChatPartition {
    id: ChatId,
    phase: Phase,
    /// Messages that arrived before the stored state did; replayed once it is here.
    waiting: VecDeque<ChatMsg>,
    /// Sockets in the `chat:` room, and whose they are. Memory only: rooms die with the host.
    joined: BTreeMap<SocketId, UserId>,
    /// Users typing now, with when their typing lapses.
    typing: BTreeMap<UserId, Millis>,
    /// What the room was last told of each user's typing, and how fast it may be told more.
    typing_pace: BTreeMap<UserId, TypingPace>,
    /// Writes waiting for the committer.
    pending: VecDeque<Intent>,
    /// The commit in flight, with what to do once it is durable.
    in_flight: Option<(OpId, Vec<Staged>)>,
    /// Storage reads in flight.
    reads: BTreeMap<OpId, PendingRead>,
}

enum Phase {
    /// Reading the stored state (first touch, or after a commit whose outcome is unknown).
    Loading(OpId),
    /// Storing a chat made by `chat:create`.
    Creating { op: OpId, chat: Chat, reply: Reply },
    Ready(Stored),
    /// Storage has no such chat.
    Absent,
    /// Loading failed; the next message tries again.
    Unloaded,
}

/// The chat as storage has it.
struct Stored {
    chat: Chat,
    last_seq: Seq,
    reads: BTreeMap<UserId, MemberState>,
}

#[derive(Clone, Default)]
struct MemberState {
    cursor: ReadCursor,
    sent: u64,
}

enum Intent {
    Send { user: UserId, command: SendCommand, reply: Reply },
    Read { user: UserId, message: MessageId, target: ReadTarget, reply: Reply },
    Change { change: Change, reply: Reply },
}

enum Change {
    Rename { user: UserId, title: String },
    Add { actor: UserId, member: UserId },
    Remove { actor: UserId, member: UserId },
}

/// A write in a commit, with what to announce once it is durable.
enum Staged {
    Message { message: Message, reply: Reply },
    Cursor { user: UserId, cursor: ReadCursor, reply: Reply },
    /// A read that did not move the cursor, answered with a position this commit sets.
    Standing { cursor: ReadCursor, reply: Reply },
    Chat { before: Chat, after: Chat, reply: Reply },
}

enum PendingRead {
    History { query: HistoryQuery, limit: u32, reply: Reply },
    ResolveRead { user: UserId, message: MessageId, reply: Reply },
}

impl ChatPartition {
    /// A partition for a chat that storage should already have.
    pub fn load(id: ChatId, ctx: &mut Ctx) -> Self {
        let op = ctx.storage(StorageOp::LoadChat { chat: id.clone() });
        Self::with_phase(id, Phase::Loading(op))
    }

    /// A partition for a chat being created; `msg` must be [`ChatMsg::Create`].
    pub fn create(id: ChatId, msg: ChatMsg, ctx: &mut Ctx) -> Self {
        match msg {
            ChatMsg::Create { chat, dm_key, reply } => {
                let op = ctx.storage(StorageOp::CreateChat { chat: chat.clone(), dm_key });
                Self::with_phase(id, Phase::Creating { op, chat, reply })
            }
            other => {
                let mut partition = Self::load(id, ctx);
                partition.handle(ctx, other);
                partition
            }
        }
    }

    fn with_phase(id: ChatId, phase: Phase) -> Self {
        Self {
            id,
            phase,
            waiting: VecDeque::new(),
            joined: BTreeMap::new(),
            typing: BTreeMap::new(),
            typing_pace: BTreeMap::new(),
            pending: VecDeque::new(),
            in_flight: None,
            reads: BTreeMap::new(),
        }
    }

    pub fn id(&self) -> &ChatId {
        &self.id
    }

    /// True when dropping this partition loses nothing storage does not have.
    pub fn is_idle(&self) -> bool {
        let settled = matches!(self.phase, Phase::Ready(_) | Phase::Absent | Phase::Unloaded);
        settled
            && self.waiting.is_empty()
            && self.joined.is_empty()
            && self.typing.is_empty()
            && self.typing_pace.values().all(|pace| pace.due.is_none())
            && self.pending.is_empty()
            && self.in_flight.is_none()
            && self.reads.is_empty()
    }

    /// When [`ChatPartition::handle_timeout`] is next due.
    pub fn next_deadline(&self) -> Option<Millis> {
        let lapses = self.typing.values().copied();
        let paced = self.typing_pace.values().filter_map(|pace| pace.due);
        lapses.chain(paced).min()
    }

    /// The chat as stored, once loaded.
    pub fn chat(&self) -> Option<&Chat> {
        match &self.phase {
            Phase::Ready(stored) => Some(&stored.chat),
            _ => None,
        }
    }

    /// The sockets in the room, and whose they are.
    pub fn joined(&self) -> &BTreeMap<SocketId, UserId> {
        &self.joined
    }

    /// Puts back a socket that stayed in the room while the host lost this partition's
    /// memory (see [`crate::user::UserPartition::restore_socket`]); nothing is emitted.
    pub fn restore_joined(&mut self, socket: SocketId, user: UserId) {
        self.joined.insert(socket, user);
    }

    /// Who is typing now, and when each one's typing lapses. A host whose partition memory
    /// can vanish keeps this and hands it back through [`ChatPartition::restore_typing`],
    /// so that the `stop` still goes out.
    pub fn typing_deadlines(&self) -> &BTreeMap<UserId, Millis> {
        &self.typing
    }

    /// Puts back a user who was typing while the host lost this partition's memory;
    /// nothing is emitted (their `start` went out already).
    pub fn restore_typing(&mut self, user: UserId, deadline: Millis) {
        self.typing.insert(user.clone(), deadline);
        // The room was told `start`: the `stop` at the lapse must still go out.
        self.typing_pace.insert(user, TypingPace::new(true, Millis(0)));
    }

    pub fn handle(&mut self, ctx: &mut Ctx, msg: ChatMsg) {
        // The room is memory only: restoring it needs no stored state, so it never waits.
        if let ChatMsg::Restore { socket, user } = msg {
            return self.restore_joined(socket, user);
        }
        match &self.phase {
            Phase::Loading(_) | Phase::Creating { .. } => self.waiting.push_back(msg),
            Phase::Unloaded => {
                self.phase = Phase::Loading(ctx.storage(StorageOp::LoadChat { chat: self.id.clone() }));
                self.waiting.push_back(msg);
            }
            Phase::Absent => self.handle_absent(ctx, msg),
            Phase::Ready(_) => self.handle_ready(ctx, msg),
        }
    }

    pub fn handle_timeout(&mut self, ctx: &mut Ctx) {
        let expired: Vec<UserId> =
            self.typing.iter().filter(|(_, deadline)| **deadline <= ctx.now).map(|(user, _)| user.clone()).collect();
        for user in expired {
            self.stop_typing(ctx, &user);
        }
        let due: Vec<UserId> =
            self.typing_pace.iter().filter(|(_, pace)| pace.due.is_some_and(|at| at <= ctx.now)).map(|(user, _)| user.clone()).collect();
        for user in due {
            if let Some(pace) = self.typing_pace.get_mut(&user) {
                pace.due = None;
            }
            let typing = self.typing.contains_key(&user);
            self.tell_typing(ctx, &user, typing);
        }
    }

    pub fn handle_storage(&mut self, ctx: &mut Ctx, op: OpId, result: StorageResult) {
        match &self.phase {
            Phase::Loading(loading) if *loading == op => return self.on_loaded(ctx, result),
            Phase::Creating { op: creating, .. } if *creating == op => return self.on_created(ctx, result),
            _ => {}
        }
        if self.in_flight.as_ref().is_some_and(|(flying, _)| *flying == op) {
            return self.on_committed(ctx, result);
        }
        if let Some(read) = self.reads.remove(&op) {
            self.on_read(ctx, read, result);
        }
    }

    fn on_loaded(&mut self, ctx: &mut Ctx, result: StorageResult) {
        match result {
            StorageResult::Chat(Some(record)) => {
                self.phase = Phase::Ready(Stored::from_record(record));
                self.replay_waiting(ctx);
                self.flush(ctx);
            }
            StorageResult::Chat(None) => {
                self.phase = Phase::Absent;
                for intent in std::mem::take(&mut self.pending) {
                    fail_intent(ctx, intent, ChatError::chat_not_found());
                }
                self.replay_waiting(ctx);
            }
            other => {
                // Storage did not answer: everything waiting gets INTERNAL, and the next
                // message tries the load again.
                self.phase = Phase::Unloaded;
                let error = ChatError::internal(format!("could not load the chat: {}", failure_text(&other)));
                for intent in std::mem::take(&mut self.pending) {
                    fail_intent(ctx, intent, error.clone());
                }
                for msg in std::mem::take(&mut self.waiting) {
                    self.fail_msg(ctx, msg, error.clone());
                }
            }
        }
    }

    fn on_created(&mut self, ctx: &mut Ctx, result: StorageResult) {
        let Phase::Creating { chat, reply, .. } = std::mem::replace(&mut self.phase, Phase::Absent) else {
            return;
        };
        match result {
            StorageResult::Created { existing: Some(existing) } => {
                // The DM was there already: answer it; this partition's id was never used.
                ctx.reply_ok_status(&reply, Some(json!({ "chat": existing.to_json() })), 200);
            }
            StorageResult::Created { existing: None } => {
                self.announce_chat(ctx, None, &chat);
                ctx.reply_ok_status(&reply, Some(json!({ "chat": chat.to_json() })), 201);
                self.phase = Phase::Ready(Stored { chat, last_seq: Seq::ZERO, reads: BTreeMap::new() });
            }
            other => ctx.reply_err(&reply, ChatError::internal(format!("could not create the chat: {}", failure_text(&other)))),
        }
        self.replay_waiting(ctx);
    }

    fn replay_waiting(&mut self, ctx: &mut Ctx) {
        while let Some(msg) = self.waiting.pop_front() {
            self.handle(ctx, msg);
        }
    }

    fn handle_absent(&mut self, ctx: &mut Ctx, msg: ChatMsg) {
        match msg {
            ChatMsg::Leave { reply, .. } => ctx.reply_ok(&reply, None),
            ChatMsg::SocketGone { .. } | ChatMsg::Typing { .. } | ChatMsg::Restore { .. } => {}
            other => self.fail_msg(ctx, other, ChatError::chat_not_found()),
        }
    }

    /// Answers a message that cannot be carried out, keeping the other partitions in step.
    fn fail_msg(&mut self, ctx: &mut Ctx, msg: ChatMsg, error: ChatError) {
        match msg {
            ChatMsg::Join { socket, user, reply } => {
                ctx.reply_err(&reply, error);
                // A socket joined before stays in the room: only one that is not has left.
                if !self.joined.contains_key(&socket) {
                    ctx.to_user(user, UserMsg::Left { socket, chat: self.id.clone() });
                }
            }
            ChatMsg::Send { user, command, reply } => fail_intent(ctx, Intent::Send { user, command, reply }, error),
            // Leaving a room needs no storage: a socket that left (or is gone) must not stay
            // in the room, whatever became of the load it waited behind.
            ChatMsg::Leave { socket, user, reply } => {
                self.leave(ctx, &socket, &user);
                ctx.reply_ok(&reply, None);
            }
            ChatMsg::SocketGone { socket, user } => self.leave(ctx, &socket, &user),
            ChatMsg::Restore { socket, user } => self.restore_joined(socket, user),
            ChatMsg::Read { reply, .. }
            | ChatMsg::History { reply, .. }
            | ChatMsg::Create { reply, .. }
            | ChatMsg::Rename { reply, .. }
            | ChatMsg::AddMember { reply, .. }
            | ChatMsg::RemoveMember { reply, .. } => ctx.reply_err(&reply, error),
            ChatMsg::Typing { .. } => {}
        }
    }

    fn stored(&self) -> &Stored {
        match &self.phase {
            Phase::Ready(stored) => stored,
            // handle_ready is only reached in the Ready phase.
            _ => unreachable!("chat partition used before its state was loaded"),
        }
    }

    fn handle_ready(&mut self, ctx: &mut Ctx, msg: ChatMsg) {
        match msg {
            ChatMsg::Join { socket, user, reply } => self.join(ctx, socket, user, reply),
            ChatMsg::Leave { socket, user, reply } => {
                self.leave(ctx, &socket, &user);
                ctx.reply_ok(&reply, None);
            }
            ChatMsg::SocketGone { socket, user } => self.leave(ctx, &socket, &user),
            ChatMsg::Restore { socket, user } => self.restore_joined(socket, user),
            ChatMsg::Send { user, command, reply } => {
                self.pending.push_back(Intent::Send { user, command, reply });
                self.flush(ctx);
            }
            ChatMsg::Typing { user, typing } => self.typing(ctx, user, typing),
            ChatMsg::Read { user, message, reply } => {
                if let Err(error) = self.stored().require_member(&user) {
                    return ctx.reply_err(&reply, error);
                }
                let op = ctx.storage(StorageOp::ResolveRead { chat: self.id.clone(), message: message.clone(), reader: user.clone() });
                self.reads.insert(op, PendingRead::ResolveRead { user, message, reply });
            }
            ChatMsg::History { user, query, limit, reply } => {
                if let Err(error) = self.stored().require_member(&user) {
                    return ctx.reply_err(&reply, error);
                }
                // One more than asked, to know whether more remain.
                let op = ctx.storage(StorageOp::LoadMessages { chat: self.id.clone(), query, limit: limit + 1 });
                self.reads.insert(op, PendingRead::History { query, limit, reply });
            }
            ChatMsg::Create { reply, .. } => {
                ctx.reply_err(&reply, ChatError::internal("a chat with this id exists already"));
            }
            ChatMsg::Rename { user, title, reply } => self.change(ctx, Change::Rename { user, title }, reply),
            ChatMsg::AddMember { actor, member, reply } => self.change(ctx, Change::Add { actor, member }, reply),
            ChatMsg::RemoveMember { actor, member, reply } => self.change(ctx, Change::Remove { actor, member }, reply),
        }
    }

    fn change(&mut self, ctx: &mut Ctx, change: Change, reply: Reply) {
        self.pending.push_back(Intent::Change { change, reply });
        self.flush(ctx);
    }

    fn join(&mut self, ctx: &mut Ctx, socket: SocketId, user: UserId, reply: Reply) {
        let stored = self.stored();
        if let Err(error) = stored.require_member(&user) {
            ctx.reply_err(&reply, error);
            ctx.to_user(user, UserMsg::Left { socket, chat: self.id.clone() });
            return;
        }
        let data = json!({
            "chatId": self.id.as_str(),
            "lastSeq": stored.last_seq.0,
            "memberIds": stored.chat.member_ids.iter().map(UserId::as_str).collect::<Vec<_>>(),
        });
        ctx.effect(Effect::JoinRoom { socket: socket.clone(), room: Room::Chat(self.id.clone()) });
        self.joined.insert(socket, user);
        ctx.reply_ok(&reply, Some(data));
    }

    /// The socket leaves the room; a user whose last socket here leaves stops typing.
    fn leave(&mut self, ctx: &mut Ctx, socket: &SocketId, user: &UserId) {
        if self.joined.remove(socket).is_none() {
            return;
        }
        ctx.effect(Effect::LeaveRoom { socket: socket.clone(), room: Room::Chat(self.id.clone()) });
        if !self.joined.values().any(|other| other == user) {
            self.stop_typing(ctx, user);
        }
    }

    fn typing(&mut self, ctx: &mut Ctx, user: UserId, typing: bool) {
        // Non-members' typing is ignored silently (§6).
        if !self.stored().chat.is_member(&user) {
            return;
        }
        if !typing {
            return self.stop_typing(ctx, &user);
        }
        let deadline = ctx.now.plus(ctx.limits.typing_timeout_ms);
        if self.typing.insert(user.clone(), deadline).is_none() {
            self.tell_typing(ctx, &user, true);
        }
    }

    fn stop_typing(&mut self, ctx: &mut Ctx, user: &UserId) {
        if self.typing.remove(user).is_some() {
            self.tell_typing(ctx, user, false);
        }
    }

    /// Tells the room that `user` is typing or not, unless that is what it was last told;
    /// a user flapping faster than [`TypingPace`] allows has the state at the end of the
    /// wait told instead.
    fn tell_typing(&mut self, ctx: &mut Ctx, user: &UserId, typing: bool) {
        let pace = self.typing_pace.entry(user.clone()).or_insert_with(|| TypingPace::new(false, ctx.now));
        if pace.told == typing {
            return;
        }
        if pace.due.is_some() {
            return; // the state at the end of the wait goes out then
        }
        if !pace.bucket.take(ctx.now) {
            // The bucket refills, so the fallback never comes to pass.
            pace.due = Some(pace.bucket.next_token_at().unwrap_or(ctx.now));
            return;
        }
        pace.told = typing;
        self.emit_typing(ctx, user, if typing { "start" } else { "stop" });
        // Someone not typing with a full budget has nothing worth keeping.
        if !typing && self.typing_pace.get_mut(user).is_some_and(|pace| pace.bucket.is_full(ctx.now)) {
            self.typing_pace.remove(user);
        }
    }

    fn emit_typing(&self, ctx: &mut Ctx, user: &UserId, state: &str) {
        ctx.effect(Effect::Emit {
            to: Target::Room(Room::Chat(self.id.clone())),
            except_user: Some(user.clone()),
            event: ServerEvent::TypingUpdate,
            payload: json!({ "chatId": self.id.as_str(), "userId": user.as_str(), "state": state }).into(),
        });
    }

    fn on_read(&mut self, ctx: &mut Ctx, read: PendingRead, result: StorageResult) {
        match (read, result) {
            (PendingRead::History { query, limit, reply }, StorageResult::Messages(mut messages)) => {
                let has_more = messages.len() > limit as usize;
                if has_more {
                    // The extra message is the newest for `After`, the oldest for `Before`.
                    match query {
                        HistoryQuery::After(_) => messages.truncate(limit as usize),
                        HistoryQuery::Before(_) => {
                            messages.drain(..messages.len() - limit as usize);
                        }
                    }
                }
                ctx.reply_ok(&reply, Some(page_json(&messages, has_more)));
            }
            (PendingRead::ResolveRead { user, message, reply }, StorageResult::ReadTarget(target)) => match target {
                None => ctx.reply_err(&reply, ChatError::not_found("message not found in this chat")),
                Some(target) => {
                    self.pending.push_back(Intent::Read { user, message, target, reply });
                    self.flush(ctx);
                }
            },
            (PendingRead::History { reply, .. } | PendingRead::ResolveRead { reply, .. }, other) => {
                ctx.reply_err(&reply, ChatError::internal(format!("storage read failed: {}", failure_text(&other))));
            }
        }
    }
}

impl ChatPartition {
    /// Starts the next commit if none is in flight: every queued send and read that passes
    /// its rules, or one membership or title change alone.
    fn flush(&mut self, ctx: &mut Ctx) {
        // Intents need the stored state: a chat whose last load failed loads again (a read
        // resolved meanwhile would otherwise wait for a message that may never come).
        if matches!(self.phase, Phase::Unloaded) && !self.pending.is_empty() {
            self.phase = Phase::Loading(ctx.storage(StorageOp::LoadChat { chat: self.id.clone() }));
        }
        while self.in_flight.is_none() && !self.pending.is_empty() {
            let Phase::Ready(stored) = &self.phase else { return };
            let mut staged = Vec::new();
            let mut writes = Vec::new();
            let mut last_seq = stored.last_seq;
            let mut cursors: BTreeMap<UserId, ReadCursor> = BTreeMap::new();
            while staged.len() < ctx.limits.max_commit_batch.max(1) {
                if matches!(self.pending.front(), Some(Intent::Change { .. })) && !staged.is_empty() {
                    break;
                }
                let Some(intent) = self.pending.pop_front() else { break };
                match intent {
                    Intent::Send { user, command, reply } => {
                        if let Err(error) = stored.require_member(&user) {
                            fail_intent(ctx, Intent::Send { user, command, reply }, error);
                            continue;
                        }
                        last_seq = last_seq.next();
                        let message = Message {
                            id: MessageId::new(ctx.ids.uuid_v7(ctx.now)),
                            chat_id: self.id.clone(),
                            seq: last_seq,
                            sender_id: user,
                            body: command.body,
                            kind: command.kind,
                            client_id: command.client_id,
                            created_at: ctx.now,
                        };
                        writes.push(Write::Message(message.clone()));
                        #[cfg(feature = "mutants")]
                        let reply = if crate::mutants::active(crate::mutants::Mutant::AckBeforeCommit) {
                            ctx.reply_ok(&reply, Some(send_ack_json(&message)));
                            Reply::Silent
                        } else {
                            reply
                        };
                        staged.push(Staged::Message { message, reply });
                    }
                    Intent::Read { user, message, target, reply } => {
                        if let Err(error) = stored.require_member(&user) {
                            ctx.reply_err(&reply, error);
                            continue;
                        }
                        let current = cursors.get(&user).cloned().unwrap_or_else(|| stored.member(&user).cursor);
                        let refuse = target.seq <= current.seq;
                        #[cfg(feature = "mutants")]
                        let refuse = refuse
                            && !(crate::mutants::active(crate::mutants::Mutant::CursorMovesBack) && target.seq < current.seq);
                        if refuse {
                            // Cursors only move forward: answer where it stands, once that
                            // position is durable if this very commit sets it.
                            if cursors.contains_key(&user) {
                                staged.push(Staged::Standing { cursor: current, reply });
                            } else {
                                ctx.reply_ok(&reply, Some(cursor_json(&current)));
                            }
                            continue;
                        }
                        let cursor = ReadCursor { seq: target.seq, message_id: Some(message), read_at: ctx.now, own_upto: target.own_upto };
                        cursors.insert(user.clone(), cursor.clone());
                        writes.push(Write::Cursor { user: user.clone(), cursor: cursor.clone() });
                        staged.push(Staged::Cursor { user, cursor, reply });
                    }
                    Intent::Change { change, reply } => {
                        match stored.apply(change, ctx) {
                            Err(error) => ctx.reply_err(&reply, error),
                            Ok(None) => ctx.reply_ok(&reply, Some(json!({ "chat": stored.chat.to_json() }))),
                            Ok(Some(after)) => {
                                writes.push(Write::Chat(after.clone()));
                                staged.push(Staged::Chat { before: stored.chat.clone(), after, reply });
                            }
                        }
                        if !staged.is_empty() {
                            break;
                        }
                    }
                }
            }
            if !staged.is_empty() {
                let op = ctx.storage(StorageOp::Commit { chat: self.id.clone(), writes });
                self.in_flight = Some((op, staged));
            }
        }
    }

    fn on_committed(&mut self, ctx: &mut Ctx, result: StorageResult) {
        let Some((_, staged)) = self.in_flight.take() else { return };
        if !matches!(result, StorageResult::Committed) {
            let error = ChatError::internal(format!("could not store: {}", failure_text(&result)));
            for item in staged {
                match item {
                    Staged::Message { message, reply } => fail_intent(
                        ctx,
                        Intent::Send {
                            user: message.sender_id,
                            command: SendCommand { chat: message.chat_id, body: message.body, client_id: message.client_id, kind: message.kind },
                            reply,
                        },
                        error.clone(),
                    ),
                    Staged::Cursor { reply, .. } | Staged::Standing { reply, .. } | Staged::Chat { reply, .. } => {
                        ctx.reply_err(&reply, error.clone())
                    }
                }
            }
            // The commit may or may not have happened: only storage knows now.
            self.phase = Phase::Loading(ctx.storage(StorageOp::LoadChat { chat: self.id.clone() }));
            return;
        }
        // The commit is atomic: its cursors hold before anything of it is announced, so
        // the unread counts of its messages' inbox updates are those storage has now.
        for item in &staged {
            if let Staged::Cursor { user, cursor, .. } = item {
                self.stored_mut().reads.entry(user.clone()).or_default().cursor = cursor.clone();
            }
        }
        for item in staged {
            match item {
                Staged::Message { message, reply } => self.deliver(ctx, message, reply),
                Staged::Standing { cursor, reply } => ctx.reply_ok(&reply, Some(cursor_json(&cursor))),
                Staged::Cursor { user, cursor, reply } => {
                    let data = cursor_json(&cursor);
                    ctx.effect(Effect::Emit {
                        to: Target::Room(Room::Chat(self.id.clone())),
                        except_user: None,
                        event: ServerEvent::ReceiptUpdate,
                        payload: json!({
                            "chatId": self.id.as_str(),
                            "userId": user.as_str(),
                            "messageId": data["messageId"],
                            "seq": cursor.seq.0,
                            "readAt": data["readAt"],
                        })
                        .into(),
                    });
                    ctx.reply_ok(&reply, Some(data));
                }
                Staged::Chat { before, after, reply } => {
                    self.stored_mut().chat = after.clone();
                    for gone in before.member_ids.iter().filter(|user| !after.is_member(user)) {
                        self.evict_member(ctx, gone);
                    }
                    self.announce_chat(ctx, Some(&before), &after);
                    ctx.reply_ok(&reply, Some(json!({ "chat": after.to_json() })));
                }
            }
        }
        self.flush(ctx);
    }

    /// A durable message: to the room, then every member's inbox, then the sender's ack.
    fn deliver(&mut self, ctx: &mut Ctx, message: Message, reply: Reply) {
        let stored = self.stored_mut();
        stored.last_seq = message.seq;
        stored.reads.entry(message.sender_id.clone()).or_default().sent += 1;
        let json = Payload::of(&message.wire());
        ctx.effect(Effect::Emit {
            to: Target::Room(Room::Chat(self.id.clone())),
            except_user: None,
            event: ServerEvent::MessageNew,
            payload: json.clone(),
        });
        let stored = self.stored();
        for member in &stored.chat.member_ids {
            let inbox = InboxUpdate { chat_id: self.id.as_str(), last_message: json.raw(), unread_count: stored.unread(member) };
            ctx.effect(Effect::Emit {
                to: Target::Room(Room::User(member.clone())),
                except_user: None,
                event: ServerEvent::InboxUpdate,
                payload: Payload::of(&inbox),
            });
        }
        ctx.reply_ok_with(&reply, &SendAck::of(&message));
        ctx.to_user(message.sender_id.clone(), UserMsg::SendDone { client_id: message.client_id.clone(), outcome: Ok(message) });
    }

    /// A removed member's sockets leave the room at once, and their typing stops.
    fn evict_member(&mut self, ctx: &mut Ctx, user: &UserId) {
        #[cfg(feature = "mutants")]
        if crate::mutants::active(crate::mutants::Mutant::RemovedMemberStaysInRoom) {
            return;
        }
        let sockets: Vec<SocketId> = self.joined.iter().filter(|(_, owner)| *owner == user).map(|(socket, _)| socket.clone()).collect();
        for socket in sockets {
            self.leave(ctx, &socket, user);
            ctx.to_user(user.clone(), UserMsg::Left { socket, chat: self.id.clone() });
        }
        self.stop_typing(ctx, user);
    }

    /// `chat:update` to every member, old and new, and their partitions learn the members.
    fn announce_chat(&self, ctx: &mut Ctx, before: Option<&Chat>, after: &Chat) {
        let mut recipients: Vec<&UserId> = after.member_ids.iter().collect();
        if let Some(before) = before {
            recipients.extend(before.member_ids.iter().filter(|user| !after.is_member(user)));
        }
        let payload = Payload::of(&json!({ "chat": after.to_json() }));
        for user in recipients {
            ctx.effect(Effect::Emit {
                to: Target::Room(Room::User(user.clone())),
                except_user: None,
                event: ServerEvent::ChatUpdate,
                payload: payload.clone(),
            });
            ctx.to_user(user.clone(), UserMsg::ChatMembers { chat: self.id.clone(), members: after.member_ids.clone() });
        }
    }

    fn stored_mut(&mut self) -> &mut Stored {
        match &mut self.phase {
            Phase::Ready(stored) => stored,
            // Only called while applying a commit, which happens in the Ready phase.
            _ => unreachable!("chat partition used before its state was loaded"),
        }
    }
}

impl Stored {
    fn from_record(record: ChatRecord) -> Self {
        let reads = record
            .reads
            .into_iter()
            .map(|MemberRead { user, cursor, sent }| (user, MemberState { cursor: cursor.unwrap_or_default(), sent }))
            .collect();
        Self { chat: record.chat, last_seq: record.last_seq, reads }
    }

    fn require_member(&self, user: &UserId) -> Result<(), ChatError> {
        if self.chat.is_member(user) {
            Ok(())
        } else {
            Err(ChatError::not_a_member())
        }
    }

    fn member(&self, user: &UserId) -> MemberState {
        self.reads.get(user).cloned().unwrap_or_default()
    }

    /// Messages above the member's cursor that someone else sent (§7).
    fn unread(&self, user: &UserId) -> u64 {
        let state = self.member(user);
        state.cursor.unread(self.last_seq, state.sent)
    }

    /// The chat after `change`, `None` when it changes nothing, or why it is refused.
    fn apply(&self, change: Change, ctx: &Ctx) -> Result<Option<Chat>, ChatError> {
        let mut chat = self.chat.clone();
        match change {
            Change::Rename { user, title } => {
                self.require_member(&user)?;
                self.require_group("only a group has a title")?;
                chat.title = Some(title);
            }
            Change::Add { actor, member } => {
                self.require_member(&actor)?;
                self.require_group("a direct chat's members never change")?;
                if chat.is_member(&member) {
                    return Ok(None);
                }
                if chat.member_ids.len() >= ctx.limits.max_group_members {
                    return Err(ChatError::validation(format!("a group has at most {} members", ctx.limits.max_group_members)));
                }
                chat.member_ids.push(member);
            }
            Change::Remove { actor, member } => {
                self.require_member(&actor)?;
                self.require_group("a direct chat's members never change")?;
                if actor != member && actor != chat.created_by {
                    return Err(ChatError::forbidden("only the group's creator may remove another member"));
                }
                if !chat.is_member(&member) {
                    return Err(ChatError::not_found("that user is not a member"));
                }
                chat.member_ids.retain(|user| *user != member);
            }
        }
        chat.updated_at = ctx.now.max(chat.updated_at);
        Ok(Some(chat))
    }

    fn require_group(&self, why: &str) -> Result<(), ChatError> {
        match self.chat.kind {
            ChatKind::Group => Ok(()),
            ChatKind::Dm => Err(ChatError::validation(why)),
        }
    }
}

fn fail_intent(ctx: &mut Ctx, intent: Intent, error: ChatError) {
    match intent {
        Intent::Send { user, command, reply } => {
            ctx.reply_err(&reply, error.clone());
            ctx.to_user(user, UserMsg::SendDone { client_id: command.client_id, outcome: Err(error) });
        }
        Intent::Read { reply, .. } | Intent::Change { reply, .. } => ctx.reply_err(&reply, error),
    }
}

/// The ack of `receipt:read`: where the cursor stands.
fn cursor_json(cursor: &ReadCursor) -> Value {
    json!({
        "readAt": iso8601(cursor.read_at),
        "messageId": cursor.message_id.as_ref().map(MessageId::as_str),
        "seq": cursor.seq.0,
    })
}

/// `inbox:update` (PROTOCOL.md §4), around the message's text rather than a copy of its tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InboxUpdate<'a> {
    chat_id: &'a str,
    last_message: &'a RawValue,
    unread_count: u64,
}

/// The ack of `message:send`.
pub fn send_ack_json(message: &Message) -> Value {
    // A struct of plain fields always serialises.
    serde_json::to_value(SendAck::of(message)).unwrap_or(Value::Null)
}

/// The data of a send's ack (PROTOCOL.md §3), its fields in the order a `Value` writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAck<'a> {
    client_id: &'a str,
    created_at: String,
    seq: u64,
    server_id: &'a str,
}

impl<'a> SendAck<'a> {
    pub fn of(message: &'a Message) -> SendAck<'a> {
        SendAck {
            client_id: message.client_id.as_str(),
            created_at: iso8601(message.created_at),
            seq: message.seq.0,
            server_id: message.id.as_str(),
        }
    }
}

fn failure_text(result: &StorageResult) -> String {
    match result {
        StorageResult::Failed(why) => why.clone(),
        other => format!("unexpected result {other:?}"),
    }
}

/// Typing changes of one user in one chat that go out at once; past them,
/// [`TYPING_PER_SECOND`]. The contract sends an update on every change, so a client
/// flapping start/stop thousands of times a second would have every other member's socket
/// flooded (and cut off once its send buffer is full); a person typing never comes near this.
const TYPING_BURST: u64 = 8;
const TYPING_PER_SECOND: u64 = 4;

/// The pace of one user's typing updates in one chat.
struct TypingPace {
    /// What the room was last told: typing or not.
    told: bool,
    bucket: TokenBucket,
    /// When the state held back goes out.
    due: Option<Millis>,
}

impl TypingPace {
    fn new(told: bool, now: Millis) -> Self {
        Self { told, bucket: TokenBucket::full(TYPING_BURST, TYPING_PER_SECOND, now), due: None }
    }
}
