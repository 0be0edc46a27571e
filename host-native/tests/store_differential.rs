//! Differential test: a deterministic pseudo-random run of storage operations applied to
//! the reference `MemoryStore` and to the SQL `Store`, which must answer identically
//! (`Failed` messages aside: only the fact of failing is compared).

#[macro_use]
mod store_support;

use chat_core::command::HistoryQuery;
use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{Chat, ChatKind, Message, MessageKind};
use chat_core::storage::{ReadCursor, StorageOp, StorageResult, Write};
use chat_native::store::Store;
use std::time::Instant;
use store_support::{Rng, TestDb};

const OPS: usize = 3000;
const SEED: u64 = 0x5EED_C4A7;

on_both_backends!(differential_against_memory_store);

async fn differential_against_memory_store(db: TestDb) {
    let store = store_support::open(&db).await;
    let started = Instant::now();
    let mut run = Run::new(SEED);
    let mut tally = Tally::default();
    for i in 0..OPS {
        let op = run.next_op();
        let expected = run.reference.apply(&op);
        let actual = store.apply(&op).await;
        tally.count(&op, &expected);
        assert_same(i, &op, &expected, &actual);
        run.learn(&op, &expected);
    }
    // Everything stored, read back in full.
    let checks = run.final_checks();
    for (i, op) in checks.iter().enumerate() {
        let expected = run.reference.apply(op);
        let actual = store.apply(op).await;
        assert_same(OPS + i, op, &expected, &actual);
    }
    eprintln!("{}: {OPS} ops + {} final checks in {:?}; {tally:?}", db.kind, checks.len(), started.elapsed());
    assert!(
        tally.committed > 300 && tally.failed_commits > 50 && tally.dm_existing > 20 && tally.found > tally.queries / 2,
        "the run covers too little: {tally:?}"
    );
    store.close().await;
}

fn normalized(result: &StorageResult) -> StorageResult {
    match result {
        StorageResult::Failed(_) => StorageResult::Failed(String::new()),
        other => other.clone(),
    }
}

fn assert_same(i: usize, op: &StorageOp, expected: &StorageResult, actual: &StorageResult) {
    if normalized(expected) != normalized(actual) {
        panic!("op #{i} differs\n  op:        {op:?}\n  reference: {expected:?}\n  store:     {actual:?}");
    }
}

#[derive(Debug, Default)]
struct Tally {
    committed: usize,
    failed_commits: usize,
    created: usize,
    dm_existing: usize,
    queries: usize,
    /// Queries whose answer is not empty (a chat, a message, a page, a read target, …).
    found: usize,
}

impl Tally {
    fn count(&mut self, op: &StorageOp, result: &StorageResult) {
        match (op, result) {
            (StorageOp::Commit { .. }, StorageResult::Committed) => self.committed += 1,
            (StorageOp::Commit { .. }, _) => self.failed_commits += 1,
            (StorageOp::CreateChat { .. }, StorageResult::Created { existing: None }) => self.created += 1,
            (StorageOp::CreateChat { .. }, StorageResult::Created { existing: Some(_) }) => self.dm_existing += 1,
            _ => self.queries += 1,
        }
        let found = match result {
            StorageResult::Chat(chat) => chat.is_some(),
            StorageResult::User(user) => !user.chats.is_empty() || !user.recent_sends.is_empty(),
            StorageResult::Message(message) => message.is_some(),
            StorageResult::Messages(page) => !page.is_empty(),
            StorageResult::ReadTarget(target) => target.is_some(),
            StorageResult::Inbox(rows) => !rows.is_empty(),
            _ => false,
        };
        self.found += usize::from(found);
    }
}

/// The generator: a model of what exists, so most operations are meaningful and some are
/// deliberately wrong (wrong seq, duplicate clientId, unknown chat, …).
struct Run {
    rng: Rng,
    reference: MemoryStore,
    users: Vec<UserId>,
    chats: Vec<ChatId>,
    /// Messages the reference committed: (id, chat, sender, clientId).
    messages: Vec<(MessageId, ChatId, UserId, ClientId)>,
    now: u64,
    next_id: u64,
}

