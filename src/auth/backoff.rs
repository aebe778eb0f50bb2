//! The back-off: failed first factors (a wrong password, a wrong PIN) slow an identity down
//! *where they come from*, instead of locking the person out.
//!
//! LinOTP counts a wrong password on the user's tokens and locks them at `max_fail`, so anyone
//! who knows a user name can lock its owner out, and the "token locked" answer tells them the
//! name exists. tessera counts failed first factors per identity instead, twice (issue 23):
//!
//! - **per origin**, where the attempt comes from as the front end tells it
//!   ([`AuthRequest::origin`](super::AuthRequest::origin): RADIUS's Calling-Station-Id, else
//!   the NAS's address). After `backoff_after` consecutive failures from one origin, each
//!   further attempt from it within a window that starts at `backoff_initial` and doubles with
//!   every failure up to `backoff_max` is refused without checking the password at all. The
//!   owner on a station that has not failed still gets in while a stranger guesses from
//!   another; a right password ends its origin's back-off.
//! - **over every origin**, a ceiling that only slows: a stranger who can present fresh
//!   origins at will (a NAS that passes a client-chosen MAC address) gets `backoff_after`
//!   checks from each. Once the identity's failures from all origins reach
//!   `backoff_identity_after` (far above `backoff_after`), every attempt within
//!   `backoff_identity_window` (a few seconds, never doubled) of its last counted failure is
//!   refused unchecked. Refused attempts are not counted, so the guesses are held to one per
//!   window, and the refusals end a few seconds after the guessing stops; no right password
//!   ends this count (that would hand the guesser a fresh allowance), time does.
//!
//! Failures older than `backoff_forget` are forgotten, which also bounds how long a row lives.
//! `backoff_after = 0` turns it all off: nothing is counted, nothing written.
//!
//! The schedule is the same for every name, so neither the answer nor its timing tells an
//! unknown name from a user without a token or a user with one. Where the counts live is what
//! differs: for an identity the directory knows they are in the store (shared by every node
//! and every process on the database: one row per origin and one for the identity, read in one
//! statement and written in one); for a name no directory knows they are in [`UnknownNames`],
//! bounded tables in memory — a flood of random names or stations must not become one store
//! write each. [`UnderAttack`] remembers, also bounded, which identities are past the ceiling
//! (the metric `tessera_backoff_identities_under_attack`).
//!
//! Everything that decides is here, in pure functions both stores' rows go through; the
//! stores only count (one upsert, a failure after `backoff_forget` starting over at one).

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthSettings;
use crate::store::{Backoff, Backoffs, decide};
use crate::time::UnixMs;

/// Most entries of each in-memory table; beyond it the oldest half is dropped. 64 Ki entries
/// of ~100 octets: a few MiB at most per table.
const TABLE_CAPACITY: usize = 65_536;

/// The longest `backoff_identity_window` (s): the ceiling slows, it must never lock.
pub const IDENTITY_WINDOW_MAX: u64 = 10;

/// When failures turn into refusals, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSchedule {
    /// Failures from one origin before its back-off starts; 0: no back-off at all.
    pub after: u32,
    /// The first window (ms).
    pub initial_ms: i64,
    /// The longest window (ms).
    pub max_ms: i64,
    /// Failures this old (ms since the last one) are forgotten.
    pub forget_ms: i64,
    /// Failures of the identity from all origins before the ceiling refuses; 0: no ceiling.
    pub identity_after: u32,
    /// The ceiling's window after each counted failure (ms).
    pub identity_window_ms: i64,
}

/// Why an attempt is refused without a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its origin is in back-off.
    Origin {
        /// Consecutive failures from the origin.
        failures: u32,
        /// How much longer the window lasts (ms).
        left_ms: i64,
    },
    /// The identity is past its ceiling.
    Identity {
        /// Failures from all origins.
        failures: u32,
        /// How much longer the window lasts (ms).
        left_ms: i64,
    },
}

impl BackoffSchedule {
    /// The schedule `[auth]` configures.
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let ms = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        BackoffSchedule {
            after: settings.backoff_after,
            initial_ms: ms(settings.backoff_initial),
            max_ms: ms(settings.backoff_max),
            forget_ms: ms(settings.backoff_forget),
            identity_after: settings.backoff_identity_after,
            identity_window_ms: ms(settings.backoff_identity_window.min(IDENTITY_WINDOW_MAX)),
        }
    }

    /// Whether failures are counted at all (`backoff_after` is not 0).
    pub fn is_on(&self) -> bool {
        self.after > 0
    }

    /// `row` unless its failures are forgotten by `now`.
    pub fn fresh(&self, row: Option<Backoff>, now: UnixMs) -> Option<Backoff> {
        row.filter(|b| !decide::forgotten(b.last_failure, now, self.forget_ms))
    }

    /// Both rows, each unless forgotten by `now`.
    pub fn fresh_rows(&self, rows: Backoffs, now: UnixMs) -> Backoffs {
        Backoffs {
            identity: self.fresh(rows.identity, now),
            origin: self.fresh(rows.origin, now),
        }
    }

    /// An origin's window after `failures` consecutive failures: none below `after`, then
    /// `initial`, doubling with each further failure, at most `max`.
    pub fn window_ms(&self, failures: u32) -> i64 {
        if !self.is_on() || failures < self.after {
            return 0;
        }
        let doublings = (failures - self.after).min(62);
        self.initial_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_ms)
    }

    /// The identity's window after `failures` from all origins: none below the ceiling, then
    /// always the same short one.
    pub fn identity_window(&self, failures: u32) -> i64 {
        if !self.is_on() || self.identity_after == 0 || failures < self.identity_after {
            return 0;
        }
        self.identity_window_ms
    }

    /// Whether the identity's `row` is past the ceiling (and not forgotten) at `now`.
    pub fn over_ceiling(&self, row: Option<Backoff>, now: UnixMs) -> bool {
        self.fresh(row, now)
            .is_some_and(|b| self.identity_window(b.failures) > 0)
    }

    /// Whether an attempt with these rows is refused at `now` without a check, and why:
    /// its origin's back-off first, then the identity's ceiling.
    pub fn refusing(&self, rows: Backoffs, now: UnixMs) -> Option<Refusal> {
        let left = |row: Option<Backoff>, window: fn(&Self, u32) -> i64| {
            let row = self.fresh(row, now)?;
            let until = row.last_failure.plus_ms(window(self, row.failures));
            (now < until).then(|| (row.failures, until.ms_since(now)))
        };
        if let Some((failures, left_ms)) = left(rows.origin, Self::window_ms) {
            return Some(Refusal::Origin { failures, left_ms });
        }
        left(rows.identity, Self::identity_window)
            .map(|(failures, left_ms)| Refusal::Identity { failures, left_ms })
    }

    /// `row` with one more failure at `now`, forgetting older ones as the schedule says
    /// (what the stores' upserts do, for the in-memory tables).
    fn counted(&self, row: Option<Backoff>, now: UnixMs) -> Backoff {
        decide::failures_after(row, now, self.forget_ms)
    }
}

