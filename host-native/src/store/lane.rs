//! The SQLite lane: one thread that owns the file's write connection and carries out every
//! write (commits, chat creation), and one that answers the hot reads (the `clientId`
//! lookup of each send, the user load of each handshake) on a read-only connection, both
//! with cached prepared statements. A `clientId` the [`ClientIdFilter`] knows to be new
//! (nearly every send's) needs no lookup at all.
//!
//! Why not sqlx here: sqlx runs every SQLite statement on a worker thread of its own and
//! hands each statement and each row across threads, so a message (lookup, savepoint,
//! three writes, release) cost about twenty thread switches, which on one core was most of
//! the server's time. The writer takes every job waiting when it wakes
//! and carries out all the writes in one transaction, each job inside its own savepoint:
//! a job that breaks a rule rolls back alone, the others become durable together with one
//! fsync (`synchronous = FULL`), and each caller hears its own outcome only after that.
//! The more jobs wait, the bigger the batch: group commit that grows with the load.
//!
//! The SQL is the store's (`super::sql`); only the placeholders change (`$n` → `?n`).
//! Other reads stay on sqlx's read-only pool (WAL readers never wait for
//! the writer).

use super::text::{dec, enc, int, int_saturating, uint};
use super::rows::{chat_at, message_at};
use super::client_ids::ClientIdFilter;
use super::{messages_of, sql, user_record, StoreError};
use chat_core::ids::{ChatId, ClientId, Millis, UserId};
use chat_core::model::{Chat, Message};
use chat_core::storage::{UserRecord, Write};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Once};
use tokio::sync::oneshot;

/// At most this many jobs go into one batch (one transaction).
const MAX_BATCH: usize = 1024;
/// How long a busy lane (its last batch held more than one job) waits for more jobs
/// before it takes the next batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
/// Distinct statements the lane prepares (rusqlite keeps 16 by default).
const STATEMENT_CACHE: usize = 64;
/// Same settings as sqlx's connections (`super::SQLITE_PRAGMAS`): wait up to 5 s for
/// another process's lock, every commit durable when it returns, foreign keys enforced.
/// Then, for the writer only: a 64 MiB page cache (the pages every commit touches stay
/// in memory; the default 2 MiB had it reading pages back), savepoint journals in memory,
/// and checkpoints left to their own thread ([`checkpoint`]): run by the writer after a
/// commit, each one held every send waiting behind it (DM p99 33 ms at 4,500/s, 10 ms
/// without). The writer still checkpoints past [`BACKSTOP_PAGES`], should that thread
/// fall behind.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
    PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY";
/// The writer's own checkpoint threshold, in pages: 256 MiB of WAL.
const BACKSTOP_PAGES: u32 = 64000;
/// How often the checkpoint thread copies the WAL into the database file. The hot pages
/// (chat rows, read states, each chat's newest index pages) are written to the WAL again
/// and again and copied once per checkpoint. DMs at 4,000/s for 20 s, per send: every
/// 200 ms 11.6 `pwrite`s and 2.3 `pread`s, every 500 ms 10.5 and 1.2 with the same p99
/// (20 ms), every 1 s 10.0 and 0.7 with twice the p99.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// The checkpoint connection only copies pages.
const CHECKPOINT_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL";
/// The lookup connection only reads.
const LOOKUP_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA query_only = ON; PRAGMA cache_size = -16384";

type Answer<T> = oneshot::Sender<Result<T, StoreError>>;

/// What the lane is asked to do.
pub(crate) enum Job {
    /// The stored message of `sender` with `client_id`, if any.
    Find { sender: UserId, client_id: ClientId, done: Answer<Option<Message>> },
    /// The chats `user` is in, with their members, and the user's sends since `since`.
    LoadUser { user: UserId, since: Millis, done: Answer<UserRecord> },
    /// Stores a new chat; `Some(existing)` when the DM is there already.
    Create { chat: Chat, dm_key: Option<String>, done: Answer<Option<Chat>> },
    /// One chat's commit (already checked for the rules that need no database).
    Commit { chat: ChatId, writes: Vec<Write>, done: Answer<()> },
    /// Closes the connection and ends the thread.
    Close,
}

