//! The two store calls every login makes, batched across concurrent requests: the first read
//! of a request (the identity's tokens, its back-off row, the retransmit check) and consuming
//! a HOTP/TOTP counter. Requests that arrive while a batch is in flight wait for the next one,
//! which then carries all of them: one statement per kind of read for the whole batch, and one
//! compare-and-set `UPDATE` — one commit, one WAL flush — for all its counters. Under load
//! this is what PostgreSQL's CPU and the round trips are spent on; alone, a request is a batch
//! of one and waits for nothing. Every statement finds its rows by index (`= ANY($1)` on an
//! indexed column): a join against the batch's arrays made the planner scan whole tables,
//! `answered` among them, which grows by a row per login.
//!
//! Nothing about the decisions changes: every counter is still moved by a compare-and-set the
//! database decides (`counter <= used`, re-checked against a concurrent writer's committed
//! row), its request recorded in the same statement, and committed before the caller hears
//! that it won, so no Accept leaves before its commit. A batch locks its token rows in serial
//! order before it changes them, so two nodes' batches never deadlock; a serial or request
//! digest that appears twice in a batch goes into a later statement of the same batch, so one
//! statement never changes a row twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::types::ToSql;

use super::super::seal::SealKey;
use super::super::{Backoff, Backoffs, StoreError, Token, UserState};
use super::rows::ms_column;
use super::{query, to_i64, to_u32, token_from_row};

/// Most requests in one batch.
const MAX_BATCH: usize = 256;
/// Batches of one kind in flight at once. With one, what arrives during a batch's round trip
/// all goes into the next: at 16,000 logins a second a consume batch carried about 43
/// requests instead of 23 with two in flight, and PostgreSQL spent a fifth less per login
/// (each statement's fixed cost shared by more); a lone request still waits for nothing.
const IN_FLIGHT: usize = 1;
/// Most requests waiting.
const QUEUE: usize = 10_000;

