//! The scenarios: what each sets up, which virtual users it runs, what it reports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tessera::otp::hotp;
use tessera::secret::Secret;
use tessera::store::seal::SealKey;
use tessera::store::sqlite::SqliteStore;
use tessera::store::{Store, Token, TokenKind};

use crate::load::{self, Answer, Client, RunResult, Sample, VirtualUser};
use crate::peers::{self, Peer};

/// The shared secret of every benchmark client.
pub const SECRET: &str = "bench-secret";

/// Knobs common to all scenarios.
#[derive(Clone)]
pub struct Knobs {
    /// The tessera binary.
    pub tessera: PathBuf,
    /// Measured seconds per run.
    pub duration: Duration,
    /// Unmeasured seconds before.
    pub warmup: Duration,
    /// Virtual users (concurrent requests).
    pub concurrency: usize,
    /// Users / tokens for the protocol scenarios.
    pub users: usize,
}

/// One line of the report.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Tokens (or users) in the store.
    pub tokens: usize,
    /// Concurrent virtual users, or the paced rate.
    pub load: String,
    /// Logins (or requests) per second that succeeded.
    pub per_second: f64,
    /// Requests answered.
    pub answered: usize,
    /// Requests lost after retransmits.
    pub lost: usize,
    /// Requests rejected.
    pub rejected: usize,
    /// Round 1 (p50, p99, p99.9) in ms.
    pub round1: (f64, f64, f64),
    /// Round 2 (p50, p99, p99.9) in ms, for two-round scenarios.
    pub round2: Option<(f64, f64, f64)>,
    /// Peak resident memory of the server, MiB.
    pub rss_mib: Option<f64>,
}

fn seed(i: usize) -> Vec<u8> {
    Sha1::digest(format!("tessera-bench-{i}").as_bytes()).to_vec()
}

fn row(
    scenario: &str,
    tokens: usize,
    load: String,
    result: &RunResult,
    successes: usize,
    peer: &Peer,
) -> Row {
    let (answered, p50, p99, p999) = load::percentiles(&result.samples, 1);
    let round2 = result.samples.iter().any(|s| s.round == 2).then(|| {
        let (_, a, b, c) = load::percentiles(&result.samples, 2);
        (a, b, c)
    });
    Row {
        scenario: scenario.into(),
        tokens,
        load,
        per_second: successes as f64 / result.elapsed.as_secs_f64(),
        answered: answered
            + result
                .samples
                .iter()
                .filter(|s| s.round == 2 && s.answer != Answer::Lost)
                .count(),
        lost: result
            .samples
            .iter()
            .filter(|s| s.answer == Answer::Lost)
            .count(),
        rejected: result
            .samples
            .iter()
            .filter(|s| s.answer == Answer::Reject)
            .count(),
        round1: (p50, p99, p999),
        round2,
        rss_mib: peer.peak_rss_mib(),
    }
}

