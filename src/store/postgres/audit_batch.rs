//! The audit trail's writer: audit rows nobody waits for ([`Store::audit`]) are queued and
//! written by one task, as many as are waiting in one statement and one commit, so a login
//! costs PostgreSQL one commit (its counter), not two. On SQLite the store thread's group
//! commit does the same.
//!
//! The queue is bounded; when it is full (the database is slow or gone) a row is dropped and
//! logged rather than letting memory grow. [`AuditQueue::flush`] waits until everything queued
//! before it is written (a clean stop).
//!
//! [`Store::audit`]: super::super::Store::audit

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::super::{AuditEntry, StoreError};
use super::execute;

/// Most rows waiting to be written.
const QUEUE: usize = 10_000;
/// Most rows in one statement.
const BATCH: usize = 500;

/// One statement for a whole batch: the columns as arrays.
const INSERT_BATCH: &str = "INSERT INTO audit (time, client, username, realm, serial, action, result, reason) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[])";

enum Item {
    Row(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// See the module documentation.
pub(super) struct AuditQueue {
    items: mpsc::Sender<Item>,
}

impl AuditQueue {
    /// Starts the writer on the current runtime.
    pub(super) fn start(pool: Pool) -> AuditQueue {
        let (items, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, queue));
        AuditQueue { items }
    }

    /// Queues a row (escaped already).
    pub(super) fn push(&self, entry: AuditEntry) {
        if let Err(error) = self.items.try_send(Item::Row(entry)) {
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "the audit queue is full",
                mpsc::error::TrySendError::Closed(_) => "the audit writer is gone",
            };
            tracing::error!("audit row not written: {why}");
        }
    }

    /// Waits until every row queued so far is written (or failed).
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        self.items
            .send(Item::Flush(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        written.await.map_err(|_| StoreError::Closed)
    }
}

async fn write_batches(pool: Pool, mut queue: mpsc::Receiver<Item>) {
    let mut rows: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut flushes: Vec<oneshot::Sender<()>> = vec![];
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Row(entry) => rows.push(entry),
                Item::Flush(done) => flushes.push(done),
            }
            if rows.len() < BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            let count = rows.len();
            if let Err(error) = write(&pool, &rows).await {
                tracing::error!(%error, rows = count, "audit rows not written");
            }
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(pool: &Pool, rows: &[AuditEntry]) -> Result<(), StoreError> {
    let c = pool.get().await?;
    let column = |f: fn(&AuditEntry) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let times: Vec<i64> = rows.iter().map(|r| r.time).collect();
    let serials: Vec<Option<String>> = rows.iter().map(|r| r.serial.clone()).collect();
    let (clients, users, realms) = (
        column(|r| r.client.clone()),
        column(|r| r.user.clone()),
        column(|r| r.realm.clone()),
    );
    let (actions, results, reasons) = (
        column(|r| r.action.clone()),
        column(|r| r.result.clone()),
        column(|r| r.reason.clone()),
    );
    execute(
        &c,
        INSERT_BATCH,
        &[
            &times, &clients, &users, &realms, &serials, &actions, &results, &reasons,
        ],
    )
    .await?;
    Ok(())
}
