//! [`SqliteStore`]: the [`Store`] on SQLite, in WAL mode, on a thread of its own.
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
//! Beside this file: `batches.rs` (the store thread: group commit, checkpoints), `schema.rs`
//! (creating the file, migrations), `key_file.rs` (the key fingerprint check),
//! `challenge_start.rs` (the operations that decide races between logins).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::seal::SealKey;
use super::{
    AuditEntry, Backoff, Challenge, ChallengeRequest, ChallengeStart, Dump, RequestMark, Store,
    StoreError, Token, TokenKind, UserState,
};
use crate::secret::Secret;

mod batches;
mod challenge_start;
mod copy;
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
        let (jobs, db) = batches::start(conn, key)?;
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

    /// Like [`SqliteStore::call_one_statement`], but answers as soon as the statement has run,
    /// without waiting for the batch's commit. Only for a write whose loss in a crash (or a
    /// failed commit) can only refuse something later, never let anything through: marking a
    /// challenge delivered (lost, its code cannot be used and the user logs in again). Every
    /// later read sees it: on the writer it runs in order, and the connection is not free for
    /// a read in the request's task until the batch has committed.
    async fn call_answered_when_run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(f, Kind::AnsweredWhenRun).await
    }

    /// Runs a reading `f` of a request: right here when the connection is idle (no thread
    /// hop, no wake-up of the store thread: at low load that is most of a lookup's cost),
    /// otherwise on the store thread, answered at once without waiting for the batch's commit
    /// (a read needs no durability, and waiting would add an fsync to every lookup). Here it
    /// sees only committed rows; on the store thread it may see a write of its batch that a
    /// failed commit then undoes. The decisions that matter — consuming a counter, closing a
    /// challenge — are compare-and-set writes, which do wait.
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
    fn detached<F>(&self, what: &'static str, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut Connection, &SealKey) -> Result<(), StoreError> + Send + 'static,
    {
        // Used for single statements (the audit insert, the back-off upsert): atomic without
        // a savepoint.
        let job: Job = Box::new(move |conn, key| {
            if let Err(error) = f(conn, key) {
                tracing::error!(%error, "{what}");
            }
            Box::new(move |committed: Result<(), String>| {
                if let Err(error) = committed {
                    tracing::error!(%error, "{what}: commit failed");
                }
            })
        });
        self.db.send(&self.jobs, Work::Detached(job))
    }

    async fn run<T, F>(&self, f: F, kind: Kind) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SealKey) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn, key| {
            let result = match kind {
                Kind::AnsweredWhenRun => {
                    let _ = tx.send(f(conn, key));
                    return Box::new(|_| {});
                }
                Kind::WriteOneStatement => f(conn, key),
                Kind::Write => in_savepoint(conn, key, f),
            };
            Box::new(move |committed: Result<(), String>| {
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

/// How a job runs on the store thread.
#[derive(Clone, Copy)]
enum Kind {
    /// Answers as soon as it has run; no commit to wait for (reads, and writes whose loss only
    /// refuses).
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
         fail_count, max_fail, last_fail_at, description, created_at, owner_id, autoenrolled"
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
const CONSUME_COUNTER: &str = "UPDATE tokens SET counter = ?2 + 1, fail_count = 0 \
                               WHERE serial = ?1 AND counter <= ?2";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn token_from_row(row: &Row<'_>, key: &SealKey) -> Result<Token, StoreError> {
    let serial: String = row.get(0)?;
    let sealed: Vec<u8> = row.get(4)?;
    token_with_seed(row, key.open(&sealed, &serial)?)
}

/// A [`TOKEN_COLUMNS`] row as a token holding `seed` (opened, or empty for a copy that keeps
/// the sealed one).
fn token_with_seed(row: &Row<'_>, seed: Secret) -> Result<Token, StoreError> {
    let serial: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let kind = kind.parse::<TokenKind>().map_err(StoreError::Corrupt)?;
    Ok(Token {
        kind,
        user: row.get(2)?,
        realm: row.get(3)?,
        seed,
        counter: to_u64(row.get(5)?),
        digits: row.get(6)?,
        pin_hash: row.get(7)?,
        phone: row.get(8)?,
        email: row.get(9)?,
        active: row.get(10)?,
        fail_count: row.get(11)?,
        max_fail: row.get(12)?,
        last_fail_at: row.get(13)?,
        description: row.get(14)?,
        created_at: row.get(15)?,
        owner_id: row.get(16)?,
        autoenrolled: row.get(17)?,
        serial,
    })
}

/// An audit row, its columns in the order `time, client, user, realm, serial, action, result,
/// reason`.
fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        time: r.get(0)?,
        client: r.get(1)?,
        user: r.get(2)?,
        realm: r.get(3)?,
        serial: r.get(4)?,
        action: r.get(5)?,
        result: r.get(6)?,
        reason: r.get(7)?,
    })
}

/// Inserts one audit row.
fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO audit (time, client, user, realm, serial, action, result, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            entry.time,
            entry.client,
            entry.user,
            entry.realm,
            entry.serial,
            entry.action,
            entry.result,
            entry.reason
        ],
    )?;
    Ok(())
}

