//! Argon2id password hashes in PHC string form (`$argon2id$v=19$m=…`), used for the users file
//! and for token PINs.
//!
//! Verifying costs tens of milliseconds of CPU by design, so async callers go through
//! [`verify_blocking_pool`], which runs it off the runtime's worker threads.

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

/// [`verify`] on tokio's blocking pool, so the hash's CPU time never stalls the runtime.
pub async fn verify_blocking_pool(password: &Secret, phc: &str) -> Result<bool, HashError> {
    let password = password.clone();
    let phc = phc.to_string();
    tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .map_err(|e| HashError::Malformed(format!("hash task failed: {e}")))?
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
