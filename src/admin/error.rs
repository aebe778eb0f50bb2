//! What an admin operation can answer instead of a result: a refusal the caller can act on
//! (no such token, bad input, not allowed) or a failure of the store or a directory.

use crate::auth::enrollment::EnrollError;
use crate::directory::DirectoryError;
use crate::store::StoreError;

/// Why an admin operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No token has this serial.
    #[error("no token with serial {0}")]
    NoToken(String),
    /// No directory of the realm knows the user.
    #[error("user {user:?} is not in realm {realm:?}")]
    NoUser {
        /// The name asked for.
        user: String,
        /// The realm looked in.
        realm: String,
    },
    /// The request cannot be carried out as given (the message says why).
    #[error("{0}")]
    BadInput(String),
    /// The role or the self-service policy does not allow it.
    #[error("{0}")]
    NotAllowed(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A directory could not answer.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// A token could not be made.
    #[error("enrolment: {0}")]
    Enroll(#[from] EnrollError),
}

impl AdminError {
    /// Whether this is an answer about the request (a "no") rather than a failure of
    /// tessera or its peers.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            AdminError::NoToken(_)
                | AdminError::NoUser { .. }
                | AdminError::BadInput(_)
                | AdminError::NotAllowed(_)
        )
    }
}
