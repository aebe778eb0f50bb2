//! Admission of TCP connections before they have proved who they are, for every TCP listener
//! (RadSec now, the HTTP listener next): a stranger with sockets must not take the places, the
//! memory or the descriptors a NAS and the providers need.
//!
//! A listener asks [`Admission::admit`] for each connection it accepted, and keeps the
//! [`Ticket`] for as long as the connection lives. The rules, in order:
//!
//! - at most `max_per_source` connections from one address: more are refused;
//! - at most `max_connections` in all, and only while fewer descriptors are open than the limit
//!   (`RLIMIT_NOFILE`) minus `descriptor_reserve` (at most half the limit), so the store, the
//!   directory and the providers always find one: when either is reached, the oldest
//!   connection that has not finished its handshake is closed to make room
//!   ([`Ticket::evicted`]), and when every connection has, the new one is refused;
//! - the listener bounds the handshake with `handshake_timeout` and calls
//!   [`Ticket::authenticated`] once the peer is known; from then on the connection is never
//!   evicted (its own idle timeout ends it).
//!
//! Descriptors are counted from `/proc/self/fd` at most every 100 ms, and each connection
//! admitted since is added to the count, so a flood costs no directory read per connection.
//! Refusals and evictions are counted in `tessera_connections_refused_total` and
//! `tessera_connections_closed_total` by listener and reason.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::failure::LocalResource;

/// How long a count of open descriptors is trusted.
const RECOUNT: Duration = Duration::from_millis(100);

/// The bounds of one listener (or of several that share an [`Admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_per_source: usize,
    /// How long a connection may take to prove who it is (the TLS handshake).
    pub handshake_timeout: Duration,
    /// Descriptors kept free for everything else (at most half the limit is kept).
    pub descriptor_reserve: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address has `max_per_source` connections open.
    PerSource,
    /// `max_connections` are open and all have finished their handshake.
    Full,
    /// The descriptors left are the reserve, and every connection has finished its handshake.
    Descriptors,
}

impl Refusal {
    /// The `reason` label, and words for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerSource => "per_source",
            Refusal::Full => "full",
            Refusal::Descriptors => "descriptors",
        }
    }
}

/// Why a connection was closed before its handshake finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The oldest unfinished one, to make room for a new one.
    Evicted,
    /// No handshake within `handshake_timeout`.
    HandshakeTimeout,
}

impl Closed {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Evicted => "evicted",
            Closed::HandshakeTimeout => "handshake_timeout",
        }
    }
}

/// The connections of one or more listeners. See the module documentation.
pub struct Admission {
    listener: &'static str,
    limits: AdmissionLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: usize,
    per_source: HashMap<IpAddr, usize>,
    /// Connections still in their handshake, oldest first, with what closes each.
    unfinished: BTreeMap<u64, CancellationToken>,
    next_id: u64,
    descriptors: Option<Count>,
}

/// A count of open descriptors and the limit, when taken, and the admissions since.
struct Count {
    taken: Instant,
    open: usize,
    limit: Option<u64>,
    admitted_since: usize,
}

impl Admission {
    /// An admission for `listener` (its name in metrics and logs).
    pub fn new(listener: &'static str, limits: AdmissionLimits) -> Arc<Admission> {
        Arc::new(Admission {
            listener,
            limits,
            state: Mutex::new(State::default()),
        })
    }

    /// The limits.
    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves counts that are still counts.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `source`, closing the oldest unfinished one if that makes
    /// room, or says why not (and counts it).
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Ticket, Refusal> {
        let mut state = self.state();
        let result = self.admit_locked(&mut state, source);
        drop(state);
        if let Err(refusal) = result {
            crate::metrics::inc(
                "tessera_connections_refused_total",
                &[("listener", self.listener), ("reason", refusal.as_str())],
            );
        }
        result
    }

