//! The writer thread behind [`super::SqliteStore`]: it runs jobs in batches and keeps the WAL
//! short.
//!
//! Group commit. The writer takes every job waiting in the queue (up to [`MAX_BATCH`]), runs
//! them in one transaction and commits the whole batch with one fsync (`synchronous=FULL`), and
//! only then answers the writers: a counter is on disk before the Accept that depends on it
//! leaves. Under load a batch holds many requests; when idle it holds one. Writes nobody waits
//! for (audit rows, back-off counts) do not start a batch: they ride with the next one, or
//! commit on their own after [`HOLD`], so at low load a login costs one fsync, not two.
//!
//! One connection, shared. The writer holds it for a batch; between batches a request's read
//! runs on it in the request's own task ([`Database::idle_for_reads`]), which at low load saves
//! the two thread wake-ups a lookup on the writer costs — most of its CPU. A read that finds it
//! busy queues for the writer as before. (Measured and dropped, see the issue 18 note: a
//! pipeline in which the next batch runs while the previous one is in fsync — smaller batches
//! and an extra hop cost 10–35% more CPU per request —, and reads on connections of their own,
//! whose page cache is dropped whenever the writer commits: 10–17% more CPU per two-round
//! login.)
//!
//! Checkpoints. SQLite's auto-checkpoint runs inside the COMMIT that fills the WAL past 1,000
//! pages: it copies pages into the database and syncs it while every request of that batch
//! waits. A WAL hook on the writer's connection replaces it (setting a hook turns the
//! auto-checkpoint off) and only notes the WAL's size; the writer checkpoints after it has
//! answered the batch, so no request already taken waits for the copy. (A checkpointer thread
//! of its own was measured too: under steady load the writer rarely finds the WAL fully copied
//! at the start of a batch, so the WAL is not rewound, keeps growing, and the checkpointer runs
//! without pause — more CPU per request, not less.)
//!
//! Every batch or checkpoint that takes longer than [`SLOW`] is logged with what it did, so a
//! latency stall can be matched with its cause.
//!
//! Failing writes (issue 23). A write nobody waits for that fails — a back-off failure, an
//! audit row —, or a batch whose commit fails, sets [`Database::writes_failing`]; the next
//! batch that commits something to the WAL (the WAL hook fires: a batch of reads alone
//! proves nothing) clears it. The engine checks no password while it is set, since a wrong
//! one might go uncounted. While it is set every request still writes its audit row, so the
//! store is tried again with each, and the health probe tries it every few seconds.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::files::WalIndex;
use crate::store::CommitError;
use crate::store::StoreError;
use crate::store::seal::SealKey;

/// Runs on the writer inside the batch's transaction; returns what to tell the caller once the
/// batch has committed (or failed to). `None` instead of the connection: the store cannot be
/// used now (see [`super::files`]), and the batch's outcome says why.
pub(super) type Job = Box<dyn FnOnce(Option<(&mut Connection, &SealKey)>) -> Reply + Send>;
/// Answers one caller, given the outcome of the batch's commit.
pub(super) type Reply = Box<dyn FnOnce(Result<(), CommitError>) + Send>;

/// What the writer is asked to do.
pub(super) enum Work {
    /// A job someone waits for: it starts a batch at once, with the others waiting.
    Job(Job),
    /// A write nobody waits for (an audit row, a back-off count): it rides with the next
    /// batch, or is committed on its own after at most [`HOLD`].
    Detached(Job),
    /// `PRAGMA wal_checkpoint(TRUNCATE)` once the jobs queued before it have committed,
    /// outside any transaction (clean stop).
    Checkpoint(tokio::sync::oneshot::Sender<Result<(), CommitError>>),
}

/// Most jobs committed together.
const MAX_BATCH: usize = 512;

/// WAL pages after which the writer checkpoints (SQLite's own auto-checkpoint default). Under
/// two-round logins at half load that is ~16 checkpoints a second of 1–7 ms each. Measured
/// against it (issue 18): 8,192 pages made them rarer but longer (challenge-flow's half-load
/// p99 21–44 ms against 10–15), 300 changed nothing beyond noise.
const CHECKPOINT_PAGES: i32 = 1000;

/// Longest a detached write waits for a batch to ride with. At low load, when each login is a
/// batch of its own, this is what keeps its audit row from costing a second fsync.
const HOLD: Duration = Duration::from_millis(5);

/// A batch or checkpoint slower than this is logged with its details.
const SLOW: Duration = Duration::from_millis(10);

