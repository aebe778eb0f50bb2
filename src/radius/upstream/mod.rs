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
//! Authenticator, and a Message-Authenticator, when there is one, must be valid; anything else
//! is dropped like a forged reply and the next try waits.
//!
//! Whether a reply *without* Message-Authenticator is taken is the upstream's
//! `require_message_authenticator` ([`RequireMessageAuthenticator`]), as FreeRADIUS 3.2.5 has
//! it for its own clients: `yes`, `no`, or `auto` (the default), which requires it once the
//! upstream has sent one. A stock FreeRADIUS before 3.2.5 (Debian 12's 3.2.1) signs a reply
//! only when its reply list holds the attribute, so under `yes` it never gets through; `auto`
//! lets a migration start against it and still holds a server that signs to it. What `auto`
//! has seen is remembered per upstream (name and address) for the life of the process, reloads
//! included (`Signers`). A reply dropped for want of the attribute is said once per upstream
//! in a warning that names the setting.
//!
//! The upstream's answer is relayed as is — Accept, Reject or Challenge with its State and
//! Reply-Message — re-signed for the NAS. A challenge's State is remembered in
//! [`UpstreamStates`] for a while, so the NAS's second round goes to the same upstream without
//! the engine (which knows nothing of that State). Those States live in this process only: a
//! NAS that fails over to another tessera between the rounds of a *legacy* challenge starts
//! again. `states.rs` holds those States; `accounting.rs` forwards the accounting of passthru
//! users.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::net::UdpSocket;

use super::codec::{Attribute, AttributeType, Code, Packet};
use super::crypto;
use crate::secret::Secret;

mod accounting;
mod states;
pub use states::UpstreamStates;

/// `[radius_upstream.NAME]` as written.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `host:port` of the legacy server (an IP address; port 1812 when left out).
    pub address: toml::Spanned<String>,
    /// The shared secret tessera uses as the upstream's client.
    #[serde(skip_serializing)]
    pub secret: Secret,
    /// Seconds to wait for each try (default 3).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Tries after the first (default 2).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Whether the upstream's replies must carry a Message-Authenticator: `yes`, `no` or `auto`
    /// (the default; see the module documentation). `true`/`false` mean `yes`/`no`.
    #[serde(default)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// `host:port` where the legacy server takes accounting (default: `address` with the
    /// port after its own, 1813 for 1812): passthru users' accounting is forwarded there.
    #[serde(default)]
    pub accounting_address: Option<toml::Spanned<String>>,
}

/// `require_message_authenticator` of an upstream (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(try_from = "MessageAuthenticatorSetting", rename_all = "lowercase")]
pub enum RequireMessageAuthenticator {
    /// Every reply must carry one (`yes`, `true`).
    Yes,
    /// A reply without one is taken (`no`, `false`); one that carries it must still be right.
    No,
    /// Required from the first reply that carried one on (`auto`).
    #[default]
    Auto,
}

/// The setting as written: a word or a boolean.
#[derive(Deserialize)]
#[serde(untagged)]
enum MessageAuthenticatorSetting {
    Flag(bool),
    Word(String),
}

impl TryFrom<MessageAuthenticatorSetting> for RequireMessageAuthenticator {
    type Error = String;

    fn try_from(value: MessageAuthenticatorSetting) -> Result<Self, String> {
        match value {
            MessageAuthenticatorSetting::Flag(true) => Ok(Self::Yes),
            MessageAuthenticatorSetting::Flag(false) => Ok(Self::No),
            MessageAuthenticatorSetting::Word(w) => match w.to_ascii_lowercase().as_str() {
                "yes" | "true" => Ok(Self::Yes),
                "no" | "false" => Ok(Self::No),
                "auto" => Ok(Self::Auto),
                _ => Err(format!("{w:?} is not yes, no or auto")),
            },
        }
    }
}

fn default_timeout() -> f64 {
    3.0
}

fn default_retries() -> u32 {
    2
}

/// A legacy server, checked.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its configured name.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Where it takes accounting.
    pub accounting_address: SocketAddr,
    secret: Secret,
    timeout: Duration,
    retries: u32,
    require_message_authenticator: RequireMessageAuthenticator,
}

