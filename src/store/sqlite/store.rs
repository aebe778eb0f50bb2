//! [`SqliteStore`]'s calls: every [`Store`] operation as a job for the writer, a read in the
//! request's task, or a write nobody waits for (see `batches.rs` for how each runs). Token
//! rows are in `tokens.rs`, accounting sessions in `sessions.rs`.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, ToSql, params};

use super::super::{AccountingRecord, Recorded, Session, SessionQuery};
use super::super::{
    AuditColumn, AuditEntry, AuditQuery, AuditTerm, Backoff, Backoffs, Challenge, ChallengeRequest,
    ChallengeStart, Dump, RequestMark, Store, StoreError, Token, UserState,
};
use super::rows::{
    CHALLENGE_COLUMNS, InMs, InSeconds, audit_from_row, challenge_from_row, insert_audit,
    ms_column, query_tokens, to_i64,
};
use super::{
    CONSUME_COUNTER, SELECT_TOKENS_OF_USER, Seen, SqliteStore, Work, backoff, challenges, copy,
    execute_cached,
};
use crate::time::UnixMs;

#[async_trait]
impl Store for SqliteStore {
    async fn tokens_of_user(&self, user: &str, realm: &str) -> Result<Vec<Token>, StoreError> {
        self.tokens_of_user_sqlite(user, realm).await
    }

    async fn token(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.token_sqlite(serial).await
    }

    async fn list_tokens(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        self.list_tokens_sqlite(user, realm).await
    }

    async fn insert_token(&self, token: Token) -> Result<(), StoreError> {
        self.insert_token_sqlite(token).await
    }

