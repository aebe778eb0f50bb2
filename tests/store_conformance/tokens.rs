//! Tokens: stored, read, changed, listed and deleted the same way on every backend.

use tessera::secret::Secret;
use tessera::store::{StoreError, TokenKind};
use tessera::time::UnixMs;

use crate::fixtures::Fixture;
use crate::{SEED, request, token};

/// Every call on one token, and what each answers for a serial that does not exist.
pub async fn token_life_cycle(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.ping().await.unwrap();
    let mut stored = token("LSSM1");
    stored.owner_id = Some("uuid-1".into());
    store.insert_token(stored).await.unwrap();
    assert!(matches!(
        store.insert_token(token("LSSM1")).await,
        Err(StoreError::Duplicate(_))
    ));
    let read = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!(read.seed, Secret::new(SEED.to_vec()));
    let text = |t: &tessera::store::Token| {
        let (phone, owner) = (t.phone.as_deref(), t.owner_id.as_deref());
        format!(
            "{}@{} {phone:?} {owner:?} {} {} {}",
            t.user,
            t.realm,
            t.digits,
            t.created_at.as_secs(),
            t.autoenrolled
        )
    };
    assert_eq!(
        text(&read),
        r#"alice@local Some("+4917012345678") Some("uuid-1") 6 1 false"#
    );
    assert!(store.token("NOPE").await.unwrap().is_none());
    let serials = |tokens: Vec<tessera::store::Token>| -> Vec<String> {
        tokens.into_iter().map(|t| t.serial).collect()
    };
    assert_eq!(
        serials(store.tokens_of_user("alice", "local").await.unwrap()),
        ["LSSM1"]
    );
    assert!(
        store
            .tokens_of_user("alice", "corp")
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.set_active("LSSM1", false).await.unwrap());
    assert!(!store.token("LSSM1").await.unwrap().unwrap().active);
    assert!(
        store
            .set_pin_hash("LSSM1", Some("$argon2id$x".into()))
            .await
            .unwrap()
    );
    let pin = store.token("LSSM1").await.unwrap().unwrap().pin_hash;
    assert_eq!(pin.as_deref(), Some("$argon2id$x"));
    assert!(store.set_pin_hash("LSSM1", None).await.unwrap());
    assert!(
        store
            .token("LSSM1")
            .await
            .unwrap()
            .unwrap()
            .pin_hash
            .is_none()
    );
    assert!(store.set_counter("LSSM1", 7).await.unwrap());
    assert_eq!(store.token("LSSM1").await.unwrap().unwrap().counter, 7);

    for at in [1_000, 1_234] {
        let at = UnixMs::from_secs(at);
        store.record_failure(&["LSSM1".into()], at).await.unwrap();
    }
    let failed = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!(
        (failed.fail_count, failed.last_fail_at),
        (2, Some(UnixMs::from_secs(1_234)))
    );
    assert!(store.reset_failures("LSSM1").await.unwrap());
    let reset = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!((reset.fail_count, reset.last_fail_at), (0, None));
}

/// A token given to another owner, and what each call answers for a serial that does not
/// exist; deleting.
pub async fn token_owner_and_deletion(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    let serials = |tokens: Vec<tessera::store::Token>| -> Vec<String> {
        tokens.into_iter().map(|t| t.serial).collect()
    };
    // A new owner takes the token; its challenges, bound to the old name, are dropped.
    store
        .start_challenge(request("s1", &["LSSM1"], 1_000, 0))
        .await
        .unwrap();
    assert!(store.set_token_owner("LSSM1", "alice.smith").await.unwrap());
    assert!(store.challenge("s1").await.unwrap().is_empty());
    assert_eq!(
        serials(store.tokens_of_user("alice.smith", "local").await.unwrap()),
        ["LSSM1"]
    );

    for serial in ["LSSM1", "NOPE"] {
        let exists = serial == "LSSM1";
        assert_eq!(store.set_active(serial, true).await.unwrap(), exists);
        assert_eq!(store.set_pin_hash(serial, None).await.unwrap(), exists);
        assert_eq!(store.set_counter(serial, 1).await.unwrap(), exists);
        assert_eq!(store.reset_failures(serial).await.unwrap(), exists);
        assert_eq!(
            store.set_token_owner(serial, "alice").await.unwrap(),
            exists
        );
        assert_eq!(store.delete_token(serial).await.unwrap(), exists);
    }
    assert!(!store.delete_token("LSSM1").await.unwrap());
    assert!(store.token("LSSM1").await.unwrap().is_none());
}

