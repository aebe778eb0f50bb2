//! The process-wide rustls CryptoProvider.
//!
//! reqwest (built with `rustls-no-provider`), lettre and ldap3 all use rustls with *ring*. rustls
//! needs one process-level provider when a client config is built without an explicit one, and
//! reqwest panics at `Client::builder().build()` when none is installed. [`install_crypto_provider`]
//! installs ring once; it is idempotent and safe to call from every constructor that builds a
//! TLS client, so library users and tests need no set-up step of their own.
//!
//! [`read_certificates`] reads a PEM chain for every TLS server (RadSec, HTTP, EAP),
//! [`server_config`] makes the plain server configuration HTTP and EAP share, and
//! [`not_after`] says when a certificate expires. [`trust_roots`] is what a rustls client
//! trusts (LDAP, PostgreSQL): the configured CA's certificates, else the system's roots.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Installs ring as the process-level rustls CryptoProvider, unless one is installed already.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider won the race (or was installed on purpose): that one is
        // used, which is fine — we only need *a* provider to exist.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Every certificate in a PEM file; an error when it holds none.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certificates)
}

/// Where a client's CA certificates come from.
#[derive(Debug, Clone, Copy)]
pub enum Ca<'a> {
    /// A PEM file.
    File(&'a std::path::Path),
    /// PEM text (LinOTP's inline `CACERTIFICATE`).
    Pem(&'a [u8]),
}

/// Why a configured CA cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The PEM could not be read.
    #[error("{0}")]
    Read(#[source] rustls::pki_types::pem::Error),
    /// The PEM holds no certificate.
    #[error("no certificate found")]
    Empty,
    /// A certificate cannot serve as a root.
    #[error("{0}")]
    Unusable(#[source] rustls::Error),
}

/// The roots a TLS client trusts: every certificate of `ca` when one is configured, else the
/// system's root certificates (those that parse; the store is empty when there are none, and
/// the caller says whether that is an error).
pub fn trust_roots(ca: Option<Ca<'_>>) -> Result<rustls::RootCertStore, CaError> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(ca) = ca else {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        return Ok(roots);
    };
    let certificates: Vec<CertificateDer<'static>> = match ca {
        Ca::File(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(CaError::Read)?,
        Ca::Pem(text) => CertificateDer::pem_slice_iter(text)
            .collect::<Result<_, _>>()
            .map_err(CaError::Read)?,
    };
    if certificates.is_empty() {
        return Err(CaError::Empty);
    }
    for certificate in certificates {
        roots.add(certificate).map_err(CaError::Unusable)?;
    }
    Ok(roots)
}

/// Errors of a configuration, each under the key it is about: (key, message).
pub type KeyedErrors = Vec<(&'static str, String)>;

/// A TLS server's configuration from its certificate chain (PEM, leaf first) and key files:
/// TLS 1.2 and 1.3, the ring provider, no client certificate; and when the leaf expires.
/// `keys` are the configuration keys the two files were named by (`http.tls_certificate`,
/// `http.tls_key`), which the errors are reported under as (key, message).
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    keys: (&'static str, &'static str),
) -> Result<(rustls::ServerConfig, Option<i64>), KeyedErrors> {
    let (cert_key, key_key) = keys;
    let chain = read_certificates(cert_path).map_err(|e| vec![(cert_key, e)])?;
    let not_after = chain.first().map(not_after);
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| vec![(key_key, format!("{}: {e}", key_path.display()))])?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| vec![(cert_key, e.to_string())])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            vec![(
                key_key,
                format!("{} and {}: {e}", cert_path.display(), key_path.display()),
            )]
        })?;
    Ok((server, not_after))
}

/// A certificate's notAfter as Unix time (0 when it does not parse).
pub fn not_after(certificate: &CertificateDer<'_>) -> i64 {
    x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_or(0, |(_, c)| c.validity().not_after.timestamp())
}
