//! The engine's life cycles with a clock the test controls: challenge validity, blocking,
//! lockout and unlock, the trigger limit, failed delivery, failover, HOTP/TOTP windows and
//! multi-challenge. The store is the real SQLite store and the directory the real users file,
//! both in a temporary directory; only the provider is a recorder, so the test can read the
//! codes and make delivery fail at will.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::policy::{Policy, PolicySet, PolicyText};
use super::{AuthRequest, AuthSettings, Clock, Engine, Outcome};
use crate::delivery::{Channel, DeliveryError, Message, Provider, Providers, Receipt};
use crate::directory::users_file::{UsersFile, UsersFileConfig};
use crate::directory::{Directory, Realm, Realms};
use crate::otp::{hotp, totp_step};
use crate::password_hash;
use crate::secret::Secret;
use crate::store::seal::SealKey;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, Token, TokenKind};
use crate::time::UnixMs;

mod identity;
mod origin;
mod rollout;

struct TestClock(AtomicI64);

/// Milliseconds since the epoch.
impl Clock for TestClock {
    fn now(&self) -> UnixMs {
        UnixMs::from_ms(self.0.load(Ordering::SeqCst))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Deliver,
    Unavailable,
    Refuse,
    /// Refuses after a while, as a slow gateway that then fails.
    SlowRefuse,
    /// tessera has no descriptor left to reach the provider with (EMFILE).
    Starved,
}

struct Recorder {
    name: String,
    sent: Mutex<Vec<Message>>,
    behaviour: Mutex<Behaviour>,
}

#[async_trait]
impl Provider for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let behaviour = *self.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Deliver => {
                self.sent.lock().unwrap().push(message.clone());
                Ok(Receipt {
                    provider: self.name.clone(),
                    detail: "recorded".into(),
                })
            }
            Behaviour::Unavailable => Err(DeliveryError::Unavailable {
                provider: self.name.clone(),
                reason: "down".into(),
            }),
            Behaviour::Refuse => Err(DeliveryError::Refused {
                provider: self.name.clone(),
                reason: "no credit".into(),
            }),
            Behaviour::Starved => Err(DeliveryError::judged(
                &self.name,
                std::io::Error::from_raw_os_error(24),
                |_| unreachable!("EMFILE is tessera's own"),
            )),
            Behaviour::SlowRefuse => {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Err(DeliveryError::Refused {
                    provider: self.name.clone(),
                    reason: "no credit".into(),
                })
            }
        }
    }
}

fn recorder(name: &str) -> Arc<Recorder> {
    Arc::new(Recorder {
        name: name.into(),
        sent: Mutex::new(vec![]),
        behaviour: Mutex::new(Behaviour::Deliver),
    })
}

struct Harness {
    engine: Engine,
    store: Arc<dyn Store>,
    clock: Arc<TestClock>,
    sms: Arc<Recorder>,
    backup: Arc<Recorder>,
    email: Arc<Recorder>,
    _dir: tempfile::TempDir,
}

const T0: i64 = 1_800_000_000;

fn harness(policies: &[(&str, &str)], settings: AuthSettings) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let users = format!(
        "[[user]]\nname = \"alice\"\npassword = \"{}\"\nmobile = \"+4917012345678\"\ngroups = [\"staff\", \"vpn\"]\n\n\
         [[user]]\nname = \"dave\"\npassword = \"{}\"\nmobile = \"+4915100000000\"\nemail = \"dave@example.org\"\n",
        password_hash::hash(&Secret::from("wonderland")).unwrap(),
        password_hash::hash(&Secret::from("davepw")).unwrap(),
    );
    let users_path = dir.path().join("users.toml");
    std::fs::write(&users_path, users).unwrap();
    let directory: Arc<dyn Directory> =
        Arc::new(UsersFile::open("local", &UsersFileConfig { path: users_path }).unwrap());
    let realms = Realms::new(
        vec![Realm {
            name: "local".into(),
            directories: vec![directory],
        }],
        0,
        true,
    );
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("t.db"), SealKey::from_bytes(&[3; 32])).unwrap(),
    );
    let (sms, backup, email) = (recorder("gw"), recorder("backup"), recorder("mail"));
    let mut providers = Providers::default();
    providers.insert(Channel::Sms, sms.clone(), true);
    providers.insert(Channel::Sms, backup.clone(), false);
    providers.insert(Channel::Email, email.clone(), true);
    let mut parsed = vec![
        Policy::parse(
            "enroll",
            "enrollment",
            "autoenrollment=sms email",
            "",
            "",
            "",
            true,
        )
        .unwrap(),
    ];
    for (scope, action) in policies {
        let (action, reply) = match action.split_once(" | reply: ") {
            Some((action, reply)) => (action, reply.split(" ; ").map(String::from).collect()),
            None => (*action, vec![]),
        };
        parsed.push(
            Policy::from_text(&PolicyText {
                name: "p",
                scope,
                action,
                reply: &reply,
                active: true,
                ..PolicyText::default()
            })
            .unwrap(),
        );
    }
    let clock = Arc::new(TestClock(AtomicI64::new(T0 * 1000)));
    let engine = Engine::new(
        store.clone(),
        realms,
        PolicySet::new(parsed),
        providers,
        settings,
        clock.clone() as Arc<dyn Clock>,
    );
    Harness {
        engine,
        store,
        clock,
        sms,
        backup,
        email,
        _dir: dir,
    }
}

