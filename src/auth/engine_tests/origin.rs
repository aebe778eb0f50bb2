//! Issue 23 with the test clock: the back-off is kept per identity and origin, so a stranger
//! guessing from one station does not keep the owner out of another; the identity's ceiling
//! over all origins only slows; `backoff_after = 0` counts and writes nothing.

use super::*;
use crate::auth::decision::MSG_FAILED;

fn settings(after: u32, identity_after: u32) -> AuthSettings {
    AuthSettings {
        backoff_after: after,
        backoff_identity_after: identity_after,
        ..AuthSettings::default()
    }
}

/// A stranger's twelve wrong passwords from one station: that station is refused even the
/// right password (like a name nobody has), alice's own station is not.
#[tokio::test]
async fn issue_23_a_stranger_on_one_station_does_not_keep_alice_out() {
    let h = harness(&password_pin(), settings(3, 100));
    for _ in 0..12 {
        for name in ["alice", "nobody"] {
            let outcome = h.auth_from(name, "guess", None, Some("mallory")).await;
            assert_eq!(reject_message(&outcome), MSG_FAILED, "{name}");
        }
    }
    let from_mallory = h
        .auth_from("alice", "wonderland", None, Some("mallory"))
        .await;
    let nobody = h
        .auth_from("nobody", "wonderland", None, Some("mallory"))
        .await;
    assert_eq!(from_mallory, nobody, "refused like a name nobody has");
    // Alice, from her own station and from a NAS that sends none, gets her challenge.
    challenge(
        &h.auth_from("alice", "wonderland", None, Some("alice-laptop"))
            .await,
    );
    challenge(&h.auth("alice", "wonderland", None).await);
    // Only three of the stranger's guesses were checked, and alice's logins cleared nothing of
    // the stranger's station: it is still refused.
    let again = h
        .auth_from("alice", "wonderland", None, Some("mallory"))
        .await;
    assert_eq!(reject_message(&again), MSG_FAILED);
    let rows = h
        .store
        .user_state("alice", "local", Some("mallory"))
        .await
        .unwrap()
        .backoff;
    assert_eq!(rows.origin.map(|b| b.failures), Some(3));
    assert_eq!(rows.identity.map(|b| b.failures), Some(3));
}

/// A stranger with a fresh station for every guess meets the ceiling: past it, every station
/// waits out the short window after the last counted failure — and then gets in.
#[tokio::test]
async fn issue_23_the_identity_ceiling_only_slows() {
    let h = harness(&password_pin(), settings(3, 5));
    for station in 0..5 {
        let outcome = h
            .auth_from("alice", "guess", None, Some(&format!("st-{station}")))
            .await;
        assert_eq!(reject_message(&outcome), MSG_FAILED);
    }
    assert_eq!(h.engine.identities_under_attack(), 0, "not read yet");
    h.advance_ms(1_999);
    for station in ["st-new", "alice-laptop"] {
        let outcome = h
            .auth_from("alice", "wonderland", None, Some(station))
            .await;
        assert_eq!(reject_message(&outcome), MSG_FAILED, "{station}");
    }
    assert_eq!(h.engine.identities_under_attack(), 1);
    // Refused attempts are not counted: the window does not grow.
    h.advance_ms(1);
    challenge(
        &h.auth_from("alice", "wonderland", None, Some("alice-laptop"))
            .await,
    );
    // A right password does not forgive the count over all origins: the next guess again
    // holds every station for the window.
    h.auth_from("alice", "guess", None, Some("st-6")).await;
    let held = h
        .auth_from("alice", "wonderland", None, Some("alice-laptop"))
        .await;
    assert_eq!(reject_message(&held), MSG_FAILED);
    h.advance(2);
    challenge(
        &h.auth_from("alice", "wonderland", None, Some("alice-laptop"))
            .await,
    );
    h.advance(3_600);
    assert_eq!(h.engine.identities_under_attack(), 0, "forgotten");
}

/// Issue 23 (item 9): `backoff_after = 0` is no back-off: nothing refuses, and no failure is
/// written — not in the store, not in memory.
#[tokio::test]
async fn issue_23_backoff_after_zero_writes_no_failure() {
    let h = harness(&password_pin(), settings(0, 100));
    for _ in 0..30 {
        for name in ["alice", "nobody"] {
            let outcome = h.auth_from(name, "guess", None, Some("mallory")).await;
            assert_eq!(reject_message(&outcome), MSG_FAILED, "{name}");
        }
    }
    challenge(
        &h.auth_from("alice", "wonderland", None, Some("mallory"))
            .await,
    );
    let dump = h.store.export().await.unwrap();
    assert_eq!(dump.backoff, vec![], "no back-off row");
    assert!(h.engine.unknown_names.is_empty(), "nothing in memory");
}
