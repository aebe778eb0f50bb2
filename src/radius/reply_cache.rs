//! Duplicate detection with a reply cache (RFC 5080 §2.2.2).
//!
//! A request is identified by (source address, source port, Identifier, Request
//! Authenticator). While it is being processed, retransmits are dropped; once answered, a
//! retransmit gets the very same reply bytes, so an OTP is never verified twice and an SMS never
//! sent twice because a reply got lost. A new Authenticator with the same Identifier is a new
//! request. Entries live for a configured time and the cache has a fixed size: when full, the
//! oldest answered entries go first. Its memory follows that size whatever the traffic: a
//! request dropped after the lookup (wrong Message-Authenticator, overload) leaves nothing
//! behind, and [`Pending`] makes sure every path out of a request ends its entry.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What identifies one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// Source address and port.
    pub source: SocketAddr,
    /// RADIUS Identifier.
    pub identifier: u8,
    /// Request Authenticator.
    pub authenticator: [u8; 16],
}

enum State {
    InFlight,
    Answered(Vec<u8>),
}

/// One cached request: where it sits in the age order, since when, and its state.
struct Entry {
    seq: u64,
    at: Instant,
    state: State,
}

/// What to do with an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// First time seen: process it.
    New,
    /// Still being processed: drop the retransmit.
    InFlight,
    /// Already answered: send these bytes again.
    Answered(Vec<u8>),
}

/// The entries and their age order. Invariant: `order` holds exactly one element per entry
/// (`order[entry.seq] == key`), so removing an entry removes it from both and the memory held
/// is bounded by the number of entries — whatever happens to the requests (a request dropped
/// after the lookup, e.g. for a wrong Message-Authenticator, once left its key in a queue for
/// the cache's whole lifetime, and a flood of them grew the queue without limit).
struct Inner {
    entries: HashMap<RequestKey, Entry>,
    order: BTreeMap<u64, RequestKey>,
    next_seq: u64,
}

impl Inner {
    fn remove(&mut self, key: &RequestKey) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.seq);
        }
    }

    /// Moves an entry to the young end of the order, as if inserted `now`.
    fn renew(&mut self, key: RequestKey, now: Instant) {
        let seq = self.next_seq;
        if let Some(entry) = self.entries.get_mut(&key) {
            self.order.remove(&entry.seq);
            entry.seq = seq;
            entry.at = now;
            self.order.insert(seq, key);
            self.next_seq += 1;
        }
    }
}

/// See the module documentation.
pub struct ReplyCache {
    inner: Mutex<Inner>,
    lifetime: Duration,
    capacity: usize,
}

/// Entries a cache reserves room for at once; a larger configured size grows past it.
const MAX_PRESIZED: usize = 1 << 20;

