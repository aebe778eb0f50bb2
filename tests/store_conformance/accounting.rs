//! Accounting sessions (issue 30), one record at a time: a session's life from Start to Stop
//! (duplicates change nothing, a Stop without Start is a closed row, nothing reopens a stopped
//! session), Accounting-On/Off closing one NAS's sessions only, the bound on open sessions per
//! client entry, and the retention purge — checked against `store::sessions::merge`, the rule
//! both backends apply.

use tessera::store::{AccountingRecord, AcctStatus, Identity, Recorded, SessionQuery, Usage};
use tessera::time::UnixMs;

use crate::fixtures::Fixture;

/// A record of session `id` of alice on NAS `gw1` behind client entry `vpn`, at `secs`.
fn record(id: &str, status: AcctStatus, secs: i64) -> AccountingRecord {
    AccountingRecord {
        client: "vpn".into(),
        nas: "gw1".into(),
        session_id: id.into(),
        status,
        user: "alice".into(),
        calling_station: Some("02-00-00-00-00-01".into()),
        framed_ip: None,
        usage: None,
        session_seconds: None,
        cause: None,
        at: UnixMs::from_secs(secs),
        identity: None,
        nas_address: None,
    }
}

fn all() -> SessionQuery {
    SessionQuery {
        user: None,
        open_only: false,
        limit: 100,
        identity: None,
    }
}

pub async fn session_life_cycle(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let stored = |r: Result<Recorded, tessera::store::StoreError>| r.unwrap();
    assert_eq!(
        stored(
            store
                .record_accounting(record("s1", AcctStatus::Start, 100), 10)
                .await
        ),
        Recorded::Stored
    );
    assert_eq!(
        stored(
            store
                .record_accounting(record("s1", AcctStatus::Start, 100), 10)
                .await
        ),
        Recorded::Unchanged,
        "the same Start twice"
    );
    let mut interim = record("s1", AcctStatus::Interim, 160);
    interim.framed_ip = Some("10.0.0.7".into());
    interim.usage = Some(Usage {
        input_octets: (1 << 32) + 5,
        output_octets: 7,
        input_packets: 3,
        output_packets: 4,
    });
    assert_eq!(
        stored(store.record_accounting(interim.clone(), 10).await),
        Recorded::Stored
    );
    let rows = store.sessions(&all()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.user.as_str(), row.nas.as_str(), row.session_id.as_str()),
        ("alice", "gw1", "s1")
    );
    assert_eq!(row.started, Some(UnixMs::from_secs(100)));
    assert_eq!(row.interim, Some(UnixMs::from_secs(160)));
    assert_eq!(row.framed_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(row.usage.input_octets, (1 << 32) + 5);
    assert!(row.is_open());
    assert_eq!(
        store.open_sessions().await.unwrap(),
        vec![("vpn".into(), 1)]
    );

    let mut stop = record("s1", AcctStatus::Stop, 200);
    stop.cause = Some("User-Request".into());
    assert_eq!(
        stored(store.record_accounting(stop.clone(), 10).await),
        Recorded::Stored
    );
    assert_eq!(
        stored(store.record_accounting(stop, 10).await),
        Recorded::Unchanged
    );
    let mut late = interim;
    late.at = UnixMs::from_secs(260);
    assert_eq!(
        stored(store.record_accounting(late, 10).await),
        Recorded::Unchanged,
        "an Interim-Update after the Stop does not reopen it"
    );
    let row = &store.sessions(&all()).await.unwrap()[0];
    assert_eq!(row.stopped, Some(UnixMs::from_secs(200)));
    assert_eq!(row.cause.as_deref(), Some("User-Request"));
    assert!(store.open_sessions().await.unwrap().is_empty());
}

/// A Stop of a session never seen started: a closed row, its start from Acct-Session-Time.
pub async fn stop_without_start(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store
        .record_accounting(record("s1", AcctStatus::Start, 100), 10)
        .await
        .unwrap();
    let mut orphan = record("s2", AcctStatus::Stop, 1_000);
    orphan.user = "bob".into();
    orphan.session_seconds = Some(600);
    assert_eq!(
        store.record_accounting(orphan, 10).await.unwrap(),
        Recorded::Stored
    );
    let bob = store
        .sessions(&SessionQuery {
            user: Some("bob".into()),
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].started, Some(UnixMs::from_secs(400)));
    assert!(!bob[0].is_open());
    let open = SessionQuery {
        open_only: true,
        ..all()
    };
    assert_eq!(store.sessions(&open).await.unwrap().len(), 1);
    // Newest first.
    let ids: Vec<String> = store
        .sessions(&all())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(ids, ["s2", "s1"]);
}

