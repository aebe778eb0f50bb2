//! Files that hold a secret — the key that seals the seeds, PostgreSQL's `password_file` — and
//! the one rule they share: a file that group or others may read or write is refused, as ssh
//! refuses such a private key, with an error that names the file, its mode and the fix.
//!
//! The rule is checked on the file's metadata before its contents are read, so a secret in a
//! file left at 0644 is never used (a password that any local user can read is no longer the
//! database's alone, and the operator must hear so rather than find out later).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Permission bits a secret file may not have: any access for group or others.
const OPEN_TO_OTHERS: u32 = 0o077;

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Group or others may read or write it.
    #[error(
        "{what} {path} has mode {mode:04o}; it must not be accessible to group or others (chmod 600 {path})"
    )]
    OpenToOthers {
        /// What the file is (`key file`, `password_file`).
        what: &'static str,
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading it failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SecretFileError {
    /// The I/O error this is, if it is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            SecretFileError::Io { source, .. } => Some(source.kind()),
            SecretFileError::OpenToOthers { .. } => None,
        }
    }
}

/// Refuses `metadata` of the secret file `path` when group or others have any access.
pub fn check_mode(
    what: &'static str,
    path: &Path,
    metadata: &std::fs::Metadata,
) -> Result<(), SecretFileError> {
    let mode = metadata.permissions().mode() & 0o777;
    if mode & OPEN_TO_OTHERS != 0 {
        return Err(SecretFileError::OpenToOthers {
            what,
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// Reads the secret file `path` after [`check_mode`]; `what` names it in errors.
pub fn read(what: &'static str, path: &Path) -> Result<String, SecretFileError> {
    let io = |source| SecretFileError::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    check_mode(what, path, &metadata)?;
    std::fs::read_to_string(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_open_to_group_or_others_is_refused_with_its_mode_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.password");
        std::fs::write(&path, "hunter2\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read("password_file", &path).unwrap_err();
            let text = error.to_string();
            assert!(
                matches!(error, SecretFileError::OpenToOthers { mode: m, .. } if m == mode),
                "{text}"
            );
            let shown = path.display();
            assert_eq!(
                text,
                format!(
                    "password_file {shown} has mode {mode:04o}; it must not be accessible to \
                     group or others (chmod 600 {shown})"
                )
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read("password_file", &path).unwrap(), "hunter2\n");
        }
        let missing = read("password_file", &dir.path().join("none")).unwrap_err();
        assert_eq!(missing.io_kind(), Some(std::io::ErrorKind::NotFound));
    }
}
