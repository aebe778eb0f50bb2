//! SQLite rows and the store's types: reading token, audit and challenge rows, inserting
//! tokens (sealing their seeds) and audit rows. Used by the store's calls (`store.rs`), the
//! race-deciding operations (`challenges.rs`) and `tessera store copy` (`copy.rs`).

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql, params};

use super::super::seal::SealKey;
use super::super::{
    AuditEntry, Challenge, ChallengeStatus, HashAlgorithm, StoreError, Token, TokenKind,
};
use super::{execute_cached, record_fingerprint};
use crate::secret::Secret;
use crate::time::UnixMs;

// Where SQLite's time columns meet [`UnixMs`], the one place: each bind and read names the
// column's unit, [`InMs`] (challenges, graces, back-off rows, retransmit marks) or
// [`InSeconds`] (token and audit times); a bare `UnixMs` binds to nothing.

/// A time in a column kept in milliseconds.
pub(super) struct InMs(pub UnixMs);

impl ToSql for InMs {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_ms()))
    }
}

impl FromSql for InMs {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(|ms| InMs(UnixMs::from_ms(ms)))
    }
}

/// A time in a column kept in seconds (token and audit times).
pub(super) struct InSeconds(pub UnixMs);

impl ToSql for InSeconds {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_secs()))
    }
}

impl FromSql for InSeconds {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(|secs| InSeconds(UnixMs::from_secs(secs)))
    }
}

/// A column in milliseconds, read.
pub(super) fn ms_column(row: &Row<'_>, column: usize) -> rusqlite::Result<UnixMs> {
    Ok(row.get::<_, InMs>(column)?.0)
}

/// A column in seconds that may be NULL, read.
fn seconds_column(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<UnixMs>> {
    Ok(row.get::<_, Option<InSeconds>>(column)?.map(|t| t.0))
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn token_from_row(row: &Row<'_>, key: &SealKey) -> Result<Token, StoreError> {
    let serial: String = row.get(0)?;
    let sealed: Vec<u8> = row.get(4)?;
    token_with_seed(row, key.open(&sealed, &serial)?)
}

/// A [`TOKEN_COLUMNS`] row as a token holding `seed` (opened, or empty for a copy that keeps
/// the sealed one).
pub(super) fn token_with_seed(row: &Row<'_>, seed: Secret) -> Result<Token, StoreError> {
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
        last_fail_at: seconds_column(row, 13)?,
        description: row.get(14)?,
        created_at: row.get::<_, InSeconds>(15)?.0,
        owner_id: row.get(16)?,
        autoenrolled: row.get(17)?,
        last_used: seconds_column(row, 18)?,
        pending: row.get(19)?,
        algorithm: row
            .get::<_, String>(20)?
            .parse::<HashAlgorithm>()
            .map_err(StoreError::Corrupt)?,
        time_step: row.get(21)?,
        public_id: row.get(22)?,
        serial,
    })
}

/// An audit row, its columns in the order `time, client, user, realm, serial, action, result,
/// reason`.
pub(super) fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        time: r.get::<_, InSeconds>(0)?.0,
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
pub(super) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO audit (time, client, user, realm, serial, action, result, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            InSeconds(entry.time),
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
pub(super) fn insert_token_row(
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
            ") SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23 \
             WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE user = ?3 AND realm = ?4)"
        )
    } else {
        concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23)"
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
        token.last_fail_at.map(InSeconds),
        token.description,
        InSeconds(token.created_at),
        token.owner_id,
        token.autoenrolled,
        token.last_used.map(InSeconds),
        token.pending,
        token.algorithm.as_str(),
        token.time_step,
        token.public_id
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
pub(super) fn insert_all(
    conn: &Connection,
    key: &SealKey,
    tokens: &[Token],
) -> Result<(), StoreError> {
    for token in tokens {
        if !insert_token_row(conn, key, token, false)? {
            return Err(StoreError::Duplicate(token.serial.clone()));
        }
    }
    Ok(())
}

pub(super) fn challenge_from_row(row: &Row<'_>) -> rusqlite::Result<Challenge> {
    Ok(Challenge {
        state: row.get(0)?,
        serial: row.get(1)?,
        user: row.get(2)?,
        realm: row.get(3)?,
        counter: to_u64(row.get(4)?),
        created_at: ms_column(row, 5)?,
        expires_at: ms_column(row, 6)?,
        status: ChallengeStatus::from_columns(row.get(7)?, row.get(8)?),
    })
}

pub(super) const CHALLENGE_COLUMNS: &str =
    "state, serial, user, realm, counter, created_at, expires_at, open, delivered";

pub(super) fn query_tokens(
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