/// Why a forward got no answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No (valid) reply after every try.
    #[error("upstream {name} ({address}) did not answer after {tries} tries{}", unsigned_note(*.unsigned))]
    NoAnswer {
        /// Its name.
        name: String,
        /// Its address.
        address: SocketAddr,
        /// How many requests were sent.
        tries: u32,
        /// How many authentic replies were dropped for want of a Message-Authenticator.
        unsigned: u32,
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

/// What [`UpstreamError::NoAnswer`] adds when the upstream did answer, unsigned.
fn unsigned_note(unsigned: u32) -> String {
    if unsigned == 0 {
        String::new()
    } else {
        format!(
            " (it sent {unsigned} replies without Message-Authenticator, dropped under its \
             require_message_authenticator)"
        )
    }
}

impl UpstreamConfig {
    /// Checks the config; `Err` is a message about `address`.
    pub fn check(&self, name: &str) -> Result<Upstream, String> {
        let parse = |text: &str, port: u16| {
            text.parse::<SocketAddr>()
                .or_else(|_| {
                    text.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, port))
                })
                .map_err(|_| format!("{text:?} is not an IP address with an optional :port"))
        };
        let address = parse(self.address.get_ref().trim(), 1812)?;
        let accounting_address = match &self.accounting_address {
            Some(text) => parse(text.get_ref().trim(), 1813)?,
            None => SocketAddr::new(address.ip(), address.port().wrapping_add(1)),
        };
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(format!("timeout {} is not a positive number", self.timeout));
        }
        Ok(Upstream {
            name: name.to_string(),
            address,
            accounting_address,
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
        let socket = UdpSocket::bind(self.local_address())
            .await
            .map_err(socket_error)?;
        socket.connect(self.address).await.map_err(socket_error)?;
        let mut buf = vec![0u8; 4096];
        let tries = self.retries.saturating_add(1);
        let mut unsigned = 0u32;
        for _ in 0..tries {
            socket.send(&bytes).await.map_err(socket_error)?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await
            {
                let len = received.map_err(socket_error)?;
                let datagram = buf.get(..len).unwrap_or_default();
                match self.accept_reply(datagram, &outgoing, &marker) {
                    Ok(reply) => return Ok(reply),
                    Err(Dropped::NotOurs) => {
                        tracing::warn!(upstream = %self.name, "reply from the upstream dropped: bad authenticator or not ours");
                    }
                    Err(Dropped::NoMessageAuthenticator) => {
                        unsigned = unsigned.saturating_add(1);
                        self.warn_unsigned();
                    }
                }
            }
        }
        Err(UpstreamError::NoAnswer {
            name: self.name.clone(),
            address: self.address,
            tries,
            unsigned,
        })
    }

    /// Where the socket to the upstream is bound: loopback for a loopback upstream, else any
    /// address of the upstream's family.
    fn local_address(&self) -> SocketAddr {
        match (self.address.ip().is_loopback(), self.address.is_ipv4()) {
            (true, true) => ([127, 0, 0, 1], 0).into(),
            (true, false) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
            (false, true) => ([0, 0, 0, 0], 0).into(),
            (false, false) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        }
    }

    /// The reply, if it answers `sent` and is authentic; tessera's Proxy-State taken out.
    fn accept_reply(
        &self,
        datagram: &[u8],
        sent: &Packet,
        marker: &[u8],
    ) -> Result<Packet, Dropped> {
        let mut reply = Packet::decode(datagram).map_err(|_| Dropped::NotOurs)?;
        if reply.identifier != sent.identifier
            || !matches!(
                reply.code,
                Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
            )
            // Checks a Message-Authenticator too, when the reply has one.
            || !crypto::verify_response(datagram, &sent.authenticator, self.secret.expose())
        {
            return Err(Dropped::NotOurs);
        }
        // Only an authentic reply teaches `auto` anything.
        let signers = Signers::global();
        if reply.has_message_authenticator() {
            if signers.saw_one(&self.signer_key())
                && self.require_message_authenticator == RequireMessageAuthenticator::Auto
            {
                tracing::info!(upstream = %self.name, "the upstream signs its replies: Message-Authenticator required of it from now on (require_message_authenticator = auto)");
            }
        } else if !self.takes_unsigned(signers) {
            return Err(Dropped::NoMessageAuthenticator);
        }
        reply
            .attributes
            .retain(|a| !(a.typ == AttributeType::PROXY_STATE && a.value == marker));
        Ok(reply)
    }

    /// Whether a reply without Message-Authenticator is taken from this upstream now.
    fn takes_unsigned(&self, signers: &Signers) -> bool {
        match self.require_message_authenticator {
            RequireMessageAuthenticator::No => true,
            RequireMessageAuthenticator::Yes => false,
            RequireMessageAuthenticator::Auto => !signers.has_sent_one(&self.signer_key()),
        }
    }

    /// What [`Signers`] remembers this upstream by: a renamed or moved upstream starts afresh.
    fn signer_key(&self) -> String {
        format!("{} {}", self.name, self.address)
    }

    /// The real reason a reply was dropped, once per upstream (and mode) for the process.
    fn warn_unsigned(&self) {
        let key = format!(
            "{} {:?}",
            self.signer_key(),
            self.require_message_authenticator
        );
        if !Signers::global().first_warning(&key) {
            return;
        }
        match self.require_message_authenticator {
            RequireMessageAuthenticator::Auto => tracing::warn!(
                upstream = %self.name,
                address = %self.address,
                "upstream {} answers without Message-Authenticator after it had sent one; replies without it are dropped (require_message_authenticator = auto)",
                self.name
            ),
            _ => tracing::warn!(
                upstream = %self.name,
                address = %self.address,
                "upstream {} answers without Message-Authenticator; set require_message_authenticator = auto|no for it",
                self.name
            ),
        }
    }
}

