//! The store's decisions, made once for both backends: pure functions over what a backend read
//! inside the transaction that decides a race. `sqlite/` and `postgres/` only read and write —
//! each with its own SQL, batching and locks — and ask these functions what to do, so a rule
//! changed here changes for every backend's users at once (issue 27; the back-off's own
//! arithmetic is in `auth::backoff`, the model for this module).
//!
//! - [`decide_start`]: may a challenge start — "enroll unless the identity has a token",
//!   "return the challenge this request started (a retransmit) or the one standing within a
//!   target's blocking timeout", "refuse at the trigger limit". It is asked again after each
//!   read and names the next read it needs ([`Start::Read`]), so a backend reads exactly what
//!   it read before the decisions moved here, in the same order, and nothing more.
//! - [`failures_after`] and [`forgotten`]: how one more failed first factor changes a back-off
//!   row. SQLite's upsert and PostgreSQL's batched update compute it in SQL (one statement
//!   each, no read before the write); their statements say the same, PostgreSQL's batch
//!   folding uses [`forgotten`], and the conformance suite (`tests/store_conformance/`) checks
//!   both backends against [`failures_after`].
//! - [`grace_lasts`]: whether a re-authentication grace still holds.
//!
//! Times are milliseconds since the epoch, as in the [`Store`](super::Store) trait.

use super::{Backoff, ChallengeRequest};

/// An open challenge row as [`Store::start_challenge`](super::Store::start_challenge) reads
/// it to decide whether one stands.
#[derive(Debug, Clone)]
pub struct OpenRow {
    /// Its State.
    pub state: String,
    /// Its token.
    pub serial: String,
    /// When it was started (ms since the epoch).
    pub created_at: i64,
    /// The digest of the request that started it, if recorded.
    pub request_digest: Option<Vec<u8>>,
}

/// What a backend has read so far while starting a challenge, inside its transaction (under
/// the identity's lock on PostgreSQL, in the writer's transaction on SQLite).
#[derive(Debug, Clone, Default)]
pub struct StartReads {
    /// Whether the identity has a token ([`StartRead::HasToken`]).
    pub has_token: Option<bool>,
    /// The identity's open, unexpired challenge rows, newest first ([`StartRead::OpenRows`]).
    pub open: Option<Vec<OpenRow>>,
    /// How many challenges (distinct States) the identity started since the start of the
    /// trigger window ([`StartRead::StartedSince`]).
    pub started: Option<u32>,
}

/// The next read [`decide_start`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRead {
    /// Whether the identity has any token (only asked when the request would enroll one).
    HasToken,
    /// The identity's open challenge rows unexpired at `now_ms`, newest first.
    OpenRows,
    /// The identity's challenges (distinct States, closed ones too) created at or after this
    /// time (ms).
    StartedSince(i64),
}

/// What [`decide_start`] decided, or what it needs to know first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start<'a> {
    /// Read this, put it into [`StartReads`], and ask again.
    Read(StartRead),
    /// The request would enroll, but the identity has a token now.
    AlreadyEnrolled,
    /// This challenge (its State) stands: answer with its rows, send nothing.
    Open(&'a str),
    /// The trigger limit is reached: this many challenges in the window.
    Limited(u32),
    /// Go: enroll the request's token if it has one, allocate each target's counter and
    /// store the rows as pending.
    Allocate,
}

/// See the module documentation: the decisions of
/// [`Store::start_challenge`](super::Store::start_challenge), in their order.
pub fn decide_start<'a>(reads: &'a StartReads, request: &ChallengeRequest) -> Start<'a> {
    if request.enroll.is_some() {
        match reads.has_token {
            None => return Start::Read(StartRead::HasToken),
            Some(true) => return Start::AlreadyEnrolled,
            Some(false) => {}
        }
    }
    let Some(open) = &reads.open else {
        return Start::Read(StartRead::OpenRows);
    };
    if let Some(state) = standing_challenge(open, request) {
        return Start::Open(state);
    }
    let Some(started) = reads.started else {
        let since = request.now_ms.saturating_sub(request.trigger_window_ms);
        return Start::Read(StartRead::StartedSince(since));
    };
    if started >= request.trigger_limit {
        return Start::Limited(started);
    }
    Start::Allocate
}

/// The State of the challenge that stands against `request` among the identity's open rows
/// (newest first): the one this very request started within the retransmit window (it is
/// resent: to another node, or from another port), else the newest one to one of the targets
/// still inside that target's blocking timeout.
fn standing_challenge<'a>(open: &'a [OpenRow], request: &ChallengeRequest) -> Option<&'a str> {
    let resent = request.request_digest.as_ref().and_then(|digest| {
        open.iter().find(|row| {
            row.created_at >= request.retransmit_since_ms
                && row.request_digest.as_deref() == Some(digest.as_slice())
        })
    });
    let blocking = || {
        open.iter().find(|row| {
            request
                .targets
                .iter()
                .find(|t| t.serial == row.serial)
                .is_some_and(|t| request.now_ms < row.created_at.saturating_add(t.blocking_ms))
        })
    };
    resent.or_else(blocking).map(|row| row.state.as_str())
}

/// Whether failures whose last one was at `last_failure_ms` are forgotten at `now_ms`: they
/// are `forget_ms` or more old, and the next failure counts from one.
pub fn forgotten(last_failure_ms: i64, now_ms: i64, forget_ms: i64) -> bool {
    now_ms.saturating_sub(last_failure_ms) >= forget_ms
}

/// A back-off row after one more failure at `now_ms`: one more than before, or one if the
/// earlier ones are [`forgotten`]; the last failure is the later of the two times (failures
/// queued on two nodes may arrive out of order).
pub fn failures_after(row: Option<Backoff>, now_ms: i64, forget_ms: i64) -> Backoff {
    match row {
        Some(row) if !forgotten(row.last_failure_ms, now_ms, forget_ms) => Backoff {
            failures: row.failures.saturating_add(1),
            last_failure_ms: row.last_failure_ms.max(now_ms),
        },
        Some(row) => Backoff {
            failures: 1,
            last_failure_ms: row.last_failure_ms.max(now_ms),
        },
        None => Backoff {
            failures: 1,
            last_failure_ms: now_ms,
        },
    }
}

/// Whether a grace granted until `until_ms` ([`Store::grant_grace`](super::Store::grant_grace))
/// still holds at `now_ms`. A grace that ended stays in the store until
/// [`Store::purge_challenges`](super::Store::purge_challenges) passes its end.
pub fn grace_lasts(until_ms: Option<i64>, now_ms: i64) -> bool {
    until_ms.is_some_and(|until| now_ms < until)
}

/// The most characters of a token's description kept.
pub const DESCRIPTION_MAX: usize = 80;

/// A token's description as stored: control characters dropped, at most
/// [`DESCRIPTION_MAX`] characters, surrounding space trimmed.
pub fn description(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(DESCRIPTION_MAX)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests;