/// Writes a tessera config for the protocol scenarios into `dir`.
fn tessera_config(dir: &Path, extra: &str) -> std::io::Result<PathBuf> {
    std::fs::write(dir.join("users.toml"), "")?;
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:0"]

[store]
path = "tessera.db"
key_file = "tessera.key"

[[client]]
address = "127.0.0.1"
secret = "{SECRET}"
name = "bench"

[directory.local]
type = "users_file"
path = "users.toml"

[[realm]]
name = "local"
directories = ["local"]
default = true

{extra}
"#
    );
    let path = dir.join("tessera.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// HOTP users: each virtual user owns every `n`-th user and keeps its counters.
struct HotpUser {
    users: Vec<(String, Vec<u8>, u64)>,
    next: usize,
}

impl VirtualUser for HotpUser {
    async fn step(&mut self, client: &mut Client, samples: &mut Vec<Sample>) {
        let len = self.users.len().max(1);
        let Some((name, seed, counter)) = self.users.get_mut(self.next % len) else {
            return;
        };
        self.next += 1;
        let otp = hotp(seed, *counter, 6);
        let (answer, _, latency) = client.access_request(name, otp.as_bytes(), None).await;
        if answer == Answer::Accept {
            *counter += 1;
        }
        samples.push(Sample {
            round: 1,
            micros: latency.as_micros().min(u128::from(u32::MAX)) as u32,
            answer,
        });
    }
}

fn hotp_users(tokens: usize, concurrency: usize) -> Vec<HotpUser> {
    let mut users: Vec<HotpUser> = (0..concurrency)
        .map(|_| HotpUser {
            users: vec![],
            next: 0,
        })
        .collect();
    for i in 0..tokens {
        if let Some(vu) = users.get_mut(i % concurrency) {
            vu.users.push((format!("u{i}"), seed(i), 0));
        }
    }
    users
}

/// Starts tessera with `tokens` HOTP tokens (otppin=2: the password is the OTP alone).
async fn tessera_with_hotp_tokens(knobs: &Knobs, tokens: usize) -> Result<Peer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = tessera_config(
        dir.path(),
        "[[policy]]\nname = \"otp-only\"\nscope = \"authentication\"\naction = \"otppin=2\"\n",
    )
    .map_err(|e| e.to_string())?;
    {
        let key =
            SealKey::load_or_create(&dir.path().join("tessera.key")).map_err(|e| e.to_string())?;
        let store =
            SqliteStore::open(&dir.path().join("tessera.db"), key).map_err(|e| e.to_string())?;
        let mut batch = Vec::with_capacity(20_000);
        for i in 0..tokens {
            batch.push(Token {
                serial: format!("OATHB{i:08}"),
                kind: TokenKind::Hotp,
                user: format!("u{i}"),
                realm: "local".into(),
                seed: Secret::new(seed(i)),
                counter: 0,
                digits: 6,
                pin_hash: None,
                phone: None,
                email: None,
                active: true,
                fail_count: 0,
                max_fail: 10,
                last_fail_at: None,
                description: "benchmark".into(),
                created_at: 0,
            });
            if batch.len() == 20_000 || i + 1 == tokens {
                store
                    .insert_tokens(std::mem::take(&mut batch))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    peers::start_tessera(&knobs.tessera, dir, &config)
}

/// Warm-up (unmeasured), then a measured run, with the same virtual users.
async fn measure<V: VirtualUser>(
    knobs: &Knobs,
    addr: SocketAddr,
    users: Vec<V>,
    rate: Option<f64>,
) -> Result<(Vec<V>, RunResult), String> {
    let mut users = users;
    if !knobs.warmup.is_zero() {
        users = load::run(addr, SECRET.as_bytes(), users, knobs.warmup, rate)
            .await
            .map_err(|e| e.to_string())?
            .0;
    }
    load::run(addr, SECRET.as_bytes(), users, knobs.duration, rate)
        .await
        .map_err(|e| e.to_string())
}

fn accepts(result: &RunResult) -> usize {
    result
        .samples
        .iter()
        .filter(|s| s.answer == Answer::Accept)
        .count()
}

/// `hotp-one-round` (and `store-size`): the OTP in User-Password, Access-Accept, the counter
/// committed durably. The main run also gets a paced run at half its maximum, for latency
/// under normal load.
pub async fn hotp_one_round(
    knobs: &Knobs,
    tokens: usize,
    name: &str,
    paced: bool,
) -> Result<Vec<Row>, String> {
    let peer = tessera_with_hotp_tokens(knobs, tokens).await?;
    let (users, result) = measure(
        knobs,
        peer.addr,
        hotp_users(tokens, knobs.concurrency),
        None,
    )
    .await?;
    let load = format!("{} VUs", knobs.concurrency);
    let mut rows = vec![row(name, tokens, load, &result, accepts(&result), &peer)];
    if paced {
        let half = accepts(&result) as f64 / result.elapsed.as_secs_f64() / 2.0;
        let (_, paced) = measure(knobs, peer.addr, users, Some(half)).await?;
        rows.push(row(
            &format!("{name}@50%"),
            tokens,
            format!("{half:.0}/s"),
            &paced,
            accepts(&paced),
            &peer,
        ));
    }
    Ok(rows)
}

/// PAP users against FreeRADIUS.
struct PapUser {
    users: Vec<(String, String)>,
    next: usize,
}

impl VirtualUser for PapUser {
    async fn step(&mut self, client: &mut Client, samples: &mut Vec<Sample>) {
        let len = self.users.len().max(1);
        let Some((name, password)) = self.users.get(self.next % len) else {
            return;
        };
        self.next += 1;
        let (answer, _, latency) = client.access_request(name, password.as_bytes(), None).await;
        samples.push(Sample {
            round: 1,
            micros: latency.as_micros().min(u128::from(u32::MAX)) as u32,
            answer,
        });
    }
}

/// `freeradius-pap`: the reference — FreeRADIUS answering PAP from a users file.
pub async fn freeradius_pap(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let users: Vec<(String, String)> = (0..knobs.users)
        .map(|i| (format!("u{i}"), format!("pw{i}")))
        .collect();
    let peer = peers::start_freeradius(&users, SECRET)?;
    let mut vus: Vec<PapUser> = (0..knobs.concurrency)
        .map(|_| PapUser {
            users: vec![],
            next: 0,
        })
        .collect();
    for (i, user) in users.iter().enumerate() {
        if let Some(vu) = vus.get_mut(i % knobs.concurrency) {
            vu.users.push(user.clone());
        }
    }
    let (vus, result) = measure(knobs, peer.addr, vus, None).await?;
    let half = accepts(&result) as f64 / result.elapsed.as_secs_f64() / 2.0;
    let load = format!("{} VUs", knobs.concurrency);
    let mut rows = vec![row(
        "freeradius-pap",
        knobs.users,
        load,
        &result,
        accepts(&result),
        &peer,
    )];
    let (_, paced) = measure(knobs, peer.addr, vus, Some(half)).await?;
    rows.push(row(
        "freeradius-pap@50%",
        knobs.users,
        format!("{half:.0}/s"),
        &paced,
        accepts(&paced),
        &peer,
    ));
    Ok(rows)
}
