//! `[http]`: the HTTP listener's keys as written ([`HttpSettings`]), their check into
//! [`HttpConfig`], the allow-list of callers ([`AllowList`]) and the listener's TLS
//! configuration ([`open_tls`]).
//!
//! The section is optional and off by default: without `listen` nothing binds. The TLS keys mean
//! what RadSec's `[server] tls_certificate` / `tls_key` mean (a PEM chain, leaf first, and its
//! key, relative to the config file), and are re-read with the rest of the config on SIGHUP.
//! No client certificate is asked for: callers are admitted by address ([`AllowList`]).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// `[http]` as the file has it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Addresses to serve HTTP on, e.g. `["127.0.0.1:5080"]`; none (the default): off.
    pub listen: Vec<Spanned<String>>,
    /// Networks (CIDRs, or single addresses) whose callers may use `/validate/*`; anyone else
    /// gets 403. Default: the loopback addresses.
    pub allow: Vec<Spanned<String>>,
    /// The server certificate chain (PEM), leaf first; with `tls_key`, the listener speaks
    /// HTTPS only.
    pub tls_certificate: Option<Spanned<PathBuf>>,
    /// The server certificate's private key (PEM).
    pub tls_key: Option<Spanned<PathBuf>>,
    /// Most connections open at once; more are closed on accept (first a stranger's not yet
    /// answered, to make room; see `server.rs`). HTTP/1.1 serves one request at
    /// a time per connection, so this is also the bound on requests in flight.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_connections_per_source: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: vec![],
            allow: ["127.0.0.1/32", "::1/128"]
                .into_iter()
                .map(|a| Spanned::new(0..0, a.to_string()))
                .collect(),
            tls_certificate: None,
            tls_key: None,
            max_connections: 256,
            max_connections_per_source: 16,
        }
    }
}

/// `[http]` checked: addresses parsed, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where to listen; empty: the HTTP face is off.
    pub listen: Vec<SocketAddr>,
    /// Who may call `/validate/*`.
    pub allow: AllowList,
    /// (certificate chain, key) when the listener speaks TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_connections_per_source: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpSettings::default()
            .check(&|p| p.to_path_buf())
            .unwrap_or(HttpConfig {
                listen: vec![],
                allow: AllowList(vec![]),
                tls: None,
                max_connections: 1,
                max_connections_per_source: 1,
            })
    }
}

/// A problem with one key: (span, key, message).
pub type Problem = (Range<usize>, &'static str, String);

impl HttpSettings {
    /// Checks every key; all problems at once. `resolve` makes a path relative to the config
    /// file's directory.
    pub fn check(&self, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<HttpConfig, Vec<Problem>> {
        let mut problems = vec![];
        let mut listen = vec![];
        for address in &self.listen {
            match address.get_ref().parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => problems.push((
                    address.span(),
                    "http.listen",
                    format!(
                        "{:?} is not an address:port (IPv6 as \"[::1]:5080\")",
                        address.get_ref()
                    ),
                )),
            }
        }
        let mut allow = vec![];
        for network in &self.allow {
            match AllowList::parse_one(network.get_ref()) {
                Some(n) => allow.push(n),
                None => problems.push((
                    network.span(),
                    "http.allow",
                    format!(
                        "{:?} is not a network (\"10.0.0.0/8\", \"::1/128\") or an address",
                        network.get_ref()
                    ),
                )),
            }
        }
        if self.allow.is_empty() && !self.listen.is_empty() {
            problems.push((
                0..0,
                "http.allow",
                "empty: nobody could call /validate/*; list the callers' networks".into(),
            ));
        }
        let tls = match (&self.tls_certificate, &self.tls_key) {
            (Some(cert), Some(key)) => Some((resolve(cert.get_ref()), resolve(key.get_ref()))),
            (None, None) => None,
            (Some(cert), None) => {
                problems.push((
                    cert.span(),
                    "http.tls_key",
                    "needed with tls_certificate".into(),
                ));
                None
            }
            (None, Some(key)) => {
                problems.push((
                    key.span(),
                    "http.tls_certificate",
                    "needed with tls_key".into(),
                ));
                None
            }
        };
        for (value, key) in [
            (self.max_connections, "http.max_connections"),
            (
                self.max_connections_per_source,
                "http.max_connections_per_source",
            ),
        ] {
            if value == 0 {
                problems.push((0..0, key, "must be at least 1".into()));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(HttpConfig {
            listen,
            allow: AllowList(allow),
            tls,
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
        })
    }
}

/// The networks whose callers may use `/validate/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// `10.0.0.0/8`, `::1/128`, or a bare address (one host).
    pub(crate) fn parse_one(text: &str) -> Option<IpNet> {
        let text = text.trim();
        text.parse::<IpNet>()
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
    }

    /// A list of these networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        AllowList(networks)
    }

    /// Whether `caller` may call. An IPv4 caller on an IPv6 socket (`::ffff:192.0.2.1`) is
    /// matched as the IPv4 address it is.
    pub fn allows(&self, caller: IpAddr) -> bool {
        let caller = caller.to_canonical();
        self.0.iter().any(|net| net.contains(&caller))
    }
}

/// The listener's TLS side of one configuration.
pub struct HttpTls {
    /// What the acceptor uses.
    pub config: Arc<rustls::ServerConfig>,
    /// When the server certificate expires (Unix time).
    pub not_after: i64,
}

/// Reads the certificate and key and builds the listener's TLS configuration (TLS 1.2 and 1.3,
/// ALPN `http/1.1`, the ring provider the rest of tessera uses); `None` without TLS. Errors are
/// (key, message).
pub fn open_tls(config: &HttpConfig) -> Result<Option<HttpTls>, Vec<(&'static str, String)>> {
    let Some((cert_path, key_path)) = &config.tls else {
        return Ok(None);
    };
    let (mut server, not_after) = crate::tls::server_config(
        cert_path,
        key_path,
        ("http.tls_certificate", "http.tls_key"),
    )?;
    let not_after = not_after.unwrap_or(0);
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(HttpTls {
        config: Arc::new(server),
        not_after,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> HttpSettings {
        #[derive(Deserialize)]
        struct File {
            http: HttpSettings,
        }
        toml::from_str::<File>(text).map(|f| f.http).expect("toml")
    }

    #[test]
    fn off_by_default_with_loopback_allowed() {
        let config = HttpConfig::default();
        assert!(config.listen.is_empty());
        assert!(config.allow.allows("127.0.0.1".parse().unwrap()));
        assert!(config.allow.allows("::1".parse().unwrap()));
        assert!(!config.allow.allows("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn allow_takes_networks_and_addresses_and_mapped_callers() {
        let config = settings(
            "[http]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
        )
        .check(&|p| p.to_path_buf())
        .unwrap();
        for (caller, allowed) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("192.0.2.7", true),
            ("192.0.2.8", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(
                config.allow.allows(caller.parse().unwrap()),
                allowed,
                "{caller}"
            );
        }
    }

    #[test]
    fn every_problem_is_named() {
        let problems = settings(
            "[http]\nlisten = [\"localhost\"]\nallow = [\"10.0.0.0/33\"]\ntls_certificate = \"c.pem\"\nmax_connections = 0\n",
        )
        .check(&|p| p.to_path_buf())
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.1).collect();
        assert_eq!(
            keys,
            [
                "http.listen",
                "http.allow",
                "http.tls_key",
                "http.max_connections"
            ]
        );
    }
}
