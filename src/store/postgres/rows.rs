//! Rows and the store's types: reading token, audit and challenge rows (a token's seed
//! opened, or left sealed for a copy), the integer conversions between them, and sealing
//! and inserting tokens (the first insert records the cluster's key), and an audit row's
//! insert, and the audit's filtered read.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::super::seal::SealKey;
use super::super::{
    AuditColumn, AuditEntry, AuditQuery, AuditTerm, Challenge, ChallengeStatus, HashAlgorithm,
    StoreError, Token, TokenKind,
};
use super::{INSERT_TOKEN, key_file, query};
use crate::secret::Secret;
use crate::time::UnixMs;

// Where PostgreSQL's time columns meet [`UnixMs`], the one place: columns in milliseconds
// (challenges, graces, back-off rows, retransmit marks) are read with [`ms_column`] and bound
// as `time.as_ms()`; columns in seconds (token and audit times) are read with
// [`seconds_column`] and bound as `time.as_secs()`.

/// A column in milliseconds, read.
pub(super) fn ms_column(row: &Row, column: usize) -> Result<UnixMs, tokio_postgres::Error> {
    row.try_get::<_, i64>(column).map(UnixMs::from_ms)
}

/// A column in seconds, read.
pub(super) fn seconds_column(row: &Row, column: usize) -> Result<UnixMs, tokio_postgres::Error> {
    row.try_get::<_, i64>(column).map(UnixMs::from_secs)
}

/// A column in seconds that may be NULL, read.
fn optional_seconds_column(
    row: &Row,
    column: usize,
) -> Result<Option<UnixMs>, tokio_postgres::Error> {
    Ok(row
        .try_get::<_, Option<i64>>(column)?
        .map(UnixMs::from_secs))
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub(super) fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

pub(super) fn token_from_row(row: &Row, key: &SealKey) -> Result<Token, StoreError> {
    let serial: String = row.try_get(0)?;
    let sealed: Vec<u8> = row.try_get(4)?;
    token_with_seed(row, key.open(&sealed, &serial)?)
}

/// A `token_columns!()` row as a token holding `seed` (opened, or empty for a copy that keeps
/// the sealed one).
pub(super) fn token_with_seed(row: &Row, seed: Secret) -> Result<Token, StoreError> {
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
        last_fail_at: optional_seconds_column(row, 13)?,
        description: row.try_get(14)?,
        created_at: seconds_column(row, 15)?,
        owner_id: row.try_get(16)?,
        autoenrolled: row.try_get(17)?,
        last_used: optional_seconds_column(row, 18)?,
        pending: row.try_get(19)?,
        algorithm: row
            .try_get::<_, String>(20)?
            .parse::<HashAlgorithm>()
            .map_err(StoreError::Corrupt)?,
        time_step: row.try_get::<_, Option<i32>>(21)?.map(to_u32),
        public_id: row.try_get(22)?,
        serial,
    })
}

/// An audit row, its columns in the order `time, client, username, realm, serial, action,
/// result, reason`.
pub(super) fn audit_from_row(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        time: seconds_column(r, 0)?,
        client: r.try_get(1)?,
        user: r.try_get(2)?,
        realm: r.try_get(3)?,
        serial: r.try_get(4)?,
        action: r.try_get(5)?,
        result: r.try_get(6)?,
        reason: r.try_get(7)?,
    })
}

