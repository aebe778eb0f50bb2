//! Passthru to a legacy RADIUS server during a migration (`passthru=NAME` policies,
//! `[radius_upstream.NAME]` in the config): tessera as a RADIUS *proxy* for users who have no
//! token yet.
//!
//! A forwarded request is a new request of tessera's own to the upstream: a fresh Request
//! Authenticator, the User-Password hidden again with the upstream's secret, a
//! Message-Authenticator, the NAS's attributes (Proxy-State included, RFC 2865 §5.33) and one
//! Proxy-State of tessera's, which the upstream echoes and tessera removes. Each forward uses a
//! socket of its own, so the Identifier needs no bookkeeping; a lost request or reply is sent
//! again, the same bytes (RFC 5080 §2.2.1: a retransmit keeps Identifier and Authenticator),
//! up to `retries` times, each try waiting `timeout`. The reply must carry the right Response
//! Authenticator and, unless the upstream is marked as unable to, a valid Message-Authenticator;
//! anything else is dropped like a forged reply and the next try waits.
//!
//! The upstream's answer is relayed as is — Accept, Reject or Challenge with its State and
//! Reply-Message — re-signed for the NAS. A challenge's State is remembered in
//! [`UpstreamStates`] for a while, so the NAS's second round goes to the same upstream without
//! the engine (which knows nothing of that State). Those States live in this process only: a
//! NAS that fails over to another tessera between the rounds of a *legacy* challenge starts
//! again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::net::UdpSocket;

use super::codec::{Attribute, AttributeType, Code, Packet};
use super::crypto;
use crate::secret::Secret;

/// `[radius_upstream.NAME]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `host:port` of the legacy server (an IP address; port 1812 when left out).
    pub address: toml::Spanned<String>,
    /// The shared secret tessera uses as the upstream's client.
    pub secret: Secret,
    /// Seconds to wait for each try (default 3).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Tries after the first (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Require a valid Message-Authenticator in the upstream's replies (default true; turn off
    /// only for a server too old to send one).
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
}

fn default_timeout() -> f64 {
    3.0
}

fn default_retries() -> u32 {
    2
}

fn default_true() -> bool {
    true
}

/// A legacy server, checked.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its configured name.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    secret: Secret,
    timeout: Duration,
    retries: u32,
    require_message_authenticator: bool,
}

/// Why a forward got no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No (valid) reply after every try.
    #[error("upstream {name} ({address}) did not answer after {tries} tries")]
    NoAnswer {
        /// Its name.
        name: String,
        /// Its address.
        address: SocketAddr,
        /// How many requests were sent.
        tries: u32,
    },
    /// A local socket error.
    #[error("upstream {name}: {reason}")]
    Socket {
        /// Its name.
        name: String,
        /// What failed.
        reason: String,
    },
}

impl UpstreamConfig {
    /// Checks the config; `Err` is a message about `address`.
    pub fn check(&self, name: &str) -> Result<Upstream, String> {
        let text = self.address.get_ref().trim();
        let address = text
            .parse::<SocketAddr>()
            .or_else(|_| {
                text.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 1812))
            })
            .map_err(|_| format!("{text:?} is not an IP address with an optional :port"))?;
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(format!("timeout {} is not a positive number", self.timeout));
        }
        Ok(Upstream {
            name: name.to_string(),
            address,
            secret: self.secret.clone(),
            timeout: Duration::from_secs_f64(self.timeout),
            retries: self.retries,
            require_message_authenticator: self.require_message_authenticator,
        })
    }
}

/// The configured upstreams by name.
#[derive(Debug, Clone, Default)]
pub struct Upstreams(pub BTreeMap<String, Upstream>);

impl Upstreams {
    /// The upstream called `name`.
    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.0.get(name)
    }
}

