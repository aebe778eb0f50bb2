//! The key file and the cluster agree: every node must seal with the same key file. The key's
//! fingerprint is recorded when the store is first opened (not only with the first seed, as
//! for SQLite: two nodes with different keys could otherwise each start on an empty
//! database), and a node whose key file differs refuses to start.

use deadpool_postgres::GenericClient;

use super::super::StoreError;
use super::super::seal::SealKey;
use super::schema::schema_version;

/// What the database says about the cluster's key.
pub(super) enum KeyState {
    /// Nothing recorded and nothing sealed: any key will do (and is recorded).
    Unclaimed,
    /// The recorded fingerprint (or, if none, a sealed seed to try a key on).
    Claimed {
        /// The recorded fingerprint.
        fingerprint: Option<String>,
        /// (serial, sealed seed) of one token.
        sample: Option<(String, Vec<u8>)>,
    },
}

/// Reads the key state (tables may not exist yet: `check-config` on a new database).
pub(super) async fn key_state(client: &impl GenericClient) -> Result<KeyState, StoreError> {
    if schema_version(client).await? == 0 {
        return Ok(KeyState::Unclaimed);
    }
    let fingerprint = client
        .query_opt("SELECT value FROM meta WHERE name = 'key_fingerprint'", &[])
        .await?
        .map(|r| r.try_get::<_, String>(0))
        .transpose()?;
    let sample = client
        .query_opt(
            "SELECT serial, seed FROM tokens ORDER BY serial LIMIT 1",
            &[],
        )
        .await?
        .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
        .transpose()?;
    Ok(match (fingerprint, sample) {
        (None, None) => KeyState::Unclaimed,
        (fingerprint, sample) => KeyState::Claimed {
            fingerprint,
            sample,
        },
    })
}

/// Whether `key` is the cluster's key: `Ok(None)` when it is, `Ok(Some(expected))` when not.
pub(super) fn mismatch(state: &KeyState, key: &SealKey) -> Option<String> {
    match state {
        KeyState::Unclaimed => None,
        KeyState::Claimed {
            fingerprint: Some(recorded),
            ..
        } if recorded == key.fingerprint() => None,
        KeyState::Claimed {
            fingerprint: Some(recorded),
            ..
        } => Some(format!("fingerprint {recorded}")),
        KeyState::Claimed {
            fingerprint: None,
            sample: Some((serial, seed)),
        } if key.open(seed, serial).is_err() => Some(format!(
            "no fingerprint recorded; token {serial} does not open"
        )),
        KeyState::Claimed { .. } => None,
    }
}

/// Records `key` as the cluster's key unless one is recorded; another key recorded (in the
/// database `db`, for the message) is [`StoreError::KeyMismatch`].
pub(super) async fn claim_key(
    client: &impl GenericClient,
    key: &SealKey,
    db: &str,
) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "INSERT INTO meta (name, value) VALUES ('key_fingerprint', $1) \
             ON CONFLICT (name) DO UPDATE SET value = meta.value RETURNING value",
            &[&key.fingerprint()],
        )
        .await?;
    let recorded: String = row.try_get(0)?;
    if recorded != key.fingerprint() {
        return Err(StoreError::KeyMismatch {
            key_file: String::new(),
            db: db.to_string(),
            found: key.fingerprint().to_string(),
            expected: format!("fingerprint {recorded}"),
        });
    }
    Ok(())
}
