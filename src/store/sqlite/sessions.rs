//! Accounting sessions on SQLite (issue 30): a record read, merged by
//! [`sessions::merge`](super::super::sessions::merge) and written in one savepoint on the
//! writer thread — which is also what makes the per-client bound exact: no other write runs
//! between the count and the insert. The trait's calls in `store.rs` come here.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::super::StoreError;
use super::super::sessions::{
    self, AccountingRecord, CAUSE_NAS_RESTARTED, Identity, Recorded, Session, SessionQuery, Usage,
};
use super::rows::{InMs, to_i64, to_u64};
use super::{SqliteStore, execute_cached};
use crate::time::UnixMs;

/// The `sessions` columns in the order [`session_from_row`] reads them.
const COLUMNS: &str = "client, nas, session_id, user, calling_station, framed_ip, started_ms, \
                       interim_ms, stopped_ms, cause, input_octets, output_octets, \
                       input_packets, output_packets, updated_ms, identity, realm, nas_address";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let ms = |i: usize| -> rusqlite::Result<Option<UnixMs>> {
        Ok(row.get::<_, Option<InMs>>(i)?.map(|t| t.0))
    };
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(to_u64(row.get::<_, i64>(i)?)) };
    Ok(Session {
        client: row.get(0)?,
        nas: row.get(1)?,
        session_id: row.get(2)?,
        user: row.get(3)?,
        calling_station: row.get(4)?,
        framed_ip: row.get(5)?,
        started: ms(6)?,
        interim: ms(7)?,
        stopped: ms(8)?,
        cause: row.get(9)?,
        usage: Usage {
            input_octets: count(10)?,
            output_octets: count(11)?,
            input_packets: count(12)?,
            output_packets: count(13)?,
        },
        updated: row.get::<_, InMs>(14)?.0,
        identity: match (row.get::<_, Option<String>>(15)?, row.get(16)?) {
            (Some(user), Some(realm)) => Some(Identity { user, realm }),
            _ => None,
        },
        nas_address: row.get(17)?,
    })
}

fn record(
    conn: &Connection,
    record: &AccountingRecord,
    max_open: u64,
) -> Result<Recorded, StoreError> {
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE client = ?1 AND nas = ?2 AND session_id = ?3"
        ))?
        .query_row(
            params![record.client, record.nas, record.session_id],
            session_from_row,
        )
        .optional()?;
    let Some(row) = sessions::merge(existing.as_ref(), record) else {
        return Ok(Recorded::Unchanged);
    };
    if sessions::opens(existing.as_ref(), &row) {
        let open: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM sessions WHERE client = ?1 AND stopped_ms IS NULL",
            )?
            .query_row(params![record.client], |r| r.get(0))?;
        if to_u64(open) >= max_open {
            return Ok(Recorded::LimitReached);
        }
    }
    execute_cached(
        conn,
        &format!(
            "INSERT OR REPLACE INTO sessions ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        params![
            row.client,
            row.nas,
            row.session_id,
            row.user,
            row.calling_station,
            row.framed_ip,
            row.started.map(InMs),
            row.interim.map(InMs),
            row.stopped.map(InMs),
            row.cause,
            to_i64(row.usage.input_octets),
            to_i64(row.usage.output_octets),
            to_i64(row.usage.input_packets),
            to_i64(row.usage.output_packets),
            InMs(row.updated),
            row.identity.as_ref().map(|i| &i.user),
            row.identity.as_ref().map(|i| &i.realm),
            row.nas_address,
        ],
    )?;
    Ok(Recorded::Stored)
}

impl SqliteStore {
    pub(super) async fn record_accounting_sqlite(
        &self,
        rec: AccountingRecord,
        max_open: u64,
    ) -> Result<Recorded, StoreError> {
        self.call(move |conn, _| record(conn, &rec, max_open)).await
    }

    pub(super) async fn close_nas_sessions_sqlite(
        &self,
        client: &str,
        nas: &str,
        at: UnixMs,
    ) -> Result<usize, StoreError> {
        let (client, nas) = (client.to_string(), nas.to_string());
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE sessions SET stopped_ms = ?3, cause = ?4, updated_ms = MAX(updated_ms, ?3) \
                 WHERE client = ?1 AND nas = ?2 AND stopped_ms IS NULL",
                params![client, nas, InMs(at), CAUSE_NAS_RESTARTED],
            )?)
        })
        .await
    }

    pub(super) async fn sessions_sqlite(
        &self,
        query: &SessionQuery,
    ) -> Result<Vec<Session>, StoreError> {
        let query = query.clone();
        self.read_large(move |conn, _| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM sessions WHERE (?1 IS NULL OR user = ?1) \
                 AND (?2 = 0 OR stopped_ms IS NULL) \
                 AND (?4 IS NULL OR (identity = ?4 AND realm = ?5) \
                      OR (identity IS NULL AND user = ?4)) \
                 ORDER BY COALESCE(started_ms, updated_ms) DESC, session_id LIMIT ?3"
            ))?;
            let (identity, realm) = query
                .identity
                .as_ref()
                .map(|i| (i.user.as_str(), i.realm.as_str()))
                .unzip();
            let rows = stmt.query_map(
                params![query.user, query.open_only, query.limit, identity, realm],
                session_from_row,
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(super) async fn open_sessions_sqlite(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read_large(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT client, COUNT(*) FROM sessions WHERE stopped_ms IS NULL \
                 GROUP BY client ORDER BY client",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, to_u64(r.get::<_, i64>(1)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(super) async fn purge_sessions_sqlite(
        &self,
        before: UnixMs,
        limit: u32,
    ) -> Result<usize, StoreError> {
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM sessions WHERE (client, nas, session_id) IN \
                 (SELECT client, nas, session_id FROM sessions WHERE updated_ms < ?1 \
                  ORDER BY updated_ms LIMIT ?2)",
                params![InMs(before), limit],
            )?)
        })
        .await
    }
}