/// The handle; clones share the threads, which end once every handle is gone or on `Close`.
#[derive(Clone)]
pub(crate) struct Lane {
    /// The writer: creates and commits.
    writes: mpsc::Sender<Job>,
    /// Lookups have a thread and a (read-only) connection of their own: on the writer's
    /// they would wait behind every batch's fsync, and a send's lookup comes before its
    /// commit, so each send would wait for about one more fsync than it has to.
    lookups: mpsc::Sender<Job>,
    /// Stops the checkpoint thread (so does dropping every handle).
    checkpoints: mpsc::Sender<()>,
    /// The stored `(sender, clientId)` pairs: a new clientId needs no lookup at all.
    keys: Arc<ClientIdFilter>,
    /// Starts the scan of the pairs already stored, at the first lookup (by then the
    /// caller has migrated the file).
    scan: Arc<Once>,
    path: PathBuf,
}

impl Lane {
    /// Opens the file (already created, migrated by the caller or later, in WAL mode) and
    /// starts the threads.
    pub fn start(path: &Path) -> Result<Lane, StoreError> {
        let writer = open(path, PRAGMAS)?;
        writer.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        let reader = open(path, LOOKUP_PRAGMAS)?;
        let checkpointer = open(path, CHECKPOINT_PRAGMAS)?;
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(body).map(drop).map_err(|source| StoreError::Io { path: path.to_owned(), source })
        };
        // Before the writer starts: every message it writes has its pair recorded.
        let keys = Arc::new(ClientIdFilter::new());
        let (writes, queue) = mpsc::channel();
        let writer_keys = Arc::clone(&keys);
        spawn("sqlite-lane", Box::new(move || run(writer, queue, &writer_keys)))?;
        let (lookups, queue) = mpsc::channel();
        spawn("sqlite-lookups", Box::new(move || look_up(reader, queue)))?;
        let (checkpoints, stop) = mpsc::channel();
        spawn("sqlite-checkpoint", Box::new(move || checkpoint(checkpointer, stop)))?;
        Ok(Lane { writes, lookups, checkpoints, keys, scan: Arc::new(Once::new()), path: path.to_owned() })
    }

    /// True when no message of `sender` with `client_id` is stored, known without the
    /// database; false means "ask it".
    pub fn surely_new(&self, sender: &UserId, client_id: &ClientId) -> bool {
        self.scan.call_once(|| {
            let keys = Arc::clone(&self.keys);
            let path = self.path.clone();
            let started = std::thread::Builder::new().name("sqlite-keys".into()).spawn(move || load_stored_keys(&path, &keys));
            if let Err(error) = started {
                tracing::warn!(%error, "cannot start the clientId scan; every send looks its clientId up");
                self.keys.distrust();
            }
        });
        self.keys.surely_absent(sender, client_id)
    }

    /// Hands `job` to its thread and waits for its answer.
    pub async fn ask<T>(&self, job: impl FnOnce(Answer<T>) -> Job) -> Result<T, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = job(done);
        let thread = if matches!(job, Job::Find { .. } | Job::LoadUser { .. }) { &self.lookups } else { &self.writes };
        thread.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Ends the threads once the jobs before this are done; later jobs fail.
    pub fn close(&self) {
        let _ = self.writes.send(Job::Close);
        let _ = self.lookups.send(Job::Close);
        let _ = self.checkpoints.send(());
    }
}

fn open(path: &Path, pragmas: &str) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(pragmas)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The lookup thread: answers each read as it comes. It reads committed state, and the
/// core never looks up a clientId whose send is still on its way to a commit.
fn look_up(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        match job {
            Job::Find { sender, client_id, done } => {
                let _ = done.send(find_message(&conn, &sender, &client_id));
            }
            Job::LoadUser { user, since, done } => {
                let _ = done.send(load_user(&conn, &user, since));
            }
            Job::Close => break,
            // Writes never come here (`Lane::ask`); answer rather than drop one.
            Job::Create { done, .. } => drop(done.send(Err(StoreError::Rejected("a write reached the lookup thread".into())))),
            Job::Commit { done, .. } => drop(done.send(Err(StoreError::Rejected("a write reached the lookup thread".into())))),
        }
    }
}

/// The checkpoint thread: every [`CHECKPOINT_EVERY`], copies what the WAL holds into the
/// database file (PASSIVE: the writer goes on writing meanwhile, and the WAL is reused
/// from its start once all of it is copied). Ends on a message or when every handle is gone.
fn checkpoint(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0));
        if let Err(error) = copied {
            tracing::warn!(%error, "WAL checkpoint failed; the writer checkpoints past its backstop");
        }
    }
}

