//! One EAP conversation's state (which method, the tunnel, the inner method's progress, the
//! engine's challenge State), the dispatch of a peer's packet to its method, and the store of
//! open conversations with its bounds: a fixed number open at once, each forgotten when its
//! peer is silent for longer than its deadline, each with a limit on rounds and on buffered
//! octets. A stranger opening thousands of conversations fills the table and is refused (and
//! counted); nothing grows without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::keys::Msk;
use super::packet::{self, Eap, kind};
use super::settings::Method;
use super::{Step, Verdict, gtc, peap, ttls};

/// The most packets one conversation takes from the peer: a TLS handshake with a long
/// certificate chain at small fragments, two inner rounds and PEAP's result take ~20.
pub const MAX_ROUNDS: u32 = 64;

/// What the method is doing.
pub enum Phase {
    /// A method was proposed; the peer may Nak it once.
    Proposed(Method),
    /// Outer GTC: a request is out.
    Gtc,
    /// TTLS: the tunnel and the inner method.
    Ttls(Box<ttls::Ttls>),
    /// PEAPv0: the tunnel and the inner method.
    Peap(Box<peap::Peap>),
}

/// One conversation.
pub struct Conversation {
    /// The identity of EAP-Response/Identity: the user for outer GTC, only logged for the
    /// tunnelled methods (their inner identity decides).
    pub outer_identity: String,
    /// The method's progress.
    pub phase: Phase,
    /// The identifier of the last request sent.
    pub identifier: u8,
    /// Packets taken from the peer so far.
    pub rounds: u32,
    /// The engine's challenge State, echoed in the next check.
    pub engine_state: Option<Vec<u8>>,
    /// Seconds the engine's last challenge stays answerable.
    pub challenge_timeout: Option<u32>,
    /// The engine's Accept, kept while PEAP exchanges its result.
    pub accepted: Option<super::Accepted>,
    /// Whether a Nak was taken already.
    pub naked: bool,
    /// The TLS fragment size (from Framed-MTU).
    pub fragment: usize,
}

impl Conversation {
    /// A new conversation for `identity`.
    pub fn new(identity: String, first: Method, fragment: usize) -> Conversation {
        Conversation {
            outer_identity: identity,
            phase: Phase::Proposed(first),
            identifier: 0,
            rounds: 0,
            engine_state: None,
            challenge_timeout: None,
            accepted: None,
            naked: false,
            fragment,
        }
    }

    /// The next request's identifier.
    pub fn next_identifier(&mut self) -> u8 {
        self.identifier = self.identifier.wrapping_add(1);
        self.identifier
    }

    /// The request that proposes `method` (GTC's prompt, or the TLS methods' Start).
    pub fn propose(&mut self, method: Method) -> Vec<u8> {
        self.phase = Phase::Proposed(method);
        let id = self.next_identifier();
        match method {
            Method::Gtc => packet::request(id, kind::GTC, gtc::PROMPT.as_bytes()),
            Method::Ttls | Method::Peap => {
                packet::request(id, method.eap_type(), &super::tls::Tunnel::start())
            }
        }
    }

    /// The method's name as audited and logged (`eap-ttls/gtc` …).
    pub fn method_label(&self) -> &'static str {
        match &self.phase {
            Phase::Proposed(Method::Gtc) | Phase::Gtc => "eap-gtc",
            Phase::Proposed(Method::Ttls) => "eap-ttls",
            Phase::Proposed(Method::Peap) => "eap-peap",
            Phase::Ttls(t) => t.label(),
            Phase::Peap(_) => "eap-peap/gtc",
        }
    }

    /// Takes one EAP-Response of this conversation. `server` supplies the methods offered and
    /// the TLS configuration.
    pub fn receive(&mut self, eap: &Eap<'_>, server: &super::EapServer) -> Step {
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Step::Failure("too many rounds");
        }
        if eap.identifier != self.identifier {
            return Step::Failure("a response to another request");
        }
        let Some(typ) = eap.kind else {
            return Step::Failure("not a response");
        };
        if typ == kind::NAK {
            return self.nak(eap.data, server);
        }
        match &mut self.phase {
            Phase::Proposed(method) if typ == method.eap_type() => {
                let method = *method;
                self.begin(method, eap, server)
            }
            Phase::Gtc if typ == kind::GTC => gtc::response(self, eap.data),
            Phase::Ttls(_) if typ == kind::TTLS => ttls::receive(self, eap.data),
            Phase::Peap(_) if typ == kind::PEAP => peap::receive(self, eap.data),
            _ => Step::Failure("a response of another method"),
        }
    }

    /// The method's first response.
    fn begin(&mut self, method: Method, eap: &Eap<'_>, server: &super::EapServer) -> Step {
        match method {
            Method::Gtc => {
                self.phase = Phase::Gtc;
                gtc::response(self, eap.data)
            }
            Method::Ttls | Method::Peap => {
                let Some(config) = server.tls.clone() else {
                    return Step::Failure("no TLS configuration");
                };
                let tunnel = match super::tls::Tunnel::new(config, self.fragment) {
                    Ok(t) => t,
                    Err(_) => return Step::Failure("TLS could not start"),
                };
                if method == Method::Ttls {
                    self.phase = Phase::Ttls(Box::new(ttls::Ttls::new(tunnel)));
                    ttls::receive(self, eap.data)
                } else {
                    self.phase = Phase::Peap(Box::new(peap::Peap::new(tunnel)));
                    peap::receive(self, eap.data)
                }
            }
        }
    }

    /// A Nak (RFC 3748 §5.3.1): the first method offered that the peer asks for, once, before
    /// a method started.
    fn nak(&mut self, desired: &[u8], server: &super::EapServer) -> Step {
        if self.naked || !matches!(self.phase, Phase::Proposed(_)) {
            return Step::Failure("a Nak after the method started");
        }
        self.naked = true;
        match server
            .methods
            .iter()
            .find(|m| desired.contains(&m.eap_type()))
        {
            Some(method) => Step::Send(self.propose(*method)),
            None => Step::Failure("the peer wants none of the methods offered"),
        }
    }

    /// The engine's verdict on the credentials the last step asked about.
    pub fn resume(&mut self, verdict: Verdict) -> Step {
        match &mut self.phase {
            Phase::Gtc => gtc::resume(self, verdict),
            Phase::Ttls(_) => ttls::resume(self, verdict),
            Phase::Peap(_) => peap::resume(self, verdict),
            Phase::Proposed(_) => Step::Failure("a verdict before a method"),
        }
    }

    /// The octets this conversation buffers (TLS fragments), for the memory bound.
    pub fn buffered(&self) -> usize {
        match &self.phase {
            Phase::Ttls(t) => t.tunnel.buffered(),
            Phase::Peap(p) => p.tunnel.buffered(),
            Phase::Proposed(_) | Phase::Gtc => 0,
        }
    }

    /// The MSK, once a tunnel's handshake is done.
    pub fn msk(&self) -> Option<Msk> {
        match &self.phase {
            Phase::Ttls(t) => super::keys::msk(t.tunnel.connection(), kind::TTLS),
            Phase::Peap(p) => super::keys::msk(p.tunnel.connection(), kind::PEAP),
            Phase::Proposed(_) | Phase::Gtc => None,
        }
    }
}

