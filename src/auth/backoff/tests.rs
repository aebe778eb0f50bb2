//! The back-off's arithmetic and keying, with numbers.

use super::*;

fn schedule() -> BackoffSchedule {
    BackoffSchedule::from_settings(&AuthSettings::default())
}

fn row(failures: u32, last_failure: i64) -> Option<Backoff> {
    Some(Backoff {
        failures,
        last_failure: UnixMs::from_ms(last_failure),
    })
}

/// Issue 12: 10 failures free, then 1 s doubling up to 5 minutes, forgotten after an hour;
/// issue 23: the identity's ceiling at 100 failures from all origins, 2 s each.
#[test]
fn issue_12_the_schedule_doubles_up_to_its_maximum() {
    let s = schedule();
    assert_eq!(
        (s.after, s.initial_ms, s.max_ms, s.forget_ms),
        (10, 1_000, 300_000, 3_600_000)
    );
    assert_eq!((s.identity_after, s.identity_window_ms), (100, 2_000));
    let windows: Vec<i64> = (8..=20).map(|f| s.window_ms(f)).collect();
    assert_eq!(
        windows,
        [
            0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
            300_000
        ]
    );
    assert_eq!(s.window_ms(u32::MAX), 300_000, "no overflow");
}

#[test]
fn issue_12_refusals_follow_the_clock() {
    let s = schedule();
    let rows = Backoffs {
        identity: row(12, 100_000),
        origin: row(12, 100_000),
    };
    let refused = |now| s.refusing(rows, now);
    assert_eq!(
        refused(UnixMs::from_ms(100_000)),
        Some(Refusal::Origin {
            failures: 12,
            left_ms: 4_000
        })
    );
    assert_eq!(
        refused(UnixMs::from_ms(103_999)),
        Some(Refusal::Origin {
            failures: 12,
            left_ms: 1
        })
    );
    assert_eq!(
        refused(UnixMs::from_ms(104_000)),
        None,
        "the window has passed"
    );
    let below = Backoffs {
        identity: row(9, 100_000),
        origin: row(9, 100_000),
    };
    assert_eq!(s.refusing(below, UnixMs::from_ms(100_000)), None);
    assert_eq!(
        s.fresh(rows.origin, UnixMs::from_ms(100_000 + 3_600_000)),
        None,
        "forgotten"
    );
}

/// Issue 23: an origin that has not failed is not refused, however often the identity failed
/// elsewhere — below the ceiling.
#[test]
fn issue_23_another_origin_is_not_refused() {
    let s = schedule();
    let attacked = Backoffs {
        identity: row(99, 100_000),
        origin: row(99, 100_000),
    };
    assert!(matches!(
        s.refusing(attacked, UnixMs::from_ms(100_000)),
        Some(Refusal::Origin { .. })
    ));
    let elsewhere = Backoffs {
        identity: row(99, 100_000),
        origin: None,
    };
    assert_eq!(s.refusing(elsewhere, UnixMs::from_ms(100_000)), None);
}

/// Issue 23: past the ceiling every origin waits a short, fixed window after the identity's
/// last failure — never longer, however many failures.
#[test]
fn issue_23_the_ceiling_only_slows() {
    let s = schedule();
    for failures in [100, 1_000, u32::MAX] {
        let rows = Backoffs {
            identity: row(failures, 100_000),
            origin: None,
        };
        assert_eq!(
            s.refusing(rows, UnixMs::from_ms(100_000)),
            Some(Refusal::Identity {
                failures,
                left_ms: 2_000
            })
        );
        assert_eq!(
            s.refusing(rows, UnixMs::from_ms(102_000)),
            None,
            "{failures}: ends by itself"
        );
        assert!(s.over_ceiling(rows.identity, UnixMs::from_ms(102_000)));
        assert!(
            !s.over_ceiling(rows.identity, UnixMs::from_ms(100_000 + 3_600_000)),
            "forgotten"
        );
    }
    // The origin's own back-off comes first where both refuse.
    let both = Backoffs {
        identity: row(200, 100_000),
        origin: row(10, 100_000),
    };
    assert!(matches!(
        s.refusing(both, UnixMs::from_ms(100_500)),
        Some(Refusal::Origin { left_ms: 500, .. })
    ));
    // The window is a few seconds at most, whatever the configuration says.
    let long = BackoffSchedule::from_settings(&AuthSettings {
        backoff_identity_window: 3_600,
        ..AuthSettings::default()
    });
    assert_eq!(long.identity_window_ms, 10_000);
    let off = BackoffSchedule::from_settings(&AuthSettings {
        backoff_identity_after: 0,
        ..AuthSettings::default()
    });
    assert_eq!(off.identity_window(u32::MAX), 0);
}

