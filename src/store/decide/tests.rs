//! The store's decisions on their own: every branch of [`decide_start`], the back-off count
//! and the grace window, with no database.

use super::*;
use crate::store::ChallengeTarget;

fn target(serial: &str, blocking_ms: i64) -> ChallengeTarget {
    ChallengeTarget {
        serial: serial.into(),
        validity_ms: 120_000,
        blocking_ms,
    }
}

/// A request at 1,000,000 ms for LSSM1 (blocking 30 s), 3 challenges an hour.
fn request() -> ChallengeRequest {
    ChallengeRequest {
        user: "alice".into(),
        realm: "local".into(),
        state: "new".into(),
        targets: vec![target("LSSM1", 30_000)],
        now: UnixMs::from_ms(1_000_000),
        trigger_limit: 3,
        trigger_window_ms: 3_600_000,
        enroll: None,
        request_digest: None,
        retransmit_since: UnixMs::from_ms(0),
    }
}

/// A token to enroll (only its presence matters here).
fn token() -> crate::store::Token {
    crate::store::Token {
        serial: "LSSM1".into(),
        kind: crate::store::TokenKind::Sms,
        user: "alice".into(),
        realm: "local".into(),
        seed: crate::secret::Secret::new(vec![1; 20]),
        counter: 0,
        digits: 6,
        pin_hash: None,
        phone: None,
        email: None,
        active: true,
        fail_count: 0,
        max_fail: 10,
        last_fail_at: None,
        description: String::new(),
        created_at: UnixMs::from_secs(0),
        owner_id: None,
        autoenrolled: true,
        last_used: None,
        pending: false,
        algorithm: crate::store::HashAlgorithm::Sha1,
        time_step: None,
        public_id: None,
    }
}

fn open(state: &str, serial: &str, created_at: i64, digest: Option<u8>) -> OpenRow {
    OpenRow {
        state: state.into(),
        serial: serial.into(),
        created_at: UnixMs::from_ms(created_at),
        request_digest: digest.map(|d| vec![d; 16]),
    }
}

/// Reads with no open row and `started` challenges in the window.
fn quiet(started: u32) -> StartReads {
    StartReads {
        has_token: Some(false),
        open: Some(vec![]),
        started: Some(started),
    }
}

#[test]
fn the_reads_are_asked_for_in_order_and_only_when_needed() {
    let mut request = request();
    let mut reads = StartReads::default();
    // Without a token to enroll, nobody asks whether the identity has one.
    assert_eq!(
        decide_start(&reads, &request),
        Start::Read(StartRead::OpenRows)
    );
    reads.open = Some(vec![]);
    assert_eq!(
        decide_start(&reads, &request),
        Start::Read(StartRead::StartedSince(UnixMs::from_ms(
            1_000_000 - 3_600_000
        )))
    );
    reads.started = Some(0);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);

    // Enrolling: whether it has a token comes first.
    request.enroll = Some(token());
    assert_eq!(
        decide_start(&StartReads::default(), &request),
        Start::Read(StartRead::HasToken)
    );
    assert_eq!(decide_start(&quiet(0), &request), Start::Allocate);
}

#[test]
fn an_identity_with_a_token_is_not_enrolled_again() {
    let mut request = request();
    request.enroll = Some(token());
    let reads = StartReads {
        has_token: Some(true),
        ..StartReads::default()
    };
    assert_eq!(decide_start(&reads, &request), Start::AlreadyEnrolled);
}

#[test]
fn a_challenge_within_its_targets_blocking_timeout_stands() {
    let request = request();
    let mut reads = quiet(0);
    // 29.999 s old: stands; exactly 30 s old: over.
    reads.open = Some(vec![open("old", "LSSM1", 1_000_000 - 29_999, None)]);
    assert_eq!(decide_start(&reads, &request), Start::Open("old"));
    reads.open = Some(vec![open("old", "LSSM1", 1_000_000 - 30_000, None)]);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);
    // Another token's challenge does not block this target.
    reads.open = Some(vec![open("other", "LSSM2", 1_000_000, None)]);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);
    // The newest standing row is the one returned (rows come newest first).
    reads.open = Some(vec![
        open("newer", "LSSM1", 999_000, None),
        open("older", "LSSM1", 998_000, None),
    ]);
    assert_eq!(decide_start(&reads, &request), Start::Open("newer"));
}