/// The parameters of [`INSERT_AUDIT`]; `time_secs` is `entry.time.as_secs()`.
pub(super) fn audit_params<'a>(
    entry: &'a AuditEntry,
    time_secs: &'a i64,
) -> [&'a (dyn ToSql + Sync); 8] {
    [
        time_secs,
        &entry.client,
        &entry.user,
        &entry.realm,
        &entry.serial,
        &entry.action,
        &entry.result,
        &entry.reason,
    ]
}

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (time, client, username, realm, serial, action, result, reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(super) fn tokens_from_rows(rows: &[Row], key: &SealKey) -> Result<Vec<Token>, StoreError> {
    rows.iter().map(|r| token_from_row(r, key)).collect()
}

pub(super) fn challenge_from_row(row: &Row) -> Result<Challenge, StoreError> {
    Ok(Challenge {
        state: row.try_get(0)?,
        serial: row.try_get(1)?,
        user: row.try_get(2)?,
        realm: row.try_get(3)?,
        counter: to_u64(row.try_get(4)?),
        created_at: ms_column(row, 5)?,
        expires_at: ms_column(row, 6)?,
        status: ChallengeStatus::from_columns(row.try_get(7)?, row.try_get(8)?),
    })
}

/// Seals and inserts tokens; the first records (or checks) the cluster's key in the same
/// transaction. A serial that exists, or a second autoenrolled token of one identity, is
/// [`StoreError::Duplicate`].
pub(super) async fn insert_tokens(
    c: &impl GenericClient,
    key: &SealKey,
    name: &str,
    tokens: &[Token],
) -> Result<(), StoreError> {
    if tokens.is_empty() {
        return Ok(());
    }
    key_file::claim_key(c, key, name).await?;
    for token in tokens {
        let sealed = key.seal(&token.seed, &token.serial)?;
        let statement = c.prepare_cached(INSERT_TOKEN).await?;
        let inserted = insert_token_row(c, &statement, token, &sealed).await;
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

/// Inserts one token row, its seed as sealed; `statement` is [`INSERT_TOKEN`] prepared on `c`.
pub(super) async fn insert_token_row(
    c: &impl GenericClient,
    statement: &Statement,
    token: &Token,
    sealed: &[u8],
) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        statement,
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
            &token.last_fail_at.map(UnixMs::as_secs),
            &token.description,
            &token.created_at.as_secs(),
            &token.owner_id,
            &token.autoenrolled,
            &token.last_used.map(UnixMs::as_secs),
            &token.pending,
            &token.algorithm.as_str(),
            &token
                .time_step
                .map(|s| i32::try_from(s).unwrap_or(i32::MAX)),
            &token.public_id,
        ],
    )
    .await
}

/// The audit rows matching every filter of `q`, newest first (`Store::audit_query`).
pub(super) async fn audit_query(
    c: &impl GenericClient,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT time, client, username, realm, serial, action, result, reason FROM audit",
    );
    let mut texts: Vec<(usize, String)> = vec![];
    let mut numbers: Vec<(usize, i64)> = vec![];
    for (i, term) in q.terms().into_iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        let n = i + 1;
        match term {
            AuditTerm::Equals(column, text) => {
                let column = match column {
                    AuditColumn::User => "username",
                    AuditColumn::Realm => "realm",
                    AuditColumn::Serial => "serial",
                    AuditColumn::Result => "result",
                };
                sql.push_str(&format!("{column} = ${n}"));
                texts.push((n, text.to_string()));
            }
            AuditTerm::ClientContains(text) => {
                sql.push_str(&format!("strpos(client, ${n}) > 0"));
                texts.push((n, text.to_string()));
            }
            AuditTerm::Since(time) => {
                sql.push_str(&format!("time >= ${n}"));
                numbers.push((n, time.as_secs()));
            }
            AuditTerm::Until(time) => {
                sql.push_str(&format!("time < ${n}"));
                numbers.push((n, time.as_secs()));
            }
        }
    }
    let limit = (texts.len() + numbers.len() + 1, i64::from(q.limit));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", limit.0));
    numbers.push(limit);
    // The parameters in their places' order.
    let mut params: Vec<(usize, &(dyn tokio_postgres::types::ToSql + Sync))> = texts
        .iter()
        .map(|(n, v)| (*n, v as &(dyn tokio_postgres::types::ToSql + Sync)))
        .chain(
            numbers
                .iter()
                .map(|(n, v)| (*n, v as &(dyn tokio_postgres::types::ToSql + Sync))),
        )
        .collect();
    params.sort_by_key(|(n, _)| *n);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.into_iter().map(|(_, p)| p).collect();
    let rows = query(c, &sql, &params).await?;
    rows.iter().map(audit_from_row).collect()
}
