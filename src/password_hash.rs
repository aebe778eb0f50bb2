//! Argon2id password hashes in PHC string form (`$argon2id$v=19$m=…`), used for the users file
//! and for token PINs.
//!
//! Verifying costs tens of milliseconds of CPU and 19 MiB of memory by design, so async callers
//! go through [`verify_blocking_pool`] and [`hash_blocking_pool`]: off the runtime's worker
//! threads, and at most one per CPU at a time. Without that bound a burst of logins (say, a
//! wave of first-time enrollments) would start hundreds of blocking threads and gigabytes of
//! hash memory; with it, the burst queues and memory stays flat.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::secret::Secret;

/// Why a hash could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The stored string is not a PHC hash we understand.
    #[error("not an argon2 PHC string: {0}")]
    Malformed(String),
    /// The system random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about 20-40 ms per check.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh random salt.
pub fn hash(password: &Secret) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Malformed(e.to_string()))?;
    argon2()
        .hash_password(password.expose(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Malformed(e.to_string()))
}

/// Checks `password` against a PHC string. Any argon2 variant and parameters are accepted.
pub fn verify(password: &Secret, phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::Malformed(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.expose(), &parsed)
        .is_ok())
}

/// Checks whether `phc` is a well-formed PHC string (for config validation).
pub fn is_well_formed(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok()
}

/// At most one hash computation per CPU at a time.
fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cpus)
    })
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| HashError::Malformed(format!("hash queue closed: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HashError::Malformed(format!("hash task failed: {e}")))?
}

/// [`verify`] on tokio's blocking pool, bounded (see the module documentation).
pub async fn verify_blocking_pool(password: &Secret, phc: &str) -> Result<bool, HashError> {
    let password = password.clone();
    let phc = phc.to_string();
    on_blocking_pool(move || verify(&password, &phc)).await
}

/// [`hash`] on tokio's blocking pool, bounded (see the module documentation).
pub async fn hash_blocking_pool(password: &Secret) -> Result<String, HashError> {
    let password = password.clone();
    on_blocking_pool(move || hash(&password)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash(&Secret::from("wonderland")).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&Secret::from("wonderland"), &h).unwrap());
        assert!(!verify(&Secret::from("wonderlanD"), &h).unwrap());
        assert!(verify(&Secret::from("x"), "not a hash").is_err());
    }
}
