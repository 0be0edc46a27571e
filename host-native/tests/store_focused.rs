//! Focused tests of the SQL store, each on SQLite and on PostgreSQL: durability, migrations,
//! atomic commits, exact text, DM races, concurrent commits.

#[macro_use]
mod store_support;

use chat_core::command::HistoryQuery;
use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use chat_core::memory::MemoryStore;
use chat_core::model::{Chat, ChatKind, Message, MessageKind};
use chat_core::storage::{ChatRecord, MemberRead, ReadCursor, ReadTarget, StorageOp, StorageResult, Write};
use chat_native::store::Store;
use std::time::Instant;
use store_support::TestDb;

on_both_backends!(
    data_survives_reconnect,
    migrate_is_idempotent,
    failing_commit_applies_nothing,
    sequence_rules_and_unknown_chats_fail,
    text_round_trips_exactly,
    concurrent_dm_creation_stores_one_chat,
    concurrent_commits_across_chats,
    a_failing_commit_among_concurrent_ones_fails_alone,
    membership_changes_keep_join_order,
    healthy_until_closed,
);

const T0: u64 = 1_700_000_000_000;

fn group(id: &str, members: &[&str]) -> Chat {
    Chat {
        id: ChatId::from(id),
        kind: ChatKind::Group,
        title: Some(format!("title of {id}")),
        member_ids: members.iter().map(|m| UserId::from(*m)).collect(),
        created_by: UserId::from(members.first().copied().unwrap_or("nobody")),
        created_at: Millis(T0),
        updated_at: Millis(T0),
    }
}

fn message(chat: &str, seq: u64, sender: &str, client: &str, body: &str) -> Message {
    Message {
        id: MessageId::new(format!("{chat}-m{seq}-{client}")),
        chat_id: ChatId::from(chat),
        seq: Seq(seq),
        sender_id: UserId::from(sender),
        body: body.to_owned(),
        kind: MessageKind::Text,
        client_id: ClientId::from(client),
        created_at: Millis(T0 + seq),
    }
}

fn create(chat: Chat) -> StorageOp {
    StorageOp::CreateChat { chat, dm_key: None }
}

fn commit(chat: &str, writes: Vec<Write>) -> StorageOp {
    StorageOp::Commit { chat: ChatId::from(chat), writes }
}

fn load_chat(chat: &str) -> StorageOp {
    StorageOp::LoadChat { chat: ChatId::from(chat) }
}

fn all_messages(chat: &str) -> StorageOp {
    StorageOp::LoadMessages { chat: ChatId::from(chat), query: HistoryQuery::After(Seq(0)), limit: 10_000 }
}

/// Applies `op` to both stores and checks they agree; returns the SQL store's answer.
async fn both(store: &Store, reference: &mut MemoryStore, op: StorageOp) -> StorageResult {
    let expected = reference.apply(&op);
    let actual = store.apply(&op).await;
    let failed = |r: &StorageResult| matches!(r, StorageResult::Failed(_));
    if failed(&expected) || failed(&actual) {
        assert!(failed(&expected) && failed(&actual), "{op:?}\n reference: {expected:?}\n store: {actual:?}");
    } else {
        assert_eq!(expected, actual, "{op:?}");
    }
    actual
}

async fn snapshot(store: &Store, chats: &[&str]) -> Vec<StorageResult> {
    let mut all = Vec::new();
    for chat in chats {
        all.push(store.apply(&load_chat(chat)).await);
        all.push(store.apply(&all_messages(chat)).await);
    }
    for user in ["ann", "ben", "cat"] {
        all.push(store.apply(&StorageOp::ListInbox { user: UserId::from(user) }).await);
        all.push(store.apply(&StorageOp::LoadUser { user: UserId::from(user), sends_since: Millis(0) }).await);
    }
    all
}