/// Adds every stored message's pair to `keys`, then trusts it; on any error it distrusts
/// it (lookups read the database, as without it). Its snapshot begins after the writer
/// started, and the writer records every pair it writes: together they miss none.
fn load_stored_keys(path: &Path, keys: &ClientIdFilter) {
    let started = std::time::Instant::now();
    let scan = || -> Result<usize, StoreError> {
        let conn = open(path, LOOKUP_PRAGMAS)?;
        let mut statement = conn.prepare(sql::STORED_CLIENT_IDS)?;
        let mut rows = statement.query([])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            keys.insert_str(&dec(row.get(0)?)?, &dec(row.get(1)?)?);
            count += 1;
        }
        Ok(count)
    };
    match scan() {
        Ok(count) => {
            keys.loaded();
            tracing::info!(pairs = count, ms = started.elapsed().as_millis() as u64, "clientId filter loaded");
        }
        Err(error) => {
            keys.distrust();
            tracing::warn!(%error, "cannot scan the stored clientIds; every send looks its clientId up");
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Rejected("the SQLite lane stopped".into())
}

fn run(mut conn: Connection, queue: mpsc::Receiver<Job>, keys: &ClientIdFilter) {
    let mut busy = false;
    while let Ok(first) = queue.recv() {
        if busy {
            // Under load, let the batch fill before taking it (PostgreSQL's commit_delay):
            // fewer, larger transactions share fsyncs and hot pages. An idle lane commits
            // at once.
            std::thread::sleep(GATHER);
        }
        let mut writes = Vec::new();
        let mut closing = false;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            taken += 1;
            match job {
                // Lookups go to their own thread (`Lane::ask`); one here is still answered.
                Job::Find { sender, client_id, done } => {
                    let _ = done.send(find_message(&conn, &sender, &client_id));
                }
                Job::LoadUser { user, since, done } => {
                    let _ = done.send(load_user(&conn, &user, since));
                }
                Job::Close => closing = true,
                Job::Create { chat, dm_key, done } => writes.push(WriteJob::Create { chat, dm_key, done }),
                Job::Commit { chat, writes: changes, done } => {
                    // Recorded before the transaction: a pair is in the filter before its ack.
                    for message in messages_of(&changes) {
                        keys.insert(&message.sender_id, &message.client_id);
                    }
                    writes.push(WriteJob::Commit { chat, writes: changes, done })
                }
            }
            if taken < MAX_BATCH && !closing {
                next = queue.try_recv().ok();
            }
        }
        busy = writes.len() > 1;
        if !writes.is_empty() {
            write_batch(&mut conn, writes, keys);
        }
        if closing {
            break;
        }
    }
    // Closing the connection ends the thread; later jobs find the channel closed.
}

/// A job of the batch's transaction.
enum WriteJob {
    Create { chat: Chat, dm_key: Option<String>, done: Answer<Option<Chat>> },
    Commit { chat: ChatId, writes: Vec<Write>, done: Answer<()> },
}

/// A write job's answer, held until the batch's transaction is durable.
enum Outcome {
    Created(Answer<Option<Chat>>, Result<Option<Chat>, StoreError>),
    Committed(Answer<()>, Result<(), StoreError>),
}

/// Carries out a write job in the open transaction: a create's existing DM, if any.
fn run_job(conn: &Connection, job: &WriteJob, keys: &ClientIdFilter) -> Result<Option<Chat>, StoreError> {
    match job {
        WriteJob::Commit { chat, writes, .. } => commit_in(conn, chat, writes, keys).map(|()| None),
        WriteJob::Create { chat, dm_key, .. } => create_in(conn, chat, dm_key.as_deref()),
    }
}

/// Writes a batch in one transaction. Most batches break no rule, so every job first runs
/// without a savepoint of its own: a savepoint copies each page before it first changes it
/// (SQLite's sub-journal), about 5% of a DM send's CPU. When a job fails, the whole batch
/// is rolled back and written again with a savepoint per job, so that it fails alone.
fn write_batch(conn: &mut Connection, jobs: Vec<WriteJob>, keys: &ClientIdFilter) {
    if let Err(error) = control(conn, "BEGIN IMMEDIATE") {
        let why = format!("database error: {error}");
        for job in jobs {
            answer_failed(job, &why);
        }
        return;
    }
    let mut results = Vec::with_capacity(jobs.len());
    for job in &jobs {
        match run_job(conn, job, keys) {
            Ok(existing) => results.push(existing),
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                match <[WriteJob; 1]>::try_from(jobs) {
                    // Alone in its batch, the job's failure is its own answer.
                    Ok([job]) => answer_error(job, error),
                    Err(jobs) => write_batch_in_savepoints(conn, jobs, keys),
                }
                return;
            }
        }
    }
    match control(conn, "COMMIT") {
        Ok(()) => {
            for (job, existing) in jobs.into_iter().zip(results) {
                match job {
                    WriteJob::Commit { done, .. } => drop(done.send(Ok(()))),
                    WriteJob::Create { done, .. } => drop(done.send(Ok(existing))),
                }
            }
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            let why = format!("database error: {error}");
            for job in jobs {
                answer_failed(job, &why);
            }
        }
    }
}

