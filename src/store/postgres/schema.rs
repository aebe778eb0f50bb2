//! The PostgreSQL schema and its migrations (the cluster's one seed key: `key_file.rs`).
//!
//! Migrations are versioned (`meta.schema_version`), applied at start one version per
//! transaction, under an advisory lock so two nodes starting together do not both apply
//! one; a database written by a newer tessera is refused. The PostgreSQL schema has its own
//! numbering: version 1 holds everything SQLite's versions 1–4 do.

use deadpool_postgres::GenericClient;

use super::super::StoreError;

/// Serialises migrations and the key check between nodes (`pg_advisory_xact_lock`).
pub(super) const SCHEMA_LOCK: i64 = 0x7465_7373_6572_6101;

/// Version 1: tokens (one autoenrolled token per identity, as a constraint), challenges
/// (pending until delivered; times in ms), the per-identity back-off, the audit, facts about
/// the store (`meta`), and the requests that consumed an OTP (`answered`: a digest of the
/// request, the token, when), so a retransmit to another node gets the same answer; and the
/// re-authentication grace (`grace`).
const SCHEMA_V1: &str = "
CREATE TABLE tokens (
    serial       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    username     TEXT NOT NULL,
    realm        TEXT NOT NULL,
    seed         BYTEA NOT NULL,
    counter      BIGINT NOT NULL DEFAULT 0,
    digits       INTEGER NOT NULL DEFAULT 6,
    pin_hash     TEXT,
    phone        TEXT,
    email        TEXT,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    fail_count   INTEGER NOT NULL DEFAULT 0,
    max_fail     INTEGER NOT NULL DEFAULT 10,
    last_fail_at BIGINT,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    owner_id     TEXT,
    autoenrolled BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX tokens_by_user ON tokens (username, realm);
CREATE UNIQUE INDEX one_autoenrolled_token ON tokens (username, realm) WHERE autoenrolled;
CREATE TABLE challenges (
    state      TEXT NOT NULL,
    serial     TEXT NOT NULL REFERENCES tokens (serial) ON DELETE CASCADE,
    username   TEXT NOT NULL,
    realm      TEXT NOT NULL,
    counter    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    open       BOOLEAN NOT NULL DEFAULT TRUE,
    delivered  BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (state, serial)
);
CREATE INDEX challenges_by_user ON challenges (username, realm, created_at);
CREATE INDEX challenges_by_serial ON challenges (serial, open);
CREATE TABLE login_failures (
    username        TEXT NOT NULL,
    realm           TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    PRIMARY KEY (username, realm)
);
CREATE INDEX login_failures_by_time ON login_failures (last_failure_ms);
CREATE TABLE audit (
    id     BIGSERIAL PRIMARY KEY,
    time   BIGINT NOT NULL,
    client TEXT NOT NULL,
    username TEXT NOT NULL,
    realm  TEXT NOT NULL,
    serial TEXT,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (time);
CREATE TABLE answered (
    digest BYTEA PRIMARY KEY,
    serial TEXT NOT NULL,
    at_ms  BIGINT NOT NULL
);
CREATE INDEX answered_by_time ON answered (at_ms);
CREATE TABLE grace (
    username TEXT NOT NULL,
    realm    TEXT NOT NULL,
    client   TEXT NOT NULL,
    station  TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (username, realm, client, station)
);
";

/// Version 2: the digest of the request that started a challenge, so that the same request
/// resent to another node gets that challenge back and nothing is sent, even without a
/// blocking timeout.
const SCHEMA_V2: &str = "
ALTER TABLE challenges ADD COLUMN request_digest BYTEA;
";

/// Version 3: `answered` found by time (its purge) through a BRIN index. Its rows arrive in
/// time order, and a B-tree cost every login an index insert and a WAL record; a BRIN index
/// costs an insert nothing until vacuum summarises the new pages (a purge reads those pages
/// whole, a few at the end of the table).
const SCHEMA_V3: &str = "
DROP INDEX answered_by_time;
CREATE INDEX answered_by_time ON answered USING brin (at_ms);
";

/// Version 4 (issue 23): the back-off counts per identity *and* origin (where the attempt
/// came from); the identity's count over all origins is the row with the empty origin, which
/// is what every existing row was.
const SCHEMA_V4: &str = "
ALTER TABLE login_failures ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE login_failures DROP CONSTRAINT login_failures_pkey;
ALTER TABLE login_failures ADD PRIMARY KEY (username, realm, origin);
";

/// Version 5 (issue 25): a token's last use (its newest accepted login, in seconds) for the
/// helpdesk's page, written by the statement that consumes the counter or closes the
/// challenge. Not an index on the audit's serial: every login writes an audit row, and that
/// index cost each one another B-tree insert. And whether a token waits for its first code (a
/// self-service enrolment, inactive until confirmed): only such a token can be confirmed.
const SCHEMA_V5: &str = "
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_used BIGINT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS pending BOOLEAN NOT NULL DEFAULT false;
";

/// Version 6 (issue 30): accounting sessions, one row per client entry, NAS and
/// Acct-Session-Id (see `store::sessions`); times in milliseconds.
const SCHEMA_V6: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    client          TEXT NOT NULL,
    nas             TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    username        TEXT NOT NULL,
    calling_station TEXT,
    framed_ip       TEXT,
    started_ms      BIGINT,
    interim_ms      BIGINT,
    stopped_ms      BIGINT,
    cause           TEXT,
    input_octets    BIGINT NOT NULL,
    output_octets   BIGINT NOT NULL,
    input_packets   BIGINT NOT NULL,
    output_packets  BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (client, nas, session_id)
);
CREATE INDEX IF NOT EXISTS sessions_open ON sessions (client, nas) WHERE stopped_ms IS NULL;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username);
CREATE INDEX IF NOT EXISTS sessions_by_time ON sessions (updated_ms);
";

