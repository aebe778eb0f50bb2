//! The backends the suite runs on: a [`Fixture`] opens stores on one test's data, and an
//! empty store of the other backend with the same key (for `tessera store copy`).
//!
//! SQLite: a file in a temporary directory of the test's. PostgreSQL: one cluster for the whole
//! test binary ([`cluster`], started by the first test that needs it and gone with the
//! process), a database of its own per test, so the tests run in parallel without seeing each
//! other's rows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tessera::store::Store;
use tessera::store::config::{PgSettings, StoreBackend, StoreConfig};

/// One backend under test, on one test's data.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Whether nodes share the store, so that it records the requests that consumed an OTP
    /// and finds another node's ([`Store::retransmit_of`]). A store of one node leaves that
    /// to the node's reply cache.
    fn shared(&self) -> bool;

    /// A store on this test's data; each call opens another (another node, another process).
    async fn open(&self) -> Arc<dyn Store>;

    /// A new, empty store of the other backend with the same key file.
    async fn other(&self) -> Arc<dyn Store>;
}

/// SQLite in a temporary directory.
pub struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    pub fn new() -> Sqlite {
        Sqlite {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[async_trait]
impl Fixture for Sqlite {
    fn shared(&self) -> bool {
        false
    }

    async fn open(&self) -> Arc<dyn Store> {
        open(sqlite_config(self.dir.path(), "store.db")).await
    }

    async fn other(&self) -> Arc<dyn Store> {
        open(postgres_config(self.dir.path(), &new_database())).await
    }
}

/// A database of its own on the shared cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    database: String,
    /// SQLite files made by [`Fixture::other`] so far.
    others: AtomicUsize,
}

impl Postgres {
    pub fn new() -> Postgres {
        Postgres {
            dir: tempfile::tempdir().unwrap(),
            database: new_database(),
            others: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Fixture for Postgres {
    fn shared(&self) -> bool {
        true
    }

    async fn open(&self) -> Arc<dyn Store> {
        open(postgres_config(self.dir.path(), &self.database)).await
    }

    async fn other(&self) -> Arc<dyn Store> {
        let n = self.others.fetch_add(1, Ordering::SeqCst);
        open(sqlite_config(self.dir.path(), &format!("other{n}.db"))).await
    }
}

async fn open(config: StoreConfig) -> Arc<dyn Store> {
    tessera::store::open(&config)
        .await
        .unwrap_or_else(|e| panic!("cannot open the store: {e}"))
}

fn key_file(dir: &Path) -> PathBuf {
    dir.join("tessera.key")
}

fn sqlite_config(dir: &Path, name: &str) -> StoreConfig {
    StoreConfig {
        backend: StoreBackend::Sqlite {
            path: dir.join(name),
        },
        key_file: key_file(dir),
        audit_days: 90,
        accounting_days: 90,
        max_open_sessions_per_nas: 100_000,
    }
}

/// The store config of `database` on the shared cluster, its password in a file in `dir`.
fn postgres_config(dir: &Path, database: &str) -> StoreConfig {
    let password_file = dir.join("pg.password");
    if !password_file.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&password_file)
            .and_then(|mut f| f.write_all(testkit::postgres::PASSWORD.as_bytes()))
            .unwrap();
    }
    let url = cluster()
        .url()
        .replace("/tessera?", &format!("/{database}?"));
    StoreConfig {
        backend: StoreBackend::Postgres(PgSettings {
            url,
            password_file: Some(password_file),
            pool_size: 16,
            statement_timeout: 10,
            ca_file: None,
        }),
        key_file: key_file(dir),
        audit_days: 90,
        accounting_days: 90,
        max_open_sessions_per_nas: 100_000,
    }
}

/// The cluster every PostgreSQL test of this binary uses, started by the first.
fn cluster() -> &'static testkit::postgres::Postgres {
    static CLUSTER: OnceLock<testkit::postgres::Postgres> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let pg = testkit::postgres::Postgres::start_new();
        pg.stop_when_this_process_exits();
        pg
    })
}

/// A new database on the shared cluster, owned by the `tessera` role.
fn new_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("conformance_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    cluster().psql(&format!("CREATE DATABASE {name}"));
    name
}
