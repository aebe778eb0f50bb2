//! The [`Store`] trait's calls on PostgreSQL: each one statement or one transaction on a
//! pooled connection; a login's first read and its counter consume go through the batchers
//! (`batches.rs`), audit rows and back-off counts through the write queue (`queued.rs`),
//! challenges through `challenges.rs`, token rows in `tokens.rs`, accounting sessions in
//! `sessions.rs`.

use async_trait::async_trait;

use super::super::{AccountingRecord, Recorded, Session, SessionQuery};
use super::super::{
    AuditEntry, AuditQuery, Backoff, Challenge, ChallengeRequest, ChallengeStart, Dump,
    RequestMark, Store, StoreError, Token, UserState,
};
use super::challenges::{answered_serial, challenge_rows, close_challenge, start_challenge};
use super::rows::{
    INSERT_AUDIT, audit_from_row, audit_params, audit_query, challenge_from_row, ms_column,
};
use super::{CHALLENGE_COLUMNS, PgStore, backoff, batches, copy, execute, query};
use crate::time::UnixMs;

#[async_trait]
impl Store for PgStore {
    async fn tokens_of_user(&self, user: &str, realm: &str) -> Result<Vec<Token>, StoreError> {
        self.tokens_of_user_pg(user, realm).await
    }

    async fn token(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        self.token_pg(serial).await
    }

    async fn list_tokens(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        self.list_tokens_pg(user, realm).await
    }

    async fn insert_token(&self, token: Token) -> Result<(), StoreError> {
        self.insert_token_pg(token).await
    }

