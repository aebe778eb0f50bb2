//! What a request writes besides tokens and challenges, one request at a time: the back-off
//! counts (checked against `store::decide::failures_after`, the rule both backends' SQL
//! implements), the re-authentication grace and the audit trail.

use std::sync::Arc;

use tessera::store::AuditQuery;
use tessera::store::decide::failures_after;
use tessera::store::{AuditEntry, Backoff, Backoffs, Store};
use tessera::time::UnixMs;

use crate::fixtures::Fixture;

/// An identity's back-off rows as a request reads them, `(failures, last)` over all origins
/// and from `origin`, after the writes nobody waits for are flushed.
pub async fn counts(
    store: &Arc<dyn Store>,
    user: &str,
    origin: &str,
) -> (Option<(u32, i64)>, Option<(u32, i64)>) {
    store.checkpoint().await.unwrap();
    let rows = store
        .user_state(user, "local", Some(origin))
        .await
        .unwrap()
        .backoff;
    let pair = |b: Option<Backoff>| b.map(|b| (b.failures, b.last_failure.as_ms()));
    (pair(rows.identity), pair(rows.origin))
}

/// Issue 23: failures count per origin and over all origins; a right password clears its
/// origin's count only.
pub async fn counts_per_origin_and_identity(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (origin, now) in [
        ("st-1", 1_000),
        ("st-2", 1_500),
        ("st-1", 2_000),
        ("st-1", 2_500),
    ] {
        store
            .record_login_failure("alice", "local", origin, UnixMs::from_ms(now), 60_000)
            .await;
    }
    store
        .record_login_failure("bob", "local", "st-1", UnixMs::from_ms(2_600), 60_000)
        .await;
    assert_eq!(
        counts(&store, "alice", "st-1").await,
        (Some((4, 2_500)), Some((3, 2_500)))
    );
    assert_eq!(
        counts(&store, "alice", "st-2").await,
        (Some((4, 2_500)), Some((1, 1_500)))
    );
    assert_eq!(
        counts(&store, "alice", "st-3").await,
        (Some((4, 2_500)), None)
    );
    // Without an origin asked for, no back-off is read.
    let state = store.user_state("alice", "local", None).await.unwrap();
    assert_eq!(state.backoff, Backoffs::default());

    // A right password forgets its origin's failures, after the failure queued just before
    // it (nothing flushed in between); the identity's count stays.
    store
        .record_login_failure("alice", "local", "st-1", UnixMs::from_ms(2_700), 60_000)
        .await;
    store
        .clear_login_failures("alice", "local", "st-1")
        .await
        .unwrap();
    assert_eq!(
        counts(&store, "alice", "st-1").await,
        (Some((5, 2_700)), None)
    );
    assert_eq!(
        counts(&store, "alice", "st-2").await,
        (Some((5, 2_700)), Some((1, 1_500)))
    );
    let dump = store.export().await.unwrap();
    let rows: Vec<(&str, &str, u32)> = dump
        .backoff
        .iter()
        .map(|r| (r.user.as_str(), r.origin.as_str(), r.backoff.failures))
        .collect();
    assert_eq!(
        rows,
        [
            ("alice", "", 5),
            ("alice", "st-2", 1),
            ("bob", "", 1),
            ("bob", "st-1", 1)
        ]
    );
    assert!(!store.writes_failing());
}

/// Each failure changes the rows as `failures_after` says: one more, or one again after the
/// forget time; a late failure keeps the last time. The purge drops rows by their last
/// failure.
pub async fn counts_are_forgotten(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let forget = 60_000;
    let mut expected: Option<Backoff> = None;
    for now in [1_000, 2_000, 3_000, 1_500, 63_000, 63_001, 200_000] {
        store
            .record_login_failure("alice", "local", "st-1", UnixMs::from_ms(now), forget)
            .await;
        expected = Some(failures_after(expected, UnixMs::from_ms(now), forget));
        let pair = expected.map(|b| (b.failures, b.last_failure.as_ms()));
        assert_eq!(
            counts(&store, "alice", "st-1").await,
            (pair, pair),
            "after a failure at {now}"
        );
    }
    assert_eq!(
        expected.map(|b| b.failures),
        Some(1),
        "the test forgot once"
    );
    store
        .record_login_failure("bob", "local", "st-1", UnixMs::from_ms(150_000), forget)
        .await;
    store.checkpoint().await.unwrap();
    // alice's rows (last 200,000) stay, bob's two (150,000) go.
    assert_eq!(
        store
            .purge_login_failures(UnixMs::from_ms(150_001))
            .await
            .unwrap(),
        2
    );
    assert_eq!(counts(&store, "bob", "st-1").await, (None, None));
    assert_eq!(
        store
            .purge_login_failures(UnixMs::from_ms(200_001))
            .await
            .unwrap(),
        2
    );
    assert_eq!(counts(&store, "alice", "st-1").await, (None, None));
}

