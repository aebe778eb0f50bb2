//! The database file and its schema: created private (0600 in a 0700 directory), opened with
//! the settings the store relies on, and brought up to [`SCHEMA_VERSION`] one version per
//! transaction; a database written by a newer tessera is refused.

use std::path::Path;

use rusqlite::Connection;

use super::super::StoreError;

/// The schema, version 1. New versions append migrations; `PRAGMA user_version` says which ran.
pub(super) const SCHEMA_V1: &str = "
CREATE TABLE tokens (
    serial       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    user         TEXT NOT NULL,
    realm        TEXT NOT NULL,
    seed         BLOB NOT NULL,
    counter      INTEGER NOT NULL DEFAULT 0,
    digits       INTEGER NOT NULL DEFAULT 6,
    pin_hash     TEXT,
    phone        TEXT,
    email        TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    fail_count   INTEGER NOT NULL DEFAULT 0,
    max_fail     INTEGER NOT NULL DEFAULT 10,
    last_fail_at INTEGER,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX tokens_by_user ON tokens(user, realm);
CREATE TABLE challenges (
    state      TEXT NOT NULL,
    serial     TEXT NOT NULL REFERENCES tokens(serial) ON DELETE CASCADE,
    user       TEXT NOT NULL,
    realm      TEXT NOT NULL,
    counter    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    open       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (state, serial)
);
CREATE INDEX challenges_by_user ON challenges(user, realm, created_at);
CREATE INDEX challenges_by_serial ON challenges(serial, open);
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    time   INTEGER NOT NULL,
    client TEXT NOT NULL,
    user   TEXT NOT NULL,
    realm  TEXT NOT NULL,
    serial TEXT,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit(time);
";

/// Version 2: facts about the store itself — the health probe's last write, the fingerprint
/// of the key that sealed its seeds.
pub(super) const SCHEMA_V2: &str = "
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Version 3 (issue 12): the identity's owner id and the autoenrolled flag on tokens (at most
/// one autoenrolled token per user, as a constraint), pending challenges and challenge times
/// in milliseconds, and the per-identity back-off. Of several autoenrolled tokens of one user
/// (concurrent first logins before this version) the oldest keeps the flag; `tessera token
/// identities` lists the others.
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE tokens ADD COLUMN owner_id TEXT;
ALTER TABLE tokens ADD COLUMN autoenrolled INTEGER NOT NULL DEFAULT 0;
UPDATE tokens SET autoenrolled = 1 WHERE rowid IN (
    SELECT MIN(rowid) FROM tokens WHERE description LIKE 'auto enrolled for %' GROUP BY user, realm
);
CREATE UNIQUE INDEX one_autoenrolled_token ON tokens(user, realm) WHERE autoenrolled = 1;
ALTER TABLE challenges ADD COLUMN delivered INTEGER NOT NULL DEFAULT 1;
UPDATE challenges SET created_at = created_at * 1000, expires_at = expires_at * 1000;
CREATE TABLE login_failures (
    user            TEXT NOT NULL,
    realm           TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    PRIMARY KEY (user, realm)
) WITHOUT ROWID;
CREATE INDEX login_failures_by_time ON login_failures(last_failure_ms);
";

/// Version 4 (issue 17): the re-authentication grace, one row per user, realm, NAS and
/// Calling-Station-Id.
pub(super) const SCHEMA_V4: &str = "
CREATE TABLE grace (
    user     TEXT NOT NULL,
    realm    TEXT NOT NULL,
    client   TEXT NOT NULL,
    station  TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (user, realm, client, station)
) WITHOUT ROWID;
";

/// Version 5 (issue 15): the digest of the request that started a challenge, so that the same
/// request resent from another port gets that challenge back even without a blocking timeout.
pub(super) const SCHEMA_V5: &str = "
ALTER TABLE challenges ADD COLUMN request_digest BLOB;
";

/// Version 6 (issue 23): the back-off counts per identity *and* origin (where the attempt
/// came from); the identity's count over all origins is the row with the empty origin, which
/// is what every existing row was.
pub(super) const SCHEMA_V6: &str = "
CREATE TABLE login_failures_v6 (
    user            TEXT NOT NULL,
    realm           TEXT NOT NULL,
    origin          TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    PRIMARY KEY (user, realm, origin)
) WITHOUT ROWID;
INSERT INTO login_failures_v6 (user, realm, origin, failures, last_failure_ms)
    SELECT user, realm, '', failures, last_failure_ms FROM login_failures;
DROP TABLE login_failures;
ALTER TABLE login_failures_v6 RENAME TO login_failures;
CREATE INDEX login_failures_by_time ON login_failures(last_failure_ms);
";

/// Version 7 (issue 25): a token's last use (its newest accepted login, in seconds) for the
/// helpdesk's page, written by the statement that consumes the counter or closes the
/// challenge. Not an index on the audit's serial: every login writes an audit row, and that
/// index cost each one another B-tree insert. And whether a token waits for its first code (a
/// self-service enrolment, inactive until confirmed): only such a token can be confirmed.
pub(super) const SCHEMA_V7: &str = "
ALTER TABLE tokens ADD COLUMN last_used INTEGER;
ALTER TABLE tokens ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
";

/// Version 8 (issue 30): accounting sessions, one row per client entry, NAS and
/// Acct-Session-Id (see `store::sessions`); times in milliseconds.
pub(super) const SCHEMA_V8: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    client          TEXT NOT NULL,
    nas             TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    user            TEXT NOT NULL,
    calling_station TEXT,
    framed_ip       TEXT,
    started_ms      INTEGER,
    interim_ms      INTEGER,
    stopped_ms      INTEGER,
    cause           TEXT,
    input_octets    INTEGER NOT NULL,
    output_octets   INTEGER NOT NULL,
    input_packets   INTEGER NOT NULL,
    output_packets  INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    PRIMARY KEY (client, nas, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_open ON sessions(client, nas) WHERE stopped_ms IS NULL;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user);
CREATE INDEX IF NOT EXISTS sessions_by_time ON sessions(updated_ms);
";

/// Version 9 (issue 30, disconnect on revoke): a session's directory identity and realm (the
/// User-Name resolved as a login resolves it, when the directory answered) and the address
/// its records came from (where a Disconnect-Request goes). Sessions recorded before have
/// none: a revoke finds those by their user name.
pub(super) const SCHEMA_V9: &str = "
ALTER TABLE sessions ADD COLUMN identity TEXT;
ALTER TABLE sessions ADD COLUMN realm TEXT;
ALTER TABLE sessions ADD COLUMN nas_address TEXT;
CREATE INDEX IF NOT EXISTS sessions_by_identity ON sessions(identity, realm) WHERE stopped_ms IS NULL;
";

/// Version 10 (issue 29): hardware tokens — a HOTP/TOTP token's hash algorithm and its own
/// TOTP time step (NULL: `[auth] totp_step`), a YubiKey's public id (one token per public
/// id; its private id travels sealed with its AES key in `seed`). An imported token nobody
/// holds yet has the empty user and realm.
pub(super) const SCHEMA_V10: &str = "
ALTER TABLE tokens ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'sha1';
ALTER TABLE tokens ADD COLUMN time_step INTEGER;
ALTER TABLE tokens ADD COLUMN public_id TEXT;
CREATE UNIQUE INDEX tokens_by_public_id ON tokens(public_id) WHERE public_id IS NOT NULL;
";

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = 10;

/// Creates the database file (mode 0600) and its directory (0700) when they do not exist. It
/// holds PIN hashes and the audit trail: nobody but tessera's user reads it. SQLite creates
/// the `-wal` and `-shm` files with the database file's mode, so they are 0600 too.
pub(super) fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |what: &Path, e: std::io::Error| StoreError::Io {
        what: format!("cannot create {}", what.display()),
        cause: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed(dir, e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(path, e)),
    }
}

