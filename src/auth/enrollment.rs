//! Creating tokens: what autoenrollment and `tessera token enroll` have in common — a fresh
//! seed, a unique serial with LinOTP's type prefix (`LSSM…`, `LSEM…`, `OATH…`, `TOTP…`), and
//! the insert into the store.

use crate::secret::Secret;
use crate::store::{Store, StoreError, Token, TokenKind};
use crate::time::UnixMs;

/// What a new token is made of. Everything else starts at its default (counter 0, active, no
/// failures).
pub struct TokenSpec {
    /// Type.
    pub kind: TokenKind,
    /// Owner's login.
    pub user: String,
    /// Owner's realm.
    pub realm: String,
    /// The seed; `None` generates 20 random octets (160 bits, RFC 4226's recommendation).
    pub seed: Option<Secret>,
    /// OTP digits.
    pub digits: u32,
    /// Failures at which it locks.
    pub max_fail: u32,
    /// Argon2 hash of the token PIN, if any.
    pub pin_hash: Option<String>,
    /// SMS destination.
    pub phone: Option<String>,
    /// E-mail destination.
    pub email: Option<String>,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub now: UnixMs,
    /// Self-service: the token is made inactive, waiting for its first code.
    pub pending: bool,
    /// A YubiKey's public id (modhex).
    pub public_id: Option<String>,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

fn random(n: usize) -> Result<Vec<u8>, EnrollError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| EnrollError::Random(e.to_string()))?;
    Ok(buf)
}

/// A new token from `spec`, with a fresh serial, not stored yet.
pub fn new_token(spec: &TokenSpec) -> Result<Token, EnrollError> {
    let seed = match &spec.seed {
        Some(seed) => seed.clone(),
        None => Secret::new(random(20)?),
    };
    // A YubiKey is named by its public id, as an imported one is (`UBAMvvccccfbhhgb`).
    let serial = match (&spec.kind, &spec.public_id) {
        (TokenKind::Yubikey, Some(public_id)) => format!("UBAM{public_id}"),
        _ => format!(
            "{}{}",
            spec.kind.serial_prefix(),
            crate::hex::encode(&random(4)?).to_uppercase()
        ),
    };
    Ok(Token {
        serial,
        kind: spec.kind,
        user: spec.user.clone(),
        realm: spec.realm.clone(),
        seed,
        counter: 0,
        digits: spec.digits,
        pin_hash: spec.pin_hash.clone(),
        phone: spec.phone.clone(),
        email: spec.email.clone(),
        active: !spec.pending,
        fail_count: 0,
        max_fail: spec.max_fail,
        last_fail_at: None,
        description: spec.description.chars().take(80).collect(),
        created_at: spec.now,
        owner_id: None,
        autoenrolled: false,
        last_used: None,
        pending: spec.pending,
        algorithm: crate::store::HashAlgorithm::Sha1,
        time_step: None,
        public_id: spec.public_id.clone(),
    })
}

/// Creates and stores a token; retries the serial on the (unlikely) collision.
pub async fn create_token(store: &dyn Store, spec: TokenSpec) -> Result<Token, EnrollError> {
    let mut serial = String::new();
    for _ in 0..5 {
        let token = new_token(&spec)?;
        serial = token.serial.clone();
        match store.insert_token(token.clone()).await {
            Ok(()) => return Ok(token),
            Err(StoreError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Duplicate(serial).into())
}