async fn data_survives_reconnect(db: TestDb) {
    let store = store_support::open(&db).await;
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("c1", &["ann", "ben"]))).await;
    let cursor = ReadCursor { seq: Seq(2), message_id: Some(MessageId::from("c1-m2-k2")), read_at: Millis(T0 + 9), own_upto: 1 };
    let writes = vec![
        Write::Message(message("c1", 1, "ann", "k1", "first")),
        Write::Message(message("c1", 2, "ben", "k2", "second")),
        Write::Cursor { user: UserId::from("ben"), cursor },
    ];
    assert_eq!(both(&store, &mut reference, commit("c1", writes)).await, StorageResult::Committed);
    let before = snapshot(&store, &["c1"]).await;
    store.close().await;
    drop(store);

    let store = store_support::open(&db).await;
    assert_eq!(snapshot(&store, &["c1"]).await, before);
    let StorageResult::Chat(Some(record)) = store.apply(&load_chat("c1")).await else { panic!("chat c1 is gone") };
    assert_eq!(record.last_seq, Seq(2));
    // And the sequence continues where it stopped.
    let next = commit("c1", vec![Write::Message(message("c1", 3, "ann", "k3", "third"))]);
    assert_eq!(both(&store, &mut reference, next).await, StorageResult::Committed);
    store.close().await;
}

async fn migrate_is_idempotent(db: TestDb) {
    let store = store_support::open(&db).await;
    store.migrate().await.expect("second migrate");
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("c1", &["ann"]))).await;
    store.migrate().await.expect("migrate with data");
    store.close().await;
    let again = store_support::open(&db).await;
    again.migrate().await.expect("migrate after reconnect");
    assert_eq!(again.apply(&load_chat("c1")).await, reference.apply(&load_chat("c1")));
    again.close().await;
}

async fn failing_commit_applies_nothing(db: TestDb) {
    let store = store_support::open(&db).await;
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("c1", &["ann", "ben"]))).await;
    both(&store, &mut reference, create(group("c2", &["ann"]))).await;
    let first = commit("c1", vec![Write::Message(message("c1", 1, "ann", "k1", "hello"))]);
    assert_eq!(both(&store, &mut reference, first).await, StorageResult::Committed);
    let before = snapshot(&store, &["c1", "c2"]).await;

    let mut renamed = group("c1", &["ann", "ben", "cat"]);
    renamed.title = Some("renamed".into());
    let cursor = ReadCursor { seq: Seq(1), message_id: Some(MessageId::from("c1-m1-k1")), read_at: Millis(T0 + 5), own_upto: 0 };
    let failing = [
        // A stored (sender, clientId) again, after valid writes: all of it must roll back.
        vec![
            Write::Message(message("c1", 2, "ben", "k9", "fine")),
            Write::Cursor { user: UserId::from("ben"), cursor: cursor.clone() },
            Write::Chat(renamed.clone()),
            Write::Message(message("c1", 3, "ann", "k1", "duplicate clientId")),
        ],
        // The same clientId twice within the commit.
        vec![Write::Message(message("c1", 2, "cat", "k5", "a")), Write::Message(message("c1", 3, "cat", "k5", "b"))],
        // A stored message id again.
        vec![Write::Chat(renamed.clone()), Write::Message(Message { id: MessageId::from("c1-m1-k1"), ..message("c1", 2, "cat", "k6", "x") })],
    ];
    for writes in failing {
        let result = both(&store, &mut reference, commit("c1", writes)).await;
        assert!(matches!(result, StorageResult::Failed(_)), "{result:?}");
        assert_eq!(snapshot(&store, &["c1", "c2"]).await, before);
    }
    for client in ["k9", "k5", "k6"] {
        let find = StorageOp::FindMessage { sender: UserId::from("ben"), client_id: ClientId::from(client) };
        assert_eq!(store.apply(&find).await, StorageResult::Message(None));
    }
    // The same clientId from another sender is a different key.
    let other_sender = commit("c2", vec![Write::Message(message("c2", 1, "ben", "k1", "same clientId, other sender"))]);
    assert_eq!(both(&store, &mut reference, other_sender).await, StorageResult::Committed);
    store.close().await;
}

