//! Storage faults at the store: a database that cannot be reached, is read-only, or is
//! locked by another process. Every operation then fails (never hangs) within
//! `OPERATION_TIMEOUT`, the store reports unhealthy, and the same `Store` works again when
//! the database is back, without reconnecting by hand.

// Only the helpers, not the on_both_backends! macro: each fault here is backend-specific.
#[allow(unused_macros)]
mod store_support;

use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use chat_core::model::{Chat, ChatKind, Message, MessageKind};
use chat_core::storage::{StorageOp, StorageResult, Write};
use chat_native::store::{Store, OPERATION_TIMEOUT};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

const T0: u64 = 1_700_000_000_000;
/// Slack over the stated bound for a loaded machine: this tells "bounded" from "hangs".
const SLACK: Duration = Duration::from_secs(5);

fn group(id: &str) -> Chat {
    Chat {
        id: ChatId::from(id),
        kind: ChatKind::Group,
        title: Some("faults".into()),
        member_ids: vec![UserId::from("ann"), UserId::from("ben")],
        created_by: UserId::from("ann"),
        created_at: Millis(T0),
        updated_at: Millis(T0),
    }
}

fn send(chat: &str, seq: u64) -> StorageOp {
    let message = Message {
        id: MessageId::new(format!("{chat}-m{seq}")),
        chat_id: ChatId::from(chat),
        seq: Seq(seq),
        sender_id: UserId::from("ann"),
        body: format!("message {seq}"),
        kind: MessageKind::Text,
        client_id: ClientId::new(format!("client-{seq}")),
        created_at: Millis(T0 + seq),
    };
    StorageOp::Commit { chat: ChatId::from(chat), writes: vec![Write::Message(message)] }
}

fn load(chat: &str) -> StorageOp {
    StorageOp::LoadChat { chat: ChatId::from(chat) }
}

fn last_seq(result: &StorageResult) -> Option<u64> {
    match result {
        StorageResult::Chat(Some(record)) => Some(record.last_seq.0),
        _ => None,
    }
}

/// Applies `op` and checks it fails within the bound.
async fn fails_in_bounded_time(store: &Store, op: StorageOp) -> Duration {
    let started = Instant::now();
    let result = store.apply(&op).await;
    let took = started.elapsed();
    assert!(matches!(result, StorageResult::Failed(_)), "{op:?} should fail, got {result:?}");
    assert!(took <= OPERATION_TIMEOUT + SLACK, "{op:?} failed only after {took:?}");
    took
}

// --- PostgreSQL unreachable: a proxy the test stops and starts ------------------------

/// A TCP proxy to PostgreSQL. Stopping it closes the listening port (connections are
/// refused) and cuts every open connection.
struct Proxy {
    port: u16,
    upstream: String,
    accept: Option<JoinHandle<()>>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let mut proxy = Proxy { port: 0, upstream: upstream.to_owned(), accept: None, pipes: Arc::default() };
        proxy.listen().await;
        proxy
    }

    async fn listen(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(format!("127.0.0.1:{}", self.port).parse().expect("address")).expect("bind the proxy port");
        let listener: TcpListener = socket.listen(64).expect("listen");
        self.port = listener.local_addr().expect("address").port();
        let (upstream, pipes) = (self.upstream.clone(), self.pipes.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                pipes.lock().unwrap().push(pipe);
            }
        }));
    }

    async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let pipes: Vec<_> = self.pipes.lock().unwrap().drain(..).collect();
        for pipe in pipes {
            pipe.abort();
            let _ = pipe.await;
        }
    }
}

