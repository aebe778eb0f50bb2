//! Challenges, one request at a time: started, delivered, answered, consumed, deleted and
//! purged; what `start_challenge` decides (enrollment, the blocking timeout, the trigger
//! limit); the requests a shared store records for retransmits.

use tessera::store::{ChallengeStart, ChallengeStatus, RequestMark, StoreError};
use tessera::time::UnixMs;

use crate::fixtures::Fixture;
use crate::{request, token};

/// Started, pending, delivered, listed and deleted: one State per challenge, a row and a
/// counter per token; only delivered, unexpired rows are open for answers.
pub async fn challenge_life_cycle(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    store.insert_token(token("LSSM2")).await.unwrap();
    let start = |state: &'static str, now_ms| {
        let store = store.clone();
        async move {
            store
                .start_challenge(request(state, &["LSSM1"], now_ms, 0))
                .await
                .unwrap()
        }
    };
    assert_eq!(start("s1", 100_000).await, ChallengeStart::Started(vec![0]));
    assert_eq!(start("s2", 110_000).await, ChallengeStart::Started(vec![1]));
    // One challenge to two tokens: one State, a row and a counter each.
    let both = store
        .start_challenge(request("s3", &["LSSM1", "LSSM2"], 120_000, 0))
        .await
        .unwrap();
    assert_eq!(both, ChallengeStart::Started(vec![2, 0]));
    let rows = store.challenge("s3").await.unwrap();
    let mut shape: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.serial.as_str(),
                r.counter,
                r.created_at.as_ms(),
                r.expires_at.as_ms(),
            )
        })
        .collect();
    shape.sort_unstable();
    assert_eq!(
        shape,
        [
            ("LSSM1", 2, 120_000, 240_000),
            ("LSSM2", 0, 120_000, 240_000)
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.status == ChallengeStatus::Pending && r.user == "alice")
    );

    // Pending challenges are not open for answers until delivered; expired ones are not.
    let open = |now_ms| {
        let store = store.clone();
        async move {
            let rows = store
                .open_challenges_of_user("alice", "local", now_ms)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.state).collect::<Vec<_>>()
        }
    };
    assert!(open(UnixMs::from_ms(150_000)).await.is_empty());
    for state in ["s1", "s3"] {
        store.mark_delivered(state).await.unwrap();
    }
    assert_eq!(
        open(UnixMs::from_ms(150_000)).await,
        ["s3", "s3", "s1"],
        "newest first, s2 pending"
    );
    assert_eq!(
        open(UnixMs::from_ms(225_000)).await,
        ["s3", "s3"],
        "s1 expired at 220,000"
    );
    store.delete_challenge("s3").await.unwrap();
    assert!(store.challenge("s3").await.unwrap().is_empty());
}

