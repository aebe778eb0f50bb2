//! Accounting sessions on PostgreSQL (issue 30): a record read, merged by
//! [`sessions::merge`](super::super::sessions::merge) and written in one transaction under
//! the client entry's advisory lock, so that two nodes receiving records of one NAS (a
//! retransmit that failed over) neither both open a session nor both pass the per-client
//! bound. The trait's calls in `store.rs` come here.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::super::StoreError;
use super::super::sessions::{
    self, AccountingRecord, CAUSE_NAS_RESTARTED, Identity, Recorded, Session, SessionQuery, Usage,
};
use super::challenges::identity_lock;
use super::rows::{to_i64, to_u64};
use super::{PgStore, execute, query};
use crate::time::UnixMs;

/// The `sessions` columns in the order [`session_from_row`] reads them.
macro_rules! session_columns {
    () => {
        "client, nas, session_id, username, calling_station, framed_ip, started_ms, \
         interim_ms, stopped_ms, cause, input_octets, output_octets, input_packets, \
         output_packets, updated_ms, identity, realm, nas_address"
    };
}

fn session_from_row(row: &Row) -> Result<Session, StoreError> {
    let ms = |i: usize| -> Result<Option<UnixMs>, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<i64>>(i)?.map(UnixMs::from_ms))
    };
    let count =
        |i: usize| -> Result<u64, tokio_postgres::Error> { Ok(to_u64(row.try_get::<_, i64>(i)?)) };
    Ok(Session {
        client: row.try_get(0)?,
        nas: row.try_get(1)?,
        session_id: row.try_get(2)?,
        user: row.try_get(3)?,
        calling_station: row.try_get(4)?,
        framed_ip: row.try_get(5)?,
        started: ms(6)?,
        interim: ms(7)?,
        stopped: ms(8)?,
        cause: row.try_get(9)?,
        usage: Usage {
            input_octets: count(10)?,
            output_octets: count(11)?,
            input_packets: count(12)?,
            output_packets: count(13)?,
        },
        updated: UnixMs::from_ms(row.try_get(14)?),
        identity: match (row.try_get::<_, Option<String>>(15)?, row.try_get(16)?) {
            (Some(user), Some(realm)) => Some(Identity { user, realm }),
            _ => None,
        },
        nas_address: row.try_get(17)?,
    })
}

/// The advisory lock of a client entry's sessions (a name no identity can have: normalized
/// user names hold no control character).
fn sessions_lock(client: &str) -> i64 {
    identity_lock("\0sessions", client)
}

async fn record(
    c: &impl GenericClient,
    record: &AccountingRecord,
    max_open: u64,
) -> Result<Recorded, StoreError> {
    execute(
        c,
        "SELECT pg_advisory_xact_lock($1)",
        &[&sessions_lock(&record.client)],
    )
    .await?;
    let rows = query(
        c,
        concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE client = $1 AND nas = $2 AND session_id = $3"
        ),
        &[&record.client, &record.nas, &record.session_id],
    )
    .await?;
    let existing = rows.first().map(session_from_row).transpose()?;
    let Some(row) = sessions::merge(existing.as_ref(), record) else {
        return Ok(Recorded::Unchanged);
    };
    if sessions::opens(existing.as_ref(), &row) {
        let open = query(
            c,
            "SELECT COUNT(*) FROM sessions WHERE client = $1 AND stopped_ms IS NULL",
            &[&record.client],
        )
        .await?;
        let open: i64 = open.first().map_or(Ok(0), |r| r.try_get(0))?;
        if to_u64(open) >= max_open {
            return Ok(Recorded::LimitReached);
        }
    }
    let ms = |t: Option<UnixMs>| t.map(UnixMs::as_ms);
    execute(
        c,
        concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) \
             ON CONFLICT (client, nas, session_id) DO UPDATE SET \
             username = excluded.username, calling_station = excluded.calling_station, \
             framed_ip = excluded.framed_ip, started_ms = excluded.started_ms, \
             interim_ms = excluded.interim_ms, stopped_ms = excluded.stopped_ms, \
             cause = excluded.cause, input_octets = excluded.input_octets, \
             output_octets = excluded.output_octets, input_packets = excluded.input_packets, \
             output_packets = excluded.output_packets, updated_ms = excluded.updated_ms, \
             identity = excluded.identity, realm = excluded.realm, \
             nas_address = excluded.nas_address"
        ),
        &[
            &row.client,
            &row.nas,
            &row.session_id,
            &row.user,
            &row.calling_station,
            &row.framed_ip,
            &ms(row.started),
            &ms(row.interim),
            &ms(row.stopped),
            &row.cause,
            &to_i64(row.usage.input_octets),
            &to_i64(row.usage.output_octets),
            &to_i64(row.usage.input_packets),
            &to_i64(row.usage.output_packets),
            &row.updated.as_ms(),
            &row.identity.as_ref().map(|i| &i.user),
            &row.identity.as_ref().map(|i| &i.realm),
            &row.nas_address,
        ],
    )
    .await?;
    Ok(Recorded::Stored)
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl PgStore {
    pub(super) async fn record_accounting_pg(
        &self,
        rec: AccountingRecord,
        max_open: u64,
    ) -> Result<Recorded, StoreError> {
        self.timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let recorded = record(&tx, &rec, max_open).await?;
            tx.commit().await?;
            Ok(recorded)
        })
        .await
    }

    pub(super) async fn close_nas_sessions_pg(
        &self,
        client: &str,
        nas: &str,
        at: UnixMs,
    ) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "UPDATE sessions SET stopped_ms = $3, cause = $4, \
             updated_ms = GREATEST(updated_ms, $3) \
             WHERE client = $1 AND nas = $2 AND stopped_ms IS NULL",
            &[&client, &nas, &at.as_ms(), &CAUSE_NAS_RESTARTED],
        )
        .await?;
        Ok(count(n))
    }

    pub(super) async fn sessions_pg(
        &self,
        wanted: &SessionQuery,
    ) -> Result<Vec<Session>, StoreError> {
        let c = self.client().await?;
        let (identity, realm) = wanted
            .identity
            .as_ref()
            .map(|i| (i.user.clone(), i.realm.clone()))
            .unzip();
        let rows = query(
            &c,
            concat!(
                "SELECT ",
                session_columns!(),
                " FROM sessions WHERE ($1::text IS NULL OR username = $1) \
                 AND (NOT $2 OR stopped_ms IS NULL) \
                 AND ($4::text IS NULL OR (identity = $4 AND realm = $5) \
                      OR (identity IS NULL AND username = $4)) \
                 ORDER BY COALESCE(started_ms, updated_ms) DESC, session_id LIMIT $3"
            ),
            &[
                &wanted.user,
                &wanted.open_only,
                &i64::from(wanted.limit),
                &identity,
                &realm,
            ],
        )
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    pub(super) async fn open_sessions_pg(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT client, COUNT(*) FROM sessions WHERE stopped_ms IS NULL \
             GROUP BY client ORDER BY client",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, to_u64(r.try_get(1)?))))
            .collect()
    }

    pub(super) async fn purge_sessions_pg(
        &self,
        before: UnixMs,
        limit: u32,
    ) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM sessions WHERE (client, nas, session_id) IN \
             (SELECT client, nas, session_id FROM sessions WHERE updated_ms < $1 \
              ORDER BY updated_ms LIMIT $2)",
            &[&before.as_ms(), &i64::from(limit)],
        )
        .await?;
        Ok(count(n))
    }
}
