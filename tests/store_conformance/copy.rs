//! `tessera store copy` both ways between the backends: from the other backend into this one
//! and back into a new store of the other, every row kept and every seed still opening.

use tessera::secret::Secret;
use tessera::store::{AuditEntry, ChallengeStart, Dump, RequestMark};
use tessera::time::UnixMs;

use crate::fixtures::Fixture;
use crate::{SEED, request, token};

/// What two dumps must agree on: the rows, and every seed as sealed (a copy moves seeds
/// sealed, never opening them).
fn summary(dump: &Dump) -> String {
    let tokens: Vec<_> = dump
        .tokens
        .iter()
        .map(|t| {
            let k = &t.token;
            (
                k.serial.clone(),
                k.kind,
                k.counter,
                k.autoenrolled,
                k.fail_count,
                k.last_used,
                (k.active, k.pending),
                t.sealed.clone(),
            )
        })
        .collect();
    let audit: Vec<_> = dump
        .audit
        .iter()
        .map(|a: &AuditEntry| (a.time, a.user.clone(), a.serial.clone(), a.reason.clone()))
        .collect();
    format!(
        "{tokens:?}\n{:?}\n{:?}\n{:?}\n{audit:?}",
        dump.challenges, dump.backoff, dump.grace
    )
}

/// A store in use, on the other backend: two tokens (one autoenrolled and answered, one pending), a
/// pending challenge, back-off rows, a grace and audit rows.
async fn in_use(fixture: &dyn Fixture) -> Dump {
    let source = fixture.other().await;
    let mut sms = token("LSSM0001");
    sms.autoenrolled = true;
    let mut hotp = token("OATH0001");
    hotp.kind = tessera::store::TokenKind::Hotp;
    // Waiting for its first code: the state moves with the row.
    (hotp.active, hotp.pending) = (false, true);
    source.insert_tokens(vec![sms, hotp]).await.unwrap();
    let started = source
        .start_challenge(request("s1", &["LSSM0001"], 1_000, 0))
        .await
        .unwrap();
    assert_eq!(started, ChallengeStart::Started(vec![0]));
    source.mark_delivered("s1").await.unwrap();
    let by = RequestMark {
        digest: [1; 16],
        now: UnixMs::from_ms(2_000),
    };
    assert!(
        source
            .close_challenge("s1", "LSSM0001", by.now, Some(by))
            .await
            .unwrap()
    );
    source
        .start_challenge(request("s2", &["LSSM0001"], 3_000, 0))
        .await
        .unwrap();
    assert!(
        source
            .consume_counter("OATH0001", 4, Some(UnixMs::from_secs(70)), None)
            .await
            .unwrap()
    );
    for (origin, now_ms) in [("st-1", 1_000), ("st-1", 2_000), ("st-2", 3_000)] {
        source
            .record_login_failure("alice", "local", origin, UnixMs::from_ms(now_ms), 3_600_000)
            .await;
    }
    source
        .grant_grace(
            "alice",
            "local",
            "nas-1",
            "00-11",
            UnixMs::from_ms(9_000_000),
        )
        .await
        .unwrap();
    source
        .audit_committed(AuditEntry {
            time: UnixMs::from_secs(5),
            user: "alice".into(),
            serial: Some("LSSM0001".into()),
            reason: "accepted".into(),
            ..AuditEntry::default()
        })
        .await
        .unwrap();
    source.checkpoint().await.unwrap();
    let dump = source.export().await.unwrap();
    assert_eq!(
        (
            dump.tokens.len(),
            dump.challenges.len(),
            dump.backoff.len(),
            dump.grace.len(),
            dump.audit.len()
        ),
        (2, 2, 3, 1, 1)
    );
    dump
}

/// The other backend to this one, and back to a new store of the other: the same rows; a
/// target that holds anything refuses a copy unless told to replace it.
pub async fn both_ways(fixture: &dyn Fixture) {
    let dump = in_use(fixture).await;
    let expected = summary(&dump);

    let target = fixture.open().await;
    target.import(dump.clone(), false).await.unwrap();
    let here = target.export().await.unwrap();
    assert_eq!(summary(&here), expected);
    let t = target.token("OATH0001").await.unwrap().unwrap();
    assert_eq!(
        (t.seed, t.counter, t.last_used),
        (Secret::new(SEED.to_vec()), 5, Some(UnixMs::from_secs(70)))
    );
    let state = target
        .user_state("alice", "local", Some("st-1"))
        .await
        .unwrap();
    let origin = state
        .backoff
        .origin
        .map(|b| (b.failures, b.last_failure.as_ms()));
    assert_eq!(origin, Some((2, 2_000)));
    let grace = target.grace_until("alice", "local", "nas-1", "00-11").await;
    assert_eq!(grace.unwrap(), Some(UnixMs::from_ms(9_000_000)));

    let refused = target.import(dump.clone(), false).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("2 tokens") && text.contains("3 back-off rows"),
        "{text}"
    );
    target.import(dump, true).await.unwrap();
    assert_eq!(summary(&target.export().await.unwrap()), expected);

    let back = fixture.other().await;
    back.import(here, false).await.unwrap();
    assert_eq!(summary(&back.export().await.unwrap()), expected);
}