/// The admin listing's filters and order, many tokens in one transaction, and the
/// autoenrolled tokens that hold a PIN.
pub async fn token_listing(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let owned = |serial: &str, user: &str, realm: &str| {
        let mut t = token(serial);
        (t.user, t.realm) = (user.into(), realm.into());
        t
    };
    store
        .insert_tokens(vec![
            owned("LSSM2", "alice", "local"),
            owned("LSSM1", "alice", "local"),
            owned("LSSM3", "bob", "local"),
            owned("LSSM4", "alice", "corp"),
        ])
        .await
        .unwrap();
    let listed = |user: Option<&'static str>, realm: Option<&'static str>| {
        let store = store.clone();
        async move {
            let tokens = store.list_tokens(user, realm).await.unwrap();
            tokens.into_iter().map(|t| t.serial).collect::<Vec<_>>()
        }
    };
    // Ordered by realm, user, serial.
    assert_eq!(
        listed(None, None).await,
        ["LSSM4", "LSSM1", "LSSM2", "LSSM3"]
    );
    assert_eq!(
        listed(Some("alice"), None).await,
        ["LSSM4", "LSSM1", "LSSM2"]
    );
    assert_eq!(
        listed(None, Some("local")).await,
        ["LSSM1", "LSSM2", "LSSM3"]
    );
    assert_eq!(
        listed(Some("alice"), Some("local")).await,
        ["LSSM1", "LSSM2"]
    );

    // A duplicate serial fails the whole batch.
    let refused = store
        .insert_tokens(vec![owned("LSSM5", "carol", "local"), token("LSSM1")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Duplicate(_))),
        "{refused:?}"
    );
    assert!(store.token("LSSM5").await.unwrap().is_none());

    let mut auto = owned("LSSM6", "dave", "local");
    (auto.autoenrolled, auto.pin_hash) = (true, Some("hash".into()));
    let mut auto_without_pin = owned("LSSM7", "erin", "local");
    auto_without_pin.autoenrolled = true;
    let mut admin_with_pin = owned("LSSM8", "frank", "local");
    admin_with_pin.pin_hash = Some("hash".into());
    store
        .insert_tokens(vec![auto, auto_without_pin, admin_with_pin])
        .await
        .unwrap();
    assert_eq!(
        store.autoenrolled_with_pin().await.unwrap(),
        [("LSSM6".to_string(), "dave".to_string(), "local".to_string())]
    );
}

/// A description is set, kept to 80 characters without control characters, and a serial
/// that does not exist says so.
pub async fn token_description(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    assert!(
        store
            .set_description("LSSM1", "phone of the\nfront desk")
            .await
            .unwrap()
    );
    let read = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!(read.description, "phone of thefront desk");
    let long = "x".repeat(200);
    assert!(store.set_description("LSSM1", &long).await.unwrap());
    let read = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!(read.description.chars().count(), 80);
    assert!(!store.set_description("NOPE", "x").await.unwrap());
}

