//! Tokens: stored, read, changed, listed and deleted the same way on every backend.

use tessera::secret::Secret;
use tessera::store::StoreError;

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
            t.user, t.realm, t.digits, t.created_at, t.autoenrolled
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

    store
        .record_failure(&["LSSM1".into()], 1_000)
        .await
        .unwrap();
    store
        .record_failure(&["LSSM1".into()], 1_234)
        .await
        .unwrap();
    let failed = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!((failed.fail_count, failed.last_fail_at), (2, Some(1_234)));
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