async fn sequence_rules_and_unknown_chats_fail(db: TestDb) {
    let store = store_support::open(&db).await;
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("c1", &["ann"]))).await;
    let failing = [
        commit("c1", vec![Write::Message(message("c1", 2, "ann", "k1", "gap"))]),
        commit("c1", vec![Write::Message(message("c1", 0, "ann", "k1", "zero"))]),
        commit("c1", vec![Write::Message(message("c1", 1, "ann", "k1", "a")), Write::Message(message("c1", 3, "ann", "k2", "gap"))]),
        commit("c1", vec![Write::Message(message("c2", 1, "ann", "k1", "other chat"))]),
        commit("c1", vec![Write::Chat(group("c2", &["ann"]))]),
        commit("nope", vec![]),
        commit("nope", vec![Write::Message(message("nope", 1, "ann", "k1", "x"))]),
        commit("nope", vec![Write::Cursor { user: UserId::from("ann"), cursor: ReadCursor::default() }]),
        commit("nope", vec![Write::Chat(group("nope", &["ann"]))]),
        // A chat id that is taken.
        create(group("c1", &["ben"])),
    ];
    for op in failing {
        let result = both(&store, &mut reference, op.clone()).await;
        assert!(matches!(result, StorageResult::Failed(_)), "{op:?} → {result:?}");
    }
    assert_eq!(both(&store, &mut reference, commit("c1", vec![])).await, StorageResult::Committed);
    assert_eq!(store.apply(&load_chat("nope")).await, StorageResult::Chat(None));
    let StorageResult::Chat(Some(record)) = store.apply(&load_chat("c1")).await else { panic!() };
    assert_eq!((record.last_seq, record.reads), (Seq(0), vec![]));
    store.close().await;
}

async fn text_round_trips_exactly(db: TestDb) {
    let store = store_support::open(&db).await;
    let mut reference = MemoryStore::new();
    let odd_user = "u\0ser \u{1}0 🙂";
    let chat_id = "chat\0with nul";
    let mut chat = group(chat_id, &["ann", odd_user]);
    chat.title = Some("tí\0tle\u{1}\u{1}1 👩‍👩‍👧".into());
    both(&store, &mut reference, create(chat.clone())).await;
    let bodies = [
        "emoji 🙂👍🏽 and\nnew\r\nlines\tand tabs  ".to_owned(),
        "  leading and trailing whitespace \n".to_owned(),
        "nul \0 in the middle, escape \u{1} and \u{1}0 and \\0".to_owned(),
        "\0".to_owned(),
        "'; DROP TABLE messages; -- $1 ?1 :x @y".to_owned(),
        "🙂".repeat(8000),
        "\u{FEFF}\u{200B}\u{10FFFF}".to_owned(),
    ];
    let writes = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut m = message(chat_id, i as u64 + 1, if i % 2 == 0 { odd_user } else { "ann" }, &format!("c\0{i}"), body);
            m.id = MessageId::new(format!("id\0{i}"));
            Write::Message(m)
        })
        .collect();
    assert_eq!(both(&store, &mut reference, commit(chat_id, writes)).await, StorageResult::Committed);
    let StorageResult::Messages(stored) = both(&store, &mut reference, all_messages(chat_id)).await else { panic!() };
    let stored_bodies: Vec<&str> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(stored_bodies, bodies.iter().map(String::as_str).collect::<Vec<_>>());
    let StorageResult::Chat(Some(record)) = both(&store, &mut reference, load_chat(chat_id)).await else { panic!() };
    assert_eq!(record.chat, chat);
    let find = StorageOp::FindMessage { sender: UserId::from(odd_user), client_id: ClientId::from("c\0") };
    assert_eq!(both(&store, &mut reference, find).await, StorageResult::Message(None));
    let find = StorageOp::FindMessage { sender: UserId::from(odd_user), client_id: ClientId::from("c\u{0}2") };
    assert!(
        matches!(both(&store, &mut reference, find).await, StorageResult::Message(Some(m)) if m.body == "nul \0 in the middle, escape \u{1} and \u{1}0 and \\0")
    );
    let resolve = StorageOp::ResolveRead { chat: ChatId::from(chat_id), message: MessageId::from("id\u{0}4"), reader: UserId::from(odd_user) };
    assert_eq!(both(&store, &mut reference, resolve).await, StorageResult::ReadTarget(Some(ReadTarget { seq: Seq(5), own_upto: 3 })));
    both(&store, &mut reference, StorageOp::ListInbox { user: UserId::from(odd_user) }).await;
    both(&store, &mut reference, StorageOp::LoadUser { user: UserId::from(odd_user), sends_since: Millis(0) }).await;
    // Unknown ids that contain NUL are simply unknown, not errors.
    assert_eq!(store.apply(&load_chat("\0")).await, StorageResult::Chat(None));
    let dm = Chat { id: ChatId::from("dm\0"), kind: ChatKind::Dm, title: None, ..group("dm\0", &["ann", odd_user]) };
    let key = Chat::dm_key(&UserId::from("ann"), &UserId::from(odd_user));
    both(&store, &mut reference, StorageOp::CreateChat { chat: dm.clone(), dm_key: Some(key.clone()) }).await;
    let again = Chat { id: ChatId::from("dm2"), ..dm.clone() };
    assert_eq!(
        both(&store, &mut reference, StorageOp::CreateChat { chat: again, dm_key: Some(key) }).await,
        StorageResult::Created { existing: Some(dm) }
    );
    store.close().await;
}

