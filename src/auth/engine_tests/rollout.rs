//! Issue 17's policy actions with the test clock: `mfa=password_only`,
//! `delivery_failmode=password_only`, `login_mode=append`, `challenge_text`, `reject_text`.

use super::*;
use crate::auth::decision::{MSG_APPEND, MSG_FAILED};

fn with(action: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("authentication", "otppin=1"), ("authentication", action)]
}

fn accept_reason_free(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Accept { .. })
}

#[tokio::test]
async fn issue_17_mfa_password_only_accepts_the_password_alone() {
    let h = harness(&with("mfa=password_only"), AuthSettings::default());
    assert!(accept_reason_free(
        &h.auth("alice", "wonderland", None).await
    ));
    assert_eq!(h.sms_count(), 0, "no code, no token");
    assert!(
        h.store
            .tokens_of_user("alice", "local")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reject_message(&h.auth("alice", "guess", None).await),
        MSG_FAILED
    );
    assert_eq!(
        reject_message(&h.auth("nobody", "guess", None).await),
        MSG_FAILED
    );
    // Without the policy, the password alone is a first round.
    let h = harness(&password_pin(), AuthSettings::default());
    challenge(&h.auth("alice", "wonderland", None).await);
}

#[tokio::test]
async fn issue_17_delivery_failmode_password_only_accepts_when_no_code_goes_out() {
    let h = harness(
        &with("delivery_failmode=password_only"),
        AuthSettings::default(),
    );
    *h.sms.behaviour.lock().unwrap() = Behaviour::Refuse;
    *h.backup.behaviour.lock().unwrap() = Behaviour::Refuse;
    assert!(accept_reason_free(
        &h.auth("alice", "wonderland", None).await
    ));
    assert!(
        h.store
            .tokens_of_user("alice", "local")
            .await
            .unwrap()
            .is_empty(),
        "the token made for the failed delivery is gone"
    );
    // A wrong password is still a wrong password.
    assert_eq!(
        reject_message(&h.auth("alice", "guess", None).await),
        MSG_FAILED
    );
    // Closed (the default): the failure is the answer.
    let h = harness(&password_pin(), AuthSettings::default());
    *h.sms.behaviour.lock().unwrap() = Behaviour::Refuse;
    *h.backup.behaviour.lock().unwrap() = Behaviour::Refuse;
    assert_eq!(
        reject_message(&h.auth("alice", "wonderland", None).await),
        "sending the OTP by SMS failed"
    );
}

#[tokio::test]
async fn issue_23_a_failure_of_tesseras_own_is_refused_whatever_the_fail_mode() {
    let h = harness(
        &[
            ("authentication", "otppin=1, sms_provider=gw backup"),
            ("authentication", "delivery_failmode=password_only"),
        ],
        AuthSettings::default(),
    );
    // Both providers out of tessera's reach, or the first down and the second out of reach:
    // either way the failure to report is tessera's own, and nobody gets in on the password.
    for first in [Behaviour::Starved, Behaviour::Unavailable] {
        *h.sms.behaviour.lock().unwrap() = first;
        *h.backup.behaviour.lock().unwrap() = Behaviour::Starved;
        let message = reject_message(&h.auth("alice", "wonderland", None).await);
        assert_eq!(
            message,
            "sending the OTP by SMS failed (a problem on this server); try again later"
        );
    }
    // The providers' own failure still lets the fail mode apply.
    *h.sms.behaviour.lock().unwrap() = Behaviour::Unavailable;
    *h.backup.behaviour.lock().unwrap() = Behaviour::Refuse;
    assert!(accept_reason_free(
        &h.auth("alice", "wonderland", None).await
    ));
}

#[tokio::test]
async fn issue_17_append_mode_sends_the_code_then_takes_password_and_code() {
    let h = harness(&with("login_mode=append"), AuthSettings::default());
    let message = reject_message(&h.auth("alice", "wonderland", None).await);
    assert_eq!(
        message,
        format!("sms submitted to +49********678; {MSG_APPEND}")
    );
    let code = h.sms_code();
    assert!(is_accept(
        &h.auth("alice", &format!("wonderland{code}"), None).await
    ));
    // dave has a mobile and an e-mail address: `,email` picks the e-mail token.
    let message = reject_message(&h.auth("dave", "davepw,email", None).await);
    assert!(message.starts_with("e-mail submitted to"), "{message}");
    let tokens = h.store.tokens_of_user("dave", "local").await.unwrap();
    assert_eq!(tokens[0].kind, TokenKind::Email);

    // The keywords are the admin's to choose.
    let h = harness(
        &with("login_mode=append, email_keyword=mail"),
        AuthSettings::default(),
    );
    let message = reject_message(&h.auth("dave", "davepw,mail", None).await);
    assert!(message.starts_with("e-mail submitted to"), "{message}");
}

