//! Shared by the `store_*` tests: a fresh database per test on SQLite (a temporary file)
//! and on PostgreSQL (a fresh schema in the machine's server, dropped afterwards).
//!
//! PostgreSQL is required: when it cannot be reached the tests fail, they never skip.
//! `CHAT_TEST_POSTGRES_URL` overrides the server (default
//! `postgres://postgres@127.0.0.1:5432/test`).
#![allow(dead_code)]

use chat_native::store::Store;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn postgres_admin_url() -> String {
    std::env::var("CHAT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A database for one test; dropping it removes it (also when the test panics).
pub struct TestDb {
    pub url: String,
    pub kind: &'static str,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, schema } = self {
            let (admin_url, name) = (admin_url.clone(), schema.clone());
            // Drop can't await, and may run inside a runtime: use a thread with its own.
            let dropped = std::thread::spawn(move || {
                let schema = name;
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    let mut conn = PgConnection::connect(&admin_url).await?;
                    conn.execute(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))).await?;
                    conn.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop test schema {schema}: {dropped:?}");
            }
        }
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("chat_test_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A fresh SQLite database file in a new temporary directory (the file does not exist yet,
/// and neither does its parent directory `db/`: connecting creates both).
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}/db/chat.sqlite3", dir.path().display());
    TestDb { url, kind: "sqlite", _guard: Guard::Sqlite(dir) }
}

/// A fresh, empty schema in the PostgreSQL test database; the URL makes it the search path.
/// Panics when PostgreSQL is unreachable: CI guarantees it runs.
pub async fn postgres() -> TestDb {
    let admin_url = postgres_admin_url();
    let schema = unique_name();
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required for the store tests and is unreachable at {admin_url}: {e}"));
    conn.execute(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).await.expect("create test schema");
    conn.close().await.ok();
    let separator = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!("{admin_url}{separator}options[search_path]={schema}");
    TestDb { url, kind: "postgres", _guard: Guard::Postgres { admin_url, schema } }
}

pub async fn database(kind: &str) -> TestDb {
    match kind {
        "sqlite" => sqlite(),
        "postgres" => postgres().await,
        other => panic!("unknown backend {other}"),
    }
}

/// Connects to `db` and applies the migrations.
pub async fn open(db: &TestDb) -> Store {
    let store = Store::connect(&db.url).await.unwrap_or_else(|e| panic!("connect to {}: {e}", db.url));
    assert_eq!(store.backend(), db.kind);
    store.migrate().await.unwrap_or_else(|e| panic!("migrate {}: {e}", db.url));
    store
}

/// Runs the async test `$name(TestDb)` once on SQLite and once on PostgreSQL:
/// `$name::sqlite` and `$name::postgres`. (Tests use it through `#[macro_use] mod store_support;`.)
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::store_support::database("sqlite").await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::store_support::database("postgres").await).await;
            }
        }
    )*};
}

/// A small deterministic PRNG (SplitMix64) so every run makes the same operations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
