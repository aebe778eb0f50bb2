//! [`UpstreamStates`]: the States of legacy challenges and the upstream that issued each, so
//! the NAS's second round of a legacy challenge goes back to that server (see the parent
//! module). Bounded in size and age; in this process only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a legacy challenge's State is remembered when the upstream gives no
/// Session-Timeout.
const STATE_LIFETIME: Duration = Duration::from_secs(300);
/// Most remembered legacy States; the oldest go first.
const STATE_CAPACITY: usize = 10_000;

/// States issued by upstreams (their Access-Challenges), so the second round of a legacy
/// challenge is forwarded to the server that issued it. Bounded in size and age.
#[derive(Default)]
pub struct UpstreamStates {
    inner: Mutex<StatesInner>,
}

#[derive(Default)]
struct StatesInner {
    by_state: HashMap<Vec<u8>, (String, Instant)>,
    order: VecDeque<Vec<u8>>,
}

impl UpstreamStates {
    /// The process-wide table (it outlives configuration reloads, as open challenges do).
    pub fn global() -> &'static UpstreamStates {
        static STATES: OnceLock<UpstreamStates> = OnceLock::new();
        STATES.get_or_init(UpstreamStates::default)
    }

    /// Remembers that `upstream` issued `state`, for `lifetime` (or the default).
    pub fn remember(&self, state: &[u8], upstream: &str, lifetime: Option<Duration>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let until = Instant::now() + lifetime.unwrap_or(STATE_LIFETIME).min(STATE_LIFETIME * 4);
        while inner.order.len() >= STATE_CAPACITY {
            if let Some(oldest) = inner.order.pop_front() {
                inner.by_state.remove(&oldest);
            }
        }
        if inner
            .by_state
            .insert(state.to_vec(), (upstream.to_string(), until))
            .is_none()
        {
            inner.order.push_back(state.to_vec());
        }
    }

    /// The upstream that issued `state`, if it is remembered and not too old.
    pub fn issuer(&self, state: &[u8]) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        let (name, until) = inner.by_state.get(state)?;
        (Instant::now() < *until).then(|| name.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn legacy_states_are_bounded_and_expire() {
        let states = UpstreamStates::default();
        states.remember(b"abc", "old", None);
        assert_eq!(states.issuer(b"abc").as_deref(), Some("old"));
        assert_eq!(states.issuer(b"abd"), None);
        states.remember(b"gone", "old", Some(Duration::ZERO));
        assert_eq!(states.issuer(b"gone"), None);
        for i in 0..(STATE_CAPACITY + 5) {
            states.remember(format!("s{i}").as_bytes(), "old", None);
        }
        let inner = states.inner.lock().unwrap();
        assert!(inner.by_state.len() <= STATE_CAPACITY);
        assert_eq!(inner.by_state.len(), inner.order.len());
    }
}