/// A bounded table of rows in memory, keyed by text: when full, forgotten rows go first, then
/// the older half.
#[derive(Default)]
struct Table {
    rows: Mutex<HashMap<String, Backoff>>,
}

impl Table {
    fn get(&self, key: &str) -> Option<Backoff> {
        self.rows.lock().ok()?.get(key).copied()
    }

    /// Sets `key`'s row to what `change` makes of it, making room first if needed.
    fn update(
        &self,
        schedule: &BackoffSchedule,
        key: &str,
        now: UnixMs,
        change: impl FnOnce(Option<Backoff>) -> Backoff,
    ) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        if rows.len() >= TABLE_CAPACITY && !rows.contains_key(key) {
            rows.retain(|_, b| !decide::forgotten(b.last_failure, now, schedule.forget_ms));
            if rows.len() >= TABLE_CAPACITY {
                let mut times: Vec<UnixMs> = rows.values().map(|b| b.last_failure).collect();
                times.sort_unstable();
                let cut = times
                    .get(times.len() / 2)
                    .copied()
                    .unwrap_or(UnixMs::from_ms(i64::MAX));
                rows.retain(|_, b| b.last_failure > cut);
            }
        }
        let row = change(rows.get(key).copied());
        rows.insert(key.to_string(), row);
    }

    fn remove(&self, key: &str) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.remove(key);
        }
    }

    fn len(&self) -> usize {
        self.rows.lock().map_or(0, |r| r.len())
    }
}

/// The key of an origin's row: the identity's key and the origin, apart by a NUL (which no
/// identity holds: control characters are refused in names).
fn origin_key(identity: &str, origin: &str) -> String {
    format!("{identity}\0{origin}")
}

/// Failures of names no directory knows, in memory, bounded (see the module documentation):
/// per name and per name and origin, exactly as the store keeps a known identity's.
#[derive(Default)]
pub struct UnknownNames {
    identities: Table,
    origins: Table,
}

impl UnknownNames {
    /// The failures recorded for `name` (from all origins, and from `origin`).
    pub fn get(&self, name: &str, origin: &str) -> Backoffs {
        Backoffs {
            identity: self.identities.get(name),
            origin: self.origins.get(&origin_key(name, origin)),
        }
    }

    /// One more failure of `name` from `origin`, forgetting older ones as the schedule says.
    pub fn record_failure(
        &self,
        schedule: &BackoffSchedule,
        name: &str,
        origin: &str,
        now: UnixMs,
    ) {
        let count = |row| schedule.counted(row, now);
        self.identities.update(schedule, name, now, count);
        self.origins
            .update(schedule, &origin_key(name, origin), now, count);
    }

    /// Forgets the failures of `name` from `origin` (a right password). Its count over all
    /// origins stays, as in the store.
    pub fn clear(&self, name: &str, origin: &str) {
        self.origins.remove(&origin_key(name, origin));
    }

    /// How many rows are remembered (names and names with origins).
    pub fn len(&self) -> usize {
        self.identities.len() + self.origins.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The identities this node has seen past the ceiling, bounded, for the gauge
/// `tessera_backoff_identities_under_attack`.
#[derive(Default)]
pub struct UnderAttack {
    seen: Table,
}

impl UnderAttack {
    /// Notes `identity` if its `row` (over all origins) is past the ceiling at `now`.
    pub fn note(
        &self,
        schedule: &BackoffSchedule,
        identity: &str,
        row: Option<Backoff>,
        now: UnixMs,
    ) {
        if let Some(row) = row.filter(|_| schedule.over_ceiling(row, now)) {
            self.seen.update(schedule, identity, now, |_| row);
        }
    }

    /// How many identities were past the ceiling and are not forgotten at `now`; the
    /// forgotten ones are dropped.
    pub fn count(&self, schedule: &BackoffSchedule, now: UnixMs) -> usize {
        let Ok(mut rows) = self.seen.rows.lock() else {
            return 0;
        };
        rows.retain(|_, b| schedule.fresh(Some(*b), now).is_some());
        rows.len()
    }
}

#[cfg(test)]
mod tests;