/// Answers: a right answer closes its challenge once, and the token's older ones (a pending
/// one is withdrawn); a counter moves once; both reset the fail counter.
pub async fn challenge_answers(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    for (state, now_ms) in [("s1", 100_000), ("s2", 110_000), ("s3", 120_000)] {
        store
            .start_challenge(request(state, &["LSSM1"], now_ms, 0))
            .await
            .unwrap();
    }
    for state in ["s1", "s3"] {
        store.mark_delivered(state).await.unwrap();
    }
    store
        .record_failure(&["LSSM1".into()], UnixMs::from_secs(120))
        .await
        .unwrap();
    let answered = UnixMs::from_secs(125);
    let later = UnixMs::from_secs(126);
    assert!(
        store
            .close_challenge("s3", "LSSM1", answered, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .close_challenge("s3", "LSSM1", later, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .close_challenge("s1", "LSSM1", later, None)
            .await
            .unwrap()
    );
    let status = |state: &'static str| {
        let store = store.clone();
        async move { store.challenge(state).await.unwrap()[0].status }
    };
    assert_eq!(status("s3").await, ChallengeStatus::Closed);
    assert_eq!(status("s1").await, ChallengeStatus::Closed);
    assert_eq!(status("s2").await, ChallengeStatus::Withdrawn);
    let t = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!((t.counter, t.fail_count), (3, 0));
    // The answer is the token's last use; the challenges found closed are not.
    assert_eq!(t.last_used, Some(answered));

    // A HOTP-style consumption is a compare-and-set that resets the fail counter.
    store
        .record_failure(&["LSSM1".into()], UnixMs::from_secs(130))
        .await
        .unwrap();
    let consumed = Some(UnixMs::from_secs(140));
    assert!(
        store
            .consume_counter("LSSM1", 5, consumed, None)
            .await
            .unwrap()
    );
    let replayed = Some(UnixMs::from_secs(150));
    assert!(
        !store
            .consume_counter("LSSM1", 5, replayed, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_counter("LSSM1", 3, replayed, None)
            .await
            .unwrap()
    );
    let t = store.token("LSSM1").await.unwrap().unwrap();
    assert_eq!((t.counter, t.fail_count), (6, 0));
    assert_eq!(t.last_used, consumed, "a replay is no use");

    // Deleting a token deletes its challenges.
    assert!(store.delete_token("LSSM1").await.unwrap());
    assert!(store.challenge("s1").await.unwrap().is_empty());
}

/// Issue 12: blocking, the trigger limit and "enroll unless the user has a token" are
/// decided by the store, in one transaction.
pub async fn start_decides(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let autoenrolled = |serial| {
        let mut t = token(serial);
        t.autoenrolled = true;
        t
    };
    let mut enroll = request("s1", &["LSSM1"], 1_000, 30_000);
    enroll.enroll = Some(autoenrolled("LSSM1"));
    assert_eq!(
        store.start_challenge(enroll).await.unwrap(),
        ChallengeStart::Started(vec![0])
    );
    // A second enrollment of the same user, with another serial, finds the token.
    let mut again = request("s2", &["LSSM2"], 1_000, 30_000);
    again.enroll = Some(autoenrolled("LSSM2"));
    assert_eq!(
        store.start_challenge(again).await.unwrap(),
        ChallengeStart::AlreadyEnrolled
    );
    // Even past the check, the schema holds one autoenrolled token per user.
    assert!(matches!(
        store.insert_token(autoenrolled("LSSM2")).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        store.tokens_of_user("alice", "local").await.unwrap().len(),
        1
    );

    // Within the blocking timeout the pending challenge comes back, not a new one.
    let ChallengeStart::Open(rows) = store
        .start_challenge(request("s3", &["LSSM1"], 30_999, 30_000))
        .await
        .unwrap()
    else {
        panic!("expected the open challenge");
    };
    assert_eq!(
        (rows[0].state.as_str(), rows[0].status),
        ("s1", ChallengeStatus::Pending)
    );
    // One millisecond later it no longer blocks; blocking 0 never blocks.
    for (state, blocking, counter) in [("s3", 30_000, 1), ("s4", 0, 2)] {
        assert_eq!(
            store
                .start_challenge(request(state, &["LSSM1"], 31_000, blocking))
                .await
                .unwrap(),
            ChallengeStart::Started(vec![counter])
        );
    }
    // Three started in the window: the limit; a window that has moved past them: not.
    assert_eq!(
        store
            .start_challenge(request("s5", &["LSSM1"], 31_000, 0))
            .await
            .unwrap(),
        ChallengeStart::Limited(3)
    );
    assert_eq!(
        store
            .start_challenge(request("s5", &["LSSM1"], 601_001, 0))
            .await
            .unwrap(),
        ChallengeStart::Started(vec![3])
    );
}

/// A request resent (to another node, or from another port) gets its challenge back whatever
/// the blocking timeout; a shared store records the request that consumed an OTP and finds it
/// again within the window, a store of one node leaves that to its reply cache.
pub async fn retransmits(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    let ms = UnixMs::from_ms;
    store.insert_token(token("LSSM1")).await.unwrap();
    let mut first = request("s1", &["LSSM1"], 1_000, 0);
    first.request_digest = Some([1; 16]);
    assert!(matches!(
        store.start_challenge(first.clone()).await.unwrap(),
        ChallengeStart::Started(_)
    ));
    let mut resent = first.clone();
    (resent.state, resent.now, resent.retransmit_since) = ("s2".into(), ms(2_000), ms(500));
    let ChallengeStart::Open(rows) = store.start_challenge(resent.clone()).await.unwrap() else {
        panic!("the resent request started a second challenge");
    };
    assert_eq!(rows[0].state, "s1");
    // Outside the retransmit window it is a new login.
    resent.retransmit_since = ms(1_001);
    assert!(matches!(
        store.start_challenge(resent).await.unwrap(),
        ChallengeStart::Started(_)
    ));

    store.mark_delivered("s1").await.unwrap();
    let closing = RequestMark {
        digest: [2; 16],
        now: ms(3_000),
    };
    assert!(
        store
            .close_challenge("s1", "LSSM1", closing.now, Some(closing))
            .await
            .unwrap()
    );
    let consuming = RequestMark {
        digest: [3; 16],
        now: ms(4_000),
    };
    assert!(
        store
            .consume_counter("LSSM1", 10, Some(consuming.now), Some(consuming))
            .await
            .unwrap()
    );

    let recorded = |serial: &str| fixture.shared().then(|| serial.to_string());
    for (digest, at) in [([2; 16], 3_000), ([3; 16], 4_000)] {
        assert_eq!(
            store.retransmit_of(&digest, ms(at)).await.unwrap(),
            recorded("LSSM1")
        );
        assert_eq!(
            store.retransmit_of(&digest, ms(at + 1)).await.unwrap(),
            None
        );
    }
    assert_eq!(store.retransmit_of(&[9; 16], ms(0)).await.unwrap(), None);

    // The same lookups riding with a request's first read and its second round.
    let (state, found) = store
        .user_state_of_request("alice", "local", None, Some((&[3; 16], ms(0))))
        .await
        .unwrap();
    assert_eq!((state.tokens.len(), found), (1, recorded("LSSM1")));
    let (_, found) = store
        .user_state_of_request("alice", "local", None, None)
        .await
        .unwrap();
    assert_eq!(found, None);
    let (rows, found) = store
        .challenge_of_request("s1", Some((&[2; 16], ms(0))))
        .await
        .unwrap();
    assert_eq!((rows.len(), found), (1, recorded("LSSM1")));
    let (rows, found) = store.challenge_of_request("s1", None).await.unwrap();
    assert_eq!((rows.len(), found), (1, None));
}

/// The purge deletes the challenges that expired before its cut-off (and, on a shared store,
/// the requests recorded before it) and keeps the later ones.
pub async fn challenge_purge(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    // Valid 120 s each: they expire at 121,000, 122,000 and 123,000.
    for (state, now_ms) in [("s1", 1_000), ("s2", 2_000), ("s3", 3_000)] {
        store
            .start_challenge(request(state, &["LSSM1"], now_ms, 0))
            .await
            .unwrap();
    }
    for used in 0..4u8 {
        let by = RequestMark {
            digest: [used; 16],
            now: UnixMs::from_ms(120_000 + i64::from(used) * 1000),
        };
        assert!(
            store
                .consume_counter("LSSM1", u64::from(used) + 10, Some(by.now), Some(by))
                .await
                .unwrap()
        );
    }
    assert_eq!(
        store
            .purge_challenges(UnixMs::from_ms(122_001))
            .await
            .unwrap(),
        2
    );
    assert!(store.challenge("s2").await.unwrap().is_empty());
    assert_eq!(store.challenge("s3").await.unwrap().len(), 1);
    assert_eq!(
        store
            .purge_challenges(UnixMs::from_ms(122_001))
            .await
            .unwrap(),
        0
    );
    // Recorded at 120,000 … 123,000: those before the cut-off are forgotten.
    for (used, kept) in [(0u8, false), (2, false), (3, true)] {
        let found = store
            .retransmit_of(&[used; 16], UnixMs::from_ms(0))
            .await
            .unwrap();
        assert_eq!(found.is_some(), kept && fixture.shared(), "request {used}");
    }
}

/// A challenge to a token that is gone by now (another request's failed delivery took the
/// token it had enrolled away between this request's read and its start) starts nothing: the
/// call fails with `TokenGone`, and the tokens it reached before keep their counters.
pub async fn start_on_a_token_gone(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("LSSM1")).await.unwrap();
    let started = store
        .start_challenge(request("s1", &["LSSM1", "LSSM9"], 100_000, 0))
        .await;
    assert!(
        matches!(started, Err(StoreError::TokenGone(ref serial)) if serial == "LSSM9"),
        "{started:?}"
    );
    assert!(store.challenge("s1").await.unwrap().is_empty(), "no rows");
    assert_eq!(store.token("LSSM1").await.unwrap().unwrap().counter, 0);
    // The next start is not hindered by it.
    assert_eq!(
        store
            .start_challenge(request("s2", &["LSSM1"], 100_000, 0))
            .await
            .unwrap(),
        ChallengeStart::Started(vec![0])
    );
}
