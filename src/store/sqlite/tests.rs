//! The SQLite store's own tests: schema versions, key fingerprints, the writer thread (group
//! commit, writes nobody waits for, reads in the caller's task) and the hot statements' plans.
//! What every backend must do is in the conformance suite (`tests/store_conformance/`).
use rusqlite::params;

use super::super::{
    AuditEntry, Backoff, ChallengeRequest, ChallengeStart, Store, Token, TokenKind,
};
use super::rows::query_tokens;
use super::schema::{SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, migrate};
use super::*;
use crate::secret::Secret;
use crate::time::UnixMs;

fn token(serial: &str) -> Token {
    Token {
        serial: serial.into(),
        kind: TokenKind::Sms,
        user: "alice".into(),
        realm: "local".into(),
        seed: Secret::from("12345678901234567890"),
        counter: 0,
        digits: 6,
        pin_hash: None,
        phone: Some("+491701234".into()),
        email: None,
        active: true,
        fail_count: 0,
        max_fail: 10,
        last_fail_at: None,
        description: String::new(),
        created_at: UnixMs::from_secs(1),
        owner_id: None,
        autoenrolled: false,
        last_used: None,
        pending: false,
        algorithm: crate::store::HashAlgorithm::Sha1,
        time_step: None,
        public_id: None,
    }
}

fn open_store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("t.db"), SealKey::from_bytes(&[1; 32])).unwrap()
}

fn request(state: &str, serials: &[&str], now_ms: i64, blocking_ms: i64) -> ChallengeRequest {
    ChallengeRequest {
        user: "alice".into(),
        realm: "local".into(),
        state: state.into(),
        targets: serials
            .iter()
            .map(|s| super::super::ChallengeTarget {
                serial: s.to_string(),
                validity_ms: 120_000,
                blocking_ms,
            })
            .collect(),
        now: UnixMs::from_ms(now_ms),
        trigger_limit: 3,
        trigger_window_ms: 600_000,
        request_digest: None,
        retransmit_since: UnixMs::from_ms(now_ms),
        enroll: None,
    }
}

#[tokio::test]
async fn the_store_refuses_a_key_other_than_the_one_that_sealed_its_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let a = || SealKey::from_bytes(&[1; 32]);
    let b = || SealKey::from_bytes(&[2; 32]);
    // Nothing sealed yet: any key opens it.
    drop(SqliteStore::open(&path, b()).unwrap());
    let store = SqliteStore::open(&path, a()).unwrap();
    store.insert_token(token("LSSM1")).await.unwrap();
    drop(store);
    assert!(matches!(
        SqliteStore::open(&path, b()),
        Err(StoreError::KeyMismatch { .. })
    ));
    // A store from before fingerprints: the key is checked on a seed, then recorded.
    let conn = Connection::open(&path).unwrap();
    conn.execute("DELETE FROM meta", []).unwrap();
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path, b()),
        Err(StoreError::KeyMismatch { .. })
    ));
    drop(SqliteStore::open(&path, a()).unwrap());
    let conn = Connection::open(&path).unwrap();
    let recorded: String = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'key_fingerprint'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, a().fingerprint());
}

