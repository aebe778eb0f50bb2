//! Hardware tokens (issue 29): a token's hash algorithm, time step and YubiKey public id kept
//! as written; an imported token nobody holds, assigned and taken back; an import that
//! replaces the tokens of its serials, all or nothing.

use tessera::secret::Secret;
use tessera::store::{HashAlgorithm, StoreError, Token, TokenKind};

use crate::fixtures::Fixture;
use crate::{request, token};

/// An imported TOTP fob nobody holds: SHA-256, a 60-second step.
fn fob(serial: &str) -> Token {
    Token {
        kind: TokenKind::Totp,
        user: String::new(),
        realm: String::new(),
        phone: None,
        algorithm: HashAlgorithm::Sha256,
        time_step: Some(60),
        ..token(serial)
    }
}

/// A YubiKey of alice@local: its seed the AES key and the private id, its public id kept.
fn yubikey(serial: &str, public_id: &str) -> Token {
    Token {
        kind: TokenKind::Yubikey,
        seed: Secret::new(vec![7; 22]),
        digits: 44,
        phone: None,
        public_id: Some(public_id.into()),
        ..token(serial)
    }
}

/// The new columns read back as written, on one token and through every read.
pub async fn hardware_columns(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(fob("TOTP1")).await.unwrap();
    store
        .insert_token(yubikey("UBAM1", "vvccccdddddd"))
        .await
        .unwrap();
    let read = store.token("TOTP1").await.unwrap().unwrap();
    assert_eq!(read.algorithm, HashAlgorithm::Sha256);
    assert_eq!(read.time_step, Some(60));
    assert!(!read.is_assigned());
    let key = store.token("UBAM1").await.unwrap().unwrap();
    assert_eq!(key.kind, TokenKind::Yubikey);
    assert_eq!(key.public_id.as_deref(), Some("vvccccdddddd"));
    assert_eq!(key.seed, Secret::new(vec![7; 22]));
    assert_eq!(key.algorithm, HashAlgorithm::Sha1);
    assert_eq!(key.time_step, None);
    // One token per public id.
    assert!(matches!(
        store.insert_token(yubikey("UBAM2", "vvccccdddddd")).await,
        Err(StoreError::Duplicate(_))
    ));
    let of_alice = store.user_state("alice", "local", None).await.unwrap();
    assert_eq!(of_alice.tokens.len(), 1);
    assert_eq!(
        of_alice.tokens[0].public_id.as_deref(),
        Some("vvccccdddddd")
    );
    let all = store.list_tokens(None, None).await.unwrap();
    assert_eq!(all.len(), 2);
}

/// A fob handed to alice, then to nobody again; its challenges go with the old owner.
pub async fn assign_and_take_back(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(fob("TOTP1")).await.unwrap();
    assert!(store.assign_token("TOTP1", "alice", "local").await.unwrap());
    let held = store.tokens_of_user("alice", "local").await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].time_step, Some(60));
    // An SMS token's challenge is dropped when it changes hands.
    store.insert_token(token("LSSM1")).await.unwrap();
    store
        .start_challenge(request("s1", &["LSSM1"], 1_000, 0))
        .await
        .unwrap();
    assert_eq!(store.challenge("s1").await.unwrap().len(), 1);
    assert!(store.assign_token("LSSM1", "", "").await.unwrap());
    assert!(store.challenge("s1").await.unwrap().is_empty());
    assert!(store.assign_token("TOTP1", "", "").await.unwrap());
    assert!(
        store
            .tokens_of_user("alice", "local")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.token("TOTP1").await.unwrap().unwrap().is_assigned());
    assert!(!store.assign_token("NOPE", "alice", "local").await.unwrap());
}

/// `replace_tokens` overwrites the serials it names and adds the others, in one transaction:
/// a duplicate within the batch leaves everything as it was.
pub async fn replace_all_or_nothing(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(fob("TOTP1")).await.unwrap();
    store.assign_token("TOTP1", "alice", "local").await.unwrap();
    let mut again = fob("TOTP1");
    again.time_step = Some(30);
    store
        .replace_tokens(vec![again, fob("TOTP2")])
        .await
        .unwrap();
    let replaced = store.token("TOTP1").await.unwrap().unwrap();
    assert_eq!(replaced.time_step, Some(30));
    assert!(!replaced.is_assigned());
    assert!(store.token("TOTP2").await.unwrap().is_some());
    // TOTP3 twice: nothing of the batch stays, TOTP1 keeps its step.
    let mut changed = fob("TOTP1");
    changed.time_step = Some(90);
    assert!(
        store
            .replace_tokens(vec![changed, fob("TOTP3"), fob("TOTP3")])
            .await
            .is_err()
    );
    assert_eq!(
        store.token("TOTP1").await.unwrap().unwrap().time_step,
        Some(30)
    );
    assert!(store.token("TOTP3").await.unwrap().is_none());
}