impl Harness {
    async fn auth(&self, user: &str, password: &str, state: Option<&[u8]>) -> Outcome {
        self.auth_from(user, password, state, None).await
    }

    /// `auth` with a Calling-Station-Id.
    async fn auth_from(
        &self,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
        station: Option<&str>,
    ) -> Outcome {
        self.engine
            .decide(AuthRequest {
                user_name: user.into(),
                password: Secret::from(password),
                state: state.map(<[u8]>::to_vec),
                client: IpAddr::from([127, 0, 0, 1]),
                client_name: "test".into(),
                calling_station: station.map(String::from),
                // As the RADIUS handler does; without a station the engine takes the client.
                origin: station.unwrap_or_default().into(),
                request_id: None,
                reply_limit: None,
            })
            .await
    }

    fn advance(&self, seconds: i64) {
        self.advance_ms(seconds * 1000);
    }

    fn advance_ms(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    fn last_code(recorder: &Recorder) -> String {
        let sent = recorder.sent.lock().unwrap();
        let text = sent
            .last()
            .expect("a message")
            .text
            .expose_str()
            .unwrap()
            .to_string();
        text.chars().filter(char::is_ascii_digit).collect()
    }

    fn sms_code(&self) -> String {
        Self::last_code(&self.sms)
    }

    fn sms_count(&self) -> usize {
        self.sms.sent.lock().unwrap().len()
    }
}

fn challenge(outcome: &Outcome) -> (Vec<u8>, String) {
    match outcome {
        Outcome::Challenge { state, message, .. } => (state.clone(), message.clone()),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn reject_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Reject { message } => message.clone(),
        other => panic!("expected a reject, got {other:?}"),
    }
}

fn is_accept(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Accept { .. })
}

fn password_pin() -> Vec<(&'static str, &'static str)> {
    vec![("authentication", "otppin=1")]
}

#[tokio::test]
async fn challenge_expires_after_its_validity() {
    let h = harness(&password_pin(), AuthSettings::default());
    let (state, message) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_eq!(message, "sms submitted to +49********678");
    h.advance(121);
    let outcome = h.auth("alice", &h.sms_code(), Some(&state)).await;
    assert_eq!(reject_message(&outcome), super::decision::MSG_EXPIRED);
}

#[tokio::test]
async fn blocking_then_a_new_challenge() {
    let h = harness(&password_pin(), AuthSettings::default());
    let (first, _) = challenge(&h.auth("alice", "wonderland", None).await);
    h.advance(10);
    let (again, message) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_eq!(again, first);
    assert_eq!(message, "sms with otp already submitted to +49********678");
    assert_eq!(h.sms_count(), 1);
    h.advance(21); // 31 s after the first: past the 30 s blocking timeout
    let (second, _) = challenge(&h.auth("alice", "wonderland", None).await);
    assert_ne!(second, first);
    assert_eq!(h.sms_count(), 2);
    assert!(is_accept(
        &h.auth("alice", &h.sms_code(), Some(&second)).await
    ));
}

