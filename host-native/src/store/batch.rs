//! Group commit across chats (SQLite). SQLite has one writer and every commit waits for
//! its fsync, so commits of different chats queued behind one another would each pay one.
//! The batcher takes every commit waiting when the writer frees up and carries them out in
//! one transaction, each inside its own savepoint: a commit that breaks a rule rolls back
//! alone, the others become durable together with one fsync, and each caller hears its own
//! outcome only after that. (Commits of one chat are already grouped by the core.)

use super::{commit_in, messages_of, Backend, StoreError};
use chat_core::ids::ChatId;
use chat_core::storage::Write;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// At most this many chats' commits share one transaction.
const MAX_BATCH: usize = 256;

pub(crate) struct CommitJob {
    pub chat: ChatId,
    pub writes: Vec<Write>,
    pub done: oneshot::Sender<Result<(), StoreError>>,
}

/// Starts the batcher over the writer pool; commits go in through the returned sender.
pub(crate) fn start(writes: AnyPool, backend: Backend) -> mpsc::UnboundedSender<CommitJob> {
    let (tx, mut rx) = mpsc::unbounded_channel::<CommitJob>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let outcomes = run(&writes, backend, &batch).await;
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.done.send(outcome);
            }
        }
    });
    tx
}

async fn run(pool: &AnyPool, backend: Backend, batch: &[CommitJob]) -> Vec<Result<(), StoreError>> {
    let all_failed = |why: String| batch.iter().map(|_| Err(StoreError::Rejected(why.clone()))).collect::<Vec<_>>();
    let mut tx = match pool.begin_with(backend.begin_write()).await {
        Ok(tx) => tx,
        Err(error) => return all_failed(format!("database error: {error}")),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(error) = sqlx::raw_sql("SAVEPOINT chat_commit").execute(&mut *tx).await {
            let _ = tx.rollback().await;
            return all_failed(format!("database error: {error}"));
        }
        let messages = messages_of(&job.writes);
        let outcome = commit_in(&mut tx, &job.chat, &job.writes, &messages).await;
        // One savepoint at a time, released before the next: one name serves them all.
        let end = if outcome.is_ok() {
            "RELEASE SAVEPOINT chat_commit"
        } else {
            "ROLLBACK TO SAVEPOINT chat_commit; RELEASE SAVEPOINT chat_commit"
        };
        if let Err(error) = sqlx::raw_sql(end).execute(&mut *tx).await {
            let _ = tx.rollback().await;
            return all_failed(format!("database error: {error}"));
        }
        outcomes.push(outcome);
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(error) => all_failed(format!("database error: {error}")),
    }
}
