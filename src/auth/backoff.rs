//! The per-identity back-off: failed first factors (a wrong password, a wrong PIN) slow the
//! *name* down instead of locking the person out.
//!
//! LinOTP counts a wrong password on the user's tokens and locks them at `max_fail`, so anyone
//! who knows a user name can lock its owner out, and the "token locked" answer tells them the
//! name exists. tessera counts failed first factors per identity instead: after
//! `backoff_after` consecutive failures, each further attempt within a window that starts at
//! `backoff_initial` and doubles with every failure up to `backoff_max` is refused without
//! checking the password at all. A right password ends it. Failures older than
//! `backoff_forget` are forgotten, which also bounds how long a row lives.
//!
//! The schedule is the same for every name, so neither the answer nor its timing tells an
//! unknown name from a user without a token or a user with one. Where the count lives is
//! what differs: for an identity the directory knows it is in the store (shared by every node
//! and every process on the database); for a name no directory knows it is in
//! [`UnknownNames`], a bounded table in memory — a flood of random names must not become one
//! store write each.

use std::collections::HashMap;
use std::sync::Mutex;

use super::AuthSettings;
use crate::store::Backoff;

/// Most names no directory knows whose failures are remembered; beyond it the oldest half
/// is dropped. 64 Ki entries of ~100 octets: a few MiB at most.
const UNKNOWN_NAMES_CAPACITY: usize = 65_536;

/// When failures turn into refusals, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSchedule {
    /// Failures before the back-off starts.
    pub after: u32,
    /// The first window (ms).
    pub initial_ms: i64,
    /// The longest window (ms).
    pub max_ms: i64,
    /// Failures this old (ms since the last one) are forgotten.
    pub forget_ms: i64,
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
        }
    }

    /// `row` unless its failures are forgotten by `now_ms`.
    pub fn fresh(&self, row: Option<Backoff>, now_ms: i64) -> Option<Backoff> {
        row.filter(|b| now_ms.saturating_sub(b.last_failure_ms) < self.forget_ms)
    }

    /// The window after `failures` consecutive failures: none below `after`, then `initial`,
    /// doubling with each further failure, at most `max`.
    pub fn window_ms(&self, failures: u32) -> i64 {
        if self.after == 0 || failures < self.after {
            return 0;
        }
        let doublings = (failures - self.after).min(62);
        self.initial_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_ms)
    }

    /// How many ms longer `row` refuses attempts without a check, if it does at `now_ms`.
    pub fn refusing_for(&self, row: Option<Backoff>, now_ms: i64) -> Option<i64> {
        let row = self.fresh(row, now_ms)?;
        let until = row
            .last_failure_ms
            .saturating_add(self.window_ms(row.failures));
        (now_ms < until).then(|| until - now_ms)
    }
}

/// Failures of names no directory knows, in memory, bounded (see the module documentation).
#[derive(Default)]
pub struct UnknownNames {
    table: Mutex<HashMap<String, Backoff>>,
}

impl UnknownNames {
    /// The failures recorded for `key`.
    pub fn get(&self, key: &str) -> Option<Backoff> {
        self.table.lock().ok()?.get(key).copied()
    }

    /// One more failure for `key`, forgetting older ones as the schedule says.
    pub fn record_failure(&self, schedule: &BackoffSchedule, key: &str, now_ms: i64) {
        let Ok(mut table) = self.table.lock() else {
            return;
        };
        if table.len() >= UNKNOWN_NAMES_CAPACITY && !table.contains_key(key) {
            table.retain(|_, b| now_ms.saturating_sub(b.last_failure_ms) < schedule.forget_ms);
            if table.len() >= UNKNOWN_NAMES_CAPACITY {
                let mut times: Vec<i64> = table.values().map(|b| b.last_failure_ms).collect();
                times.sort_unstable();
                let cut = times.get(times.len() / 2).copied().unwrap_or(i64::MAX);
                table.retain(|_, b| b.last_failure_ms > cut);
            }
        }
        let previous = schedule.fresh(table.get(key).copied(), now_ms);
        table.insert(
            key.to_string(),
            Backoff {
                failures: previous.map_or(1, |b| b.failures.saturating_add(1)),
                last_failure_ms: now_ms,
            },
        );
    }

    /// Forgets `key`'s failures.
    pub fn clear(&self, key: &str) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(key);
        }
    }

    /// How many names are remembered.
    pub fn len(&self) -> usize {
        self.table.lock().map_or(0, |t| t.len())
    }

    /// Whether no name is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> BackoffSchedule {
        BackoffSchedule::from_settings(&AuthSettings::default())
    }

    /// Issue 12: 10 failures free, then 1 s doubling up to 5 minutes, forgotten after an hour.
    #[test]
    fn issue_12_the_schedule_doubles_up_to_its_maximum() {
        let s = schedule();
        assert_eq!(
            (s.after, s.initial_ms, s.max_ms, s.forget_ms),
            (10, 1_000, 300_000, 3_600_000)
        );
        let windows: Vec<i64> = (8..=20).map(|f| s.window_ms(f)).collect();
        assert_eq!(
            windows,
            [
                0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000,
                300_000, 300_000
            ]
        );
        assert_eq!(s.window_ms(u32::MAX), 300_000, "no overflow");
    }

    #[test]
    fn issue_12_refusals_follow_the_clock() {
        let s = schedule();
        let row = Some(Backoff {
            failures: 12,
            last_failure_ms: 100_000,
        });
        assert_eq!(s.refusing_for(row, 100_000), Some(4_000));
        assert_eq!(s.refusing_for(row, 103_999), Some(1));
        assert_eq!(s.refusing_for(row, 104_000), None, "the window has passed");
        let below = Some(Backoff {
            failures: 9,
            last_failure_ms: 100_000,
        });
        assert_eq!(s.refusing_for(below, 100_000), None);
        assert_eq!(s.fresh(row, 100_000 + 3_600_000), None, "forgotten");
    }

    #[test]
    fn issue_12_unknown_names_count_alike_and_stay_bounded() {
        let s = schedule();
        let names = UnknownNames::default();
        for i in 0..12 {
            names.record_failure(&s, "mallory@local", 1_000 + i);
        }
        let row = names.get("mallory@local");
        assert_eq!(row.map(|b| b.failures), Some(12));
        assert_eq!(s.refusing_for(row, 1_011), Some(4_000));
        for i in 0..(UNKNOWN_NAMES_CAPACITY as i64 + 10) {
            names.record_failure(&s, &format!("n{i}"), 2_000 + i);
        }
        assert!(names.len() <= UNKNOWN_NAMES_CAPACITY, "{}", names.len());
        names.clear("n0");
        assert_eq!(names.get("n0"), None);
    }
}
