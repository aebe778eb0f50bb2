//! The scenarios: what each sets up, which virtual users it runs, what it reports; and the
//! pieces the others (`challenge`, `http`) share: the row, the configs, the runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tessera::otp::hotp;
use tessera::secret::Secret;
use tessera::store::seal::SealKey;
use tessera::store::sqlite::SqliteStore;
use tessera::store::{Store, Token, TokenKind};
use tessera::time::UnixMs;

use crate::load::{self, Answer, Client, RunResult, Sample, Transport, VirtualUser};
use crate::peers::{self, Peer};
use testkit::ca::{KeyKind, TestCa};
use testkit::postgres::Postgres;

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
    /// `--rate`: the hotp/FreeRADIUS pair runs paced at this many requests a second only.
    pub rate: Option<f64>,
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
    /// The server's CPU time (all threads, user + system) per answered request, µs. Less
    /// noisy than throughput on a shared machine: the figure to compare before and after a
    /// change.
    pub cpu_micros: Option<f64>,
}

pub(crate) fn seed(i: usize) -> Vec<u8> {
    Sha1::digest(format!("tessera-bench-{i}").as_bytes()).to_vec()
}

pub(crate) fn row(
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
    if result.retransmits > 0 {
        eprintln!(
            "tessera-bench: {scenario}: {} requests retransmitted after 2 s without an answer",
            result.retransmits
        );
    }
    let rejected = result
        .samples
        .iter()
        .filter(|s| s.answer == Answer::Reject)
        .count();
    // The reasons come from tessera's whole log: read it only when there is something to explain.
    let reasons = if rejected > 0 {
        peer.reject_reasons()
    } else {
        vec![]
    };
    if !reasons.is_empty() {
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
        eprintln!(
            "tessera-bench: {scenario}: rejects so far: {}",
            reasons.join(", ")
        );
    }
    let round2_answered = result
        .samples
        .iter()
        .filter(|s| s.round == 2 && s.answer != Answer::Lost)
        .count();
    Row {
        scenario: scenario.into(),
        tokens,
        load,
        per_second: successes as f64 / result.elapsed.as_secs_f64(),
        answered: answered + round2_answered,
        lost: result
            .samples
            .iter()
            .filter(|s| s.answer == Answer::Lost)
            .count(),
        rejected,
        round1: (p50, p99, p999),
        round2,
        rss_mib: peer.peak_rss_mib(),
        cpu_micros: result
            .server_cpu
            .map(|cpu| cpu.as_secs_f64() * 1e6 / (answered + round2_answered).max(1) as f64),
    }
}

/// The local users file as the only directory (the protocol scenarios need no directory).
const USERS_FILE_REALM: &str = "[directory.local]\ntype = \"users_file\"\npath = \"users.toml\"\n\n\
                                [[realm]]\nname = \"local\"\ndirectories = [\"local\"]\ndefault = true\n";

/// Writes a tessera config for the protocol scenarios into `dir`.
fn tessera_config(dir: &Path, extra: &str) -> std::io::Result<PathBuf> {
    tessera_config_with(dir, USERS_FILE_REALM, extra, SQLITE_STORE)
}

/// The `[store]` keys of the SQLite scenarios.
pub(crate) const SQLITE_STORE: &str = "path = \"tessera.db\"\nkey_file = \"tessera.key\"\n";

/// Writes a tessera config with the given directories and realms.
pub(crate) fn tessera_config_with(
    dir: &Path,
    directories: &str,
    extra: &str,
    store: &str,
) -> std::io::Result<PathBuf> {
    std::fs::write(dir.join("users.toml"), "")?;
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:0"]

[store]
{store}
[[client]]
address = "127.0.0.1"
secret = "{SECRET}"
name = "bench"

{directories}
{extra}
"#
    );
    let path = dir.join("tessera.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// HOTP users: each virtual user owns every `n`-th user and keeps its counters.
pub(crate) struct HotpUser {
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
            late: false,
        });
    }
}

