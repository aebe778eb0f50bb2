//! RadSec's TLS side (RFC 6614): the server's rustls configuration, and the check that admits a
//! client certificate only when it chains to `tls_client_ca` *and* belongs to a `[[client]]`
//! (`tls_identity`: a subject alternative name or a SHA-256 fingerprint).
//!
//! The client check runs inside the handshake (a [`ClientCertVerifier`] around webpki's), so a
//! certificate that matches no client is refused with a TLS alert before a single RADIUS octet
//! is read. The verifier holds the client table of the configuration it was built from; the
//! whole [`TlsServer`] is rebuilt with the rest of the configuration on reload, so new
//! connections see new clients and new certificate files together. The connections themselves
//! live in `radsec.rs`.
//!
//! TLS 1.2 and 1.3 only, with the ring provider the rest of tessera uses. ALPN offers
//! `radius/1.1` (RFC 9765) before `radius/1.0`; a client that offers no ALPN gets RadSec.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::clients::ClientTable;
use super::settings::ServerSettings;

/// RFC 9765's ALPN name for RADIUS/1.1.
pub const ALPN_RADIUS_11: &[u8] = b"radius/1.1";
/// RFC 9765's ALPN name for RadSec as RFC 6614 has it.
pub const ALPN_RADIUS_10: &[u8] = b"radius/1.0";

/// The RadSec server side of one configuration.
pub struct TlsServer {
    /// What the acceptor uses.
    pub config: Arc<rustls::ServerConfig>,
    /// When the server certificate expires (Unix time).
    pub not_after: i64,
}

