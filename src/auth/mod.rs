//! The authentication engine: LinOTP's semantics (policies, otppin, autoenrollment, SMS and
//! e-mail challenges, fail counters) with the improvements listed in docs/src/linotp.md.
//!
//! This layer knows nothing of RADIUS. A front end turns its request into an [`AuthRequest`]
//! and the [`Outcome`] back into its own reply; `radius::handler` is the one that exists today.
//! The engine talks to the [`crate::store`], [`crate::directory`] and [`crate::delivery`] layers
//! through their traits, so it can be tested with in-memory fakes.

mod autoenroll;
pub mod backoff;
mod challenge;
pub mod decision;
pub mod engine;
pub mod enrollment;
mod first_factor;
pub mod message;
mod otp_check;
mod passthru;
mod password;
pub mod policy;
pub mod reason;
mod reply;

#[cfg(test)]
mod engine_tests;

use std::future::Future;
use std::net::IpAddr;

use serde::Deserialize;

use crate::secret::Secret;
use crate::time::UnixMs;

pub use engine::Engine;

/// One authentication attempt, front-end neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The user name as sent (`alice` or `alice@realm`), before normalisation.
    pub user_name: String,
    /// The password field: password, PIN, PIN+OTP or OTP.
    pub password: Secret,
    /// The challenge State echoed from a previous round, if any.
    pub state: Option<Vec<u8>>,
    /// The client's (NAS's) address, for policies and audit.
    pub client: IpAddr,
    /// The client's configured name, for logs and audit.
    pub client_name: String,
    /// Where the user connects from, as the NAS says (RADIUS Calling-Station-Id: a MAC or IP
    /// address), for the re-authentication grace.
    pub calling_station: Option<String>,
    /// Where the attempt comes from, as far as the front end can tell: the back-off counts
    /// failures per identity *and* origin (`backoff.rs`), so a stranger guessing from one
    /// place does not keep the owner out of another. RADIUS: the Calling-Station-Id where the
    /// NAS sends one, else the NAS's address; HTTP: the caller's address. Empty: the engine
    /// takes `client`.
    pub origin: String,
    /// What identifies this request among retransmits (RADIUS: a digest of client address,
    /// Identifier, Request Authenticator, User-Name and State), if the front end has it.
    /// Recorded with the OTP the request consumes, so the same request resent to another
    /// node sharing the store gets the same answer.
    pub request_id: Option<[u8; 16]>,
    /// The most octets the front end can carry of an Accept's message and reply attributes
    /// (RADIUS: a packet is at most 4,096 octets, less its header, Message-Authenticator and
    /// the request's Proxy-State), measured by [`ReplyCheck::reply_len`]; `None`: no limit.
    /// An Accept that would not fit is a Reject: nothing else could be sent.
    pub reply_limit: Option<usize>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticated.
    Accept {
        /// Optional text for the user.
        message: Option<String>,
        /// Attributes for the front end to add, as (dictionary name, value) — from the
        /// policies' `reply` lists, placeholders filled in.
        reply: Vec<(String, String)>,
    },
    /// A code was sent (or had been sent): answer it with this state.
    Challenge {
        /// The opaque state to echo.
        state: Vec<u8>,
        /// What to tell the user (where the code went).
        message: String,
        /// Seconds the challenge stays answerable.
        timeout: u32,
        /// The tokens whose codes went out (HTTP lists them in `multi_challenge`).
        tokens: Vec<Challenged>,
    },
    /// Not authenticated.
    Reject {
        /// What to tell the user. Never more than the user may know.
        message: String,
    },
    /// Not tessera's to decide (`passthru=NAME`, a user without a token during a migration):
    /// the front end forwards the request to the legacy server called `upstream` and relays its
    /// answer; on an Accept it hands the request back to
    /// [`Authenticate::passthru_accepted`].
    Forward {
        /// The `[radius_upstream.NAME]`.
        upstream: String,
        /// The request, to forward and to hand back.
        request: Box<AuthRequest>,
    },
}

/// A token a challenge's code went out for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenged {
    /// Its serial (`LSSM…`, `LSEM…`).
    pub serial: String,
    /// Its type: SMS or e-mail.
    pub kind: crate::store::TokenKind,
}

/// Anything that decides authentication requests. The RADIUS server is generic over it, so
/// tests can drive the server with a fake.
pub trait Authenticate: Send + Sync + 'static {
    /// Decides one request.
    fn authenticate(&self, request: AuthRequest) -> impl Future<Output = Outcome> + Send;

    /// The legacy server accepted a request this authenticator forwarded
    /// ([`Outcome::Forward`]): the time to enroll the user's token (`passthru_assign`).
    fn passthru_accepted(&self, _request: AuthRequest) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// What accounting needs to know of a user name reported by the NAS at `client`
    /// ([`AccountingUser`]), resolved as a login's name is; `Err` when a directory failed.
    fn accounting_user(
        &self,
        _user_name: &str,
        _client: std::net::IpAddr,
    ) -> impl Future<Output = Result<AccountingUser, String>> + Send {
        async { Ok(AccountingUser::default()) }
    }
}

