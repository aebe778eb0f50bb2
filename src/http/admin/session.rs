//! Sessions of the admin API and the page, in this node's memory: a logged-in operator's
//! ([`Session`]) and a login waiting for its second factor ([`PendingLogin`]), each behind a
//! random 256-bit id that only the cookie holds.
//!
//! The map is keyed by the SHA-256 of the id, so a lookup's timing tells nothing about the
//! ids held, and a memory dump shows no usable id. A session ends after `session_idle_timeout`
//! without a request, `session_lifetime` after its login, at logout, and when tessera stops.
//! The map holds at most `max_sessions` entries: expired ones go first, then the oldest
//! pending logins, then a new login is refused (503) — a flood of password attempts cannot grow
//! it. Sessions are not shared between nodes: several nodes behind one name need sticky
//! sessions at the load balancer (see docs/src/helpdesk.md).
//!
//! Each session has its own CSRF token (another 256 random bits), which every state-changing
//! request must echo (`X-CSRF-Token` or the form field `csrf`); compared in constant time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::admin::{Role, SelfServiceAction};

/// The session cookie's name; `__Host-` under TLS (the browser then insists on `Secure`,
/// `Path=/` and no `Domain`).
pub const COOKIE: &str = "tessera_session";

/// The same under TLS.
pub const COOKIE_TLS: &str = "__Host-tessera_session";

/// How long a login may wait for its second factor at most (the challenge's own validity
/// ends it sooner).
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// A logged-in operator or self-service user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The identity the directory returned.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The role decided at login.
    pub role: Role,
    /// What self-service allows (for [`Role::SelfService`]), as configured at login.
    pub selfservice: Vec<SelfServiceAction>,
    /// The CSRF token (hex).
    pub csrf: String,
    /// Where the login came from.
    pub address: IpAddr,
    /// When it logged in.
    pub created: Instant,
    /// Its latest request.
    pub last_seen: Instant,
}

/// A login whose password was right and whose code is awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The name as typed (the engine resolves it again on the second round).
    pub user_name: String,
    /// The engine's State.
    pub state: Vec<u8>,
    /// What the engine told the user (where the code went).
    pub message: String,
    /// Where the login came from: the code must come from there too.
    pub address: IpAddr,
    /// When it ends.
    pub expires: Instant,
}

#[derive(Debug, Clone)]
enum Entry {
    Active(Session),
    Pending(PendingLogin),
}

/// What a cookie's id finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A live session (its idle time restarted).
    Active(Session),
    /// A login waiting for its code.
    Pending(PendingLogin),
    /// It was a session or a pending login, and it has expired (now removed).
    Expired,
    /// Nothing (a forged, old or foreign id).
    Unknown,
}

/// The map is full of live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sessions open; try again later")]
pub struct Full;

/// Every session of this node.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// Session timing, from `[admin]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Idle timeout.
    pub idle: Duration,
    /// Absolute lifetime.
    pub lifetime: Duration,
    /// Most entries.
    pub max: usize,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 256 random bits in hex.
pub fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(crate::hex::encode(&bytes))
}

/// Whether `given` is `expected`, in time independent of where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl Entry {
    fn expired(&self, now: Instant, limits: Limits) -> bool {
        match self {
            Entry::Active(s) => {
                now.duration_since(s.last_seen) >= limits.idle
                    || now.duration_since(s.created) >= limits.lifetime
            }
            Entry::Pending(p) => now >= p.expires,
        }
    }
}

impl Sessions {
    /// An empty map.
    pub fn new() -> Self {
        Sessions::default()
    }

