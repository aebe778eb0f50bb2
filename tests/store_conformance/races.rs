//! The races the engine relies on the store to decide, run as parallel calls on two stores
//! of one fixture (two nodes on one database, two processes on one file): whatever the
//! interleaving, one enrollment, one challenge within the blocking timeout, no more than the
//! trigger limit, one winner per code, and every failure counted.

use std::sync::Arc;

use tessera::store::{ChallengeRequest, ChallengeStart, RequestMark, Store, StoreError};
use tessera::time::UnixMs;
use tokio::sync::Barrier;

use crate::backoff::counts;
use crate::fixtures::Fixture;
use crate::{request, token};

/// Parallel callers: each of `n` tasks gets one of the two stores, in turn, and starts once
/// all are ready.
async fn in_parallel<T, F, Fut>(fixture: &dyn Fixture, n: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let nodes = [fixture.open().await, fixture.open().await];
    for node in &nodes {
        warm(node, n.div_ceil(2)).await;
    }
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let call = call(i, nodes[i % 2].clone());
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Opens the connections `n` parallel calls on `store` will use, before they race: on a
/// loaded machine many first connections at once can take longer than the PostgreSQL pool's
/// 5 s, and a call that finds no connection runs nothing and never reaches the race under
/// test. Such a call is made again (a few times).
async fn warm(store: &Arc<dyn Store>, n: usize) {
    for _ in 0..5 {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.tokens_of_user("warm", "up").await })
            })
            .collect();
        let mut connected = true;
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => {}
                Err(StoreError::Unavailable(why)) if why.starts_with("no connection") => {
                    connected = false;
                }
                Err(other) => panic!("warming the store: {other}"),
            }
        }
        if connected {
            return;
        }
    }
}

/// A challenge request at 1,000,000 ms, blocking 30 s, a trigger limit of 3.
fn at_once(state: String, serial: &str) -> ChallengeRequest {
    request(&state, &[serial], 1_000_000, 30_000)
}

/// Parallel first logins, each with a token of its own to enroll: one token, one challenge;
/// the others find the token (and challenge it, as the engine does: that challenge stands).
pub async fn enroll_once(fixture: &dyn Fixture) {
    let results = in_parallel(fixture, 20, |i, store| async move {
        let serial = format!("LSSM{i:04}");
        let mut first = at_once(format!("state{i}"), &serial);
        first.enroll = Some(token(&serial));
        first.enroll.as_mut().unwrap().autoenrolled = true;
        let started = store.start_challenge(first).await.unwrap();
        if started != ChallengeStart::AlreadyEnrolled {
            return started;
        }
        let tokens = store.tokens_of_user("alice", "local").await.unwrap();
        assert_eq!(tokens.len(), 1);
        let again = at_once(format!("state{i}"), &tokens[0].serial);
        store.start_challenge(again).await.unwrap()
    })
    .await;
    let started: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, ChallengeStart::Started(_)))
        .collect();
    assert_eq!(started, [&ChallengeStart::Started(vec![0])], "{results:?}");
    let store = fixture.open().await;
    assert_eq!(store.list_tokens(None, None).await.unwrap().len(), 1);
}