/// Issue 23: a database of schema 5 keeps its back-off counts as the identities' counts over
/// all origins.
#[tokio::test]
async fn issue_23_schema_6_keeps_the_counts_of_schema_5() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL").unwrap();
    for sql in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5] {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(
        "PRAGMA user_version = 5; \
         INSERT INTO login_failures (user, realm, failures, last_failure_ms) \
         VALUES ('alice', 'local', 7, 9000)",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    drop(conn);
    let store = open_store(&dir);
    let backoff = store
        .user_state("alice", "local", Some("st-1"))
        .await
        .unwrap()
        .backoff;
    assert_eq!(
        backoff.identity,
        Some(Backoff {
            failures: 7,
            last_failure: UnixMs::from_ms(9000)
        })
    );
    assert_eq!(backoff.origin, None);
}

/// Issue 23: a back-off failure that cannot be written (the database is full) is known, until
/// a later write is committed.
#[tokio::test]
async fn issue_23_a_failure_that_cannot_be_written_is_known_until_a_write_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    store.insert_token(token("LSSM1")).await.unwrap();
    assert!(!store.writes_failing());
    // No page more than the file has: rows that need one fail with SQLITE_FULL.
    store
        .read(|conn, _| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .unwrap();
    let origin = "o".repeat(200);
    let mut round = 0;
    while !store.writes_failing() {
        round += 1;
        assert!(round < 1_000, "no write failed");
        store
            .record_login_failure(
                &format!("user{round}"),
                "local",
                &origin,
                UnixMs::from_ms(1_000),
                60_000,
            )
            .await;
        // The next read waits for the failure queued before it.
        store.user_state("alice", "local", Some("x")).await.unwrap();
    }
    // Reads alone change nothing; a committed write clears it.
    store.user_state("alice", "local", Some("x")).await.unwrap();
    assert!(store.writes_failing());
    store
        .read(|conn, _| {
            conn.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(!store.writes_failing());
}

/// A database written by a newer tessera is refused, not misread.
#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(open_connection(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let error = open_connection(&path).err().unwrap().to_string();
    assert!(error.contains("schema version 99"), "{error}");
}

/// The hot statements are parsed once: running them again with new values must not make
/// SQLite re-prepare them (it did, on every call, before the planner was pinned).
#[test]
fn hot_statements_are_not_reprepared() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("t.db")).unwrap();
    let key = SealKey::from_bytes(&[1; 32]);
    for n in 0..3 {
        insert_token_row(&conn, &key, &token(&format!("OATH{n}")), false).unwrap();
    }
    for n in 0..3_i64 {
        let user = format!("user{n}");
        query_tokens(&conn, &key, SELECT_TOKENS_OF_USER, &[&user, &"local"]).unwrap();
        query_tokens(&conn, &key, SELECT_TOKEN, &[&format!("OATH{n}")]).unwrap();
        let used_at = Some(1_000 + n);
        execute_cached(
            &conn,
            CONSUME_COUNTER,
            params![format!("OATH{n}"), n, used_at],
        )
        .unwrap();
    }
    for sql in [SELECT_TOKENS_OF_USER, SELECT_TOKEN, CONSUME_COUNTER] {
        let statement = conn.prepare_cached(sql).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

/// A write nobody waits for (an audit row) waits for a batch to ride with, but not for ever:
/// with no other traffic it is on disk, for another connection to read, within moments.
/// A challenge is marked delivered just before its Access-Challenge leaves: the mark must be
/// committed by then, or a crash right after loses a challenge the user was told about (their
/// code refused after a restart). Another connection, reading the moment the call returns,
/// sees it every time.
#[tokio::test]
async fn a_challenge_marked_delivered_is_committed_when_the_call_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    store.insert_token(token("LSSM1")).await.unwrap();
    let other = Connection::open(dir.path().join("t.db")).unwrap();
    for round in 0..20 {
        let state = format!("s{round}");
        let mut start = request(&state, &["LSSM1"], 100_000 + round, 0);
        start.trigger_limit = 100;
        assert!(matches!(
            store.start_challenge(start).await.unwrap(),
            ChallengeStart::Started(_)
        ));
        store.mark_delivered(&state).await.unwrap();
        let delivered: i64 = other
            .query_row(
                "SELECT delivered FROM challenges WHERE state = ?1",
                [&state],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            delivered, 1,
            "round {round}: the mark was not committed yet"
        );
    }
}

#[tokio::test]
async fn a_detached_write_is_committed_without_other_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    store
        .audit(AuditEntry {
            time: UnixMs::from_secs(1),
            client: "nas".into(),
            user: "alice".into(),
            realm: "local".into(),
            serial: None,
            action: "authenticate".into(),
            result: "accept".into(),
            reason: "held".into(),
        })
        .await;
    let other = Connection::open(dir.path().join("t.db")).unwrap();
    let count = || -> i64 {
        other
            .query_row(
                "SELECT count(*) FROM audit WHERE reason = 'held'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(count(), 1, "the held audit row was never committed");
}

/// A read right after a queued back-off failure sees it, even when the connection is idle and
/// the read could run at once: read straight away (the writer may not have taken the failure
/// yet) and after a millisecond (it has taken it and holds it for the next batch).
#[tokio::test]
async fn a_read_sees_the_back_off_failure_queued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir);
    for round in 1..=50 {
        store
            .record_login_failure("alice", "local", "st-1", UnixMs::from_ms(1_000), 60_000)
            .await;
        if round % 2 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let state = store
            .user_state("alice", "local", Some("st-1"))
            .await
            .unwrap();
        assert_eq!(state.backoff.origin.map(|b| b.failures), Some(round));
    }
}

/// A read that panics in the request's task, in the middle of its transaction, leaves a store
/// that still writes and reads.
#[tokio::test]
async fn a_panic_inside_a_read_leaves_the_store_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open_store(&dir));
    let panicking = store.clone();
    let outcome = tokio::spawn(async move {
        panicking
            .read(|_, _| -> Result<(), StoreError> { panic!("a bug in a read") })
            .await
    })
    .await;
    assert!(outcome.is_err(), "the read was expected to panic");
    store.insert_token(token("S1")).await.unwrap();
    let tokens = store.tokens_of_user("alice", "local").await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(store.consume_counter("S1", 0, None, None).await.unwrap());
}
