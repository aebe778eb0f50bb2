//! What a conversation does with a peer's packet: the dispatch to its method (GTC, TTLS,
//! PEAP), the Nak (RFC 3748 §5.3.1), the engine's verdict handed back to the method, and the
//! bound on rounds. The methods themselves live in `gtc.rs`, `ttls.rs` and `peap.rs`.

use super::keys::Msk;
use super::packet::{self, Eap, kind};
use super::settings::Method;
use super::{Conversation, Phase, Step, Verdict, gtc, peap, ttls};

/// The most packets one conversation takes from the peer: a TLS handshake with a long
/// certificate chain at small fragments, two inner rounds and PEAP's result take ~20.
pub const MAX_ROUNDS: u32 = 64;

impl Conversation {
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
