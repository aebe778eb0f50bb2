//! The back-off counts on SQLite: one more failed first factor of an identity, on its origin's
//! row and its row over all origins, in one upsert run by the store thread as a write nobody
//! waits for.

use rusqlite::{Connection, params};

use super::super::StoreError;
use super::{InMs, execute_cached};
use crate::time::UnixMs;

/// One more failed first factor of an identity from `origin`, on its origin's row and on its
/// row over all origins (the empty origin), in one statement; failures older than
/// `forget_ms` start over: `decide::failures_after` in SQL, without a read before the write.
pub(super) fn record_login_failure(
    conn: &Connection,
    user: &str,
    realm: &str,
    origin: &str,
    now: UnixMs,
    forget_ms: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO login_failures (user, realm, origin, failures, last_failure_ms) \
         VALUES (?1, ?2, '', 1, ?3), (?1, ?2, ?5, 1, ?3) \
         ON CONFLICT (user, realm, origin) DO UPDATE SET \
           failures = CASE WHEN ?3 - last_failure_ms >= ?4 THEN 1 ELSE failures + 1 END, \
           last_failure_ms = MAX(last_failure_ms, ?3)",
        params![user, realm, InMs(now), forget_ms, origin],
    )?;
    Ok(())
}