async fn concurrent_dm_creation_stores_one_chat(db: TestDb) {
    let store = store_support::open(&db).await;
    let (ann, ben) = (UserId::from("ann"), UserId::from("ben"));
    let key = Chat::dm_key(&ann, &ben);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let chat = Chat {
                id: ChatId::new(format!("dm-{i}")),
                kind: ChatKind::Dm,
                title: None,
                member_ids: vec![ann.clone(), ben.clone()],
                created_by: ann.clone(),
                created_at: Millis(T0 + i),
                updated_at: Millis(T0 + i),
            };
            let op = StorageOp::CreateChat { chat, dm_key: Some(key.clone()) };
            tokio::spawn(async move { store.apply(&op).await })
        })
        .collect();
    let mut created = 0;
    let mut existing = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            StorageResult::Created { existing: None } => created += 1,
            StorageResult::Created { existing: Some(chat) } => existing.push(chat),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1, "exactly one DM is stored");
    assert_eq!(existing.len(), 15);
    let winner = existing[0].clone();
    assert!(existing.iter().all(|chat| *chat == winner));
    let StorageResult::Inbox(rows) = store.apply(&StorageOp::ListInbox { user: ann }).await else { panic!() };
    assert_eq!(rows.iter().map(|row| row.chat.clone()).collect::<Vec<_>>(), vec![winner]);
    store.close().await;
}

