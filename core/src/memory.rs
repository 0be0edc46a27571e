//! The reference storage: every [`StorageOp`] carried out on plain in-memory maps.
//!
//! It defines what a host's database must answer, it backs the core's own tests, and the
//! simulation wraps it with faults. It never fails by itself.

use crate::command::HistoryQuery;
use crate::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use crate::model::{Chat, Message};
use crate::storage::{ChatRecord, InboxRow, MemberRead, ReadCursor, ReadTarget, StorageOp, StorageResult, UserRecord, Write};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    chats: BTreeMap<ChatId, Chat>,
    dm_keys: BTreeMap<String, ChatId>,
    /// Each chat's messages; the one with `seq` n sits at index n - 1.
    messages: BTreeMap<ChatId, Vec<Message>>,
    by_client: BTreeMap<(UserId, ClientId), (ChatId, Seq)>,
    by_id: BTreeMap<MessageId, (ChatId, Seq)>,
    cursors: BTreeMap<(ChatId, UserId), ReadCursor>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Carries out one operation, atomically.
    pub fn apply(&mut self, op: &StorageOp) -> StorageResult {
        match op {
            StorageOp::LoadChat { chat } => StorageResult::Chat(self.chats.get(chat).map(|record| self.record(record))),
            StorageOp::LoadUser { user, sends_since } => StorageResult::User(self.user_record(user, *sends_since)),
            StorageOp::FindMessage { sender, client_id } => {
                StorageResult::Message(self.by_client.get(&(sender.clone(), client_id.clone())).and_then(|(chat, seq)| self.message(chat, *seq)).cloned())
            }
            StorageOp::CreateChat { chat, dm_key } => {
                if let Some(existing) = dm_key.as_ref().and_then(|key| self.dm_keys.get(key)) {
                    return StorageResult::Created { existing: self.chats.get(existing).cloned() };
                }
                if self.chats.contains_key(&chat.id) {
                    return StorageResult::Failed(format!("chat {} exists", chat.id));
                }
                if let Some(key) = dm_key {
                    self.dm_keys.insert(key.clone(), chat.id.clone());
                }
                self.chats.insert(chat.id.clone(), chat.clone());
                StorageResult::Created { existing: None }
            }
            StorageOp::Commit { chat, writes } => match self.check(chat, writes) {
                Err(why) => StorageResult::Failed(why),
                Ok(()) => {
                    for write in writes {
                        self.write(chat, write);
                    }
                    StorageResult::Committed
                }
            },
            StorageOp::LoadMessages { chat, query, limit } => {
                let all = self.messages.get(chat).map(Vec::as_slice).unwrap_or_default();
                let limit = *limit as usize;
                let page = match query {
                    HistoryQuery::After(after) => all.iter().filter(|m| m.seq > *after).take(limit).cloned().collect(),
                    HistoryQuery::Before(before) => {
                        let older: Vec<&Message> = all.iter().filter(|m| before.is_none_or(|b| m.seq < b)).collect();
                        older[older.len().saturating_sub(limit)..].iter().map(|m| (*m).clone()).collect()
                    }
                };
                StorageResult::Messages(page)
            }
            StorageOp::ResolveRead { chat, message, reader } => {
                let target = self.by_id.get(message).filter(|(in_chat, _)| in_chat == chat).map(|(_, seq)| ReadTarget {
                    seq: *seq,
                    own_upto: self.sent_upto(chat, reader, *seq),
                });
                StorageResult::ReadTarget(target)
            }
            StorageOp::ListInbox { user } => {
                let rows = self
                    .chats
                    .values()
                    .filter(|chat| chat.is_member(user))
                    .map(|chat| InboxRow {
                        chat: chat.clone(),
                        last_message: self.messages.get(&chat.id).and_then(|all| all.last()).cloned(),
                        read: self.member_read(&chat.id, user),
                    })
                    .collect();
                StorageResult::Inbox(rows)
            }
        }
    }

    /// Every message of a chat, in `seq` order (for checking invariants).
    pub fn messages(&self, chat: &ChatId) -> &[Message] {
        self.messages.get(chat).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn chats(&self) -> impl Iterator<Item = &Chat> {
        self.chats.values()
    }

    pub fn chat(&self, chat: &ChatId) -> Option<&Chat> {
        self.chats.get(chat)
    }

    pub fn cursor(&self, chat: &ChatId, user: &UserId) -> Option<&ReadCursor> {
        self.cursors.get(&(chat.clone(), user.clone()))
    }

    fn message(&self, chat: &ChatId, seq: Seq) -> Option<&Message> {
        self.messages.get(chat)?.get((seq.0 as usize).checked_sub(1)?)
    }

    fn record(&self, chat: &Chat) -> ChatRecord {
        let all = self.messages(&chat.id);
        let mut users: Vec<UserId> = all.iter().map(|m| m.sender_id.clone()).collect();
        users.extend(self.cursors.keys().filter(|(c, _)| *c == chat.id).map(|(_, user)| user.clone()));
        users.sort();
        users.dedup();
        ChatRecord {
            chat: chat.clone(),
            last_seq: Seq(all.len() as u64),
            reads: users.iter().map(|user| self.member_read(&chat.id, user)).collect(),
        }
    }

    fn member_read(&self, chat: &ChatId, user: &UserId) -> MemberRead {
        MemberRead {
            user: user.clone(),
            cursor: self.cursors.get(&(chat.clone(), user.clone())).cloned(),
            sent: self.messages(chat).iter().filter(|m| m.sender_id == *user).count() as u64,
        }
    }

    fn sent_upto(&self, chat: &ChatId, user: &UserId, seq: Seq) -> u64 {
        self.messages(chat).iter().filter(|m| m.seq <= seq && m.sender_id == *user).count() as u64
    }

    fn user_record(&self, user: &UserId, since: Millis) -> UserRecord {
        let chats = self.chats.values().filter(|chat| chat.is_member(user)).map(|chat| (chat.id.clone(), chat.member_ids.clone())).collect();
        let mut recent_sends: Vec<Millis> = self
            .by_client
            .iter()
            .filter(|((sender, _), _)| sender == user)
            .filter_map(|(_, (chat, seq))| self.message(chat, *seq))
            .map(|m| m.created_at)
            .filter(|at| *at > since)
            .collect();
        recent_sends.sort();
        UserRecord { chats, recent_sends }
    }

    /// The constraints a database would enforce: all of a commit passes, or none of it.
    fn check(&self, chat: &ChatId, writes: &[Write]) -> Result<(), String> {
        if !self.chats.contains_key(chat) {
            return Err(format!("no chat {chat}"));
        }
        let mut next = Seq(self.messages(chat).len() as u64).next();
        let mut clients = Vec::new();
        for write in writes {
            match write {
                Write::Message(message) => {
                    if message.chat_id != *chat || message.seq != next {
                        return Err(format!("message seq {} breaks the chat's sequence at {next}", message.seq));
                    }
                    let key = (message.sender_id.clone(), message.client_id.clone());
                    if self.by_client.contains_key(&key) || clients.contains(&key) || self.by_id.contains_key(&message.id) {
                        return Err(format!("duplicate clientId {} of {}", message.client_id, message.sender_id));
                    }
                    clients.push(key);
                    next = next.next();
                }
                Write::Chat(updated) if updated.id != *chat => return Err("chat id mismatch".into()),
                Write::Chat(_) | Write::Cursor { .. } => {}
            }
        }
        Ok(())
    }

    fn write(&mut self, chat: &ChatId, write: &Write) {
        match write {
            Write::Message(message) => {
                self.by_client.insert((message.sender_id.clone(), message.client_id.clone()), (chat.clone(), message.seq));
                self.by_id.insert(message.id.clone(), (chat.clone(), message.seq));
                self.messages.entry(chat.clone()).or_default().push(message.clone());
            }
            Write::Cursor { user, cursor } => {
                self.cursors.insert((chat.clone(), user.clone()), cursor.clone());
            }
            Write::Chat(updated) => {
                self.chats.insert(chat.clone(), updated.clone());
            }
        }
    }
}
