//! The back-off counts on PostgreSQL: a batch of failed first factors from the write queue
//! (`queued.rs`) folded per row and written in two statements, and an identity's count from
//! one origin cleared.

use deadpool_postgres::{GenericClient, Pool};

use super::super::StoreError;
use super::super::decide::forgotten;
use super::execute;
use crate::time::UnixMs;

/// A batch's back-off counts, first step: every row counted has a row (a new one counts from
/// nothing: no failures, the last one long ago).
const BACKOFF_ROWS: &str = "INSERT INTO login_failures (username, realm, origin, failures, last_failure_ms) \
     SELECT u, r, o, 0, 0 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(u, r, o) \
     ON CONFLICT (username, realm, origin) DO NOTHING";

/// Second step: each identity's failures of the batch ([`Folded`]) added in one update, which
/// locks the row, so a count another node commits meanwhile is added to, not overwritten. Per
/// failure it is `decide::failures_after` (a failure `forget_ms` after the last starts over).
const BACKOFF_COUNT: &str = "UPDATE login_failures AS f SET \
       failures = CASE WHEN t.restart OR t.first_ms - f.last_failure_ms >= t.forget_ms \
                       THEN t.added ELSE f.failures + t.added END, \
       last_failure_ms = GREATEST(f.last_failure_ms, t.last_ms) \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::bigint[], \
                 $7::bool[], $8::bigint[]) AS t(u, r, o, first_ms, added, last_ms, restart, forget_ms) \
     WHERE f.username = t.u AND f.realm = t.r AND f.origin = t.o";

/// One failed first factor of an identity (see [`super::super::Store::record_login_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) user: String,
    pub(super) realm: String,
    /// Where it came from (never empty: the empty origin is the identity's own row).
    pub(super) origin: String,
    pub(super) now: UnixMs,
    pub(super) forget_ms: i64,
}

pub(super) async fn clear(
    pool: &Pool,
    user: &str,
    realm: &str,
    origin: &str,
) -> Result<(), StoreError> {
    let c = pool.get().await?;
    execute(
        &c,
        "DELETE FROM login_failures WHERE username = $1 AND realm = $2 AND origin = $3",
        &[&user, &realm, &origin],
    )
    .await?;
    Ok(())
}

pub(super) async fn write_failures(
    c: &impl GenericClient,
    folded: &[Folded],
) -> Result<(), StoreError> {
    let users: Vec<&str> = folded.iter().map(|f| f.user.as_str()).collect();
    let realms: Vec<&str> = folded.iter().map(|f| f.realm.as_str()).collect();
    let origins: Vec<&str> = folded.iter().map(|f| f.origin.as_str()).collect();
    execute(c, BACKOFF_ROWS, &[&users, &realms, &origins]).await?;
    let firsts: Vec<i64> = folded.iter().map(|f| f.first_ms).collect();
    let added: Vec<i32> = folded
        .iter()
        .map(|f| i32::try_from(f.added).unwrap_or(i32::MAX))
        .collect();
    let lasts: Vec<i64> = folded.iter().map(|f| f.last_ms).collect();
    let restarts: Vec<bool> = folded.iter().map(|f| f.restart).collect();
    let forgets: Vec<i64> = folded.iter().map(|f| f.forget_ms).collect();
    execute(
        c,
        BACKOFF_COUNT,
        &[
            &users, &realms, &origins, &firsts, &added, &lasts, &restarts, &forgets,
        ],
    )
    .await?;
    Ok(())
}

/// One identity's failures of a batch, folded into one change of its row: counted one by one
/// (a failure `forget_ms` after the one before starts over at one), they add `added` to the
/// row's count — or, with `restart`, replace it, as a gap inside the batch started over — and
/// the first of them restarts the row's count if it came `forget_ms` after the row's last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Folded {
    pub(super) user: String,
    pub(super) realm: String,
    /// The row's origin; empty: the identity's count over all origins.
    pub(super) origin: String,
    pub(super) first_ms: i64,
    pub(super) added: u32,
    pub(super) last_ms: i64,
    pub(super) restart: bool,
    pub(super) forget_ms: i64,
}

/// Folds a batch's failures per row (in the order rows first appear): each failure counts
/// on its origin's row and on the identity's row over all origins (the empty origin).
pub(super) fn fold(failures: &[Failure]) -> Vec<Folded> {
    let mut order: Vec<(&str, &str, &str)> = vec![];
    let mut groups: std::collections::HashMap<(&str, &str, &str), Vec<&Failure>> =
        Default::default();
    for f in failures {
        for origin in ["", f.origin.as_str()] {
            let key = (f.user.as_str(), f.realm.as_str(), origin);
            groups
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    vec![]
                })
                .push(f);
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let mut group = groups.remove(&key)?;
            group.sort_by_key(|f| f.now);
            let first = group.first()?;
            let last = group.last()?;
            // The last gap inside the batch long enough to start over, if any.
            let restart_at = (1..group.len())
                .rev()
                .find(|&i| forgotten(group[i - 1].now, group[i].now, group[i].forget_ms));
            let from = restart_at.unwrap_or(0);
            Some(Folded {
                user: key.0.to_string(),
                realm: key.1.to_string(),
                origin: key.2.to_string(),
                first_ms: first.now.as_ms(),
                added: u32::try_from(group.len() - from).unwrap_or(u32::MAX),
                last_ms: last.now.as_ms(),
                restart: restart_at.is_some(),
                forget_ms: last.forget_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(user: &str, origin: &str, now_ms: i64) -> Failure {
        Failure {
            user: user.into(),
            realm: "local".into(),
            origin: origin.into(),
            now: UnixMs::from_ms(now_ms),
            forget_ms: 100,
        }
    }

    /// Each failure counts on its origin's row and on the identity's (the empty origin).
    #[test]
    fn a_batch_folds_into_one_change_per_row() {
        let folded = fold(&[
            failure("alice", "st-1", 10),
            failure("bob", "st-1", 5),
            failure("alice", "st-2", 30),
            failure("alice", "st-1", 20),
        ]);
        let rows: Vec<(&str, &str, i64, u32, i64)> = folded
            .iter()
            .map(|f| {
                (
                    f.user.as_str(),
                    f.origin.as_str(),
                    f.first_ms,
                    f.added,
                    f.last_ms,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("alice", "", 10, 3, 30),
                ("alice", "st-1", 10, 2, 20),
                ("bob", "", 5, 1, 5),
                ("bob", "st-1", 5, 1, 5),
                ("alice", "st-2", 30, 1, 30),
            ]
        );
        assert!(folded.iter().all(|f| !f.restart));
    }

    #[test]
    fn a_gap_inside_the_batch_starts_the_count_over() {
        // 10, 20, then 200 (180 ms later, past the 100 ms): counted one by one, 200 starts
        // over at one, and 210 makes two.
        let folded = fold(&[
            failure("alice", "st-1", 10),
            failure("alice", "st-1", 20),
            failure("alice", "st-1", 200),
            failure("alice", "st-1", 210),
        ]);
        assert_eq!(folded.len(), 2);
        for row in &folded {
            assert_eq!((row.added, row.restart, row.last_ms), (2, true, 210));
        }
    }
}