#[test]
fn a_blocking_timeout_of_zero_never_blocks() {
    let mut request = request();
    request.targets = vec![target("LSSM1", 0)];
    let mut reads = quiet(0);
    reads.open = Some(vec![open("same-ms", "LSSM1", 1_000_000, None)]);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);
}

#[test]
fn a_resent_request_gets_its_challenge_back_whatever_the_blocking_timeout() {
    let mut request = request();
    request.request_digest = Some([7; 16]);
    request.retransmit_since = UnixMs::from_ms(990_000);
    let mut reads = quiet(0);
    // Its own challenge is found before a newer one that blocks.
    reads.open = Some(vec![
        open("blocking", "LSSM1", 999_000, Some(1)),
        open("mine", "LSSM1", 995_000, Some(7)),
    ]);
    assert_eq!(decide_start(&reads, &request), Start::Open("mine"));
    // Without a blocking timeout only the digest can find it; before the retransmit window
    // it is another login's.
    request.targets = vec![target("LSSM1", 0)];
    reads.open = Some(vec![open("mine", "LSSM1", 990_000, Some(7))]);
    assert_eq!(decide_start(&reads, &request), Start::Open("mine"));
    reads.open = Some(vec![open("mine", "LSSM1", 989_999, Some(7))]);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);
    // Another request's digest is not this one's.
    reads.open = Some(vec![open("theirs", "LSSM1", 995_000, Some(8))]);
    assert_eq!(decide_start(&reads, &request), Start::Allocate);
}

#[test]
fn the_trigger_limit_refuses_at_the_limit_not_before() {
    let request = request();
    assert_eq!(decide_start(&quiet(2), &request), Start::Allocate);
    assert_eq!(decide_start(&quiet(3), &request), Start::Limited(3));
    assert_eq!(decide_start(&quiet(9), &request), Start::Limited(9));
}

#[test]
fn a_standing_challenge_is_returned_even_at_the_trigger_limit() {
    let request = request();
    let mut reads = quiet(3);
    reads.open = Some(vec![open("old", "LSSM1", 999_000, None)]);
    assert_eq!(decide_start(&reads, &request), Start::Open("old"));
}

#[test]
fn the_trigger_window_starts_no_earlier_than_time_itself() {
    let mut request = request();
    request.now = UnixMs::from_ms(i64::MIN + 5);
    let reads = StartReads {
        open: Some(vec![]),
        ..StartReads::default()
    };
    assert_eq!(
        decide_start(&reads, &request),
        Start::Read(StartRead::StartedSince(UnixMs::from_ms(i64::MIN)))
    );
}

fn backoff(failures: u32, last_failure: i64) -> Option<Backoff> {
    Some(Backoff {
        failures,
        last_failure: UnixMs::from_ms(last_failure),
    })
}

#[test]
fn a_failure_counts_one_more_until_the_earlier_ones_are_forgotten() {
    let forget = 1000;
    let count = |row, now| {
        let b = failures_after(row, now, forget);
        (b.failures, b.last_failure.as_ms())
    };
    assert_eq!(count(None, UnixMs::from_ms(5000)), (1, 5000));
    assert_eq!(count(backoff(2, 5000), UnixMs::from_ms(5999)), (3, 5999));
    // Exactly `forget_ms` later: forgotten, counting starts over.
    assert_eq!(count(backoff(2, 5000), UnixMs::from_ms(6000)), (1, 6000));
    // A failure queued on another node arriving late counts, and the last time stays.
    assert_eq!(count(backoff(2, 5000), UnixMs::from_ms(4000)), (3, 5000));
    assert_eq!(
        count(backoff(u32::MAX, 5000), UnixMs::from_ms(5001)),
        (u32::MAX, 5001)
    );
    let ms = UnixMs::from_ms;
    assert!(forgotten(ms(5000), ms(6000), forget) && !forgotten(ms(5000), ms(5999), forget));
    assert!(!forgotten(ms(i64::MAX), ms(i64::MIN), forget));
}

#[test]
fn a_grace_lasts_until_its_end_not_at_it() {
    assert!(grace_lasts(
        Some(UnixMs::from_ms(2000)),
        UnixMs::from_ms(1999)
    ));
    assert!(!grace_lasts(
        Some(UnixMs::from_ms(2000)),
        UnixMs::from_ms(2000)
    ));
    assert!(!grace_lasts(None, UnixMs::from_ms(0)));
}
