//! Storage on each object's own SQLite (`state.storage().sql()`), answering the core's
//! `StorageOp`s like the reference `MemoryStore`, split by owner:
//! - a chat object stores its chat: record, messages, read state, and its room;
//! - a user object stores the user's index: their chats with members (kept from the
//!   core's `ChatMembers` mail), their sent messages by clientId (kept from `SendDone`,
//!   written before the ack is passed on), and their connected sockets.
//!
//! Statements run synchronously with no await between them, so the writes of one
//! operation are one atomic, durable batch, and the runtime holds outgoing messages (the
//! ack) until it is stored.

use chat_core::command::HistoryQuery;
use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, SocketId, UserId};
use chat_core::model::{Chat, Message};
use chat_core::storage::{ChatRecord, InboxRow, MemberRead, ReadCursor, ReadTarget, UserRecord, Write};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use worker::{SqlStorage, SqlStorageValue};

type R<T> = Result<T, String>;

fn exec<T: serde::de::DeserializeOwned>(sql: &SqlStorage, query: &str, args: Vec<SqlStorageValue>) -> R<Vec<T>> {
    sql.exec(query, args).and_then(|cursor| cursor.to_array::<T>()).map_err(|e| format!("{query}: {e}"))
}

fn run(sql: &SqlStorage, query: &str, args: Vec<SqlStorageValue>) -> R<()> {
    sql.exec(query, args).map(drop).map_err(|e| format!("{query}: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> R<String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> R<T> {
    serde_json::from_str(text).map_err(|e| format!("stored data is not valid: {e}"))
}

fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::from(n.min(i64::MAX as u64) as i64)
}

fn text(s: &str) -> SqlStorageValue {
    SqlStorageValue::from(s.to_string())
}

// --- chat objects --------------------------------------------------------------------------

pub(crate) fn chat_schema(sql: &SqlStorage) -> R<()> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS chat (id TEXT PRIMARY KEY, record TEXT NOT NULL, last_seq INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, sender_id TEXT NOT NULL, client_id TEXT NOT NULL, sender_nth INTEGER NOT NULL, message TEXT NOT NULL, UNIQUE (sender_id, client_id))",
        "CREATE INDEX IF NOT EXISTS messages_by_sender ON messages (sender_id, seq)",
        "CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, sent INTEGER NOT NULL DEFAULT 0, cursor TEXT)",
        "CREATE TABLE IF NOT EXISTS room (socket TEXT PRIMARY KEY, user_id TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dm_keys (key TEXT PRIMARY KEY, chat_id TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS typing (user_id TEXT PRIMARY KEY, deadline INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS outbox (user_id TEXT PRIMARY KEY, version INTEGER NOT NULL, item TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ] {
        run(sql, statement, vec![])?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct ChatRow {
    record: String,
    last_seq: i64,
}

#[derive(Deserialize)]
struct ReadRow {
    user_id: String,
    sent: i64,
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct MessageRow {
    message: String,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

fn chat_row(sql: &SqlStorage) -> R<Option<(Chat, u64)>> {
    let rows: Vec<ChatRow> = exec(sql, "SELECT record, last_seq FROM chat LIMIT 1", vec![])?;
    rows.into_iter().next().map(|row| Ok((from_json(&row.record)?, row.last_seq.max(0) as u64))).transpose()
}

fn member_read(sql: &SqlStorage, user: &UserId) -> R<MemberRead> {
    let rows: Vec<ReadRow> = exec(sql, "SELECT user_id, sent, cursor FROM reads WHERE user_id = ?", vec![text(user.as_str())])?;
    match rows.into_iter().next() {
        Some(row) => read_of(row),
        None => Ok(MemberRead { user: user.clone(), cursor: None, sent: 0 }),
    }
}

fn read_of(row: ReadRow) -> R<MemberRead> {
    let cursor = row.cursor.as_deref().map(from_json::<ReadCursor>).transpose()?;
    Ok(MemberRead { user: UserId::new(row.user_id), cursor, sent: row.sent.max(0) as u64 })
}

pub(crate) fn load_chat(sql: &SqlStorage, chat: &ChatId) -> R<Option<ChatRecord>> {
    let Some((record, last_seq)) = chat_row(sql)? else { return Ok(None) };
    if record.id != *chat {
        return Ok(None);
    }
    let rows: Vec<ReadRow> = exec(sql, "SELECT user_id, sent, cursor FROM reads ORDER BY user_id", vec![])?;
    let reads = rows.into_iter().map(read_of).collect::<R<Vec<_>>>()?;
    Ok(Some(ChatRecord { chat: record, last_seq: Seq(last_seq), reads }))
}

pub(crate) fn chat_record(sql: &SqlStorage) -> R<Option<Chat>> {
    Ok(chat_row(sql)?.map(|(chat, _)| chat))
}

/// Stores a new chat here; `Err` if this object holds one already.
pub(crate) fn insert_chat(sql: &SqlStorage, chat: &Chat) -> R<()> {
    if chat_row(sql)?.is_some() {
        return Err(format!("chat {} exists", chat.id));
    }
    run(sql, "INSERT INTO chat (id, record, last_seq) VALUES (?, ?, 0)", vec![text(chat.id.as_str()), text(&to_json(chat)?)])
}

pub(crate) fn commit(sql: &SqlStorage, chat: &ChatId, writes: &[Write]) -> R<()> {
    let Some((record, last_seq)) = chat_row(sql)? else { return Err(format!("no chat {chat}")) };
    if record.id != *chat {
        return Err(format!("no chat {chat}"));
    }
    // Every check before any write: all of the commit, or none of it.
    let mut next = last_seq + 1;
    let mut clients = BTreeSet::new();
    for write in writes {
        match write {
            Write::Message(message) => {
                if message.chat_id != *chat || message.seq.0 != next {
                    return Err(format!("message seq {} breaks the chat's sequence at {next}", message.seq));
                }
                let key = (message.sender_id.clone(), message.client_id.clone());
                let taken: Vec<Count> = exec(
                    sql,
                    "SELECT COUNT(*) AS n FROM messages WHERE (sender_id = ? AND client_id = ?) OR id = ?",
                    vec![text(message.sender_id.as_str()), text(message.client_id.as_str()), text(message.id.as_str())],
                )?;
                if taken.first().is_some_and(|c| c.n > 0) || !clients.insert(key) {
                    return Err(format!("duplicate clientId {} of {}", message.client_id, message.sender_id));
                }
                next += 1;
            }
            Write::Chat(updated) if updated.id != *chat => return Err("chat id mismatch".into()),
            Write::Chat(_) | Write::Cursor { .. } => {}
        }
    }
    let mut sent: BTreeMap<UserId, u64> = BTreeMap::new();
    let mut seq = last_seq;
    for write in writes {
        match write {
            Write::Message(message) => {
                let nth = match sent.get(&message.sender_id) {
                    Some(n) => *n + 1,
                    None => member_read(sql, &message.sender_id)?.sent + 1,
                };
                sent.insert(message.sender_id.clone(), nth);
                run(
                    sql,
                    "INSERT INTO messages (seq, id, sender_id, client_id, sender_nth, message) VALUES (?, ?, ?, ?, ?, ?)",
                    vec![
                        int(message.seq.0),
                        text(message.id.as_str()),
                        text(message.sender_id.as_str()),
                        text(message.client_id.as_str()),
                        int(nth),
                        text(&to_json(message)?),
                    ],
                )?;
                run(
                    sql,
                    "INSERT INTO reads (user_id, sent) VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET sent = sent + 1",
                    vec![text(message.sender_id.as_str())],
                )?;
                seq = message.seq.0;
            }
            Write::Cursor { user, cursor } => run(
                sql,
                "INSERT INTO reads (user_id, sent, cursor) VALUES (?, 0, ?) ON CONFLICT (user_id) DO UPDATE SET cursor = excluded.cursor",
                vec![text(user.as_str()), text(&to_json(cursor)?)],
            )?,
            Write::Chat(updated) => run(sql, "UPDATE chat SET record = ?", vec![text(&to_json(updated)?)])?,
        }
    }
    run(sql, "UPDATE chat SET last_seq = ?", vec![int(seq)])
}

pub(crate) fn load_messages(sql: &SqlStorage, query: HistoryQuery, limit: u32) -> R<Vec<Message>> {
    let rows: Vec<MessageRow> = match query {
        HistoryQuery::After(after) => {
            exec(sql, "SELECT message FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", vec![int(after.0), int(u64::from(limit))])?
        }
        HistoryQuery::Before(before) => {
            let bound = before.map_or(i64::MAX as u64, |b| b.0);
            let mut rows: Vec<MessageRow> =
                exec(sql, "SELECT message FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?", vec![int(bound), int(u64::from(limit))])?;
            rows.reverse();
            rows
        }
    };
    rows.iter().map(|row| from_json(&row.message)).collect()
}

pub(crate) fn resolve_read(sql: &SqlStorage, message: &MessageId, reader: &UserId) -> R<Option<ReadTarget>> {
    #[derive(Deserialize)]
    struct SeqRow {
        seq: i64,
    }
    let rows: Vec<SeqRow> = exec(sql, "SELECT seq FROM messages WHERE id = ?", vec![text(message.as_str())])?;
    let Some(row) = rows.into_iter().next() else { return Ok(None) };
    let counted: Vec<Count> =
        exec(sql, "SELECT COUNT(*) AS n FROM messages WHERE sender_id = ? AND seq <= ?", vec![text(reader.as_str()), SqlStorageValue::from(row.seq)])?;
    Ok(Some(ReadTarget { seq: Seq(row.seq.max(0) as u64), own_upto: counted.first().map_or(0, |c| c.n.max(0) as u64) }))
}

/// This chat as a row of `user`'s inbox, if they are a member.
pub(crate) fn inbox_row(sql: &SqlStorage, user: &UserId) -> R<Option<InboxRow>> {
    let Some((chat, last_seq)) = chat_row(sql)? else { return Ok(None) };
    if !chat.is_member(user) {
        return Ok(None);
    }
    let rows: Vec<MessageRow> = exec(sql, "SELECT message FROM messages WHERE seq = ?", vec![int(last_seq)])?;
    let last_message = rows.first().map(|row| from_json(&row.message)).transpose()?;
    Ok(Some(InboxRow { chat, last_message, read: member_read(sql, user)? }))
}

pub(crate) fn load_room(sql: &SqlStorage) -> R<BTreeMap<SocketId, UserId>> {
    #[derive(Deserialize)]
    struct RoomRow {
        socket: String,
        user_id: String,
    }
    let rows: Vec<RoomRow> = exec(sql, "SELECT socket, user_id FROM room", vec![])?;
    Ok(rows.into_iter().map(|r| (SocketId::new(r.socket), UserId::new(r.user_id))).collect())
}

pub(crate) fn save_room(sql: &SqlStorage, changes: &[(SocketId, Option<UserId>)]) -> R<()> {
    for (socket, user) in changes {
        match user {
            Some(user) => run(sql, "INSERT OR REPLACE INTO room (socket, user_id) VALUES (?, ?)", vec![text(socket.as_str()), text(user.as_str())])?,
            None => run(sql, "DELETE FROM room WHERE socket = ?", vec![text(socket.as_str())])?,
        }
    }
    Ok(())
}

/// The DM registry (an object named after the DM key): the first chat to claim a key owns
/// it; a claim naming the owner as abandoned takes it over (`glue::registry_claim`).
pub(crate) fn claim_dm(sql: &SqlStorage, key: &str, chat: &ChatId, replacing: Option<&ChatId>) -> R<ChatId> {
    #[derive(Deserialize)]
    struct Owner {
        chat_id: String,
    }
    let rows: Vec<Owner> = exec(sql, "SELECT chat_id FROM dm_keys WHERE key = ?", vec![text(key)])?;
    let current = rows.into_iter().next().map(|o| ChatId::new(o.chat_id));
    let owner = crate::glue::registry_claim(current.as_ref(), chat, replacing);
    if current.as_ref() != Some(&owner) {
        run(sql, "INSERT OR REPLACE INTO dm_keys (key, chat_id) VALUES (?, ?)", vec![text(key), text(owner.as_str())])?;
    }
    Ok(owner)
}

/// The message `sender` stored here under `client_id`, if any.
pub(crate) fn find_sent(sql: &SqlStorage, sender: &UserId, client_id: &ClientId) -> R<Option<Message>> {
    let rows: Vec<MessageRow> =
        exec(sql, "SELECT message FROM messages WHERE sender_id = ? AND client_id = ?", vec![text(sender.as_str()), text(client_id.as_str())])?;
    rows.first().map(|row| from_json(&row.message)).transpose()
}

pub(crate) fn load_typing(sql: &SqlStorage) -> R<BTreeMap<UserId, Millis>> {
    #[derive(Deserialize)]
    struct TypingRow {
        user_id: String,
        deadline: i64,
    }
    let rows: Vec<TypingRow> = exec(sql, "SELECT user_id, deadline FROM typing", vec![])?;
    Ok(rows.into_iter().map(|r| (UserId::new(r.user_id), Millis(r.deadline.max(0) as u64))).collect())
}

pub(crate) fn save_typing(sql: &SqlStorage, changes: &[(UserId, Option<Millis>)]) -> R<()> {
    for (user, deadline) in changes {
        match deadline {
            Some(at) => run(sql, "INSERT OR REPLACE INTO typing (user_id, deadline) VALUES (?, ?)", vec![text(user.as_str()), int(at.0)])?,
            None => run(sql, "DELETE FROM typing WHERE user_id = ?", vec![text(user.as_str())])?,
        }
    }
    Ok(())
}

/// Keeps `item` for `user` until delivered (replacing an older one); its version.
pub(crate) fn outbox_put(sql: &SqlStorage, user: &UserId, item: &crate::wire::Item) -> R<u64> {
    #[derive(Deserialize)]
    struct Version {
        v: Option<i64>,
    }
    let rows: Vec<Version> = exec(sql, "SELECT MAX(version) AS v FROM outbox", vec![])?;
    let version = rows.first().and_then(|r| r.v).unwrap_or(0).max(0) as u64 + 1;
    run(sql, "INSERT OR REPLACE INTO outbox (user_id, version, item) VALUES (?, ?, ?)", vec![text(user.as_str()), int(version), text(&to_json(item)?)])?;
    Ok(version)
}

pub(crate) fn outbox_done(sql: &SqlStorage, user: &UserId, version: u64) -> R<()> {
    run(sql, "DELETE FROM outbox WHERE user_id = ? AND version = ?", vec![text(user.as_str()), int(version)])
}

pub(crate) fn outbox(sql: &SqlStorage) -> R<Vec<(UserId, u64, crate::wire::Item)>> {
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
        version: i64,
        item: String,
    }
    let rows: Vec<Row> = exec(sql, "SELECT user_id, version, item FROM outbox ORDER BY version", vec![])?;
    rows.into_iter().map(|r| Ok((UserId::new(r.user_id), r.version.max(0) as u64, from_json(&r.item)?))).collect()
}

/// Small values an object keeps about itself (its name, a tombstone, presence).
pub(crate) fn meta_get(sql: &SqlStorage, key: &str) -> R<Option<String>> {
    #[derive(Deserialize)]
    struct Row {
        value: String,
    }
    let rows: Vec<Row> = exec(sql, "SELECT value FROM meta WHERE key = ?", vec![text(key)])?;
    Ok(rows.into_iter().next().map(|r| r.value))
}

pub(crate) fn meta_put(sql: &SqlStorage, key: &str, value: Option<&str>) -> R<()> {
    match value {
        Some(value) => run(sql, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", vec![text(key), text(value)]),
        None => run(sql, "DELETE FROM meta WHERE key = ?", vec![text(key)]),
    }
}

// --- user objects --------------------------------------------------------------------------

pub(crate) fn user_schema(sql: &SqlStorage) -> R<()> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS chats (chat_id TEXT PRIMARY KEY, members TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS sends (client_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sends_by_time ON sends (created_at)",
        "CREATE TABLE IF NOT EXISTS sockets (socket TEXT PRIMARY KEY, chats TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pending_sends (client_id TEXT PRIMARY KEY, chat_id TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ] {
        run(sql, statement, vec![])?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct IndexRow {
    chat_id: String,
    members: String,
}

pub(crate) fn user_chats(sql: &SqlStorage) -> R<Vec<(ChatId, Vec<UserId>)>> {
    let rows: Vec<IndexRow> = exec(sql, "SELECT chat_id, members FROM chats ORDER BY chat_id", vec![])?;
    rows.into_iter().map(|row| Ok((ChatId::new(row.chat_id), from_json(&row.members)?))).collect()
}

pub(crate) fn load_user(sql: &SqlStorage, since: Millis) -> R<UserRecord> {
    #[derive(Deserialize)]
    struct At {
        created_at: i64,
    }
    let chats = user_chats(sql)?;
    let rows: Vec<At> = exec(sql, "SELECT created_at FROM sends WHERE created_at > ? ORDER BY created_at", vec![int(since.0)])?;
    Ok(UserRecord { chats, recent_sends: rows.into_iter().map(|r| Millis(r.created_at.max(0) as u64)).collect() })
}

pub(crate) fn find_message(sql: &SqlStorage, client_id: &ClientId) -> R<Option<Message>> {
    let rows: Vec<MessageRow> = exec(sql, "SELECT message FROM sends WHERE client_id = ?", vec![text(client_id.as_str())])?;
    rows.first().map(|row| from_json(&row.message)).transpose()
}

/// The user's chats and their members, from the core's `ChatMembers` mail.
pub(crate) fn index_members(sql: &SqlStorage, user: &UserId, chat: &ChatId, members: &[UserId]) -> R<()> {
    if members.contains(user) {
        run(sql, "INSERT OR REPLACE INTO chats (chat_id, members) VALUES (?, ?)", vec![text(chat.as_str()), text(&to_json(&members)?)])
    } else {
        run(sql, "DELETE FROM chats WHERE chat_id = ?", vec![text(chat.as_str())])
    }
}

/// A message the user sent, from the core's `SendDone` (idempotency across chats, forever).
pub(crate) fn index_send(sql: &SqlStorage, message: &Message) -> R<()> {
    run(
        sql,
        "INSERT OR IGNORE INTO sends (client_id, created_at, message) VALUES (?, ?, ?)",
        vec![text(message.client_id.as_str()), int(message.created_at.0), text(&to_json(message)?)],
    )?;
    run(sql, "DELETE FROM pending_sends WHERE client_id = ?", vec![text(message.client_id.as_str())])
}

/// The user object's index on its SQLite (`glue::UserIndex`).
pub(crate) struct SqlIndex<'a> {
    pub sql: &'a SqlStorage,
    pub me: &'a UserId,
}

impl crate::glue::UserIndex for SqlIndex<'_> {
    fn put_members(&mut self, chat: &ChatId, members: Option<&[UserId]>) -> R<()> {
        index_members(self.sql, self.me, chat, members.unwrap_or_default())
    }
    fn put_sent(&mut self, message: &Message) -> R<()> {
        index_send(self.sql, message)
    }
    fn put_pending(&mut self, client_id: &ClientId, chat: &ChatId) -> R<()> {
        run(self.sql, "INSERT OR REPLACE INTO pending_sends (client_id, chat_id) VALUES (?, ?)", vec![text(client_id.as_str()), text(chat.as_str())])
    }
    fn drop_pending(&mut self, client_id: &ClientId) -> R<()> {
        run(self.sql, "DELETE FROM pending_sends WHERE client_id = ?", vec![text(client_id.as_str())])
    }
    fn sent(&self, client_id: &ClientId) -> R<Option<Message>> {
        find_message(self.sql, client_id)
    }
    fn pending(&self, client_id: &ClientId) -> R<Option<ChatId>> {
        #[derive(Deserialize)]
        struct Row {
            chat_id: String,
        }
        let rows: Vec<Row> = exec(self.sql, "SELECT chat_id FROM pending_sends WHERE client_id = ?", vec![text(client_id.as_str())])?;
        Ok(rows.into_iter().next().map(|r| ChatId::new(r.chat_id)))
    }
}

pub(crate) fn load_sockets(sql: &SqlStorage) -> R<BTreeMap<SocketId, BTreeSet<ChatId>>> {
    #[derive(Deserialize)]
    struct SocketRow {
        socket: String,
        chats: String,
    }
    let rows: Vec<SocketRow> = exec(sql, "SELECT socket, chats FROM sockets", vec![])?;
    rows.into_iter().map(|row| Ok((SocketId::new(row.socket), from_json(&row.chats)?))).collect()
}

pub(crate) fn save_sockets(sql: &SqlStorage, changes: &[(SocketId, Option<BTreeSet<ChatId>>)]) -> R<()> {
    for (socket, chats) in changes {
        match chats {
            Some(chats) => run(sql, "INSERT OR REPLACE INTO sockets (socket, chats) VALUES (?, ?)", vec![text(socket.as_str()), text(&to_json(chats)?)])?,
            None => run(sql, "DELETE FROM sockets WHERE socket = ?", vec![text(socket.as_str())])?,
        }
    }
    Ok(())
}

// --- directory shards ------------------------------------------------------------------------
// One row per user with sockets, per socket in a chat room, per counter: an update writes
// only what it changes.

pub(crate) fn directory_schema(sql: &SqlStorage) -> R<()> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, sockets TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS rooms (chat_id TEXT NOT NULL, socket TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (chat_id, socket))",
        "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    ] {
        run(sql, statement, vec![])?;
    }
    Ok(())
}

fn count(sql: &SqlStorage, name: &str, n: u64) -> R<()> {
    if n == 0 {
        return Ok(());
    }
    run(sql, "INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET n = n + excluded.n", vec![text(name), int(n)])
}

pub(crate) fn directory_apply(sql: &SqlStorage, item: &crate::wire::Item) -> R<()> {
    use crate::wire::Item;
    match item {
        Item::DirUser { user, sockets } if sockets.is_empty() => run(sql, "DELETE FROM users WHERE user_id = ?", vec![text(user.as_str())]),
        Item::DirUser { user, sockets } => {
            run(sql, "INSERT OR REPLACE INTO users (user_id, sockets) VALUES (?, ?)", vec![text(user.as_str()), text(&to_json(sockets)?)])
        }
        Item::DirRoom { chat, changes } => {
            for (socket, user) in changes {
                match user {
                    Some(user) => run(
                        sql,
                        "INSERT OR REPLACE INTO rooms (chat_id, socket, user_id) VALUES (?, ?, ?)",
                        vec![text(chat.as_str()), text(socket.as_str()), text(user.as_str())],
                    )?,
                    None => run(sql, "DELETE FROM rooms WHERE chat_id = ? AND socket = ?", vec![text(chat.as_str()), text(socket.as_str())])?,
                }
            }
            Ok(())
        }
        Item::DirCounts(counts) => {
            count(sql, "messages_sent", counts.messages_sent)?;
            for (code, n) in &counts.acks {
                count(sql, &format!("ack:{code}"), *n)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

pub(crate) fn load_shard(sql: &SqlStorage) -> R<crate::directory::Shard> {
    #[derive(Deserialize)]
    struct UserRow {
        user_id: String,
        sockets: String,
    }
    #[derive(Deserialize)]
    struct RoomRow {
        chat_id: String,
        socket: String,
        user_id: String,
    }
    #[derive(Deserialize)]
    struct CounterRow {
        name: String,
        n: i64,
    }
    let mut shard = crate::directory::Shard::default();
    for row in exec::<UserRow>(sql, "SELECT user_id, sockets FROM users", vec![])? {
        shard.users.insert(UserId::new(row.user_id), from_json(&row.sockets)?);
    }
    for row in exec::<RoomRow>(sql, "SELECT chat_id, socket, user_id FROM rooms", vec![])? {
        shard.rooms.entry(ChatId::new(row.chat_id)).or_default().insert(SocketId::new(row.socket), UserId::new(row.user_id));
    }
    for row in exec::<CounterRow>(sql, "SELECT name, n FROM counters", vec![])? {
        let n = row.n.max(0) as u64;
        match row.name.strip_prefix("ack:") {
            Some(code) => {
                shard.counts.acks.insert(code.to_string(), n);
            }
            None if row.name == "messages_sent" => shard.counts.messages_sent = n,
            None => {}
        }
    }
    Ok(shard)
}