/// Checks `tls_listen` and that the certificate settings are there when it is used; returns
/// the parsed addresses. `error` records a problem at a span.
pub fn check_settings(
    settings: &ServerSettings,
    error: &mut dyn FnMut(Range<usize>, &'static str, String),
) -> Vec<SocketAddr> {
    let mut addresses = vec![];
    for address in &settings.tls_listen {
        match address.get_ref().parse::<SocketAddr>() {
            Ok(a) => addresses.push(a),
            Err(_) => error(
                address.span(),
                "server.tls_listen",
                format!(
                    "{:?} is not an address:port (IPv6 as \"[::]:2083\")",
                    address.get_ref()
                ),
            ),
        }
    }
    if !settings.tls_listen.is_empty() {
        for (value, key) in [
            (&settings.tls_certificate, "server.tls_certificate"),
            (&settings.tls_key, "server.tls_key"),
            (&settings.tls_client_ca, "server.tls_client_ca"),
        ] {
            if value.is_none() {
                error(0..0, key, "needed with tls_listen (a PEM file)".into());
            }
        }
    }
    for (value, key) in [
        (settings.tls_max_connections, "server.tls_max_connections"),
        (
            settings.tls_max_in_flight_per_connection,
            "server.tls_max_in_flight_per_connection",
        ),
    ] {
        if value == 0 {
            error(0..0, key, "must be at least 1".into());
        }
    }
    if settings.tls_idle_timeout_seconds == 0 {
        error(
            0..0,
            "server.tls_idle_timeout_seconds",
            "must be at least 1".into(),
        );
    }
    let admission = [
        (
            *settings.tls_max_connections_per_source.get_ref() == 0,
            settings.tls_max_connections_per_source.span(),
            "server.tls_max_connections_per_source",
        ),
        (
            *settings.tls_handshake_timeout_seconds.get_ref() == 0,
            settings.tls_handshake_timeout_seconds.span(),
            "server.tls_handshake_timeout_seconds",
        ),
    ];
    for (zero, span, key) in admission {
        if zero {
            error(span, key, "must be at least 1".into());
        }
    }
    addresses
}

/// The CAs client certificates must chain to (`tls_client_ca`).
fn client_roots(
    path: &std::path::Path,
    errors: &mut Vec<(&'static str, String)>,
) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    match read_certificates(path) {
        Ok(cas) => {
            for ca in cas {
                if let Err(e) = roots.add(ca) {
                    errors.push(("server.tls_client_ca", format!("{}: {e}", path.display())));
                }
            }
        }
        Err(e) => errors.push(("server.tls_client_ca", e)),
    }
    roots
}

use crate::tls::not_after;

/// Reads the certificate files and builds the server configuration; `None` when RadSec is
/// off. Errors are (key, message).
pub fn open(
    settings: &ServerSettings,
    clients: &ClientTable,
) -> Result<Option<TlsServer>, Vec<(&'static str, String)>> {
    let (Some(cert_path), Some(key_path), Some(ca_path)) = (
        &settings.tls_certificate,
        &settings.tls_key,
        &settings.tls_client_ca,
    ) else {
        return Ok(None);
    };
    if settings.tls_listen.is_empty() {
        return Ok(None);
    }
    let mut errors = vec![];
    let chain: Vec<CertificateDer<'static>> = read_certificates(cert_path.get_ref())
        .unwrap_or_else(|e| {
            errors.push(("server.tls_certificate", e));
            vec![]
        });
    let key = PrivateKeyDer::from_pem_file(key_path.get_ref()).map_err(|e| {
        errors.push((
            "server.tls_key",
            format!("{}: {e}", key_path.get_ref().display()),
        ))
    });
    let roots = client_roots(ca_path.get_ref(), &mut errors);
    let not_after = chain.first().map_or(0, not_after);
    let (Ok(key), true) = (key, errors.is_empty()) else {
        return Err(errors);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            vec![(
                "server.tls_client_ca",
                format!("{}: {e}", ca_path.get_ref().display()),
            )]
        })?;
    let verifier = Arc::new(ClientVerifier {
        inner,
        clients: clients.clone(),
    });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| vec![("server.tls_listen", e.to_string())])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            vec![(
                "server.tls_key",
                format!(
                    "{} and {}: {e}",
                    cert_path.get_ref().display(),
                    key_path.get_ref().display()
                ),
            )]
        })?;
    let mut config = config;
    // RFC 9765 §3: RADIUS/1.1 when the client offers it, else RADIUS/1.0 (RadSec); a client
    // offering neither gets the no_application_protocol alert; no ALPN at all is RadSec.
    config.alpn_protocols = vec![ALPN_RADIUS_11.to_vec(), ALPN_RADIUS_10.to_vec()];
    Ok(Some(TlsServer {
        config: Arc::new(config),
        not_after,
    }))
}

/// Every certificate in a PEM file (moved to [`crate::tls`], which the HTTP listener shares).
pub use crate::tls::read_certificates;

/// A certificate's subject alternative names as text: DNS names, e-mail addresses, URIs and IP
/// addresses (as `192.0.2.1` / `2001:db8::1`). Nothing for a certificate that does not parse.
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else {
        return vec![];
    };
    let Ok(Some(san)) = certificate.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some((*s).to_string())
            }
            GeneralName::IPAddress(octets) => match octets.len() {
                4 => <[u8; 4]>::try_from(*octets)
                    .ok()
                    .map(|a| std::net::Ipv4Addr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*octets)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The SHA-256 fingerprint of a certificate, `sha256:` and hex, as `tls_identity` takes it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// webpki's chain check, then: does the certificate belong to a client?
#[derive(Debug)]
struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    clients: ClientTable,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Err(error) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            tracing::warn!(transport = "tls", %error, "TLS client certificate refused");
            return Err(error);
        }
        let names = subject_alt_names(end_entity.as_ref());
        if self.clients.find_tls(end_entity.as_ref(), &names).is_none() {
            tracing::warn!(
                transport = "tls",
                names = ?names,
                fingerprint = %fingerprint(end_entity.as_ref()),
                "TLS client certificate matches no [[client]] tls_identity: refused"
            );
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