/// Version 7 (issue 30, disconnect on revoke): a session's directory identity and realm (the
/// User-Name resolved as a login resolves it, when the directory answered) and the address
/// its records came from (where a Disconnect-Request goes). Sessions recorded before have
/// none: a revoke finds those by their user name.
const SCHEMA_V7: &str = "
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS identity TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS realm TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS nas_address TEXT;
CREATE INDEX IF NOT EXISTS sessions_by_identity ON sessions (identity, realm) WHERE stopped_ms IS NULL;
";

/// Version 8 (issue 29): hardware tokens — a HOTP/TOTP token's hash algorithm and its own
/// TOTP time step (NULL: `[auth] totp_step`), a YubiKey's public id (one token per public
/// id; its private id travels sealed with its AES key in `seed`). An imported token nobody
/// holds yet has the empty username and realm.
const SCHEMA_V8: &str = "
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS algorithm TEXT NOT NULL DEFAULT 'sha1';
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS time_step INTEGER;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS public_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_by_public_id ON tokens (public_id)
    WHERE public_id IS NOT NULL;
";

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = 8;

/// Brings the schema up to [`SCHEMA_VERSION`]; refuses a newer one.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )
    .await?;
    let version = schema_version(&tx).await?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this tessera's \
             ({SCHEMA_VERSION}): upgrade tessera"
        )));
    }
    tx.commit().await?;
    for (to, sql) in [
        (1, SCHEMA_V1),
        (2, SCHEMA_V2),
        (3, SCHEMA_V3),
        (4, SCHEMA_V4),
        (5, SCHEMA_V5),
        (6, SCHEMA_V6),
        (7, SCHEMA_V7),
        (8, SCHEMA_V8),
    ] {
        if version < to {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .await?;
            // Another node may have applied it while we waited for the lock.
            if schema_version(&tx).await? >= to {
                continue;
            }
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&to.to_string()],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = to, "PostgreSQL schema migrated");
        }
    }
    Ok(())
}

/// The recorded schema version (0 for a new database).
pub(super) async fn schema_version(client: &impl GenericClient) -> Result<i64, StoreError> {
    let has_meta: bool = client
        .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    if !has_meta {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT value FROM meta WHERE name = 'schema_version'", &[])
        .await?;
    match row {
        None => Ok(0),
        Some(row) => {
            let text: String = row.try_get(0)?;
            text.parse()
                .map_err(|_| StoreError::Corrupt(format!("schema_version {text:?}")))
        }
    }
}
