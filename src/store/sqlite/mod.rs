//! [`SqliteStore`]: the [`Store`](super::Store) on SQLite, in WAL mode, on a thread of its own.
//!
//! rusqlite is blocking, so writes go to one dedicated thread: async callers send it closures
//! over a channel, each answered through a oneshot. One writer thread also means SQLite never
//! sees two writers fight for the lock. Seeds are sealed ([`super::seal`]) before they reach
//! the database and opened where they are read.
//!
//! Durability without giving up speed: a counter update is on disk before the Accept that
//! depends on it leaves the server, so no OTP can be replayed after a crash or power loss; the
//! store thread commits writes in groups, one fsync each (`batches.rs`). Reads answer as soon
//! as they have run: they need no durability, and when the writer is between batches they run
//! in the caller's task on the same connection, without a thread hop.
//!
//! This file holds the store's handle and how a call reaches the connection. Beside it:
//! `store.rs` (every [`super::Store`] call), `rows.rs` (rows to the store's types and back),
//! `batches.rs` (the writer: group commit, checkpoints, the shared connection), `schema.rs`
//! (creating the file, migrations), `key_file.rs` (the key fingerprint check),
//! `challenges.rs` (starting and closing challenges: the operations that decide races between
//! logins), `backoff.rs` (the back-off counts' statement), `sessions.rs` (accounting
//! sessions), `tokens.rs` (token rows and an admin's changes to them), `copy.rs` (`tessera
//! store copy`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use rusqlite::Connection;

use super::seal::SealKey;
use super::{CommitError, StoreError};

mod backoff;
mod batches;
mod challenges;
mod copy;
mod files;
mod key_file;
mod schema;

use batches::{Database, Job, Work, execute_cached};
use key_file::{KeyCheck, check_key, record_fingerprint};
pub use key_file::{check_store, open_store};
use schema::{create_private, open_connection};

/// See the module documentation.
pub struct SqliteStore {
    jobs: mpsc::Sender<Work>,
    db: std::sync::Arc<Database>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, applies migrations, checks that `key` is the
    /// key that sealed the seeds it holds, and starts the store thread.
    pub fn open(path: &Path, key: SealKey) -> Result<Self, StoreError> {
        create_private(path)?;
        files::check_before_open(path).map_err(StoreError::Unavailable)?;
        let conn = open_connection(path)?;
        match check_key(&conn, &key)? {
            KeyCheck::Matches => {}
            // Nothing sealed: whatever was recorded sealed nothing that is left; the next seal
            // records this key.
            KeyCheck::NothingSealed => {
                conn.execute("DELETE FROM meta WHERE name = 'key_fingerprint'", [])?;
            }
            // A store from before fingerprints, whose seeds this key opens: record it now.
            KeyCheck::Unrecorded => {
                record_fingerprint(&conn, &key)?;
            }
            KeyCheck::Different(expected) => {
                return Err(StoreError::KeyMismatch {
                    key_file: String::new(),
                    db: path.display().to_string(),
                    found: key.fingerprint().to_string(),
                    expected,
                });
            }
        }
        let (jobs, db) = batches::start(conn, key, files::WalIndex::open(path))?;
        Ok(SqliteStore { jobs, db })
    }

