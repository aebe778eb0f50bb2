//! `[eap]`: which EAP methods are offered and in which order, the certificate of the TLS
//! methods, and the bounds on conversations; checked here, opened (certificate and key read,
//! rustls configured) by [`open`] on start and on every reload, like RadSec's.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An EAP method tessera speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// EAP-TTLS (RFC 5281) with inner PAP or inner EAP-GTC.
    Ttls,
    /// PEAPv0 with inner EAP-GTC.
    Peap,
    /// EAP-GTC outside a tunnel (inside IKEv2's, for VPNs).
    Gtc,
}

impl Method {
    /// The name in `methods`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ttls => "ttls",
            Method::Peap => "peap",
            Method::Gtc => "gtc",
        }
    }

    /// Its EAP type.
    pub fn eap_type(self) -> u8 {
        use super::packet::kind;
        match self {
            Method::Ttls => kind::TTLS,
            Method::Peap => kind::PEAP,
            Method::Gtc => kind::GTC,
        }
    }

    fn parse(name: &str) -> Option<Method> {
        [Method::Ttls, Method::Peap, Method::Gtc]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// Whether it runs inside TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Method::Ttls | Method::Peap)
    }
}

/// `[eap]` in the config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EapSettings {
    /// The methods offered, the first proposed first (a peer's Nak picks another): `"ttls"`,
    /// `"peap"`, `"gtc"`. Empty: EAP is off, and EAP requests are rejected.
    pub methods: Vec<toml::Spanned<String>>,
    /// The server certificate chain (PEM), leaf first, for TTLS and PEAP.
    pub tls_certificate: Option<toml::Spanned<PathBuf>>,
    /// Its private key (PEM).
    pub tls_key: Option<toml::Spanned<PathBuf>>,
    /// Most EAP conversations open at once; a new one beyond is rejected (and counted).
    pub max_conversations: usize,
    /// Seconds a conversation waits for the peer's next message before it is forgotten (a
    /// challenge's own lifetime extends it while a code is awaited).
    pub conversation_timeout_seconds: u64,
}

impl Default for EapSettings {
    fn default() -> Self {
        EapSettings {
            methods: vec![],
            tls_certificate: None,
            tls_key: None,
            max_conversations: 1024,
            conversation_timeout_seconds: 30,
        }
    }
}

/// `[eap]`, checked, paths resolved.
#[derive(Debug, Clone, Default)]
pub struct EapConfig {
    /// The methods in order; empty: EAP off.
    pub methods: Vec<Method>,
    /// Certificate chain and key, when a TLS method is offered.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The conversations' bounds.
    pub limits: Limits,
}

/// How many conversations, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most open at once.
    pub max_conversations: usize,
    /// How long one waits for the peer.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let d = EapSettings::default();
        Limits {
            max_conversations: d.max_conversations,
            timeout: Duration::from_secs(d.conversation_timeout_seconds),
        }
    }
}

/// A problem at a span: (span, key, message).
pub type Problem = (Range<usize>, &'static str, String);

impl EapSettings {
    /// Checks the section; `resolve` makes paths relative to the config file absolute.
    pub fn check(&self, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<EapConfig, Vec<Problem>> {
        let mut problems = vec![];
        let mut methods = vec![];
        for name in &self.methods {
            match Method::parse(name.get_ref()) {
                Some(m) if methods.contains(&m) => problems.push((
                    name.span(),
                    "eap.methods",
                    format!("{:?} is listed twice", name.get_ref()),
                )),
                Some(m) => methods.push(m),
                None => problems.push((
                    name.span(),
                    "eap.methods",
                    format!(
                        "{:?} is not a method tessera speaks (\"ttls\", \"peap\", \"gtc\")",
                        name.get_ref()
                    ),
                )),
            }
        }
        let tls = match (&self.tls_certificate, &self.tls_key) {
            (Some(cert), Some(key)) => Some((resolve(cert.get_ref()), resolve(key.get_ref()))),
            (None, None) => None,
            (Some(cert), None) => {
                problems.push((
                    cert.span(),
                    "eap.tls_key",
                    "needed with tls_certificate".into(),
                ));
                None
            }
            (None, Some(key)) => {
                problems.push((
                    key.span(),
                    "eap.tls_certificate",
                    "needed with tls_key".into(),
                ));
                None
            }
        };
        if tls.is_none() && methods.iter().any(|m| m.uses_tls()) {
            problems.push((
                0..0,
                "eap.tls_certificate",
                "needed for the methods \"ttls\" and \"peap\" (a PEM file, with tls_key)".into(),
            ));
        }
        if self.max_conversations == 0 {
            problems.push((0..0, "eap.max_conversations", "must be at least 1".into()));
        }
        if self.conversation_timeout_seconds == 0 {
            problems.push((
                0..0,
                "eap.conversation_timeout_seconds",
                "must be at least 1".into(),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(EapConfig {
            methods,
            tls,
            limits: Limits {
                max_conversations: self.max_conversations,
                timeout: Duration::from_secs(self.conversation_timeout_seconds),
            },
        })
    }
}

/// One configuration's EAP side, opened: served from the snapshot a request reads. Cheap to
/// clone (the TLS configuration is shared).
#[derive(Clone)]
pub struct EapServer {
    /// The methods in order.
    pub methods: Vec<Method>,
    /// TTLS's and PEAP's TLS (none when neither is offered).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// When the server certificate expires (Unix time), when there is one.
    pub not_after: Option<i64>,
    /// The conversations' bounds.
    pub limits: Limits,
}

/// Reads the certificate and key and builds the TLS configuration: TLS 1.2 and 1.3, no
/// client certificate, no session tickets or resumption (RFC 9427 allows them; tessera does
/// not resume). `None` when EAP is off. Errors are (key, message).
pub fn open(config: &EapConfig) -> Result<Option<EapServer>, Vec<(&'static str, String)>> {
    if config.methods.is_empty() {
        return Ok(None);
    }
    let (tls, not_after) = match &config.tls {
        Some((cert_path, key_path)) => {
            let (mut server, not_after) = crate::tls::server_config(
                cert_path,
                key_path,
                ("eap.tls_certificate", "eap.tls_key"),
            )?;
            server.send_tls13_tickets = 0;
            server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            (Some(Arc::new(server)), not_after)
        }
        None => (None, None),
    };
    Ok(Some(EapServer {
        methods: config.methods.clone(),
        tls,
        not_after,
        limits: config.limits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<EapConfig, Vec<Problem>> {
        let settings: EapSettings = toml::from_str(text).unwrap();
        settings.check(&|p| p.to_path_buf())
    }

    #[test]
    fn methods_are_checked_and_tls_methods_need_a_certificate() {
        assert!(check("").unwrap().methods.is_empty());
        let gtc = check("methods = [\"gtc\"]").unwrap();
        assert_eq!(gtc.methods, vec![Method::Gtc]);
        let keys = |r: Result<EapConfig, Vec<Problem>>| -> Vec<&'static str> {
            r.err().unwrap().into_iter().map(|p| p.1).collect()
        };
        assert_eq!(keys(check("methods = [\"ttls\"]")), ["eap.tls_certificate"]);
        assert_eq!(keys(check("methods = [\"md5\"]")), ["eap.methods"]);
        assert_eq!(keys(check("methods = [\"gtc\", \"gtc\"]")), ["eap.methods"]);
        assert_eq!(
            keys(check("max_conversations = 0")),
            ["eap.max_conversations"]
        );
        let both = check(
            "methods = [\"peap\", \"ttls\"]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"",
        )
        .unwrap();
        assert_eq!(both.methods, vec![Method::Peap, Method::Ttls]);
    }
}
