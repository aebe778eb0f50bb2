//! [`StoreError`]: what a store call can fail with, for both backends.

use super::seal;

/// Why a SQLite batch (or the WAL's last checkpoint) was not committed, told to each of the
/// batch's callers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// SQLite failed (`BEGIN`, `COMMIT`, the checkpoint); the batch is rolled back. One error,
    /// shared by the batch's callers.
    #[error(transparent)]
    Sqlite(std::sync::Arc<rusqlite::Error>),
    /// The store could not be used now, or the checkpoint could not complete: why.
    #[error("{0}")]
    NotRun(String),
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL reported an error, or its client could not be set up.
    #[error("database: {text}")]
    Postgres {
        /// What was said (SQLSTATE and message) or what failed, as the user reads it.
        text: String,
        /// The error behind it, when it may be kept (not a URL's, which may hold the
        /// password); one error shared by a batch's callers.
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The database cannot serve now: none of its hosts answers, the connection broke, the
    /// server shuts down, or it refuses writes (a primary turned standby in a failover).
    /// Logins are refused as "service unavailable" until it serves again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A seed could not be sealed or opened.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// A file holding a secret of the store's (PostgreSQL's `password_file`) cannot be used.
    #[error(transparent)]
    SecretFile(#[from] crate::secret_file::SecretFileError),
    /// A serial already exists.
    #[error("token {0} already exists")]
    Duplicate(String),
    /// The batch this operation was part of could not be committed (SQLite).
    #[error("commit failed: {0}")]
    Commit(#[source] CommitError),
    /// The store thread is gone (shutting down).
    #[error("store is closed")]
    Closed,
    /// A challenge was to start on a token that is gone: another request's failed delivery
    /// took the token it had enrolled away again, or an admin deleted it, between reading
    /// the user's tokens and starting. Nothing was started (the call's writes are undone).
    #[error("token {0} is gone")]
    TokenGone(String),
    /// A row holds a value this version does not understand.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A file or directory of the store could not be made, or its thread not started.
    #[error("{what}: {cause}")]
    Io {
        /// What was being made.
        what: String,
        /// Why it failed (in the text: store errors reach the user as one line).
        cause: std::io::Error,
    },
    /// `tessera store copy` found data in the target store.
    #[error("the target store is not empty ({0}); --force replaces what it holds")]
    NotEmpty(String),
    /// The store holds sealed seeds and the key file is gone; a new key would open none.
    #[error(
        "key file {key_file} is missing, but {db} holds sealed token seeds: restore the key file (a new key would open none of them)"
    )]
    KeyMissing {
        /// The configured key file.
        key_file: String,
        /// The database.
        db: String,
    },
    /// The key file is not the key that sealed the store's seeds.
    #[error(
        "key file {key_file} (fingerprint {found}) is not the key that sealed the token seeds in {db} ({expected}): restore the right key file"
    )]
    KeyMismatch {
        /// The configured key file.
        key_file: String,
        /// The database.
        db: String,
        /// The key file's fingerprint.
        found: String,
        /// What the store recorded, or why it does not match.
        expected: String,
    },
}
