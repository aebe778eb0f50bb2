//! The two-round scenarios: `challenge-flow` (and `-pg`, `slow-gateway`) and the pieces
//! `challenge-flow-http` shares with them ([`challenge_bed`], [`challenge_rows`]): the password
//! checked against a real slapd, an SMS token autoenrolled on the first login, the code posted
//! by tessera's HttpSMSProvider to the generator's gateway and read there by the virtual user
//! waiting for it, the second round answered with the State (or the `transaction_id`).

use std::time::Duration;

use crate::load::{Answer, Client, RunResult, Sample, Transport, VirtualUser};
use crate::peers::{self, Peer};
use crate::scenarios::{
    Knobs, Row, SECRET, SQLITE_STORE, measure_over, row, run_over, tessera_config_with,
};
use testkit::postgres::Postgres;
use testkit::slapd::Slapd;

/// The longest the first-login pass of the challenge scenarios may take.
const ENROLLMENT_PASS_LIMIT: Duration = Duration::from_secs(600);

/// A user who logs in with two rounds: password, then the code the gateway receives.
pub(crate) struct ChallengeUser {
    users: Vec<(String, String, String)>,
    next: usize,
    /// Stop after this many logins (the enrollment pass: each user once).
    limit: Option<usize>,
    waiters: crate::gateway::Waiters,
    /// Rounds are recorded as 1 and 2, or 11 and 12 for users behind the slow gateway.
    round_base: u8,
}

impl VirtualUser for ChallengeUser {
    fn done(&self) -> bool {
        self.limit.is_some_and(|limit| self.next >= limit)
    }

    async fn step(&mut self, client: &mut Client, samples: &mut Vec<Sample>) {
        let len = self.users.len().max(1);
        let Some((name, password, phone)) = self.users.get(self.next % len) else {
            return;
        };
        self.next += 1;
        let micros = |d: Duration| d.as_micros().min(u128::from(u32::MAX)) as u32;
        let code = self.waiters.expect(phone);
        let (answer, state, latency) = client.access_request(name, password.as_bytes(), None).await;
        samples.push(Sample {
            round: self.round_base,
            micros: micros(latency),
            answer,
            late: false,
        });
        let (Answer::Challenge, Some(state)) = (answer, state) else {
            return;
        };
        let Ok(Ok(code)) = tokio::time::timeout(Duration::from_secs(10), code).await else {
            samples.push(Sample {
                round: self.round_base + 1,
                micros: 0,
                answer: Answer::Lost,
                late: false,
            });
            return;
        };
        let (answer, _, latency) = client
            .access_request(name, code.as_bytes(), Some(&state))
            .await;
        samples.push(Sample {
            round: self.round_base + 1,
            micros: micros(latency),
            answer,
            late: false,
        });
    }
}

/// `challenge-flow` (and `slow-gateway` with `slow`): password checked against a real slapd,
/// SMS token autoenrolled on first login, the code posted by HttpSMSProvider to the
/// generator's gateway, the second round answered with the State. With `slow`, half the users
/// have `+1…` numbers whose gateway answers after 3 s; the table's latencies are the other half's.
pub async fn challenge_flow(knobs: &Knobs, slow: bool) -> Result<Vec<Row>, String> {
    challenge_flow_on(knobs, slow, false).await
}

/// `challenge-flow-pg`: `challenge-flow` with the store in PostgreSQL (its own cluster).
pub async fn challenge_flow_pg(knobs: &Knobs) -> Result<Vec<Row>, String> {
    challenge_flow_on(knobs, false, true).await
}

async fn challenge_flow_on(knobs: &Knobs, slow: bool, pg: bool) -> Result<Vec<Row>, String> {
    let (bed, vus) = challenge_bed(knobs, slow, pg, "").await?;
    let name = match (slow, pg) {
        (true, _) => "slow-gateway",
        (false, true) => "challenge-flow-pg",
        (false, false) => "challenge-flow",
    };
    let udp = Transport::Udp(std::sync::Arc::new(SECRET.as_bytes().to_vec()));
    challenge_rows(knobs, &bed.peer, bed.peer.addr, &udp, vus, name, !slow).await
}

/// What a challenge scenario runs against, kept until its end. Fields drop in this order:
/// tessera before the PostgreSQL and the slapd it uses.
pub(crate) struct ChallengeBed {
    /// tessera.
    pub peer: Peer,
    _postgres: Option<Postgres>,
    _slapd: Slapd,
}

