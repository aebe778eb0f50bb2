//! Challenges: starting one under the identity's advisory lock (enrollment, the standing
//! challenge, the trigger limit, counter allocation), closing one by compare-and-set with
//! the request that closed it recorded, and reading a challenge and the recorded requests
//! (`answered`) a retransmit is looked up in.

use deadpool_postgres::GenericClient;

use super::super::decide::{OpenRow, Start, StartRead, StartReads, decide_start};
use super::super::seal::SealKey;
use super::super::{Challenge, ChallengeRequest, ChallengeStart, RequestMark, StoreError};
use super::rows::{challenge_from_row, insert_tokens, ms_column, to_u64};
use super::{CHALLENGE_COLUMNS, execute, query};
use crate::time::UnixMs;

/// Takes the identity's advisory lock for the rest of the transaction.
pub(super) async fn lock_identity(
    c: &impl GenericClient,
    user: &str,
    realm: &str,
) -> Result<(), StoreError> {
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
pub(super) fn identity_lock(user: &str, realm: &str) -> i64 {
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

/// The serial a request with this digest consumed an OTP for since the time given, if any;
/// `None` without a digest (no query then).
pub(super) async fn answered_serial(
    c: &impl GenericClient,
    retransmit: Option<(&[u8; 16], UnixMs)>,
) -> Result<Option<String>, StoreError> {
    let Some((digest, since)) = retransmit else {
        return Ok(None);
    };
    let rows = query(
        c,
        "SELECT serial FROM answered WHERE digest = $1 AND at_ms >= $2",
        &[&digest.as_slice(), &since.as_ms()],
    )
    .await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
}

pub(super) async fn challenge_rows(
    c: &impl GenericClient,
    state: &str,
) -> Result<Vec<Challenge>, StoreError> {
    let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE state = $1");
    query(c, &sql, &[&state])
        .await?
        .iter()
        .map(challenge_from_row)
        .collect()
}

/// See [`Store::start_challenge`](super::super::Store::start_challenge) and the module
/// documentation: under the identity's lock, reads what [`decide_start`] asks for, then does
/// what it decided.
pub(super) async fn start_challenge(
    c: &impl GenericClient,
    key: &SealKey,
    name: &str,
    request: &ChallengeRequest,
) -> Result<ChallengeStart, StoreError> {
    let (user, realm) = (&request.user, &request.realm);
    lock_identity(c, user, realm).await?;
    let mut reads = StartReads::default();
    loop {
        match decide_start(&reads, request) {
            Start::Read(StartRead::HasToken) => {
                let has_token = query(
                    c,
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE username = $1 AND realm = $2)",
                    &[user, realm],
                )
                .await?;
                reads.has_token = Some(
                    has_token
                        .first()
                        .map(|r| r.try_get::<_, bool>(0))
                        .transpose()?
                        == Some(true),
                );
            }
            Start::Read(StartRead::OpenRows) => {
                reads.open = Some(open_rows(c, user, realm, request.now).await?);
            }
            Start::Read(StartRead::StartedSince(since)) => {
                reads.started = Some(started_since(c, user, realm, since).await?);
            }
            Start::AlreadyEnrolled => return Ok(ChallengeStart::AlreadyEnrolled),
            Start::Open(state) => {
                return Ok(ChallengeStart::Open(challenge_rows(c, state).await?));
            }
            Start::Limited(started) => return Ok(ChallengeStart::Limited(started)),
            Start::Allocate => break,
        }
    }
    if let Some(token) = &request.enroll {
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

/// How many challenges (distinct States) the identity started at or after `since`.
async fn started_since(
    c: &impl GenericClient,
    user: &str,
    realm: &str,
    since: UnixMs,
) -> Result<u32, StoreError> {
    let started: i64 = query(
        c,
        "SELECT COUNT(DISTINCT state) FROM challenges \
         WHERE username = $1 AND realm = $2 AND created_at >= $3",
        &[&user, &realm, &since.as_ms()],
    )
    .await?
    .first()
    .map(|r| r.try_get(0))
    .transpose()?
    .unwrap_or(0);
    Ok(u32::try_from(started).unwrap_or(u32::MAX))
}

/// The identity's open, unexpired challenges, newest first, pending or delivered.
pub(super) async fn open_rows(
    c: &impl GenericClient,
    user: &str,
    realm: &str,
    now: UnixMs,
) -> Result<Vec<OpenRow>, StoreError> {
    Ok(query(
        c,
        "SELECT state, serial, created_at, request_digest FROM challenges \
         WHERE username = $1 AND realm = $2 AND open AND expires_at >= $3 \
         ORDER BY created_at DESC",
        &[&user, &realm, &now.as_ms()],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(OpenRow {
            state: row.try_get(0)?,
            serial: row.try_get(1)?,
            created_at: ms_column(row, 2)?,
            request_digest: row.try_get(3)?,
        })
    })
    .collect::<Result<Vec<_>, tokio_postgres::Error>>()?)
}

/// Allocates a counter on each target and inserts its challenge row, pending delivery.
pub(super) async fn insert_challenges(
    c: &impl GenericClient,
    request: &ChallengeRequest,
) -> Result<Vec<u64>, StoreError> {
    let ChallengeRequest {
        user,
        realm,
        state,
        targets,
        now,
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
        .ok_or_else(|| StoreError::TokenGone(target.serial.clone()))?
        .try_get(0)?;
        let expires = now.plus_ms(target.validity_ms).as_ms();
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
                &now.as_ms(),
                &expires,
                &request_digest.as_ref().map(<[u8; 16]>::as_slice),
            ],
        )
        .await?;
        counters.push(to_u64(counter));
    }
    Ok(counters)
}

/// See [`Store::close_challenge`](super::super::Store::close_challenge).
pub(super) async fn close_challenge(
    c: &impl GenericClient,
    state: &str,
    serial: &str,
    now: UnixMs,
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
        "UPDATE tokens SET fail_count = 0, last_used = $2 WHERE serial = $1",
        &[&serial, &now.as_secs()],
    )
    .await?;
    if let Some(by) = by {
        execute(
            c,
            RECORD_ANSWER,
            &[&by.digest.as_slice(), &serial, &by.now.as_ms()],
        )
        .await?;
    }
    Ok(true)
}

/// Records the request that consumed an OTP of a token.
pub(super) const RECORD_ANSWER: &str = "INSERT INTO answered (digest, serial, at_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (digest) DO UPDATE SET serial = excluded.serial, at_ms = excluded.at_ms";