/// Why a new conversation was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The open conversations, by the State tessera gave them.
pub struct Conversations {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    open: HashMap<[u8; 16], (Conversation, Instant)>,
    /// Deadlines in the order they were set; an entry whose deadline moved is stale and
    /// skipped.
    deadlines: VecDeque<([u8; 16], Instant)>,
    /// Conversations being worked on (taken out of `open`), counted against the bound.
    busy: usize,
}

impl Table {
    fn expire(&mut self, now: Instant) {
        while let Some((id, deadline)) = self.deadlines.front().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.open.get(&id).is_some_and(|(_, d)| *d == deadline) {
                self.open.remove(&id);
                crate::metrics::inc("tessera_eap_conversations_total", &[("end", "expired")]);
            }
        }
    }
}

impl Conversations {
    /// The process's conversations (they outlive a reload: a peer in the middle of one keeps
    /// it).
    pub fn global() -> &'static Conversations {
        static GLOBAL: OnceLock<Conversations> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            crate::metrics::register_gauge("tessera_eap_conversations", || {
                Conversations::global().len()
            });
            Conversations::new()
        })
    }

    /// An empty store.
    pub fn new() -> Conversations {
        Conversations {
            inner: Mutex::new(Table::default()),
        }
    }

    /// How many are open (or being worked on).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map_or(0, |t| t.open.len().saturating_add(t.busy))
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for a new conversation under `max`, reserved until [`Conversations::put`] or
    /// [`Conversations::release`]; expired ones are forgotten first.
    pub fn reserve(&self, max: usize, now: Instant) -> Result<(), Full> {
        let Ok(mut table) = self.inner.lock() else {
            return Err(Full);
        };
        table.expire(now);
        if table.open.len().saturating_add(table.busy) >= max {
            return Err(Full);
        }
        table.busy += 1;
        Ok(())
    }

    /// Takes the conversation `id` out to work on it (`None`: unknown or expired).
    pub fn take(&self, id: &[u8], now: Instant) -> Option<Conversation> {
        let id: [u8; 16] = id.try_into().ok()?;
        let mut table = self.inner.lock().ok()?;
        table.expire(now);
        let (conversation, _) = table.open.remove(&id)?;
        table.busy += 1;
        Some(conversation)
    }

    /// Puts a conversation taken (or reserved) back, to wait for the peer until `deadline`.
    pub fn put(&self, id: [u8; 16], conversation: Conversation, deadline: Instant) {
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
            table.open.insert(id, (conversation, deadline));
            table.deadlines.push_back((id, deadline));
        }
    }

    /// A conversation taken (or reserved) is over.
    pub fn release(&self) {
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
        }
    }
}

impl Default for Conversations {
    fn default() -> Self {
        Conversations::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conversation() -> Conversation {
        Conversation::new("alice".into(), Method::Gtc, 1000)
    }

    #[test]
    fn the_table_is_bounded_and_forgets_abandoned_conversations() {
        let store = Conversations::new();
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        for i in 0..3u8 {
            store.reserve(3, now).unwrap();
            store.put([i; 16], conversation(), later);
        }
        // A stranger's fourth is refused while the three wait.
        assert_eq!(store.reserve(3, now), Err(Full));
        assert_eq!(store.len(), 3);
        // Taken out and back in, a conversation keeps its place; its new deadline counts.
        let c = store.take(&[0; 16], now).unwrap();
        store.put([0; 16], c, later + Duration::from_secs(30));
        // Past the first deadline the abandoned two are forgotten, the moved one is not.
        assert!(store.reserve(3, later).is_ok());
        store.release();
        assert_eq!(store.len(), 1);
        assert!(store.take(&[1; 16], later).is_none());
        assert!(store.take(&[0; 16], later).is_some());
        store.release();
        assert!(store.is_empty());
        // A State of another length is nobody's.
        assert!(store.take(&[0; 3], later).is_none());
    }
}
