//! What `tessera store copy` moves between stores ([`Store::export`](super::Store::export),
//! [`Store::import`](super::Store::import)): every row, each seed as sealed.

use super::{AuditEntry, Backoff, Challenge, Token};
use crate::time::UnixMs;

/// A token as stored: its seed still sealed (`token.seed` is empty), for `tessera store copy`,
/// which moves sealed seeds between backends without opening or re-sealing them.
#[derive(Debug, Clone)]
pub struct SealedToken {
    /// Every field but the seed.
    pub token: Token,
    /// The seed, sealed under the store's key with the serial as associated data.
    pub sealed: Vec<u8>,
}

/// What `tessera store copy` moves: tokens (seeds sealed), challenges, back-off and grace
/// rows, the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    /// Every token.
    pub tokens: Vec<SealedToken>,
    /// Every challenge row (closed ones count toward the trigger limit).
    pub challenges: Vec<Challenge>,
    /// Every back-off row (per identity and origin, and per identity over all origins): a
    /// move between backends forgives no failure.
    pub backoff: Vec<BackoffRow>,
    /// Every re-authentication grace.
    pub grace: Vec<GraceRow>,
    /// Every audit row, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// What a store that `tessera store copy` refuses holds: counts of tokens, challenge,
/// back-off, grace and audit rows.
pub(crate) fn held_rows(held: [i64; 5]) -> String {
    let [tokens, challenges, backoff, grace, audit] = held;
    format!(
        "{tokens} tokens, {challenges} challenge rows, {backoff} back-off rows, \
         {grace} grace rows, {audit} audit rows"
    )
}

/// An identity's back-off row, for `tessera store copy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffRow {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// Where the failures came from; empty: the identity's count over all origins.
    pub origin: String,
    /// Its failures.
    pub backoff: Backoff,
}

/// A re-authentication grace ([`Store::grant_grace`](super::Store::grant_grace)), for
/// `tessera store copy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceRow {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The NAS.
    pub client: String,
    /// The Calling-Station-Id.
    pub station: String,
    /// Until when.
    pub until: UnixMs,
}
