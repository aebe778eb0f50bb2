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
//! file: `connect.rs` (URL, password file, TLS, pool), `schema.rs` (migrations, the key),
//! `queued.rs` (audit rows and back-off counts written in batches), `copy.rs` (`tessera
//! store copy`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::config::PgSettings;
use super::seal::SealKey;
use super::{
    AuditEntry, Challenge, ChallengeRequest, ChallengeStart, Dump, OpenRow, RequestMark, Store,
    StoreError, Token, TokenKind, UserState, standing_challenge,
};
use crate::secret::Secret;

mod connect;
mod queued;
mod schema;

/// See the module documentation.
pub struct PgStore {
    pool: Pool,
    key: Arc<SealKey>,
    /// The first reads of concurrent requests, batched.
    reads: batch::Batcher<batch::Read, (UserState, Option<String>)>,
    /// Concurrent requests' counter consumes, batched.
    consumes: batch::Batcher<batch::Consume, bool>,
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
        let state = schema::key_state(&tx).await?;
        let key = match SealKey::load(key_file)? {
            Some(key) => key,
            None if matches!(state, schema::KeyState::Unclaimed) => SealKey::create(key_file)?,
            None => {
                return Err(StoreError::KeyMissing {
                    key_file: key_file.display().to_string(),
                    db: name,
                });
            }
        };
        if let Some(expected) = schema::mismatch(&state, &key) {
            return Err(StoreError::KeyMismatch {
                key_file: key_file.display().to_string(),
                db: name,
                found: key.fingerprint().to_string(),
                expected,
            });
        }
        schema::claim_key(&tx, &key).await?;
        tx.commit().await?;
        drop(client);
        let queue = queued::WriteQueue::start(pool.clone());
        let key = Arc::new(key);
        let reads = {
            let (pool, key) = (pool.clone(), key.clone());
            batch::Batcher::start(move |reads| {
                let (pool, key) = (pool.clone(), key.clone());
                async move { batch::read(&pool, &key, reads).await }
            })
        };
        let consumes = {
            let pool = pool.clone();
            batch::Batcher::start(move |items| {
                let pool = pool.clone();
                async move { batch::consume(&pool, items).await }
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
    let state = schema::key_state(&client).await?;
    match key {
        None if matches!(state, schema::KeyState::Unclaimed) => Ok(()),
        None => Err(StoreError::KeyMissing {
            key_file: key_file.display().to_string(),
            db: name,
        }),
        Some(key) => match schema::mismatch(&state, &key) {
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

/// Takes the identity's advisory lock for the rest of the transaction.
async fn lock_identity(c: &impl GenericClient, user: &str, realm: &str) -> Result<(), StoreError> {
    execute(
        c,
        "SELECT pg_advisory_xact_lock($1)",
        &[&identity_lock(user, realm)],
    )
    .await?;
    Ok(())
}

/// The advisory lock key of an identity: 64 bits of SHA-256 over user and realm. Two
/// identities that collide only queue behind each other.
fn identity_lock(user: &str, realm: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"tessera identity\0");
    hash.update(user.as_bytes());
    hash.update([0]);
    hash.update(realm.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    i64::from_be_bytes(first)
}

macro_rules! token_columns {
    () => {
        "serial, kind, username, realm, seed, counter, digits, pin_hash, phone, email, active, \
         fail_count, max_fail, last_fail_at, description, created_at, owner_id, autoenrolled"
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
    ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)"
);
const CHALLENGE_COLUMNS: &str =
    "state, serial, username, realm, counter, created_at, expires_at, open, delivered";

// After `token_columns!`, which they use.
mod batch;
mod copy;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn token_from_row(row: &Row, key: &SealKey) -> Result<Token, StoreError> {
    let serial: String = row.try_get(0)?;
    let sealed: Vec<u8> = row.try_get(4)?;
    token_with_seed(row, key.open(&sealed, &serial)?)
}

/// A `token_columns!()` row as a token holding `seed` (opened, or empty for a copy that keeps
/// the sealed one).
fn token_with_seed(row: &Row, seed: Secret) -> Result<Token, StoreError> {
    let serial: String = row.try_get(0)?;
    let kind: String = row.try_get(1)?;
    let kind = kind.parse::<TokenKind>().map_err(StoreError::Corrupt)?;
    Ok(Token {
        kind,
        user: row.try_get(2)?,
        realm: row.try_get(3)?,
        seed,
        counter: to_u64(row.try_get(5)?),
        digits: to_u32(row.try_get(6)?),
        pin_hash: row.try_get(7)?,
        phone: row.try_get(8)?,
        email: row.try_get(9)?,
        active: row.try_get(10)?,
        fail_count: to_u32(row.try_get(11)?),
        max_fail: to_u32(row.try_get(12)?),
        last_fail_at: row.try_get(13)?,
        description: row.try_get(14)?,
        created_at: row.try_get(15)?,
        owner_id: row.try_get(16)?,
        autoenrolled: row.try_get(17)?,
        serial,
    })
}

/// An audit row, its columns in the order `time, client, username, realm, serial, action,
/// result, reason`.
fn audit_from_row(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        time: r.try_get(0)?,
        client: r.try_get(1)?,
        user: r.try_get(2)?,
        realm: r.try_get(3)?,
        serial: r.try_get(4)?,
        action: r.try_get(5)?,
        result: r.try_get(6)?,
        reason: r.try_get(7)?,
    })
}

fn tokens_from_rows(rows: &[Row], key: &SealKey) -> Result<Vec<Token>, StoreError> {
    rows.iter().map(|r| token_from_row(r, key)).collect()
}

fn challenge_from_row(row: &Row) -> Result<Challenge, StoreError> {
    Ok(Challenge {
        state: row.try_get(0)?,
        serial: row.try_get(1)?,
        user: row.try_get(2)?,
        realm: row.try_get(3)?,
        counter: to_u64(row.try_get(4)?),
        created_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        open: row.try_get(7)?,
        delivered: row.try_get(8)?,
    })
}

/// The serial a request with this digest consumed an OTP for since the time given, if any;
/// `None` without a digest (no query then).
async fn answered_serial(
    c: &impl GenericClient,
    retransmit: Option<(&[u8; 16], i64)>,
) -> Result<Option<String>, StoreError> {
    let Some((digest, since_ms)) = retransmit else {
        return Ok(None);
    };
    let rows = query(
        c,
        "SELECT serial FROM answered WHERE digest = $1 AND at_ms >= $2",
        &[&digest.as_slice(), &since_ms],
    )
    .await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
}

async fn challenge_rows(c: &impl GenericClient, state: &str) -> Result<Vec<Challenge>, StoreError> {
    let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE state = $1");
    query(c, &sql, &[&state])
        .await?
        .iter()
        .map(challenge_from_row)
        .collect()
}

/// Seals and inserts tokens; the first records (or checks) the cluster's key in the same
/// transaction. A serial that exists, or a second autoenrolled token of one identity, is
/// [`StoreError::Duplicate`].
async fn insert_tokens(
    c: &impl GenericClient,
    key: &SealKey,
    name: &str,
    tokens: &[Token],
) -> Result<(), StoreError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let recorded = schema::claim_key(c, key).await?;
    if recorded != key.fingerprint() {
        return Err(StoreError::KeyMismatch {
            key_file: String::new(),
            db: name.to_string(),
            found: key.fingerprint().to_string(),
            expected: format!("fingerprint {recorded}"),
        });
    }
    for token in tokens {
        let sealed = key.seal(&token.seed, &token.serial)?;
        let statement = c.prepare_cached(INSERT_TOKEN).await?;
        let inserted = c
            .execute(
                &statement,
                &[
                    &token.serial,
                    &token.kind.as_str(),
                    &token.user,
                    &token.realm,
                    &sealed,
                    &to_i64(token.counter),
                    &to_i32(token.digits),
                    &token.pin_hash,
                    &token.phone,
                    &token.email,
                    &token.active,
                    &to_i32(token.fail_count),
                    &to_i32(token.max_fail),
                    &token.last_fail_at,
                    &token.description,
                    &token.created_at,
                    &token.owner_id,
                    &token.autoenrolled,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::Duplicate(token.serial.clone()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// See [`Store::start_challenge`] and the module documentation.
async fn start_challenge(
    c: &impl GenericClient,
    key: &SealKey,
    name: &str,
    request: &ChallengeRequest,
) -> Result<ChallengeStart, StoreError> {
    let ChallengeRequest {
        user,
        realm,
        state: _,
        targets: _,
        now_ms,
        trigger_limit,
        trigger_window_ms,
        enroll,
        request_digest: _,
        retransmit_since_ms: _,
    } = request;
    lock_identity(c, user, realm).await?;
    if enroll.is_some() {
        let has_token = query(
            c,
            "SELECT EXISTS (SELECT 1 FROM tokens WHERE username = $1 AND realm = $2)",
            &[user, realm],
        )
        .await?;
        if has_token
            .first()
            .map(|r| r.try_get::<_, bool>(0))
            .transpose()?
            == Some(true)
        {
            return Ok(ChallengeStart::AlreadyEnrolled);
        }
    }

    // The open challenge this very request started (it is resent), else the newest one to
    // one of the targets still inside that target's blocking timeout, pending or delivered:
    // nothing new is sent while it stands.
    let open = open_rows(c, user, realm, *now_ms).await?;
    if let Some(open_state) = standing_challenge(&open, request) {
        return Ok(ChallengeStart::Open(challenge_rows(c, open_state).await?));
    }

    let since = now_ms.saturating_sub(*trigger_window_ms);
    let started: i64 = query(
        c,
        "SELECT COUNT(DISTINCT state) FROM challenges \
         WHERE username = $1 AND realm = $2 AND created_at >= $3",
        &[user, realm, &since],
    )
    .await?
    .first()
    .map(|r| r.try_get(0))
    .transpose()?
    .unwrap_or(0);
    if started >= i64::from(*trigger_limit) {
        return Ok(ChallengeStart::Limited(
            u32::try_from(started).unwrap_or(u32::MAX),
        ));
    }

    if let Some(token) = enroll {
        match insert_tokens(c, key, name, std::slice::from_ref(token)).await {
            Ok(()) => {}
            // Only the identity's lock lets one enrollment through; a duplicate here is an
            // admin's token of the same serial.
            Err(StoreError::Duplicate(_)) => return Ok(ChallengeStart::AlreadyEnrolled),
            Err(e) => return Err(e),
        }
    }
    let counters = insert_challenges(c, request).await?;
    Ok(ChallengeStart::Started(counters))
}

/// The identity's open challenges, newest first (see [`standing_challenge`]).
async fn open_rows(
    c: &impl GenericClient,
    user: &str,
    realm: &str,
    now_ms: i64,
) -> Result<Vec<OpenRow>, StoreError> {
    Ok(query(
        c,
        "SELECT state, serial, created_at, request_digest FROM challenges \
         WHERE username = $1 AND realm = $2 AND open AND expires_at >= $3 \
         ORDER BY created_at DESC",
        &[&user, &realm, &now_ms],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(OpenRow {
            state: row.try_get(0)?,
            serial: row.try_get(1)?,
            created_at: row.try_get(2)?,
            request_digest: row.try_get(3)?,
        })
    })
    .collect::<Result<Vec<_>, tokio_postgres::Error>>()?)
}

/// Allocates a counter on each target and inserts its challenge row, pending delivery.
async fn insert_challenges(
    c: &impl GenericClient,
    request: &ChallengeRequest,
) -> Result<Vec<u64>, StoreError> {
    let ChallengeRequest {
        user,
        realm,
        state,
        targets,
        now_ms,
        request_digest,
        ..
    } = request;
    let mut counters = Vec::with_capacity(targets.len());
    for target in targets {
        let counter: i64 = query(
            c,
            "UPDATE tokens SET counter = counter + 1 WHERE serial = $1 RETURNING counter - 1",
            &[&target.serial],
        )
        .await?
        .first()
        .ok_or_else(|| StoreError::Corrupt(format!("token {} is gone", target.serial)))?
        .try_get(0)?;
        let expires = now_ms.saturating_add(target.validity_ms);
        execute(
            c,
            "INSERT INTO challenges (state, serial, username, realm, counter, created_at, \
             expires_at, open, delivered, request_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, FALSE, $8)",
            &[
                state,
                &target.serial,
                user,
                realm,
                &counter,
                now_ms,
                &expires,
                &request_digest.as_ref().map(<[u8; 16]>::as_slice),
            ],
        )
        .await?;
        counters.push(to_u64(counter));
    }
    Ok(counters)
}

/// See [`Store::close_challenge`].
async fn close_challenge(
    c: &impl GenericClient,
    state: &str,
    serial: &str,
    by: Option<RequestMark>,
) -> Result<bool, StoreError> {
    let closed = query(
        c,
        "UPDATE challenges SET open = FALSE WHERE state = $1 AND serial = $2 AND open \
         RETURNING counter",
        &[&state, &serial],
    )
    .await?;
    let Some(row) = closed.first() else {
        return Ok(false);
    };
    let counter: i64 = row.try_get(0)?;
    execute(
        c,
        "UPDATE challenges SET open = FALSE WHERE state = $1 AND open",
        &[&state],
    )
    .await?;
    execute(
        c,
        "UPDATE challenges SET open = FALSE WHERE serial = $1 AND counter < $2 AND open",
        &[&serial, &counter],
    )
    .await?;
    execute(
        c,
        "UPDATE tokens SET fail_count = 0 WHERE serial = $1",
        &[&serial],
    )
    .await?;
    if let Some(by) = by {
        execute(
            c,
            RECORD_ANSWER,
            &[&by.digest.as_slice(), &serial, &by.now_ms],
        )
        .await?;
    }
    Ok(true)
}

/// Records the request that consumed an OTP of a token.
const RECORD_ANSWER: &str = "INSERT INTO answered (digest, serial, at_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (digest) DO UPDATE SET serial = excluded.serial, at_ms = excluded.at_ms";

fn audit_params(entry: &AuditEntry) -> [&(dyn ToSql + Sync); 8] {
    [
        &entry.time,
        &entry.client,
        &entry.user,
        &entry.realm,
        &entry.serial,
        &entry.action,
        &entry.result,
        &entry.reason,
    ]
}

const INSERT_AUDIT: &str = "INSERT INTO audit (time, client, username, realm, serial, action, result, reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

#[async_trait]
impl Store for PgStore {
    async fn tokens_of_user(&self, user: &str, realm: &str) -> Result<Vec<Token>, StoreError> {
        self.timed(async {
            let c = self.client().await?;
            let rows = query(&c, SELECT_TOKENS_OF_USER, &[&user, &realm]).await?;
            tokens_from_rows(&rows, &self.key)
        })
        .await
    }

    async fn token(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE serial = $1"
        );
        let rows = query(&c, sql, &[&serial]).await?;
        Ok(tokens_from_rows(&rows, &self.key)?.into_iter().next())
    }

    async fn list_tokens(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE ($1::text IS NULL OR username = $1) \
             AND ($2::text IS NULL OR realm = $2) ORDER BY realm, username, serial"
        );
        let rows = query(&c, sql, &[&user, &realm]).await?;
        tokens_from_rows(&rows, &self.key)
    }

    async fn insert_token(&self, token: Token) -> Result<(), StoreError> {
        self.insert_tokens(vec![token]).await
    }

    async fn insert_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_tokens(&tx, &self.key, &self.name, &tokens).await?;
        Ok(tx.commit().await?)
    }

    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(&c, "DELETE FROM tokens WHERE serial = $1", &[&serial]).await? > 0)
    }

    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET active = $2 WHERE serial = $1",
            &[&serial, &active],
        )
        .await?
            > 0)
    }

    async fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET pin_hash = $2 WHERE serial = $1",
            &[&serial, &pin_hash],
        )
        .await?
            > 0)
    }

    async fn user_state(
        &self,
        user: &str,
        realm: &str,
        with_backoff: bool,
    ) -> Result<UserState, StoreError> {
        Ok(self
            .user_state_of_request(user, realm, with_backoff, None)
            .await?
            .0)
    }

    async fn user_state_of_request(
        &self,
        user: &str,
        realm: &str,
        with_backoff: bool,
        retransmit: Option<(&[u8; 16], i64)>,
    ) -> Result<(UserState, Option<String>), StoreError> {
        // Batched with the other requests' first reads (see `batch.rs`).
        self.timed(self.reads.call(batch::Read {
            user: user.to_string(),
            realm: realm.to_string(),
            with_backoff,
            retransmit: retransmit.map(|(digest, since)| (*digest, since)),
        }))
        .await
    }

    async fn start_challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeStart, StoreError> {
        self.timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let decided = start_challenge(&tx, &self.key, &self.name, &request).await?;
            tx.commit().await?;
            Ok(decided)
        })
        .await
    }

    async fn mark_delivered(&self, challenge_state: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "UPDATE challenges SET delivered = TRUE WHERE state = $1",
            &[&challenge_state],
        )
        .await?;
        Ok(())
    }

    async fn delete_challenge(&self, challenge_state: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "DELETE FROM challenges WHERE state = $1",
            &[&challenge_state],
        )
        .await?;
        Ok(())
    }

    async fn challenge(&self, challenge_state: &str) -> Result<Vec<Challenge>, StoreError> {
        let c = self.client().await?;
        challenge_rows(&c, challenge_state).await
    }

    async fn challenge_of_request(
        &self,
        challenge_state: &str,
        retransmit: Option<(&[u8; 16], i64)>,
    ) -> Result<(Vec<Challenge>, Option<String>), StoreError> {
        let c = self.client().await?;
        // Both reads in flight at once on the connection: one round trip.
        Ok(tokio::try_join!(
            challenge_rows(&c, challenge_state),
            answered_serial(&c, retransmit)
        )?)
    }

    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now_ms: i64,
    ) -> Result<Vec<Challenge>, StoreError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE username = $1 AND realm = $2 \
             AND open AND delivered AND expires_at >= $3 ORDER BY created_at DESC"
        );
        query(&c, &sql, &[&user, &realm, &now_ms])
            .await?
            .iter()
            .map(challenge_from_row)
            .collect()
    }

    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        self.timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let closed = close_challenge(&tx, challenge_state, serial, by).await?;
            tx.commit().await?;
            Ok(closed)
        })
        .await
    }

    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        // Batched with the other requests' consumes, committed before this returns (see
        // `batch.rs`).
        self.timed(self.consumes.call(batch::Consume {
            serial: serial.to_string(),
            used,
            by: by.map(|b| (b.digest, b.now_ms)),
        }))
        .await
    }

    async fn retransmit_of(
        &self,
        digest: &[u8; 16],
        since_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        answered_serial(&c, Some((digest, since_ms))).await
    }

    async fn record_failure(&self, serials: &[String], now: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "UPDATE tokens SET fail_count = fail_count + 1, last_fail_at = $2 \
             WHERE serial = ANY($1)",
            &[&serials, &now],
        )
        .await?;
        Ok(())
    }

    async fn record_login_failure(&self, user: &str, realm: &str, now_ms: i64, forget_ms: i64) {
        // Queued, not awaited (see the trait), and written with the others waiting.
        self.queue.failure(queued::Failure {
            user: user.to_string(),
            realm: realm.to_string(),
            now_ms,
            forget_ms,
        });
    }

    async fn clear_login_failures(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        // Through the queue: after the failures queued before it.
        self.queue.clear(user, realm).await
    }

    async fn purge_login_failures(&self, before_ms: i64) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM login_failures WHERE last_failure_ms < $1",
            &[&before_ms],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET fail_count = 0, last_fail_at = NULL WHERE serial = $1",
            &[&serial],
        )
        .await?
            > 0)
    }

    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT serial, username, realm FROM tokens WHERE pin_hash IS NOT NULL AND autoenrolled",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO grace (username, realm, client, station, until_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (username, realm, client, station) DO UPDATE SET until_ms = $5",
            &[&user, &realm, &client, &station, &until_ms],
        )
        .await?;
        Ok(())
    }

    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<i64>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT until_ms FROM grace \
                 WHERE username = $1 AND realm = $2 AND client = $3 AND station = $4",
                &[&user, &realm, &client, &station],
            )
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "DELETE FROM grace WHERE username = $1 AND realm = $2",
            &[&user, &realm],
        )
        .await?;
        Ok(())
    }

    async fn set_token_owner(&self, serial: &str, user: &str) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "DELETE FROM challenges WHERE serial = $1", &[&serial]).await?;
        let changed = execute(
            &tx,
            "UPDATE tokens SET username = $2 WHERE serial = $1",
            &[&serial, &user],
        )
        .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn set_counter(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET counter = $2 WHERE serial = $1",
            &[&serial, &to_i64(counter)],
        )
        .await?
            > 0)
    }

    async fn audit(&self, entry: AuditEntry) {
        // Nobody waits for an audit row: it is queued and written with the others waiting.
        self.queue.audit(entry.with_controls_escaped());
    }

    async fn audit_committed(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let entry = entry.with_controls_escaped();
        let c = self.client().await?;
        execute(&c, INSERT_AUDIT, &audit_params(&entry)).await?;
        Ok(())
    }

    async fn purge_audit(&self, before: i64, limit: u32) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM audit WHERE id IN \
             (SELECT id FROM audit WHERE time < $1 ORDER BY time LIMIT $2)",
            &[&before, &i64::from(limit)],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT time, client, username, realm, serial, action, result, reason FROM audit \
             WHERE ($1::text IS NULL OR username = $1) AND ($2::bigint IS NULL OR time >= $2) \
             ORDER BY id DESC LIMIT $3",
            &[&user, &since, &i64::from(limit)],
        )
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn purge_challenges(&self, before: i64) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM challenges WHERE expires_at < $1",
            &[&before],
        )
        .await?;
        // Retransmits come within seconds; an hour-old record answers none.
        execute(&c, "DELETE FROM answered WHERE at_ms < $1", &[&before]).await?;
        execute(&c, "DELETE FROM grace WHERE until_ms < $1", &[&before]).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn export(&self) -> Result<Dump, StoreError> {
        let mut c = self.client().await?;
        // One snapshot of all three tables.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let dump = copy::export(&tx).await?;
        tx.commit().await?;
        Ok(dump)
    }

    async fn import(&self, dump: Dump, replace: bool) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        copy::import(&tx, &self.key, &self.name, &dump, replace).await?;
        Ok(tx.commit().await?)
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        // PostgreSQL owns its write-ahead log; a clean stop only writes the queued audit rows.
        self.queue.flush().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A write probe: a primary that turned read-only, or a full disk, must show.
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO meta (name, value) VALUES ('health_probe', now()::text) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[],
        )
        .await?;
        Ok(())
    }
}