/// Many chats commit at once (one commit in flight per chat, as the core does).
async fn concurrent_commits_across_chats(db: TestDb) {
    const CHATS: u64 = 16;
    const COMMITS: u64 = 20;
    let store = store_support::open(&db).await;
    for c in 0..CHATS {
        assert!(matches!(store.apply(&create(group(&format!("c{c}"), &["ann", "ben"]))).await, StorageResult::Created { existing: None }));
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..CHATS)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                let chat = format!("c{c}");
                for n in 1..=COMMITS {
                    let sender = if n % 3 == 0 { "ben" } else { "ann" };
                    let mut writes = vec![Write::Message(message(&chat, n, sender, &format!("{chat}-k{n}"), "hi"))];
                    if n % 5 == 0 {
                        let cursor = ReadCursor { seq: Seq(n), message_id: None, read_at: Millis(T0 + n), own_upto: n / 3 };
                        writes.push(Write::Cursor { user: UserId::from("ben"), cursor });
                    }
                    let result = store.apply(&commit(&chat, writes)).await;
                    assert_eq!(result, StorageResult::Committed, "{chat} commit {n}");
                    // Reads run alongside the writes.
                    let page = StorageOp::LoadMessages { chat: ChatId::new(chat.clone()), query: HistoryQuery::Before(None), limit: 5 };
                    assert!(matches!(store.apply(&page).await, StorageResult::Messages(m) if m.last().map(|m| m.seq) == Some(Seq(n))));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("committer");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{}: {} concurrent commits over {CHATS} chats in {elapsed:?} ({:.0} commits/s)",
        db.kind,
        CHATS * COMMITS,
        (CHATS * COMMITS) as f64 / elapsed.as_secs_f64()
    );
    for c in 0..CHATS {
        let StorageResult::Chat(Some(ChatRecord { last_seq, reads, .. })) = store.apply(&load_chat(&format!("c{c}"))).await else { panic!() };
        assert_eq!(last_seq, Seq(COMMITS));
        let ben_cursor = ReadCursor { seq: Seq(20), message_id: None, read_at: Millis(T0 + 20), own_upto: 6 };
        assert_eq!(
            reads,
            vec![
                MemberRead { user: UserId::from("ann"), cursor: None, sent: 14 },
                MemberRead { user: UserId::from("ben"), cursor: Some(ben_cursor), sent: 6 },
            ]
        );
    }
    store.close().await;
}

async fn membership_changes_keep_join_order(db: TestDb) {
    let store = store_support::open(&db).await;
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("g", &["ann", "ben", "cat"]))).await;
    let steps: [&[&str]; 7] = [
        &["ann", "ben", "cat", "dan"],
        &["ann", "cat", "dan"],
        &["ann", "cat", "dan", "ben"],
        &["cat", "dan", "ben"],
        &["ben", "cat", "dan"],
        &[],
        &["eve", "ann"],
    ];
    for (i, members) in steps.iter().enumerate() {
        let mut chat = group("g", members);
        chat.created_by = UserId::from("ann");
        chat.updated_at = Millis(T0 + 1 + i as u64);
        assert_eq!(both(&store, &mut reference, commit("g", vec![Write::Chat(chat.clone())])).await, StorageResult::Committed);
        let StorageResult::Chat(Some(record)) = both(&store, &mut reference, load_chat("g")).await else { panic!() };
        assert_eq!(record.chat, chat);
        for user in ["ann", "ben", "cat", "dan", "eve"] {
            both(&store, &mut reference, StorageOp::ListInbox { user: UserId::from(user) }).await;
            both(&store, &mut reference, StorageOp::LoadUser { user: UserId::from(user), sends_since: Millis(0) }).await;
        }
    }
    store.close().await;
}

async fn healthy_until_closed(db: TestDb) {
    let store = store_support::open(&db).await;
    assert!(store.healthy().await);
    let clone = store.clone();
    store.close().await;
    assert!(!clone.healthy().await);
    assert!(matches!(clone.apply(&load_chat("c1")).await, StorageResult::Failed(_)));
}

// --- SQLite specifics ------------------------------------------------------------------

fn find(sender: &str, client: &str) -> StorageOp {
    StorageOp::FindMessage { sender: UserId::from(sender), client_id: ClientId::from(client) }
}

/// Asks for `client` until the store's clientId filter has had time to load, checking
/// every answer: before and after loading the answer must be the same.
async fn find_repeatedly(store: &Store, sender: &str, client: &str) -> StorageResult {
    let first = store.apply(&find(sender, client)).await;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(store.apply(&find(sender, client)).await, first, "{sender}/{client}");
    }
    first
}

