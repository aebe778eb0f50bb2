//! Secrets at rest: token seeds are sealed with XChaCha20-Poly1305 under a 256-bit key kept in a
//! key file beside the database.
//!
//! The key file is created on first start with mode 0600. tessera refuses to start when the file
//! is readable or writable by group or others, as ssh does for private keys. The token serial is
//! the associated data, so a sealed seed cannot be moved to another token.
//!
//! A key's [`SealKey::fingerprint`] (an HMAC of a fixed label under the key: it names the key
//! without revealing it) is recorded in the store with the first sealed seed; the store refuses
//! to open with a missing or different key file while it holds sealed seeds
//! (`sqlite/key_file.rs`, `postgres/schema.rs`).

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::secret::Secret;

/// Why the key could not be loaded or a value not be (un)sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Reading or creating the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is open to group or others (the rule of every secret file).
    #[error(transparent)]
    Permissions(#[from] crate::secret_file::SecretFileError),
    /// The key file does not hold 64 hex digits.
    #[error("key file {path} does not hold a 256-bit key in hex")]
    Malformed {
        /// The key file.
        path: String,
    },
    /// A sealed value failed authentication: wrong key or tampered row.
    #[error("sealed value for {context} failed to open (wrong key file or tampered data)")]
    Open {
        /// What was being opened (a serial).
        context: String,
    },
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// The sealing key.
pub struct SealKey {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
}

impl SealKey {
    /// Loads the key file, or creates it (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        match Self::load(path)? {
            Some(key) => Ok(key),
            None => Self::create(path),
        }
    }

    /// Loads the key file with the checks `serve` makes (mode, format); `None` when it does
    /// not exist. Creates nothing.
    pub fn load(path: &Path) -> Result<Option<Self>, SealError> {
        let shown = path.display().to_string();
        let io = |source| SealError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                crate::secret_file::check_mode("key file", path, &meta)?;
                let text = std::fs::read_to_string(path).map_err(io)?;
                let key = crate::hex::decode(text.trim()).filter(|k| k.len() == 32);
                let key = key.ok_or_else(|| SealError::Malformed {
                    path: shown.clone(),
                })?;
                Ok(Some(Self::from_bytes(&key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Creates a new key file (mode 0600); fails if one exists.
    pub fn create(path: &Path) -> Result<Self, SealError> {
        let shown = path.display().to_string();
        let io = |source| SealError::Io {
            path: shown.clone(),
            source,
        };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| SealError::Random(e.to_string()))?;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(format!("{}\n", crate::hex::encode(&key)).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        tracing::info!(path = %shown, "created a new seed-encryption key file");
        Ok(Self::from_bytes(&key))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(key: &[u8]) -> Self {
        let mut k = [0u8; 32];
        for (d, s) in k.iter_mut().zip(key) {
            *d = *s;
        }
        use hmac::{Hmac, Mac};
        let fingerprint = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&k)
            .map(|mac| mac.chain_update(b"tessera seal key fingerprint v1"))
            .map(|mac| {
                crate::hex::encode(mac.finalize().into_bytes().get(..16).unwrap_or_default())
            })
            .unwrap_or_default();
        SealKey {
            cipher: XChaCha20Poly1305::new(&k.into()),
            fingerprint,
        }
    }

    /// Names this key without revealing it: 128 bits of HMAC-SHA-256 of a fixed label.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `secret`, bound to `context`: 24-octet nonce followed by the ciphertext.
    pub fn seal(&self, secret: &Secret, context: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open {
                context: context.to_string(),
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value made by [`SealKey::seal`] with the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Secret, SealError> {
        let fail = || SealError::Open {
            context: context.to_string(),
        };
        let (nonce, body) = sealed.split_at_checked(24).ok_or_else(fail)?;
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map(Secret::new)
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn seal_open_and_binding() {
        let key = SealKey::from_bytes(&[9; 32]);
        let sealed = key.seal(&Secret::from("seed"), "LSSM1").unwrap();
        assert_eq!(key.open(&sealed, "LSSM1").unwrap(), Secret::from("seed"));
        assert!(key.open(&sealed, "LSSM2").is_err());
        assert!(
            SealKey::from_bytes(&[8; 32])
                .open(&sealed, "LSSM1")
                .is_err()
        );
    }

    #[test]
    fn key_file_created_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tessera.key");
        let a = SealKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = a.seal(&Secret::from("x"), "c").unwrap();
        let b = SealKey::load_or_create(&path).unwrap();
        assert_eq!(b.open(&sealed, "c").unwrap(), Secret::from("x"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SealKey::load_or_create(&path),
            Err(SealError::Permissions(
                crate::secret_file::SecretFileError::OpenToOthers { mode: 0o644, .. }
            ))
        ));
    }
}