/// Parallel logins of one token within its blocking timeout: one new challenge, the others
/// get that one back.
pub async fn one_challenge_within_blocking(fixture: &dyn Fixture) {
    fixture
        .open()
        .await
        .insert_token(token("LSSM1"))
        .await
        .unwrap();
    let results = in_parallel(fixture, 20, |i, store| async move {
        store
            .start_challenge(at_once(format!("state{i}"), "LSSM1"))
            .await
            .unwrap()
    })
    .await;
    let mut started = None;
    for result in &results {
        if let ChallengeStart::Started(counters) = result {
            assert!(started.is_none(), "a second challenge: {results:?}");
            started = Some(counters.clone());
        }
    }
    assert_eq!(started, Some(vec![0]));
    let states: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            ChallengeStart::Open(rows) => Some(rows[0].state.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(states.len(), 19);
    assert!(
        states.windows(2).all(|w| w[0] == w[1]),
        "one challenge: {states:?}"
    );
}

/// Parallel logins without a blocking timeout: exactly the trigger limit (3) start, each with
/// a counter of its own; the others are refused at the limit.
pub async fn trigger_limit_holds(fixture: &dyn Fixture) {
    fixture
        .open()
        .await
        .insert_token(token("LSSM1"))
        .await
        .unwrap();
    let results = in_parallel(fixture, 20, |i, store| async move {
        let mut unblocked = at_once(format!("state{i}"), "LSSM1");
        unblocked.targets[0].blocking_ms = 0;
        store.start_challenge(unblocked).await.unwrap()
    })
    .await;
    let mut counters: Vec<u64> = vec![];
    for result in &results {
        match result {
            ChallengeStart::Started(c) => counters.extend(c),
            ChallengeStart::Limited(n) => assert_eq!(*n, 3),
            other => panic!("unexpected {other:?}"),
        }
    }
    counters.sort_unstable();
    assert_eq!(counters, [0, 1, 2]);
}

/// Parallel answers with one right code: one closes the challenge, then in each round one
/// moves the counter; on a shared store only the winner's request is recorded.
pub async fn answer_once(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    store.insert_token(token("OATH0001")).await.unwrap();
    let started = store
        .start_challenge(at_once("s1".into(), "OATH0001"))
        .await
        .unwrap();
    assert_eq!(started, ChallengeStart::Started(vec![0]));
    store.mark_delivered("s1").await.unwrap();
    for round in 0..5u8 {
        let now_ms = 1_000_000 + i64::from(round);
        let won = in_parallel(fixture, 10, |i, store| async move {
            let mut digest = [round; 16];
            digest[0] = u8::try_from(i).unwrap();
            let by = Some(RequestMark {
                digest,
                now: UnixMs::from_ms(now_ms),
            });
            if round == 0 {
                let now = UnixMs::from_ms(now_ms);
                store
                    .close_challenge("s1", "OATH0001", now, by)
                    .await
                    .unwrap()
            } else {
                let used = u64::from(round) + 5;
                let now = Some(UnixMs::from_ms(now_ms));
                store
                    .consume_counter("OATH0001", used, now, by)
                    .await
                    .unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..won.len()).filter(|&i| won[i]).collect();
        assert_eq!(winners.len(), 1, "round {round}: {won:?}");
        for i in 0..10u8 {
            let mut digest = [round; 16];
            digest[0] = i;
            let found = store
                .retransmit_of(&digest, UnixMs::from_ms(now_ms))
                .await
                .unwrap();
            let recorded = fixture.shared() && usize::from(i) == winners[0];
            assert_eq!(found.is_some(), recorded, "round {round}, request {i}");
        }
    }
    assert_eq!(store.token("OATH0001").await.unwrap().unwrap().counter, 10);
}

/// Failures counted in parallel on two stores, from two origins, add up.
pub async fn backoff_counts_add_up(fixture: &dyn Fixture) {
    let forget = 3_600_000;
    let nodes = in_parallel(fixture, 60, |i, store| async move {
        let origin = if i % 3 == 0 { "st-b" } else { "st-a" };
        let now = 1_000_000 + i64::try_from(i).unwrap();
        store
            .record_login_failure("alice", "local", origin, UnixMs::from_ms(now), forget)
            .await;
        store
    })
    .await;
    for store in &nodes[..2] {
        store.checkpoint().await.unwrap();
    }
    let store = &nodes[0];
    assert_eq!(
        counts(store, "alice", "st-a").await,
        (Some((60, 1_000_059)), Some((40, 1_000_059)))
    );
    assert_eq!(
        counts(store, "alice", "st-b").await,
        (Some((60, 1_000_059)), Some((20, 1_000_057)))
    );
    assert!(nodes.iter().all(|s| !s.writes_failing()));
}
