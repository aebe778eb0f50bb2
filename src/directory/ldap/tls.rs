//! The rustls client configuration for `ldaps://` and StartTLS.
//!
//! tessera always hands ldap3 its own `ClientConfig`, built with the ring provider named
//! explicitly. ldap3's fallback calls `ClientConfig::builder()`, which panics when a process
//! links more than one rustls crypto provider (reqwest's aws-lc-rs next to ring), so the
//! fallback is never used.
//!
//! Trust comes from `ca_file` (or LinOTP's inline `CACERTIFICATE` PEM) when given, else from the
//! system store. `tls_verify = false` accepts any certificate and name but still checks that
//! the handshake signatures are made with the certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::config::CaSource;
use crate::tls::{Ca, CaError, trust_roots};

/// Builds the client configuration. Reads the CA file (blocking; called once at startup).
pub fn client_config(ca: Option<&CaSource>, verify: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    if !verify {
        let verifier = AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
        ));
    }
    let source = ca.map(|source| match source {
        CaSource::File(path) => Ca::File(path),
        CaSource::Pem(text) => Ca::Pem(text.as_bytes()),
    });
    let roots = trust_roots(source).map_err(|e| match (e, source) {
        (CaError::Read(e), Some(Ca::File(path))) => format!("ca_file {}: {e}", path.display()),
        (CaError::Read(e), _) => format!("ca_file (inline PEM): {e}"),
        (CaError::Empty, _) => "ca_file: no certificate found".into(),
        (CaError::Unusable(e), _) => format!("ca_file: unusable certificate: {e}"),
    })?;
    if source.is_none() && roots.is_empty() {
        return Err("no system CA certificates found; set ca_file to the directory's CA".into());
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// `tls_verify = false`: trusts any certificate, still verifies handshake signatures.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