pub async fn nas_restart_closes_its_sessions(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (client, nas, id) in [
        ("vpn", "gw1", "a"),
        ("vpn", "gw1", "b"),
        ("vpn", "gw2", "c"),
        ("wifi", "gw1", "d"),
    ] {
        let mut r = record(id, AcctStatus::Start, 100);
        r.client = client.into();
        r.nas = nas.into();
        store.record_accounting(r, 10).await.unwrap();
    }
    let closed = store
        .close_nas_sessions("vpn", "gw1", UnixMs::from_secs(500))
        .await
        .unwrap();
    assert_eq!(closed, 2);
    let open: Vec<String> = store
        .sessions(&SessionQuery {
            open_only: true,
            limit: 10,
            ..all()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect::<Vec<_>>();
    let mut open = open;
    open.sort();
    assert_eq!(open, ["c", "d"]);
    let a = store
        .sessions(&all())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.session_id == "a")
        .unwrap();
    assert_eq!(a.stopped, Some(UnixMs::from_secs(500)));
    assert_eq!(a.cause.as_deref(), Some("NAS-Reboot"));
    assert_eq!(
        store.open_sessions().await.unwrap(),
        vec![("vpn".into(), 1), ("wifi".into(), 1)]
    );
}

pub async fn open_sessions_are_bounded(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for id in ["a", "b"] {
        assert_eq!(
            store
                .record_accounting(record(id, AcctStatus::Start, 100), 2)
                .await
                .unwrap(),
            Recorded::Stored
        );
    }
    assert_eq!(
        store
            .record_accounting(record("c", AcctStatus::Start, 100), 2)
            .await
            .unwrap(),
        Recorded::LimitReached
    );
    assert_eq!(
        store
            .record_accounting(record("c", AcctStatus::Interim, 100), 2)
            .await
            .unwrap(),
        Recorded::LimitReached,
        "an Interim-Update of an unknown session opens one too"
    );
    // A closed row counts for nothing; updating an open one is not a new one.
    assert_eq!(
        store
            .record_accounting(record("z", AcctStatus::Stop, 100), 2)
            .await
            .unwrap(),
        Recorded::Stored
    );
    assert_eq!(
        store
            .record_accounting(record("a", AcctStatus::Interim, 150), 2)
            .await
            .unwrap(),
        Recorded::Stored
    );
    let mut other = record("c", AcctStatus::Start, 100);
    other.client = "wifi".into();
    assert_eq!(
        store.record_accounting(other, 2).await.unwrap(),
        Recorded::Stored,
        "the bound is per client entry"
    );
    store
        .record_accounting(record("a", AcctStatus::Stop, 200), 2)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_accounting(record("c", AcctStatus::Start, 300), 2)
            .await
            .unwrap(),
        Recorded::Stored
    );
    assert_eq!(store.sessions(&all()).await.unwrap().len(), 5);
}

pub async fn sessions_are_purged(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    for (id, secs) in [("old", 100), ("older", 50), ("new", 1_000)] {
        store
            .record_accounting(record(id, AcctStatus::Start, secs), 10)
            .await
            .unwrap();
    }
    store
        .record_accounting(record("old", AcctStatus::Stop, 120), 10)
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_sessions(UnixMs::from_secs(500), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .purge_sessions(UnixMs::from_secs(500), 10)
            .await
            .unwrap(),
        1
    );
    let left: Vec<String> = store
        .sessions(&all())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(left, ["new"]);
}

/// The open sessions of an identity (what a revoke disconnects): those resolved to it, in
/// its realm only, and those never resolved whose user name is its login; the identity and
/// the NAS's address are kept, and a later record without an identity keeps the one known.
pub async fn sessions_of_an_identity(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let alice = Identity {
        user: "alice".into(),
        realm: "corp".into(),
    };
    let mut typed = record("a", AcctStatus::Start, 100);
    typed.user = "ALICE@corp".into();
    typed.identity = Some(alice.clone());
    typed.nas_address = Some("192.0.2.7".into());
    store.record_accounting(typed, 10).await.unwrap();
    // Not resolved (the directory was down): found by its name.
    store
        .record_accounting(record("b", AcctStatus::Start, 110), 10)
        .await
        .unwrap();
    // Another realm's alice, and a stopped session of this one.
    let mut elsewhere = record("c", AcctStatus::Start, 120);
    elsewhere.identity = Some(Identity {
        user: "alice".into(),
        realm: "other".into(),
    });
    store.record_accounting(elsewhere, 10).await.unwrap();
    let mut stopped = record("d", AcctStatus::Stop, 130);
    stopped.identity = Some(alice.clone());
    store.record_accounting(stopped, 10).await.unwrap();
    let mut interim = record("a", AcctStatus::Interim, 140);
    interim.user = "ALICE@corp".into();
    store.record_accounting(interim, 10).await.unwrap();

    let open = store
        .sessions(&SessionQuery {
            identity: Some(alice.clone()),
            open_only: true,
            ..all()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = open.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    let a = &open[1];
    assert_eq!(
        a.identity.as_ref(),
        Some(&alice),
        "kept through the interim"
    );
    assert_eq!(a.nas_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(a.user, "ALICE@corp");
    assert_eq!(open[0].identity, None);
}
