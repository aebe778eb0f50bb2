//! The values the [`Store`](super::Store) trait passes: tokens ([`Token`], [`TokenKind`]),
//! challenges and what starting one asks and answers, back-off rows, what a request reads
//! first ([`UserState`]), the request that consumed an OTP ([`RequestMark`]), audit rows and
//! which to read ([`AuditQuery`]).
//! Times are [`UnixMs`]; each backend keeps its columns' units.

use std::fmt;
use std::str::FromStr;

use crate::delivery::Channel;
use crate::secret::Secret;
use crate::time::UnixMs;

/// Token types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// HOTP whose OTPs are sent by SMS on a challenge.
    Sms,
    /// HOTP whose OTPs are sent by e-mail on a challenge.
    Email,
    /// RFC 4226 HOTP in an authenticator app or hardware token.
    Hotp,
    /// RFC 6238 TOTP in an authenticator app or hardware token.
    Totp,
    /// A YubiKey in Yubico OTP mode: the seed is its AES key followed by its private id, its
    /// counter one past the last accepted OTP's (see [`crate::otp::yubico`]).
    Yubikey,
}

impl TokenKind {
    /// The name used in config, CLI and database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Sms => "sms",
            TokenKind::Email => "email",
            TokenKind::Hotp => "hotp",
            TokenKind::Totp => "totp",
            TokenKind::Yubikey => "yubikey",
        }
    }

    /// LinOTP's serial prefixes (`LSSM`, `LSEM`, `OATH`, `TOTP`).
    pub fn serial_prefix(self) -> &'static str {
        match self {
            TokenKind::Sms => "LSSM",
            TokenKind::Email => "LSEM",
            TokenKind::Hotp => "OATH",
            TokenKind::Totp => "TOTP",
            TokenKind::Yubikey => "UBAM",
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
            TokenKind::Hotp | TokenKind::Totp | TokenKind::Yubikey => None,
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
            "yubikey" => Ok(TokenKind::Yubikey),
            other => Err(format!(
                "unknown token type {other:?} (expected sms, email, hotp, totp or yubikey)"
            )),
        }
    }
}