    fn admit_locked(
        self: &Arc<Self>,
        state: &mut State,
        source: IpAddr,
    ) -> Result<Ticket, Refusal> {
        let from_source = state.per_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.limits.max_per_source {
            return Err(Refusal::PerSource);
        }
        let full = if state.open >= self.limits.max_connections {
            Some(Refusal::Full)
        } else if !self.descriptors_left(state) {
            Some(Refusal::Descriptors)
        } else {
            None
        };
        if let Some(refusal) = full {
            let (_, oldest) = state.unfinished.pop_first().ok_or(refusal)?;
            oldest.cancel();
            self.closed(Closed::Evicted);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open += 1;
        *state.per_source.entry(source).or_insert(0) += 1;
        if let Some(count) = &mut state.descriptors {
            count.admitted_since += 1;
        }
        let evicted = CancellationToken::new();
        state.unfinished.insert(id, evicted.clone());
        Ok(Ticket {
            admission: self.clone(),
            source,
            id,
            evicted,
        })
    }

    /// Whether fewer descriptors are open than the limit minus the reserve (counting each
    /// admission since the last count as one more). A count that fails for want of a
    /// descriptor (or memory) to read `/proc` with says no; one that fails otherwise (no
    /// `/proc`) leaves the decision to the other bounds.
    fn descriptors_left(&self, state: &mut State) -> bool {
        let stale = state
            .descriptors
            .as_ref()
            .is_none_or(|c| c.taken.elapsed() >= RECOUNT);
        if stale {
            state.descriptors = None;
            match crate::descriptors::open().and_then(|o| Ok((o, crate::descriptors::limit()?))) {
                Ok((open, limit)) => {
                    state.descriptors = Some(Count {
                        taken: Instant::now(),
                        open,
                        limit,
                        admitted_since: 0,
                    });
                }
                // No descriptor (or memory) left to count them with: no room.
                Err(error)
                    if LocalResource::find(&error).is_some_and(|r| r != LocalResource::System) =>
                {
                    return false;
                }
                // No /proc to count in: the other bounds decide.
                Err(_) => return true,
            }
        }
        let Some(count) = &state.descriptors else {
            return true;
        };
        let Some(limit) = count.limit.and_then(|l| usize::try_from(l).ok()) else {
            return true;
        };
        let reserve = self.limits.descriptor_reserve.min(limit / 2);
        count.open + count.admitted_since < limit - reserve
    }

    /// Counts a connection closed before its handshake finished.
    pub fn closed(&self, why: Closed) {
        crate::metrics::inc(
            "tessera_connections_closed_total",
            &[("listener", self.listener), ("reason", why.as_str())],
        );
    }

    fn release(&self, source: IpAddr, id: u64) {
        let mut state = self.state();
        state.open = state.open.saturating_sub(1);
        if let Some(n) = state.per_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_source.remove(&source);
            }
        }
        state.unfinished.remove(&id);
    }

    /// Connections open now (for tests and logs).
    pub fn open(&self) -> usize {
        self.state().open
    }
}

/// One admitted connection's place; dropping it gives the place back.
pub struct Ticket {
    admission: Arc<Admission>,
    source: IpAddr,
    id: u64,
    evicted: CancellationToken,
}

impl Ticket {
    /// Completes when the connection is closed to make room for a newer one; until
    /// [`Ticket::authenticated`], the connection's task waits on this beside its handshake.
    pub fn evicted(&self) -> WaitForCancellationFutureOwned {
        self.evicted.clone().cancelled_owned()
    }

    /// The peer proved who it is: its connection is no longer evicted.
    pub fn authenticated(&self) {
        self.admission.state().unfinished.remove(&self.id);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.source, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, max_per_source: usize) -> AdmissionLimits {
        AdmissionLimits {
            max_connections,
            max_per_source,
            handshake_timeout: Duration::from_secs(5),
            descriptor_reserve: 0,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let admission = Admission::new("test", limits(10, 2));
        let a = admission.admit(ip(1)).unwrap();
        let _b = admission.admit(ip(1)).unwrap();
        assert_eq!(admission.admit(ip(1)).err(), Some(Refusal::PerSource));
        assert!(
            admission.admit(ip(2)).is_ok(),
            "another address is not affected"
        );
        drop(a);
        assert!(
            admission.admit(ip(1)).is_ok(),
            "a closed one frees its place"
        );
    }

    #[test]
    fn when_full_the_oldest_unfinished_connection_makes_room() {
        let admission = Admission::new("test", limits(3, 3));
        let oldest = admission.admit(ip(1)).unwrap();
        let done = admission.admit(ip(2)).unwrap();
        done.authenticated();
        let newer = admission.admit(ip(3)).unwrap();
        // Full: the newcomer is admitted and the oldest unfinished one told to close.
        let newest = admission.admit(ip(4)).unwrap();
        assert!(oldest.evicted.is_cancelled());
        assert!(!newer.evicted.is_cancelled() && !done.evicted.is_cancelled());
        drop(oldest);
        // Again: `newer` goes, never the authenticated one.
        let fifth = admission.admit(ip(5)).unwrap();
        assert!(newer.evicted.is_cancelled());
        drop(newer);
        newest.authenticated();
        fifth.authenticated();
        // Nothing left to evict: refused.
        assert_eq!(admission.admit(ip(6)).err(), Some(Refusal::Full));
        assert!(!done.evicted.is_cancelled());
    }

    #[test]
    fn full_of_authenticated_connections_refuses() {
        let admission = Admission::new("test", limits(1, 1));
        let only = admission.admit(ip(1)).unwrap();
        only.authenticated();
        assert_eq!(admission.admit(ip(2)).err(), Some(Refusal::Full));
        assert_eq!(admission.open(), 1);
        drop(only);
        assert_eq!(admission.open(), 0);
    }

    #[test]
    fn the_descriptor_reserve_is_kept() {
        // A reserve as large as the limit keeps half of it: this test process has far fewer
        // open, so connections are admitted.
        let mut generous = limits(100, 100);
        generous.descriptor_reserve = usize::MAX;
        assert!(Admission::new("test", generous).admit(ip(1)).is_ok());
        // With every descriptor below the limit counted as taken, none is admitted.
        let admission = Admission::new("test", limits(100, 100));
        {
            let mut state = admission.state();
            state.descriptors = Some(Count {
                taken: Instant::now(),
                open: 1000,
                limit: Some(1024),
                admitted_since: 24,
            });
        }
        assert_eq!(admission.admit(ip(1)).err(), Some(Refusal::Descriptors));
    }
}
