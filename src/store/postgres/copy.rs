//! `tessera store copy` on PostgreSQL: every token with its seed as sealed, every challenge,
//! back-off, grace and audit row out ([`export`]); and in ([`import`]), in one transaction,
//! refusing a database that holds anything unless told to replace it.

use deadpool_postgres::GenericClient;

use super::super::seal::SealKey;
use super::super::{Backoff, BackoffRow, Dump, GraceRow, SealedToken, StoreError};
use super::rows::{
    INSERT_AUDIT, audit_from_row, audit_params, challenge_from_row, insert_token_row, ms_column,
    to_i32, to_i64, to_u32, token_with_seed,
};
use super::{CHALLENGE_COLUMNS, INSERT_TOKEN, key_file, query};
use crate::secret::Secret;

/// Reads everything out.
pub(super) async fn export(c: &impl GenericClient) -> Result<Dump, StoreError> {
    let tokens = sealed_tokens(c).await?;
    let challenges = query(
        c,
        &format!("SELECT {CHALLENGE_COLUMNS} FROM challenges ORDER BY created_at, state, serial"),
        &[],
    )
    .await?
    .iter()
    .map(challenge_from_row)
    .collect::<Result<Vec<_>, _>>()?;
    let audit = query(
        c,
        "SELECT time, client, username, realm, serial, action, result, reason FROM audit \
         ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(audit_from_row)
    .collect::<Result<Vec<_>, StoreError>>()?;
    let (backoff, grace) = backoff_and_grace(c).await?;
    Ok(Dump {
        tokens,
        challenges,
        backoff,
        grace,
        audit,
    })
}

/// Writes a dump inside the caller's transaction (see [`super::super::Store::import`]).
pub(super) async fn import(
    c: &impl GenericClient,
    key: &SealKey,
    name: &str,
    dump: &Dump,
    replace: bool,
) -> Result<(), StoreError> {
    let row = query(
        c,
        "SELECT (SELECT COUNT(*) FROM tokens), (SELECT COUNT(*) FROM challenges), \
         (SELECT COUNT(*) FROM login_failures), (SELECT COUNT(*) FROM grace), \
         (SELECT COUNT(*) FROM audit)",
        &[],
    )
    .await?;
    let held: [i64; 5] = match row.first() {
        Some(r) => [
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
        ],
        None => [0; 5],
    };
    if held != [0; 5] {
        if !replace {
            return Err(StoreError::NotEmpty(super::super::held_rows(held)));
        }
        c.batch_execute(
            "DELETE FROM challenges; DELETE FROM tokens; DELETE FROM audit; \
             DELETE FROM login_failures; DELETE FROM answered; DELETE FROM grace;",
        )
        .await?;
    }
    key_file::claim_key(c, key, name).await?;
    import_tokens(c, key, &dump.tokens).await?;
    let insert = c
        .prepare_cached(
            "INSERT INTO challenges \
             (state, serial, username, realm, counter, created_at, expires_at, open, delivered) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    for ch in &dump.challenges {
        c.execute(
            &insert,
            &[
                &ch.state,
                &ch.serial,
                &ch.user,
                &ch.realm,
                &to_i64(ch.counter),
                &ch.created_at.as_ms(),
                &ch.expires_at.as_ms(),
                &ch.status.is_open(),
                &ch.status.was_delivered(),
            ],
        )
        .await?;
    }
    import_backoff_and_grace(c, dump).await?;
    let insert = c.prepare_cached(INSERT_AUDIT).await?;
    for entry in &dump.audit {
        c.execute(&insert, &audit_params(entry, &entry.time.as_secs()))
            .await?;
    }
    Ok(())
}

/// Every token, its seed as sealed.
async fn sealed_tokens(c: &impl GenericClient) -> Result<Vec<SealedToken>, StoreError> {
    let rows = query(
        c,
        concat!("SELECT ", token_columns!(), " FROM tokens ORDER BY serial"),
        &[],
    )
    .await?;
    let mut tokens = Vec::with_capacity(rows.len());
    for r in &rows {
        tokens.push(SealedToken {
            sealed: r.try_get(4)?,
            token: token_with_seed(r, Secret::new(Vec::new()))?,
        });
    }
    Ok(tokens)
}

/// The identities' back-off counts and re-authentication graces.
async fn backoff_and_grace(
    c: &impl GenericClient,
) -> Result<(Vec<BackoffRow>, Vec<GraceRow>), StoreError> {
    let backoff = query(
        c,
        "SELECT username, realm, origin, failures, last_failure_ms FROM login_failures \
         ORDER BY username, realm, origin",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(BackoffRow {
            user: r.try_get(0)?,
            realm: r.try_get(1)?,
            origin: r.try_get(2)?,
            backoff: Backoff {
                failures: to_u32(r.try_get(3)?),
                last_failure: ms_column(r, 4)?,
            },
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let grace = query(
        c,
        "SELECT username, realm, client, station, until_ms FROM grace \
         ORDER BY username, realm, client, station",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(GraceRow {
            user: r.try_get(0)?,
            realm: r.try_get(1)?,
            client: r.try_get(2)?,
            station: r.try_get(3)?,
            until: ms_column(r, 4)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((backoff, grace))
}

/// Inserts `tokens` as sealed, each checked to open under `key`.
async fn import_tokens(
    c: &impl GenericClient,
    key: &SealKey,
    tokens: &[SealedToken],
) -> Result<(), StoreError> {
    let insert = c.prepare_cached(INSERT_TOKEN).await?;
    for SealedToken { token: t, sealed } in tokens {
        // Nothing is re-sealed: the seed must open under this store's key as it is.
        key.open(sealed, &t.serial)?;
        insert_token_row(c, &insert, t, sealed).await?;
    }
    Ok(())
}

/// Inserts the identities' back-off counts and re-authentication graces.
async fn import_backoff_and_grace(c: &impl GenericClient, dump: &Dump) -> Result<(), StoreError> {
    let insert = c
        .prepare_cached(
            "INSERT INTO login_failures (username, realm, origin, failures, last_failure_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    for row in &dump.backoff {
        let failures = to_i32(row.backoff.failures);
        c.execute(
            &insert,
            &[
                &row.user,
                &row.realm,
                &row.origin,
                &failures,
                &row.backoff.last_failure.as_ms(),
            ],
        )
        .await?;
    }
    let insert = c
        .prepare_cached(
            "INSERT INTO grace (username, realm, client, station, until_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    for g in &dump.grace {
        c.execute(
            &insert,
            &[&g.user, &g.realm, &g.client, &g.station, &g.until.as_ms()],
        )
        .await?;
    }
    Ok(())
}