/// A migrated store on a fresh SQLite file, holding the group c1 of ann and ben.
async fn file_store_with_c1() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = Store::connect(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    store.apply(&create(group("c1", &["ann", "ben"]))).await;
    (dir, path, store)
}

/// Commits land in the WAL; a thread of the store copies them into the database file
/// with no commit waiting for it.
#[tokio::test]
async fn commits_reach_the_database_file_without_another_write() {
    let (_dir, path, store) = file_store_with_c1().await;
    let file_size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = file_size();
    for seq in 1..=300 {
        let sent = message("c1", seq, "ann", &format!("k{seq}"), &"x".repeat(200));
        assert_eq!(store.apply(&commit("c1", vec![Write::Message(sent)])).await, StorageResult::Committed);
    }
    let waited = Instant::now();
    while file_size() <= before && waited.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(file_size() > before, "the database file stayed at {before} bytes");
    store.close().await;
}

#[tokio::test]
async fn a_retried_client_id_is_found_after_a_restart() {
    let (_dir, path, store) = file_store_with_c1().await;
    let sent = message("c1", 1, "ann", "\u{1}0 nul-escaped client", "hello");
    assert_eq!(store.apply(&commit("c1", vec![Write::Message(sent.clone())])).await, StorageResult::Committed);
    store.close().await;

    let store = Store::connect(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(find_repeatedly(&store, "ann", "\u{1}0 nul-escaped client").await, StorageResult::Message(Some(sent)));
    assert_eq!(find_repeatedly(&store, "ben", "\u{1}0 nul-escaped client").await, StorageResult::Message(None));
    store.close().await;
}

#[tokio::test]
async fn a_client_id_committed_in_this_process_is_found_at_once() {
    let (_dir, _path, store) = file_store_with_c1().await;
    assert_eq!(find_repeatedly(&store, "ann", "k1").await, StorageResult::Message(None));
    for seq in 1..=50 {
        let sent = message("c1", seq, "ann", &format!("k{seq}"), "hi");
        assert_eq!(store.apply(&commit("c1", vec![Write::Message(sent.clone())])).await, StorageResult::Committed);
        assert_eq!(store.apply(&find("ann", &format!("k{seq}"))).await, StorageResult::Message(Some(sent)));
    }
    store.close().await;
}

/// Opens a second store on `ours`' file (as another process would) and stores ann's `k1`
/// and `k2` in chat c1 through it, after `ours` has loaded its clientId filter.
async fn another_process_stores_k1_and_k2(ours: &Store, path: &std::path::Path) -> (Store, Message) {
    find_repeatedly(ours, "ann", "warm-up").await;
    let other = Store::connect(path.to_str().unwrap()).await.unwrap();
    let first = message("c1", 1, "ann", "k1", "from the other process");
    let second = message("c1", 2, "ann", "k2", "from the other process");
    for sent in [&first, &second] {
        assert_eq!(other.apply(&commit("c1", vec![Write::Message(sent.clone())])).await, StorageResult::Committed);
    }
    (other, second)
}

/// Another process stores ann's `k1` and `k2` in the file; then ours commits `clash`,
/// which fails; `k2`, which our filter never saw, must still be found.
async fn theirs_are_found_after(clash: Message) {
    let (_dir, path, ours) = file_store_with_c1().await;
    let (other, theirs) = another_process_stores_k1_and_k2(&ours, &path).await;
    assert!(matches!(ours.apply(&commit("c1", vec![Write::Message(clash)])).await, StorageResult::Failed(_)));
    assert_eq!(ours.apply(&find("ann", "k2")).await, StorageResult::Message(Some(theirs)));
    other.close().await;
    ours.close().await;
}

/// One SQLite file is one process's. If another writes it anyway, the first sign of it
/// (here a commit whose seq the other took) makes every later lookup read the file.
#[tokio::test]
async fn client_ids_stored_by_another_process_are_found_after_a_sequence_clash() {
    theirs_are_found_after(message("c1", 1, "ann", "k9", "ours")).await;
}

/// As above, when the sign is a message insert that breaks a unique key.
#[tokio::test]
async fn client_ids_stored_by_another_process_are_found_after_a_unique_key_clash() {
    theirs_are_found_after(Message { id: MessageId::new("another id"), ..message("c1", 3, "ann", "k1", "ours") }).await;
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_from_a_plain_path() {
    use sqlx::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested dir/more/chat #1.db");
    let store = Store::connect(path.to_str().unwrap()).await.expect("connect to a plain path");
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.unwrap();
    assert!(matches!(store.apply(&create(group("c1", &["ann"]))).await, StorageResult::Created { existing: None }));
    assert!(path.exists());
    store.close().await;
    let mut conn =
        SqliteConnection::connect(&format!("sqlite://{}", path.display().to_string().replace(' ', "%20").replace('#', "%23"))).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_works_for_tests() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    store.migrate().await.unwrap();
    let mut reference = MemoryStore::new();
    both(&store, &mut reference, create(group("c1", &["ann"]))).await;
    both(&store, &mut reference, commit("c1", vec![Write::Message(message("c1", 1, "ann", "k", "x"))])).await;
    both(&store, &mut reference, load_chat("c1")).await;
}

#[tokio::test]
async fn unreachable_postgres_is_an_error() {
    let started = Instant::now();
    let result = Store::connect("postgres://postgres@127.0.0.1:1/test").await;
    assert!(result.is_err());
    eprintln!("unreachable postgres reported after {:?}: {}", started.elapsed(), result.unwrap_err());
}

/// SQLite carries concurrent commits of several chats in one transaction (group commit
/// across chats): one that breaks a rule must fail alone and apply nothing.
async fn a_failing_commit_among_concurrent_ones_fails_alone(db: TestDb) {
    let store = store_support::open(&db).await;
    for c in 0..8 {
        assert!(matches!(store.apply(&create(group(&format!("g{c}"), &["ann", "ben"]))).await, StorageResult::Created { existing: None }));
    }
    let taken = commit("g7", vec![Write::Message(message("g7", 1, "ann", "taken", "first"))]);
    assert_eq!(store.apply(&taken).await, StorageResult::Committed);
    for _round in 0..5 {
        let tasks: Vec<_> = (0..8u64)
            .map(|c| {
                let store = store.clone();
                tokio::spawn(async move {
                    let chat = format!("g{c}");
                    let StorageResult::Chat(Some(record)) = store.apply(&load_chat(&chat)).await else { panic!("{chat} loads") };
                    let seq = record.last_seq.0 + 1;
                    // Chat g3 reuses a clientId ann already used in g7: UNIQUE (sender, clientId).
                    let client = if c == 3 { "taken".to_string() } else { format!("{chat}-k{seq}") };
                    let result = store.apply(&commit(&chat, vec![Write::Message(message(&chat, seq, "ann", &client, "hi"))])).await;
                    (c, seq, result)
                })
            })
            .collect();
        for task in tasks {
            let (c, seq, result) = task.await.expect("committer");
            if c == 3 {
                assert!(matches!(result, StorageResult::Failed(_)), "g{c} seq {seq}: {result:?}");
            } else {
                assert_eq!(result, StorageResult::Committed, "g{c} seq {seq}");
            }
        }
    }
    for c in 0..8 {
        let StorageResult::Chat(Some(record)) = store.apply(&load_chat(&format!("g{c}"))).await else { panic!() };
        let expected = match c {
            3 => 0,
            7 => 6,
            _ => 5,
        };
        assert_eq!(record.last_seq, Seq(expected), "g{c}");
    }
}