/// Why a datagram from the upstream was not taken as its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dropped {
    /// Not a reply to the request, or not authentic.
    NotOurs,
    /// Authentic, but without the Message-Authenticator the upstream's setting requires.
    NoMessageAuthenticator,
}

/// The upstreams that have sent an authentic reply with a Message-Authenticator (so `auto`
/// requires it of them from then on), and the warnings already given; both for the life of the
/// process. Bounded by the number of configured upstreams (and warnings) over its life.
#[derive(Default)]
struct Signers {
    seen: Mutex<HashSet<String>>,
    warned: Mutex<HashSet<String>>,
}

impl Signers {
    fn global() -> &'static Signers {
        static SIGNERS: OnceLock<Signers> = OnceLock::new();
        SIGNERS.get_or_init(Signers::default)
    }

    /// Records a signed reply; whether it is the upstream's first.
    fn saw_one(&self, upstream: &str) -> bool {
        self.seen
            .lock()
            .is_ok_and(|mut seen| !seen.contains(upstream) && seen.insert(upstream.to_string()))
    }

    /// A poisoned lock counts as "seen": the check stays on.
    fn has_sent_one(&self, upstream: &str) -> bool {
        self.seen
            .lock()
            .map_or(true, |seen| seen.contains(upstream))
    }

    /// Whether this is the first warning under `key`.
    fn first_warning(&self, key: &str) -> bool {
        self.warned
            .lock()
            .is_ok_and(|mut warned| warned.insert(key.to_string()))
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
            require_message_authenticator: RequireMessageAuthenticator::Auto,
            accounting_address: None,
        };
        assert_eq!(
            config("127.0.0.1", 3.0).check("old").unwrap().address,
            "127.0.0.1:1812".parse().unwrap()
        );
        assert_eq!(
            config("127.0.0.1", 3.0)
                .check("old")
                .unwrap()
                .accounting_address,
            "127.0.0.1:1813".parse().unwrap()
        );
        assert_eq!(
            config("[::1]:11812", 3.0).check("old").unwrap().address,
            "[::1]:11812".parse().unwrap()
        );
        assert!(config("legacy.example:1812", 3.0).check("old").is_err());
        assert!(config("127.0.0.1", 0.0).check("old").is_err());
    }

    /// An upstream `name` with `mode`, the request it was sent and its replies, signed or not.
    fn replies(name: &str, mode: &str) -> (Upstream, Packet, Vec<u8>, Vec<u8>) {
        let config: UpstreamConfig = toml::from_str(&format!(
            "address = \"127.0.0.1:1\"\nsecret = \"s3\"\nrequire_message_authenticator = {mode}"
        ))
        .unwrap();
        let upstream = config.check(name).unwrap();
        let sent = Packet {
            code: Code::ACCESS_REQUEST,
            identifier: 7,
            authenticator: [9; 16],
            attributes: vec![],
        };
        let accept = Packet {
            code: Code::ACCESS_ACCEPT,
            identifier: 7,
            authenticator: sent.authenticator,
            attributes: vec![],
        };
        let signed = accept.encode_reply(&sent.authenticator, b"s3").unwrap();
        let mut unsigned = accept.encode_raw().unwrap();
        let response = crate::radius::digest::md5_concat(&[&unsigned, b"s3"]);
        unsigned.get_mut(4..20).unwrap().copy_from_slice(&response);
        (upstream, sent, signed, unsigned)
    }

    #[test]
    fn require_message_authenticator_yes_no_auto() {
        let (yes, sent, signed, unsigned) = replies("ma-yes", "\"yes\"");
        assert_eq!(
            yes.accept_reply(&unsigned, &sent, b"m").unwrap_err(),
            Dropped::NoMessageAuthenticator
        );
        assert!(yes.accept_reply(&signed, &sent, b"m").is_ok());
        let (no, ..) = replies("ma-no", "false");
        assert!(no.accept_reply(&unsigned, &sent, b"m").is_ok());
        let mut forged = signed.clone();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(
            no.accept_reply(&forged, &sent, b"m").unwrap_err(),
            Dropped::NotOurs,
            "a wrong one is wrong under no too"
        );

        // auto: unsigned replies until the first signed one, then never again.
        let (auto, ..) = replies("ma-auto", "\"Auto\"");
        assert!(auto.accept_reply(&unsigned, &sent, b"m").is_ok());
        assert!(auto.accept_reply(&unsigned, &sent, b"m").is_ok());
        assert_eq!(
            auto.accept_reply(&forged, &sent, b"m").unwrap_err(),
            Dropped::NotOurs
        );
        assert!(
            auto.accept_reply(&unsigned, &sent, b"m").is_ok(),
            "a forged signed reply teaches auto nothing"
        );
        assert!(auto.accept_reply(&signed, &sent, b"m").is_ok());
        assert_eq!(
            auto.accept_reply(&unsigned, &sent, b"m").unwrap_err(),
            Dropped::NoMessageAuthenticator
        );
        // Remembered for the upstream, not for this copy of it (a reload builds a new one).
        let (again, ..) = replies("ma-auto", "\"auto\"");
        assert!(again.accept_reply(&unsigned, &sent, b"m").is_err());
        let (other, ..) = replies("ma-auto-other", "\"auto\"");
        assert!(other.accept_reply(&unsigned, &sent, b"m").is_ok());
    }

    #[test]
    fn require_message_authenticator_defaults_to_auto() {
        let config: UpstreamConfig =
            toml::from_str("address = \"127.0.0.1\"\nsecret = \"s\"").unwrap();
        assert_eq!(
            config.require_message_authenticator,
            RequireMessageAuthenticator::Auto
        );
        for (written, mode) in [
            ("true", RequireMessageAuthenticator::Yes),
            ("\"no\"", RequireMessageAuthenticator::No),
        ] {
            let config: UpstreamConfig = toml::from_str(&format!(
                "address = \"127.0.0.1\"\nsecret = \"s\"\nrequire_message_authenticator = {written}"
            ))
            .unwrap();
            assert_eq!(config.require_message_authenticator, mode);
        }
        let error = toml::from_str::<UpstreamConfig>(
            "address = \"127.0.0.1\"\nsecret = \"s\"\nrequire_message_authenticator = \"maybe\"",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("is not yes, no or auto"),
            "{error}"
        );
    }
}