/// The store's one connection and the key that opens its seeds, shared by the writer thread
/// and the readers that find the connection free (see [`Database::idle_for_reads`]).
pub(super) struct Database {
    conn: Mutex<Connection>,
    /// Opens the seeds the connection reads.
    pub(super) key: SealKey,
    /// Detached writes the next read must see (back-off failures), queued for the writer and
    /// not yet run: while there are any, reads queue behind them rather than miss them here.
    pub(super) unseen_writes: AtomicUsize,
    /// Jobs sent to the writer and not yet taken: while there are any the writer is about to
    /// want the connection, and a read that took it would make the writer — the bottleneck
    /// under load — wait.
    queued: AtomicUsize,
    /// The WAL index, checked before each use of the connection (`None`: nothing to check).
    wal_index: Option<WalIndex>,
    /// Detached writes that failed so far (see the module documentation).
    detached_failures: AtomicU64,
    /// Commits that wrote to the WAL so far (counted by the WAL hook).
    wal_commits: Arc<AtomicU64>,
    /// Whether the last write failed and none has been committed since.
    writes_failing: AtomicBool,
}

impl Database {
    /// The connection, if nobody is using it right now (not the writer, in a batch or a
    /// checkpoint, nor another reader) and no write a read must see is still queued. Never
    /// waits, so a request's task never blocks
    /// behind a commit's fsync; `None` means "queue it for the writer".
    pub(super) fn idle_for_reads(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.unseen_writes.load(Ordering::SeqCst) > 0 || self.queued.load(Ordering::Relaxed) > 0
        {
            return None;
        }
        // An unusable store: the writer refuses the read, with the reason.
        self.usable().ok()?;
        match self.conn.try_lock() {
            Ok(conn) => Some(conn),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(recovered(poisoned)),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Sends `work` to the writer.
    pub(super) fn send(&self, jobs: &mpsc::Sender<Work>, work: Work) -> Result<(), StoreError> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        jobs.send(work).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            StoreError::Closed
        })
    }

    /// `Err` (why) when SQLite must not touch the connection now: its WAL index cannot be
    /// written (see [`super::files`]).
    fn usable(&self) -> Result<(), String> {
        self.wal_index.as_ref().map_or(Ok(()), WalIndex::check)
    }

    /// Notes that a write nobody waits for failed (or could not be queued).
    pub(super) fn detached_failed(&self) {
        self.detached_failures.fetch_add(1, Ordering::SeqCst);
        self.writes_failing.store(true, Ordering::SeqCst);
    }

    /// Whether a write failed and none has been committed since (see the module
    /// documentation).
    pub(super) fn writes_failing(&self) -> bool {
        self.writes_failing.load(Ordering::SeqCst)
    }

    /// Notes that the writer took one job from its queue.
    fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// The connection, waiting for a reader that holds it (a read takes microseconds).
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(recovered)
    }
}

/// The connection of a user that panicked while it held it: whatever transaction that left
/// open is rolled back, so the next batch can begin.
fn recovered(poisoned: PoisonError<MutexGuard<'_, Connection>>) -> MutexGuard<'_, Connection> {
    let conn = poisoned.into_inner();
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    conn
}

/// Starts the store thread (sharing `conn` with idle readers) and returns the queue and the
/// shared connection. The thread ends when every sender is dropped.
pub(super) fn start(
    mut conn: Connection,
    key: SealKey,
    wal_index: Option<WalIndex>,
) -> Result<(mpsc::Sender<Work>, Arc<Database>), StoreError> {
    let spawn_failed = |cause| StoreError::Io {
        what: "cannot start the store thread".into(),
        cause,
    };
    let wal_pages = Arc::new(AtomicI32::new(0));
    let wal_commits = Arc::new(AtomicU64::new(0));
    let (noted, committed) = (wal_pages.clone(), wal_commits.clone());
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        noted.store(pages, Ordering::Relaxed);
        committed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }))?;
    let db = Arc::new(Database {
        conn: Mutex::new(conn),
        key,
        unseen_writes: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        wal_index,
        detached_failures: AtomicU64::new(0),
        wal_commits,
        writes_failing: AtomicBool::new(false),
    });
    let (jobs, queue) = mpsc::channel::<Work>();
    let writer_db = db.clone();
    std::thread::Builder::new()
        .name("tessera-store".into())
        .spawn(move || run_writer(&writer_db, &queue, &wal_pages))
        .map_err(spawn_failed)?;
    Ok((jobs, db))
}