impl Upstream {
    /// Forwards the NAS's `request` (whose User-Password, in the clear, is `password`) and
    /// returns the upstream's reply, checked, with tessera's own Proxy-State removed.
    pub async fn forward(
        &self,
        request: &Packet,
        password: &[u8],
    ) -> Result<Packet, UpstreamError> {
        let socket_error = |e: std::io::Error| UpstreamError::Socket {
            name: self.name.clone(),
            reason: e.to_string(),
        };
        let mut authenticator = [0u8; 16];
        let mut marker = [0u8; 8];
        getrandom::fill(&mut authenticator)
            .and_then(|()| getrandom::fill(&mut marker))
            .map_err(|e| UpstreamError::Socket {
                name: self.name.clone(),
                reason: format!("random source failed: {e}"),
            })?;
        let secret = self.secret.expose();
        let mut attributes: Vec<Attribute> = request
            .attributes
            .iter()
            .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR)
            .map(|a| {
                if a.typ == AttributeType::USER_PASSWORD {
                    Attribute {
                        typ: a.typ,
                        value: crypto::hide_password(password, &authenticator, secret),
                    }
                } else {
                    a.clone()
                }
            })
            .collect();
        attributes.push(Attribute {
            typ: AttributeType::PROXY_STATE,
            value: marker.to_vec(),
        });
        let outgoing = Packet {
            code: Code::ACCESS_REQUEST,
            identifier: request.identifier,
            authenticator,
            attributes,
        };
        let bytes = outgoing
            .encode_request(secret, true)
            .map_err(|e| UpstreamError::Socket {
                name: self.name.clone(),
                reason: e.to_string(),
            })?;
        let local: SocketAddr = if self.address.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let bind = if self.address.ip().is_loopback() {
            local
        } else if self.address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await.map_err(socket_error)?;
        socket.connect(self.address).await.map_err(socket_error)?;
        let mut buf = vec![0u8; 4096];
        let tries = self.retries.saturating_add(1);
        for _ in 0..tries {
            socket.send(&bytes).await.map_err(socket_error)?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await
            {
                let len = received.map_err(socket_error)?;
                let datagram = buf.get(..len).unwrap_or_default();
                if let Some(reply) = self.accept_reply(datagram, &outgoing, &marker) {
                    return Ok(reply);
                }
                tracing::warn!(upstream = %self.name, "reply from the upstream dropped: bad authenticator or not ours");
            }
        }
        Err(UpstreamError::NoAnswer {
            name: self.name.clone(),
            address: self.address,
            tries,
        })
    }

    /// The reply, if it answers `sent` and is authentic; tessera's Proxy-State taken out.
    fn accept_reply(&self, datagram: &[u8], sent: &Packet, marker: &[u8]) -> Option<Packet> {
        let reply = Packet::decode(datagram).ok()?;
        if reply.identifier != sent.identifier
            || !matches!(
                reply.code,
                Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
            )
            || !crypto::verify_response(datagram, &sent.authenticator, self.secret.expose())
            || (self.require_message_authenticator && !reply.has_message_authenticator())
        {
            return None;
        }
        let mut reply = reply;
        reply
            .attributes
            .retain(|a| !(a.typ == AttributeType::PROXY_STATE && a.value == marker));
        Some(reply)
    }
}

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
    fn addresses_and_timeouts_are_checked() {
        let config = |address: &str, timeout: f64| UpstreamConfig {
            address: toml::Spanned::new(0..0, address.to_string()),
            secret: Secret::from("s"),
            timeout,
            retries: 2,
            require_message_authenticator: true,
        };
        assert_eq!(
            config("127.0.0.1", 3.0).check("old").unwrap().address,
            "127.0.0.1:1812".parse().unwrap()
        );
        assert_eq!(
            config("[::1]:11812", 3.0).check("old").unwrap().address,
            "[::1]:11812".parse().unwrap()
        );
        assert!(config("legacy.example:1812", 3.0).check("old").is_err());
        assert!(config("127.0.0.1", 0.0).check("old").is_err());
    }

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