impl Run {
    fn new(seed: u64) -> Self {
        let users = ["alice", "bob", "carol", "dave", "erin", "frank", "gü🙂", "nul\0user", "esc\u{1}0", "sp ace", "\u{1}"]
            .into_iter()
            .map(UserId::from)
            .collect();
        Run { rng: Rng::new(seed), reference: MemoryStore::new(), users, chats: Vec::new(), messages: Vec::new(), now: 1_700_000_000_000, next_id: 0 }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:08}", self.next_id)
    }

    fn user(&mut self) -> UserId {
        self.rng.pick(&self.users).clone()
    }

    fn text(&mut self) -> String {
        const PIECES: [&str; 14] =
            ["hello", " ", "\n", "🙂", "é", "\0", "\u{1}", "\t", "日本語", "\\0", "'; DROP TABLE messages; --", "  ", "\r\n", "\u{200B}"];
        if self.rng.chance(1) {
            // The longest body the contract allows, in 4-byte characters.
            return "🙂".repeat(7999) + "\0";
        }
        let n = 1 + self.rng.below(6);
        (0..n).map(|_| *self.rng.pick(&PIECES)).collect()
    }

    /// A known chat (mostly), else an unknown id.
    fn chat(&mut self) -> ChatId {
        if self.chats.is_empty() || self.rng.chance(4) {
            return ChatId::from(*self.rng.pick(&["no-such-chat", "nul\0chat", ""]));
        }
        self.rng.pick(&self.chats).clone()
    }

    fn last_seq(&self, chat: &ChatId) -> u64 {
        self.reference.messages(chat).len() as u64
    }

    fn next_op(&mut self) -> StorageOp {
        self.now += self.rng.below(4);
        let roll = self.rng.below(100);
        match roll {
            0..=5 => self.create_group(),
            6..=11 => self.create_dm(),
            12..=44 => self.commit_messages(),
            45..=54 => self.commit_cursors(),
            55..=61 => self.commit_chat_change(),
            62..=63 => StorageOp::Commit { chat: self.chat(), writes: Vec::new() },
            _ => self.query(),
        }
    }

    fn create_group(&mut self) -> StorageOp {
        let id = if !self.chats.is_empty() && self.rng.chance(4) { self.rng.pick(&self.chats).clone() } else { ChatId::new(self.fresh("chat")) };
        let mut members: Vec<UserId> = Vec::new();
        for _ in 0..self.rng.below(7) {
            let user = self.user();
            if !members.contains(&user) {
                members.push(user);
            }
        }
        let chat = Chat {
            id,
            kind: ChatKind::Group,
            title: Some(self.text()),
            member_ids: members,
            created_by: self.user(),
            created_at: Millis(self.now),
            updated_at: Millis(self.now),
        };
        StorageOp::CreateChat { chat, dm_key: None }
    }

    fn create_dm(&mut self) -> StorageOp {
        let a = self.user();
        let mut b = self.user();
        while b == a {
            b = self.user();
        }
        let chat = Chat {
            id: ChatId::new(self.fresh("dm")),
            kind: ChatKind::Dm,
            title: None,
            member_ids: vec![a.clone(), b.clone()],
            created_by: a.clone(),
            created_at: Millis(self.now),
            updated_at: Millis(self.now),
        };
        StorageOp::CreateChat { chat, dm_key: Some(Chat::dm_key(&a, &b)) }
    }

    fn cursor_write(&mut self, chat: &ChatId) -> Write {
        let last = self.last_seq(chat);
        let seq = self.rng.below(last + 2);
        let in_chat: Vec<MessageId> = self.messages.iter().filter(|(_, c, _, _)| c == chat).map(|(id, ..)| id.clone()).collect();
        let message_id = if !in_chat.is_empty() && self.rng.chance(80) { Some(self.rng.pick(&in_chat).clone()) } else { None };
        let cursor = ReadCursor { seq: Seq(seq), message_id, read_at: Millis(self.now), own_upto: self.rng.below(seq + 1) };
        Write::Cursor { user: self.user(), cursor }
    }

    fn commit_messages(&mut self) -> StorageOp {
        let chat = self.chat();
        let mut seq = self.last_seq(&chat) + 1;
        if self.rng.chance(8) {
            seq = match self.rng.below(3) {
                0 => seq + 1,
                1 => seq.saturating_sub(1),
                _ => 0,
            };
        }
        let n = if self.rng.chance(10) { 1 + self.rng.below(12) } else { 1 + self.rng.below(3) };
        let mut writes = Vec::new();
        let mut batch: Vec<(UserId, ClientId)> = Vec::new();
        for k in 0..n {
            let (sender, client_id) = match self.rng.below(100) {
                // Reuse a stored (sender, clientId): the commit must fail.
                0..=3 if !self.messages.is_empty() => {
                    let (_, _, sender, client) = self.rng.pick(&self.messages).clone();
                    (sender, client)
                }
                // Repeat one of this batch: the commit must fail.
                4..=6 if !batch.is_empty() => self.rng.pick(&batch).clone(),
                _ => (self.user(), ClientId::new(self.fresh("client"))),
            };
            batch.push((sender.clone(), client_id.clone()));
            let id = if self.rng.chance(1) && !self.messages.is_empty() {
                self.rng.pick(&self.messages).0.clone()
            } else {
                MessageId::new(self.fresh("msg"))
            };
            let chat_id = if self.rng.chance(1) { ChatId::from("other-chat") } else { chat.clone() };
            let kind = if self.rng.chance(10) { MessageKind::Image } else { MessageKind::Text };
            let message =
                Message { id, chat_id, seq: Seq(seq + k), sender_id: sender, body: self.text(), kind, client_id, created_at: Millis(self.now) };
            writes.push(Write::Message(message));
            if self.rng.chance(25) {
                let cursor = self.cursor_write(&chat);
                writes.push(cursor);
            }
        }
        if self.rng.chance(4) {
            if let Some(change) = self.changed_chat(&chat) {
                writes.push(Write::Chat(change));
            }
        }
        StorageOp::Commit { chat, writes }
    }

    fn commit_cursors(&mut self) -> StorageOp {
        let chat = self.chat();
        let writes = (0..1 + self.rng.below(3)).map(|_| self.cursor_write(&chat)).collect();
        StorageOp::Commit { chat, writes }
    }

    /// The chat with a member added at the end, one removed, the list reordered, or a new
    /// title; `updatedAt` moves.
    fn changed_chat(&mut self, chat: &ChatId) -> Option<Chat> {
        let mut changed = self.reference.chat(chat)?.clone();
        match self.rng.below(5) {
            0 | 1 => {
                let user = self.user();
                if !changed.member_ids.contains(&user) {
                    changed.member_ids.push(user);
                }
            }
            2 => {
                if !changed.member_ids.is_empty() {
                    let at = self.rng.below(changed.member_ids.len() as u64) as usize;
                    changed.member_ids.remove(at);
                }
            }
            3 => {
                let len = changed.member_ids.len() as u64;
                for i in 0..len {
                    let j = self.rng.below(len);
                    changed.member_ids.swap(i as usize, j as usize);
                }
            }
            _ => changed.title = Some(self.text()),
        }
        changed.updated_at = Millis(self.now);
        Some(changed)
    }

    fn commit_chat_change(&mut self) -> StorageOp {
        let chat = self.chat();
        let mut writes = Vec::new();
        if let Some(mut changed) = self.changed_chat(&chat) {
            if self.rng.chance(5) {
                changed.id = ChatId::from("other-chat");
            }
            writes.push(Write::Chat(changed));
        } else {
            // An unknown chat: a record for it must still fail.
            writes.push(Write::Chat(Chat {
                id: chat.clone(),
                kind: ChatKind::Group,
                title: Some("ghost".into()),
                member_ids: vec![],
                created_by: self.user(),
                created_at: Millis(self.now),
                updated_at: Millis(self.now),
            }));
        }
        StorageOp::Commit { chat, writes }
    }

    fn query(&mut self) -> StorageOp {
        match self.rng.below(7) {
            0 => StorageOp::LoadChat { chat: self.chat() },
            1 => {
                let since = match self.rng.below(3) {
                    0 => 0,
                    1 => self.now.saturating_sub(self.rng.below(200)),
                    _ => self.now,
                };
                StorageOp::LoadUser { user: self.user(), sends_since: Millis(since) }
            }
            2 => {
                let (sender, client_id) = if !self.messages.is_empty() && self.rng.chance(70) {
                    let (_, _, sender, client) = self.rng.pick(&self.messages).clone();
                    if self.rng.chance(15) {
                        (self.user(), client)
                    } else {
                        (sender, client)
                    }
                } else {
                    (self.user(), ClientId::new(self.fresh("client")))
                };
                StorageOp::FindMessage { sender, client_id }
            }
            3 => {
                let chat = self.chat();
                let last = self.last_seq(&chat);
                let query = match self.rng.below(3) {
                    0 => HistoryQuery::After(Seq(self.rng.below(last + 3))),
                    1 => HistoryQuery::Before(None),
                    _ => HistoryQuery::Before(Some(Seq(self.rng.below(last + 3)))),
                };
                let limit = if self.rng.chance(10) { 200 } else { self.rng.below(12) as u32 };
                StorageOp::LoadMessages { chat, query, limit }
            }
            4 | 5 => {
                let (message, chat) = if !self.messages.is_empty() && self.rng.chance(85) {
                    let (id, chat, ..) = self.rng.pick(&self.messages).clone();
                    let chat = if self.rng.chance(20) { self.chat() } else { chat };
                    (id, chat)
                } else {
                    (MessageId::new(self.fresh("msg")), self.chat())
                };
                StorageOp::ResolveRead { chat, message, reader: self.user() }
            }
            _ => StorageOp::ListInbox { user: self.user() },
        }
    }

    /// Updates the model from the reference's answer.
    fn learn(&mut self, op: &StorageOp, result: &StorageResult) {
        match (op, result) {
            (StorageOp::CreateChat { chat, .. }, StorageResult::Created { existing: None }) => self.chats.push(chat.id.clone()),
            (StorageOp::Commit { chat, writes }, StorageResult::Committed) => {
                for write in writes {
                    if let Write::Message(m) = write {
                        self.messages.push((m.id.clone(), chat.clone(), m.sender_id.clone(), m.client_id.clone()));
                    }
                }
            }
            _ => {}
        }
    }

    /// Reads of everything: every chat in full, every user's record and inbox.
    fn final_checks(&self) -> Vec<StorageOp> {
        let mut checks = Vec::new();
        for chat in &self.chats {
            checks.push(StorageOp::LoadChat { chat: chat.clone() });
            checks.push(StorageOp::LoadMessages { chat: chat.clone(), query: HistoryQuery::After(Seq(0)), limit: u32::MAX });
            checks.push(StorageOp::LoadMessages { chat: chat.clone(), query: HistoryQuery::Before(None), limit: 3 });
        }
        for user in &self.users {
            checks.push(StorageOp::LoadUser { user: user.clone(), sends_since: Millis(0) });
            checks.push(StorageOp::ListInbox { user: user.clone() });
        }
        for (id, chat, sender, client) in &self.messages {
            checks.push(StorageOp::FindMessage { sender: sender.clone(), client_id: client.clone() });
            checks.push(StorageOp::ResolveRead { chat: chat.clone(), message: id.clone(), reader: sender.clone() });
        }
        checks
    }
}

#[allow(dead_code)]
fn _store_is_send_sync_clone(store: &Store) -> impl Send + Sync + Clone {
    store.clone()
}
