//! The process-wide rustls CryptoProvider.
//!
//! reqwest (built with `rustls-no-provider`), lettre and ldap3 all use rustls with *ring*. rustls
//! needs one process-level provider when a client config is built without an explicit one, and
//! reqwest panics at `Client::builder().build()` when none is installed. [`install_crypto_provider`]
//! installs ring once; it is idempotent and safe to call from every constructor that builds a
//! TLS client, so library users and tests need no set-up step of their own.
//!
//! [`read_certificates`] reads a PEM chain for every TLS server (RadSec, HTTP), and
//! [`not_after`] says when a certificate expires. [`trust_roots`] is what a rustls client
//! trusts (LDAP, PostgreSQL): the configured CA's certificates, else the system's roots.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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
pub fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
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

/// A certificate's notAfter as Unix time (0 when it does not parse).
pub fn not_after(certificate: &CertificateDer<'_>) -> i64 {
    x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_or(0, |(_, c)| c.validity().not_after.timestamp())
}