pub(crate) fn hotp_users(tokens: usize, concurrency: usize) -> Vec<HotpUser> {
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
    tessera_with_hotp_tokens_in(knobs, tokens, dir, false, "").await
}

/// The same in `dir`, with `more` (whole sections) at the end of the config; with `radsec`,
/// RadSec too, with the certificates of a test CA in `dir` (`ca.pem`, `server.pem`, and the
/// load generator's `client.pem` for `bench-nas.example.org`) and a client for the load
/// generator's certificate.
pub(crate) async fn tessera_with_hotp_tokens_in(
    knobs: &Knobs,
    tokens: usize,
    dir: tempfile::TempDir,
    radsec: bool,
    more: &str,
) -> Result<Peer, String> {
    let mut extra = String::from(
        "[[policy]]\nname = \"otp-only\"\nscope = \"authentication\"\naction = \"otppin=2\"\n",
    );
    if radsec {
        TestCa::try_create_in(dir.path(), KeyKind::EcP256)?
            .try_client_cert("client", "DNS:bench-nas.example.org")?;
        extra.push_str(
            "\n[[client]]\nname = \"bench-tls\"\ntls_identity = \"bench-nas.example.org\"\n",
        );
    }
    extra.push_str(more);
    let config = tessera_config(dir.path(), &extra).map_err(|e| e.to_string())?;
    if radsec {
        // The RadSec keys belong under [server], which `tessera_config` writes first. Every
        // virtual user's connection comes from 127.0.0.1, so one address may hold them all.
        let text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        let text = text.replacen(
            "[server]\n",
            "[server]\ntls_listen = [\"127.0.0.1:0\"]\ntls_certificate = \"server.pem\"\n\
             tls_key = \"server.key\"\ntls_client_ca = \"ca.pem\"\n\
             tls_max_connections_per_source = 1024\n",
            1,
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
    }
    {
        let key =
            SealKey::load_or_create(&dir.path().join("tessera.key")).map_err(|e| e.to_string())?;
        let store =
            SqliteStore::open(&dir.path().join("tessera.db"), key).map_err(|e| e.to_string())?;
        insert_hotp_tokens(&store, tokens).await?;
    }
    peers::start_tessera(&knobs.tessera, dir, &config)
}

/// Stores `tokens` HOTP tokens `u0` … in batches.
async fn insert_hotp_tokens(store: &dyn Store, tokens: usize) -> Result<(), String> {
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
            created_at: UnixMs::from_secs(0),
            owner_id: None,
            autoenrolled: false,
            last_used: None,
            pending: false,
            algorithm: tessera::store::HashAlgorithm::Sha1,
            time_step: None,
            public_id: None,
        });
        if batch.len() == 20_000 || i + 1 == tokens {
            store
                .insert_tokens(std::mem::take(&mut batch))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `hotp-one-round-pg` (one node) and `hotp-one-round-pg-2-nodes`: `hotp-one-round` with the
/// tokens in PostgreSQL, the virtual users split evenly over `nodes` tessera processes that
/// share it (and one key file).
pub async fn hotp_one_round_pg(knobs: &Knobs, nodes: usize) -> Result<Vec<Row>, String> {
    use tessera::store::config::{PgSettings, StoreBackend, StoreConfig};
    let pg = Postgres::try_start_for_benchmark()?;
    let shared = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_file = shared.path().join("tessera.key");
    SealKey::load_or_create(&key_file).map_err(|e| e.to_string())?;
    {
        let store = tessera::store::open(&StoreConfig {
            backend: StoreBackend::Postgres(PgSettings {
                url: pg.url(),
                password_file: None,
                pool_size: 4,
                statement_timeout: 60,
                ca_file: None,
            }),
            key_file: key_file.clone(),
            audit_days: 90,
            accounting_days: 90,
            max_open_sessions_per_nas: 100_000,
        })
        .await
        .map_err(|e| e.to_string())?;
        insert_hotp_tokens(store.as_ref(), knobs.users).await?;
    }
    let mut servers = vec![];
    for _ in 0..nodes.clamp(1, 2) {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = tessera_config_with(
            dir.path(),
            USERS_FILE_REALM,
            "[[policy]]\nname = \"otp-only\"\nscope = \"authentication\"\naction = \"otppin=2\"\n",
            &peers::pg_store_keys(&pg, &key_file),
        )
        .map_err(|e| e.to_string())?;
        servers.push(peers::start_tessera(&knobs.tessera, dir, &config)?);
    }
    let mut groups: Vec<Vec<HotpUser>> = (0..servers.len()).map(|_| vec![]).collect();
    for (i, vu) in hotp_users(knobs.users, knobs.concurrency)
        .into_iter()
        .enumerate()
    {
        if let Some(group) = groups.get_mut(i % servers.len()) {
            group.push(vu);
        }
    }
    if !knobs.warmup.is_zero() {
        groups = run_split(&servers, groups, knobs.warmup).await?.0;
    }
    let (_, result) = run_split(&servers, groups, knobs.duration).await?;
    let name = if servers.len() == 1 {
        "hotp-one-round-pg"
    } else {
        "hotp-one-round-pg-2-nodes"
    };
    let first = servers.first().ok_or("no server")?;
    Ok(vec![row(
        name,
        knobs.users,
        format!("{} VUs", knobs.concurrency),
        &result,
        accepts(&result),
        first,
    )])
}

/// Runs each group of virtual users against its server at the same time (one or two), and
/// merges the results: samples together, the longest wall time, CPU time summed.
async fn run_split(
    servers: &[Peer],
    mut groups: Vec<Vec<HotpUser>>,
    duration: Duration,
) -> Result<(Vec<Vec<HotpUser>>, RunResult), String> {
    match (servers, groups.len()) {
        ([one], 1) => {
            let group = groups.pop().unwrap_or_default();
            let (users, result) = run_on(one, group, duration, None).await?;
            Ok((vec![users], result))
        }
        ([a, b], 2) => {
            let (gb, ga) = (
                groups.pop().unwrap_or_default(),
                groups.pop().unwrap_or_default(),
            );
            let (ra, rb) =
                tokio::join!(run_on(a, ga, duration, None), run_on(b, gb, duration, None));
            let ((ua, mut merged), (ub, other)) = (ra?, rb?);
            merged.samples.extend(other.samples);
            merged.elapsed = merged.elapsed.max(other.elapsed);
            merged.retransmits += other.retransmits;
            merged.server_cpu = merged.server_cpu.zip(other.server_cpu).map(|(x, y)| x + y);
            Ok((vec![ua, ub], merged))
        }
        _ => Err("one or two servers, one group each".into()),
    }
}

/// Warm-up (unmeasured), then a measured run, with the same virtual users, over UDP.
async fn measure<V: VirtualUser>(
    knobs: &Knobs,
    peer: &Peer,
    users: Vec<V>,
    rate: Option<f64>,
) -> Result<(Vec<V>, RunResult), String> {
    let udp = Transport::Udp(std::sync::Arc::new(SECRET.as_bytes().to_vec()));
    measure_over(knobs, peer, peer.addr, &udp, users, rate).await
}

/// [`measure`] against `addr` over `transport`.
pub(crate) async fn measure_over<V: VirtualUser>(
    knobs: &Knobs,
    peer: &Peer,
    addr: std::net::SocketAddr,
    transport: &Transport,
    users: Vec<V>,
    rate: Option<f64>,
) -> Result<(Vec<V>, RunResult), String> {
    let mut users = users;
    if !knobs.warmup.is_zero() {
        users = run_over(peer, addr, transport, users, knobs.warmup, rate)
            .await?
            .0;
    }
    run_over(peer, addr, transport, users, knobs.duration, rate).await
}

/// One run against `peer` over UDP, with the server's CPU time over it.
async fn run_on<V: VirtualUser>(
    peer: &Peer,
    users: Vec<V>,
    duration: Duration,
    rate: Option<f64>,
) -> Result<(Vec<V>, RunResult), String> {
    let udp = Transport::Udp(std::sync::Arc::new(SECRET.as_bytes().to_vec()));
    run_over(peer, peer.addr, &udp, users, duration, rate).await
}

/// One run against `peer` at `addr` over `transport`, with the server's CPU time over it.
pub(crate) async fn run_over<V: VirtualUser>(
    peer: &Peer,
    addr: std::net::SocketAddr,
    transport: &Transport,
    users: Vec<V>,
    duration: Duration,
    rate: Option<f64>,
) -> Result<(Vec<V>, RunResult), String> {
    let cpu_before = peer.cpu_time();
    let (users, mut result) = load::run(addr, transport, users, duration, rate)
        .await
        .map_err(|e| e.to_string())?;
    result.server_cpu = cpu_before
        .zip(peer.cpu_time())
        .map(|(before, after)| after.saturating_sub(before));
    Ok((users, result))
}

pub(crate) fn accepts(result: &RunResult) -> usize {
    result
        .samples
        .iter()
        .filter(|s| s.answer == Answer::Accept && !s.late)
        .count()
}

/// `store-size`: `hotp-one-round` alone, at full speed.
pub async fn hotp_one_round(knobs: &Knobs, tokens: usize, name: &str) -> Result<Vec<Row>, String> {
    let peer = tessera_with_hotp_tokens(knobs, tokens).await?;
    let (_, result) = measure(knobs, &peer, hotp_users(tokens, knobs.concurrency), None).await?;
    let load = format!("{} VUs", knobs.concurrency);
    Ok(vec![row(
        name,
        tokens,
        load,
        &result,
        accepts(&result),
        &peer,
    )])
}

/// `hotp-radsec`: `hotp-one-round` over UDP and over RadSec against one tessera, taking turns
/// in slices as `hotp_vs_freeradius` does (one TLS connection per virtual user, opened before
/// the measured time), and the cost of setting up a RadSec connection: TCP, a TLS 1.3
/// handshake with a client certificate on both sides, one after another.
pub async fn hotp_udp_vs_radsec(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tls_config = {
        let tessera = tessera_with_hotp_tokens_in(knobs, knobs.users, dir, true, "").await?;
        let config = radsec_client_config(&tessera)?;
        (tessera, config)
    };
    let (tessera, tls_config) = tls_config;
    let tls_addr = tessera.tls_addr.ok_or("tessera serves no RadSec")?;
    let udp = Transport::Udp(std::sync::Arc::new(SECRET.as_bytes().to_vec()));
    let tls = Transport::Tls(tls_config);
    let mut users = hotp_users(knobs.users, knobs.concurrency);
    if !knobs.warmup.is_zero() {
        users = run_over(&tessera, tessera.addr, &udp, users, knobs.warmup, None)
            .await?
            .0;
        users = run_over(&tessera, tls_addr, &tls, users, knobs.warmup, None)
            .await?
            .0;
    }
    let slice = knobs.duration / SLICES;
    let (mut over_udp, mut over_tls) = (RunResult::empty(), RunResult::empty());
    for _ in 0..SLICES {
        let (back, result) = run_over(&tessera, tessera.addr, &udp, users, slice, None).await?;
        over_udp.absorb(result);
        let (back, result) = run_over(&tessera, tls_addr, &tls, back, slice, None).await?;
        users = back;
        over_tls.absorb(result);
    }
    // Connection set-up, one at a time: what a NAS pays per (re)connect.
    let mut setup = RunResult::empty();
    let started = std::time::Instant::now();
    for _ in 0..200 {
        let begun = std::time::Instant::now();
        let connected = Client::connect(tls_addr, &tls).await;
        setup.samples.push(Sample {
            round: 1,
            micros: begun.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
            answer: if connected.is_ok() {
                Answer::Accept
            } else {
                Answer::Lost
            },
            late: false,
        });
    }
    setup.elapsed = started.elapsed();
    let load = format!("{} VUs", knobs.concurrency);
    Ok(vec![
        row(
            "hotp-one-round-udp",
            knobs.users,
            load.clone(),
            &over_udp,
            accepts(&over_udp),
            &tessera,
        ),
        row(
            "hotp-one-round-radsec",
            knobs.users,
            load,
            &over_tls,
            accepts(&over_tls),
            &tessera,
        ),
        Row {
            cpu_micros: None,
            ..row(
                "radsec-connect",
                0,
                "1 at a time".into(),
                &setup,
                accepts(&setup),
                &tessera,
            )
        },
    ])
}

/// The load generator's side of RadSec: trusts the benchmark CA, shows `client.pem`.
fn radsec_client_config(peer: &Peer) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let dir = peer.dir()?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in tessera::radius::tls::read_certificates(&dir.join("ca.pem"))? {
        roots.add(ca).map_err(|e| e.to_string())?;
    }
    let chain = tessera::radius::tls::read_certificates(&dir.join("client.pem"))?;
    let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).map_err(|e| e.to_string())?;
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .and_then(|b| {
        b.with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
    })
    .map(std::sync::Arc::new)
    .map_err(|e| e.to_string())
}

