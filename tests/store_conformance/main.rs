//! The store conformance suite (issue 27): one set of tests written against `dyn Store`, run on
//! every backend — SQLite in a temporary directory, PostgreSQL on one cluster the whole binary
//! shares (a database of its own per test). `cargo test --test store_conformance` runs it
//! (CI: `scripts/test.sh`, `--all-targets`); `-- sqlite::` or `-- postgres::` one backend.
//!
//! A backend is one [`fixtures::Fixture`]; a case is an `async fn(&dyn Fixture)` in one of the
//! modules below, listed once in [`conformance!`] at the bottom, which makes a test of it for
//! each backend. Two stores opened on one fixture are two nodes on one PostgreSQL database, or
//! two processes on one SQLite file: the races run across them.
//!
//! Every method of the `Store` trait and the case(s) covering it. `every_method_is_covered`
//! fails when a method of the trait is missing here, so a new method comes with its case.
//! (`checkpoint` also flushes the writes nobody waits for before a case reads them.)
//!
//! | method                    | cases                                                   |
//! |---------------------------|---------------------------------------------------------|
//! | `tokens_of_user`          | `tokens::token_life_cycle`, `races::enroll_once`        |
//! | `token`                   | `tokens::token_life_cycle`                              |
//! | `list_tokens`             | `tokens::token_listing`                                 |
//! | `insert_token`            | `tokens::token_life_cycle`, `challenges::start_decides` |
//! | `insert_tokens`           | `tokens::token_listing`                                 |
//! | `replace_tokens`          | `hardware::replace_all_or_nothing`                      |
//! | `delete_token`            | `tokens::token_owner_and_deletion`                      |
//! | `set_active`              | `tokens::token_life_cycle`, `tokens::pending_confirmation` |
//! | `confirm_token`           | `tokens::pending_confirmation`                          |
//! | `set_pin_hash`            | `tokens::token_life_cycle`                              |
//! | `set_description`         | `tokens::token_description`                             |
//! | `user_state`              | `backoff::counts_per_origin_and_identity`               |
//! | `start_challenge`         | `challenges::*`, `races::*`                             |
//! | `mark_delivered`          | `challenges::challenge_life_cycle`                      |
//! | `delete_challenge`        | `challenges::challenge_life_cycle`                      |
//! | `challenge`               | `challenges::challenge_life_cycle`                      |
//! | `open_challenges_of_user` | `challenges::challenge_life_cycle`                      |
//! | `close_challenge`         | `challenges::challenge_answers`, `races::answer_once`   |
//! | `consume_counter`         | `challenges::challenge_answers`, `races::answer_once`, `tokens::last_use` |
//! | `retransmit_of`           | `challenges::retransmits`, `races::answer_once`         |
//! | `user_state_of_request`   | `challenges::retransmits`                               |
//! | `challenge_of_request`    | `challenges::retransmits`                               |
//! | `record_failure`          | `tokens::token_life_cycle`                              |
//! | `record_login_failure`    | `backoff::*`, `races::backoff_counts_add_up`            |
//! | `clear_login_failures`    | `backoff::counts_per_origin_and_identity`               |
//! | `backoff_rows`            | `backoff::rows_by_origin`                               |
//! | `writes_failing`          | `backoff::counts_per_origin_and_identity`               |
//! | `purge_login_failures`    | `backoff::counts_are_forgotten`                         |
//! | `reset_failures`          | `tokens::token_life_cycle`                              |
//! | `grant_grace`             | `backoff::grace_window`                                 |
//! | `grace_until`             | `backoff::grace_window`                                 |
//! | `revoke_grace`            | `backoff::grace_window`                                 |
//! | `end_grace`               | `backoff::grace_window`                                 |
//! | `autoenrolled_with_pin`   | `tokens::token_listing`                                 |
//! | `assign_token`            | `hardware::assign_and_take_back`                        |
//! | `set_token_owner`         | `tokens::token_owner_and_deletion`                      |
//! | `set_counter`             | `tokens::token_life_cycle`                              |
//! | `audit`                   | `backoff::audit_trail`                                  |
//! | `audit_committed`         | `backoff::audit_trail`                                  |
//! | `purge_audit`             | `backoff::audit_trail`                                  |
//! | `audit_rows`              | `backoff::audit_trail`                                  |
//! | `audit_query`             | `backoff::audit_filters`                                |
//! | `purge_challenges`        | `challenges::challenge_purge`, `backoff::grace_window`  |
//! | `record_accounting`       | `accounting::*`                                         |
//! | `close_nas_sessions`      | `accounting::nas_restart_closes_its_sessions`           |
//! | `sessions`                | `accounting::*`, `accounting::sessions_of_an_identity`  |
//! | `open_sessions`           | `accounting::session_life_cycle`, `accounting::nas_restart_closes_its_sessions` |
//! | `purge_sessions`          | `accounting::sessions_are_purged`                       |
//! | `checkpoint`              | `backoff::*`, `copy::both_ways`                         |
//! | `ping`                    | `tokens::token_life_cycle`                              |
//! | `export`                  | `copy::both_ways`                                       |
//! | `import`                  | `copy::both_ways`                                       |
//!
//! The races the engine relies on: `races::enroll_once` (parallel first logins on two nodes
//! make one token and one challenge), `races::one_challenge_within_blocking`,
//! `races::trigger_limit_holds`, `races::answer_once` (one winner, its request
//! recorded on a shared store), `races::backoff_counts_add_up`; and, one request at a time,
//! grace (`backoff::grace_window`), the retransmit digest (`challenges::retransmits`), the purge
//! (`challenges::challenge_purge`) and `tessera store copy` both ways between the backends
//! (`copy::both_ways`); accounting sessions from Start to Stop, Accounting-On/Off, the bound
//! per client entry and the purge (`accounting::*`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly by design"
)]

