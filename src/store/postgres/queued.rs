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
use super::execute;

/// Most items waiting to be written.
const QUEUE: usize = 10_000;
/// Most audit rows, and most back-off counts, in one batch.
const BATCH: usize = 500;

/// One statement for a batch of audit rows: the columns as arrays.
const INSERT_AUDIT_BATCH: &str = "INSERT INTO audit (time, client, username, realm, serial, action, result, reason) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[])";

/// A batch's back-off counts, first step: every row counted has a row (a new one counts from
/// nothing: no failures, the last one long ago).
const BACKOFF_ROWS: &str = "INSERT INTO login_failures (username, realm, origin, failures, last_failure_ms) \
     SELECT u, r, o, 0, 0 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(u, r, o) \
     ON CONFLICT (username, realm, origin) DO NOTHING";

/// Second step: each identity's failures of the batch ([`Folded`]) added in one update, which
/// locks the row, so a count another node commits meanwhile is added to, not overwritten.
const BACKOFF_COUNT: &str = "UPDATE login_failures AS f SET \
       failures = CASE WHEN t.restart OR t.first_ms - f.last_failure_ms >= t.forget_ms \
                       THEN t.added ELSE f.failures + t.added END, \
       last_failure_ms = GREATEST(f.last_failure_ms, t.last_ms) \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::bigint[], \
                 $7::bool[], $8::bigint[]) AS t(u, r, o, first_ms, added, last_ms, restart, forget_ms) \
     WHERE f.username = t.u AND f.realm = t.r AND f.origin = t.o";

/// One failed first factor of an identity (see [`super::super::Store::record_login_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) user: String,
    pub(super) realm: String,
    /// Where it came from (never empty: the empty origin is the identity's own row).
    pub(super) origin: String,
    pub(super) now_ms: i64,
    pub(super) forget_ms: i64,
}

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

async fn clear(pool: &Pool, user: &str, realm: &str, origin: &str) -> Result<(), StoreError> {
    let c = pool.get().await?;
    execute(
        &c,
        "DELETE FROM login_failures WHERE username = $1 AND realm = $2 AND origin = $3",
        &[&user, &realm, &origin],
    )
    .await?;
    Ok(())
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
        c,
        INSERT_AUDIT_BATCH,
        &[
            &times, &clients, &users, &realms, &serials, &actions, &results, &reasons,
        ],
    )
    .await?;
    Ok(())
}

async fn write_failures(c: &impl GenericClient, folded: &[Folded]) -> Result<(), StoreError> {
    let users: Vec<&str> = folded.iter().map(|f| f.user.as_str()).collect();
    let realms: Vec<&str> = folded.iter().map(|f| f.realm.as_str()).collect();
    let origins: Vec<&str> = folded.iter().map(|f| f.origin.as_str()).collect();
    execute(c, BACKOFF_ROWS, &[&users, &realms, &origins]).await?;
    let firsts: Vec<i64> = folded.iter().map(|f| f.first_ms).collect();
    let added: Vec<i32> = folded
        .iter()
        .map(|f| i32::try_from(f.added).unwrap_or(i32::MAX))
        .collect();
    let lasts: Vec<i64> = folded.iter().map(|f| f.last_ms).collect();
    let restarts: Vec<bool> = folded.iter().map(|f| f.restart).collect();
    let forgets: Vec<i64> = folded.iter().map(|f| f.forget_ms).collect();
    execute(
        c,
        BACKOFF_COUNT,
        &[
            &users, &realms, &origins, &firsts, &added, &lasts, &restarts, &forgets,
        ],
    )
    .await?;
    Ok(())
}

/// One identity's failures of a batch, folded into one change of its row: counted one by one
/// (a failure `forget_ms` after the one before starts over at one), they add `added` to the
/// row's count — or, with `restart`, replace it, as a gap inside the batch started over — and
/// the first of them restarts the row's count if it came `forget_ms` after the row's last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Folded {
    pub(super) user: String,
    pub(super) realm: String,
    /// The row's origin; empty: the identity's count over all origins.
    pub(super) origin: String,
    pub(super) first_ms: i64,
    pub(super) added: u32,
    pub(super) last_ms: i64,
    pub(super) restart: bool,
    pub(super) forget_ms: i64,
}

/// Folds a batch's failures per row (in the order rows first appear): each failure counts
/// on its origin's row and on the identity's row over all origins (the empty origin).
pub(super) fn fold(failures: &[Failure]) -> Vec<Folded> {
    let mut order: Vec<(&str, &str, &str)> = vec![];
    let mut groups: std::collections::HashMap<(&str, &str, &str), Vec<&Failure>> =
        Default::default();
    for f in failures {
        for origin in ["", f.origin.as_str()] {
            let key = (f.user.as_str(), f.realm.as_str(), origin);
            groups
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    vec![]
                })
                .push(f);
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let mut group = groups.remove(&key)?;
            group.sort_by_key(|f| f.now_ms);
            let first = group.first()?;
            let last = group.last()?;
            // The last gap inside the batch long enough to start over, if any.
            let restart_at = (1..group.len())
                .rev()
                .find(|&i| group[i].now_ms - group[i - 1].now_ms >= group[i].forget_ms);
            let from = restart_at.unwrap_or(0);
            Some(Folded {
                user: key.0.to_string(),
                realm: key.1.to_string(),
                origin: key.2.to_string(),
                first_ms: first.now_ms,
                added: u32::try_from(group.len() - from).unwrap_or(u32::MAX),
                last_ms: last.now_ms,
                restart: restart_at.is_some(),
                forget_ms: last.forget_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(user: &str, origin: &str, now_ms: i64) -> Failure {
        Failure {
            user: user.into(),
            realm: "local".into(),
            origin: origin.into(),
            now_ms,
            forget_ms: 100,
        }
    }

    /// Each failure counts on its origin's row and on the identity's (the empty origin).
    #[test]
    fn a_batch_folds_into_one_change_per_row() {
        let folded = fold(&[
            failure("alice", "st-1", 10),
            failure("bob", "st-1", 5),
            failure("alice", "st-2", 30),
            failure("alice", "st-1", 20),
        ]);
        let rows: Vec<(&str, &str, i64, u32, i64)> = folded
            .iter()
            .map(|f| {
                (
                    f.user.as_str(),
                    f.origin.as_str(),
                    f.first_ms,
                    f.added,
                    f.last_ms,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("alice", "", 10, 3, 30),
                ("alice", "st-1", 10, 2, 20),
                ("bob", "", 5, 1, 5),
                ("bob", "st-1", 5, 1, 5),
                ("alice", "st-2", 30, 1, 30),
            ]
        );
        assert!(folded.iter().all(|f| !f.restart));
    }

    #[test]
    fn a_gap_inside_the_batch_starts_the_count_over() {
        // 10, 20, then 200 (180 ms later, past the 100 ms): counted one by one, 200 starts
        // over at one, and 210 makes two.
        let folded = fold(&[
            failure("alice", "st-1", 10),
            failure("alice", "st-1", 20),
            failure("alice", "st-1", 200),
            failure("alice", "st-1", 210),
        ]);
        assert_eq!(folded.len(), 2);
        for row in &folded {
            assert_eq!((row.added, row.restart, row.last_ms), (2, true, 210));
        }
    }
}
