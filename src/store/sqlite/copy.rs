//! `tessera store copy` on SQLite: every token with its seed as sealed, every challenge,
//! back-off, grace and audit row out ([`export`]); and in ([`import`]), in the job's
//! savepoint, refusing a store that holds anything unless told to replace it.

use rusqlite::{Connection, params};

use super::super::seal::SealKey;
use super::super::{
    AuditEntry, Backoff, BackoffRow, Dump, GraceRow, SealedToken, StoreError, Token, TokenKind,
};
use super::{
    CHALLENGE_COLUMNS, challenge_from_row, insert_audit, record_fingerprint, to_i64, to_u64,
};
use crate::secret::Secret;

const COLUMNS: &str = "serial, kind, user, realm, seed, counter, digits, pin_hash, phone, email, \
                       active, fail_count, max_fail, last_fail_at, description, created_at, \
                       owner_id, autoenrolled";

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
        .query_map([], |r| {
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
        })?
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
            c.created_at,
            c.expires_at,
            c.open,
            c.delivered
        ])?;
    }
    let mut insert = conn.prepare(
        "INSERT INTO login_failures (user, realm, failures, last_failure_ms) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for row in &dump.backoff {
        insert.execute(params![
            row.user,
            row.realm,
            row.backoff.failures,
            row.backoff.last_failure_ms
        ])?;
    }
    let mut insert = conn.prepare(
        "INSERT INTO grace (user, realm, client, station, until_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for g in &dump.grace {
        insert.execute(params![g.user, g.realm, g.client, g.station, g.until_ms])?;
    }
    for entry in &dump.audit {
        insert_audit(conn, entry)?;
    }
    Ok(())
}

/// Every token, its seed as sealed.
fn sealed_tokens(conn: &Connection) -> Result<Vec<SealedToken>, StoreError> {
    let mut tokens = vec![];
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM tokens ORDER BY serial"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        tokens.push(SealedToken {
            sealed: r.get(4)?,
            token: Token {
                serial: r.get(0)?,
                kind: kind.parse::<TokenKind>().map_err(StoreError::Corrupt)?,
                user: r.get(2)?,
                realm: r.get(3)?,
                seed: Secret::new(Vec::new()),
                counter: to_u64(r.get(5)?),
                digits: r.get(6)?,
                pin_hash: r.get(7)?,
                phone: r.get(8)?,
                email: r.get(9)?,
                active: r.get(10)?,
                fail_count: r.get(11)?,
                max_fail: r.get(12)?,
                last_fail_at: r.get(13)?,
                description: r.get(14)?,
                created_at: r.get(15)?,
                owner_id: r.get(16)?,
                autoenrolled: r.get(17)?,
            },
        });
    }
    Ok(tokens)
}

/// The identities' back-off counts and re-authentication graces.
fn backoff_and_grace(conn: &Connection) -> Result<(Vec<BackoffRow>, Vec<GraceRow>), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT user, realm, failures, last_failure_ms FROM login_failures ORDER BY user, realm",
    )?;
    let backoff = stmt
        .query_map([], |r| {
            Ok(BackoffRow {
                user: r.get(0)?,
                realm: r.get(1)?,
                backoff: Backoff {
                    failures: r.get(2)?,
                    last_failure_ms: r.get(3)?,
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
                until_ms: r.get(4)?,
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
        "INSERT INTO tokens ({COLUMNS}) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"
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
            t.last_fail_at,
            t.description,
            t.created_at,
            t.owner_id,
            t.autoenrolled
        ])?;
    }
    if !tokens.is_empty() {
        record_fingerprint(conn, key)?;
    }
    Ok(())
}