/// How many slices each of `hotp-one-round` and `freeradius-pap` is measured in, taking
/// turns.
const SLICES: u32 = 4;

/// `hotp-one-round` and `freeradius-pap`, side by side: HOTP OTPs in User-Password, each
/// Access-Accept after its counter is committed durably, against FreeRADIUS answering PAP
/// from a users file. The two take turns in short slices of the measured time, so a machine
/// that speeds up or slows down during the run (a shared VM does) weighs on both alike and
/// their ratio stays meaningful. Then each gets a paced run at half its maximum, for latency
/// under normal load.
pub async fn hotp_vs_freeradius(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let tessera = tessera_with_hotp_tokens(knobs, knobs.users).await?;
    let (freeradius, pap_users) = freeradius_with_users(knobs)?;
    let mut hotp_users = hotp_users(knobs.users, knobs.concurrency);
    let mut pap_users = pap_users;
    if let Some(rate) = knobs.rate {
        return paced_pair(
            knobs,
            rate,
            (&tessera, hotp_users),
            (&freeradius, pap_users),
        )
        .await;
    }
    if !knobs.warmup.is_zero() {
        hotp_users = run_on(&tessera, hotp_users, knobs.warmup, None).await?.0;
        pap_users = run_on(&freeradius, pap_users, knobs.warmup, None).await?.0;
    }
    let slice = knobs.duration / SLICES;
    let (mut ours, mut reference) = (RunResult::empty(), RunResult::empty());
    for _ in 0..SLICES {
        let (users, result) = run_on(&tessera, hotp_users, slice, None).await?;
        hotp_users = users;
        ours.absorb(result);
        let (users, result) = run_on(&freeradius, pap_users, slice, None).await?;
        pap_users = users;
        reference.absorb(result);
    }
    let half = |full: &RunResult| accepts(full) as f64 / full.elapsed.as_secs_f64() / 2.0;
    let (ours_half, reference_half) = (half(&ours), half(&reference));
    let ours_paced = measure(knobs, &tessera, hotp_users, Some(ours_half))
        .await?
        .1;
    let reference_paced = measure(knobs, &freeradius, pap_users, Some(reference_half))
        .await?
        .1;
    let load = format!("{} VUs", knobs.concurrency);
    let rows = vec![
        row(
            "hotp-one-round",
            knobs.users,
            load.clone(),
            &ours,
            accepts(&ours),
            &tessera,
        ),
        row(
            "hotp-one-round@50%",
            knobs.users,
            format!("{ours_half:.0}/s"),
            &ours_paced,
            accepts(&ours_paced),
            &tessera,
        ),
        row(
            "freeradius-pap",
            knobs.users,
            load,
            &reference,
            accepts(&reference),
            &freeradius,
        ),
        row(
            "freeradius-pap@50%",
            knobs.users,
            format!("{reference_half:.0}/s"),
            &reference_paced,
            accepts(&reference_paced),
            &freeradius,
        ),
    ];
    Ok(rows)
}