    async fn insert_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.insert_tokens_sqlite(tokens).await
    }

    async fn replace_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.replace_tokens_sqlite(tokens).await
    }

    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError> {
        self.delete_token_sqlite(serial).await
    }

    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError> {
        self.set_active_sqlite(serial, active).await
    }

    async fn confirm_token(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        self.confirm_token_sqlite(serial, counter).await
    }

    async fn set_description(&self, serial: &str, description: &str) -> Result<bool, StoreError> {
        self.set_description_sqlite(serial, description).await
    }

    async fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        self.set_pin_hash_sqlite(serial, pin_hash).await
    }

    async fn user_state(
        &self,
        user: &str,
        realm: &str,
        backoff_origin: Option<&str>,
    ) -> Result<UserState, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        let origin = backoff_origin.map(str::to_string);
        self.read(move |conn, key| {
            let tokens = query_tokens(conn, key, SELECT_TOKENS_OF_USER, &[&user, &realm])?;
            let Some(origin) = origin else {
                return Ok(UserState {
                    tokens,
                    backoff: Backoffs::default(),
                });
            };
            // Both rows in one statement, on the primary key.
            let mut backoff = Backoffs::default();
            let mut stmt = conn.prepare_cached(
                "SELECT origin = '', failures, last_failure_ms FROM login_failures \
                 WHERE user = ?1 AND realm = ?2 AND origin IN ('', ?3)",
            )?;
            let mut rows = stmt.query(params![user, realm, origin])?;
            while let Some(r) = rows.next()? {
                let row = Some(Backoff {
                    failures: r.get(1)?,
                    last_failure: ms_column(r, 2)?,
                });
                if r.get::<_, bool>(0)? {
                    backoff.identity = row;
                } else {
                    backoff.origin = row;
                }
            }
            Ok(UserState { tokens, backoff })
        })
        .await
    }

    async fn start_challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeStart, StoreError> {
        self.call(move |conn, key| challenges::start_challenge(conn, key, &request))
            .await
    }

    async fn mark_delivered(&self, challenge_state: &str) -> Result<(), StoreError> {
        let state = challenge_state.to_string();
        // Waits for the commit: the Access-Challenge leaves after this, and a challenge the
        // user was told about must survive a crash or restart right after it.
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "UPDATE challenges SET delivered = 1 WHERE state = ?1",
                [&state],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_challenge(&self, challenge_state: &str) -> Result<(), StoreError> {
        let state = challenge_state.to_string();
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM challenges WHERE state = ?1", [&state])?;
            Ok(())
        })
        .await
    }

    async fn challenge(&self, challenge_state: &str) -> Result<Vec<Challenge>, StoreError> {
        let state = challenge_state.to_string();
        self.read(move |conn, _| challenges::challenge_rows(conn, &state))
            .await
    }

    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now: UnixMs,
    ) -> Result<Vec<Challenge>, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE user = ?1 AND realm = ?2 \
                 AND open = 1 AND delivered = 1 AND expires_at >= ?3 ORDER BY created_at DESC"
            ))?;
            let rows = stmt.query_map(params![user, realm, InMs(now)], challenge_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        now: UnixMs,
        // One node: its reply cache answers retransmits; nothing to record.
        _by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        let (state, serial) = (challenge_state.to_string(), serial.to_string());
        self.call(move |conn, _| challenges::close_challenge(conn, &state, &serial, now))
            .await
    }

    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        used_at: Option<UnixMs>,
        _by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let used = to_i64(used);
        self.call_one_statement(move |conn, _| {
            let used_at = used_at.map(InSeconds);
            Ok(execute_cached(conn, CONSUME_COUNTER, params![serial, used, used_at])? > 0)
        })
        .await
    }

    async fn record_failure(&self, serials: &[String], now: UnixMs) -> Result<(), StoreError> {
        let serials = serials.to_vec();
        self.call(move |conn, _| {
            for serial in &serials {
                execute_cached(conn,
                    "UPDATE tokens SET fail_count = fail_count + 1, last_fail_at = ?2 WHERE serial = ?1",
                    params![serial, InSeconds(now)],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn record_login_failure(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
        now: UnixMs,
        forget_ms: i64,
    ) {
        let (user, realm, origin) = (user.to_string(), realm.to_string(), origin.to_string());
        let result = self.detached(
            "back-off failure not recorded",
            Seen::ByNextRead,
            move |conn, _| {
                backoff::record_login_failure(conn, &user, &realm, &origin, now, forget_ms)
            },
        );
        if let Err(error) = result {
            tracing::error!(%error, "back-off failure not recorded");
        }
    }

    async fn clear_login_failures(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
    ) -> Result<(), StoreError> {
        let (user, realm, origin) = (user.to_string(), realm.to_string(), origin.to_string());
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "DELETE FROM login_failures WHERE user = ?1 AND realm = ?2 AND origin = ?3",
                params![user, realm, origin],
            )?;
            Ok(())
        })
        .await
    }

    async fn backoff_rows(
        &self,
        user: &str,
        realm: &str,
    ) -> Result<Vec<(String, Backoff)>, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT origin, failures, last_failure_ms FROM login_failures \
                 WHERE user = ?1 AND realm = ?2 ORDER BY origin",
            )?;
            let rows = stmt.query_map(params![user, realm], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Backoff {
                        failures: r.get(1)?,
                        last_failure: ms_column(r, 2)?,
                    },
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    fn writes_failing(&self) -> bool {
        self.db.writes_failing()
    }

    async fn purge_login_failures(&self, before: UnixMs) -> Result<usize, StoreError> {
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM login_failures WHERE last_failure_ms < ?1",
                [InMs(before)],
            )?)
        })
        .await
    }

    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET fail_count = 0, last_fail_at = NULL WHERE serial = ?1",
                [&serial],
            )? > 0)
        })
        .await
    }

    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until: UnixMs,
    ) -> Result<(), StoreError> {
        let key = [user, realm, client, station].map(str::to_string);
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "INSERT INTO grace (user, realm, client, station, until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user, realm, client, station) DO UPDATE SET until_ms = ?5",
                params![key[0], key[1], key[2], key[3], InMs(until)],
            )?;
            Ok(())
        })
        .await
    }

    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<UnixMs>, StoreError> {
        let key = [user, realm, client, station].map(str::to_string);
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached(
                    "SELECT until_ms FROM grace \
                     WHERE user = ?1 AND realm = ?2 AND client = ?3 AND station = ?4",
                )?
                .query_row(params![key[0], key[1], key[2], key[3]], |r| ms_column(r, 0))
                .optional()?)
        })
        .await
    }

    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.call_one_statement(move |conn, _| {
            execute_cached(
                conn,
                "DELETE FROM grace WHERE user = ?1 AND realm = ?2",
                params![user, realm],
            )?;
            Ok(())
        })
        .await
    }

    async fn end_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<bool, StoreError> {
        let key = [user, realm, client, station].map(str::to_string);
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM grace WHERE user = ?1 AND realm = ?2 AND client = ?3 AND station = ?4",
                params![key[0], key[1], key[2], key[3]],
            )? > 0)
        })
        .await
    }

    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read_large(|conn, _| {
            // Versions before schema 2 marked autoenrolled tokens only in the description.
            let mut stmt = conn.prepare(
                "SELECT serial, user, realm FROM tokens WHERE pin_hash IS NOT NULL \
                 AND (autoenrolled = 1 OR description LIKE 'auto enrolled for %')",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn set_token_owner(&self, serial: &str, user: &str) -> Result<bool, StoreError> {
        self.set_token_owner_sqlite(serial, user).await
    }

    async fn assign_token(
        &self,
        serial: &str,
        user: &str,
        realm: &str,
    ) -> Result<bool, StoreError> {
        self.assign_token_sqlite(serial, user, realm).await
    }

    async fn set_counter(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        self.set_counter_sqlite(serial, counter).await
    }

    async fn audit(&self, entry: AuditEntry) {
        let entry = entry.with_controls_escaped();
        // Nobody waits for an audit row: it is queued and committed with the next batch, and a
        // failure is logged on the store thread.
        let result = self.detached("audit row not written", Seen::Eventually, move |conn, _| {
            insert_audit(conn, &entry)
        });
        if let Err(error) = result {
            tracing::error!(%error, "audit row not written");
        }
    }

    async fn audit_committed(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let entry = entry.with_controls_escaped();
        self.call_one_statement(move |conn, _| insert_audit(conn, &entry))
            .await
    }

    async fn purge_audit(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError> {
        self.call_one_statement(move |conn, _| {
            Ok(execute_cached(
                conn,
                "DELETE FROM audit WHERE id IN \
                 (SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
                params![InSeconds(before), limit],
            )?)
        })
        .await
    }

    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<UnixMs>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let user = user.map(str::to_string);
        self.read_large(move |conn, _| {
            let mut stmt = conn.prepare_cached(
                "SELECT time, client, user, realm, serial, action, result, reason FROM audit \
                 WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR time >= ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![user, since.map(InSeconds), limit], audit_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT time, client, user, realm, serial, action, result, reason FROM audit",
        );
        let mut values: Vec<Box<dyn ToSql + Send>> = vec![];
        for term in query.terms() {
            sql.push_str(if values.is_empty() {
                " WHERE "
            } else {
                " AND "
            });
            let n = values.len() + 1;
            let (condition, value): (String, Box<dyn ToSql + Send>) = match term {
                AuditTerm::Equals(column, text) => {
                    let column = match column {
                        AuditColumn::User => "user",
                        AuditColumn::Realm => "realm",
                        AuditColumn::Serial => "serial",
                        AuditColumn::Result => "result",
                    };
                    (format!("{column} = ?{n}"), Box::new(text.to_string()))
                }
                AuditTerm::ClientContains(text) => (
                    format!("instr(client, ?{n}) > 0"),
                    Box::new(text.to_string()),
                ),
                AuditTerm::Since(time) => (format!("time >= ?{n}"), Box::new(InSeconds(time))),
                AuditTerm::Until(time) => (format!("time < ?{n}"), Box::new(InSeconds(time))),
            };
            sql.push_str(&condition);
            values.push(value);
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len() + 1));
        values.push(Box::new(query.limit));
        self.read_large(move |conn, _| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), audit_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn record_accounting(
        &self,
        record: AccountingRecord,
        max_open: u64,
    ) -> Result<Recorded, StoreError> {
        self.record_accounting_sqlite(record, max_open).await
    }

    async fn close_nas_sessions(
        &self,
        client: &str,
        nas: &str,
        at: UnixMs,
    ) -> Result<usize, StoreError> {
        self.close_nas_sessions_sqlite(client, nas, at).await
    }

    async fn sessions(&self, query: &SessionQuery) -> Result<Vec<Session>, StoreError> {
        self.sessions_sqlite(query).await
    }

    async fn open_sessions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.open_sessions_sqlite().await
    }

    async fn purge_sessions(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError> {
        self.purge_sessions_sqlite(before, limit).await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.db.send(&self.jobs, Work::Checkpoint(tx))?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::Commit)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A write probe, committed like any request's write: a store on a full disk or a
        // read-only file still answers reads while it rejects every login, and health must
        // say so (one row rewritten, one WAL frame per health check).
        self.call_one_statement(|conn, _| {
            execute_cached(
                conn,
                "INSERT INTO meta (name, value) VALUES ('health_probe', strftime('%s', 'now')) \
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [],
            )?;
            Ok(())
        })
        .await
    }

    async fn export(&self) -> Result<Dump, StoreError> {
        self.read_large(|conn, _| copy::export(conn)).await
    }

    async fn import(&self, dump: Dump, replace: bool) -> Result<(), StoreError> {
        self.call(move |conn, key| copy::import(conn, key, &dump, replace))
            .await
    }

    async fn purge_challenges(&self, before: UnixMs) -> Result<usize, StoreError> {
        self.call(move |conn, _| {
            execute_cached(
                conn,
                "DELETE FROM grace WHERE until_ms < ?1",
                [InMs(before)],
            )?;
            Ok(execute_cached(
                conn,
                "DELETE FROM challenges WHERE expires_at < ?1",
                [InMs(before)],
            )?)
        })
        .await
    }
}