/// Issue 23 (item 9): `backoff_after = 0` is no back-off: nothing refuses, whatever a row says.
#[test]
fn issue_23_backoff_after_zero_refuses_nothing() {
    let s = BackoffSchedule::from_settings(&AuthSettings {
        backoff_after: 0,
        ..AuthSettings::default()
    });
    assert!(!s.is_on());
    let rows = Backoffs {
        identity: row(1_000, 100_000),
        origin: row(1_000, 100_000),
    };
    assert_eq!(s.refusing(rows, UnixMs::from_ms(100_000)), None);
    assert!(!s.over_ceiling(rows.identity, UnixMs::from_ms(100_000)));
}

/// Issue 23: a name no directory knows is counted per origin and over all origins, exactly
/// like a known identity in the store; a right password clears its origin only.
#[test]
fn issue_23_unknown_names_are_keyed_by_origin() {
    let s = schedule();
    let names = UnknownNames::default();
    for i in 0..12 {
        names.record_failure(&s, "mallory@local", "10.0.0.66", UnixMs::from_ms(1_000 + i));
    }
    names.record_failure(&s, "mallory@local", "10.0.0.7", UnixMs::from_ms(1_011));
    let attacked = names.get("mallory@local", "10.0.0.66");
    assert_eq!(attacked.origin.map(|b| b.failures), Some(12));
    assert_eq!(attacked.identity.map(|b| b.failures), Some(13));
    assert!(matches!(
        s.refusing(attacked, UnixMs::from_ms(1_011)),
        Some(Refusal::Origin { left_ms: 4_000, .. })
    ));
    let other = names.get("mallory@local", "10.0.0.7");
    assert_eq!(other.origin.map(|b| b.failures), Some(1));
    assert_eq!(s.refusing(other, UnixMs::from_ms(1_011)), None);
    assert_eq!(
        names.get("mallory@local", "10.0.0.8").origin,
        None,
        "a third station has no row"
    );
    names.clear("mallory@local", "10.0.0.66");
    let cleared = names.get("mallory@local", "10.0.0.66");
    assert_eq!(cleared.origin, None);
    assert_eq!(cleared.identity.map(|b| b.failures), Some(13), "kept");
    // Failures after the forget time start over.
    names.record_failure(
        &s,
        "mallory@local",
        "10.0.0.7",
        UnixMs::from_ms(1_011 + 3_600_000),
    );
    let later = names.get("mallory@local", "10.0.0.7");
    assert_eq!(later.origin.map(|b| b.failures), Some(1));
    assert_eq!(later.identity.map(|b| b.failures), Some(1));
}

/// Issue 23: a flood of random stations (and names) grows no table past its capacity.
#[test]
fn issue_23_random_stations_stay_bounded() {
    let s = schedule();
    let names = UnknownNames::default();
    for i in 0..(TABLE_CAPACITY as i64 + 10) {
        names.record_failure(
            &s,
            "mallory@local",
            &format!("station{i}"),
            UnixMs::from_ms(2_000 + i),
        );
        names.record_failure(
            &s,
            &format!("n{i}@local"),
            "10.0.0.1",
            UnixMs::from_ms(2_000 + i),
        );
    }
    assert!(
        names.len() <= 2 * TABLE_CAPACITY,
        "{} rows remembered",
        names.len()
    );
    let last = names.get(
        "mallory@local",
        &format!("station{}", TABLE_CAPACITY as i64 + 9),
    );
    assert_eq!(
        last.origin.map(|b| b.failures),
        Some(1),
        "the newest is kept"
    );
}

#[test]
fn issue_23_identities_under_attack_are_counted_until_forgotten() {
    let s = schedule();
    let seen = UnderAttack::default();
    seen.note(&s, "alice@local", row(100, 1_000), UnixMs::from_ms(1_000));
    seen.note(&s, "bob@local", row(99, 1_000), UnixMs::from_ms(1_000));
    seen.note(&s, "carol@local", row(150, 2_000), UnixMs::from_ms(2_000));
    assert_eq!(seen.count(&s, UnixMs::from_ms(2_000)), 2);
    assert_eq!(
        seen.count(&s, UnixMs::from_ms(1_000 + 3_600_000)),
        1,
        "alice's are forgotten"
    );
    assert_eq!(seen.count(&s, UnixMs::from_ms(2_000 + 3_600_000)), 0);
}