/// The writer: takes whatever jobs are waiting, runs them in one transaction, commits once
/// (with its fsync), then answers. Detached writes wait for the next job someone waits for
/// (or [`HOLD`]) and commit with it.
fn run_writer(db: &Database, queue: &mpsc::Receiver<Work>, wal_pages: &AtomicI32) {
    // Detached writes not yet run, and when the first of them arrived.
    let mut held: Vec<Job> = vec![];
    let mut held_since = Instant::now();
    // Work taken from the queue that must wait for the batch before it.
    let mut next: Option<Work> = None;
    loop {
        let work = match next.take() {
            Some(work) => work,
            None if held.is_empty() => match queue.recv() {
                Ok(work) => {
                    db.taken();
                    work
                }
                Err(_) => break,
            },
            None => match queue.recv_timeout(HOLD.saturating_sub(held_since.elapsed())) {
                Ok(work) => {
                    db.taken();
                    work
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    commit(db, wal_pages, std::mem::take(&mut held));
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        match work {
            Work::Checkpoint(reply) => {
                if !held.is_empty() {
                    commit(db, wal_pages, std::mem::take(&mut held));
                }
                let _ = reply.send(
                    db.usable()
                        .map_err(CommitError::NotRun)
                        .and_then(|()| truncate_wal(&db.writer())),
                );
            }
            Work::Detached(job) => {
                if held.is_empty() {
                    held_since = Instant::now();
                }
                held.push(job);
                if held.len() >= MAX_BATCH {
                    commit(db, wal_pages, std::mem::take(&mut held));
                }
            }
            Work::Job(job) => {
                let mut batch = std::mem::take(&mut held);
                batch.push(job);
                next = take_waiting(db, queue, &mut batch);
                commit(db, wal_pages, batch);
            }
        }
    }
    if !held.is_empty() {
        commit(db, wal_pages, held);
    }
}

/// Adds the jobs waiting in the queue to `batch`, up to [`MAX_BATCH`]; returns work that must
/// wait for the batch (a checkpoint).
fn take_waiting(db: &Database, queue: &mpsc::Receiver<Work>, batch: &mut Vec<Job>) -> Option<Work> {
    while batch.len() < MAX_BATCH {
        let work = queue.try_recv().ok()?;
        db.taken();
        match work {
            Work::Job(job) | Work::Detached(job) => batch.push(job),
            other => return Some(other),
        }
    }
    None
}

/// Runs and commits one batch, answers its jobs, then checkpoints if the WAL is long. A store
/// that cannot be used now runs nothing and answers every job with the reason.
fn commit(db: &Database, wal_pages: &AtomicI32, batch: Vec<Job>) {
    if let Err(reason) = db.usable() {
        // Nothing can be written now: a password must not be checked (see the module
        // documentation).
        db.writes_failing.store(true, Ordering::SeqCst);
        for job in batch {
            job(None)(Err(CommitError::NotRun(reason.clone())));
        }
        return;
    }
    let failures = db.detached_failures.load(Ordering::SeqCst);
    let wal_commits = db.wal_commits.load(Ordering::SeqCst);
    let (replies, committed) = run_batch(&mut db.writer(), &db.key, batch);
    if committed.is_err() || db.detached_failures.load(Ordering::SeqCst) != failures {
        db.writes_failing.store(true, Ordering::SeqCst);
    } else if db.wal_commits.load(Ordering::SeqCst) != wal_commits {
        db.writes_failing.store(false, Ordering::SeqCst);
    }
    // The connection is free again before anyone hears back: a request answered now may read
    // on it at once.
    for reply in replies {
        reply(committed.clone());
    }
    if wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES {
        wal_pages.store(0, Ordering::Relaxed);
        checkpoint(&db.writer());
    }
}

/// Runs one batch's jobs in one transaction and commits it: the jobs' replies, and how the
/// commit went.
fn run_batch(
    conn: &mut Connection,
    key: &SealKey,
    batch: Vec<Job>,
) -> (Vec<Reply>, Result<(), CommitError>) {
    let started = Instant::now();
    let began = execute_cached(conn, "BEGIN IMMEDIATE", []).map(|_| ());
    let replies: Vec<Reply> = batch
        .into_iter()
        .map(|job| job(Some((&mut *conn, key))))
        .collect();
    let ran = started.elapsed();
    let committed = began
        .and_then(|()| execute_cached(conn, "COMMIT", []).map(|_| ()))
        .map_err(|e| CommitError::Sqlite(Arc::new(e)));
    let took = started.elapsed();
    if took > SLOW {
        tracing::info!(
            jobs = replies.len(),
            run_ms = ms(ran),
            commit_ms = ms(took - ran),
            "slow store batch"
        );
    }
    if let Err(error) = &committed {
        tracing::error!(%error, jobs = replies.len(), "store commit failed; the batch is rolled back");
        let _ = conn.execute_batch("ROLLBACK");
    }
    (replies, committed)
}

/// Copies the WAL into the database and truncates it to zero bytes. `Err` when readers (an
/// admin command) kept it from completing.
fn truncate_wal(conn: &Connection) -> Result<(), CommitError> {
    let (busy, _log, _done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| CommitError::Sqlite(Arc::new(e)))?;
    if busy != 0 {
        return Err(CommitError::NotRun(
            "the WAL is in use by another connection".into(),
        ));
    }
    Ok(())
}

/// A `PASSIVE` checkpoint: copies what no reader still needs into the database and syncs it.
fn checkpoint(conn: &Connection) {
    let started = Instant::now();
    match conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
        Ok((frames, copied)) => {
            let took = started.elapsed();
            if took > SLOW {
                tracing::info!(
                    frames,
                    copied,
                    checkpoint_ms = ms(took),
                    "slow WAL checkpoint"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
    }
}

/// Milliseconds with a fraction, for the slow-event logs.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `execute` through the statement cache: the hot statements are parsed once, not per call.
pub(super) fn execute_cached<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