/// A grace holds for exactly its user, realm, client and station; granting again moves its
/// end; a session's Stop ends exactly its own; a failed password revokes every grace of the
/// user; the purge drops ended ones.
pub async fn grace_window(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let until = |client: &'static str, station: &'static str| {
        let store = store.clone();
        async move {
            store
                .grace_until("alice", "local", client, station)
                .await
                .unwrap()
        }
    };
    store
        .grant_grace("alice", "local", "nas-1", "00-11", UnixMs::from_ms(9_000))
        .await
        .unwrap();
    store
        .grant_grace("alice", "local", "nas-2", "00-11", UnixMs::from_ms(5_000))
        .await
        .unwrap();
    store
        .grant_grace("bob", "local", "nas-1", "00-11", UnixMs::from_ms(9_000))
        .await
        .unwrap();
    assert_eq!(until("nas-1", "00-11").await, Some(UnixMs::from_ms(9_000)));
    assert_eq!(until("nas-1", "00-22").await, None);
    store
        .grant_grace("alice", "local", "nas-1", "00-11", UnixMs::from_ms(12_000))
        .await
        .unwrap();
    assert_eq!(until("nas-1", "00-11").await, Some(UnixMs::from_ms(12_000)));

    // The purge drops graces that ended before its cut-off.
    store
        .purge_challenges(UnixMs::from_ms(5_001))
        .await
        .unwrap();
    assert_eq!(until("nas-2", "00-11").await, None);
    assert_eq!(until("nas-1", "00-11").await, Some(UnixMs::from_ms(12_000)));

    // A session's Stop ends exactly its grace.
    store
        .grant_grace("alice", "local", "nas-1", "00-22", UnixMs::from_ms(12_000))
        .await
        .unwrap();
    let end = |station: &'static str| {
        let store = store.clone();
        async move {
            store
                .end_grace("alice", "local", "nas-1", station)
                .await
                .unwrap()
        }
    };
    assert!(end("00-22").await);
    assert!(!end("00-22").await, "ended already");
    assert_eq!(until("nas-1", "00-22").await, None);
    assert_eq!(until("nas-1", "00-11").await, Some(UnixMs::from_ms(12_000)));

    store.revoke_grace("alice", "local").await.unwrap();
    assert_eq!(until("nas-1", "00-11").await, None);
    let bobs = store.grace_until("bob", "local", "nas-1", "00-11").await;
    assert_eq!(bobs.unwrap(), Some(UnixMs::from_ms(9_000)));
}

fn entry(time: i64, user: &str, reason: &str) -> AuditEntry {
    AuditEntry {
        time: UnixMs::from_secs(time),
        client: "nas-1".into(),
        user: user.into(),
        realm: "local".into(),
        serial: Some("LSSM1".into()),
        action: "authenticate".into(),
        result: "reject".into(),
        reason: reason.into(),
    }
}

/// Audit rows: queued or committed, read newest first with filters, control characters
/// escaped, purged oldest first and at most `limit` at a time.
pub async fn audit_trail(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.audit(entry(100, "alice", "one")).await;
    store.audit(entry(200, "bob", "two")).await;
    store.checkpoint().await.unwrap();
    store
        .audit_committed(entry(300, "alice\nforged", "three"))
        .await
        .unwrap();
    let reasons =
        |rows: Vec<AuditEntry>| -> Vec<String> { rows.into_iter().map(|r| r.reason).collect() };
    assert_eq!(
        reasons(store.audit_rows(None, None, 10).await.unwrap()),
        ["three", "two", "one"]
    );
    assert_eq!(
        reasons(store.audit_rows(Some("alice"), None, 10).await.unwrap()),
        ["one"]
    );
    assert_eq!(
        reasons(
            store
                .audit_rows(None, Some(UnixMs::from_secs(200)), 10)
                .await
                .unwrap()
        ),
        ["three", "two"]
    );
    assert_eq!(
        reasons(store.audit_rows(None, None, 1).await.unwrap()),
        ["three"]
    );
    let newest = &store.audit_rows(None, None, 1).await.unwrap()[0];
    assert!(!newest.user.contains('\n'), "{:?}", newest.user);
    assert_eq!(newest.serial.as_deref(), Some("LSSM1"));

    // Older than 301: all three; at most two at a time, the oldest first.
    assert_eq!(
        store.purge_audit(UnixMs::from_secs(301), 2).await.unwrap(),
        2
    );
    assert_eq!(
        reasons(store.audit_rows(None, None, 10).await.unwrap()),
        ["three"]
    );
    assert_eq!(
        store.purge_audit(UnixMs::from_secs(301), 2).await.unwrap(),
        1
    );
}

