//! `[store]`: which backend holds tokens, challenges and the audit, and how to reach it.
//!
//! SQLite is the default (`path`): one node, nothing to run beside tessera. `backend =
//! "postgresql"` (`url`, `password_file`, `pool_size`, `statement_timeout`, `ca_file`) lets several nodes
//! share one database (issue 15). This module owns the section: its raw form as the TOML
//! parser gives it, the checks (each located by its key's span), and [`super::open`] /
//! [`super::check`] open what it names. `config/mod.rs` only hands it the section.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// `[store]` as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[serde(default)]
    backend: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<PathBuf>>,
    key_file: PathBuf,
    #[serde(default = "default_audit_days")]
    audit_days: u32,
    #[serde(default = "default_accounting_days")]
    accounting_days: u32,
    #[serde(default = "default_max_open_sessions")]
    max_open_sessions_per_nas: u64,
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    password_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pool_size: Option<Spanned<u32>>,
    #[serde(default)]
    statement_timeout: Option<Spanned<u64>>,
    #[serde(default)]
    ca_file: Option<Spanned<PathBuf>>,
}

impl fmt::Debug for RawStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RawStore")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("key_file", &self.key_file)
            .field("url", &self.url.as_ref().map(|u| redact_url(u.get_ref())))
            .finish_non_exhaustive()
    }
}

fn default_audit_days() -> u32 {
    DEFAULT_AUDIT_DAYS
}

fn default_accounting_days() -> u32 {
    DEFAULT_ACCOUNTING_DAYS
}

fn default_max_open_sessions() -> u64 {
    DEFAULT_MAX_OPEN_SESSIONS
}

/// Days accounting sessions are kept after their last record by default.
pub const DEFAULT_ACCOUNTING_DAYS: u32 = 90;

/// Open accounting sessions per `[[client]]` entry by default.
pub const DEFAULT_MAX_OPEN_SESSIONS: u64 = 100_000;

/// Days audit rows are kept by default.
pub const DEFAULT_AUDIT_DAYS: u32 = 90;

/// Connections a node keeps to PostgreSQL by default.
pub const DEFAULT_POOL_SIZE: u32 = 16;
/// Seconds one statement may run by default before PostgreSQL cancels it.
pub const DEFAULT_STATEMENT_TIMEOUT: u64 = 5;

/// `[store]`, checked, paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Where the data lives.
    pub backend: StoreBackend,
    /// The seed-encryption key file (created with mode 0600 if missing and nothing is sealed).
    pub key_file: PathBuf,
    /// Days audit rows are kept; older ones are purged in the background. 0 keeps them all.
    pub audit_days: u32,
    /// Days accounting sessions are kept after their last record; 0 keeps them all.
    pub accounting_days: u32,
    /// Most open accounting sessions per `[[client]]` entry; a record that would open one
    /// more is not recorded and not answered.
    pub max_open_sessions_per_nas: u64,
}

/// The backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// One SQLite file (the default).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database shared by several nodes.
    Postgres(PgSettings),
}

/// `backend = "postgresql"`'s keys.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// The connection URL as configured (several hosts allowed); may hold a password, so it is
    /// shown only through [`PgSettings::redacted_url`].
    pub url: String,
    /// A file holding the password (first line), read at open.
    pub password_file: Option<PathBuf>,
    /// Most connections this node holds.
    pub pool_size: u32,
    /// Seconds a statement may run (PostgreSQL's `statement_timeout`).
    pub statement_timeout: u64,
    /// PEM CA certificates to trust for TLS instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.redacted_url())
            .field("password_file", &self.password_file)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PgSettings {
    /// The URL with any password replaced by `***` (for logs and errors).
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl StoreConfig {
    /// How the store is named in messages: the SQLite path or the redacted URL.
    pub fn describe(&self) -> String {
        match &self.backend {
            StoreBackend::Sqlite { path } => path.display().to_string(),
            StoreBackend::Postgres(pg) => pg.redacted_url(),
        }
    }

    /// The SQLite file, when that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            StoreBackend::Sqlite { path } => Some(path),
            StoreBackend::Postgres(_) => None,
        }
    }
}

/// One problem in `[store]`: (span, key, message).
pub type StoreProblem = (std::ops::Range<usize>, String, String);

impl RawStore {
    /// Checks the section; `resolve` makes a relative path relative to the config file.
    /// `section` is the span to blame for a missing key.
    pub fn check(
        &self,
        resolve: impl Fn(&Path) -> PathBuf,
    ) -> Result<StoreConfig, Vec<StoreProblem>> {
        let mut problems: Vec<StoreProblem> = vec![];
        let backend_span = self.backend.as_ref().map_or(0..0, |b| b.span());
        let backend_name = self
            .backend
            .as_ref()
            .map_or("sqlite", |b| b.get_ref().as_str());
        let backend = match backend_name {
            "sqlite" => self.sqlite(&backend_span, &resolve, &mut problems),
            "postgresql" | "postgres" => self.postgres(&backend_span, &resolve, &mut problems),
            other => {
                problems.push((
                    backend_span.clone(),
                    "store.backend".into(),
                    format!("unknown backend {other:?} (known: sqlite, postgresql)"),
                ));
                None
            }
        };
        match backend {
            Some(backend) if problems.is_empty() => Ok(StoreConfig {
                backend,
                key_file: resolve(&self.key_file),
                audit_days: self.audit_days,
                accounting_days: self.accounting_days,
                max_open_sessions_per_nas: self.max_open_sessions_per_nas,
            }),
            _ => Err(problems),
        }
    }

