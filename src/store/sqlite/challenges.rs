//! The store operations that decide races between logins, as plain functions on a
//! connection: each runs inside one job's savepoint of the store thread's write transaction
//! (`BEGIN IMMEDIATE`), so its reads and writes are atomic against every other request of
//! this process and against any other process on the same database file.
//!
//! - [`start_challenge`]: "enroll unless the identity has a token", "return the challenge
//!   started within the blocking timeout", "refuse at the trigger limit" (decided by
//!   [`decide_start`] over what this reads) and "allocate the counters of a new pending
//!   challenge", together.
//! - [`close_challenge`]: closing a challenge by compare-and-set after a right answer.
//!
//! The schema backs the first with a constraint as well: at most one autoenrolled token per
//! (user, realm) (`one_autoenrolled_token`), whatever the code above it does.

use rusqlite::{Connection, OptionalExtension, params};

use super::super::decide::{OpenRow, Start, StartRead, StartReads, decide_start};
use super::super::seal::SealKey;
use super::super::{Challenge, ChallengeRequest, ChallengeStart, StoreError};
use super::{
    CHALLENGE_COLUMNS, InMs, InSeconds, challenge_from_row, execute_cached, insert_token_row,
    ms_column, to_u64,
};
use crate::time::UnixMs;

/// See the module documentation: reads what [`decide_start`] asks for, then does what it
/// decided.
pub(super) fn start_challenge(
    conn: &Connection,
    key: &SealKey,
    request: &ChallengeRequest,
) -> Result<ChallengeStart, StoreError> {
    let (user, realm) = (&request.user, &request.realm);
    let mut reads = StartReads::default();
    loop {
        match decide_start(&reads, request) {
            Start::Read(StartRead::HasToken) => {
                reads.has_token = Some(user_has_token(conn, user, realm)?);
            }
            Start::Read(StartRead::OpenRows) => {
                reads.open = Some(open_rows(conn, user, realm, request.now)?);
            }
            Start::Read(StartRead::StartedSince(since)) => {
                reads.started = Some(
                    conn.prepare_cached(
                        "SELECT COUNT(DISTINCT state) FROM challenges \
                         WHERE user = ?1 AND realm = ?2 AND created_at >= ?3",
                    )?
                    .query_row(params![user, realm, InMs(since)], |r| r.get(0))?,
                );
            }
            Start::AlreadyEnrolled => return Ok(ChallengeStart::AlreadyEnrolled),
            Start::Open(state) => return Ok(ChallengeStart::Open(challenge_rows(conn, state)?)),
            Start::Limited(started) => return Ok(ChallengeStart::Limited(started)),
            Start::Allocate => break,
        }
    }
    if let Some(token) = &request.enroll
        && !insert_token_row(conn, key, token, true)?
    {
        return Ok(ChallengeStart::AlreadyEnrolled);
    }
    Ok(ChallengeStart::Started(insert_challenges(conn, request)?))
}

/// The identity's open, unexpired challenge rows, newest first, pending or delivered.
fn open_rows(
    conn: &Connection,
    user: &str,
    realm: &str,
    now: UnixMs,
) -> Result<Vec<OpenRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, serial, created_at, request_digest FROM challenges \
         WHERE user = ?1 AND realm = ?2 AND open = 1 AND expires_at >= ?3 \
         ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map(params![user, realm, InMs(now)], |r| {
        Ok(OpenRow {
            state: r.get(0)?,
            serial: r.get(1)?,
            created_at: ms_column(r, 2)?,
            request_digest: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Allocates a counter on each target and inserts its challenge row, pending delivery.
fn insert_challenges(
    conn: &Connection,
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
        let counter: i64 = conn
            .prepare_cached(
                "UPDATE tokens SET counter = counter + 1 WHERE serial = ?1 \
                 RETURNING counter - 1",
            )?
            .query_row([&target.serial], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::TokenGone(target.serial.clone()))?;
        execute_cached(
            conn,
            "INSERT INTO challenges (state, serial, user, realm, counter, created_at, \
             expires_at, open, delivered, request_digest) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, 0, ?8)",
            params![
                state,
                target.serial,
                user,
                realm,
                counter,
                InMs(*now),
                InMs(now.plus_ms(target.validity_ms)),
                request_digest.as_ref().map(<[u8; 16]>::as_slice)
            ],
        )?;
        counters.push(to_u64(counter));
    }
    Ok(counters)
}

/// See [`Store::close_challenge`](super::super::Store::close_challenge): the compare-and-set
/// on the row, then every row of the challenge and every older open challenge of the token
/// closed, and the token's fail counter reset and its last use set to `now`. One node: its
/// reply cache answers retransmits, so nothing records the request.
pub(super) fn close_challenge(
    conn: &Connection,
    state: &str,
    serial: &str,
    now: UnixMs,
) -> Result<bool, StoreError> {
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
        "UPDATE tokens SET fail_count = 0, last_used = ?2 WHERE serial = ?1",
        params![serial, InSeconds(now)],
    )?;
    Ok(true)
}

fn user_has_token(conn: &Connection, user: &str, realm: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE user = ?1 AND realm = ?2)")?
        .query_row(params![user, realm], |r| r.get(0))?)
}

/// Every row of one challenge.
pub(super) fn challenge_rows(conn: &Connection, state: &str) -> Result<Vec<Challenge>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE state = ?1"
    ))?;
    let rows = stmt.query_map([state], challenge_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
