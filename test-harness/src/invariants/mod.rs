//! The contract's promises, checked as the run goes: every engine call's effects are
//! shown to the [`Checker`] in order (with the sockets each emit reached), every change
//! to storage is shown as it is applied, and time-bound promises are checked after every
//! step. The first broken promise is kept as a [`Violation`] and ends the run.
//!
//! The checks are incremental (indexes of storage built as it changes), so checking
//! after every step stays cheap.

mod answers;
mod emits;

use chat_core::config::Limits;
use chat_core::ids::{is_uuid, ChatId, MessageId, Millis, SocketId, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{ChatKind, Message};
use chat_core::storage::{StorageOp, StorageResult, Write};
use std::collections::{BTreeMap, BTreeSet};

/// A broken promise: which one (a stable name, used to tell failures apart when
/// shrinking), where, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: &'static str,
    pub step: usize,
    pub detail: String,
}

/// What one engine call produced, as far as the checks need it.
#[derive(Default)]
struct CallScratch {
    /// Correlation ids of log lines.
    logs: BTreeSet<String>,
    /// Correlation ids of failure answers, with their code.
    answered: Vec<(String, &'static str)>,
    /// Messages stored just before this call (their commit's result is this call).
    fresh: BTreeSet<MessageId>,
    /// `message:new` emitted in this call: server id → chat.
    news: BTreeMap<String, ChatId>,
    /// `inbox:update` emitted in this call, by the server id of `lastMessage`.
    inbox: BTreeMap<String, usize>,
    /// (socket, chat, seq) of every `message:new` a socket received in this call.
    received: BTreeSet<(SocketId, ChatId, u64)>,
    /// Presence announced in this call: user → online.
    announced: BTreeMap<UserId, bool>,
    /// `chat:update` emitted in this call: (chat, user room) → how many.
    chat_updates: BTreeMap<(ChatId, UserId), u32>,
}

struct PresenceSeen {
    online: bool,
    at: Millis,
    /// The user had no contacts at some point since: an announcement then reached nobody.
    blind: bool,
}

pub struct Checker {
    limits: Limits,
    pub violation: Option<Violation>,
    step: usize,
    now: Millis,
    call: CallScratch,
    /// Messages applied to storage since the last call began.
    just_applied: BTreeSet<MessageId>,

    // Indexes of storage, kept as it changes.
    chat_len: BTreeMap<ChatId, u64>,
    pairs: BTreeMap<(UserId, String), (MessageId, ChatId, u64)>,
    own_seqs: BTreeMap<(ChatId, UserId), Vec<u64>>,
    sends_at: BTreeMap<UserId, Vec<u64>>,
    cursors: BTreeMap<(ChatId, UserId), u64>,
    dms: BTreeMap<(UserId, UserId), ChatId>,
    contacts: BTreeMap<UserId, BTreeSet<UserId>>,
    /// Each chat's members, as stored.
    members: BTreeMap<ChatId, Vec<UserId>>,
    /// Members the latest change of each chat removed (they get that `chat:update` too).
    removed: BTreeMap<ChatId, BTreeSet<UserId>>,

