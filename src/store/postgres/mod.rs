//! [`PgStore`]: the [`Store`] on PostgreSQL, shared by several tessera nodes (issue 15).
//!
//! Every race is decided by the database, so it holds between nodes exactly as between two
//! requests of one node, and every decision is one transaction:
//! - consuming a HOTP/TOTP value and closing a challenge are compare-and-set `UPDATE`s
//!   (`… WHERE counter <= $used`, `… WHERE open`): the row lock makes a second writer wait,
//!   and PostgreSQL re-checks its `WHERE` against the first one's committed row, so exactly
//!   one of them changes it;
//! - starting a challenge ("enroll unless the identity has a token", "return the challenge
//!   open within the blocking timeout", "refuse at the trigger limit", "allocate the
//!   counters") reads sets of rows, which row locks cannot guard against inserts, so the
//!   transaction first takes a transaction-scoped advisory lock on the identity (a hash of
//!   user and realm): requests for one identity queue there, on every node, and each sees
//!   what the one before it committed (READ COMMITTED takes a new snapshot per statement).
//!   The unique index `one_autoenrolled_token` backs enrollment whatever the code does;
//! - the back-off counter is one upsert;
//! - the request that consumed an OTP is recorded with it, in the same transaction
//!   (`answered`), so a NAS that fails over and resends it to the other node gets Accept
//!   again ([`Store::retransmit_of`]), never "code already used".
//!
//! Nothing is cached on a node: every login reads the database, so a node that just started,
//! or the other node of a pair, sees the same tokens and challenges. A database that is down
//! makes calls fail within the pool's timeouts; the engine answers Reject, and health checks
//! (a write probe) report the node down until the database takes writes again. Beside this
//! file: `store.rs` (the [`Store`] trait's calls), `batches.rs` (a login's first read and its
//! counter consume, batched across requests), `challenges.rs` (starting and closing
//! challenges), `rows.rs` (rows to the store's types, inserting tokens), `connect.rs` (URL,
//! password file, TLS, pool), `schema.rs` (migrations), `key_file.rs` (the cluster's key),
//! `queued.rs` (audit rows and back-off counts written in batches), `sessions.rs` (accounting
//! sessions), `tokens.rs` (token rows and an admin's changes to them), `backoff.rs` (the
//! back-off counts' statements), `copy.rs` (`tessera store copy`).
//!
//! [`Store`]: super::Store
//! [`Store::retransmit_of`]: super::Store::retransmit_of

use std::path::Path;
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::UserState;
use super::config::PgSettings;
use super::seal::SealKey;

mod backoff;
mod connect;
mod key_file;
mod queued;
mod rows;
mod schema;

use rows::{to_i64, to_u32, token_from_row};

/// See the module documentation.
pub struct PgStore {
    pool: Pool,
    key: Arc<SealKey>,
    /// The first reads of concurrent requests, batched.
    reads: batches::Batcher<batches::Read, (UserState, Option<String>)>,
    /// Concurrent requests' counter consumes, batched.
    consumes: batches::Batcher<batches::Consume, bool>,
    /// The redacted URL, for messages.
    name: String,
    /// Audit rows and back-off counts nobody waits for, written in batches.
    queue: queued::WriteQueue,
}

/// Parameters of one statement.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgStore {
    /// Connects, applies migrations, and checks that `key_file` holds the cluster's key
    /// (creating it only when missing and no key is recorded or sealed anything).
    pub async fn open(settings: &PgSettings, key_file: &Path) -> Result<Self, StoreError> {
        let name = settings.redacted_url();
        let pool = connect::pool(settings)?;
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::SCHEMA_LOCK])
            .await?;
        let state = key_file::key_state(&tx).await?;
        let key = match SealKey::load(key_file)? {
            Some(key) => key,
            None if matches!(state, key_file::KeyState::Unclaimed) => SealKey::create(key_file)?,
            None => {
                return Err(StoreError::KeyMissing {
                    key_file: key_file.display().to_string(),
                    db: name,
                });
            }
        };
        if let Some(expected) = key_file::mismatch(&state, &key) {
            return Err(StoreError::KeyMismatch {
                key_file: key_file.display().to_string(),
                db: name,
                found: key.fingerprint().to_string(),
                expected,
            });
        }
        key_file::claim_key(&tx, &key, &name).await?;
        tx.commit().await?;
        drop(client);
        let queue = queued::WriteQueue::start(pool.clone());
        let key = Arc::new(key);
        let reads = {
            let (pool, key) = (pool.clone(), key.clone());
            batches::Batcher::start(move |reads| {
                let (pool, key) = (pool.clone(), key.clone());
                async move { batches::read(&pool, &key, reads).await }
            })
        };
        let consumes = {
            let pool = pool.clone();
            batches::Batcher::start(move |items| {
                let pool = pool.clone();
                async move { batches::consume(&pool, items).await }
            })
        };
        Ok(PgStore {
            pool,
            key,
            name,
            queue,
            reads,
            consumes,
        })
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Runs `f` with a connection, timing it.
    async fn timed<T>(
        &self,
        result: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let answer = result.await;
        crate::metrics::observe("tessera_store_seconds", &[], started.elapsed());
        answer
    }
}

/// The checks [`PgStore::open`] makes, creating and changing nothing (`check-config`): the
/// database answers, its schema is not newer than this build's, and the key file is the
/// cluster's key.
pub async fn check_store(settings: &PgSettings, key_file: &Path) -> Result<(), StoreError> {
    let name = settings.redacted_url();
    let key = SealKey::load(key_file)?;
    let pool = connect::pool(settings)?;
    let client = pool.get().await?;
    let version = schema::schema_version(&client).await?;
    if version > schema::SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{name} has schema version {version}, newer than this tessera's ({}): upgrade tessera",
            schema::SCHEMA_VERSION
        )));
    }
    let state = key_file::key_state(&client).await?;
    match key {
        None if matches!(state, key_file::KeyState::Unclaimed) => Ok(()),
        None => Err(StoreError::KeyMissing {
            key_file: key_file.display().to_string(),
            db: name,
        }),
        Some(key) => match key_file::mismatch(&state, &key) {
            None => Ok(()),
            Some(expected) => Err(StoreError::KeyMismatch {
                key_file: key_file.display().to_string(),
                db: name,
                found: key.fingerprint().to_string(),
                expected,
            }),
        },
    }
}

/// `query` through the connection's statement cache.
async fn query(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

/// `execute` through the connection's statement cache: rows changed.
async fn execute(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

macro_rules! token_columns {
    () => {
        "serial, kind, username, realm, seed, counter, digits, pin_hash, phone, email, active, \
         fail_count, max_fail, last_fail_at, description, created_at, owner_id, autoenrolled, \
         last_used, pending, algorithm, time_step, public_id"
    };
}
const SELECT_TOKENS_OF_USER: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE username = $1 AND realm = $2 ORDER BY serial"
);
const INSERT_TOKEN: &str = concat!(
    "INSERT INTO tokens (",
    token_columns!(),
    ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)"
);
const CHALLENGE_COLUMNS: &str =
    "state, serial, username, realm, counter, created_at, expires_at, open, delivered";

// After `token_columns!`, which they use.
mod batches;
mod challenges;
mod copy;
mod sessions;
mod store;
mod tokens;