fn answer_error(job: WriteJob, error: StoreError) {
    match job {
        WriteJob::Commit { done, .. } => drop(done.send(Err(error))),
        WriteJob::Create { done, .. } => drop(done.send(Err(error))),
    }
}

/// The batch again, each job in a savepoint: a job that breaks a rule rolls back alone.
fn write_batch_in_savepoints(conn: &mut Connection, jobs: Vec<WriteJob>, keys: &ClientIdFilter) {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let began = control(conn, "BEGIN IMMEDIATE");
    if let Err(error) = began {
        let why = format!("database error: {error}");
        for job in jobs {
            answer_failed(job, &why);
        }
        return;
    }
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let (kept, outcome) = match job {
            WriteJob::Commit { chat, writes, done } => {
                let (kept, result) = settle(in_savepoint(conn, |conn| commit_in(conn, &chat, &writes, keys)));
                (kept, Outcome::Committed(done, result))
            }
            WriteJob::Create { chat, dm_key, done } => {
                let (kept, result) = settle(in_savepoint(conn, |conn| create_in(conn, &chat, dm_key.as_deref())));
                (kept, Outcome::Created(done, result))
            }
        };
        outcomes.push(outcome);
        if !kept {
            let _ = conn.execute_batch("ROLLBACK");
            let why = "database error: a savepoint failed; the batch rolled back".to_string();
            for outcome in outcomes {
                outcome.fail(&why);
            }
            for job in jobs {
                answer_failed(job, &why);
            }
            return;
        }
    }
    match control(conn, "COMMIT") {
        Ok(()) => {
            for outcome in outcomes {
                outcome.send();
            }
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            let why = format!("database error: {error}");
            for outcome in outcomes {
                outcome.fail(&why);
            }
        }
    }
}

impl Outcome {
    fn send(self) {
        match self {
            Outcome::Created(done, result) => drop(done.send(result)),
            Outcome::Committed(done, result) => drop(done.send(result)),
        }
    }

    fn fail(self, why: &str) {
        match self {
            Outcome::Created(done, _) => drop(done.send(Err(StoreError::Rejected(why.to_owned())))),
            Outcome::Committed(done, _) => drop(done.send(Err(StoreError::Rejected(why.to_owned())))),
        }
    }
}

fn answer_failed(job: WriteJob, why: &str) {
    let error = || StoreError::Rejected(why.to_owned());
    match job {
        WriteJob::Commit { done, .. } => drop(done.send(Err(error()))),
        WriteJob::Create { done, .. } => drop(done.send(Err(error()))),
    }
}

/// Whether the transaction can go on after a savepoint, and the job's own result. A
/// failed savepoint statement leaves the transaction in an unknown state: it must go.
fn settle<T>(step: Result<Result<T, StoreError>, StoreError>) -> (bool, Result<T, StoreError>) {
    match step {
        Ok(result) => (true, result),
        Err(error) => (false, Err(error)),
    }
}

/// Runs `body` inside a savepoint, rolled back when `body` fails. The outer `Err` is a
/// failed savepoint statement (the transaction must go); the inner one is `body`'s.
fn in_savepoint<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, StoreError> {
    // One savepoint at a time, released before the next: one name serves them all.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = body(conn);
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO SAVEPOINT job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE SAVEPOINT job")?.execute([])?;
    Ok(result)
}

/// Begins or commits a transaction through the statement cache: `execute_batch` parses its
/// text every time, and every commit of the lane runs both (~1 % of a DM send's instructions).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The statement `sql` (written with `$n` for sqlx) prepared with `?n` placeholders.
fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    Ok(conn.prepare_cached(&sql.replace('$', "?"))?)
}

// --- operations ---------------------------------------------------------------------------