/// The HMAC hash of a HOTP/TOTP token (RFC 6238 allows SHA-256 and SHA-512; hardware tokens
/// and their PSKC or CSV files say which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// HMAC-SHA1 (RFC 4226; every token before issue 29).
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl HashAlgorithm {
    /// The name in the database, the CLI and the otpauth URI's spelling lowercased.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Ok(HashAlgorithm::Sha1),
            "sha256" => Ok(HashAlgorithm::Sha256),
            "sha512" => Ok(HashAlgorithm::Sha512),
            other => Err(format!(
                "unknown hash algorithm {other:?} (expected sha1, sha256 or sha512)"
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
    /// Owner's login; empty for a token nobody holds yet (imported, not assigned).
    pub user: String,
    /// Owner's realm; empty when `user` is.
    pub realm: String,
    /// The HMAC key (a YubiKey: its AES key, then its private id).
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
    /// When the last failure happened (for time-limited lockout; stored in seconds).
    pub last_fail_at: Option<UnixMs>,
    /// Free text (e.g. "auto enrolled for alice@local").
    pub description: String,
    /// Creation time (stored in seconds).
    pub created_at: UnixMs,
    /// The owner's stable id in the directory (`entryUUID`, `objectGUID`) when the token was
    /// autoenrolled: a later account of the same name with another id does not inherit it.
    pub owner_id: Option<String>,
    /// Made by autoenrollment (at most one such token per user, enforced by the schema).
    pub autoenrolled: bool,
    /// When it last logged someone in: its counter consumed or its challenge answered (stored
    /// in seconds; `None`: never).
    pub last_used: Option<UnixMs>,
    /// Waits for its first code (a self-service enrolment): inactive until confirmed
    /// ([`super::Store::confirm_token`]); never active at the same time.
    pub pending: bool,
    /// HOTP/TOTP: the HMAC hash.
    pub algorithm: HashAlgorithm,
    /// TOTP: the token's own time step in seconds; `None`: `[auth] totp_step`.
    pub time_step: Option<u32>,
    /// YubiKey: the public id (modhex) its OTPs start with.
    pub public_id: Option<String>,
}

impl Token {
    /// Whether somebody holds it (an imported token waits unassigned until the helpdesk
    /// hands it out).
    pub fn is_assigned(&self) -> bool {
        !self.user.is_empty()
    }
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
    /// When it was started.
    pub created_at: UnixMs,
    /// When it stops being answerable.
    pub expires_at: UnixMs,
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
    /// When the last one happened.
    pub last_failure: UnixMs,
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

/// One token to challenge in [`Store::start_challenge`](super::Store::start_challenge).
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
    /// Now.
    pub now: UnixMs,
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
    /// The start of the retransmit window.
    pub retransmit_since: UnixMs,
}

/// What [`Store::start_challenge`](super::Store::start_challenge) decided.
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
/// node, the other node finds it ([`Store::retransmit_of`](super::Store::retransmit_of)) and
/// answers Access-Accept again instead of "code already used".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMark {
    /// A digest of what identifies the request (see `radius::handler`).
    pub digest: [u8; 16],
    /// When it was decided.
    pub now: UnixMs,
}

/// One audit row. Never holds a password or OTP.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// When it happened (stored in seconds).
    pub time: UnixMs,
    /// Client (NAS) address or name.
    pub client: String,
    /// Login.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Token serial involved, if any.
    pub serial: Option<String>,
    /// What was asked: an [`audit::AuditAction`](super::audit::AuditAction) as text
    /// (`authenticate`, `token delete` …).
    pub action: String,
    /// How it went: an [`audit::AuditResult`](super::audit::AuditResult) as text (`accept`,
    /// `reject`, `ok` …).
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

/// Which audit rows to read ([`Store::audit_query`](super::Store::audit_query)): every filter given must
/// match; newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this user's rows (the identity, exactly).
    pub user: Option<String>,
    /// Only rows of this realm.
    pub realm: Option<String>,
    /// Only rows of this token.
    pub serial: Option<String>,
    /// Only rows with this result (`accept`, `reject`, `ok` …; see [`AuditResult`](super::audit::AuditResult)).
    pub result: Option<String>,
    /// Only rows whose client contains this text (`http/10.0.0.5`, `vpn-gw`, `admin`).
    pub client: Option<String>,
    /// Only rows at or after this time (audit times are kept in whole seconds).
    pub since: Option<UnixMs>,
    /// Only rows before this time.
    pub until: Option<UnixMs>,
    /// At most this many rows.
    pub limit: u32,
}

/// A column an [`AuditQuery`] filters on by equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditColumn {
    /// The identity.
    User,
    /// Its realm.
    Realm,
    /// The token.
    Serial,
    /// The result.
    Result,
}

/// One condition of an [`AuditQuery`], for a backend to write in its SQL: only the filters
/// given become conditions, so each backend's planner sees plain terms it can use an index
/// for (`serial = ?` for a token's last use) instead of `(? IS NULL OR …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTerm<'a> {
    /// The column equals the text.
    Equals(AuditColumn, &'a str),
    /// The client contains the text.
    ClientContains(&'a str),
    /// At or after this time.
    Since(UnixMs),
    /// Before this time.
    Until(UnixMs),
}

impl AuditQuery {
    /// The conditions of the filters given, in a fixed order.
    pub fn terms(&self) -> Vec<AuditTerm<'_>> {
        let mut terms = vec![];
        for (column, value) in [
            (AuditColumn::User, &self.user),
            (AuditColumn::Realm, &self.realm),
            (AuditColumn::Serial, &self.serial),
            (AuditColumn::Result, &self.result),
        ] {
            if let Some(value) = value {
                terms.push(AuditTerm::Equals(column, value));
            }
        }
        if let Some(client) = &self.client {
            terms.push(AuditTerm::ClientContains(client));
        }
        if let Some(since) = self.since {
            terms.push(AuditTerm::Since(since));
        }
        if let Some(until) = self.until {
            terms.push(AuditTerm::Until(until));
        }
        terms
    }
}
