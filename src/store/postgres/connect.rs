//! Reaching PostgreSQL: the client configuration from `[store]` (URL, password file,
//! statement timeout) and the connection pool.
//!
//! Several hosts in the URL with `target_session_attrs=read-write` make tokio-postgres try
//! them in order and keep the one that accepts writes, so after a failover new connections
//! find the new primary by themselves. The pool recycles a connection only while it is open
//! (a connection the server dropped is replaced on the next checkout) and while it was made
//! after the last write a server refused as read-only: an old primary that turned read-only
//! keeps its connections open, and without this the pool would keep using them, every write
//! failing, for as long as the node runs. Checking a connection costs no round trip. Every
//! wait is bounded: a database that is down makes a store call fail within seconds, never
//! hang.
//! TLS is rustls with *ring* (the process-wide provider, see `crate::tls`) verifying against
//! `ca_file` or the system's roots; `sslmode=disable` skips it (loopback).

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Hook, HookError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use super::super::StoreError;
use super::super::config::{PgSettings, redact_in};

/// How long opening one connection (all hosts) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a store call waits for a free connection.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The client configuration `settings` describe, the password file read.
pub(super) fn client_config(settings: &PgSettings) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
        StoreError::Postgres {
            text: format!(
                "{}: {}",
                settings.redacted_url(),
                redact_in(&format!("{e}"), &settings.url)
            ),
            // Its text may hold the password.
            source: None,
        }
    })?;
    if let Some(file) = &settings.password_file {
        // The same rule as the key file's: refused when group or others may read it.
        let text = crate::secret_file::read("password_file", file)?;
        let password = text.lines().next().unwrap_or("").trim_end();
        config.password(password);
    }
    if config.get_application_name().is_none() {
        config.application_name("tessera");
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    let timeout_ms = settings.statement_timeout.saturating_mul(1000);
    // Notices ("relation meta already exists, skipping") would reach the log at info.
    // Plans: a prepared statement is planned once per connection (PostgreSQL's generic plan,
    // after five executions, when it is no dearer) — planning every execution cost a login
    // about as much CPU as running its statements. A generic plan made while a table was
    // empty (a new database: `answered` grows by a row per login) would scan the whole table
    // for as long as the connection lives, whatever the statistics say later; without
    // sequential scans the planner takes an index wherever a statement has one, so no plan
    // reads a growing table end to end, while a statement with no usable index (an admin's
    // listing) still scans.
    let ours = format!(
        "-c statement_timeout={timeout_ms} -c client_min_messages=warning \
         -c enable_seqscan=off"
    );
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
        .pre_recycle(Hook::sync_fn(|_, metrics| {
            if made_before_read_only(metrics.created) {
                Err(HookError::message(
                    "made before a server refused a write as read-only",
                ))
            } else {
                Ok(())
            }
        }))
        .max_size(usize::try_from(settings.pool_size).unwrap_or(16))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Postgres {
            text: format!("connection pool: {e}"),
            source: Some(Arc::new(e)),
        })
}

/// Where [`READ_ONLY_SEEN`] counts from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// When a server last refused a write as read-only: nanoseconds after [`EPOCH`], plus one (0:
/// never). Process-wide, as the error that reports it knows no pool; a process has one store
/// (and the tests' several stores of one process share their database).
static READ_ONLY_SEEN: AtomicU64 = AtomicU64::new(0);

/// Notes that a server refused a write as read-only (SQLSTATE 25006): every connection made
/// until now may lead to it, and is dropped instead of being reused.
fn note_read_only() {
    let since = u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX);
    READ_ONLY_SEEN.fetch_max(since.saturating_add(1), Ordering::Relaxed);
}

/// Whether a connection made at `created` was made before a server last refused a write.
fn made_before_read_only(created: Instant) -> bool {
    let seen = READ_ONLY_SEEN.load(Ordering::Relaxed);
    seen != 0
        && created
            .checked_duration_since(*EPOCH)
            .is_none_or(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) < seen)
}

/// rustls with ring, trusting `ca_file` when given, else the system's root certificates.
fn tls(settings: &PgSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    crate::tls::install_crypto_provider();
    let ca_file = settings.ca_file.as_deref();
    let roots = crate::tls::trust_roots(ca_file.map(crate::tls::Ca::File)).map_err(|e| {
        // Only a configured CA file can fail.
        let path = ca_file.unwrap_or(std::path::Path::new("")).display();
        StoreError::Postgres {
            text: format!("ca_file {path}: {e}"),
            source: Some(Arc::new(e)),
        }
    })?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Postgres {
        text: format!("TLS: {e}"),
        source: Some(Arc::new(e)),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // `Display` of a server error is only its first line; the detail says which
        // constraint or timeout.
        match e.as_db_error() {
            Some(db) if is_unavailable(db.code()) => {
                if *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION {
                    note_read_only();
                }
                StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
            }
            Some(db) => StoreError::Postgres {
                text: format!("{}: {}", db.code().code(), db.message()),
                source: Some(Arc::new(e)),
            },
            None => {
                // "error performing TLS handshake" alone does not say that the certificate
                // was refused: add the causes.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                if refused_certificate(&e) {
                    text.push_str(CERTIFICATE_HINT);
                }
                // Not the server's answer: it cannot be reached, or the connection broke (a
                // value this build cannot read lands here too, and is refused the same way).
                StoreError::Unavailable(text)
            }
        }
    }
}

/// What to do when the server's certificate is refused. libpq's default (`sslmode=prefer`)
/// takes any certificate, so a stock server (Debian's has a self-signed one for its host name)
/// works with `psql` and not with tessera, which verifies every certificate it is shown.
const CERTIFICATE_HINT: &str = " (tessera verifies the server's certificate and name: give the CA \
    that signed it in [store] ca_file and name the host as the certificate does, or add \
    sslmode=disable to the url when the database is on loopback)";

/// Whether `e` (or a cause of it) is rustls refusing the server's certificate.
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let is_refusal = |error: &(dyn std::error::Error + 'static)| {
        matches!(
            error.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        )
    };
    std::iter::successors(Some(e), |error| error.source()).any(|error| {
        // An `io::Error` wrapping another error hides it from `source()`; look inside.
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        is_refusal(error) || wrapped.is_some_and(|inner| is_refusal(inner))
    })
}

/// The server's errors that say it cannot serve now, rather than that the statement is wrong:
/// a read-only server (a standby, or an old primary after a failover), connection failures
/// (class 08), shutdown or recovery (class 57P), resources (class 53).
fn is_unavailable(code: &SqlState) -> bool {
    let code = code.code();
    code == SqlState::READ_ONLY_SQL_TRANSACTION.code()
        || code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(format!("no connection: {other}")),
        }
    }
}