    /// `backend = "sqlite"`: the database file; PostgreSQL's keys are errors.
    fn sqlite(
        &self,
        backend_span: &std::ops::Range<usize>,
        resolve: &impl Fn(&Path) -> PathBuf,
        problems: &mut Vec<StoreProblem>,
    ) -> Option<StoreBackend> {
        let postgres_keys = [
            (self.url.as_ref().map(|u| u.span()), "url"),
            (
                self.password_file.as_ref().map(|p| p.span()),
                "password_file",
            ),
            (self.pool_size.as_ref().map(|p| p.span()), "pool_size"),
            (
                self.statement_timeout.as_ref().map(|p| p.span()),
                "statement_timeout",
            ),
            (self.ca_file.as_ref().map(|p| p.span()), "ca_file"),
        ];
        for (span, key) in postgres_keys {
            unused("sqlite", problems, span, key);
        }
        match &self.path {
            Some(path) => Some(StoreBackend::Sqlite {
                path: resolve(path.get_ref()),
            }),
            None => {
                problems.push((
                    backend_span.clone(),
                    "store.path".into(),
                    "the SQLite database file is needed (path = \"tessera.db\")".into(),
                ));
                None
            }
        }
    }

    /// `backend = "postgresql"`: the URL and the pool's settings; SQLite's `path` is an error.
    fn postgres(
        &self,
        backend_span: &std::ops::Range<usize>,
        resolve: &impl Fn(&Path) -> PathBuf,
        problems: &mut Vec<StoreProblem>,
    ) -> Option<StoreBackend> {
        unused(
            "postgresql",
            problems,
            self.path.as_ref().map(|p| p.span()),
            "path",
        );
        let url = match &self.url {
            None => {
                problems.push((
                        backend_span.clone(),
                        "store.url".into(),
                        "backend = \"postgresql\" needs url = \"postgresql://tessera@db1,db2/tessera?target_session_attrs=read-write\"".into(),
                    ));
                None
            }
            Some(url) => match url.get_ref().parse::<tokio_postgres::Config>() {
                Ok(_) => Some(url.get_ref().clone()),
                Err(e) => {
                    problems.push((
                        url.span(),
                        "store.url".into(),
                        format!(
                            "{} is not a PostgreSQL URL: {}",
                            redact_url(url.get_ref()),
                            redact_in(&e.to_string(), url.get_ref())
                        ),
                    ));
                    None
                }
            },
        };
        let pool_size = match &self.pool_size {
            Some(p) if *p.get_ref() == 0 => {
                problems.push((
                    p.span(),
                    "store.pool_size".into(),
                    "must be at least 1".into(),
                ));
                DEFAULT_POOL_SIZE
            }
            Some(p) => *p.get_ref(),
            None => DEFAULT_POOL_SIZE,
        };
        let statement_timeout = match &self.statement_timeout {
            Some(t) if *t.get_ref() == 0 => {
                problems.push((
                    t.span(),
                    "store.statement_timeout".into(),
                    "must be at least 1 (seconds)".into(),
                ));
                DEFAULT_STATEMENT_TIMEOUT
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_STATEMENT_TIMEOUT,
        };
        url.map(|url| {
            StoreBackend::Postgres(PgSettings {
                url,
                password_file: self.password_file.as_ref().map(|p| resolve(p.get_ref())),
                pool_size,
                statement_timeout,
                ca_file: self.ca_file.as_ref().map(|p| resolve(p.get_ref())),
            })
        })
    }
}

/// A key the backend does not use, when it is given.
fn unused(
    backend: &str,
    problems: &mut Vec<StoreProblem>,
    span: Option<std::ops::Range<usize>>,
    key: &str,
) {
    if let Some(span) = span {
        problems.push((
            span,
            format!("store.{key}"),
            format!("is not a key of backend = {backend:?}"),
        ));
    }
}

/// `url` with the password of a `user:password@` part and any `password=` parameter replaced
/// by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let rest = out.get(rest_start..).unwrap_or("");
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = rest.get(..authority_len).unwrap_or("");
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority.get(..at).and_then(|u| u.find(':'))
        {
            let from = rest_start + colon + 1;
            let to = rest_start + at;
            out.replace_range(from..to, "***");
        }
    }
    // `password=` in a query string or a key=value connection string.
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let boundary_ok = i == 0
            || rest
                .get(..i)
                .and_then(|b| b.chars().last())
                .is_some_and(|c| c == '?' || c == '&' || c.is_whitespace());
        let (head, tail) = rest.split_at(i + "password=".len());
        redacted.push_str(head);
        if boundary_ok {
            let end = tail.find(['&', ' ', '\t', '\n']).unwrap_or(tail.len());
            redacted.push_str("***");
            rest = tail.get(end..).unwrap_or("");
        } else {
            rest = tail;
        }
    }
    redacted.push_str(rest);
    redacted
}

/// `text` with the password of `url`, if it has one, replaced by `***`.
pub fn redact_in(text: &str, url: &str) -> String {
    match url.parse::<tokio_postgres::Config>().ok().and_then(|c| {
        c.get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }) {
        Some(password) if !password.is_empty() => text.replace(&password, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url(
                "postgresql://tessera:s3cret@db1,db2/tessera?target_session_attrs=read-write"
            ),
            "postgresql://tessera:***@db1,db2/tessera?target_session_attrs=read-write"
        );
        assert_eq!(
            redact_url("postgresql://db1/tessera?user=t&password=s3cret&sslmode=require"),
            "postgresql://db1/tessera?user=t&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("host=db1 user=t password=s3cret dbname=x"),
            "host=db1 user=t password=*** dbname=x"
        );
        assert_eq!(
            redact_url("postgresql://tessera@db1/tessera"),
            "postgresql://tessera@db1/tessera"
        );
    }
}