    async fn insert_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.insert_tokens_pg(tokens).await
    }

    async fn replace_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.replace_tokens_pg(tokens).await
    }

    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError> {
        self.delete_token_pg(serial).await
    }

    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError> {
        self.set_active_pg(serial, active).await
    }

    async fn confirm_token(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        self.confirm_token_pg(serial, counter).await
    }

    async fn set_description(&self, serial: &str, description: &str) -> Result<bool, StoreError> {
        self.set_description_pg(serial, description).await
    }

    async fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        self.set_pin_hash_pg(serial, pin_hash).await
    }

    async fn user_state(
        &self,
        user: &str,
        realm: &str,
        backoff_origin: Option<&str>,
    ) -> Result<UserState, StoreError> {
        Ok(self
            .user_state_of_request(user, realm, backoff_origin, None)
            .await?
            .0)
    }

    async fn user_state_of_request(
        &self,
        user: &str,
        realm: &str,
        backoff_origin: Option<&str>,
        retransmit: Option<(&[u8; 16], UnixMs)>,
    ) -> Result<(UserState, Option<String>), StoreError> {
        // Batched with the other requests' first reads (see `batches.rs`).
        self.timed(self.reads.call(batches::Read {
            user: user.to_string(),
            realm: realm.to_string(),
            backoff_origin: backoff_origin.map(str::to_string),
            retransmit: retransmit.map(|(digest, since)| (*digest, since.as_ms())),
        }))
        .await
    }

    async fn start_challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeStart, StoreError> {
        self.timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let decided = start_challenge(&tx, &self.key, &self.name, &request).await?;
            tx.commit().await?;
            Ok(decided)
        })
        .await
    }

    async fn mark_delivered(&self, challenge_state: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "UPDATE challenges SET delivered = TRUE WHERE state = $1",
            &[&challenge_state],
        )
        .await?;
        Ok(())
    }

    async fn delete_challenge(&self, challenge_state: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "DELETE FROM challenges WHERE state = $1",
            &[&challenge_state],
        )
        .await?;
        Ok(())
    }

    async fn challenge(&self, challenge_state: &str) -> Result<Vec<Challenge>, StoreError> {
        let c = self.client().await?;
        challenge_rows(&c, challenge_state).await
    }

    async fn challenge_of_request(
        &self,
        challenge_state: &str,
        retransmit: Option<(&[u8; 16], UnixMs)>,
    ) -> Result<(Vec<Challenge>, Option<String>), StoreError> {
        let c = self.client().await?;
        // Both reads in flight at once on the connection: one round trip.
        Ok(tokio::try_join!(
            challenge_rows(&c, challenge_state),
            answered_serial(&c, retransmit)
        )?)
    }

    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now: UnixMs,
    ) -> Result<Vec<Challenge>, StoreError> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE username = $1 AND realm = $2 \
             AND open AND delivered AND expires_at >= $3 ORDER BY created_at DESC"
        );
        query(&c, &sql, &[&user, &realm, &now.as_ms()])
            .await?
            .iter()
            .map(challenge_from_row)
            .collect()
    }

    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        now: UnixMs,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        self.timed(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let closed = close_challenge(&tx, challenge_state, serial, now, by).await?;
            tx.commit().await?;
            Ok(closed)
        })
        .await
    }

    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        used_at: Option<UnixMs>,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError> {
        // Batched with the other requests' consumes, committed before this returns (see
        // `batches.rs`).
        self.timed(self.consumes.call(batches::Consume {
            serial: serial.to_string(),
            used,
            used_at: used_at.map(UnixMs::as_secs),
            by: by.map(|b| (b.digest, b.now.as_ms())),
        }))
        .await
    }

    async fn retransmit_of(
        &self,
        digest: &[u8; 16],
        since: UnixMs,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        answered_serial(&c, Some((digest, since))).await
    }

    async fn record_failure(&self, serials: &[String], now: UnixMs) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "UPDATE tokens SET fail_count = fail_count + 1, last_fail_at = $2 \
             WHERE serial = ANY($1)",
            &[&serials, &now.as_secs()],
        )
        .await?;
        Ok(())
    }

    async fn record_login_failure(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
        now: UnixMs,
        forget_ms: i64,
    ) {
        // Queued, not awaited (see the trait), and written with the others waiting.
        self.queue.failure(backoff::Failure {
            user: user.to_string(),
            realm: realm.to_string(),
            origin: origin.to_string(),
            now,
            forget_ms,
        });
    }

    async fn clear_login_failures(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
    ) -> Result<(), StoreError> {
        // Through the queue: after the failures queued before it.
        self.queue.clear(user, realm, origin).await
    }

    async fn backoff_rows(
        &self,
        user: &str,
        realm: &str,
    ) -> Result<Vec<(String, Backoff)>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT origin, failures, last_failure_ms FROM login_failures \
             WHERE username = $1 AND realm = $2 ORDER BY origin",
            &[&user, &realm],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let failures: i32 = r.try_get(1)?;
                Ok((
                    r.try_get::<_, String>(0)?,
                    Backoff {
                        failures: u32::try_from(failures).unwrap_or(0),
                        last_failure: ms_column(r, 2)?,
                    },
                ))
            })
            .collect()
    }

    fn writes_failing(&self) -> bool {
        self.queue.writes_failing()
    }

    async fn purge_login_failures(&self, before: UnixMs) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM login_failures WHERE last_failure_ms < $1",
            &[&before.as_ms()],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET fail_count = 0, last_fail_at = NULL WHERE serial = $1",
            &[&serial],
        )
        .await?
            > 0)
    }

    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT serial, username, realm FROM tokens WHERE pin_hash IS NOT NULL AND autoenrolled",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until: UnixMs,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO grace (username, realm, client, station, until_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (username, realm, client, station) DO UPDATE SET until_ms = $5",
            &[&user, &realm, &client, &station, &until.as_ms()],
        )
        .await?;
        Ok(())
    }

    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<UnixMs>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT until_ms FROM grace \
                 WHERE username = $1 AND realm = $2 AND client = $3 AND station = $4",
                &[&user, &realm, &client, &station],
            )
            .await?;
        Ok(match row {
            Some(row) => Some(ms_column(&row, 0)?),
            None => None,
        })
    }

    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        execute(
            &c,
            "DELETE FROM grace WHERE username = $1 AND realm = $2",
            &[&user, &realm],
        )
        .await?;
        Ok(())
    }

    async fn end_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM grace WHERE username = $1 AND realm = $2 AND client = $3 \
             AND station = $4",
            &[&user, &realm, &client, &station],
        )
        .await?;
        Ok(n > 0)
    }

    async fn set_token_owner(&self, serial: &str, user: &str) -> Result<bool, StoreError> {
        self.set_token_owner_pg(serial, user).await
    }

    async fn assign_token(
        &self,
        serial: &str,
        user: &str,
        realm: &str,
    ) -> Result<bool, StoreError> {
        self.assign_token_pg(serial, user, realm).await
    }

    async fn set_counter(&self, serial: &str, counter: u64) -> Result<bool, StoreError> {
        self.set_counter_pg(serial, counter).await
    }

    async fn audit(&self, entry: AuditEntry) {
        // Nobody waits for an audit row: it is queued and written with the others waiting.
        self.queue.audit(entry.with_controls_escaped());
    }

    async fn audit_committed(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let entry = entry.with_controls_escaped();
        let c = self.client().await?;
        execute(
            &c,
            INSERT_AUDIT,
            &audit_params(&entry, &entry.time.as_secs()),
        )
        .await?;
        Ok(())
    }

    async fn purge_audit(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM audit WHERE id IN \
             (SELECT id FROM audit WHERE time < $1 ORDER BY time LIMIT $2)",
            &[&before.as_secs(), &i64::from(limit)],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<UnixMs>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let c = self.client().await?;
        let rows = query(
            &c,
            "SELECT time, client, username, realm, serial, action, result, reason FROM audit \
             WHERE ($1::text IS NULL OR username = $1) AND ($2::bigint IS NULL OR time >= $2) \
             ORDER BY id DESC LIMIT $3",
            &[&user, &since.map(UnixMs::as_secs), &i64::from(limit)],
        )
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let c = self.client().await?;
        audit_query(&c, q).await
    }

    async fn purge_challenges(&self, before: UnixMs) -> Result<usize, StoreError> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM challenges WHERE expires_at < $1",
            &[&before.as_ms()],
        )
        .await?;
        // Retransmits come within seconds; an hour-old record answers none.
        execute(
            &c,
            "DELETE FROM answered WHERE at_ms < $1",
            &[&before.as_ms()],
        )
        .await?;
        execute(
            &c,
            "DELETE FROM grace WHERE until_ms < $1",
            &[&before.as_ms()],
        )
        .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn export(&self) -> Result<Dump, StoreError> {
        let mut c = self.client().await?;
        // One snapshot of all three tables.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let dump = copy::export(&tx).await?;
        tx.commit().await?;
        Ok(dump)
    }

    async fn import(&self, dump: Dump, replace: bool) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        copy::import(&tx, &self.key, &self.name, &dump, replace).await?;
        Ok(tx.commit().await?)
    }

    async fn record_accounting(
        &self,
        record: AccountingRecord,
        max_open: u64,
    ) -> Result<Recorded, StoreError> {
        self.record_accounting_pg(record, max_open).await
    }

    async fn close_nas_sessions(
        &self,
        client: &str,
        nas: &str,
        at: UnixMs,
    ) -> Result<usize, StoreError> {
        self.close_nas_sessions_pg(client, nas, at).await
    }

    async fn sessions(&self, query: &SessionQuery) -> Result<Vec<Session>, StoreError> {
        self.sessions_pg(query).await
    }

    async fn open_sessions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.open_sessions_pg().await
    }

    async fn purge_sessions(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError> {
        self.purge_sessions_pg(before, limit).await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        // PostgreSQL owns its write-ahead log; a clean stop only writes the queued audit rows.
        self.queue.flush().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A write probe: a primary that turned read-only, or a full disk, must show.
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO meta (name, value) VALUES ('health_probe', now()::text) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[],
        )
        .await?;
        Ok(())
    }
}
