//! The client table: source address (IP or CIDR, IPv4 or IPv6) → shared secret and options,
//! for UDP; and certificate identity (a subject alternative name or a SHA-256 fingerprint) →
//! options, for RadSec (RFC 6614), where the shared secret is always `radsec`.
//! For UDP the longest matching prefix wins; an address that matches nothing is not a client
//! and its packets are dropped unanswered. Over TLS a certificate that matches no client is
//! refused during the handshake (`radius::tls`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::Secret;

/// `[[client]]` in the config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// An IP address or CIDR network (UDP). Absent: the client talks RadSec only.
    #[serde(default)]
    pub address: Option<toml::Spanned<String>>,
    /// The shared secret (UDP; needed with `address`).
    #[serde(default, skip_serializing)]
    pub secret: Option<Secret>,
    /// The client's certificate for RadSec: a subject alternative name (DNS name, IP address,
    /// e-mail or URI, as written in the certificate) or `sha256:` and the certificate's
    /// SHA-256 fingerprint in hex (colons allowed).
    #[serde(default)]
    pub tls_identity: Option<toml::Spanned<String>>,
    /// Drop this client's UDP packets (counted): a NAS that speaks RadSec cannot be
    /// downgraded to MD5-protected UDP by someone who knows the shared secret.
    #[serde(default)]
    pub tls_only: bool,
    /// A name for logs and audit (default: the address).
    #[serde(default)]
    pub name: Option<String>,
    /// Drop Access-Requests without Message-Authenticator (BlastRADIUS defence). Default true.
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    /// Drop requests carrying Proxy-State but no Message-Authenticator. Default true.
    #[serde(default = "default_true")]
    pub limit_proxy_state: bool,
    /// The NAS's Dynamic Authorization port (RFC 5176, usually 3799): when set, tessera
    /// sends a Disconnect-Request there for each open session of a user whose token an
    /// admin disables or deletes. Absent: no Disconnect-Requests to this client.
    #[serde(default)]
    pub das_port: Option<u16>,
    /// The secret of Disconnect-Requests to `das_port` (default: `secret`).
    #[serde(default, skip_serializing)]
    pub das_secret: Option<Secret>,
}

fn default_true() -> bool {
    true
}

/// Parses a client address: an IP address (a host) or a CIDR network.
pub fn parse_address(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))
}

/// One client, resolved.
#[derive(Debug, Clone)]
pub struct Client {
    /// The network it covers over UDP (none for a RadSec-only client).
    pub network: Option<IpNet>,
    /// The shared secret (`radsec` for the client's TLS entry, RFC 6614 §2.3).
    pub secret: Secret,
    /// The name used in logs, audit and policies.
    pub name: String,
    /// See [`ClientConfig::require_message_authenticator`].
    pub require_message_authenticator: bool,
    /// See [`ClientConfig::limit_proxy_state`].
    pub limit_proxy_state: bool,
    /// See [`ClientConfig::tls_only`].
    pub tls_only: bool,
    /// Where its Disconnect-Requests go, if anywhere ([`ClientConfig::das_port`]).
    pub das: Option<Das>,
}

/// A client's Dynamic Authorization Server (RFC 5176): the port on the NAS (at the address
/// its accounting came from) and the secret.
#[derive(Debug, Clone)]
pub struct Das {
    /// The UDP port.
    pub port: u16,
    /// The shared secret (`das_secret`, else the client's `secret`).
    pub secret: Secret,
}

/// How a RadSec client's certificate is recognised.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsIdentity {
    /// A subject alternative name: DNS names compare without regard to case.
    Name(String),
    /// The SHA-256 digest of the DER certificate.
    Fingerprint([u8; 32]),
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsIdentity::Name(name) => write!(f, "{name}"),
            TlsIdentity::Fingerprint(digest) => {
                write!(f, "sha256:")?;
                digest.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl TlsIdentity {
    /// Parses `tls_identity`: `sha256:` and 64 hex digits (colons allowed) is a fingerprint,
    /// anything else a subject alternative name.
    pub fn parse(s: &str) -> Result<TlsIdentity, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the identity is empty".into());
        }
        let Some(hex) = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
        else {
            return Ok(TlsIdentity::Name(s.to_string()));
        };
        let digits: Vec<u8> = hex
            .bytes()
            .filter(|b| *b != b':')
            .map(|b| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{s:?}: a fingerprint is hex digits"))?;
        let bytes: Vec<u8> = digits
            .chunks(2)
            .map(|p| p.iter().fold(0, |a, d| a * 16 + d))
            .collect();
        match <[u8; 32]>::try_from(bytes) {
            Ok(digest) if digits.len() == 64 => Ok(TlsIdentity::Fingerprint(digest)),
            _ => Err(format!(
                "{s:?}: a SHA-256 fingerprint has 64 hex digits (openssl x509 -fingerprint -sha256)"
            )),
        }
    }

    /// Whether a certificate (its DER bytes and its subject alternative names) has this
    /// identity.
    pub fn matches(&self, der: &[u8], names: &[String]) -> bool {
        match self {
            TlsIdentity::Name(want) => names.iter().any(|n| n.eq_ignore_ascii_case(want)),
            TlsIdentity::Fingerprint(digest) => {
                use sha2::Digest;
                let got: [u8; 32] = sha2::Sha256::digest(der).into();
                subtle::ConstantTimeEq::ct_eq(&got[..], &digest[..]).into()
            }
        }
    }
}