#[tokio::test]
async fn lockout_at_max_fail_then_admin_unlock() {
    let settings = AuthSettings {
        max_fail: 3,
        ..AuthSettings::default()
    };
    let h = harness(&password_pin(), settings);
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    let code = h.sms_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        reject_message(&h.auth("alice", wrong, Some(&state)).await),
        "wrong code, try again"
    );
    h.auth("alice", wrong, Some(&state)).await;
    assert_eq!(
        reject_message(&h.auth("alice", wrong, Some(&state)).await),
        super::decision::MSG_LOCKED
    );
    // Locked: even the right code fails.
    assert!(!is_accept(&h.auth("alice", &code, Some(&state)).await));
    let serial = h.store.tokens_of_user("alice", "local").await.unwrap()[0]
        .serial
        .clone();
    assert!(h.store.reset_failures(&serial).await.unwrap());
    assert!(is_accept(&h.auth("alice", &code, Some(&state)).await));
}

#[tokio::test]
async fn lockout_ends_by_itself_after_lockout_duration() {
    let settings = AuthSettings {
        max_fail: 2,
        lockout_duration: 60,
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
    h.advance(31);
    assert_eq!(
        reject_message(&h.auth("alice", "wonderland", None).await),
        super::decision::MSG_LOCKED
    );
    h.advance(60);
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    assert!(is_accept(
        &h.auth("alice", &h.sms_code(), Some(&state)).await
    ));
}

#[tokio::test]
async fn trigger_limit_per_user() {
    let settings = AuthSettings {
        sms_blocking_timeout: 0,
        trigger_limit: 2,
        trigger_window: 600,
        ..AuthSettings::default()
    };
    let h = harness(&password_pin(), settings);
    challenge(&h.auth("alice", "wonderland", None).await);
    h.advance(1);
    challenge(&h.auth("alice", "wonderland", None).await);
    h.advance(1);
    let message = reject_message(&h.auth("alice", "wonderland", None).await);
    assert_eq!(message, "too many codes requested; try again in 10 minutes");
    assert_eq!(h.sms_count(), 2);
    h.advance(600);
    challenge(&h.auth("alice", "wonderland", None).await);
}

#[tokio::test]
async fn refused_delivery_leaves_no_token_and_unavailable_fails_over() {
    let h = harness(
        &[("authentication", "otppin=1, sms_provider=gw backup")],
        AuthSettings::default(),
    );
    *h.sms.behaviour.lock().unwrap() = Behaviour::Refuse;
    let message = reject_message(&h.auth("alice", "wonderland", None).await);
    assert_eq!(message, "sending the OTP by SMS failed");
    assert!(
        h.store
            .tokens_of_user("alice", "local")
            .await
            .unwrap()
            .is_empty(),
        "no half-enrolled token"
    );
    assert!(
        h.backup.sent.lock().unwrap().is_empty(),
        "a refusal does not fail over"
    );

    *h.sms.behaviour.lock().unwrap() = Behaviour::Unavailable;
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    let code = Harness::last_code(&h.backup);
    assert!(is_accept(&h.auth("alice", &code, Some(&state)).await));
}

async fn hotp_token(h: &Harness, kind: TokenKind, counter: u64) -> Token {
    let token = Token {
        serial: format!("{}TEST", kind.serial_prefix()),
        kind,
        user: "alice".into(),
        realm: "local".into(),
        seed: Secret::from("12345678901234567890"),
        counter,
        digits: 6,
        pin_hash: Some(password_hash::hash(&Secret::from("1234")).unwrap()),
        phone: None,
        email: None,
        active: true,
        fail_count: 0,
        max_fail: 10,
        last_fail_at: None,
        description: String::new(),
        created_at: UnixMs::from_secs(T0),
        owner_id: None,
        autoenrolled: false,
        last_used: None,
        pending: false,
        algorithm: crate::store::HashAlgorithm::Sha1,
        time_step: None,
        public_id: None,
    };
    h.store.insert_token(token.clone()).await.unwrap();
    token
}

#[tokio::test]
async fn hotp_window_and_replay_with_only_otp() {
    let h = harness(&[("authentication", "otppin=2")], AuthSettings::default());
    hotp_token(&h, TokenKind::Hotp, 0).await;
    // RFC 4226 vectors: counter 3 is 969429, inside the window of 10.
    assert!(is_accept(&h.auth("alice", "969429", None).await));
    assert!(!is_accept(&h.auth("alice", "969429", None).await), "replay");
    assert!(
        !is_accept(&h.auth("alice", "359152", None).await),
        "counter 2 is behind us now"
    );
    assert!(
        is_accept(&h.auth("alice", "338314", None).await),
        "counter 4"
    );
    // Counter 15 (outside 5..15) is too far ahead.
    assert!(!is_accept(
        &h.auth("alice", &hotp(b"12345678901234567890", 15, 6), None)
            .await
    ));
}

#[tokio::test]
async fn hotp_with_token_pin() {
    let h = harness(&[("authentication", "otppin=0")], AuthSettings::default());
    hotp_token(&h, TokenKind::Hotp, 0).await;
    assert!(
        !is_accept(&h.auth("alice", "0000755224", None).await),
        "wrong PIN"
    );
    assert!(
        is_accept(&h.auth("alice", "1234287082", None).await),
        "PIN 1234 + counter 1"
    );
    let token = h.store.token("OATHTEST").await.unwrap().unwrap();
    assert_eq!(
        (token.counter, token.fail_count),
        (2, 0),
        "success resets the fail counter"
    );
    let message = reject_message(&h.auth("alice", "1234", None).await);
    assert_eq!(
        message,
        "enter your password followed by the code from your authenticator"
    );
}

#[tokio::test]
async fn totp_never_the_same_step_twice() {
    let h = harness(&[("authentication", "otppin=2")], AuthSettings::default());
    hotp_token(&h, TokenKind::Totp, 0).await;
    let seed = b"12345678901234567890";
    let step = totp_step(T0, 30);
    let now_code = hotp(seed, step, 6);
    assert!(is_accept(&h.auth("alice", &now_code, None).await));
    assert!(
        !is_accept(&h.auth("alice", &now_code, None).await),
        "same step again"
    );
    assert!(
        !is_accept(&h.auth("alice", &hotp(seed, step - 1, 6), None).await),
        "an older step"
    );
    assert!(
        is_accept(&h.auth("alice", &hotp(seed, step + 1, 6), None).await),
        "next step, clock drift"
    );
    assert!(
        !is_accept(&h.auth("alice", &hotp(seed, step + 3, 6), None).await),
        "too far ahead"
    );
}

#[tokio::test]
async fn multi_challenge_for_two_tokens() {
    let h = harness(&password_pin(), AuthSettings::default());
    // dave gets an SMS token by autoenrollment, then an e-mail token by hand.
    let (state, _) = challenge(&h.auth("dave", "davepw", None).await);
    assert!(is_accept(
        &h.auth("dave", &h.sms_code(), Some(&state)).await
    ));
    let spec = super::enrollment::TokenSpec {
        kind: TokenKind::Email,
        user: "dave".into(),
        realm: "local".into(),
        seed: None,
        digits: 6,
        max_fail: 10,
        pin_hash: None,
        phone: None,
        email: Some("dave@example.org".into()),
        description: String::new(),
        now: UnixMs::from_secs(T0),
        pending: false,
        public_id: None,
    };
    super::enrollment::create_token(h.store.as_ref(), spec)
        .await
        .unwrap();
    h.advance(60);
    let (state, message) = challenge(&h.auth("dave", "davepw", None).await);
    assert_eq!(message, "Multiple challenges submitted.");
    let email_code = Harness::last_code(&h.email);
    let sms_code = h.sms_code();
    assert!(is_accept(&h.auth("dave", &email_code, Some(&state)).await));
    assert!(
        !is_accept(&h.auth("dave", &sms_code, Some(&state)).await),
        "answering one closes all"
    );
}

#[tokio::test]
async fn state_of_another_user_is_refused() {
    let h = harness(&password_pin(), AuthSettings::default());
    let (state, _) = challenge(&h.auth("alice", "wonderland", None).await);
    let code = h.sms_code();
    assert!(!is_accept(&h.auth("dave", &code, Some(&state)).await));
    assert!(is_accept(&h.auth("alice", &code, Some(&state)).await));
}

#[tokio::test]
async fn reply_attributes_from_the_most_specific_policy() {
    let policy = "otppin=2 | reply: Class = vpn-{user}@{realm} ; Filter-Id = {groups} ; Reply-Message = to {mobile}";
    let h = harness(&[("authentication", policy)], AuthSettings::default());
    hotp_token(&h, TokenKind::Hotp, 0).await;
    match h.auth("alice", "755224", None).await {
        Outcome::Accept { reply, .. } => assert_eq!(
            reply,
            [
                ("Class".to_string(), "vpn-alice@local".to_string()),
                ("Filter-Id".to_string(), "staff".to_string()),
                ("Filter-Id".to_string(), "vpn".to_string()),
                ("Reply-Message".to_string(), "to +4917012345678".to_string()),
            ]
        ),
        other => panic!("expected an accept, got {other:?}"),
    }
}