/// Runs batches of `I` through `run` and hands each caller its `O`.
pub(super) struct Batcher<I, O> {
    items: mpsc::Sender<(I, oneshot::Sender<Result<O, StoreError>>)>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batcher's task on the current runtime.
    pub(super) fn start<F, Fut>(run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
    {
        let (items, mut queue) =
            mpsc::channel::<(I, oneshot::Sender<Result<O, StoreError>>)>(QUEUE);
        let run = Arc::new(run);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            while let Some(first) = queue.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                // Everything that arrived while the slot was busy goes into this batch.
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let run = run.clone();
                tokio::spawn(async move {
                    let (inputs, replies): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                    match run(inputs).await {
                        Ok(outputs) if outputs.len() == replies.len() => {
                            for (reply, output) in replies.into_iter().zip(outputs) {
                                let _ = reply.send(Ok(output));
                            }
                        }
                        Ok(_) => {
                            for reply in replies {
                                let _ = reply.send(Err(StoreError::Corrupt(
                                    "a batch answered the wrong number of requests".into(),
                                )));
                            }
                        }
                        Err(error) => {
                            let error = Arc::new(error);
                            for reply in replies {
                                let _ = reply.send(Err(shared(&error)));
                            }
                        }
                    }
                    drop(slot);
                });
            }
        });
        Batcher { items }
    }

    /// Queues `input` for the next batch and waits for its answer.
    pub(super) async fn call(&self, input: I) -> Result<O, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.items
            .send((input, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// A batch's error, for each of its callers.
fn shared(error: &Arc<StoreError>) -> StoreError {
    match &**error {
        StoreError::Unavailable(text) => StoreError::Unavailable(text.clone()),
        other => StoreError::Postgres {
            text: other.to_string(),
            source: Some(error.clone()),
        },
    }
}

/// One request's first read.
pub(super) struct Read {
    pub(super) user: String,
    pub(super) realm: String,
    /// The origin whose back-off row (and the identity's) to read, if any.
    pub(super) backoff_origin: Option<String>,
    /// The request's digest and the start of the retransmit window.
    pub(super) retransmit: Option<([u8; 16], i64)>,
}

/// The reads of a batch: three statements in flight at once on one connection.
pub(super) async fn read(
    pool: &Pool,
    key: &SealKey,
    reads: Vec<Read>,
) -> Result<Vec<(UserState, Option<String>)>, StoreError> {
    let c = pool.get().await?;
    let users: Vec<&str> = reads.iter().map(|r| r.user.as_str()).collect();
    let realms: Vec<&str> = reads.iter().map(|r| r.realm.as_str()).collect();
    let identities: [&(dyn ToSql + Sync); 2] = [&users, &realms];
    let tokens = query(
        &c,
        concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE username = ANY($1::text[]) AND realm = ANY($2::text[]) \
             ORDER BY serial"
        ),
        &identities,
    );
    // Each read's two rows (the identity's, under the empty origin, and its origin's): `= ANY`
    // on each key column finds them by the primary key.
    let (mut backoff_users, mut backoff_realms, mut origins) = (vec![], vec![], vec![""]);
    for r in &reads {
        if let Some(origin) = &r.backoff_origin {
            backoff_users.push(r.user.as_str());
            backoff_realms.push(r.realm.as_str());
            origins.push(origin.as_str());
        }
    }
    let backoff = async {
        if backoff_users.is_empty() {
            return Ok(vec![]);
        }
        query(
            &c,
            "SELECT username, realm, origin, failures, last_failure_ms FROM login_failures \
             WHERE username = ANY($1::text[]) AND realm = ANY($2::text[]) \
             AND origin = ANY($3::text[])",
            &[&backoff_users, &backoff_realms, &origins],
        )
        .await
    };
    let digests: Vec<&[u8]> = reads
        .iter()
        .filter_map(|r| r.retransmit.as_ref())
        .map(|(digest, _)| digest.as_slice())
        .collect();
    let answered = async {
        if digests.is_empty() {
            return Ok(vec![]);
        }
        query(
            &c,
            "SELECT digest, serial, at_ms FROM answered WHERE digest = ANY($1::bytea[])",
            &[&digests],
        )
        .await
    };
    let (tokens, backoff, answered) = tokio::try_join!(tokens, backoff, answered)?;
    drop(c);

    answers(key, &reads, &tokens, &backoff, &answered)
}

/// Each read's answer from the batch's rows. `= ANY` on each column finds every pair asked for
/// by index, and may find pairs nobody asked for (alice@a when alice@b and bob@a were): those
/// are left out here.
fn answers(
    key: &SealKey,
    reads: &[Read],
    tokens: &[tokio_postgres::Row],
    backoff: &[tokio_postgres::Row],
    answered: &[tokio_postgres::Row],
) -> Result<Vec<(UserState, Option<String>)>, StoreError> {
    let mut tokens_of: HashMap<(String, String), Vec<Token>> = HashMap::new();
    for row in tokens {
        let token = token_from_row(row, key)?;
        tokens_of
            .entry((token.user.clone(), token.realm.clone()))
            .or_default()
            .push(token);
    }
    let mut backoff_of: HashMap<(String, String, String), Backoff> = HashMap::new();
    for row in backoff {
        backoff_of.insert(
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?),
            Backoff {
                failures: to_u32(row.try_get(3)?),
                last_failure: ms_column(row, 4)?,
            },
        );
    }
    let mut answered_by: HashMap<Vec<u8>, (String, i64)> = HashMap::new();
    for row in answered {
        answered_by.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    Ok(reads
        .iter()
        .map(|r| {
            let key = (r.user.clone(), r.realm.clone());
            let row = |origin: &str| {
                backoff_of
                    .get(&(r.user.clone(), r.realm.clone(), origin.to_string()))
                    .copied()
            };
            let backoff = r
                .backoff_origin
                .as_deref()
                .map_or_else(Backoffs::default, |origin| Backoffs {
                    identity: row(""),
                    origin: row(origin),
                });
            let state = UserState {
                tokens: tokens_of.get(&key).cloned().unwrap_or_default(),
                backoff,
            };
            let serial = r.retransmit.as_ref().and_then(|(digest, since)| {
                answered_by
                    .get(digest.as_slice())
                    .filter(|(_, at_ms)| at_ms >= since)
                    .map(|(serial, _)| serial.clone())
            });
            (state, serial)
        })
        .collect())
}

/// One counter to consume (see [`super::super::Store::consume_counter`]).
pub(super) struct Consume {
    pub(super) serial: String,
    pub(super) used: u64,
    /// The login's time in seconds, the token's last use; `None`: not a login, kept.
    pub(super) used_at: Option<i64>,
    /// The request's digest and when it was decided.
    pub(super) by: Option<([u8; 16], i64)>,
}

/// Every counter of the batch moved by one compare-and-set statement, its request recorded in
/// the same statement; the token rows locked in serial order first (no deadlock between two
/// nodes' batches). The locks are taken by a sub-select the `UPDATE` evaluates once before it
/// reads a row (a one-time filter), not joined to it: the join compared every row with every
/// locked serial and cost the statement about as much as its writes.
const CONSUME_BATCH: &str = "WITH input AS ( \
       SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::int[], \
         $6::bigint[]) AS t(serial, used, digest, at_ms, idx, used_at) \
     ), locked AS MATERIALIZED ( \
       SELECT serial FROM tokens WHERE serial = ANY($1::text[]) \
       ORDER BY serial FOR UPDATE OF tokens \
     ), moved AS ( \
       UPDATE tokens SET counter = input.used + 1, fail_count = 0, \
         last_used = COALESCE(input.used_at, tokens.last_used) \
       FROM input \
       WHERE (SELECT count(*) FROM locked) >= 0 \
         AND tokens.serial = ANY($1::text[]) AND tokens.serial = input.serial \
         AND tokens.counter <= input.used \
       RETURNING input.idx, input.serial, input.digest, input.at_ms \
     ), recorded AS ( \
       INSERT INTO answered (digest, serial, at_ms) \
       SELECT digest, serial, at_ms FROM moved WHERE digest IS NOT NULL \
       ON CONFLICT (digest) DO UPDATE SET serial = excluded.serial, at_ms = excluded.at_ms \
     ) SELECT idx FROM moved";

/// Consumes a batch's counters: whether each moved.
pub(super) async fn consume(pool: &Pool, items: Vec<Consume>) -> Result<Vec<bool>, StoreError> {
    let c = pool.get().await?;
    let mut moved = vec![false; items.len()];
    // Rounds in which no serial and no digest appears twice; usually one.
    let mut left: Vec<usize> = (0..items.len()).collect();
    while !left.is_empty() {
        let (mut serials, mut digests) = (HashSet::new(), HashSet::new());
        let (round, later): (Vec<usize>, Vec<usize>) = left.iter().copied().partition(|&i| {
            let item = &items[i];
            let digest_free = item.by.is_none_or(|(d, _)| !digests.contains(&d));
            if serials.contains(item.serial.as_str()) || !digest_free {
                return false;
            }
            serials.insert(item.serial.as_str());
            if let Some((d, _)) = item.by {
                digests.insert(d);
            }
            true
        });
        for idx in consume_round(&c, &items, &round).await? {
            if let Some(slot) = moved.get_mut(idx) {
                *slot = true;
            }
        }
        left = later;
    }
    Ok(moved)
}

/// One statement for the items at `round`: the indices that moved.
async fn consume_round(
    c: &impl GenericClient,
    items: &[Consume],
    round: &[usize],
) -> Result<Vec<usize>, StoreError> {
    let serials: Vec<&str> = round.iter().map(|&i| items[i].serial.as_str()).collect();
    let used: Vec<i64> = round.iter().map(|&i| to_i64(items[i].used)).collect();
    let digests: Vec<Option<&[u8]>> = round
        .iter()
        .map(|&i| items[i].by.as_ref().map(|(d, _)| d.as_slice()))
        .collect();
    let at: Vec<i64> = round
        .iter()
        .map(|&i| items[i].by.map_or(0, |(_, at)| at))
        .collect();
    let idx: Vec<i32> = round
        .iter()
        .map(|&i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let used_at: Vec<Option<i64>> = round.iter().map(|&i| items[i].used_at).collect();
    let rows = query(
        c,
        CONSUME_BATCH,
        &[&serials, &used, &digests, &at, &idx, &used_at],
    )
    .await?;
    rows.iter()
        .map(|r| Ok(usize::try_from(r.try_get::<_, i32>(0)?).unwrap_or(usize::MAX)))
        .collect()
}
