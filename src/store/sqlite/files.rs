//! The one file of the store SQLite writes through memory: the WAL index (`tessera.db-shm`),
//! checked before every use of the connection.
//!
//! In WAL mode every connection maps `-shm` shared and writable, and readers as well as
//! writers store into it (read marks, the index). A store into a mapped page is a page fault
//! the file system must allow; when the file has become immutable or append-only (`chattr +i`,
//! `chattr +a`, by an operator or an attacker with root) ext4 and others refuse it with SIGBUS,
//! and the whole server died without a word. SQLite cannot turn that into an error: the fault
//! is not a system call. So the store reads the file's inode flags (one `ioctl` on a descriptor
//! it keeps, well under a microsecond) before each batch and each read, and refuses the work
//! with a logged error — logins get a Reject, the health check fails — until the flag is gone.
//! The database file itself is not mapped (`mmap_size` is 0, see `schema.rs`), and writes to
//! the database and the WAL are system calls, whose failures SQLite reports as errors.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::IFlags;

/// The flags under which a writable shared mapping faults.
const UNWRITABLE: IFlags = IFlags::IMMUTABLE.union(IFlags::APPEND);

/// The WAL index of an open store: the file, and whether it was last found unusable (so the
/// change is logged once each way).
pub(super) struct WalIndex {
    file: File,
    path: PathBuf,
    refused: AtomicBool,
}

/// `PATH-shm`, SQLite's name for the WAL index of the database at `path`.
fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// `Err` when `file` (at `path`) has a flag under which its mapping faults. A file system
/// without inode flags (tmpfs, some network file systems) has none to set either.
fn check_flags(file: &File, path: &Path) -> Result<(), String> {
    match rustix::fs::ioctl_getflags(file) {
        Ok(flags) if flags.intersects(UNWRITABLE) => Err(format!(
            "{} is {} (chattr {}): SQLite cannot write it, so the store refuses every read \
             and write until it is writable again (chattr -ia {})",
            path.display(),
            if flags.contains(IFlags::IMMUTABLE) {
                "immutable"
            } else {
                "append-only"
            },
            if flags.contains(IFlags::IMMUTABLE) {
                "+i"
            } else {
                "+a"
            },
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Before SQLite opens the database at `db` (and maps an existing WAL index): `Err` when
/// that index cannot be written. A missing one is SQLite's to create.
pub(super) fn check_before_open(db: &Path) -> Result<(), String> {
    let path = shm_path(db);
    match File::open(&path) {
        Ok(file) => check_flags(&file, &path),
        Err(_) => Ok(()),
    }
}

impl WalIndex {
    /// The WAL index of the database at `db`, which SQLite has opened in WAL mode (so the
    /// file exists); `None` when it cannot be opened (nothing to check then).
    pub(super) fn open(db: &Path) -> Option<WalIndex> {
        let path = shm_path(db);
        let file = File::open(&path).ok()?;
        Some(WalIndex {
            file,
            path,
            refused: AtomicBool::new(false),
        })
    }

    /// Whether SQLite may use the connection now: `Err` says why not. The first refusal after
    /// a good check is logged as an error, the first good check after refusals as news.
    pub(super) fn check(&self) -> Result<(), String> {
        let checked = check_flags(&self.file, &self.path);
        let was_refused = self.refused.swap(checked.is_err(), Ordering::Relaxed);
        match (&checked, was_refused) {
            (Err(error), false) => tracing::error!(%error, "store unusable"),
            (Ok(()), true) => tracing::info!(
                path = %self.path.display(),
                "store usable again: its WAL index is writable"
            ),
            _ => {}
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_index_is_the_database_path_with_shm() {
        assert_eq!(
            shm_path(Path::new("/var/lib/tessera/tessera.db")),
            Path::new("/var/lib/tessera/tessera.db-shm")
        );
    }

    #[test]
    fn a_plain_file_passes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        assert_eq!(check_before_open(&db), Ok(()), "no index yet");
        std::fs::write(shm_path(&db), [0u8; 64]).unwrap();
        assert_eq!(check_before_open(&db), Ok(()));
        let index = WalIndex::open(&db).unwrap();
        assert_eq!(index.check(), Ok(()));
    }
}
