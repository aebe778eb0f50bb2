//! The writes nobody waits for, queued and written by one task: audit rows ([`Store::audit`])
//! and the identities' back-off counts ([`Store::record_login_failure`]). Whatever is waiting
//! is written in one transaction — the audit rows in one statement, the back-off counts in two
//! — so a login costs PostgreSQL one commit (its counter), not two, and a burst of wrong
//! passwords costs one commit per batch, not a task and a commit each. On SQLite the store
//! thread's group commit does the same.
//!
//! The queue is bounded; when it is full (the database is slow or gone) an item is dropped and
//! logged rather than letting memory grow. A back-off count is a throttle, not a record: a
//! lost one costs an attacker's guess, never an Accept. Clearing an identity's count (a right
//! password) goes through the queue too, so it lands after the failures queued before it;
//! [`WriteQueue::flush`] waits until everything queued before it is written (a clean stop).
//!
//! [`Store::audit`]: super::super::Store::audit
//! [`Store::record_login_failure`]: super::super::Store::record_login_failure

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

/// A batch's back-off counts, first step: every identity has a row (a new one counts from
/// nothing: no failures, the last one long ago).
const BACKOFF_ROWS: &str = "INSERT INTO login_failures (username, realm, failures, last_failure_ms) \
     SELECT u, r, 0, 0 FROM UNNEST($1::text[], $2::text[]) AS t(u, r) \
     ON CONFLICT (username, realm) DO NOTHING";

/// Second step: each identity's failures of the batch ([`Folded`]) added in one update, which
/// locks the row, so a count another node commits meanwhile is added to, not overwritten.
const BACKOFF_COUNT: &str = "UPDATE login_failures AS f SET \
       failures = CASE WHEN t.restart OR t.first_ms - f.last_failure_ms >= t.forget_ms \
                       THEN t.added ELSE f.failures + t.added END, \
       last_failure_ms = GREATEST(f.last_failure_ms, t.last_ms) \
     FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::bool[], \
                 $7::bigint[]) AS t(u, r, first_ms, added, last_ms, restart, forget_ms) \
     WHERE f.username = t.u AND f.realm = t.r";

/// One failed first factor of an identity (see [`super::super::Store::record_login_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) user: String,
    pub(super) realm: String,
    pub(super) now_ms: i64,
    pub(super) forget_ms: i64,
}

enum Item {
    Audit(AuditEntry),
    Failure(Failure),
    Clear {
        user: String,
        realm: String,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Flush(oneshot::Sender<()>),
}

/// See the module documentation.
pub(super) struct WriteQueue {
    items: mpsc::Sender<Item>,
}

impl WriteQueue {
    /// Starts the writer on the current runtime.
    pub(super) fn start(pool: Pool) -> WriteQueue {
        let (items, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, queue));
        WriteQueue { items }
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
            tracing::error!("{what} not written: {why}");
        }
    }

    /// Forgets an identity's failures, after every failure queued before; waits for it.
    pub(super) async fn clear(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let (done, cleared) = oneshot::channel();
        let item = Item::Clear {
            user: user.to_string(),
            realm: realm.to_string(),
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

async fn write_batches(pool: Pool, mut queue: mpsc::Receiver<Item>) {
    let mut rows: Vec<AuditEntry> = Vec::with_capacity(BATCH);
    let mut failures: Vec<Failure> = vec![];
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Audit(entry) => rows.push(entry),
                Item::Failure(failure) => failures.push(failure),
                Item::Clear { user, realm, done } => {
                    // In order: what was queued before it is written first.
                    write_logged(&pool, &mut rows, &mut failures).await;
                    let _ = done.send(clear(&pool, &user, &realm).await);
                }
                Item::Flush(done) => {
                    write_logged(&pool, &mut rows, &mut failures).await;
                    let _ = done.send(());
                }
            }
            if rows.len() < BATCH && failures.len() < BATCH {
                next = queue.try_recv().ok();
            }
        }
        write_logged(&pool, &mut rows, &mut failures).await;
    }
}

/// Writes and empties the batch; a failure is logged (nobody waits for these rows).
async fn write_logged(pool: &Pool, rows: &mut Vec<AuditEntry>, failures: &mut Vec<Failure>) {
    if rows.is_empty() && failures.is_empty() {
        return;
    }
    if let Err(error) = write(pool, rows, failures).await {
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

async fn clear(pool: &Pool, user: &str, realm: &str) -> Result<(), StoreError> {
    let c = pool.get().await?;
    execute(
        &c,
        "DELETE FROM login_failures WHERE username = $1 AND realm = $2",
        &[&user, &realm],
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
    execute(c, BACKOFF_ROWS, &[&users, &realms]).await?;
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
            &users, &realms, &firsts, &added, &lasts, &restarts, &forgets,
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
    pub(super) first_ms: i64,
    pub(super) added: u32,
    pub(super) last_ms: i64,
    pub(super) restart: bool,
    pub(super) forget_ms: i64,
}

/// Folds a batch's failures per identity (in the order identities first appear).
pub(super) fn fold(failures: &[Failure]) -> Vec<Folded> {
    let mut order: Vec<(&str, &str)> = vec![];
    let mut groups: std::collections::HashMap<(&str, &str), Vec<&Failure>> = Default::default();
    for f in failures {
        let key = (f.user.as_str(), f.realm.as_str());
        groups
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                vec![]
            })
            .push(f);
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

    fn failure(user: &str, now_ms: i64) -> Failure {
        Failure {
            user: user.into(),
            realm: "local".into(),
            now_ms,
            forget_ms: 100,
        }
    }

    #[test]
    fn a_batch_folds_into_one_change_per_identity() {
        let folded = fold(&[
            failure("alice", 10),
            failure("bob", 5),
            failure("alice", 30),
            failure("alice", 20),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(
            (folded[0].user.as_str(), folded[0].first_ms, folded[0].added),
            ("alice", 10, 3)
        );
        assert_eq!((folded[0].last_ms, folded[0].restart), (30, false));
        assert_eq!((folded[1].user.as_str(), folded[1].added), ("bob", 1));
    }

    #[test]
    fn a_gap_inside_the_batch_starts_the_count_over() {
        // 10, 20, then 200 (180 ms later, past the 100 ms): counted one by one, 200 starts
        // over at one, and 210 makes two.
        let folded = fold(&[
            failure("alice", 10),
            failure("alice", 20),
            failure("alice", 200),
            failure("alice", 210),
        ]);
        assert_eq!(folded.len(), 1);
        assert_eq!((folded[0].added, folded[0].restart), (2, true));
        assert_eq!(folded[0].last_ms, 210);
    }
}