impl ReplyCache {
    /// A cache holding replies for `lifetime`, at most `capacity` answered entries (plus the
    /// requests in flight, which the server's `max_in_flight` bounds).
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        ReplyCache {
            inner: Mutex::new(Inner {
                // Sized once for the whole capacity: a hash table that grows rehashes every
                // entry into fresh memory under the lock, and every request waits meanwhile —
                // 4 ms at 28,672 entries and 8 ms at 57,344 on a 2-core VM, the stalls a
                // paced run saw at those very request counts (issue 18). Pages are touched as
                // entries arrive, so memory still follows the traffic.
                entries: HashMap::with_capacity(capacity.clamp(1, MAX_PRESIZED)),
                order: BTreeMap::new(),
                next_seq: 0,
            }),
            lifetime,
            capacity: capacity.max(1),
        }
    }

    /// Looks a request up, marking it in flight when it is new. Call [`ReplyCache::complete`]
    /// or [`ReplyCache::abort`] for every `New` (see [`Pending`]).
    pub fn begin(&self, key: RequestKey) -> Lookup {
        let Ok(mut inner) = self.inner.lock() else {
            return Lookup::New;
        };
        let now = Instant::now();
        // Expire old entries (oldest first), and make room when full. Bounded: each entry is
        // looked at at most once per call.
        let mut budget = inner.order.len();
        while budget > 0 {
            budget -= 1;
            let Some((&_seq, &old)) = inner.order.first_key_value() else {
                break;
            };
            let Some(entry) = inner.entries.get(&old) else {
                // Cannot happen (the invariant); repair rather than loop.
                inner.order.pop_first();
                continue;
            };
            let expired = now.duration_since(entry.at) >= self.lifetime;
            if !expired && inner.entries.len() < self.capacity {
                break;
            }
            match entry.state {
                State::Answered(_) => inner.remove(&old),
                // Never evict a request in flight: its task will complete or abort it. It
                // goes to the young end, so the answered ones behind it can go.
                State::InFlight => inner.renew(old, now),
            }
        }
        match inner.entries.get(&key) {
            Some(Entry {
                state: State::InFlight,
                ..
            }) => Lookup::InFlight,
            Some(Entry {
                state: State::Answered(bytes),
                ..
            }) => Lookup::Answered(bytes.clone()),
            None => {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.entries.insert(
                    key,
                    Entry {
                        seq,
                        at: now,
                        state: State::InFlight,
                    },
                );
                inner.order.insert(seq, key);
                Lookup::New
            }
        }
    }

    /// Stores the reply of a request that was in flight.
    pub fn complete(&self, key: RequestKey, reply: Vec<u8>) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(entry) = inner.entries.get_mut(&key)
        {
            entry.state = State::Answered(reply);
        }
    }

    /// Forgets a request that got no reply (dropped), so a retransmit is processed afresh.
    pub fn abort(&self, key: RequestKey) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.remove(&key);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    /// Length of the age order (equal to [`ReplyCache::len`]; reported as a metric so a test
    /// can watch the bound hold from outside).
    pub fn order_len(&self) -> usize {
        self.inner.lock().map(|i| i.order.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request marked in flight: dropped without [`Pending::complete`], it aborts its entry,
/// so no path (an early return, a panicking task) leaves a request "in flight" for good —
/// that would drop its retransmits forever and hold a place in the cache.
pub struct Pending {
    cache: Arc<ReplyCache>,
    key: RequestKey,
    done: bool,
}

impl Pending {
    /// Tracks `key`, which [`ReplyCache::begin`] just answered `New` for.
    pub fn new(cache: Arc<ReplyCache>, key: RequestKey) -> Self {
        Pending {
            cache,
            key,
            done: false,
        }
    }

    /// Stores the reply.
    pub fn complete(mut self, reply: Vec<u8>) {
        self.cache.complete(self.key, reply);
        self.done = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.cache.abort(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, auth: u8) -> RequestKey {
        RequestKey {
            source: "127.0.0.1:5000".parse().unwrap(),
            identifier: id,
            authenticator: [auth; 16],
        }
    }

    /// Issue 18: the table is sized once, so filling the cache never rehashes it under the lock
    /// (a stall of every request at 28,672 and 57,344 entries before).
    #[test]
    fn filling_the_cache_never_grows_its_table() {
        let cache = ReplyCache::new(Duration::from_secs(60), 65_536);
        let capacity = |c: &ReplyCache| c.inner.lock().unwrap().entries.capacity();
        let reserved = capacity(&cache);
        assert!(reserved >= 65_536, "{reserved}");
        for n in 0..70_000u32 {
            let mut authenticator = [0u8; 16];
            authenticator[..4].copy_from_slice(&n.to_le_bytes());
            let key = RequestKey {
                source: "127.0.0.1:5000".parse().unwrap(),
                identifier: 0,
                authenticator,
            };
            assert!(matches!(cache.begin(key), Lookup::New));
            cache.complete(key, vec![2]);
        }
        assert_eq!(cache.len(), 65_536);
        // Never more room than reserved (a little less as removals leave tombstones).
        assert!(capacity(&cache) <= reserved, "{}", capacity(&cache));
    }

    #[test]
    fn life_of_a_request() {
        let cache = ReplyCache::new(Duration::from_secs(30), 100);
        assert_eq!(cache.begin(key(1, 1)), Lookup::New);
        assert_eq!(cache.begin(key(1, 1)), Lookup::InFlight);
        assert_eq!(
            cache.begin(key(1, 2)),
            Lookup::New,
            "new authenticator, same id: new request"
        );
        cache.complete(key(1, 1), vec![9, 9]);
        assert_eq!(cache.begin(key(1, 1)), Lookup::Answered(vec![9, 9]));
        cache.abort(key(1, 2));
        assert_eq!(cache.begin(key(1, 2)), Lookup::New);
    }

    #[test]
    fn expiry_and_capacity() {
        let cache = ReplyCache::new(Duration::from_millis(0), 100);
        assert_eq!(cache.begin(key(1, 1)), Lookup::New);
        cache.complete(key(1, 1), vec![1]);
        assert_eq!(cache.begin(key(2, 2)), Lookup::New);
        assert_eq!(cache.begin(key(1, 1)), Lookup::New, "expired entry is gone");

        let cache = ReplyCache::new(Duration::from_secs(60), 2);
        for i in 0..5 {
            assert_eq!(cache.begin(key(i, i)), Lookup::New);
            cache.complete(key(i, i), vec![i]);
        }
        assert!(cache.len() <= 3, "bounded: {}", cache.len());
    }

    #[test]
    fn requests_dropped_after_the_lookup_leave_nothing_behind() {
        let cache = Arc::new(ReplyCache::new(Duration::from_secs(60), 10));
        for i in 0..10_000u32 {
            let mut k = key(0, 0);
            k.authenticator[..4].copy_from_slice(&i.to_be_bytes());
            assert_eq!(cache.begin(k), Lookup::New);
            if i % 2 == 0 {
                cache.abort(k);
            } else {
                drop(Pending::new(cache.clone(), k));
            }
        }
        assert_eq!((cache.len(), cache.order_len()), (0, 0));
        for i in 0..100 {
            assert_eq!(cache.begin(key(i, i)), Lookup::New);
            Pending::new(cache.clone(), key(i, i)).complete(vec![i]);
            assert!(cache.len() <= 10 && cache.order_len() == cache.len());
        }
    }

    #[test]
    fn in_flight_entries_are_kept_while_answered_ones_make_room() {
        let cache = ReplyCache::new(Duration::from_secs(60), 2);
        assert_eq!(cache.begin(key(1, 1)), Lookup::New);
        for i in 2..20 {
            assert_eq!(cache.begin(key(i, i)), Lookup::New);
            cache.complete(key(i, i), vec![i]);
        }
        assert_eq!(cache.begin(key(1, 1)), Lookup::InFlight);
        assert!(cache.len() <= 3 && cache.order_len() == cache.len());
    }
}