/// Opens the database with the settings the store relies on and brings its schema up to date.
pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite did not switch to WAL mode");
    }
    // mmap_size 0: the database file is read with system calls, never mapped, so a file that
    // becomes unwritable is an error SQLite reports, not a SIGBUS (the WAL index is mapped
    // whatever this says: `files.rs` guards it).
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA mmap_size=0;")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // The query planner stability guarantee: a statement keeps the plan it was prepared
    // with. Without it, SQLite (built with STAT4, as rusqlite's bundled one is) marks
    // statements whose plan might depend on a bound value and re-parses and re-plans
    // them on every new binding: that was a third of the store thread's time.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // Every hot statement stays prepared (the default cache holds 16; we have ~25).
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Brings the schema up to [`SCHEMA_VERSION`], one version per transaction; refuses a
/// database written by a newer tessera.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this tessera's \
             ({SCHEMA_VERSION}): upgrade tessera"
        )));
    }
    for (to, sql) in [
        (1, SCHEMA_V1),
        (2, SCHEMA_V2),
        (3, SCHEMA_V3),
        (4, SCHEMA_V4),
        (5, SCHEMA_V5),
        (6, SCHEMA_V6),
        (7, SCHEMA_V7),
        (8, SCHEMA_V8),
        (9, SCHEMA_V9),
        (10, SCHEMA_V10),
    ] {
        if version < to {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {to}"))?;
            tx.commit()?;
        }
    }
    Ok(())
}
