//! Argon2id password hashes in PHC string form (`$argon2id$v=19$m=…`), used for the users file
//! and for token PINs.
//!
//! A hash costs tens of milliseconds of CPU and 19 MiB of memory by design, so async callers
//! go through [`verify_on_hash_thread`] and [`hash_on_hash_thread`], which hand the work to a
//! few threads of its own, one per CPU. That bounds the cost of a burst of logins (say, a wave
//! of first-time enrollments): the burst queues instead of starting hundreds of hashes. Each
//! of these threads keeps its 19 MiB of argon2 memory from one hash to the next: allocating it
//! per hash on tokio's blocking pool left every pool thread's malloc arena holding its own
//! copy, and the server at ~860 MiB resident after an enrollment wave.

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

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

fn malformed(error: impl std::fmt::Display) -> HashError {
    HashError::Malformed(error.to_string())
}

/// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about 20-40 ms per check.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// Runs argon2 in `memory`, growing it when the parameters need more than it has.
fn run_argon2(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), HashError> {
    let blocks = argon2.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let memory = memory.get_mut(..blocks).unwrap_or_default();
    argon2
        .hash_password_into_with_memory(password, salt, out, memory)
        .map_err(malformed)
}

/// Hashes a password with a fresh random salt, in `memory`.
fn hash_in(password: &Secret, memory: &mut Vec<Block>) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
    let params = params();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    run_argon2(&argon2, password.expose(), &salt, &mut out, memory)?;
    let salt = SaltString::encode_b64(&salt).map_err(malformed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(malformed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(malformed)?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string, in `memory`. Any argon2 variant and parameters are
/// accepted.
fn verify_in(password: &Secret, phc: &str, memory: &mut Vec<Block>) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(malformed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(malformed)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(malformed)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(malformed)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(malformed("no salt or no hash"));
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(malformed)?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    run_argon2(&argon2, password.expose(), salt, &mut out, memory)?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// Hashes a password with a fresh random salt (blocking; for the command line).
pub fn hash(password: &Secret) -> Result<String, HashError> {
    hash_in(password, &mut Vec::new())
}

/// Checks `password` against a PHC string (blocking; for the command line).
pub fn verify(password: &Secret, phc: &str) -> Result<bool, HashError> {
    verify_in(password, phc, &mut Vec::new())
}

/// Checks whether `phc` is a well-formed PHC string (for config validation).
pub fn is_well_formed(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok()
}

/// Work for a hash thread, given that thread's argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The queue of the hash threads, started on first use: one thread per CPU, each taking the
/// next job when it is free.
fn hash_threads() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        for n in 0..cpus {
            let jobs = Arc::clone(&jobs);
            let started = std::thread::Builder::new()
                .name(format!("tessera-hash-{n}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = started {
                tracing::error!(%error, "cannot start a password hash thread");
            }
        }
        queue
    })
}

async fn on_hash_thread<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |memory| {
        let _ = answer.send(work(memory));
    });
    hash_threads()
        .send(job)
        .map_err(|_| malformed("no password hash thread is running"))?;
    answered
        .await
        .map_err(|_| malformed("the password hash thread stopped"))?
}

/// [`verify`] on a hash thread (see the module documentation).
pub async fn verify_on_hash_thread(password: &Secret, phc: &str) -> Result<bool, HashError> {
    let password = password.clone();
    let phc = phc.to_string();
    on_hash_thread(move |memory| verify_in(&password, &phc, memory)).await
}

/// [`hash`] on a hash thread (see the module documentation).
pub async fn hash_on_hash_thread(password: &Secret) -> Result<String, HashError> {
    let password = password.clone();
    on_hash_thread(move |memory| hash_in(&password, memory)).await
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

    /// Our hashes are standard PHC strings, and standard ones (other parameters too) verify:
    /// checked against the argon2 crate's own hasher and verifier.
    #[test]
    fn interoperates_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash(&Secret::from("wonderland")).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"wonderland", &parsed)
                .is_ok()
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        for (variant, m, t) in [
            (Algorithm::Argon2id, 8 * 1024, 1),
            (Algorithm::Argon2i, 4 * 1024, 3),
        ] {
            let theirs = Argon2::new(variant, Version::V0x13, Params::new(m, t, 1, None).unwrap())
                .hash_password(b"builder", &salt)
                .unwrap()
                .to_string();
            // One memory for all: it grows to the largest and is reused.
            let mut memory = Vec::new();
            assert!(verify_in(&Secret::from("builder"), &theirs, &mut memory).unwrap());
            assert!(!verify_in(&Secret::from("Builder"), &theirs, &mut memory).unwrap());
        }
    }

    #[tokio::test]
    async fn hash_threads_hash_and_verify() {
        let phc = hash_on_hash_thread(&Secret::from("pin")).await.unwrap();
        let checks: Vec<_> = ["pin", "pin", "nip"]
            .into_iter()
            .map(|p| {
                let phc = phc.clone();
                tokio::spawn(async move { verify_on_hash_thread(&Secret::from(p), &phc).await })
            })
            .collect();
        let mut answers = vec![];
        for check in checks {
            answers.push(check.await.unwrap().unwrap());
        }
        assert_eq!(answers, [true, true, false]);
    }
}
