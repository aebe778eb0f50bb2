//! The writes nobody waits for, queued and written by one task: audit rows ([`Store::audit`])
//! and the identities' back-off counts ([`Store::record_login_failure`]). Whatever is waiting
//! is written in one transaction — the audit rows in one statement, the back-off counts in two
//! — so a login costs PostgreSQL one commit (its counter), not two, and a burst of wrong
//! passwords costs one commit per batch, not a task and a commit each. On SQLite the store
//! thread's group commit does the same.
//!
//! The queue is bounded; when it is full (the database is slow or gone) an item is dropped and
//! logged rather than letting memory grow. A back-off count is a throttle, not a record — but
//! a lost one is an attacker's free guess: a dropped item or a batch that fails sets
//! [`WriteQueue::writes_failing`], and the engine then checks no password until a batch is
//! written again (issue 23; every refused request still queues its audit row, so the database
//! is tried again with each). Clearing an identity's count (a right
//! password) goes through the queue too, so it lands after the failures queued before it;
//! [`WriteQueue::flush`] waits until everything queued before it is written (a clean stop).
//!
//! [`Store::audit`]: super::super::Store::audit
//! [`Store::record_login_failure`]: super::super::Store::record_login_failure

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{mpsc, oneshot};

use super::super::{AuditEntry, StoreError};
use super::backoff::{Failure, clear, fold, write_failures};
use super::execute;

/// Most items waiting to be written.
const QUEUE: usize = 10_000;
/// Most audit rows, and most back-off counts, in one batch.
const BATCH: usize = 500;

/// One statement for a batch of audit rows: the columns as arrays.
const INSERT_AUDIT_BATCH: &str = "INSERT INTO audit (time, client, username, realm, serial, action, result, reason) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[])";

enum Item {
    Audit(AuditEntry),
    Failure(Failure),
    Clear {
        user: String,
        realm: String,
        origin: String,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush(oneshot::Sender<()>),
}

/// See the module documentation.
pub(super) struct WriteQueue {
    items: mpsc::Sender<Item>,
    /// Set when an item was dropped or a batch failed; cleared when a batch is written.
    failing: Arc<AtomicBool>,
}

impl WriteQueue {
    /// Starts the writer on the current runtime.
    pub(super) fn start(pool: Pool) -> WriteQueue {
        let (items, queue) = mpsc::channel(QUEUE);
        let failing = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_batches(pool, queue, failing.clone()));
        WriteQueue { items, failing }
    }

    /// Whether an item was dropped or a batch failed, and no batch has been written since.
    pub(super) fn writes_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// Queues an audit row (escaped already).
    pub(super) fn audit(&self, entry: AuditEntry) {
        self.push(Item::Audit(entry), "audit row");
    }

    /// Queues a failed first factor.
    pub(super) fn failure(&self, failure: Failure) {
        self.push(Item::Failure(failure), "back-off failure");
    }

    fn push(&self, item: Item, what: &str) {
        if let Err(error) = self.items.try_send(item) {
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "the write queue is full",
                mpsc::error::TrySendError::Closed(_) => "the writer is gone",
            };
            self.failing.store(true, Ordering::SeqCst);
            tracing::error!("{what} not written: {why}");
        }
    }

    /// Forgets an identity's failures from `origin`, after every failure queued before; waits
    /// for it.
    pub(super) async fn clear(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
    ) -> Result<(), StoreError> {
        let (done, cleared) = oneshot::channel();
        let item = Item::Clear {
            user: user.to_string(),
            realm: realm.to_string(),
            origin: origin.to_string(),
            done,
        };
        self.items
            .send(item)
            .await
            .map_err(|_| StoreError::Closed)?;
        cleared.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until everything queued so far is written (or failed).
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        self.items
            .send(Item::Flush(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        written.await.map_err(|_| StoreError::Closed)
    }
}

async fn write_batches(pool: Pool, mut queue: mpsc::Receiver<Item>, failing: Arc<AtomicBool>) {
    let mut rows: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut failures: Vec<Failure> = vec![];
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Audit(entry) => rows.push(entry),
                Item::Failure(failure) => failures.push(failure),
                Item::Clear {
                    user,
                    realm,
                    origin,
                    done,
                } => {
                    // In order: what was queued before it is written first.
                    write_logged(&pool, &mut rows, &mut failures, &failing).await;
                    let _ = done.send(clear(&pool, &user, &realm, &origin).await);
                }
                Item::Flush(done) => {
                    write_logged(&pool, &mut rows, &mut failures, &failing).await;
                    let _ = done.send(());
                }
            }
            if rows.len() < BATCH && failures.len() < BATCH {
                next = queue.try_recv().ok();
            }
        }
        write_logged(&pool, &mut rows, &mut failures, &failing).await;
    }
}

/// Writes and empties the batch; a failure is logged (nobody waits for these rows) and noted
/// in `failing`, a success clears it.
async fn write_logged(
    pool: &Pool,
    rows: &mut Vec<AuditEntry>,
    failures: &mut Vec<Failure>,
    failing: &AtomicBool,
) {
    if rows.is_empty() && failures.is_empty() {
        return;
    }
    let written = write(pool, rows, failures).await;
    failing.store(written.is_err(), Ordering::SeqCst);
    if let Err(error) = written {
        tracing::error!(
            %error,
            audit_rows = rows.len(),
            backoff_failures = failures.len(),
            "queued rows not written"
        );
    }
    rows.clear();
    failures.clear();
}

async fn write(pool: &Pool, rows: &[AuditEntry], failures: &[Failure]) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    if !rows.is_empty() {
        write_audit(&tx, rows).await?;
    }
    if !failures.is_empty() {
        write_failures(&tx, &fold(failures)).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn write_audit(c: &impl GenericClient, rows: &[AuditEntry]) -> Result<(), StoreError> {
    let column = |f: fn(&AuditEntry) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let times: Vec<i64> = rows.iter().map(|r| r.time.as_secs()).collect();
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
        c,
        INSERT_AUDIT_BATCH,
        &[
            &times, &clients, &users, &realms, &serials, &actions, &results, &reasons,
        ],
    )
    .await?;
    Ok(())
}