/// A token's last use: set (in seconds) by the login that consumes its HOTP or TOTP counter,
/// kept by a failure, a replay and an enrolment's first code (no login time), and carried
/// into a new row as given.
pub async fn last_use(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (serial, kind) in [("OATH1", TokenKind::Hotp), ("TOTP1", TokenKind::Totp)] {
        let mut t = token(serial);
        t.kind = kind;
        store.insert_token(t).await.unwrap();
        let last_used = || {
            let store = store.clone();
            async move { store.token(serial).await.unwrap().unwrap().last_used }
        };
        assert_eq!(last_used().await, None, "{serial}: never used");

        store
            .record_failure(&[serial.into()], UnixMs::from_secs(100))
            .await
            .unwrap();
        assert_eq!(last_used().await, None, "{serial}: a failure is no use");

        // Milliseconds are stored as seconds, like the token's other times.
        let login = UnixMs::from_ms(200_500);
        assert!(
            store
                .consume_counter(serial, 7, Some(login), None)
                .await
                .unwrap()
        );
        assert_eq!(last_used().await, Some(UnixMs::from_secs(200)), "{serial}");

        store
            .record_failure(&[serial.into()], UnixMs::from_secs(300))
            .await
            .unwrap();
        assert!(
            !store
                .consume_counter(serial, 7, Some(UnixMs::from_secs(310)), None)
                .await
                .unwrap()
        );
        assert_eq!(
            last_used().await,
            Some(UnixMs::from_secs(200)),
            "{serial}: a failure and a replay keep it"
        );

        assert!(store.consume_counter(serial, 9, None, None).await.unwrap());
        let t = store.token(serial).await.unwrap().unwrap();
        assert_eq!(
            (t.counter, t.fail_count, t.last_used),
            (10, 0, Some(UnixMs::from_secs(200))),
            "{serial}: a counter moved without a login time keeps it"
        );
    }

    let mut imported = token("LSSM9");
    imported.last_used = Some(UnixMs::from_secs(400));
    store.insert_tokens(vec![imported]).await.unwrap();
    let t = store.token("LSSM9").await.unwrap().unwrap();
    assert_eq!(t.last_used, Some(UnixMs::from_secs(400)));
}

/// A token waiting for its first code (self-service enrolment): stored inactive and pending,
/// confirmed once (active, not pending, its counter moved, in one write); a token not pending
/// — confirmed already, never pending, or decided by an operator's enable or disable — is
/// never confirmed, so an operator's "disabled" holds.
pub async fn pending_confirmation(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let pending = |serial: &str, counter: u64| {
        let mut t = token(serial);
        t.kind = TokenKind::Totp;
        t.phone = None;
        t.active = false;
        t.pending = true;
        t.counter = counter;
        t
    };
    let state = |serial: &'static str| {
        let store = &store;
        async move {
            let t = store.token(serial).await.unwrap().unwrap();
            (t.active, t.pending, t.counter)
        }
    };
    store.insert_token(pending("LSAP1", 0)).await.unwrap();
    assert_eq!(state("LSAP1").await, (false, true, 0), "stored as given");
    assert_eq!(
        store
            .list_tokens(Some("alice"), None)
            .await
            .unwrap()
            .iter()
            .map(|t| (t.serial.as_str(), t.pending))
            .collect::<Vec<_>>(),
        [("LSAP1", true)]
    );
    assert!(store.confirm_token("LSAP1", 5).await.unwrap());
    assert_eq!(state("LSAP1").await, (true, false, 5), "confirmed");
    assert!(!store.confirm_token("LSAP1", 6).await.unwrap(), "once");
    assert_eq!(state("LSAP1").await, (true, false, 5));

    // An operator's disable ends the waiting: the token stays off.
    store.insert_token(pending("LSAP2", 0)).await.unwrap();
    assert!(store.set_active("LSAP2", false).await.unwrap());
    assert_eq!(state("LSAP2").await, (false, false, 0));
    assert!(!store.confirm_token("LSAP2", 1).await.unwrap());
    assert_eq!(state("LSAP2").await, (false, false, 0), "stays disabled");

    // An operator's enable confirms it: never active and pending.
    store.insert_token(pending("LSAP3", 0)).await.unwrap();
    assert!(store.set_active("LSAP3", true).await.unwrap());
    assert_eq!(state("LSAP3").await, (true, false, 0));

    // A disabled token that never waited for a code.
    let mut off = pending("LSAP4", 0);
    off.pending = false;
    store.insert_token(off).await.unwrap();
    assert!(!store.confirm_token("LSAP4", 1).await.unwrap());
    assert_eq!(state("LSAP4").await, (false, false, 0));

    // The counter never moves back; the token keeps waiting.
    store.insert_token(pending("LSAP5", 10)).await.unwrap();
    assert!(!store.confirm_token("LSAP5", 3).await.unwrap());
    assert_eq!(state("LSAP5").await, (false, true, 10));

    assert!(!store.confirm_token("NOPE", 1).await.unwrap());
}
