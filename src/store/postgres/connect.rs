//! Reaching PostgreSQL: the client configuration from `[store]` (URL, password file,
//! statement timeout) and the connection pool.
//!
//! Several hosts in the URL with `target_session_attrs=read-write` make tokio-postgres try
//! them in order and keep the one that accepts writes, so after a failover new connections
//! find the new primary by themselves. The pool recycles a connection only while it is open
//! (a connection the server dropped is replaced on the next checkout), and every wait is
//! bounded: a database that is down makes a store call fail within seconds, never hang.
//! TLS is rustls with *ring* (the process-wide provider, see `crate::tls`) verifying against
//! `ca_file` or the system's roots; `sslmode=disable` skips it (loopback).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::super::StoreError;
use super::super::config::{PgSettings, redact_in};

/// How long opening one connection (all hosts) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a store call waits for a free connection.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The client configuration `settings` describe, the password file read.
pub(super) fn client_config(settings: &PgSettings) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
        StoreError::Postgres(format!(
            "{}: {}",
            settings.redacted_url(),
            redact_in(&format!("{e}"), &settings.url)
        ))
    })?;
    if let Some(file) = &settings.password_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| StoreError::Postgres(format!("password_file {}: {e}", file.display())))?;
        let password = text.lines().next().unwrap_or("").trim_end();
        config.password(password);
    }
    if config.get_application_name().is_none() {
        config.application_name("tessera");
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    let timeout_ms = settings.statement_timeout.saturating_mul(1000);
    // Notices ("relation meta already exists, skipping") would reach the log at info.
    let ours = format!("-c statement_timeout={timeout_ms} -c client_min_messages=warning");
    let options = match config.get_options() {
        Some(existing) => format!("{existing} {ours}"),
        None => ours,
    };
    config.options(&options);
    Ok(config)
}

/// The pool of connections for `settings`.
pub(super) fn pool(settings: &PgSettings) -> Result<Pool, StoreError> {
    let config = client_config(settings)?;
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        Manager::from_config(config, tokio_postgres::NoTls, manager_config)
    } else {
        Manager::from_config(config, tls(settings)?, manager_config)
    };
    Pool::builder(manager)
        .max_size(usize::try_from(settings.pool_size).unwrap_or(16))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))
}

/// rustls with ring, trusting `ca_file` when given, else the system's root certificates.
fn tls(settings: &PgSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    crate::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let failed =
                |e: String| StoreError::Postgres(format!("ca_file {}: {e}", path.display()));
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| failed(e.to_string()))?;
            if certificates.is_empty() {
                return Err(failed("no certificate found".into()));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|e| failed(e.to_string()))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Postgres(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // `Display` of a server error is only its first line; the detail says which
        // constraint or timeout.
        match e.as_db_error() {
            Some(db) => StoreError::Postgres(format!("{}: {}", db.code().code(), db.message())),
            None => {
                // "error performing TLS handshake" alone does not say that the certificate
                // was refused: add the causes.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                StoreError::Postgres(text)
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Postgres(format!("no connection: {other}")),
        }
    }
}
