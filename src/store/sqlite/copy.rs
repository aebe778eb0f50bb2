//! `tessera store copy` on SQLite: every token with its seed as sealed, every challenge,
//! back-off, grace and audit row out ([`export`]); and in ([`import`]), in the job's
//! savepoint, refusing a store that holds anything unless told to replace it.

use rusqlite::{Connection, params};

use super::super::seal::SealKey;
use super::super::{Backoff, BackoffRow, Dump, GraceRow, SealedToken, StoreError};
use super::{
    CHALLENGE_COLUMNS, InMs, InSeconds, TOKEN_COLUMNS, audit_from_row, challenge_from_row,
    insert_audit, ms_column, record_fingerprint, to_i64, token_with_seed,
};
use crate::secret::Secret;

/// Reads everything out.
pub(super) fn export(conn: &Connection) -> Result<Dump, StoreError> {
    let tokens = sealed_tokens(conn)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM challenges ORDER BY created_at, state, serial"
    ))?;
    let challenges = stmt
        .query_map([], challenge_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(
        "SELECT time, client, user, realm, serial, action, result, reason FROM audit ORDER BY id",
    )?;
    let audit = stmt
        .query_map([], audit_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (backoff, grace) = backoff_and_grace(conn)?;
    Ok(Dump {
        tokens,
        challenges,
        backoff,
        grace,
        audit,
    })
}

/// Writes a dump (see [`super::super::Store::import`]).
pub(super) fn import(
    conn: &Connection,
    key: &SealKey,
    dump: &Dump,
    replace: bool,
) -> Result<(), StoreError> {
    let held: [i64; 5] = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM tokens), (SELECT COUNT(*) FROM challenges), \
         (SELECT COUNT(*) FROM login_failures), (SELECT COUNT(*) FROM grace), \
         (SELECT COUNT(*) FROM audit)",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
    )?;
    if held != [0; 5] {
        if !replace {
            return Err(StoreError::NotEmpty(super::super::held_rows(held)));
        }
        conn.execute_batch(
            "DELETE FROM challenges; DELETE FROM tokens; DELETE FROM audit; \
             DELETE FROM login_failures; DELETE FROM grace;",
        )?;
    }
    import_tokens(conn, key, &dump.tokens)?;
    let mut insert = conn.prepare(
        "INSERT INTO challenges \
         (state, serial, user, realm, counter, created_at, expires_at, open, delivered) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for c in &dump.challenges {
        insert.execute(params![
            c.state,
            c.serial,
            c.user,
            c.realm,
            to_i64(c.counter),
            InMs(c.created_at),
            InMs(c.expires_at),
            c.status.is_open(),
            c.status.was_delivered()
        ])?;
    }
    let mut insert = conn.prepare(
        "INSERT INTO login_failures (user, realm, origin, failures, last_failure_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for row in &dump.backoff {
        insert.execute(params![
            row.user,
            row.realm,
            row.origin,
            row.backoff.failures,
            InMs(row.backoff.last_failure)
        ])?;
    }
    let mut insert = conn.prepare(
        "INSERT INTO grace (user, realm, client, station, until_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for g in &dump.grace {
        insert.execute(params![g.user, g.realm, g.client, g.station, InMs(g.until)])?;
    }
    for entry in &dump.audit {
        insert_audit(conn, entry)?;
    }
    Ok(())
}

/// Every token, its seed as sealed.
fn sealed_tokens(conn: &Connection) -> Result<Vec<SealedToken>, StoreError> {
    let mut tokens = vec![];
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY serial"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        tokens.push(SealedToken {
            sealed: r.get(4)?,
            token: token_with_seed(r, Secret::new(Vec::new()))?,
        });
    }
    Ok(tokens)
}

/// The identities' back-off counts and re-authentication graces.
fn backoff_and_grace(conn: &Connection) -> Result<(Vec<BackoffRow>, Vec<GraceRow>), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT user, realm, origin, failures, last_failure_ms FROM login_failures \
         ORDER BY user, realm, origin",
    )?;
    let backoff = stmt
        .query_map([], |r| {
            Ok(BackoffRow {
                user: r.get(0)?,
                realm: r.get(1)?,
                origin: r.get(2)?,
                backoff: Backoff {
                    failures: r.get(3)?,
                    last_failure: ms_column(r, 4)?,
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(
        "SELECT user, realm, client, station, until_ms FROM grace \
         ORDER BY user, realm, client, station",
    )?;
    let grace = stmt
        .query_map([], |r| {
            Ok(GraceRow {
                user: r.get(0)?,
                realm: r.get(1)?,
                client: r.get(2)?,
                station: r.get(3)?,
                until: ms_column(r, 4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((backoff, grace))
}

/// Inserts `tokens` as sealed, each checked to open under `key`.
fn import_tokens(
    conn: &Connection,
    key: &SealKey,
    tokens: &[SealedToken],
) -> Result<(), StoreError> {
    let mut insert = conn.prepare(&format!(
        "INSERT INTO tokens ({TOKEN_COLUMNS}) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23)"
    ))?;
    for SealedToken { token: t, sealed } in tokens {
        // Nothing is re-sealed: the seed must open under this store's key as it is.
        key.open(sealed, &t.serial)?;
        insert.execute(params![
            t.serial,
            t.kind.as_str(),
            t.user,
            t.realm,
            sealed,
            to_i64(t.counter),
            t.digits,
            t.pin_hash,
            t.phone,
            t.email,
            t.active,
            t.fail_count,
            t.max_fail,
            t.last_fail_at.map(InSeconds),
            t.description,
            InSeconds(t.created_at),
            t.owner_id,
            t.autoenrolled,
            t.last_used.map(InSeconds),
            t.pending,
            t.algorithm.as_str(),
            t.time_step,
            t.public_id
        ])?;
    }
    if !tokens.is_empty() {
        record_fingerprint(conn, key)?;
    }
    Ok(())
}