/// `--rate`: the pair paced at `rate` requests a second each, one after the other (low-load
/// latency and CPU per request). A run longer than [`SOAK_AFTER`] is a soak: tessera's run is
/// reported minute by minute as well (latency, and resident memory at the minute's end, so
/// growth and a last minute unlike the first show), and FreeRADIUS, the reference for CPU per
/// request, runs one minute.
async fn paced_pair(
    knobs: &Knobs,
    rate: f64,
    (tessera, hotp_users): (&Peer, Vec<HotpUser>),
    (freeradius, pap_users): (&Peer, Vec<PapUser>),
) -> Result<Vec<Row>, String> {
    let load = format!("{rate:.0}/s");
    let mut rows = vec![];
    let ours = if knobs.duration > SOAK_AFTER {
        soak(knobs, rate, tessera, hotp_users, &mut rows).await?
    } else {
        measure(knobs, tessera, hotp_users, Some(rate)).await?.1
    };
    let reference_knobs = Knobs {
        duration: knobs.duration.min(MINUTE),
        ..knobs.clone()
    };
    let reference = measure(&reference_knobs, freeradius, pap_users, Some(rate))
        .await?
        .1;
    rows.push(row(
        "hotp-one-round-paced",
        knobs.users,
        load.clone(),
        &ours,
        accepts(&ours),
        tessera,
    ));
    rows.push(row(
        "freeradius-pap-paced",
        knobs.users,
        load,
        &reference,
        accepts(&reference),
        freeradius,
    ));
    Ok(rows)
}