/// What the accounting engine learns of a user name from the authentication side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountingUser {
    /// The directory identity it resolves to (kept with the session, so a revoke finds it);
    /// `None` when no directory knows the name.
    pub identity: Option<crate::store::Identity>,
    /// The legacy server a `passthru` policy sends this user's logins to (during a migration
    /// its accounting goes there too).
    pub passthru: Option<String>,
}

/// Whether a reply attribute can be sent as the policies made it: the front end's dictionary
/// (for RADIUS: the name is known, the value fits its type and length). The engine asks before
/// it accepts, so an Accept never goes out without an attribute a policy added — one that
/// cannot be encoded (a 300-octet `Class = {givenname}`) turns the Accept into a Reject.
pub trait ReplyCheck: Send + Sync {
    /// `Err` says why `attribute = value` cannot be sent.
    fn check(&self, attribute: &str, value: &str) -> Result<(), String>;

    /// The octets `message` and `attributes` take in a reply as the front end encodes them,
    /// to compare with the request's [`AuthRequest::reply_limit`] (attributes that
    /// [`ReplyCheck::check`] refuses count nothing).
    fn reply_len(&self, message: Option<&str>, attributes: &[(String, String)]) -> usize;
}

/// Where "now" comes from: the system clock in the server, a settable one in tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> UnixMs;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMs {
        UnixMs::now()
    }
}

/// `[auth]`: engine defaults. Policies can override most per user, realm or client.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Split `user@realm` at the last `@` (LinOTP `splitAtSign`).
    pub split_at_sign: bool,
    /// Seconds an SMS challenge can be answered (LinOTP default 120). Challenges are timed in
    /// milliseconds, so a blocking timeout of 0 never blocks.
    pub sms_challenge_validity: u64,
    /// Seconds during which a new SMS is not sent; the open challenge is returned (30).
    pub sms_blocking_timeout: u64,
    /// Seconds an e-mail challenge can be answered (600).
    pub email_challenge_validity: u64,
    /// Seconds during which a new e-mail is not sent (120).
    pub email_blocking_timeout: u64,
    /// Wrong codes (after a right password or PIN) at which a token locks (10).
    pub max_fail: u32,
    /// Seconds a lock lasts; 0 = until `tessera token unlock` (LinOTP's behaviour).
    pub lockout_duration: u64,
    /// At most this many codes sent to one user …
    pub trigger_limit: u32,
    /// … within this many seconds.
    pub trigger_window: u64,
    /// HOTP look-ahead window (LinOTP `DefaultCountWindow`, 10).
    pub hotp_window: u64,
    /// TOTP time step in seconds (30).
    pub totp_step: u64,
    /// OTP digits for new tokens (6).
    pub otp_digits: u32,
    /// Seconds a delivery may take before it counts as failed (30).
    pub delivery_timeout: u64,
    /// Consecutive wrong passwords (or PINs) of one identity from one origin before the
    /// back-off starts (10; 0 turns the back-off off: no failure is counted or written).
    pub backoff_after: u32,
    /// Seconds of the first back-off window (1); each further failure doubles it …
    pub backoff_initial: u64,
    /// … up to this many seconds (300).
    pub backoff_max: u64,
    /// Seconds after the last failure when an identity's failures are forgotten (3600).
    pub backoff_forget: u64,
    /// Failures of one identity from all origins after which every attempt waits out
    /// `backoff_identity_window` after the last one (100; 0: no such ceiling).
    pub backoff_identity_after: u32,
    /// Seconds of that window (2; at most 10: the ceiling slows, it never locks).
    pub backoff_identity_window: u64,
}

impl AuthSettings {
    /// Seconds a challenge of a `kind` token can be answered when no policy says otherwise.
    pub fn challenge_validity(&self, kind: crate::store::TokenKind) -> u64 {
        match kind {
            crate::store::TokenKind::Email => self.email_challenge_validity,
            _ => self.sms_challenge_validity,
        }
    }

    /// Seconds during which no new code of a `kind` token is sent when no policy says
    /// otherwise.
    pub fn blocking_timeout(&self, kind: crate::store::TokenKind) -> u64 {
        match kind {
            crate::store::TokenKind::Email => self.email_blocking_timeout,
            _ => self.sms_blocking_timeout,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            split_at_sign: true,
            sms_challenge_validity: 120,
            sms_blocking_timeout: 30,
            email_challenge_validity: 600,
            email_blocking_timeout: 120,
            max_fail: 10,
            lockout_duration: 0,
            trigger_limit: 5,
            trigger_window: 600,
            hotp_window: 10,
            totp_step: 30,
            otp_digits: 6,
            delivery_timeout: 30,
            backoff_after: 10,
            backoff_initial: 1,
            backoff_max: 300,
            backoff_forget: 3600,
            backoff_identity_after: 100,
            backoff_identity_window: 2,
        }
    }
}

/// Failures inside the engine. Each becomes an Access-Reject with a generic message; the
/// detail goes to the log and the audit.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A directory could not answer.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    /// A PIN hash could not be checked.
    #[error(transparent)]
    Hash(#[from] crate::password_hash::HashError),
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// A token could not be created.
    #[error(transparent)]
    Enroll(#[from] enrollment::EnrollError),
}
