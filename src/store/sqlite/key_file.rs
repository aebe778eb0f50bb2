//! The key file and the store agree: the fingerprint of the key that sealed the store's seeds
//! is recorded with the first sealed seed, and a store holding sealed seeds refuses to open
//! (or pass `check-config`) with a missing key file or another key.

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::super::seal::SealKey;
use super::super::{Store, StoreError};
use super::{SqliteStore, execute_cached};

/// What the database says about a key.
pub(super) enum KeyCheck {
    /// No sealed seed: any key will do.
    NothingSealed,
    /// The recorded fingerprint is this key's.
    Matches,
    /// No fingerprint recorded (a store from before they were), and this key opens a seed.
    Unrecorded,
    /// Another key sealed the seeds: what was recorded, or why it does not match.
    Different(String),
}

/// Whether the database has this table (a read-only check may meet an unmigrated one).
pub(super) fn has_table(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [table],
        |r| r.get(0),
    )?)
}

/// Compares `key` with the key that sealed the seeds in the database.
pub(super) fn check_key(conn: &Connection, key: &SealKey) -> Result<KeyCheck, StoreError> {
    if !has_table(conn, "tokens")? {
        return Ok(KeyCheck::NothingSealed);
    }
    let one: Option<(String, Vec<u8>)> = conn
        .query_row("SELECT serial, seed FROM tokens LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    let Some((serial, seed)) = one else {
        return Ok(KeyCheck::NothingSealed);
    };
    let recorded: Option<String> = if has_table(conn, "meta")? {
        conn.query_row(
            "SELECT value FROM meta WHERE name = 'key_fingerprint'",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?
    } else {
        None
    };
    Ok(match recorded {
        Some(recorded) if recorded == key.fingerprint() => KeyCheck::Matches,
        Some(recorded) => KeyCheck::Different(format!("fingerprint {recorded}")),
        None if key.open(&seed, &serial).is_ok() => KeyCheck::Unrecorded,
        None => KeyCheck::Different(format!(
            "no fingerprint recorded; token {serial} does not open"
        )),
    })
}

/// Records the key that seals the store's seeds (kept while any sealed seed is left).
pub(super) fn record_fingerprint(conn: &Connection, key: &SealKey) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO meta (name, value) VALUES ('key_fingerprint', ?1) \
         ON CONFLICT(name) DO NOTHING",
        [key.fingerprint()],
    )?;
    Ok(())
}

/// Opens the store as configured. The key file is created only when missing *and* the
/// database holds no sealed seed; the store refuses a key file other than the one that sealed
/// its seeds (see [`SqliteStore::open`]).
pub fn open_store(db: &Path, key_file: &Path) -> Result<Arc<dyn Store>, StoreError> {
    let named = |e: StoreError| name_key_file(e, key_file);
    let key = match SealKey::load(key_file)? {
        Some(key) => key,
        None if holds_sealed_seeds(db)? => {
            return Err(StoreError::KeyMissing {
                key_file: key_file.display().to_string(),
                db: db.display().to_string(),
            });
        }
        None => SealKey::create(key_file)?,
    };
    Ok(Arc::new(SqliteStore::open(db, key).map_err(named)?))
}

/// The checks [`open_store`] makes, creating nothing (`check-config`): the key file's mode and
/// format, and, when the database exists, that the key file is there and is the one that
/// sealed its seeds.
pub fn check_store(db: &Path, key_file: &Path) -> Result<(), StoreError> {
    let key = SealKey::load(key_file)?;
    if !db.exists() {
        return Ok(());
    }
    super::files::check_before_open(db).map_err(StoreError::Unavailable)?;
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    match key {
        None if has_sealed_seeds(&conn)? => Err(StoreError::KeyMissing {
            key_file: key_file.display().to_string(),
            db: db.display().to_string(),
        }),
        None => Ok(()),
        Some(key) => match check_key(&conn, &key)? {
            KeyCheck::Different(expected) => Err(StoreError::KeyMismatch {
                key_file: key_file.display().to_string(),
                db: db.display().to_string(),
                found: key.fingerprint().to_string(),
                expected,
            }),
            _ => Ok(()),
        },
    }
}

/// Whether the database holds a sealed seed.
pub(super) fn has_sealed_seeds(conn: &Connection) -> Result<bool, StoreError> {
    if !has_table(conn, "tokens")? {
        return Ok(false);
    }
    Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM tokens)", [], |r| r.get(0))?)
}

/// Whether the database at `db` (if it exists) holds a sealed seed.
pub(super) fn holds_sealed_seeds(db: &Path) -> Result<bool, StoreError> {
    if !db.exists() {
        return Ok(false);
    }
    super::files::check_before_open(db).map_err(StoreError::Unavailable)?;
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    has_sealed_seeds(&conn)
}

/// Fills in the key file's name in a mismatch found by [`SqliteStore::open`].
pub(super) fn name_key_file(error: StoreError, key_file: &Path) -> StoreError {
    match error {
        StoreError::KeyMismatch {
            db,
            found,
            expected,
            ..
        } => StoreError::KeyMismatch {
            key_file: key_file.display().to_string(),
            db,
            found,
            expected,
        },
        other => other,
    }
}
