//! The process-wide rustls CryptoProvider.
//!
//! reqwest (built with `rustls-no-provider`), lettre and ldap3 all use rustls with *ring*. rustls
//! needs one process-level provider when a client config is built without an explicit one, and
//! reqwest panics at `Client::builder().build()` when none is installed. [`install_crypto_provider`]
//! installs ring once; it is idempotent and safe to call from every constructor that builds a
//! TLS client, so library users and tests need no set-up step of their own.
//!
//! [`read_certificates`] reads a PEM chain for every TLS server (RadSec, HTTP), and
//! [`not_after`] says when a certificate expires.

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

/// A certificate's notAfter as Unix time (0 when it does not parse).
pub fn not_after(certificate: &CertificateDer<'_>) -> i64 {
    x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_or(0, |(_, c)| c.validity().not_after.timestamp())
}
