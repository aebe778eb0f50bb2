//! The writer thread behind [`super::SqliteStore`]: it runs jobs in batches and keeps the WAL
//! short.
//!
//! Group commit. The writer takes every job waiting in the queue (up to [`MAX_BATCH`]), runs
//! them in one transaction and commits the whole batch with one fsync (`synchronous=FULL`), and
//! only then answers the writers: a counter is on disk before the Accept that depends on it
//! leaves. Under load a batch holds many requests; when idle it holds one. (A pipeline in which
//! the next batch runs while the previous one is in fsync was measured and lost: on this kind of
//! machine the requests' CPU, not the disk's wait, bounds the rate, and the extra thread hop and
//! the smaller batches cost 10–35% more CPU per request. Reads on connections of their own in
//! the request's thread, which wait for no batch, were measured too: 10% more one-round logins
//! a second, but 10–17% more CPU per two-round login, since a second connection's page cache
//! is dropped whenever the writer has committed. See the issue 18 note.)
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

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::store::StoreError;
use crate::store::seal::SealKey;

/// Runs on the writer inside the batch's transaction; returns what to tell the caller once the
/// batch has committed (or failed to).
pub(super) type Job = Box<dyn FnOnce(&mut Connection, &SealKey) -> Reply + Send>;
/// Answers one caller, given the outcome of the batch's commit.
pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What the writer is asked to do.
pub(super) enum Work {
    /// A job, batched with the others waiting.
    Job(Job),
    /// `PRAGMA wal_checkpoint(TRUNCATE)` once the jobs queued before it have committed,
    /// outside any transaction (clean stop).
    Checkpoint(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// Most jobs committed together.
const MAX_BATCH: usize = 512;

/// WAL pages after which the writer checkpoints (SQLite's own auto-checkpoint default).
const CHECKPOINT_PAGES: i32 = 1000;

/// A batch or checkpoint slower than this is logged with its details.
const SLOW: Duration = Duration::from_millis(10);

/// Starts the store thread (owning `conn`) and returns its queue. The thread ends when every
/// sender is dropped.
pub(super) fn start(mut conn: Connection, key: SealKey) -> Result<mpsc::Sender<Work>, StoreError> {
    let spawn_failed = |cause| StoreError::Io {
        what: "cannot start the store thread".into(),
        cause,
    };
    let wal_pages = Arc::new(AtomicI32::new(0));
    let noted = wal_pages.clone();
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
        noted.store(pages, Ordering::Relaxed);
        Ok(())
    }))?;
    let (jobs, queue) = mpsc::channel::<Work>();
    std::thread::Builder::new()
        .name("tessera-store".into())
        .spawn(move || run_writer(&mut conn, &key, &queue, &wal_pages))
        .map_err(spawn_failed)?;
    Ok(jobs)
}

/// The writer: takes whatever jobs are waiting, runs them in one transaction, commits once
/// (with its fsync), then answers.
fn run_writer(
    conn: &mut Connection,
    key: &SealKey,
    queue: &mpsc::Receiver<Work>,
    wal_pages: &AtomicI32,
) {
    // Work taken from the queue that must wait for the batch before it.
    let mut next: Option<Work> = None;
    loop {
        let first = match next.take().map_or_else(|| queue.recv().ok(), Some) {
            None => break,
            Some(Work::Checkpoint(reply)) => {
                let _ = reply.send(truncate_wal(conn));
                continue;
            }
            Some(Work::Job(job)) => job,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Work::Job(job)) => batch.push(job),
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let began = execute_cached(conn, "BEGIN IMMEDIATE", []).map(|_| ());
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(conn, key)).collect();
        let ran = started.elapsed();
        let committed = began
            .and_then(|()| execute_cached(conn, "COMMIT", []).map(|_| ()))
            .map_err(|e| e.to_string());
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
        for reply in replies {
            reply(committed.clone());
        }
        if wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES {
            wal_pages.store(0, Ordering::Relaxed);
            checkpoint(conn);
        }
    }
}

/// Copies the WAL into the database and truncates it to zero bytes. `Err` when readers (an
/// admin command) kept it from completing.
fn truncate_wal(conn: &Connection) -> Result<(), String> {
    let (busy, _log, _done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| e.to_string())?;
    if busy != 0 {
        return Err("the WAL is in use by another connection".into());
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