mod accounting;
mod backoff;
mod challenges;
mod copy;
mod fixtures;
mod hardware;
mod races;
mod tokens;

use tessera::secret::Secret;
use tessera::store::{ChallengeRequest, ChallengeTarget, Token, TokenKind};
use tessera::time::UnixMs;

/// The seed of every test token.
const SEED: &[u8] = b"12345678901234567890";

/// An SMS token of alice@local.
fn token(serial: &str) -> Token {
    Token {
        serial: serial.into(),
        kind: TokenKind::Sms,
        user: "alice".into(),
        realm: "local".into(),
        seed: Secret::new(SEED.to_vec()),
        counter: 0,
        digits: 6,
        pin_hash: None,
        phone: Some("+4917012345678".into()),
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
        algorithm: tessera::store::HashAlgorithm::Sha1,
        time_step: None,
        public_id: None,
    }
}

/// A challenge of alice@local to `serials`: valid 120 s, blocking `blocking_ms`, at most 3
/// started in 10 minutes, the retransmit window starting now.
fn request(state: &str, serials: &[&str], now_ms: i64, blocking_ms: i64) -> ChallengeRequest {
    ChallengeRequest {
        user: "alice".into(),
        realm: "local".into(),
        state: state.into(),
        targets: serials
            .iter()
            .map(|s| ChallengeTarget {
                serial: (*s).to_string(),
                validity_ms: 120_000,
                blocking_ms,
            })
            .collect(),
        now: UnixMs::from_ms(now_ms),
        trigger_limit: 3,
        trigger_window_ms: 600_000,
        enroll: None,
        request_digest: None,
        retransmit_since: UnixMs::from_ms(now_ms),
    }
}

/// One test per case and backend: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = crate::fixtures::Sqlite::new();
                    crate::$module::$case(&fixture).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = crate::fixtures::Postgres::new();
                    crate::$module::$case(&fixture).await;
                }
            )*
        }
        /// The cases the macro was given, as `module::case`.
        const CASES: &[&str] = &[$(concat!(stringify!($module), "::", stringify!($case))),*];
    };
}

conformance!(
    tokens::token_life_cycle,
    tokens::token_listing,
    tokens::token_owner_and_deletion,
    tokens::token_description,
    tokens::last_use,
    tokens::pending_confirmation,
    hardware::hardware_columns,
    hardware::assign_and_take_back,
    hardware::replace_all_or_nothing,
    challenges::challenge_life_cycle,
    challenges::challenge_answers,
    challenges::start_decides,
    challenges::retransmits,
    challenges::challenge_purge,
    challenges::start_on_a_token_gone,
    backoff::counts_per_origin_and_identity,
    backoff::counts_are_forgotten,
    backoff::grace_window,
    backoff::audit_trail,
    backoff::audit_filters,
    backoff::rows_by_origin,
    races::enroll_once,
    races::one_challenge_within_blocking,
    races::trigger_limit_holds,
    races::answer_once,
    races::backoff_counts_add_up,
    copy::both_ways,
    accounting::session_life_cycle,
    accounting::stop_without_start,
    accounting::nas_restart_closes_its_sessions,
    accounting::open_sessions_are_bounded,
    accounting::sessions_are_purged,
    accounting::sessions_of_an_identity,
);

/// The `Store` trait's methods, from its source.
fn trait_methods() -> Vec<String> {
    let source = include_str!("../../src/store/mod.rs");
    let body = source
        .split("pub trait Store: Send + Sync {")
        .nth(1)
        .expect("the Store trait");
    // The trait ends at the first unindented closing brace.
    body.lines()
        .take_while(|line| *line != "}")
        .map(str::trim_start)
        .filter_map(|line| {
            let rest = line
                .strip_prefix("async fn ")
                .or_else(|| line.strip_prefix("fn "))?;
            Some(rest.split(['(', '<']).next()?.to_string())
        })
        .collect()
}

/// Every method of the trait has a row in the table above, and every case the table names
/// runs.
#[test]
fn every_method_is_covered() {
    let table = include_str!("main.rs");
    let methods = trait_methods();
    assert!(methods.len() > 30, "the trait was not read: {methods:?}");
    for method in &methods {
        assert!(
            table.contains(&format!("//! | `{method}` ")),
            "Store::{method} has no conformance case: add one and a row to the table in \
             tests/store_conformance/main.rs"
        );
    }
    for row in table.lines().filter(|l| l.starts_with("//! | `")) {
        for named in row.split('`').skip(3).step_by(2) {
            let found = CASES.iter().any(|case| match named.strip_suffix('*') {
                Some(module) => case.starts_with(module),
                None => *case == named,
            });
            assert!(found, "{named} (in the table) is not a case: {row}");
        }
    }
}
