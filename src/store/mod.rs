//! The token store: tokens, open challenges, counters, fail counters and the audit trail.
//!
//! [`Store`] is the trait the engine and the admin command line use; [`sqlite::SqliteStore`] is
//! the default implementation, [`postgres::PgStore`] the one several nodes share (issue 15);
//! `[store] backend` picks one ([`config`], [`open`]). Every operation that must not race —
//! allocating an OTP counter, closing a challenge, moving a counter past a used value — is one
//! atomic, durable store call, so two requests (or two nodes) can never accept the same OTP.
//! What such a call decides — may a challenge start, the trigger limit, how a back-off count
//! grows, whether a grace lasts — is decided once, in [`decide`], for both backends.

pub mod audit;
pub mod config;
pub mod decide;
mod dump;
mod error;
pub mod postgres;
pub mod seal;
pub mod sqlite;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::delivery::Channel;
use crate::secret::Secret;

pub(crate) use dump::held_rows;
pub use dump::{BackoffRow, Dump, GraceRow, SealedToken};
pub use error::{CommitError, StoreError};

/// Token types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// HOTP whose OTPs are sent by SMS on a challenge.
    Sms,
    /// HOTP whose OTPs are sent by e-mail on a challenge.
    Email,
    /// RFC 4226 HOTP in an authenticator app or hardware token.
    Hotp,
    /// RFC 6238 TOTP in an authenticator app.
    Totp,
}

impl TokenKind {
    /// The name used in config, CLI and database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Sms => "sms",
            TokenKind::Email => "email",
            TokenKind::Hotp => "hotp",
            TokenKind::Totp => "totp",
        }
    }

    /// LinOTP's serial prefixes (`LSSM`, `LSEM`, `OATH`, `TOTP`).
    pub fn serial_prefix(self) -> &'static str {
        match self {
            TokenKind::Sms => "LSSM",
            TokenKind::Email => "LSEM",
            TokenKind::Hotp => "OATH",
            TokenKind::Totp => "TOTP",
        }
    }

    /// Whether OTPs of this type are sent on a challenge (rather than shown by a device).
    pub fn is_challenge_based(self) -> bool {
        self.channel().is_some()
    }

    /// How this type's codes travel: by SMS, by e-mail, or not at all (HOTP/TOTP devices show
    /// their own).
    pub fn channel(self) -> Option<Channel> {
        match self {
            TokenKind::Sms => Some(Channel::Sms),
            TokenKind::Email => Some(Channel::Email),
            TokenKind::Hotp | TokenKind::Totp => None,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sms" => Ok(TokenKind::Sms),
            "email" => Ok(TokenKind::Email),
            "hotp" | "hmac" => Ok(TokenKind::Hotp),
            "totp" => Ok(TokenKind::Totp),
            other => Err(format!(
                "unknown token type {other:?} (expected sms, email, hotp or totp)"
            )),
        }
    }
}

/// A token as stored, seed opened.
#[derive(Debug, Clone)]
pub struct Token {
    /// Unique serial, e.g. `LSSM3F9A01C2`.
    pub serial: String,
    /// Type.
    pub kind: TokenKind,
    /// Owner's login.
    pub user: String,
    /// Owner's realm.
    pub realm: String,
    /// The HMAC key.
    pub seed: Secret,
    /// HOTP: the next counter value to use. TOTP: one past the last accepted time step.
    pub counter: u64,
    /// OTP length.
    pub digits: u32,
    /// Argon2 hash of the token PIN (otppin=0), if any.
    pub pin_hash: Option<String>,
    /// SMS destination.
    pub phone: Option<String>,
    /// E-mail destination.
    pub email: Option<String>,
    /// Disabled tokens are skipped.
    pub active: bool,
    /// Consecutive failures.
    pub fail_count: u32,
    /// Failures at which the token locks.
    pub max_fail: u32,
    /// When the last failure happened (for time-limited lockout).
    pub last_fail_at: Option<i64>,
    /// Free text (e.g. "auto enrolled for alice@local").
    pub description: String,
    /// Creation time.
    pub created_at: i64,
    /// The owner's stable id in the directory (`entryUUID`, `objectGUID`) when the token was
    /// autoenrolled: a later account of the same name with another id does not inherit it.
    pub owner_id: Option<String>,
    /// Made by autoenrollment (at most one such token per user, enforced by the schema).
    pub autoenrolled: bool,
}

/// One token's part in a challenge. A challenge sent to several tokens at once shares its
/// `state` across rows, one row per token (LinOTP's multi-challenge). Times are in
/// milliseconds, so a blocking timeout of 0 never blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The State the client echoes (hex, 128 bits of randomness).
    pub state: String,
    /// The token this row belongs to.
    pub serial: String,
    /// Owner's login.
    pub user: String,
    /// Owner's realm.
    pub realm: String,
    /// The HOTP counter whose value was sent: only this value answers this challenge.
    pub counter: u64,
    /// When it was started (ms since the epoch).
    pub created_at: i64,
    /// When it stops being answerable (ms since the epoch).
    pub expires_at: i64,
    /// Pending, delivered (answerable), closed or withdrawn.
    pub status: ChallengeStatus,
}