/// All clients: UDP ones most specific first, and RadSec ones by certificate identity.
#[derive(Debug, Clone, Default)]
pub struct ClientTable {
    clients: Vec<Client>,
    tls: Vec<(TlsIdentity, Client)>,
}

impl ClientTable {
    /// Builds the table; order of `clients` does not matter. Clients without a network are
    /// not found by address.
    pub fn new(clients: Vec<Client>) -> Self {
        ClientTable::with_tls(clients, vec![])
    }

    /// Builds the table with RadSec clients too (their secret is `radsec`).
    pub fn with_tls(mut clients: Vec<Client>, tls: Vec<(TlsIdentity, Client)>) -> Self {
        clients.retain(|c| c.network.is_some());
        clients.sort_by_key(|c| std::cmp::Reverse(c.network.map_or(0, |n| n.prefix_len())));
        ClientTable { clients, tls }
    }

    /// The RadSec client a certificate belongs to: the first, in config order, whose identity
    /// it has. `names` are the certificate's subject alternative names.
    pub fn find_tls(&self, der: &[u8], names: &[String]) -> Option<&Client> {
        self.tls
            .iter()
            .find(|(identity, _)| identity.matches(der, names))
            .map(|(_, client)| client)
    }

    /// The client a source address belongs to (longest prefix).
    pub fn find(&self, source: IpAddr) -> Option<&Client> {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        self.clients
            .iter()
            .find(|c| c.network.is_some_and(|n| n.contains(&source)))
    }

    /// The Dynamic Authorization settings of the client entry named `name`, if it has any.
    pub fn das_of(&self, name: &str) -> Option<&Das> {
        self.clients
            .iter()
            .chain(self.tls.iter().map(|(_, c)| c))
            .find(|c| c.name == name)
            .and_then(|c| c.das.as_ref())
    }

    /// Number of clients: a client reached over UDP and RadSec counts once.
    pub fn len(&self) -> usize {
        let tls_only = self
            .tls
            .iter()
            .filter(|(_, t)| !self.clients.iter().any(|c| c.name == t.name))
            .count();
        self.clients.len() + tls_only
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(net: &str, name: &str) -> Client {
        Client {
            network: Some(parse_address(net).unwrap()),
            secret: Secret::from("s"),
            name: name.into(),
            require_message_authenticator: true,
            limit_proxy_state: true,
            tls_only: false,
            das: None,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = ClientTable::new(vec![
            client("10.0.0.0/8", "wide"),
            client("10.1.2.3", "host"),
            client("10.1.0.0/16", "mid"),
            client("::1", "v6"),
        ]);
        let name = |a: &str| t.find(a.parse().unwrap()).map(|c| c.name.clone());
        assert_eq!(name("10.1.2.3").as_deref(), Some("host"));
        assert_eq!(name("10.1.9.9").as_deref(), Some("mid"));
        assert_eq!(name("10.200.0.1").as_deref(), Some("wide"));
        assert_eq!(name("::ffff:10.1.2.3").as_deref(), Some("host"));
        assert_eq!(name("::1").as_deref(), Some("v6"));
        assert_eq!(name("192.0.2.1"), None);
        assert!(parse_address("10.0.0.300").is_err());
        assert_eq!(
            parse_address("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
    }

    #[test]
    fn tls_identities() {
        let fp = "sha256:".to_string() + &"AB:".repeat(31) + "AB";
        assert_eq!(
            TlsIdentity::parse(&fp).unwrap(),
            TlsIdentity::Fingerprint([0xab; 32])
        );
        assert!(TlsIdentity::parse("sha256:abcd").is_err());
        assert!(TlsIdentity::parse(&("sha256:".to_string() + &"zz".repeat(32))).is_err());
        assert!(TlsIdentity::parse(" ").is_err());
        let name = TlsIdentity::parse("nas1.example.org").unwrap();
        assert!(name.matches(b"", &["NAS1.example.org".into()]));
        assert!(!name.matches(b"", &["nas2.example.org".into()]));
        use sha2::Digest;
        let der = b"certificate";
        let digest: [u8; 32] = sha2::Sha256::digest(der).into();
        let by_fp = TlsIdentity::Fingerprint(digest);
        assert!(by_fp.matches(der, &[]));
        assert!(!by_fp.matches(b"another", &[]));
        let table = ClientTable::with_tls(vec![], vec![(name.clone(), client("10.0.0.1", "nas1"))]);
        assert_eq!(
            table
                .find_tls(b"", &["nas1.example.org".into()])
                .map(|c| c.name.as_str()),
            Some("nas1")
        );
        assert!(table.find_tls(b"", &["other".into()]).is_none());
        assert!(table.find("10.0.0.1".parse().unwrap()).is_none());
    }
}
