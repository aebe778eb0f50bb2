//! Counters of what the RADIUS server received, answered and dropped, and a rate limiter that
//! logs each kind of drop at most once a minute per client, so a flood cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// The source address is no configured client.
    UnknownClient,
    /// The datagram is not a well-formed RADIUS packet.
    Malformed,
    /// A code we do not serve on this port (CoA, Accounting-Request without an accounting
    /// service …).
    UnsupportedCode,
    /// Message-Authenticator missing where it is required.
    MissingMessageAuthenticator,
    /// Message-Authenticator wrong: wrong secret or forged.
    BadMessageAuthenticator,
    /// Proxy-State without Message-Authenticator while `limit_proxy_state` is on.
    ProxyStateWithoutAuthenticator,
    /// A retransmit of a request still being processed.
    DuplicateInFlight,
    /// Too many requests in flight (or RadSec connections open).
    Overloaded,
    /// A UDP packet from a client that is `tls_only`.
    TlsOnly,
    /// A RadSec connection whose TLS handshake failed (certificate refused, not TLS …).
    TlsHandshake,
    /// An Accounting-Request whose Request Authenticator is wrong: wrong secret or forged.
    BadRequestAuthenticator,
    /// An Access-Request on the accounting port.
    WrongPort,
    /// An accounting record the store did not commit (failing, or the client's bound on
    /// open sessions reached): unanswered, so the NAS sends it again.
    NotRecorded,
}

impl DropCause {
    /// All causes, for reports.
    pub const ALL: [DropCause; 13] = [
        DropCause::UnknownClient,
        DropCause::Malformed,
        DropCause::UnsupportedCode,
        DropCause::MissingMessageAuthenticator,
        DropCause::BadMessageAuthenticator,
        DropCause::ProxyStateWithoutAuthenticator,
        DropCause::DuplicateInFlight,
        DropCause::Overloaded,
        DropCause::TlsOnly,
        DropCause::TlsHandshake,
        DropCause::BadRequestAuthenticator,
        DropCause::WrongPort,
        DropCause::NotRecorded,
    ];

    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::UnknownClient => "unknown_client",
            DropCause::Malformed => "malformed",
            DropCause::UnsupportedCode => "unsupported_code",
            DropCause::MissingMessageAuthenticator => "missing_message_authenticator",
            DropCause::BadMessageAuthenticator => "bad_message_authenticator",
            DropCause::ProxyStateWithoutAuthenticator => {
                "proxy_state_without_message_authenticator"
            }
            DropCause::DuplicateInFlight => "duplicate_in_flight",
            DropCause::Overloaded => "overloaded",
            DropCause::TlsOnly => "tls_only",
            DropCause::TlsHandshake => "tls_handshake",
            DropCause::BadRequestAuthenticator => "bad_request_authenticator",
            DropCause::WrongPort => "wrong_port",
            DropCause::NotRecorded => "not_recorded",
        }
    }

    fn index(self) -> usize {
        DropCause::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// The counters. Shared by every socket loop; updates are relaxed atomics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Datagrams received.
    pub received: AtomicU64,
    /// Replies sent (fresh).
    pub replied: AtomicU64,
    /// Cached replies re-sent for retransmits.
    pub resent: AtomicU64,
    drops: [AtomicU64; DropCause::ALL.len()],
    log_limiter: Mutex<HashMap<(IpAddr, DropCause), Instant>>,
}

impl Counters {
    /// Counts a drop and says whether it should be logged (once a minute per client and cause).
    pub fn record_drop(&self, cause: DropCause, source: IpAddr) -> bool {
        if let Some(c) = self.drops.get(cause.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut seen) = self.log_limiter.lock() else {
            return false;
        };
        let now = Instant::now();
        if seen.len() > 10_000 {
            seen.retain(|_, t| now.duration_since(*t) < Duration::from_secs(60));
        }
        match seen.get(&(source, cause)) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                seen.insert((source, cause), now);
                true
            }
        }
    }

    /// How many drops of a cause so far.
    pub fn drops(&self, cause: DropCause) -> u64 {
        self.drops
            .get(cause.index())
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}
