//! The token store: tokens, open challenges, counters, fail counters, the audit trail and the
//! accounting sessions NASes report ([`sessions`]).
//!
//! [`Store`] is the trait the engine and the admin command line use; [`sqlite::SqliteStore`] is
//! the default implementation, [`postgres::PgStore`] the one several nodes share (issue 15);
//! `[store] backend` picks one ([`config`], [`open`]). Every operation that must not race —
//! allocating an OTP counter, closing a challenge, moving a counter past a used value — is one
//! atomic, durable store call, so two requests (or two nodes) can never accept the same OTP.
//! What such a call decides — may a challenge start, the trigger limit, how a back-off count
//! grows, whether a grace lasts — is decided once, in [`decide`], for both backends. The
//! values the trait passes (tokens, challenges, back-off and audit rows, the audit's query) are
//! in `types.rs`; the accounting sessions' values and the rule that merges a record into its
//! session are in [`sessions`].

pub mod audit;
pub mod config;
pub mod decide;
mod dump;
mod error;
pub mod postgres;
pub mod seal;
pub mod sessions;
pub mod sqlite;
mod types;

use async_trait::async_trait;

use crate::time::UnixMs;

pub(crate) use dump::held_rows;
pub use dump::{BackoffRow, Dump, GraceRow, SealedToken};
pub use error::{CommitError, StoreError};
pub use sessions::{
    AccountingRecord, AcctStatus, Identity, Recorded, Session, SessionQuery, Usage,
};
pub use types::{
    AuditColumn, AuditEntry, AuditQuery, AuditTerm, Backoff, Backoffs, Challenge, ChallengeRequest,
    ChallengeStart, ChallengeStatus, ChallengeTarget, HashAlgorithm, RequestMark, Token, TokenKind,
    UserState,
};

/// Opens the store `[store]` names (creating the key file when it is missing and the store
/// holds no sealed seed), applying schema migrations.
pub async fn open(config: &config::StoreConfig) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match &config.backend {
        config::StoreBackend::Sqlite { path } => sqlite::open_store(path, &config.key_file),
        config::StoreBackend::Postgres(settings) => Ok(std::sync::Arc::new(
            postgres::PgStore::open(settings, &config.key_file).await?,
        )),
    }
}

/// The checks [`open`] makes, creating and changing nothing (`check-config`).
pub async fn check(config: &config::StoreConfig) -> Result<(), StoreError> {
    match &config.backend {
        config::StoreBackend::Sqlite { path } => sqlite::check_store(path, &config.key_file),
        config::StoreBackend::Postgres(settings) => {
            postgres::check_store(settings, &config.key_file).await
        }
    }
}

/// [`Store::retransmit_of`] when a digest is given (the defaults of the `…_of_request` reads).
async fn retransmit_if_asked<S: Store + ?Sized>(
    store: &S,
    retransmit: Option<(&[u8; 16], UnixMs)>,
) -> Result<Option<String>, StoreError> {
    match retransmit {
        Some((digest, since)) => store.retransmit_of(digest, since).await,
        None => Ok(None),
    }
}

/// The operations the engine and the admin CLI need. Each is atomic.
#[async_trait]
pub trait Store: Send + Sync {
    /// All tokens of a user.
    async fn tokens_of_user(&self, user: &str, realm: &str) -> Result<Vec<Token>, StoreError>;

    /// One token.
    async fn token(&self, serial: &str) -> Result<Option<Token>, StoreError>;

