//! Issue 12 with the test clock: one identity whatever the spelling, wrong passwords slow the
//! name down and never lock a token, one token and one message for concurrent first logins, a
//! challenge handed out only once delivered, blocking in milliseconds.

use super::*;
use crate::auth::decision::{MSG_FAILED, MSG_LOCKED};

fn backoff_after(n: u32) -> AuthSettings {
    AuthSettings {
        backoff_after: n,
        ..AuthSettings::default()
    }
}

async fn tokens(h: &Harness, user: &str) -> Vec<Token> {
    h.store.tokens_of_user(user, "local").await.unwrap()
}

#[tokio::test]
async fn issue_12_spellings_are_one_identity() {
    let h = harness(&password_pin(), AuthSettings::default());
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    assert!(is_accept(
        &h.auth("ALICE", &h.sms_code(), Some(&state)).await
    ));
    let serial = tokens(&h, "alice").await[0].serial.clone();
    h.store.set_active(&serial, false).await.unwrap();
    for spelling in [
        "alice",
        "ALICE",
        "Alice",
        " alice",
        "alice ",
        "ａｌｉｃｅ",
        "Alice@local",
    ] {
        let outcome = h.auth(spelling, "wonderland", None).await;
        assert_eq!(reject_message(&outcome), MSG_FAILED, "{spelling:?}");
    }
    assert_eq!(tokens(&h, "alice").await.len(), 1, "no second token");
    assert!(tokens(&h, "ALICE").await.is_empty());
    assert_eq!(h.sms_count(), 1);
}

#[tokio::test]
async fn issue_12_control_characters_are_refused() {
    let h = harness(&password_pin(), AuthSettings::default());
    for name in ["alice\n", "alice\u{1b}[0m", "ali\0ce"] {
        let outcome = h.auth(name, "wonderland", None).await;
        assert_eq!(reject_message(&outcome), MSG_FAILED, "{name:?}");
    }
    assert_eq!(h.sms_count(), 0);
}

/// A wrong password never counts on the token: strangers cannot lock alice out, and the
/// back-off refuses alice's name exactly as it refuses a name nobody has.
#[tokio::test]
async fn issue_12_wrong_passwords_slow_the_name_and_never_lock() {
    let h = harness(&password_pin(), backoff_after(3));
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    assert!(is_accept(
        &h.auth("alice", &h.sms_code(), Some(&state)).await
    ));
    h.advance(60);
    for name in ["alice", "nobody", "dave"] {
        for _ in 0..12 {
            let outcome = h.auth(name, "guess", None).await;
            assert_eq!(reject_message(&outcome), MSG_FAILED, "{name}");
        }
    }
    let alice = &tokens(&h, "alice").await[0];
    assert_eq!(
        alice.fail_count, 0,
        "a wrong password never counts on a token"
    );
    // Within the back-off even the right password is refused, like any failure.
    assert_eq!(
        reject_message(&h.auth("alice", "wonderland", None).await),
        MSG_FAILED
    );
    assert_eq!(
        reject_message(&h.auth("dave", "davepw", None).await),
        MSG_FAILED,
        "a user without a token is throttled alike"
    );
    // 3 failures were checked (then the window of 1 s refused the rest unchecked).
    h.advance_ms(999);
    assert_eq!(
        reject_message(&h.auth("alice", "wonderland", None).await),
        MSG_FAILED
    );
    h.advance_ms(1);
    challenge(&h.auth("alice", "wonderland", None).await);
    // The right password ended the back-off.
    assert_eq!(
        h.store
            .user_state("alice", "local", Some("127.0.0.1"))
            .await
            .unwrap()
            .backoff
            .origin,
        None
    );
    challenge(&h.auth("dave", "davepw", None).await);
}

/// Wrong codes after a right password lock the token, and only someone who knows the password
/// is ever told so.
#[tokio::test]
async fn issue_12_locked_is_said_only_after_the_right_password() {
    let settings = AuthSettings {
        max_fail: 2,
        ..AuthSettings::default()
    };
    let h = harness(&password_pin(), settings);
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    let wrong = if h.sms_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    h.auth("alice", wrong, Some(&state)).await;
    h.auth("alice", wrong, Some(&state)).await;
    h.advance(60);
    assert_eq!(
        reject_message(&h.auth("alice", "guess", None).await),
        MSG_FAILED
    );
    assert_eq!(
        reject_message(&h.auth("alice", "wonderland", None).await),
        MSG_LOCKED
    );
}

#[tokio::test]
async fn issue_12_concurrent_first_logins_enroll_one_token_and_send_one_code() {
    let h = harness(&password_pin(), AuthSettings::default());
    let logins = (0..20).map(|_| h.auth("alice", "wonderland", None));
    let outcomes = futures_util::future::join_all(logins).await;
    let states: Vec<Vec<u8>> = outcomes.iter().map(|o| challenge(o).0).collect();
    assert!(states.iter().all(|s| *s == states[0]), "one challenge");
    assert_eq!(tokens(&h, "alice").await.len(), 1, "one token");
    assert_eq!(h.sms_count(), 1, "one message");
}

/// While a slow gateway is still sending, a second request waits for the outcome: it is not
/// told "already submitted" for a code that then fails.
#[tokio::test]
async fn issue_12_a_pending_challenge_is_not_handed_out_before_delivery() {
    let h = harness(&password_pin(), AuthSettings::default());
    *h.sms.behaviour.lock().unwrap() = Behaviour::SlowRefuse;
    *h.backup.behaviour.lock().unwrap() = Behaviour::Refuse;
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        h.auth("alice", "wonderland", None).await
    };
    let (first, second) = tokio::join!(h.auth("alice", "wonderland", None), second);
    for outcome in [first, second] {
        assert_eq!(reject_message(&outcome), "sending the OTP by SMS failed");
    }
    assert!(
        tokens(&h, "alice").await.is_empty(),
        "nothing half-enrolled"
    );

    // A delivered challenge is handed to the second request (blocking), with its State.
    *h.sms.behaviour.lock().unwrap() = Behaviour::Deliver;
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    let (again, message) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_eq!(again, state);
    assert_eq!(message, "sms with otp already submitted to +49********678");
}

#[tokio::test]
async fn issue_12_blocking_zero_never_blocks() {
    let settings = AuthSettings {
        sms_blocking_timeout: 0,
        ..AuthSettings::default()
    };
    let h = harness(&password_pin(), settings);
    let (first, _) = challenge(&h.auth("alice", "wonderland", None).await);
    // The same millisecond: a new code all the same.
    let (second, message) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_ne!(first, second);
    assert_eq!(message, "sms submitted to +49********678");
    assert_eq!(h.sms_count(), 2);
}

/// The directory password becomes a token PIN only where otppin=0 will check it.
#[tokio::test]
async fn issue_12_no_directory_password_at_rest_unless_otppin_0() {
    let h = harness(&password_pin(), AuthSettings::default());
    challenge(&h.auth("alice", "wonderland", None).await);
    let token = &tokens(&h, "alice").await[0];
    assert!(token.pin_hash.is_none(), "otppin=1: no PIN hash");
    assert!(token.autoenrolled);

    let h = harness(&[], AuthSettings::default());
    challenge(&h.auth("alice", "wonderland", None).await);
    assert!(
        tokens(&h, "alice").await[0].pin_hash.is_some(),
        "otppin=0 uses it"
    );
}