/// `host:port` of a `postgres://user@host:port/…` URL, and the same URL with another port.
fn authority(url: &str) -> (String, impl Fn(u16) -> String + '_) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let end = rest.find('/').unwrap_or(rest.len());
    let host_port = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, host)| host);
    let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host);
    let user = rest[..end].rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
    let upstream = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    (upstream, move |port| format!("{scheme}://{user}{host}:{port}{}", &rest[end..]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_fails_in_bounded_time_and_recovers() {
    let db = store_support::postgres().await;
    let (upstream, through) = authority(&db.url);
    let mut proxy = Proxy::start(&upstream).await;
    let store = Store::connect(&through(proxy.port)).await.expect("connect through the proxy");
    store.migrate().await.expect("migrate");
    assert_eq!(store.apply(&StorageOp::CreateChat { chat: group("c1"), dm_key: None }).await, StorageResult::Created { existing: None });
    assert_eq!(store.apply(&send("c1", 1)).await, StorageResult::Committed);

    proxy.stop().await;
    let took = fails_in_bounded_time(&store, send("c1", 2)).await;
    eprintln!("unreachable: commit failed after {took:?}");
    fails_in_bounded_time(&store, load("c1")).await;
    assert!(!store.healthy().await, "unhealthy while unreachable");

    proxy.listen().await;
    assert!(store.healthy().await, "healthy again once reachable");
    assert_eq!(last_seq(&store.apply(&load("c1")).await), Some(1), "the failed commit stored nothing");
    assert_eq!(store.apply(&send("c1", 2)).await, StorageResult::Committed);
    store.close().await;
    proxy.stop().await;
}

// --- PostgreSQL read-only: a database of its own, switched read-only ------------------

/// A fresh PostgreSQL database (not a schema: read-only is set per database), dropped at the end.
struct OwnDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl OwnDatabase {
    async fn create() -> OwnDatabase {
        let admin_url = store_support::postgres_admin_url();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let name = format!("chat_faults_{}_{nanos}", std::process::id());
        admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
        let (scheme, rest) = admin_url.split_once("://").expect("a URL");
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let url = format!("{scheme}://{authority}/{name}");
        OwnDatabase { admin_url, name, url }
    }

    async fn set_read_only(&self, on: bool) {
        let setting = if on { "SET default_transaction_read_only = on" } else { "RESET default_transaction_read_only" };
        admin(&self.admin_url, &format!("ALTER DATABASE {} {setting}", self.name)).await;
        // Sessions keep the setting they started with: end them, as a failover would.
        admin(&self.admin_url, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'", self.name)).await;
    }

    async fn drop_it(self) {
        admin(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

async fn admin(admin_url: &str, sql: &str) {
    let mut conn = PgConnection::connect(admin_url).await.expect("PostgreSQL is required for the store tests");
    conn.execute(AssertSqlSafe(sql.to_owned())).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_only_refuses_writes_serves_reads_and_recovers() {
    let db = OwnDatabase::create().await;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    assert_eq!(store.apply(&StorageOp::CreateChat { chat: group("c1"), dm_key: None }).await, StorageResult::Created { existing: None });
    assert_eq!(store.apply(&send("c1", 1)).await, StorageResult::Committed);

    db.set_read_only(true).await;
    // The pool may first hand out a connection that was just ended: one failure, then a
    // fresh read-only session.
    let _ = store.apply(&load("c1")).await;
    let took = fails_in_bounded_time(&store, send("c1", 2)).await;
    eprintln!("read-only: commit failed after {took:?}");
    assert_eq!(last_seq(&store.apply(&load("c1")).await), Some(1), "reads are still served");
    assert!(!store.healthy().await, "a read-only database is unhealthy");

    db.set_read_only(false).await;
    let _ = store.apply(&load("c1")).await;
    assert!(store.healthy().await, "healthy again once writable");
    assert_eq!(store.apply(&send("c1", 2)).await, StorageResult::Committed);
    store.close().await;
    db.drop_it().await;
}

// --- SQLite: another process holds the write lock ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process_fails_in_bounded_time_serves_reads_and_recovers() {
    let db = store_support::sqlite();
    let store = store_support::open(&db).await;
    assert_eq!(store.apply(&StorageOp::CreateChat { chat: group("c1"), dm_key: None }).await, StorageResult::Created { existing: None });
    assert_eq!(store.apply(&send("c1", 1)).await, StorageResult::Committed);

    let mut other = SqliteConnection::connect(&db.url).await.expect("second connection");
    other.execute("BEGIN IMMEDIATE").await.expect("take the write lock");
    let took = fails_in_bounded_time(&store, send("c1", 2)).await;
    eprintln!("sqlite locked: commit failed after {took:?}");
    assert_eq!(last_seq(&store.apply(&load("c1")).await), Some(1), "reads are still served (WAL)");
    assert!(!store.healthy().await, "a database that cannot be written is unhealthy");

    other.execute("ROLLBACK").await.expect("release the write lock");
    other.close().await.ok();
    assert!(store.healthy().await, "healthy again once writable");
    assert_eq!(store.apply(&send("c1", 2)).await, StorageResult::Committed);
    store.close().await;
}
