//! SQL storage of the native host: every [`StorageOp`] of `chat-core`, answered exactly like
//! the reference [`chat_core::memory::MemoryStore`], on SQLite or PostgreSQL.
//!
//! One code path serves both databases through sqlx's `Any` driver: the SQL is portable
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`), the schema uses only TEXT and BIGINT
//! (`/migrations`), and the two backends differ only in how a transaction begins
//! ([`Backend::begin_write`], [`Backend::begin_read`]) and in connection setup.
//!
//! SQLite has one writer. For a SQLite file, every write and the `clientId` lookup of each
//! send go through the [`lane`]: one thread with its own connection (rusqlite, the same
//! SQLite library) that carries out every waiting write in one transaction (group commit;
//! `BEGIN IMMEDIATE` plus a 5 s busy timeout guard against other processes). The other
//! reads run in parallel on sqlx's pool of read-only connections (WAL). Every commit is
//! durable when it returns (`synchronous=FULL`: the WAL is fsynced at each commit, so an
//! acked message survives a power loss, not only a crash of the process), so the core's
//! acks follow durable commits. An in-memory SQLite database and PostgreSQL take the
//! sqlx path for everything (PostgreSQL: one pool for reads and writes). For a SQLite
//! file the lane also keeps a filter of the stored `(sender, clientId)` pairs
//! ([`client_ids`]), so a new clientId's lookup is answered without the database.
//!
//! Text columns hold an escaped form of the core's strings (see [`text`]) so that U+0000,
//! which PostgreSQL TEXT rejects, round-trips on both backends.

mod client_ids;
mod lane;
mod rows;
mod target;
mod text;

use chat_core::command::HistoryQuery;
use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use chat_core::model::{Chat, Message};
use chat_core::storage::{ChatRecord, InboxRow, MemberRead, ReadCursor, ReadTarget, StorageOp, StorageResult, UserRecord, Write};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row, Transaction};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;
use rows::{chat_at, message_at};
use text::{dec, enc, int, int_saturating, uint};

/// Read-only connections to a SQLite file, besides its one writer.
const SQLITE_READERS: u32 = 8;
const POSTGRES_CONNECTIONS: u32 = 16;
/// Every SQLite connection: wait up to 5 s for another process's lock; make every commit
/// durable before it returns (synchronous is per connection); enforce foreign keys.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON";
const SQLITE_READER_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA query_only = ON";
/// How long an operation may wait for a connection. An unreachable database fails every
/// attempt to connect, and the pool keeps retrying until this ends.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest any one operation may take, connection included: a database that stops
/// answering (a lost network, a hung server) must not leave a send waiting for its ack
/// forever. The core treats a timed-out commit like any failed one (it may or may not
/// have happened; the chat reloads), so this bounds the `INTERNAL` ack.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url: {0}")]
    Url(String),
    #[error("cannot prepare {path:?}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database: {0}")]
    Unsupported(String),
    /// The operation breaks a rule of the store (sequence gap, duplicate chat, …); nothing was applied.
    #[error("{0}")]
    Rejected(String),
    #[error("value out of range: {0}")]
    OutOfRange(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// SQLite takes the write lock up front, so a transaction never fails half-way for
    /// want of it (a deferred one that read first would get `SQLITE_BUSY_SNAPSHOT`).
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// One snapshot for a read made of several statements.
    fn begin_read(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The chat store; clones share the connection pools.
#[derive(Clone)]
pub struct Store {
    /// Reads (SQLite: read-only connections).
    pool: AnyPool,
    /// Write transactions and migrations (SQLite: one connection; PostgreSQL: `pool`).
    writes: AnyPool,
    backend: Backend,
    /// SQLite files: writes and `clientId` lookups go through one thread ([`lane`]).
    lane: Option<lane::Lane>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend.name()).field("pool_size", &self.pool.size()).finish()
    }
}

impl Store {
    /// Connects to `postgres://…`, `sqlite://path?…`, `sqlite:path` or a plain SQLite file
    /// path. A SQLite file and its directory are created when missing, and the file is put
    /// in WAL mode. Installs sqlx's default `Any` drivers (nothing else may install drivers).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let target = target::parse(url)?;
        match target.backend {
            Backend::Sqlite => Self::connect_sqlite(target).await,
            Backend::Postgres => Self::connect_postgres(target).await,
        }
    }

    async fn connect_sqlite(target: target::Target) -> Result<Store, StoreError> {
        if let Some(parent) = target.file.as_deref().and_then(|file| file.parent()).filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io { path: parent.to_owned(), source })?;
        }
        // The journal mode belongs to the file: set it once, before the pools open connections.
        let mut conn = AnyConnection::connect(&target.url).await?;
        conn.execute(SQLITE_PRAGMAS).await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL").fetch_one(&mut conn).await?;
        if !target.in_memory && !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unsupported(format!("SQLite refused WAL journal mode (got {mode:?})")));
        }
        conn.close().await?;
        if target.in_memory {
            // Each connection to `:memory:` is its own database: keep exactly one, forever.
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) }))
                .connect(&target.url)
                .await?;
            return Ok(Store { writes: pool.clone(), pool, backend: Backend::Sqlite, lane: None });
        }
        let writes = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) }))
            .connect(&target.url)
            .await?;
        let pool = AnyPoolOptions::new()
            .max_connections(SQLITE_READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| Box::pin(async move { conn.execute(SQLITE_READER_PRAGMAS).await.map(drop) }))
            .connect(&target.url)
            .await?;
        let lane = target.file.as_deref().map(lane::Lane::start).transpose()?;
        Ok(Store { pool, writes, backend: Backend::Sqlite, lane })
    }

    async fn connect_postgres(target: target::Target) -> Result<Store, StoreError> {
        // One direct connection first: an unreachable server or a bad URL fails at once
        // (the pool would retry until its acquire timeout).
        let mut conn = AnyConnection::connect(&target.url).await?;
        let encoding: String = sqlx::query_scalar("SHOW server_encoding").fetch_one(&mut conn).await?;
        conn.close().await?;
        if !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(StoreError::Unsupported(format!("PostgreSQL database encoding is {encoding}, UTF8 is required")));
        }
        let pool = AnyPoolOptions::new().max_connections(POSTGRES_CONNECTIONS).acquire_timeout(ACQUIRE_TIMEOUT).connect(&target.url).await?;
        Ok(Store { writes: pool.clone(), pool, backend: Backend::Postgres, lane: None })
    }

    /// Applies the migrations of `/migrations` that are not applied yet (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writes).await?;
        Ok(())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// True when, within 5 s, the database answers a read and would accept a write:
    /// a read-only database (PostgreSQL `default_transaction_read_only`, a standby; a
    /// SQLite file another process holds locked) cannot store messages, so it is unhealthy.
    pub async fn healthy(&self) -> bool {
        matches!(tokio::time::timeout(HEALTH_TIMEOUT, self.probe()).await, Ok(Ok(true)))
    }

    async fn probe(&self) -> Result<bool, StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        match self.backend {
            Backend::Postgres => {
                let writable: bool = sqlx::query_scalar("SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'")
                    .fetch_one(&self.writes)
                    .await?;
                Ok(writable)
            }
            Backend::Sqlite => {
                // Taking the write lock and giving it back writes nothing. (A transaction
                // dropped by the timeout rolls back before its connection is reused.)
                self.begin_write().await?.rollback().await?;
                Ok(true)
            }
        }
    }

    /// Closes every connection; later operations fail.
    pub async fn close(&self) {
        if let Some(lane) = &self.lane {
            lane.close();
        }
        self.pool.close().await;
        self.writes.close().await;
    }

    /// Carries out one operation, atomically, within [`OPERATION_TIMEOUT`]. Never panics:
    /// any error, and running out of time, is `Failed`.
    pub async fn apply(&self, op: &StorageOp) -> StorageResult {
        if let Some(result) = self.answer_at_once(op) {
            return result;
        }
        match tokio::time::timeout(OPERATION_TIMEOUT, self.apply_untimed(op)).await {
            Ok(result) => result,
            Err(_) => StorageResult::Failed(format!("the database did not answer within {} ms", OPERATION_TIMEOUT.as_millis())),
        }
    }

    /// The answer to `op` when it is known without the database, else `None`: a send's
    /// clientId lookup that the lane's filter calls surely new (most sends). The driver
    /// answers these at once instead of spawning a task per send to ask [`Store::apply`],
    /// which answers them the same way.
    pub fn answer_at_once(&self, op: &StorageOp) -> Option<StorageResult> {
        match op {
            StorageOp::FindMessage { sender, client_id } => {
                self.lane.as_ref().filter(|lane| lane.surely_new(sender, client_id)).map(|_| StorageResult::Message(None))
            }
            _ => None,
        }
    }

    async fn apply_untimed(&self, op: &StorageOp) -> StorageResult {
        let result = match op {
            StorageOp::LoadChat { chat } => self.load_chat(chat).await.map(StorageResult::Chat),
            StorageOp::LoadUser { user, sends_since } => self.load_user(user, *sends_since).await.map(StorageResult::User),
            StorageOp::FindMessage { sender, client_id } => self.find_message(sender, client_id).await.map(StorageResult::Message),
            StorageOp::CreateChat { chat, dm_key } => {
                self.create_chat(chat, dm_key.as_deref()).await.map(|existing| StorageResult::Created { existing })
            }
            StorageOp::Commit { chat, writes } => self.commit(chat, writes).await.map(|()| StorageResult::Committed),
            StorageOp::LoadMessages { chat, query, limit } => self.load_messages(chat, *query, *limit).await.map(StorageResult::Messages),
            StorageOp::ResolveRead { chat, message, reader } => self.resolve_read(chat, message, reader).await.map(StorageResult::ReadTarget),
            StorageOp::ListInbox { user } => self.list_inbox(user).await.map(StorageResult::Inbox),
        };
        result.unwrap_or_else(|error| StorageResult::Failed(error.to_string()))
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.writes.begin_with(self.backend.begin_write()).await?)
    }

    async fn begin_read(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.pool.begin_with(self.backend.begin_read()).await?)
    }

    // --- reads --------------------------------------------------------------------------

    async fn load_chat(&self, chat: &ChatId) -> Result<Option<ChatRecord>, StoreError> {
        let mut tx = self.begin_read().await?;
        let Some((chat, last_seq)) = chat_row(&mut tx, &enc(chat.as_str())).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let rows = sqlx::query(sql::READS_OF_CHAT).bind(enc(chat.id.as_str())).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut reads = rows
            .iter()
            .map(|row| {
                let (sent, cursor) = read_state_at(row, 1)?;
                Ok(MemberRead { user: UserId::new(dec(row.try_get(0)?)?), cursor, sent })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        reads.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(Some(ChatRecord { chat, last_seq: Seq(last_seq), reads }))
    }

    async fn load_user(&self, user: &UserId, since: Millis) -> Result<UserRecord, StoreError> {
        // Every handshake loads its user: on SQLite the lane's reader answers it in one
        // thread hop, where sqlx took several per statement.
        if let Some(lane) = &self.lane {
            return lane.ask(|done| lane::Job::LoadUser { user: user.clone(), since, done }).await;
        }
        let user = enc(user.as_str());
        let mut tx = self.begin_read().await?;
        let chats = member_lists(&mut tx, &user).await?;
        let sends: Vec<i64> = sqlx::query_scalar(sql::RECENT_SENDS).bind(&user).bind(int_saturating(since.0)).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        user_record(chats, sends)
    }

    async fn find_message(&self, sender: &UserId, client_id: &ClientId) -> Result<Option<Message>, StoreError> {
        // A pair the lane's filter calls surely new never gets here (`answer_at_once`).
        if let Some(lane) = &self.lane {
            return lane.ask(|done| lane::Job::Find { sender: sender.clone(), client_id: client_id.clone(), done }).await;
        }
        let row = sqlx::query(sql::FIND_MESSAGE).bind(enc(sender.as_str())).bind(enc(client_id.as_str())).fetch_optional(&self.pool).await?;
        row.map(|row| message_at(&row, 0)).transpose()
    }

    async fn load_messages(&self, chat: &ChatId, query: HistoryQuery, limit: u32) -> Result<Vec<Message>, StoreError> {
        let (sql, bound, newest_first) = match query {
            HistoryQuery::After(after) => (sql::MESSAGES_AFTER, int_saturating(after.0), false),
            HistoryQuery::Before(before) => (sql::MESSAGES_BEFORE, before.map_or(i64::MAX, |b| int_saturating(b.0)), true),
        };
        let rows = sqlx::query(sql).bind(enc(chat.as_str())).bind(bound).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        let mut page = rows.iter().map(|row| message_at(row, 0)).collect::<Result<Vec<_>, _>>()?;
        if newest_first {
            page.reverse();
        }
        Ok(page)
    }

    async fn resolve_read(&self, chat: &ChatId, message: &MessageId, reader: &UserId) -> Result<Option<ReadTarget>, StoreError> {
        let row = sqlx::query(sql::RESOLVE_READ)
            .bind(enc(message.as_str()))
            .bind(enc(chat.as_str()))
            .bind(enc(reader.as_str()))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ReadTarget { seq: Seq(uint(row.try_get(0)?, "seq")?), own_upto: uint(row.try_get(1)?, "sender_nth")? }))
    }

    async fn list_inbox(&self, user: &UserId) -> Result<Vec<InboxRow>, StoreError> {
        let user_id = enc(user.as_str());
        let mut tx = self.begin_read().await?;
        let rows = sqlx::query(sql::INBOX).bind(&user_id).fetch_all(&mut *tx).await?;
        let mut members = member_lists(&mut tx, &user_id).await?;
        tx.commit().await?;
        let mut inbox = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get(0)?;
            let member_ids = members.remove(&id).unwrap_or_default();
            let chat = chat_at(row, 0, member_ids)?;
            let (sent, cursor) = read_state_at(row, 6)?;
            let last_message = match row.try_get::<Option<String>, _>(11)? {
                Some(_) => Some(message_at(row, 11)?),
                None => None,
            };
            inbox.push(InboxRow { chat, last_message, read: MemberRead { user: user.clone(), cursor, sent } });
        }
        inbox.sort_by(|a, b| a.chat.id.cmp(&b.chat.id));
        Ok(inbox)
    }

    // --- writes -------------------------------------------------------------------------

    async fn create_chat(&self, chat: &Chat, dm_key: Option<&str>) -> Result<Option<Chat>, StoreError> {
        if let Some(lane) = &self.lane {
            let dm_key = dm_key.map(str::to_owned);
            return lane.ask(|done| lane::Job::Create { chat: chat.clone(), dm_key, done }).await;
        }
        let dm_key = dm_key.map(enc);
        let mut tx = self.begin_write().await?;
        let outcome = create_in(&mut tx, chat, dm_key.as_deref()).await;
        match outcome {
            Ok(Created::Stored) => {
                tx.commit().await?;
                Ok(None)
            }
            Ok(Created::Existing(existing)) => {
                tx.rollback().await?;
                Ok(Some(existing))
            }
            Ok(Created::Conflict) => {
                tx.rollback().await?;
                // Lost a race for the DM key (or the id is taken): read what won.
                if let Some(key) = &dm_key {
                    let mut conn = self.pool.acquire().await?;
                    if let Some(existing) = chat_by_dm_key(&mut conn, key).await? {
                        return Ok(Some(existing));
                    }
                }
                Err(StoreError::Rejected(format!("chat {} exists", chat.id)))
            }
            Err(error) => {
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }

    async fn commit(&self, chat: &ChatId, writes: &[Write]) -> Result<(), StoreError> {
        // The rules that need no database, as the reference checks them.
        let messages = messages_of(writes);
        for write in writes {
            match write {
                Write::Message(message) if message.chat_id != *chat => {
                    return Err(StoreError::Rejected(format!("message {} is not in chat {chat}", message.id)))
                }
                Write::Chat(updated) if updated.id != *chat => return Err(StoreError::Rejected("chat id mismatch".into())),
                _ => {}
            }
        }
        if let Some(pair) = messages.windows(2).find(|pair| pair[1].seq != pair[0].seq.next()) {
            return Err(StoreError::Rejected(format!("message seq {} breaks the chat's sequence at {}", pair[1].seq, pair[0].seq.next())));
        }
        if let Some(lane) = &self.lane {
            return lane.ask(|done| lane::Job::Commit { chat: chat.clone(), writes: writes.to_vec(), done }).await;
        }
        let mut tx = self.begin_write().await?;
        match commit_in(&mut tx, chat, writes, &messages).await {
            Ok(()) => {
                tx.commit().await?;
                Ok(())
            }
            Err(error) => {
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    }
}

enum Created {
    Stored,
    Existing(Chat),
    /// The insert hit a unique key (chat id or DM key) that the first look did not see.
    Conflict,
}

async fn create_in(conn: &mut AnyConnection, chat: &Chat, dm_key: Option<&str>) -> Result<Created, StoreError> {
    if let Some(key) = dm_key {
        if let Some(existing) = chat_by_dm_key(conn, key).await? {
            return Ok(Created::Existing(existing));
        }
    }
    let id = enc(chat.id.as_str());
    let inserted = sqlx::query(sql::INSERT_CHAT)
        .bind(&id)
        .bind(chat.kind.as_str())
        .bind(chat.title.as_deref().map(enc))
        .bind(enc(chat.created_by.as_str()))
        .bind(int(chat.created_at.0, "createdAt")?)
        .bind(int(chat.updated_at.0, "updatedAt")?)
        .bind(dm_key.map(str::to_owned))
        .execute(&mut *conn)
        .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Created::Conflict);
    }
    for (position, member) in chat.member_ids.iter().enumerate() {
        sqlx::query(sql::INSERT_MEMBER).bind(&id).bind(enc(member.as_str())).bind(position as i64).execute(&mut *conn).await?;
    }
    Ok(Created::Stored)
}

/// The messages among a commit's writes.
fn messages_of(writes: &[Write]) -> Vec<&Message> {
    writes
        .iter()
        .filter_map(|write| match write {
            Write::Message(message) => Some(message),
            _ => None,
        })
        .collect()
}

async fn commit_in(conn: &mut AnyConnection, chat: &ChatId, writes: &[Write], messages: &[&Message]) -> Result<(), StoreError> {
    let id = enc(chat.as_str());
    if let (Some(first), Some(last)) = (messages.first(), messages.last()) {
        // Advancing last_seq checks the sequence and, on PostgreSQL, locks the chat's row
        // until the end, so commits of one chat never interleave.
        let expected = first.seq.0.checked_sub(1).ok_or_else(|| StoreError::Rejected("message seq 0".into()))?;
        let advanced = sqlx::query(sql::ADVANCE_SEQ).bind(&id).bind(int(expected, "seq")?).bind(int(last.seq.0, "seq")?).execute(&mut *conn).await?;
        if advanced.rows_affected() != 1 {
            let stored: Option<i64> = sqlx::query_scalar(sql::LAST_SEQ).bind(&id).fetch_optional(&mut *conn).await?;
            return Err(StoreError::Rejected(match stored {
                None => format!("no chat {chat}"),
                Some(last_seq) => format!("message seq {} breaks the chat's sequence at {}", first.seq, last_seq.saturating_add(1)),
            }));
        }
    } else {
        let stored: Option<i64> = sqlx::query_scalar(sql::LAST_SEQ).bind(&id).fetch_optional(&mut *conn).await?;
        if stored.is_none() {
            return Err(StoreError::Rejected(format!("no chat {chat}")));
        }
    }

    // Each sender's count goes up once per commit; message n of a sender in this commit
    // is their (sent before + n)-th in the chat.
    let mut batch: BTreeMap<&UserId, u64> = BTreeMap::new();
    for message in messages {
        *batch.entry(&message.sender_id).or_default() += 1;
    }
    let mut next_nth: BTreeMap<&UserId, u64> = BTreeMap::new();
    for (sender, count) in batch {
        let sent: i64 =
            sqlx::query_scalar(sql::ADD_SENT).bind(&id).bind(enc(sender.as_str())).bind(int(count, "count")?).fetch_one(&mut *conn).await?;
        next_nth.insert(sender, uint(sent, "sent")?.saturating_sub(count) + 1);
    }

    for write in writes {
        match write {
            Write::Message(message) => {
                let nth = next_nth.get_mut(&message.sender_id).ok_or_else(|| StoreError::Corrupt("sender count missing".into()))?;
                sqlx::query(sql::INSERT_MESSAGE)
                    .bind(enc(message.id.as_str()))
                    .bind(&id)
                    .bind(int(message.seq.0, "seq")?)
                    .bind(enc(message.sender_id.as_str()))
                    .bind(enc(message.client_id.as_str()))
                    .bind(enc(&message.body))
                    .bind(message.kind.as_str())
                    .bind(int(message.created_at.0, "createdAt")?)
                    .bind(int(*nth, "sender_nth")?)
                    .execute(&mut *conn)
                    .await?;
                *nth += 1;
            }
            Write::Cursor { user, cursor } => {
                sqlx::query(sql::SET_CURSOR)
                    .bind(&id)
                    .bind(enc(user.as_str()))
                    .bind(int(cursor.seq.0, "seq")?)
                    .bind(cursor.message_id.as_ref().map(|m| enc(m.as_str())))
                    .bind(int(cursor.read_at.0, "readAt")?)
                    .bind(int(cursor.own_upto, "ownUpto")?)
                    .execute(&mut *conn)
                    .await?;
            }
            Write::Chat(updated) => {
                sqlx::query(sql::UPDATE_CHAT)
                    .bind(&id)
                    .bind(updated.kind.as_str())
                    .bind(updated.title.as_deref().map(enc))
                    .bind(enc(updated.created_by.as_str()))
                    .bind(int(updated.created_at.0, "createdAt")?)
                    .bind(int(updated.updated_at.0, "updatedAt")?)
                    .execute(&mut *conn)
                    .await?;
                replace_members(conn, &id, &updated.member_ids).await?;
            }
        }
    }
    Ok(())
}

/// Makes the stored member list `members`, in order. Removals and additions at the end
/// (every real change) touch only those members; any other reordering rewrites the list.
async fn replace_members(conn: &mut AnyConnection, chat: &str, members: &[UserId]) -> Result<(), StoreError> {
    let old = sqlx::query(sql::MEMBERS_OF).bind(chat).fetch_all(&mut *conn).await?;
    let old = old.iter().map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?))).collect::<Result<Vec<_>, StoreError>>()?;
    let new: Vec<String> = members.iter().map(|member| enc(member.as_str())).collect();
    if old.iter().map(|(user, _)| user).eq(new.iter()) {
        return Ok(());
    }
    let wanted: HashSet<&str> = new.iter().map(String::as_str).collect();
    let kept: Vec<&String> = old.iter().map(|(user, _)| user).filter(|user| wanted.contains(user.as_str())).collect();
    if new.len() >= kept.len() && new[..kept.len()].iter().eq(kept.iter().copied()) {
        for (user, _) in old.iter().filter(|(user, _)| !wanted.contains(user.as_str())) {
            sqlx::query(sql::DELETE_MEMBER).bind(chat).bind(user).execute(&mut *conn).await?;
        }
        let first = old.iter().map(|(_, position)| *position).max().map_or(0, |last| last + 1);
        for (position, user) in (first..).zip(&new[kept.len()..]) {
            sqlx::query(sql::INSERT_MEMBER).bind(chat).bind(user).bind(position).execute(&mut *conn).await?;
        }
    } else {
        sqlx::query(sql::DELETE_MEMBERS).bind(chat).execute(&mut *conn).await?;
        for (position, user) in new.iter().enumerate() {
            sqlx::query(sql::INSERT_MEMBER).bind(chat).bind(user).bind(position as i64).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

// --- row helpers -----------------------------------------------------------------------

/// The chat (stored id `id`) with its members, and its last seq.
async fn chat_row(conn: &mut AnyConnection, id: &str) -> Result<Option<(Chat, u64)>, StoreError> {
    let rows = sqlx::query(sql::CHAT_WITH_MEMBERS).bind(id).fetch_all(&mut *conn).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let members = rows
        .iter()
        .filter_map(|row| row.try_get::<Option<String>, _>(7).transpose())
        .map(|member| Ok(UserId::new(dec(member?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let chat = chat_at(first, 0, members)?;
    let last_seq = uint(first.try_get(6)?, "last_seq")?;
    Ok(Some((chat, last_seq)))
}

async fn chat_by_dm_key(conn: &mut AnyConnection, key: &str) -> Result<Option<Chat>, StoreError> {
    let id: Option<String> = sqlx::query_scalar(sql::CHAT_BY_DM_KEY).bind(key).fetch_optional(&mut *conn).await?;
    let Some(id) = id else { return Ok(None) };
    match chat_row(conn, &id).await? {
        Some((chat, _)) => Ok(Some(chat)),
        None => Err(StoreError::Corrupt(format!("dm key {key:?} names a missing chat"))),
    }
}

/// Member lists (in join order) of every chat `user` (stored form) is a member of, by stored chat id.
async fn member_lists(conn: &mut AnyConnection, user: &str) -> Result<BTreeMap<String, Vec<UserId>>, StoreError> {
    let rows = sqlx::query(sql::MEMBER_LISTS).bind(user).fetch_all(&mut *conn).await?;
    let mut lists: BTreeMap<String, Vec<UserId>> = BTreeMap::new();
    for row in &rows {
        let member = UserId::new(dec(row.try_get(1)?)?);
        lists.entry(row.try_get(0)?).or_default().push(member);
    }
    Ok(lists)
}

/// A user's record from its stored rows: member lists by encoded chat id, send times.
fn user_record(lists: BTreeMap<String, Vec<UserId>>, sends: Vec<i64>) -> Result<UserRecord, StoreError> {
    let mut chats = lists.into_iter().map(|(id, members)| Ok((ChatId::new(dec(id)?), members))).collect::<Result<Vec<_>, StoreError>>()?;
    chats.sort_by(|a, b| a.0.cmp(&b.0));
    let recent_sends = sends.into_iter().map(|at| uint(at, "createdAt").map(Millis)).collect::<Result<Vec<_>, _>>()?;
    Ok(UserRecord { chats, recent_sends })
}

/// Columns sent, read_seq, read_message_id, read_at, own_upto from `at`, any of them NULL
/// when the user has no read state (a LEFT JOIN).
fn read_state_at(row: &AnyRow, at: usize) -> Result<(u64, Option<ReadCursor>), StoreError> {
    let sent = uint(row.try_get::<Option<i64>, _>(at)?.unwrap_or(0), "sent")?;
    let Some(seq) = row.try_get::<Option<i64>, _>(at + 1)? else { return Ok((sent, None)) };
    let missing = || StoreError::Corrupt("read cursor with missing fields".into());
    let cursor = ReadCursor {
        seq: Seq(uint(seq, "read_seq")?),
        message_id: row.try_get::<Option<String>, _>(at + 2)?.map(|id| dec(id).map(MessageId::new)).transpose()?,
        read_at: Millis(uint(row.try_get::<Option<i64>, _>(at + 3)?.ok_or_else(missing)?, "read_at")?),
        own_upto: uint(row.try_get::<Option<i64>, _>(at + 4)?.ok_or_else(missing)?, "own_upto")?,
    };
    Ok((sent, Some(cursor)))
}

/// Every statement, portable between SQLite and PostgreSQL.
mod sql {
    macro_rules! message_columns {
        () => {
            "m.id, m.chat_id, m.seq, m.sender_id, m.client_id, m.body, m.kind, m.created_at"
        };
    }

    pub const CHAT_WITH_MEMBERS: &str = "SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.updated_at, c.last_seq, cm.user_id \
         FROM chats c LEFT JOIN chat_members cm ON cm.chat_id = c.id WHERE c.id = $1 ORDER BY cm.position";
    pub const CHAT_BY_DM_KEY: &str = "SELECT id FROM chats WHERE dm_key = $1";
    pub const READS_OF_CHAT: &str = "SELECT user_id, sent, read_seq, read_message_id, read_at, own_upto FROM chat_reads WHERE chat_id = $1";
    pub const MEMBER_LISTS: &str = "SELECT cm.chat_id, cm.user_id FROM chat_members cm \
         WHERE cm.chat_id IN (SELECT chat_id FROM chat_members WHERE user_id = $1) ORDER BY cm.chat_id, cm.position";
    pub const RECENT_SENDS: &str = "SELECT created_at FROM messages WHERE sender_id = $1 AND created_at > $2 ORDER BY created_at";
    /// Every stored `(sender, clientId)` pair (the lane's filter; read off their index).
    pub const STORED_CLIENT_IDS: &str = "SELECT sender_id, client_id FROM messages";
    pub const FIND_MESSAGE: &str = concat!("SELECT ", message_columns!(), " FROM messages m WHERE m.sender_id = $1 AND m.client_id = $2");
    pub const MESSAGES_AFTER: &str =
        concat!("SELECT ", message_columns!(), " FROM messages m WHERE m.chat_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3");
    pub const MESSAGES_BEFORE: &str =
        concat!("SELECT ", message_columns!(), " FROM messages m WHERE m.chat_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3");
    /// The message's seq, and the reader's sender_nth at their latest message up to it.
    pub const RESOLVE_READ: &str = "SELECT m.seq, COALESCE((SELECT o.sender_nth FROM messages o \
         WHERE o.chat_id = m.chat_id AND o.sender_id = $3 AND o.seq <= m.seq ORDER BY o.seq DESC LIMIT 1), 0) \
         FROM messages m WHERE m.id = $1 AND m.chat_id = $2";
    pub const INBOX: &str = concat!(
        "SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.updated_at, \
         r.sent, r.read_seq, r.read_message_id, r.read_at, r.own_upto, ",
        message_columns!(),
        " FROM chat_members cm JOIN chats c ON c.id = cm.chat_id \
         LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq \
         LEFT JOIN chat_reads r ON r.chat_id = c.id AND r.user_id = cm.user_id \
         WHERE cm.user_id = $1"
    );
    pub const INSERT_CHAT: &str = "INSERT INTO chats (id, kind, title, created_by, created_at, updated_at, dm_key, last_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0) ON CONFLICT DO NOTHING";
    pub const INSERT_MEMBER: &str = "INSERT INTO chat_members (chat_id, user_id, position) VALUES ($1, $2, $3)";
    pub const MEMBERS_OF: &str = "SELECT user_id, position FROM chat_members WHERE chat_id = $1 ORDER BY position";
    pub const DELETE_MEMBER: &str = "DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2";
    pub const DELETE_MEMBERS: &str = "DELETE FROM chat_members WHERE chat_id = $1";
    pub const UPDATE_CHAT: &str = "UPDATE chats SET kind = $2, title = $3, created_by = $4, created_at = $5, updated_at = $6 WHERE id = $1";
    pub const ADVANCE_SEQ: &str = "UPDATE chats SET last_seq = $3 WHERE id = $1 AND last_seq = $2";
    pub const LAST_SEQ: &str = "SELECT last_seq FROM chats WHERE id = $1";
    pub const ADD_SENT: &str = "INSERT INTO chat_reads (chat_id, user_id, sent) VALUES ($1, $2, $3) \
         ON CONFLICT (chat_id, user_id) DO UPDATE SET sent = chat_reads.sent + excluded.sent RETURNING sent";
    /// `ADD_SENT` as two statements, for the SQLite lane: SQLite carries out `RETURNING`
    /// through a temporary table, and making and dropping one per send was ~4% of a DM's CPU.
    pub const ADD_SENT_QUIETLY: &str = "INSERT INTO chat_reads (chat_id, user_id, sent) VALUES ($1, $2, $3) \
         ON CONFLICT (chat_id, user_id) DO UPDATE SET sent = chat_reads.sent + excluded.sent";
    pub const SENT: &str = "SELECT sent FROM chat_reads WHERE chat_id = $1 AND user_id = $2";
    pub const INSERT_MESSAGE: &str = "INSERT INTO messages (id, chat_id, seq, sender_id, client_id, body, kind, created_at, sender_nth) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    pub const SET_CURSOR: &str = "INSERT INTO chat_reads (chat_id, user_id, sent, read_seq, read_message_id, read_at, own_upto) \
         VALUES ($1, $2, 0, $3, $4, $5, $6) ON CONFLICT (chat_id, user_id) DO UPDATE SET \
         read_seq = excluded.read_seq, read_message_id = excluded.read_message_id, \
         read_at = excluded.read_at, own_upto = excluded.own_upto";
}
