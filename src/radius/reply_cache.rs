//! Duplicate detection with a reply cache (RFC 5080 §2.2.2).
//!
//! A request is identified by (source address, source port, Identifier, Request
//! Authenticator). While it is being processed, retransmits are dropped; once answered, a
//! retransmit gets the very same reply bytes, so an OTP is never verified twice and an SMS never
//! sent twice because a reply got lost. A new Authenticator with the same Identifier is a new
//! request. Entries live for a configured time and the cache has a fixed size: when full, the
//! oldest answered entries go first.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
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

enum Entry {
    InFlight,
    Answered(Vec<u8>),
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

struct Inner {
    entries: HashMap<RequestKey, Entry>,
    order: VecDeque<(Instant, RequestKey)>,
}

/// See the module documentation.
pub struct ReplyCache {
    inner: Mutex<Inner>,
    lifetime: Duration,
    capacity: usize,
}

impl ReplyCache {
    /// A cache holding replies for `lifetime`, at most `capacity` entries.
    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        ReplyCache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            lifetime,
            capacity: capacity.max(1),
        }
    }

    /// Looks a request up, marking it in flight when it is new.
    pub fn begin(&self, key: RequestKey) -> Lookup {
        let Ok(mut inner) = self.inner.lock() else {
            return Lookup::New;
        };
        let now = Instant::now();
        // Expire old entries (they are in insertion order). Bounded: each entry is looked at
        // at most once per call.
        let mut budget = inner.order.len();
        while let Some((at, old)) = inner.order.front().copied() {
            if budget == 0 {
                break;
            }
            budget -= 1;
            if now.duration_since(at) < self.lifetime && inner.entries.len() < self.capacity {
                break;
            }
            inner.order.pop_front();
            // Never evict a request in flight: its task will complete it.
            if matches!(inner.entries.get(&old), Some(Entry::Answered(_))) {
                inner.entries.remove(&old);
            } else if inner.entries.contains_key(&old) {
                inner.order.push_back((now, old));
                if inner.entries.len() >= self.capacity {
                    break;
                }
            }
        }
        match inner.entries.get(&key) {
            Some(Entry::InFlight) => Lookup::InFlight,
            Some(Entry::Answered(bytes)) => Lookup::Answered(bytes.clone()),
            None => {
                inner.entries.insert(key, Entry::InFlight);
                inner.order.push_back((now, key));
                Lookup::New
            }
        }
    }

    /// Stores the reply of a request that was in flight.
    pub fn complete(&self, key: RequestKey, reply: Vec<u8>) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(entry) = inner.entries.get_mut(&key)
        {
            *entry = Entry::Answered(reply);
        }
    }

    /// Forgets a request that got no reply (dropped), so a retransmit is processed afresh.
    pub fn abort(&self, key: RequestKey) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.remove(&key);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}