fn find_message(conn: &Connection, sender: &UserId, client_id: &ClientId) -> Result<Option<Message>, StoreError> {
    let mut statement = prepare(conn, sql::FIND_MESSAGE)?;
    let row = statement.query_row(params![enc(sender.as_str()), enc(client_id.as_str())], |row| Ok(message_at(row, 0))).optional()?;
    row.transpose()
}

/// `user`'s chats with their members and its sends since `since`, from one snapshot.
fn load_user(conn: &Connection, user: &UserId, since: Millis) -> Result<UserRecord, StoreError> {
    let user = enc(user.as_str());
    let snapshot = conn.unchecked_transaction()?;
    let mut lists: BTreeMap<String, Vec<UserId>> = BTreeMap::new();
    {
        let mut statement = prepare(&snapshot, sql::MEMBER_LISTS)?;
        let mut rows = statement.query(params![user])?;
        while let Some(row) = rows.next()? {
            let member = UserId::new(dec(row.get(1)?)?);
            lists.entry(row.get(0)?).or_default().push(member);
        }
    }
    let sends = prepare(&snapshot, sql::RECENT_SENDS)?
        .query_map(params![user, int_saturating(since.0)], |row| row.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    snapshot.commit()?;
    user_record(lists, sends)
}

/// Stores `chat`, or answers `Some(existing)` for a DM stored before (nothing written).
fn create_in(conn: &Connection, chat: &Chat, dm_key: Option<&str>) -> Result<Option<Chat>, StoreError> {
    let dm_key = dm_key.map(enc);
    if let Some(key) = &dm_key {
        if let Some(existing) = chat_by_dm_key(conn, key)? {
            return Ok(Some(existing));
        }
    }
    let id = enc(chat.id.as_str());
    let inserted = prepare(conn, sql::INSERT_CHAT)?.execute(params![
        id,
        chat.kind.as_str(),
        chat.title.as_deref().map(enc),
        enc(chat.created_by.as_str()),
        int(chat.created_at.0, "createdAt")?,
        int(chat.updated_at.0, "updatedAt")?,
        dm_key,
    ])?;
    if inserted == 0 {
        // The id is taken (one writer: a DM key taken is seen by the look above).
        return Err(StoreError::Rejected(format!("chat {} exists", chat.id)));
    }
    let mut insert_member = prepare(conn, sql::INSERT_MEMBER)?;
    for (position, member) in chat.member_ids.iter().enumerate() {
        insert_member.execute(params![id, enc(member.as_str()), position as i64])?;
    }
    Ok(None)
}

fn commit_in(conn: &Connection, chat: &ChatId, writes: &[Write], keys: &ClientIdFilter) -> Result<(), StoreError> {
    let id = enc(chat.as_str());
    let messages = messages_of(writes);
    if let (Some(first), Some(last)) = (messages.first(), messages.last()) {
        // Advancing last_seq checks the sequence.
        let expected = first.seq.0.checked_sub(1).ok_or_else(|| StoreError::Rejected("message seq 0".into()))?;
        let advanced = prepare(conn, sql::ADVANCE_SEQ)?.execute(params![id, int(expected, "seq")?, int(last.seq.0, "seq")?])?;
        if advanced != 1 {
            let stored = last_seq(conn, &id)?;
            if stored.is_some() {
                // The core owns each chat's sequence: a break means another process
                // writes this file, so the filter may miss its pairs.
                keys.distrust();
            }
            return Err(StoreError::Rejected(match stored {
                None => format!("no chat {chat}"),
                Some(last_seq) => format!("message seq {} breaks the chat's sequence at {}", first.seq, last_seq.saturating_add(1)),
            }));
        }
    } else if last_seq(conn, &id)?.is_none() {
        return Err(StoreError::Rejected(format!("no chat {chat}")));
    }

    // Each sender's count goes up once per commit; message n of a sender in this commit
    // is their (sent before + n)-th in the chat.
    let mut batch: BTreeMap<&UserId, u64> = BTreeMap::new();
    for message in &messages {
        *batch.entry(&message.sender_id).or_default() += 1;
    }
    let mut next_nth: BTreeMap<&UserId, u64> = BTreeMap::new();
    for (sender, count) in batch {
        let sender_id = enc(sender.as_str());
        prepare(conn, sql::ADD_SENT_QUIETLY)?.execute(params![id, sender_id, int(count, "count")?])?;
        let sent: i64 = prepare(conn, sql::SENT)?.query_row(params![id, sender_id], |row| row.get(0))?;
        next_nth.insert(sender, uint(sent, "sent")?.saturating_sub(count) + 1);
    }

    for write in writes {
        match write {
            Write::Message(message) => {
                let nth = next_nth.get_mut(&message.sender_id).ok_or_else(|| StoreError::Corrupt("sender count missing".into()))?;
                prepare(conn, sql::INSERT_MESSAGE)?.execute(params![
                    enc(message.id.as_str()),
                    id,
                    int(message.seq.0, "seq")?,
                    enc(message.sender_id.as_str()),
                    enc(message.client_id.as_str()),
                    enc(&message.body),
                    message.kind.as_str(),
                    int(message.created_at.0, "createdAt")?,
                    int(*nth, "sender_nth")?,
                ])
                .inspect_err(|error| {
                    // A message the core took for new is stored already: as above.
                    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                        keys.distrust();
                    }
                })?;
                *nth += 1;
            }
            Write::Cursor { user, cursor } => {
                prepare(conn, sql::SET_CURSOR)?.execute(params![
                    id,
                    enc(user.as_str()),
                    int(cursor.seq.0, "seq")?,
                    cursor.message_id.as_ref().map(|m| enc(m.as_str())),
                    int(cursor.read_at.0, "readAt")?,
                    int(cursor.own_upto, "ownUpto")?,
                ])?;
            }
            Write::Chat(updated) => {
                prepare(conn, sql::UPDATE_CHAT)?.execute(params![
                    id,
                    updated.kind.as_str(),
                    updated.title.as_deref().map(enc),
                    enc(updated.created_by.as_str()),
                    int(updated.created_at.0, "createdAt")?,
                    int(updated.updated_at.0, "updatedAt")?,
                ])?;
                replace_members(conn, &id, &updated.member_ids)?;
            }
        }
    }
    Ok(())
}