/// Audit rows read with every filter of an [`AuditQuery`]: user, realm, serial, result, a
/// part of the client, a time range, a limit.
pub async fn audit_filters(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    // Audit times are kept in seconds: these are seconds.
    let row = |time: i64, user: &str, client: &str, serial: &str, result: &str| AuditEntry {
        time: UnixMs::from_secs(time),
        client: client.into(),
        user: user.into(),
        realm: "local".into(),
        serial: Some(serial.into()),
        action: "authenticate".into(),
        result: result.into(),
        reason: format!("{time}"),
    };
    for entry in [
        row(100, "alice", "nas-1", "LSSM1", "accept"),
        row(200, "bob", "http/10.0.0.5", "LSEM2", "reject"),
        row(300, "alice", "admin/10.0.0.9 (by carol)", "LSSM1", "ok"),
        row(400, "alice", "nas-2", "TOTP3", "accept"),
    ] {
        store.audit_committed(entry).await.unwrap();
    }
    let times = |query: AuditQuery| {
        let store = store.clone();
        async move {
            store
                .audit_query(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.time.as_secs())
                .collect::<Vec<_>>()
        }
    };
    let all = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(times(all.clone()).await, [400, 300, 200, 100]);
    let user = AuditQuery {
        user: Some("alice".into()),
        ..all.clone()
    };
    assert_eq!(times(user.clone()).await, [400, 300, 100]);
    let serial = AuditQuery {
        serial: Some("LSSM1".into()),
        result: Some("accept".into()),
        ..user.clone()
    };
    assert_eq!(times(serial).await, [100]);
    let client = AuditQuery {
        client: Some("10.0.0".into()),
        ..all.clone()
    };
    assert_eq!(times(client).await, [300, 200]);
    let range = AuditQuery {
        since: Some(UnixMs::from_secs(200)),
        until: Some(UnixMs::from_secs(400)),
        ..all.clone()
    };
    assert_eq!(times(range).await, [300, 200]);
    let realm = AuditQuery {
        realm: Some("corp".into()),
        ..all.clone()
    };
    assert!(times(realm).await.is_empty());
    let one = AuditQuery { limit: 1, ..user };
    assert_eq!(times(one).await, [400]);
}

/// An identity's back-off rows, every origin and its own (the empty origin), ordered by
/// origin; cleared one by one they are gone, and another identity's stay.
pub async fn rows_by_origin(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (user, origin, now) in [
        ("alice", "st-2", 1_000),
        ("alice", "st-1", 2_000),
        ("alice", "st-1", 3_000),
        ("bob", "st-1", 4_000),
    ] {
        store
            .record_login_failure(user, "local", origin, UnixMs::from_ms(now), 60_000)
            .await;
    }
    store.checkpoint().await.unwrap();
    let rows = |user: &'static str| {
        let store = store.clone();
        async move {
            store
                .backoff_rows(user, "local")
                .await
                .unwrap()
                .into_iter()
                .map(|(origin, b)| (origin, b.failures, b.last_failure.as_ms()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        rows("alice").await,
        [
            (String::new(), 3, 3_000),
            ("st-1".to_string(), 2, 3_000),
            ("st-2".to_string(), 1, 1_000)
        ]
    );
    for (origin, _, _) in rows("alice").await {
        store
            .clear_login_failures("alice", "local", &origin)
            .await
            .unwrap();
    }
    assert!(rows("alice").await.is_empty());
    assert_eq!(rows("bob").await.len(), 2);
    assert!(
        store
            .backoff_rows("alice", "corp")
            .await
            .unwrap()
            .is_empty()
    );
}
