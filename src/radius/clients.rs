//! The client table: source address (IP or CIDR, IPv4 or IPv6) → shared secret and options.
//! The longest matching prefix wins; an address that matches nothing is not a client and its
//! packets are dropped unanswered.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::Secret;

/// `[[client]]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// An IP address or CIDR network.
    pub address: toml::Spanned<String>,
    /// The shared secret.
    pub secret: Secret,
    /// A name for logs and audit (default: the address).
    #[serde(default)]
    pub name: Option<String>,
    /// Drop Access-Requests without Message-Authenticator (BlastRADIUS defence). Default true.
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    /// Drop requests carrying Proxy-State but no Message-Authenticator. Default true.
    #[serde(default = "default_true")]
    pub limit_proxy_state: bool,
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
    /// The network it covers.
    pub network: IpNet,
    /// The shared secret.
    pub secret: Secret,
    /// The name used in logs, audit and policies.
    pub name: String,
    /// See [`ClientConfig::require_message_authenticator`].
    pub require_message_authenticator: bool,
    /// See [`ClientConfig::limit_proxy_state`].
    pub limit_proxy_state: bool,
}

/// All clients, most specific first.
#[derive(Debug, Clone, Default)]
pub struct ClientTable {
    clients: Vec<Client>,
}

impl ClientTable {
    /// Builds the table; order of `clients` does not matter.
    pub fn new(mut clients: Vec<Client>) -> Self {
        clients.sort_by_key(|c| std::cmp::Reverse(c.network.prefix_len()));
        ClientTable { clients }
    }

    /// The client a source address belongs to (longest prefix).
    pub fn find(&self, source: IpAddr) -> Option<&Client> {
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(source),
            v4 => v4,
        };
        self.clients.iter().find(|c| c.network.contains(&source))
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(net: &str, name: &str) -> Client {
        Client {
            network: parse_address(net).unwrap(),
            secret: Secret::from("s"),
            name: name.into(),
            require_message_authenticator: true,
            limit_proxy_state: true,
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
}