    /// What `id` finds now; a live session's idle time restarts.
    pub fn find(&self, id: &str, limits: Limits) -> Found {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return Found::Unknown;
        };
        let key = key(id);
        let Some(entry) = entries.get_mut(&key) else {
            return Found::Unknown;
        };
        if entry.expired(now, limits) {
            entries.remove(&key);
            return Found::Expired;
        }
        match entry {
            Entry::Active(session) => {
                session.last_seen = now;
                Found::Active(session.clone())
            }
            Entry::Pending(pending) => Found::Pending(pending.clone()),
        }
    }

    /// Stores a session or pending login under a new id, replacing `replaces` (the pending
    /// login a session follows, or a session logged in again): returns the new id.
    fn insert(&self, entry: Entry, replaces: Option<&str>, limits: Limits) -> Result<String, Full> {
        let id = random_id().map_err(|_| Full)?;
        let now = Instant::now();
        let mut entries = self.entries.lock().map_err(|_| Full)?;
        if let Some(old) = replaces {
            entries.remove(&key(old));
        }
        if entries.len() >= limits.max {
            entries.retain(|_, e| !e.expired(now, limits));
        }
        if entries.len() >= limits.max {
            // Logins waiting for a code go before anyone logged in.
            let oldest = entries
                .iter()
                .filter_map(|(k, e)| match e {
                    Entry::Pending(p) => Some((p.expires, *k)),
                    Entry::Active(_) => None,
                })
                .min();
            if let Some((_, k)) = oldest {
                entries.remove(&k);
            }
        }
        if entries.len() >= limits.max {
            return Err(Full);
        }
        entries.insert(key(&id), entry);
        Ok(id)
    }

    /// Opens a session, ending `replaces`; returns its id (the cookie's value).
    pub fn open(
        &self,
        session: Session,
        replaces: Option<&str>,
        limits: Limits,
    ) -> Result<String, Full> {
        self.insert(Entry::Active(session), replaces, limits)
    }

    /// Keeps a login waiting for its code, ending `replaces`; returns its id.
    pub fn wait_for_code(
        &self,
        pending: PendingLogin,
        replaces: Option<&str>,
        limits: Limits,
    ) -> Result<String, Full> {
        self.insert(Entry::Pending(pending), replaces, limits)
    }

    /// Ends a session or pending login.
    pub fn end(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&key(id));
        }
    }

    /// How many entries are held (tests, metrics).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new session of `user` in `realm` with `role`, from `address`, with a fresh CSRF token.
pub fn new_session(
    user: String,
    realm: String,
    role: Role,
    selfservice: Vec<SelfServiceAction>,
    address: IpAddr,
) -> Result<Session, getrandom::Error> {
    let now = Instant::now();
    Ok(Session {
        user,
        realm,
        role,
        selfservice,
        csrf: random_id()?,
        address,
        created: now,
        last_seen: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle_ms: u64, max: usize) -> Limits {
        Limits {
            idle: Duration::from_millis(idle_ms),
            lifetime: Duration::from_secs(3600),
            max,
        }
    }

    fn session() -> Session {
        new_session(
            "alice".into(),
            "local".into(),
            Role::Helpdesk,
            vec![],
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn ids_find_their_session_and_nothing_else() {
        let sessions = Sessions::new();
        let l = limits(60_000, 10);
        let id = sessions.open(session(), None, l).unwrap();
        assert_eq!(id.len(), 64);
        assert!(matches!(sessions.find(&id, l), Found::Active(s) if s.user == "alice"));
        // One hex digit changed: the last one, to a digit it is not.
        let last = if id.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &id[..63]);
        assert_eq!(sessions.find(&forged, l), Found::Unknown);
        sessions.end(&id);
        assert_eq!(sessions.find(&id, l), Found::Unknown);
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = Sessions::new();
        let l = limits(30, 10);
        let id = sessions.open(session(), None, l).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(sessions.find(&id, l), Found::Expired);
        assert_eq!(sessions.find(&id, l), Found::Unknown);
    }

    #[test]
    fn a_busy_session_ends_at_its_lifetime() {
        let sessions = Sessions::new();
        let l = Limits {
            idle: Duration::from_secs(60),
            lifetime: Duration::from_millis(80),
            max: 10,
        };
        let id = sessions.open(session(), None, l).unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(matches!(sessions.find(&id, l), Found::Active(_)));
        }
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(sessions.find(&id, l), Found::Expired);
    }

    #[test]
    fn full_map_drops_pending_logins_first_then_refuses() {
        let sessions = Sessions::new();
        let l = limits(60_000, 2);
        let pending = PendingLogin {
            user_name: "bob".into(),
            state: vec![1],
            message: String::new(),
            address: "127.0.0.1".parse().unwrap(),
            expires: Instant::now() + PENDING_LIFETIME,
        };
        let waiting = sessions.wait_for_code(pending, None, l).unwrap();
        let first = sessions.open(session(), None, l).unwrap();
        let second = sessions.open(session(), None, l).unwrap();
        assert_eq!(sessions.find(&waiting, l), Found::Unknown);
        assert!(matches!(sessions.find(&first, l), Found::Active(_)));
        assert!(matches!(sessions.find(&second, l), Found::Active(_)));
        assert_eq!(sessions.open(session(), None, l), Err(Full));
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
    }
}