/// Seals the seed and inserts one token row; a serial that exists is [`StoreError::Duplicate`].
/// The first sealed seed records the key's fingerprint, in the same transaction.
/// With `unless_user_has_token`, nothing is inserted (`Ok(false)`) when the owner has a token.
fn insert_token_row(
    conn: &Connection,
    key: &SealKey,
    token: &Token,
    unless_user_has_token: bool,
) -> Result<bool, StoreError> {
    let sealed = key.seal(&token.seed, &token.serial)?;
    let mut insert = conn.prepare_cached(if unless_user_has_token {
        concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18 \
             WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE user = ?3 AND realm = ?4)"
        )
    } else {
        concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"
        )
    })?;
    let result = insert.execute(params![
        token.serial,
        token.kind.as_str(),
        token.user,
        token.realm,
        sealed,
        to_i64(token.counter),
        token.digits,
        token.pin_hash,
        token.phone,
        token.email,
        token.active,
        token.fail_count,
        token.max_fail,
        token.last_fail_at,
        token.description,
        token.created_at,
        token.owner_id,
        token.autoenrolled
    ]);
    match result {
        Ok(0) => Ok(false),
        Ok(_) => record_fingerprint(conn, key).map(|()| true),
        // The one autoenrolled token per user: another one won the race.
        Err(rusqlite::Error::SqliteFailure(e, Some(message)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation
                && message.contains("tokens.user") =>
        {
            Ok(false)
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Duplicate(token.serial.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Inserts tokens; a serial that exists, or a second autoenrolled token of one user, is
/// [`StoreError::Duplicate`].
fn insert_all(conn: &Connection, key: &SealKey, tokens: &[Token]) -> Result<(), StoreError> {
    for token in tokens {
        if !insert_token_row(conn, key, token, false)? {
            return Err(StoreError::Duplicate(token.serial.clone()));
        }
    }
    Ok(())
}

fn challenge_from_row(row: &Row<'_>) -> rusqlite::Result<Challenge> {
    Ok(Challenge {
        state: row.get(0)?,
        serial: row.get(1)?,
        user: row.get(2)?,
        realm: row.get(3)?,
        counter: to_u64(row.get(4)?),
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        open: row.get(7)?,
        delivered: row.get(8)?,
    })
}

const CHALLENGE_COLUMNS: &str =
    "state, serial, user, realm, counter, created_at, expires_at, open, delivered";

fn query_tokens(
    conn: &Connection,
    key: &SealKey,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Token>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(token_from_row(row, key)?);
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    async fn tokens_of_user(&self, user: &str, realm: &str) -> Result<Vec<Token>, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, key| query_tokens(conn, key, SELECT_TOKENS_OF_USER, &[&user, &realm]))
            .await
    }

    async fn token(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let serial = serial.to_string();
        self.read(move |conn, key| {
            Ok(query_tokens(conn, key, SELECT_TOKEN, &[&serial])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn list_tokens(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        let (user, realm) = (user.map(str::to_string), realm.map(str::to_string));
        self.read_large(move |conn, key| {
            let sql = concat!(
                "SELECT ",
                token_columns!(),
                " FROM tokens WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR realm = ?2) \
                 ORDER BY realm, user, serial"
            );
            query_tokens(conn, key, sql, &[&user, &realm])
        })
        .await
    }

    async fn insert_token(&self, token: Token) -> Result<(), StoreError> {
        self.call(move |conn, key| insert_all(conn, key, std::slice::from_ref(&token)))
            .await
    }

    async fn insert_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.call(move |conn, key| insert_all(conn, key, &tokens))
            .await
    }

    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(conn, "DELETE FROM tokens WHERE serial = ?1", [&serial])? > 0)
        })
        .await
    }

    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET active = ?2 WHERE serial = ?1",
                params![serial, active],
            )? > 0)
        })
        .await
    }

    async fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET pin_hash = ?2 WHERE serial = ?1",
                params![serial, pin_hash],
            )? > 0)
        })
        .await
    }

    async fn user_state(
        &self,
        user: &str,
        realm: &str,
        with_backoff: bool,
    ) -> Result<UserState, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, key| {
            let tokens = query_tokens(conn, key, SELECT_TOKENS_OF_USER, &[&user, &realm])?;
            if !with_backoff {
                return Ok(UserState {
                    tokens,
                    backoff: None,
                });
            }
            let backoff = conn
                .prepare_cached(
                    "SELECT failures, last_failure_ms FROM login_failures \
                     WHERE user = ?1 AND realm = ?2",
                )?
                .query_row(params![user, realm], |r| {
                    Ok(Backoff {
                        failures: r.get(0)?,
                        last_failure_ms: r.get(1)?,
                    })
                })
                .optional()?;
            Ok(UserState { tokens, backoff })
        })
        .await
    }

    async fn start_challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeStart, StoreError> {
        self.call(move |conn, key| challenge_start::start_challenge(conn, key, &request))
            .await
    }

    async fn mark_delivered(&self, challenge_state: &str) -> Result<(), StoreError> {
        let state = challenge_state.to_string();
        self.call_answered_when_run(move |conn, _| {
            execute_cached(
                conn,
                "UPDATE challenges SET delivered = 1 WHERE state = ?1",
                [&state],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_challenge(&self, challenge_state: &str) -> Result<(), StoreError> {
        let state = challenge_state.to_string();
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM challenges WHERE state = ?1", [&state])?;
            Ok(())
        })
        .await
    }

    async fn challenge(&self, challenge_state: &str) -> Result<Vec<Challenge>, StoreError> {
        let state = challenge_state.to_string();
        self.read(move |conn, _| challenge_start::challenge_rows(conn, &state))
            .await
    }

    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now_ms: i64,
    ) -> Result<Vec<Challenge>, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE user = ?1 AND realm = ?2 \
                 AND open = 1 AND delivered = 1 AND expires_at >= ?3 ORDER BY created_at DESC"
            ))?;
            let rows = stmt.query_map(params![user, realm, now_ms], challenge_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        // One node: its reply cache answers retransmits; nothing to record.
        _by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        let (state, serial) = (challenge_state.to_string(), serial.to_string());
        self.call(move |conn, _| {
            let closed = execute_cached(
                conn,
                "UPDATE challenges SET open = 0 WHERE state = ?1 AND serial = ?2 AND open = 1",
                params![state, serial],
            )?;
            if closed == 0 {
                return Ok(false);
            }
            let counter: i64 = conn.query_row(
                "SELECT counter FROM challenges WHERE state = ?1 AND serial = ?2",
                params![state, serial],
                |r| r.get(0),
            )?;
            execute_cached(
                conn,
                "UPDATE challenges SET open = 0 WHERE state = ?1",
                [&state],
            )?;
            execute_cached(
                conn,
                "UPDATE challenges SET open = 0 WHERE serial = ?1 AND counter < ?2 AND open = 1",
                params![serial, counter],
            )?;
            execute_cached(
                conn,
                "UPDATE tokens SET fail_count = 0 WHERE serial = ?1",
                [&serial],
            )?;
            Ok(true)
        })
        .await
    }

    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        _by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let used = to_i64(used);
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(conn, CONSUME_COUNTER, params![serial, used])? > 0)
        })
        .await
    }

    async fn record_failure(&self, serials: &[String], now: i64) -> Result<(), StoreError> {
        let serials = serials.to_vec();
        self.call(move |conn, _| {
            for serial in &serials {
                execute_cached(conn,
                    "UPDATE tokens SET fail_count = fail_count + 1, last_fail_at = ?2 WHERE serial = ?1",
                    params![serial, now],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn record_login_failure(&self, user: &str, realm: &str, now_ms: i64, forget_ms: i64) {
        let (user, realm) = (user.to_string(), realm.to_string());
        // Until the writer has run it, reads go through the writer too (behind it), so the
        // next attempt of this identity sees this failure.
        let unapplied = self.db.unapplied_failures.clone();
        unapplied.fetch_add(1, Ordering::SeqCst);
        let result = self.detached("back-off failure not recorded", move |conn, _| {
            let recorded =
                challenge_start::record_login_failure(conn, &user, &realm, now_ms, forget_ms);
            unapplied.fetch_sub(1, Ordering::SeqCst);
            recorded
        });
        if let Err(error) = result {
            self.db.unapplied_failures.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(%error, "back-off failure not recorded");
        }
    }

    async fn clear_login_failures(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "DELETE FROM login_failures WHERE user = ?1 AND realm = ?2",
                params![user, realm],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_login_failures(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM login_failures WHERE last_failure_ms < ?1",
                [before_ms],
            )?)
        })
        .await
    }

    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET fail_count = 0, last_fail_at = NULL WHERE serial = ?1",
                [&serial],
            )? > 0)
        })
        .await
    }

    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let key = [user, realm, client, station].map(str::to_string);
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "INSERT INTO grace (user, realm, client, station, until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user, realm, client, station) DO UPDATE SET until_ms = ?5",
                params![key[0], key[1], key[2], key[3], until_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<i64>, StoreError> {
        let key = [user, realm, client, station].map(str::to_string);
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached(
                    "SELECT until_ms FROM grace \
                     WHERE user = ?1 AND realm = ?2 AND client = ?3 AND station = ?4",
                )?
                .query_row(params![key[0], key[1], key[2], key[3]], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "DELETE FROM grace WHERE user = ?1 AND realm = ?2",
                params![user, realm],
            )?;
            Ok(())
        })
        .await
    }

    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read_large(|conn, _| {
            // Versions before schema 2 marked autoenrolled tokens only in the description.
            let mut stmt = conn.prepare(
                "SELECT serial, user, realm FROM tokens WHERE pin_hash IS NOT NULL \
                 AND (autoenrolled = 1 OR description LIKE 'auto enrolled for %')",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn set_token_owner(&self, serial: &str, user: &str) -> Result<bool, StoreError> {
        let (serial, user) = (serial.to_string(), user.to_string());
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM challenges WHERE serial = ?1", [&serial])?;
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET user = ?2 WHERE serial = ?1",
                params![serial, user],
            )? > 0)
        })
        .await
    }

    async fn set_counter(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let counter = to_i64(counter);
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET counter = ?2 WHERE serial = ?1",
                params![serial, counter],
            )? > 0)
        })
        .await
    }

    async fn audit(&self, entry: AuditEntry) {
        let entry = entry.with_controls_escaped();
        // Nobody waits for an audit row: it is queued and committed with the next batch, and a
        // failure is logged on the store thread.
        let result = self.detached("audit row not written", move |conn, _| {
            insert_audit(conn, &entry)
        });
        if let Err(error) = result {
            tracing::error!(%error, "audit row not written");
        }
    }

    async fn audit_committed(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let entry = entry.with_controls_escaped();
        self.call_one_statement(move |conn, _| insert_audit(conn, &entry))
            .await
    }

    async fn purge_audit(&self, before: i64, limit: u32) -> Result<usize, StoreError> {
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM audit WHERE id IN \
                 (SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
                params![before, limit],
            )?)
        })
        .await
    }

    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let user = user.map(str::to_string);
        self.read_large(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT time, client, user, realm, serial, action, result, reason FROM audit \
                 WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR time >= ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![user, since, limit], audit_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.db.send(&self.jobs, Work::Checkpoint(tx))?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Commit)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A write probe, committed like any request's write: a store on a full disk or a
        // read-only file still answers reads while it rejects every login, and health must
        // say so (one row rewritten, one WAL frame per health check).
        self.call_one_statement(|conn, _| {
            execute_cached(
                conn,
                "INSERT INTO meta (name, value) VALUES ('health_probe', strftime('%s', 'now')) \
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [],
            )?;
            Ok(())
        })
        .await
    }

    async fn export(&self) -> Result<Dump, StoreError> {
        self.read_large(|conn, _| copy::export(conn)).await
    }

    async fn import(&self, dump: Dump, replace: bool) -> Result<(), StoreError> {
        self.call(move |conn, key| copy::import(conn, key, &dump, replace))
            .await
    }

    async fn purge_challenges(&self, before: i64) -> Result<usize, StoreError> {
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM grace WHERE until_ms < ?1", [before])?;
            Ok(execute_cached(
                conn,
                "DELETE FROM challenges WHERE expires_at < ?1",
                [before],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