/// The peers of `challenge_flow` (slapd with the people, the SMS gateway, PostgreSQL with
/// `pg`, tessera with `more` at the end of its config) and its virtual users.
pub(crate) async fn challenge_bed(
    knobs: &Knobs,
    slow: bool,
    pg: bool,
    more: &str,
) -> Result<(ChallengeBed, Vec<ChallengeUser>), String> {
    let users = challenge_flow_people(knobs.users, slow);
    let slapd = Slapd::try_with_people(&users)?;
    let waiters = crate::gateway::Waiters::default();
    let gateway = crate::gateway::start(waiters.clone(), Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let directories = format!(
        "[directory.ldap]\ntype = \"ldap\"\nuri = [\"{}\"]\nbase_dn = \"dc=example,dc=org\"\n\n\
         [[realm]]\nname = \"corp\"\ndirectories = [\"ldap\"]\ndefault = true\n",
        slapd.uri()
    );
    let extra = format!(
        "[provider.sms.gateway]\nclass = \"HttpSMSProvider\"\nURL = \"http://{gateway}/send\"\nHTTP_Method = \"POST\"\n\
         RETURN_SUCCESS = \"OK\"\ntimeout = 10\n\n\
         [[policy]]\nname = \"enroll\"\nscope = \"enrollment\"\naction = \"autoenrollment=sms\"\n\n\
         [[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=1\"\n\n\
         [auth]\nsms_blocking_timeout = 0\ntrigger_limit = 1000000\n{more}"
    );
    let postgres = if pg {
        Some(Postgres::try_start_for_benchmark()?)
    } else {
        None
    };
    let store = match &postgres {
        Some(pg) => peers::pg_store_keys(pg, &dir.path().join("tessera.key")),
        None => SQLITE_STORE.to_string(),
    };
    let config =
        tessera_config_with(dir.path(), &directories, &extra, &store).map_err(|e| e.to_string())?;
    let peer = peers::start_tessera(&knobs.tessera, dir, &config)?;
    let vus = challenge_users(knobs, users, &waiters, slow);
    let bed = ChallengeBed {
        peer,
        _postgres: postgres,
        _slapd: slapd,
    };
    Ok((bed, vus))
}

/// The rows of a challenge scenario named `name`, its virtual users reaching `peer` at `addr`
/// over `transport`: the first logins (every user once, each autoenrolling a token), the
/// steady state at full speed and, with `paced`, at half of it.
pub(crate) async fn challenge_rows(
    knobs: &Knobs,
    peer: &Peer,
    addr: std::net::SocketAddr,
    transport: &Transport,
    vus: Vec<ChallengeUser>,
    name: &str,
    paced: bool,
) -> Result<Vec<Row>, String> {
    let load = format!("{} VUs", knobs.concurrency);
    let logins = completed_logins;

    // First logins: every user once, each autoenrolling a token (and hashing its PIN).
    let mut vus = vus;
    for vu in &mut vus {
        vu.limit = Some(vu.users.len());
    }
    let (mut vus, first) =
        run_over(peer, addr, transport, vus, ENROLLMENT_PASS_LIMIT, None).await?;
    let first_row = row(
        &format!("{name}-first-login"),
        knobs.users,
        load.clone(),
        &first,
        logins(&first),
        peer,
    );

    // Then the steady state: every user has a token.
    for vu in &mut vus {
        vu.limit = None;
    }
    let (vus, result) = measure_over(knobs, peer, addr, transport, vus, None).await?;
    let mut rows = vec![
        first_row,
        row(name, knobs.users, load, &result, logins(&result), peer),
    ];
    if paced {
        // Latency of both rounds under normal load: paced at half the maximum.
        let half = logins(&result) as f64 / result.elapsed.as_secs_f64() / 2.0;
        let (_, paced) = measure_over(knobs, peer, addr, transport, vus, Some(half)).await?;
        rows.push(row(
            &format!("{name}@50%"),
            knobs.users,
            format!("{half:.0}/s"),
            &paced,
            logins(&paced),
            peer,
        ));
    }
    Ok(rows)
}

/// The directory's people of `challenge_flow`: `uN` with password `pwN`; with `slow`, every
/// second one has a `+1…` number (the slow gateway's).
fn challenge_flow_people(count: usize, slow: bool) -> Vec<(String, String, String)> {
    (0..count)
        .map(|i| {
            let phone = if slow && i % 2 == 1 {
                format!("+1555{i:07}")
            } else {
                format!("+49170{i:07}")
            };
            (format!("u{i}"), format!("pw{i}"), phone)
        })
        .collect()
}

/// Two-round logins accepted in time (round 2, or 12 for a slow user's).
fn completed_logins(result: &RunResult) -> usize {
    result
        .samples
        .iter()
        .filter(|s| (s.round == 2 || s.round == 12) && s.answer == Answer::Accept && !s.late)
        .count()
}

/// The virtual users of `challenge_flow`, each with its share of `users`; with `slow`, the
/// slow users (`+1…` numbers) go to odd virtual users only.
fn challenge_users(
    knobs: &Knobs,
    users: Vec<(String, String, String)>,
    waiters: &crate::gateway::Waiters,
    slow: bool,
) -> Vec<ChallengeUser> {
    let mut vus: Vec<ChallengeUser> = (0..knobs.concurrency)
        .map(|v| ChallengeUser {
            users: vec![],
            next: 0,
            limit: None,
            waiters: waiters.clone(),
            round_base: if slow && v % 2 == 1 { 11 } else { 1 },
        })
        .collect();
    // Slow users go to odd virtual users only, so a slow login never holds up a fast one.
    let (mut fast, mut slow_users): (Vec<_>, Vec<_>) = users
        .into_iter()
        .partition(|(_, _, p)| !p.starts_with("+1"));
    let even: Vec<usize> = (0..vus.len()).filter(|v| !slow || v % 2 == 0).collect();
    let odd: Vec<usize> = (0..vus.len()).filter(|v| slow && v % 2 == 1).collect();
    for (i, user) in fast.drain(..).enumerate() {
        if let Some(vu) = even
            .get(i % even.len().max(1))
            .and_then(|v| vus.get_mut(*v))
        {
            vu.users.push(user);
        }
    }
    for (i, user) in slow_users.drain(..).enumerate() {
        if let Some(vu) = odd.get(i % odd.len().max(1)).and_then(|v| vus.get_mut(*v)) {
            vu.users.push(user);
        }
    }
    vus.retain(|vu| !vu.users.is_empty());
    vus
}