/// Where a challenge row stands. Both backends store it as two columns, `open` and
/// `delivered`; [`ChallengeStatus::from_columns`], [`ChallengeStatus::is_open`] and
/// [`ChallengeStatus::was_delivered`] are the only conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Started, its code not yet with a provider: it blocks a second send, but nobody is told
    /// its State and it cannot be answered.
    Pending,
    /// Its code reached a provider: it can be answered, and its State handed out.
    Delivered,
    /// Closed after it was delivered: answered, or a later challenge of its token was.
    Closed,
    /// Closed while still pending: a later challenge of its token was answered first.
    Withdrawn,
}

impl ChallengeStatus {
    /// The status of a row whose `open` and `delivered` columns hold these.
    pub fn from_columns(open: bool, delivered: bool) -> Self {
        match (open, delivered) {
            (true, false) => ChallengeStatus::Pending,
            (true, true) => ChallengeStatus::Delivered,
            (false, true) => ChallengeStatus::Closed,
            (false, false) => ChallengeStatus::Withdrawn,
        }
    }

    /// The `open` column: not closed yet (pending or delivered).
    pub fn is_open(self) -> bool {
        matches!(self, ChallengeStatus::Pending | ChallengeStatus::Delivered)
    }

    /// The `delivered` column: its code reached a provider (whether or not it is closed now).
    pub fn was_delivered(self) -> bool {
        matches!(self, ChallengeStatus::Delivered | ChallengeStatus::Closed)
    }
}

/// An identity's consecutive failed first factors (wrong password or PIN), for the back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Consecutive failures.
    pub failures: u32,
    /// When the last one happened (ms since the epoch).
    pub last_failure_ms: i64,
}

/// An identity's back-off rows as a request reads them (see `auth::backoff`): its failures
/// from every origin, and those from the request's origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoffs {
    /// The identity's count over all origins, if it has one.
    pub identity: Option<Backoff>,
    /// Its count from the request's origin, if it has one.
    pub origin: Option<Backoff>,
}

/// What the engine reads about an identity before it decides: one store round trip.
#[derive(Debug, Clone, Default)]
pub struct UserState {
    /// The identity's tokens.
    pub tokens: Vec<Token>,
    /// Its back-off rows, if asked for.
    pub backoff: Backoffs,
}

/// One token to challenge in [`Store::start_challenge`].
#[derive(Debug, Clone)]
pub struct ChallengeTarget {
    /// The token.
    pub serial: String,
    /// How long its challenge can be answered (ms).
    pub validity_ms: i64,
    /// How long a challenge of its type blocks a new send (ms); 0 never blocks.
    pub blocking_ms: i64,
}

/// A request to start a challenge, decided in one transaction.
#[derive(Debug, Clone)]
pub struct ChallengeRequest {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The new challenge's State.
    pub state: String,
    /// The tokens to send to.
    pub targets: Vec<ChallengeTarget>,
    /// Now (ms since the epoch).
    pub now_ms: i64,
    /// At most this many challenges …
    pub trigger_limit: u32,
    /// … started within this many ms.
    pub trigger_window_ms: i64,
    /// Autoenrollment: store this token first, unless the identity has a token already.
    pub enroll: Option<Token>,
    /// The request asking (its digest, see [`RequestMark`]), recorded with the new rows: the
    /// same request again at or after `retransmit_since_ms` — a NAS resending it to another
    /// node, or to this one from another port — gets that challenge back and sends nothing,
    /// whatever the blocking timeout.
    pub request_digest: Option<[u8; 16]>,
    /// The start of the retransmit window (ms since the epoch).
    pub retransmit_since_ms: i64,
}

/// What [`Store::start_challenge`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeStart {
    /// A new, pending challenge: the counter allocated for each target, in order.
    Started(Vec<u64>),
    /// A challenge started within the blocking timeout: all its rows (pending or delivered).
    Open(Vec<Challenge>),
    /// The trigger limit is reached: this many challenges in the window.
    Limited(u32),
    /// `enroll` was given but the identity has a token now (another request enrolled it).
    AlreadyEnrolled,
}

/// The request that consumes an OTP (closes a challenge or moves a counter), recorded with it
/// by a store shared between nodes: when a NAS fails over and resends that request to another
/// node, the other node finds it ([`Store::retransmit_of`]) and answers Access-Accept again
/// instead of "code already used".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMark {
    /// A digest of what identifies the request (see `radius::handler`).
    pub digest: [u8; 16],
    /// When it was decided (ms since the epoch).
    pub now_ms: i64,
}

/// One audit row. Never holds a password or OTP.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// Unix time.
    pub time: i64,
    /// Client (NAS) address or name.
    pub client: String,
    /// Login.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Token serial involved, if any.
    pub serial: Option<String>,
    /// What was asked: an [`audit::AuditAction`] as text (`authenticate`, `token delete` …).
    pub action: String,
    /// How it went: an [`audit::AuditResult`] as text (`accept`, `reject`, `ok` …).
    pub result: String,
    /// Why.
    pub reason: String,
}