#[tokio::test]
async fn issue_17_challenge_and_reject_texts_per_policy() {
    let h = harness(
        &with("challenge_text='Code an <recipient> gesendet', reject_text='Zugang verweigert'"),
        AuthSettings::default(),
    );
    let (_, message) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_eq!(message, "Code an +49********678 gesendet");
    assert_eq!(
        reject_message(&h.auth("alice", "guess", None).await),
        "Zugang verweigert"
    );
}

/// After a two-factor login, the password alone logs the same user in again from the same
/// NAS and station for `grace_seconds` — not from another station, not after it ends, not
/// after a wrong password, not with the token disabled.
#[tokio::test]
async fn issue_17_grace_after_a_two_factor_login() {
    let h = harness(&with("grace_seconds=300"), AuthSettings::default());
    let here = Some("02-00-00-00-00-01");
    let (state, _) = challenge(&h.auth_from("alice", "wonderland", None, here).await);
    let code = h.sms_code();
    assert!(is_accept(
        &h.auth_from("alice", &code, Some(&state), here).await
    ));
    assert!(is_accept(
        &h.auth_from("ALICE", "wonderland", None, here).await
    ));
    assert_eq!(h.sms_count(), 1, "no second code");
    // Another station, no station, or an empty password: a normal first round.
    challenge(
        &h.auth_from("alice", "wonderland", None, Some("02-00-00-00-00-02"))
            .await,
    );
    challenge(&h.auth_from("alice", "wonderland", None, None).await);
    assert_eq!(
        reject_message(&h.auth_from("alice", "", None, here).await),
        MSG_FAILED
    );
    // It ends with its time.
    h.advance(301);
    challenge(&h.auth_from("alice", "wonderland", None, here).await);

    // A wrong password ends it at once.
    let (state, _) = challenge(&h.auth_from("dave", "davepw", None, here).await);
    let code = h.sms_code();
    assert!(is_accept(
        &h.auth_from("dave", &code, Some(&state), here).await
    ));
    assert_eq!(
        reject_message(&h.auth_from("dave", "guess", None, here).await),
        MSG_FAILED
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await; // the revoke is queued
    challenge(&h.auth_from("dave", "davepw", None, here).await);

    // A disabled token ends it too.
    h.advance(31);
    let (state, _) = challenge(&h.auth_from("alice", "wonderland", None, here).await);
    let code = h.sms_code();
    assert!(is_accept(
        &h.auth_from("alice", &code, Some(&state), here).await
    ));
    let serial = h.store.tokens_of_user("alice", "local").await.unwrap()[0]
        .serial
        .clone();
    h.store.set_active(&serial, false).await.unwrap();
    assert_eq!(
        reject_message(&h.auth_from("alice", "wonderland", None, here).await),
        MSG_FAILED
    );

    // Without the policy there is no grace.
    let h = harness(&password_pin(), AuthSettings::default());
    let (state, _) = challenge(&h.auth_from("alice", "wonderland", None, here).await);
    let code = h.sms_code();
    assert!(is_accept(
        &h.auth_from("alice", &code, Some(&state), here).await
    ));
    h.advance(31);
    challenge(&h.auth_from("alice", "wonderland", None, here).await);
}

/// Issue 23: another spelling of a token holder (`CORP\alice`, `alice@corp.example`) is not
/// forwarded to the legacy server, which might take it for alice; a name that is nobody's
/// spelling, and another spelling of a user without a token, still are.
#[tokio::test]
async fn issue_23_passthru_refuses_another_spelling_of_a_token_holder() {
    let h = harness(&with("passthru=legacy"), AuthSettings::default());
    let forwarded = |outcome: &Outcome| matches!(outcome, Outcome::Forward { .. });
    assert!(forwarded(&h.auth("CORP\\alice", "old", None).await));
    hotp_token(&h, TokenKind::Hotp, 0).await;
    for name in ["CORP\\alice", "alice@corp.example", "ＣＯＲＰ＼ＡＬＩＣＥ"] {
        let outcome = h.auth(name, "old", None).await;
        assert_eq!(reject_message(&outcome), MSG_FAILED, "{name}");
    }
    for name in ["CORP\\zed", "zed@corp.example", "CORP\\dave"] {
        assert!(forwarded(&h.auth(name, "old", None).await), "{name}");
    }
}