fn last_seq(conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(prepare(conn, sql::LAST_SEQ)?.query_row(params![id], |row| row.get(0)).optional()?)
}

/// Makes the stored member list `members`, in order (as `super::replace_members`).
fn replace_members(conn: &Connection, chat: &str, members: &[UserId]) -> Result<(), StoreError> {
    let old: Vec<(String, i64)> = prepare(conn, sql::MEMBERS_OF)?
        .query_map(params![chat], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let new: Vec<String> = members.iter().map(|member| enc(member.as_str())).collect();
    if old.iter().map(|(user, _)| user).eq(new.iter()) {
        return Ok(());
    }
    let wanted: HashSet<&str> = new.iter().map(String::as_str).collect();
    let kept: Vec<&String> = old.iter().map(|(user, _)| user).filter(|user| wanted.contains(user.as_str())).collect();
    if new.len() >= kept.len() && new[..kept.len()].iter().eq(kept.iter().copied()) {
        for (user, _) in old.iter().filter(|(user, _)| !wanted.contains(user.as_str())) {
            prepare(conn, sql::DELETE_MEMBER)?.execute(params![chat, user])?;
        }
        let first = old.iter().map(|(_, position)| *position).max().map_or(0, |last| last + 1);
        for (position, user) in (first..).zip(&new[kept.len()..]) {
            prepare(conn, sql::INSERT_MEMBER)?.execute(params![chat, user, position])?;
        }
    } else {
        prepare(conn, sql::DELETE_MEMBERS)?.execute(params![chat])?;
        for (position, user) in new.iter().enumerate() {
            prepare(conn, sql::INSERT_MEMBER)?.execute(params![chat, user, position as i64])?;
        }
    }
    Ok(())
}

fn chat_by_dm_key(conn: &Connection, key: &str) -> Result<Option<Chat>, StoreError> {
    let id: Option<String> = prepare(conn, sql::CHAT_BY_DM_KEY)?.query_row(params![key], |row| row.get(0)).optional()?;
    let Some(id) = id else { return Ok(None) };
    let mut statement = prepare(conn, sql::CHAT_WITH_MEMBERS)?;
    let mut rows = statement.query(params![id])?;
    let mut chat: Option<Chat> = None;
    while let Some(row) = rows.next()? {
        if chat.is_none() {
            chat = Some(chat_at(row, 0, Vec::new())?);
        }
        if let (Some(chat), Some(member)) = (chat.as_mut(), row.get::<_, Option<String>>(7)?) {
            chat.member_ids.push(UserId::new(dec(member)?));
        }
    }
    chat.map(Some).ok_or_else(|| StoreError::Corrupt(format!("dm key {key:?} names a missing chat")))
}