    /// Runs a writing `f` on the store thread and waits until its batch is committed.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(f, Kind::Write).await
    }

    /// Like [`SqliteStore::call`] for a job that is one SQL statement: a statement is atomic
    /// by itself, so the job needs no savepoint of its own (two statements fewer per request
    /// on the hot path).
    async fn call_one_statement<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(f, Kind::WriteOneStatement).await
    }

    /// Runs a reading `f` of a request: right here when the connection is idle (no thread
    /// hop, no wake-up of the store thread: at low load that is most of a lookup's cost),
    /// otherwise on the store thread, answered at once without waiting for the batch's commit
    /// (a read needs no durability, and waiting would add an fsync to every lookup). Here it
    /// sees only committed rows; on the store thread it may see a write of its batch that a
    /// failed commit then undoes. The decisions that matter — consuming a counter, closing a
    /// challenge — are compare-and-set writes, which do wait.
    ///
    /// Run here, a read holds the runtime thread for its microseconds, and longer only where it
    /// would have held the writer too: a page not in the OS cache (a store far larger than
    /// memory), or another process's WAL recovery (SQLite's busy timeout).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(mut conn) = self.db.idle_for_reads() {
            let started = std::time::Instant::now();
            let answer = read_now(&mut conn, &self.db.key, f);
            drop(conn);
            crate::metrics::observe("tessera_store_seconds", &[], started.elapsed());
            return answer;
        }
        self.run(f, Kind::AnsweredWhenRun).await
    }

    /// Runs a reading `f` that may take long (an admin listing, an export) on the store
    /// thread, never in the caller's task.
    async fn read_large<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(f, Kind::AnsweredWhenRun).await
    }

    /// Queues a write nobody waits for; its failure (or its batch's) is logged as `what`.
    /// With [`Seen::ByNextRead`], reads go through the writer (behind it) until it has run, so
    /// the next read sees it.
    fn detached<F>(&self, what: &'static str, seen: Seen, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut Connection, &SealKey) -> Result<(), StoreError> + Send + 'static,
    {
        let unseen = matches!(seen, Seen::ByNextRead).then(|| self.db.clone());
        if let Some(db) = &unseen {
            db.unseen_writes.fetch_add(1, Ordering::SeqCst);
        }
        // Used for single statements (the audit insert, the back-off upsert): atomic without
        // a savepoint.
        let db = self.db.clone();
        let job: Job = Box::new(move |access| {
            // `None`: the store refused to touch its connection (see `files`); nothing was
            // written, which is a failed write too.
            let run = access.map(|(conn, key)| f(conn, key));
            if !matches!(run, Some(Ok(()))) {
                if let Some(Err(error)) = run {
                    tracing::error!(%error, "{what}");
                }
                db.detached_failed();
            }
            if let Some(db) = unseen {
                db.unseen_writes.fetch_sub(1, Ordering::SeqCst);
            }
            Box::new(move |committed: Result<(), CommitError>| {
                if let Err(error) = committed {
                    tracing::error!(%error, "{what}: commit failed");
                }
            })
        });
        let sent = self.db.send(&self.jobs, Work::Detached(job));
        if sent.is_err() {
            self.db.detached_failed();
            if matches!(seen, Seen::ByNextRead) {
                self.db.unseen_writes.fetch_sub(1, Ordering::SeqCst);
            }
        }
        sent
    }

    async fn run<T, F>(&self, f: F, kind: Kind) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |access| {
            let Some((conn, key)) = access else {
                // Not run: the store cannot be used now, and the batch's outcome says why.
                return Box::new(move |refused: Result<(), CommitError>| {
                    let reason = refused.err().map(|e| e.to_string()).unwrap_or_default();
                    let _ = tx.send(Err(StoreError::Unavailable(reason)));
                });
            };
            let result = match kind {
                Kind::AnsweredWhenRun => {
                    let _ = tx.send(f(conn, key));
                    return Box::new(|_| {});
                }
                Kind::WriteOneStatement => f(conn, key),
                Kind::Write => in_savepoint(conn, key, f),
            };
            Box::new(move |committed: Result<(), CommitError>| {
                let answer = match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Commit(e)),
                };
                let _ = tx.send(answer);
            })
        });
        let started = std::time::Instant::now();
        self.db.send(&self.jobs, Work::Job(job))?;
        let answer = rx.await.map_err(|_| StoreError::Closed)?;
        crate::metrics::observe("tessera_store_seconds", &[], started.elapsed());
        answer
    }
}

/// Whether the next read must see a detached write.
#[derive(Clone, Copy)]
enum Seen {
    /// A back-off failure: the identity's next attempt must count it.
    ByNextRead,
    /// An audit row: nothing on a request's way reads it.
    Eventually,
}

/// How a job runs on the store thread.
#[derive(Clone, Copy)]
enum Kind {
    /// Answers as soon as it has run; no commit to wait for (reads).
    AnsweredWhenRun,
    /// Several statements in a savepoint; answers after the batch commits.
    Write,
    /// One statement; answers after the batch commits.
    WriteOneStatement,
}

/// Runs a read in a transaction of its own, so its statements see one snapshot.
fn read_now<T>(
    conn: &mut Connection,
    key: &SealKey,
    f: impl FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    execute_cached(conn, "BEGIN", [])?;
    let result = f(conn, key);
    // A read-only transaction commits without writing anything.
    if let Err(e) = execute_cached(conn, "COMMIT", []) {
        let _ = conn.execute_batch("ROLLBACK");
        return result.and(Err(e.into()));
    }
    result
}

/// Runs `f` in a savepoint: its statements are atomic, and its failure undoes only it.
fn in_savepoint<T>(
    conn: &mut Connection,
    key: &SealKey,
    f: impl FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match execute_cached(conn, "SAVEPOINT job", []) {
        Ok(_) => {
            let result = f(conn, key);
            let rolled_back = match result {
                Ok(_) => Ok(0),
                Err(_) => execute_cached(conn, "ROLLBACK TO job", []),
            };
            if let Err(e) = rolled_back.and_then(|_| execute_cached(conn, "RELEASE job", [])) {
                tracing::error!(error = %e, "ending a store savepoint failed");
            }
            result
        }
        Err(e) => Err(e.into()),
    }
}

/// The `tokens` columns in the order [`token_from_row`] reads them. A macro so the hot
/// statements below can be `concat!`ed constants: no SQL is built per request.
macro_rules! token_columns {
    () => {
        "serial, kind, user, realm, seed, counter, digits, pin_hash, phone, email, active, \
         fail_count, max_fail, last_fail_at, description, created_at, owner_id, autoenrolled, \
         last_used, pending, algorithm, time_step, public_id"
    };
}
/// The same, for the modules beside this file (a macro is only seen after its definition).
const TOKEN_COLUMNS: &str = token_columns!();
const SELECT_TOKENS_OF_USER: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE user = ?1 AND realm = ?2 ORDER BY serial"
);
const SELECT_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE serial = ?1"
);
const CONSUME_COUNTER: &str = "UPDATE tokens SET counter = ?2 + 1, fail_count = 0, \
                               last_used = COALESCE(?3, last_used) \
                               WHERE serial = ?1 AND counter <= ?2";

mod rows;
mod sessions;
mod store;
mod tokens;

use rows::{
    CHALLENGE_COLUMNS, InMs, InSeconds, audit_from_row, challenge_from_row, insert_audit,
    insert_token_row, ms_column, to_i64, to_u64, token_with_seed,
};

#[cfg(test)]
mod tests;
