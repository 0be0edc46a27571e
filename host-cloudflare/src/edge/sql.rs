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

/// The DM registry (an object named after the DM key): the first chat to claim a key owns it.
pub(crate) fn claim_dm(sql: &SqlStorage, key: &str, chat: &ChatId) -> R<ChatId> {
    #[derive(Deserialize)]
    struct Owner {
        chat_id: String,
    }
    let rows: Vec<Owner> = exec(sql, "SELECT chat_id FROM dm_keys WHERE key = ?", vec![text(key)])?;
    if let Some(owner) = rows.into_iter().next() {
        return Ok(ChatId::new(owner.chat_id));
    }
    run(sql, "INSERT INTO dm_keys (key, chat_id) VALUES (?, ?)", vec![text(key), text(chat.as_str())])?;
    Ok(chat.clone())
}

// --- user objects --------------------------------------------------------------------------

pub(crate) fn user_schema(sql: &SqlStorage) -> R<()> {
    for statement in [
        "CREATE TABLE IF NOT EXISTS chats (chat_id TEXT PRIMARY KEY, members TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS sends (client_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS sends_by_time ON sends (created_at)",
        "CREATE TABLE IF NOT EXISTS sockets (socket TEXT PRIMARY KEY, chats TEXT NOT NULL)",
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
    )
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