    // What clients were told.
    acked: BTreeMap<(UserId, String), (String, u64)>,
    broadcast: BTreeSet<String>,
    socket_seq: BTreeMap<(SocketId, ChatId), u64>,
    receipts: BTreeMap<(ChatId, UserId), u64>,
    typing: BTreeMap<(ChatId, UserId), Millis>,
    typing_sent: BTreeMap<(ChatId, UserId), Millis>,
    loaded_chat_at: BTreeMap<ChatId, Millis>,
    loaded_user_at: BTreeMap<UserId, Millis>,
    presence: BTreeMap<UserId, PresenceSeen>,
}

impl Checker {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            violation: None,
            step: 0,
            now: Millis(0),
            call: CallScratch::default(),
            just_applied: BTreeSet::new(),
            chat_len: BTreeMap::new(),
            pairs: BTreeMap::new(),
            own_seqs: BTreeMap::new(),
            sends_at: BTreeMap::new(),
            cursors: BTreeMap::new(),
            dms: BTreeMap::new(),
            contacts: BTreeMap::new(),
            members: BTreeMap::new(),
            removed: BTreeMap::new(),
            acked: BTreeMap::new(),
            broadcast: BTreeSet::new(),
            socket_seq: BTreeMap::new(),
            receipts: BTreeMap::new(),
            typing: BTreeMap::new(),
            typing_sent: BTreeMap::new(),
            loaded_chat_at: BTreeMap::new(),
            loaded_user_at: BTreeMap::new(),
            presence: BTreeMap::new(),
        }
    }

    pub fn fail(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        if self.violation.is_none() {
            self.violation = Some(Violation { kind, step: self.step, detail: detail() });
        }
    }

    pub fn failed(&self) -> bool {
        self.violation.is_some()
    }

    /// What storage held for `(sender, clientId)`, if anything.
    pub fn stored_pair(&self, sender: &UserId, client_id: &str) -> Option<&(MessageId, ChatId, u64)> {
        self.pairs.get(&(sender.clone(), client_id.to_string()))
    }

    // --- steps and calls ----------------------------------------------------------

    pub fn begin_step(&mut self, step: usize, now: Millis) {
        self.step = step;
        self.now = now;
    }

    /// Time-bound promises, after every step.
    pub fn end_step(&mut self, now: Millis) {
        self.now = now;
        // (8) A typing start is stopped within the timeout of the last start the user sent
        // (or of the latest time a load let a queued start through).
        let timeout = self.limits.typing_timeout_ms;
        let mut late = None;
        for ((chat, user), started) in &self.typing {
            let mut last = *started;
            for at in [self.typing_sent.get(&(chat.clone(), user.clone())), self.loaded_chat_at.get(chat), self.loaded_user_at.get(user)]
                .into_iter()
                .flatten()
            {
                last = last.max(*at);
            }
            if now > last.plus(timeout) {
                late = Some(format!("{user} typing in {chat} since {started:?}, last start {last:?}, no stop by {now:?}"));
                break;
            }
        }
        if let Some(detail) = late {
            self.fail("typing-not-stopped", || detail);
        }
    }

    pub fn begin_call(&mut self, now: Millis) {
        self.now = now;
        self.call = CallScratch { fresh: std::mem::take(&mut self.just_applied), ..CallScratch::default() };
    }

    /// Promises about one call as a whole.
    pub fn end_call(&mut self) {
        // (10) Every failure's correlation id is in a log line of the same call.
        // §5: every message broadcast reaches every member's inbox in the same step.
        let news = std::mem::take(&mut self.call.news);
        for (server_id, chat) in &news {
            let members = self.members.get(chat).map_or(0, Vec::len);
            let inboxes = self.call.inbox.get(server_id).copied().unwrap_or(0);
            if inboxes != members {
                self.fail("inbox-not-every-member", || format!("{server_id} in {chat}: {inboxes} inbox updates for {members} members"));
            }
        }
        self.call.news = news;
        let answered = std::mem::take(&mut self.call.answered);
        for (cid, what) in &answered {
            if !self.call.logs.contains(cid) {
                self.fail("correlation-id-not-logged", || format!("{what} answer: correlationId {cid} in no log line of the same step"));
            }
        }
        // (9) Presence of one user goes out at most once per throttle window, and only
        // when it changed.
        for (user, online) in std::mem::take(&mut self.call.announced) {
            if let Some((at, was_online, blind)) = self.presence.get(&user).map(|seen| (seen.at, seen.online, seen.blind)) {
                let gap = self.now.since(at);
                if gap < self.limits.presence_throttle_ms {
                    self.fail("presence-throttle", || format!("{user}: presence updates {gap} ms apart"));
                }
                if was_online == online && !blind {
                    self.fail("presence-repeated", || format!("{user}: presence {online} sent twice in a row"));
                }
            }
            self.presence.insert(user, PresenceSeen { online, at: self.now, blind: false });
        }
    }

    pub fn log(&mut self, correlation_id: &str) {
        self.call.logs.insert(correlation_id.to_string());
    }

    /// A refused handshake carries a logged correlation id too.
    pub fn rejected(&mut self, correlation_id: &str, code: &str) {
        if !is_uuid(correlation_id) {
            self.fail("error-shape", || format!("connect error {code} with correlation id {correlation_id:?}"));
        }
        self.call.answered.push((correlation_id.to_string(), "connect error"));
    }

    /// A host crash: memory is gone, and with it every promise about live state.
    pub fn crashed(&mut self) {
        self.just_applied.clear();
        self.socket_seq.clear();
        self.typing.clear();
        self.presence.clear();
    }

    pub fn socket_closed(&mut self, socket: &SocketId) {
        let gone: Vec<_> = self.socket_seq.range((socket.clone(), ChatId::from(""))..).take_while(|((s, _), _)| s == socket).map(|(k, _)| k.clone()).collect();
        for key in gone {
            self.socket_seq.remove(&key);
        }
    }

    pub fn typing_sent(&mut self, chat: &ChatId, user: &UserId, now: Millis) {
        self.typing_sent.insert((chat.clone(), user.clone()), now);
    }

    /// A load result is about to reach the engine: commands queued behind it run now.
    pub fn loading_done(&mut self, request: &StorageOp, now: Millis) {
        match request {
            StorageOp::LoadChat { chat } => {
                self.loaded_chat_at.insert(chat.clone(), now);
            }
            StorageOp::CreateChat { chat, .. } => {
                self.loaded_chat_at.insert(chat.id.clone(), now);
            }
            StorageOp::LoadUser { user, .. } => {
                self.loaded_user_at.insert(user.clone(), now);
            }
            _ => {}
        }
    }

    // --- storage ------------------------------------------------------------------

    /// A write was just applied to `store` (it answered `result`).
    pub fn applied(&mut self, request: &StorageOp, result: &StorageResult, store: &MemoryStore) {
        match (request, result) {
            (StorageOp::Commit { chat, writes }, StorageResult::Committed) => {
                let mut members_changed = false;
                for write in writes {
                    match write {
                        Write::Message(message) => self.message_stored(chat, message, store),
                        Write::Cursor { user, cursor } => {
                            // (6) Read cursors never move back.
                            let key = (chat.clone(), user.clone());
                            let before = self.cursors.get(&key).copied().unwrap_or(0);
                            if cursor.seq.0 < before {
                                self.fail("cursor-moved-back", || format!("{user} in {chat}: cursor {before} → {}", cursor.seq.0));
                            }
                            self.cursors.insert(key, cursor.seq.0);
                        }
                        Write::Chat(_) => members_changed = true,
                    }
                }
                if members_changed {
                    self.members_changed(Some(chat), store);
                }
            }
            (StorageOp::CreateChat { chat, dm_key }, StorageResult::Created { existing: None }) => {
                if chat.kind == ChatKind::Dm {
                    let mut pair = chat.member_ids.clone();
                    pair.sort();
                    let key = (pair[0].clone(), pair[pair.len() - 1].clone());
                    if let Some(other) = self.dms.insert(key, chat.id.clone()) {
                        self.fail("dm-not-unique", || format!("a second DM {} ({dm_key:?}) beside {other}", chat.id));
                    }
                }
                self.members_changed(None, store);
            }
            (_, StorageResult::Failed(why)) => {
                // The reference store refuses only what breaks its constraints.
                self.fail("store-refused-write", || format!("{why}: {request:?}"));
            }
            _ => {}
        }
    }

    fn message_stored(&mut self, chat: &ChatId, message: &Message, store: &MemoryStore) {
        // (2) Seq runs 1..n with no gap and no repeat.
        let len = self.chat_len.entry(chat.clone()).or_insert(0);
        *len += 1;
        let expected = *len;
        let in_store = store.messages(chat).get(expected as usize - 1).map(|m| (m.seq.0, m.id.clone()));
        if message.seq.0 != expected || in_store != Some((expected, message.id.clone())) {
            self.fail("seq-gap-or-repeat", || format!("{chat}: stored seq {} where {expected} was due ({in_store:?})", message.seq.0));
        }
        // (3) A (sender, clientId) is stored once.
        let pair = (message.sender_id.clone(), message.client_id.to_string());
        if let Some(other) = self.pairs.insert(pair, (message.id.clone(), chat.clone(), message.seq.0)) {
            self.fail("client-id-stored-twice", || {
                format!("{} clientId {} stored as {} and {:?}", message.sender_id, message.client_id, message.id, other)
            });
        }
        self.own_seqs.entry((chat.clone(), message.sender_id.clone())).or_default().push(message.seq.0);
        self.just_applied.insert(message.id.clone());
        // (7) No N+1 of one user's stored messages within one window.
        let n = self.limits.rate_limit_messages;
        let window = self.limits.rate_limit_window_ms;
        let sends = self.sends_at.entry(message.sender_id.clone()).or_default();
        let at = message.created_at.0;
        let i = sends.partition_point(|t| *t <= at);
        sends.insert(i, at);
        let mut burst = None;
        for j in i.saturating_sub(n)..=i {
            if j + n < sends.len() && sends[j + n] - sends[j] < window {
                burst = Some((sends[j], sends[j + n]));
            }
        }
        if let Some((first, last)) = burst {
            let sender = message.sender_id.clone();
            self.fail("rate-limit-exceeded", || format!("{sender}: {} messages stored from {first} to {last} (window {window} ms)", n + 1));
        }
    }

    fn members_changed(&mut self, chat: Option<&ChatId>, store: &MemoryStore) {
        if let Some(chat) = chat {
            let now: Vec<UserId> = store.chat(chat).map(|c| c.member_ids.clone()).unwrap_or_default();
            let before = self.members.get(chat).cloned().unwrap_or_default();
            self.removed.insert(chat.clone(), before.into_iter().filter(|u| !now.contains(u)).collect());
        }
        let mut contacts: BTreeMap<UserId, BTreeSet<UserId>> = BTreeMap::new();
        self.members.clear();
        for c in store.chats() {
            self.members.insert(c.id.clone(), c.member_ids.clone());
            for member in &c.member_ids {
                let mine = contacts.entry(member.clone()).or_default();
                mine.extend(c.member_ids.iter().filter(|other| *other != member).cloned());
            }
        }
        for (user, seen) in self.presence.iter_mut() {
            if contacts.get(user).is_none_or(BTreeSet::is_empty) {
                seen.blind = true;
            }
        }
        self.contacts = contacts;
    }

    fn is_member(&self, chat: &ChatId, user: &UserId) -> bool {
        self.members.get(chat).is_some_and(|members| members.contains(user))
    }

    /// §7: messages above the member's cursor, up to `upto`, not sent by the member.
    fn unread(&self, chat: &ChatId, member: &UserId, upto: u64) -> u64 {
        let cursor = self.cursors.get(&(chat.clone(), member.clone())).copied().unwrap_or(0);
        if upto <= cursor {
            return 0;
        }
        let own = self.own_seqs.get(&(chat.clone(), member.clone())).map_or(0, |seqs| {
            (seqs.partition_point(|s| *s <= upto) - seqs.partition_point(|s| *s <= cursor)) as u64
        });
        upto - cursor - own
    }

    /// Members removed by the latest change of `chat`.
    pub fn removed_from(&self, chat: &ChatId) -> Vec<UserId> {
        self.removed.get(chat).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    // --- the end ---------------------------------------------------------------------

    /// Once every result is in and every timer has fired.
    pub fn quiescence(&mut self, online: impl Fn(&UserId) -> bool, store: &MemoryStore) {
        // (9) The last presence sent is what the connections say.
        let wrong: Vec<String> = self
            .presence
            .iter()
            .filter(|(user, seen)| !seen.blind && seen.online != online(user))
            .map(|(user, seen)| format!("{user} last announced online={} but has connected sockets={}", seen.online, online(user)))
            .collect();
        if let Some(first) = wrong.first().cloned() {
            self.fail("presence-final-state", || first);
        }
        if let Some(((chat, user), _)) = self.typing.iter().next() {
            let detail = format!("{user} still typing in {chat} at the end");
            self.fail("typing-not-stopped", || detail);
        }
        // (1), (2), (3) once more over the whole of storage.
        for chat in store.chats() {
            let all = store.messages(&chat.id);
            if let Some((i, m)) = all.iter().enumerate().find(|(i, m)| m.seq.0 != *i as u64 + 1) {
                let (i, seq) = (i, m.seq.0);
                return self.fail("seq-gap-or-repeat", || format!("{}: seq {seq} at position {}", chat.id, i + 1));
            }
        }
        for ((user, client_id), (server_id, seq)) in &self.acked {
            let stored = self.pairs.get(&(user.clone(), client_id.clone()));
            if stored.is_none_or(|(id, chat, s)| id.as_str() != server_id || s != seq || store.messages(chat).get(*s as usize - 1).is_none_or(|m| m.id != *id)) {
                let detail = format!("{user} clientId {client_id} acked {server_id}/{seq}, storage has {stored:?}");
                return self.fail("acked-lost", || detail);
            }
        }
    }
}