    /// All tokens, optionally of one user and/or realm (admin listing).
    async fn list_tokens(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError>;

    /// Stores a new token; [`StoreError::Duplicate`] when the serial exists.
    async fn insert_token(&self, token: Token) -> Result<(), StoreError>;

    /// Stores many new tokens in one transaction (imports, benchmarks). Fails as a whole on a
    /// duplicate serial.
    async fn insert_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError>;

    /// Stores tokens in one transaction, replacing any token of the same serial (and its
    /// challenges): `tessera token import --force`, all of the file or nothing.
    async fn replace_tokens(&self, tokens: Vec<Token>) -> Result<(), StoreError>;

    /// Deletes a token and its challenges. Returns whether it existed.
    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError>;

    /// Enables or disables a token, and ends its waiting for a first code (an operator's
    /// decision replaces the confirmation: a token is never active and pending, and one an
    /// operator disabled cannot be confirmed). Returns whether it existed.
    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError>;

    /// Confirms a token waiting for its first code (self-service enrolment): if it is
    /// pending and its counter is not past `counter`, sets it active, not pending, its
    /// counter to `counter` and its fail counter to 0, in one statement. Returns whether this
    /// call confirmed it: `false` for a token not pending (never was, confirmed already, or
    /// decided by an operator) or missing.
    async fn confirm_token(&self, serial: &str, counter: u64) -> Result<bool, StoreError>;

    /// Sets a token's description (at most 80 characters are kept). Returns whether it
    /// existed.
    async fn set_description(&self, serial: &str, description: &str) -> Result<bool, StoreError>;

    /// Sets or clears the token PIN hash. Returns whether it existed.
    async fn set_pin_hash(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError>;

    /// An identity's tokens and, with `backoff_origin`, its back-off rows (over all origins
    /// and from that origin), read together.
    async fn user_state(
        &self,
        user: &str,
        realm: &str,
        backoff_origin: Option<&str>,
    ) -> Result<UserState, StoreError>;

    /// Starts a challenge, or says why not, in one transaction, so it holds between requests
    /// and between processes sharing the database: enrolls `enroll` unless the identity has a
    /// token; returns the open challenge started within a target's blocking timeout; refuses
    /// at the trigger limit; otherwise allocates each target's next counter (the counter moves
    /// on whether or not delivery then works, so a value is never sent twice) and stores the
    /// rows as pending.
    async fn start_challenge(
        &self,
        request: ChallengeRequest,
    ) -> Result<ChallengeStart, StoreError>;

    /// Marks a challenge delivered: from now on it can be answered and its State handed out.
    /// Committed when it returns, as the Access-Challenge that follows must survive a crash.
    async fn mark_delivered(&self, challenge_state: &str) -> Result<(), StoreError>;

    /// Removes all rows of a challenge (delivery failed).
    async fn delete_challenge(&self, challenge_state: &str) -> Result<(), StoreError>;

    /// The rows of a challenge.
    async fn challenge(&self, challenge_state: &str) -> Result<Vec<Challenge>, StoreError>;

    /// A user's open, delivered, unexpired challenge rows, newest first.
    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now: UnixMs,
    ) -> Result<Vec<Challenge>, StoreError>;

    /// Closes a challenge after a right answer by `serial`: succeeds only if the row was still
    /// open (compare-and-set), then closes every row of the challenge and every older open
    /// challenge of that token, and resets the token's fail counter and sets its last use to
    /// `now` (in the statement that resets the counter). Returns whether this call closed it.
    /// A shared store records `by` in the same transaction.
    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        now: UnixMs,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError>;

    /// Moves a HOTP/TOTP counter past `used` if it is not already (compare-and-set), resets
    /// the fail counter and, given `used_at` (a login's time), sets the token's last use to it,
    /// all in one statement; `None` (an enrolment's first code, not a login) keeps the last
    /// use. Returns whether this call moved it: `false` means replay. A shared store records
    /// `by` in the same statement.
    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        used_at: Option<UnixMs>,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError>;

    /// The serial a request with this digest consumed an OTP for, at or after `since`:
    /// the request is a retransmit of one already accepted (by another node). A store used
    /// by one node answers `None` without a query: that node's reply cache knows its own
    /// requests.
    async fn retransmit_of(
        &self,
        _digest: &[u8; 16],
        _since: UnixMs,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// [`Store::user_state`] and [`Store::retransmit_of`] for one request, in one round trip
    /// where the store can (PostgreSQL pipelines the reads on one connection); without a
    /// digest, no retransmit is looked for.
    async fn user_state_of_request(
        &self,
        user: &str,
        realm: &str,
        backoff_origin: Option<&str>,
        retransmit: Option<(&[u8; 16], UnixMs)>,
    ) -> Result<(UserState, Option<String>), StoreError> {
        let state = self.user_state(user, realm, backoff_origin).await?;
        Ok((state, retransmit_if_asked(self, retransmit).await?))
    }

    /// [`Store::challenge`] and [`Store::retransmit_of`] for one request (a second round), in
    /// one round trip where the store can.
    async fn challenge_of_request(
        &self,
        challenge_state: &str,
        retransmit: Option<(&[u8; 16], UnixMs)>,
    ) -> Result<(Vec<Challenge>, Option<String>), StoreError> {
        let rows = self.challenge(challenge_state).await?;
        Ok((rows, retransmit_if_asked(self, retransmit).await?))
    }

    /// Adds one failure to each token.
    async fn record_failure(&self, serials: &[String], now: UnixMs) -> Result<(), StoreError>;

    /// Counts one failed first factor of an identity from `origin` (never empty), in one
    /// statement, on two rows: the origin's and the identity's over all origins (kept under
    /// the empty origin). Failures older than `forget_ms` start over at one. Queued, not
    /// awaited (like the audit): a throttle needs no fsync, and a wrong password must not take
    /// longer to refuse than an unknown name. If it cannot be written, [`Store::writes_failing`]
    /// says so until a later write succeeds.
    async fn record_login_failure(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
        now: UnixMs,
        forget_ms: i64,
    );

    /// Forgets an identity's failures from `origin` (a right password); its count over all
    /// origins stays until forgotten.
    async fn clear_login_failures(
        &self,
        user: &str,
        realm: &str,
        origin: &str,
    ) -> Result<(), StoreError>;

    /// Every back-off row of an identity, by origin (the empty origin is its count over all
    /// origins), ordered by origin: what the helpdesk sees, and what ending a back-off clears
    /// one by one with [`Store::clear_login_failures`].
    async fn backoff_rows(
        &self,
        user: &str,
        realm: &str,
    ) -> Result<Vec<(String, Backoff)>, StoreError>;

    /// Whether a write nobody waits for (a back-off failure, an audit row) or a commit has
    /// failed, and no write has succeeded since: a failed password may have gone uncounted,
    /// so the engine checks no password until this clears (issue 23). An atomic load: the
    /// request path pays nothing for it.
    fn writes_failing(&self) -> bool {
        false
    }

    /// Deletes back-off rows whose last failure is before `before`. Returns how many.
    async fn purge_login_failures(&self, before: UnixMs) -> Result<usize, StoreError>;

    /// Clears a token's fail counter (admin unlock, or an expired lockout).
    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError>;

    /// Grants the re-authentication grace: `user` may log in again with the password alone
    /// from `client` and `station` until `until`.
    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until: UnixMs,
    ) -> Result<(), StoreError>;

    /// Until when a grace granted for exactly this user, realm, client and station lasts.
    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<UnixMs>, StoreError>;

    /// Ends every grace of a user (a failed password).
    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError>;

    /// Ends the grace of exactly this user, realm, client and station (the NAS reported the
    /// session's Stop); whether there was one.
    async fn end_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<bool, StoreError>;

    /// (serial, user, realm) of every autoenrolled token that holds a PIN hash.
    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError>;

    /// Hands a token to `user` of `realm`, or takes it back (both empty: unassigned), and
    /// drops its challenges, which were bound to the old owner. Returns whether the token
    /// existed.
    async fn assign_token(&self, serial: &str, user: &str, realm: &str)
    -> Result<bool, StoreError>;

    /// Gives a token to another owner name (the identity of a variant spelling) and drops its
    /// challenges, which were bound to the old name. Returns whether the token existed.
    async fn set_token_owner(&self, serial: &str, user: &str) -> Result<bool, StoreError>;

    /// Sets a token's counter (admin resync).
    async fn set_counter(&self, serial: &str, counter: u64) -> Result<bool, StoreError>;

    /// Appends an audit row. Best effort: failures are logged, not returned.
    async fn audit(&self, entry: AuditEntry);

    /// Appends an audit row and waits until it is committed (admin commands, which exit
    /// right after).
    async fn audit_committed(&self, entry: AuditEntry) -> Result<(), StoreError>;

    /// Deletes audit rows older than `before` (to the second), at most `limit` of them, so
    /// one call never holds the store for long. Returns how many.
    async fn purge_audit(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError>;

    /// Audit rows, newest first.
    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<UnixMs>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Audit rows matching every filter of `query`, newest first (the admin API's audit view,
    /// and a token's last use: its newest `accept`).
    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes challenge rows that expired before `before`, and graces that ended before
    /// then. Returns how many challenge rows.
    async fn purge_challenges(&self, before: UnixMs) -> Result<usize, StoreError>;

    /// Records one accounting record about one session ([`sessions::merge`] decides the
    /// row), in one transaction, committed when it returns (the Accounting-Response waits for
    /// it). A record that would open a session while its client entry has `max_open` open
    /// ones already is refused ([`Recorded::LimitReached`]) and writes nothing.
    async fn record_accounting(
        &self,
        record: AccountingRecord,
        max_open: u64,
    ) -> Result<Recorded, StoreError>;

    /// Closes every open session of a NAS (Accounting-On/Off: it restarted, so none of them
    /// goes on) at `at`. Returns how many. Committed when it returns.
    async fn close_nas_sessions(
        &self,
        client: &str,
        nas: &str,
        at: UnixMs,
    ) -> Result<usize, StoreError>;

    /// Sessions matching `query`, newest first (by start, else last record).
    async fn sessions(&self, query: &SessionQuery) -> Result<Vec<Session>, StoreError>;

    /// How many sessions are open, per client entry (the gauge).
    async fn open_sessions(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Deletes sessions whose last record is before `before` (stopped ones, and open ones
    /// their NAS forgot), at most `limit` of them. Returns how many.
    async fn purge_sessions(&self, before: UnixMs, limit: u32) -> Result<usize, StoreError>;

    /// Moves everything written so far into the main database file and empties the
    /// write-ahead log (clean stop: no WAL is left beside the database).
    async fn checkpoint(&self) -> Result<(), StoreError>;

    /// Checks the store can commit a write (health checks): answering reads is not enough.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Everything `tessera store copy` moves, seeds as sealed.
    async fn export(&self) -> Result<Dump, StoreError>;

    /// Writes `dump` in one transaction, checking that this store's key opens every seed.
    /// Refuses ([`StoreError::NotEmpty`]) a store that holds tokens, challenges or audit rows,
    /// unless `replace`, which deletes them (and the back-off rows) first.
    async fn import(&self, dump: Dump, replace: bool) -> Result<(), StoreError>;
}