impl AuditEntry {
    /// The entry with control characters escaped in every text (a User-Name with a newline
    /// must not forge a second row in `tessera audit`); see [`crate::log_format`].
    pub fn with_controls_escaped(self) -> Self {
        use crate::log_format::escape_controls;
        let escape = |s: String| match escape_controls(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        AuditEntry {
            time: self.time,
            client: escape(self.client),
            user: escape(self.user),
            realm: escape(self.realm),
            serial: self.serial.map(escape),
            action: escape(self.action),
            result: escape(self.result),
            reason: escape(self.reason),
        }
    }
}

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
    retransmit: Option<(&[u8; 16], i64)>,
) -> Result<Option<String>, StoreError> {
    match retransmit {
        Some((digest, since_ms)) => store.retransmit_of(digest, since_ms).await,
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

    /// Deletes a token and its challenges. Returns whether it existed.
    async fn delete_token(&self, serial: &str) -> Result<bool, StoreError>;

    /// Enables or disables a token. Returns whether it existed.
    async fn set_active(&self, serial: &str, active: bool) -> Result<bool, StoreError>;

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

    /// A user's open, delivered, unexpired challenge rows (`now` in ms), newest first.
    async fn open_challenges_of_user(
        &self,
        user: &str,
        realm: &str,
        now_ms: i64,
    ) -> Result<Vec<Challenge>, StoreError>;

    /// Closes a challenge after a right answer by `serial`: succeeds only if the row was still
    /// open (compare-and-set), then closes every row of the challenge and every older open
    /// challenge of that token, and resets the token's fail counter. Returns whether this call
    /// closed it. A shared store records `by` in the same transaction.
    async fn close_challenge(
        &self,
        challenge_state: &str,
        serial: &str,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError>;

    /// Moves a HOTP/TOTP counter past `used` if it is not already (compare-and-set) and resets
    /// the fail counter. Returns whether this call moved it: `false` means replay. A shared
    /// store records `by` in the same statement.
    async fn consume_counter(
        &self,
        serial: &str,
        used: u64,
        by: Option<RequestMark>,
    ) -> Result<bool, StoreError>;

    /// The serial a request with this digest consumed an OTP for, at or after `since_ms`:
    /// the request is a retransmit of one already accepted (by another node). A store used
    /// by one node answers `None` without a query: that node's reply cache knows its own
    /// requests.
    async fn retransmit_of(
        &self,
        _digest: &[u8; 16],
        _since_ms: i64,
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
        retransmit: Option<(&[u8; 16], i64)>,
    ) -> Result<(UserState, Option<String>), StoreError> {
        let state = self.user_state(user, realm, backoff_origin).await?;
        Ok((state, retransmit_if_asked(self, retransmit).await?))
    }

    /// [`Store::challenge`] and [`Store::retransmit_of`] for one request (a second round), in
    /// one round trip where the store can.
    async fn challenge_of_request(
        &self,
        challenge_state: &str,
        retransmit: Option<(&[u8; 16], i64)>,
    ) -> Result<(Vec<Challenge>, Option<String>), StoreError> {
        let rows = self.challenge(challenge_state).await?;
        Ok((rows, retransmit_if_asked(self, retransmit).await?))
    }

    /// Adds one failure to each token.
    async fn record_failure(&self, serials: &[String], now: i64) -> Result<(), StoreError>;

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
        now_ms: i64,
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

    /// Deletes back-off rows whose last failure is before `before_ms`. Returns how many.
    async fn purge_login_failures(&self, before_ms: i64) -> Result<usize, StoreError>;

    /// Clears a token's fail counter (admin unlock, or an expired lockout).
    async fn reset_failures(&self, serial: &str) -> Result<bool, StoreError>;

    /// Grants the re-authentication grace: `user` may log in again with the password alone
    /// from `client` and `station` until `until_ms`.
    async fn grant_grace(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
        until_ms: i64,
    ) -> Result<(), StoreError>;

    /// Until when a grace granted for exactly this user, realm, client and station lasts.
    async fn grace_until(
        &self,
        user: &str,
        realm: &str,
        client: &str,
        station: &str,
    ) -> Result<Option<i64>, StoreError>;

    /// Ends every grace of a user (a failed password).
    async fn revoke_grace(&self, user: &str, realm: &str) -> Result<(), StoreError>;

    /// (serial, user, realm) of every autoenrolled token that holds a PIN hash.
    async fn autoenrolled_with_pin(&self) -> Result<Vec<(String, String, String)>, StoreError>;

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

    /// Deletes audit rows older than `before` (Unix time), at most `limit` of them, so one
    /// call never holds the store for long. Returns how many.
    async fn purge_audit(&self, before: i64, limit: u32) -> Result<usize, StoreError>;

    /// Audit rows, newest first.
    async fn audit_rows(
        &self,
        user: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Audit rows matching every filter of `query`, newest first (the admin API's audit view,
    /// and a token's last use: its newest `accept`).
    async fn audit_query(&self, query: &audit::AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes challenge rows that expired before `before` (ms), and graces that ended before
    /// then. Returns how many challenge rows.
    async fn purge_challenges(&self, before: i64) -> Result<usize, StoreError>;

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