/// Runs longer than this are soaks.
const SOAK_AFTER: Duration = Duration::from_secs(120);
const MINUTE: Duration = Duration::from_secs(60);

/// tessera paced at `rate` for the whole run, measured a minute at a time: one row per minute
/// into `rows`, and the whole run returned.
async fn soak(
    knobs: &Knobs,
    rate: f64,
    tessera: &Peer,
    users: Vec<HotpUser>,
    rows: &mut Vec<Row>,
) -> Result<RunResult, String> {
    let mut users = users;
    if !knobs.warmup.is_zero() {
        users = run_on(tessera, users, knobs.warmup, Some(rate)).await?.0;
    }
    let mut whole = RunResult::empty();
    let mut left = knobs.duration;
    let mut minute = 1;
    while !left.is_zero() {
        let slice = left.min(MINUTE);
        let (back, result) = run_on(tessera, users, slice, Some(rate)).await?;
        users = back;
        let mut minute_row = row(
            &format!("  minute {minute}"),
            knobs.users,
            format!("{rate:.0}/s"),
            &result,
            accepts(&result),
            tessera,
        );
        minute_row.rss_mib = tessera.rss_mib();
        rows.push(minute_row);
        whole.absorb(result);
        left -= slice;
        minute += 1;
    }
    Ok(whole)
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
            late: false,
        });
    }
}

/// FreeRADIUS with the benchmark's users in its users file (Cleartext-Password), and PAP
/// virtual users for them.
fn freeradius_with_users(knobs: &Knobs) -> Result<(Peer, Vec<PapUser>), String> {
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
    Ok((peer, vus))
}
