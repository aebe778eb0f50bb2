//! Several tessera nodes on one PostgreSQL (issue 15): two real tessera processes with the
//! same config and key file, node A on 127.0.0.1 and node B on 127.0.0.2 (Linux routes all of
//! 127/8 to the loopback; the NAS — radclient, or a raw socket — sends to both from
//! 127.0.0.1, the one client both configs know), sharing a real PostgreSQL cluster started
//! for the test. Any node answers any round; every race (the same code at
//! both nodes, first logins at both nodes) is decided by the database; a node that dies or a
//! database that goes away costs logins, never an Accept without a commit.

use std::path::Path;
use std::time::{Duration, Instant};

use tessera::otp::hotp;

use tessera::radius::codec::{AttributeType, Code, Packet};
use tessera::radius::crypto;
use tessera::time::UnixMs;

use crate::radius::RawClient;
use crate::util::postgres::{PASSWORD, Postgres};
use crate::util::{Reply, SECRET, Server, Setup, radclient, run_cli, write_config};

/// RFC 4226's test seed, hex and raw.
const SEED_HEX: &str = "3132333435363738393031323334353637383930";
const SEED: &[u8] = b"12345678901234567890";

/// A database, the files every node shares (key file, password file), and two nodes.
struct Cluster {
    pg: Postgres,
    shared: tempfile::TempDir,
    a: Server,
    b: Server,
}

/// The `[store]` keys of a node on `pg`, with its files in `shared`.
fn store_keys(pg: &Postgres, shared: &Path) -> String {
    format!(
        "backend = \"postgresql\"\nurl = \"{}\"\npassword_file = \"{}\"\nkey_file = \"{}\"\npool_size = 8\n",
        pg.url(),
        shared.join("pg.password").display(),
        shared.join("tessera.key").display()
    )
}

/// Writes the database's password into `shared/pg.password`, mode 0600 (tessera refuses a
/// password file that group or others may read).
fn write_password_file(shared: &Path) {
    crate::util::write_private(shared.join("pg.password"), format!("{PASSWORD}\n"));
}

impl Cluster {
    /// Starts PostgreSQL and two nodes with `setup` (its `[store]` replaced) and metrics: A on
    /// 127.0.0.1, B on 127.0.0.2.
    fn start(setup: Setup) -> Cluster {
        let pg = Postgres::start_new();
        let shared = tempfile::tempdir().expect("tempdir");
        write_password_file(shared.path());
        let on = |host: &str| Setup {
            store: store_keys(&pg, shared.path()),
            listen: vec![format!("{host}:0")],
            extra: format!("{}\n[metrics]\nlisten = \"{host}:0\"\n", setup.extra),
            ..setup.clone()
        };
        // A makes the key file and claims the database; B reads the same file.
        let a = Server::start_with(&on("127.0.0.1"));
        let b = Server::start_with(&on("127.0.0.2"));
        assert_eq!(b.addr.ip().to_string(), "127.0.0.2");
        Cluster { pg, shared, a, b }
    }

    /// Every message either node sent.
    fn messages(&self) -> usize {
        self.a.spool().len() + self.b.spool().len()
    }
}

fn otp_policy() -> Setup {
    Setup {
        policies: "[[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=2\"\n"
            .into(),
        auth: "max_fail = 1000\n".into(),
        ..Setup::default()
    }
}

/// Polls `probe` until it is true, for at most `limit`; says whether it became true.
fn eventually(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn issue_15_round_one_on_a_round_two_on_b() {
    let cluster = Cluster::start(Setup::default());
    let first = cluster.a.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let otp = cluster.a.last_otp();
    cluster
        .b
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    // The same code again, on either node: the challenge is closed.
    cluster
        .a
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Reject");
    cluster
        .b
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Reject");
    // One token, made by A, seen by B's admin command too.
    let (code, list, err) = cluster.b.cli(&["token", "list", "--user", "alice"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        list.lines().filter(|l| l.contains("LSSM")).count(),
        1,
        "{list}"
    );
    // The database password is in no log and no URL shown.
    for server in [&cluster.a, &cluster.b] {
        assert!(!server.log_text().contains(PASSWORD));
    }
    // Both nodes' audit rows land in the one trail (written in batches, so soon, not at once).
    let results = || {
        let (_, json, _) = cluster.a.cli(&["audit", "--json"], "");
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(10), || {
            let results = results();
            results.iter().filter(|r| *r == "accept").count() == 1
                && results.iter().filter(|r| *r == "challenge").count() == 1
                && results.iter().filter(|r| *r == "reject").count() == 2
        }),
        "{:?}",
        results()
    );
}

#[test]
fn issue_15_the_same_hotp_code_at_both_nodes_is_accepted_once() {
    let cluster = Cluster::start(otp_policy());
    let (code, _, err) = cluster.a.cli(
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "alice",
            "--seed-file",
            "-",
        ],
        SEED_HEX,
    );
    assert_eq!(code, 0, "{err}");
    let (a, b) = (cluster.a.addr, cluster.b.addr);
    for counter in 0..50u64 {
        let otp = hotp(SEED, counter, 6);
        let attrs = |otp: &str| {
            vec![
                ("User-Name".to_string(), "\"alice\"".to_string()),
                ("User-Password".to_string(), format!("\"{otp}\"")),
                ("Message-Authenticator".to_string(), "0x00".to_string()),
            ]
        };
        let replies: Vec<Reply> = std::thread::scope(|s| {
            let ask = |addr| {
                let attrs = attrs(&otp);
                s.spawn(move || {
                    let attrs: Vec<(&str, &str)> = attrs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    radclient(addr, SECRET, &attrs)
                })
            };
            let (to_a, to_b) = (ask(a), ask(b));
            vec![to_a.join().unwrap(), to_b.join().unwrap()]
        });
        let accepts = replies.iter().filter(|r| r.code == "Access-Accept").count();
        let rejects = replies.iter().filter(|r| r.code == "Access-Reject").count();
        assert_eq!(
            (accepts, rejects),
            (1, 1),
            "counter {counter}: {:?}",
            replies.iter().map(|r| &r.code).collect::<Vec<_>>()
        );
    }
    let (_, list, _) = cluster
        .a
        .cli(&["token", "list", "--user", "alice", "--json"], "");
    let value: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(value[0]["counter"], 50, "{list}");
}

#[test]
fn issue_15_parallel_first_logins_at_both_nodes_make_one_token_and_one_message() {
    let cluster = Cluster::start(Setup::default());
    let (a, b) = (cluster.a.addr, cluster.b.addr);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let addr = if i % 2 == 0 { a } else { b };
                s.spawn(move || {
                    radclient(
                        addr,
                        SECRET,
                        &[
                            ("User-Name", "\"alice\""),
                            ("User-Password", "\"wonderland\""),
                            ("Message-Authenticator", "0x00"),
                        ],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (_, list, _) = cluster.a.cli(&["token", "list", "--user", "alice"], "");
    assert_eq!(
        list.lines().filter(|l| l.contains("LSSM")).count(),
        1,
        "{list}"
    );
    assert_eq!(cluster.messages(), 1, "exactly one SMS");
    let states: std::collections::BTreeSet<String> = replies
        .iter()
        .filter(|r| r.code == "Access-Challenge")
        .map(Reply::state)
        .collect();
    assert_eq!(
        states.len(),
        1,
        "every challenge carries the one State: {:?}",
        replies.iter().map(|r| &r.code).collect::<Vec<_>>()
    );
    // And that State answers on either node.
    let state = states.into_iter().next().unwrap();
    let otp = if cluster.a.spool().is_empty() {
        cluster.b.last_otp()
    } else {
        cluster.a.last_otp()
    };
    cluster
        .b
        .auth("alice", &otp, Some(&state))
        .expect("Access-Accept");
}

#[test]
fn issue_15_kill_9_of_node_a_between_rounds_then_b_accepts_round_two() {
    let mut cluster = Cluster::start(Setup::default());
    let first = cluster.a.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let otp = cluster.a.last_otp();
    cluster.a.signal("KILL");
    cluster.a.wait_exit();
    cluster
        .b
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn issue_15_database_down_rejects_and_fails_health_then_recovers_without_restart() {
    let mut cluster = Cluster::start(Setup::default());
    let healthy = |s: &Server| s.http_get("/healthz").0 == "HTTP/1.1 200 OK";
    assert!(eventually(Duration::from_secs(20), || healthy(&cluster.a)
        && healthy(&cluster.b)));

    cluster.pg.stop();
    for server in [&cluster.a, &cluster.b] {
        server
            .auth("alice", "wonderland", None)
            .expect("Access-Reject");
    }
    assert!(
        eventually(Duration::from_secs(30), || !healthy(&cluster.a)
            && !healthy(&cluster.b)),
        "both nodes report 503 while the database is down"
    );
    assert_eq!(cluster.messages(), 0, "nothing was sent without a commit");

    cluster.pg.start();
    let mut first = None;
    assert!(
        eventually(Duration::from_secs(30), || {
            let reply = cluster.a.auth("alice", "wonderland", None);
            let ok = reply.code == "Access-Challenge";
            first = Some(reply);
            ok
        }),
        "logins work again: {:?}",
        first.as_ref().map(|r| &r.output)
    );
    let state = first.unwrap().state();
    let otp = cluster.a.last_otp();
    cluster
        .b
        .auth("alice", &otp, Some(&state))
        .expect("Access-Accept");
    assert!(eventually(Duration::from_secs(20), || healthy(&cluster.a)
        && healthy(&cluster.b)));
}

/// The code of a reply datagram, checked against the request's authenticator.
fn code_of(reply: Option<Vec<u8>>, authenticator: &[u8; 16]) -> Code {
    let reply = reply.expect("an answer");
    assert!(crypto::verify_response(
        &reply,
        authenticator,
        SECRET.as_bytes()
    ));
    Packet::decode(&reply).unwrap().code
}

#[test]
fn issue_15_a_round_two_resent_to_b_after_a_accepted_is_accepted_again() {
    let cluster = Cluster::start(Setup::default());
    // The NAS talks to each node from a socket of its own.
    let (to_a, to_b) = (
        RawClient::new(cluster.a.addr),
        RawClient::new(cluster.b.addr),
    );
    let (first, auth) = RawClient::access_request(1, "alice", "wonderland", None);
    to_a.send(&first);
    let challenge = to_a.receive().expect("challenge");
    assert_eq!(
        code_of(Some(challenge.clone()), &auth),
        Code::ACCESS_CHALLENGE
    );
    let state = Packet::decode(&challenge)
        .unwrap()
        .get(AttributeType::STATE)
        .unwrap()
        .to_vec();
    let otp = cluster.a.last_otp();
    let (answer, auth) = RawClient::access_request(2, "alice", &otp, Some(&state));
    to_a.send(&answer);
    assert_eq!(code_of(to_a.receive(), &auth), Code::ACCESS_ACCEPT);
    // A's reply is lost; the NAS fails over and resends the very same request to B.
    to_b.send(&answer);
    assert_eq!(code_of(to_b.receive(), &auth), Code::ACCESS_ACCEPT);
    // A different request with the same code, on either node: the code is spent.
    for (node, id) in [(&to_b, 3), (&to_a, 4)] {
        let (again, auth) = RawClient::access_request(id, "alice", &otp, Some(&state));
        node.send(&again);
        assert_eq!(code_of(node.receive(), &auth), Code::ACCESS_REJECT);
    }
    assert_eq!(cluster.messages(), 1);
}

/// Round 1 sent to `first`, then the very same datagram to `second` (a NAS failing over, or
/// resending from another socket): both answer Access-Challenge; returns both States.
fn round_one_twice(first: &RawClient, second: &RawClient, id: u8) -> (Vec<u8>, Vec<u8>) {
    let (request, auth) = RawClient::access_request(id, "alice", "wonderland", None);
    let mut states = vec![];
    for node in [first, second] {
        node.send(&request);
        let reply = node.receive();
        assert_eq!(code_of(reply.clone(), &auth), Code::ACCESS_CHALLENGE);
        states.push(
            Packet::decode(&reply.unwrap())
                .unwrap()
                .get(AttributeType::STATE)
                .unwrap()
                .to_vec(),
        );
    }
    (states.remove(0), states.remove(0))
}

#[test]
fn issue_15_a_round_one_resent_to_b_sends_nothing_even_without_a_blocking_timeout() {
    // With no blocking timeout only the request's digest tells B that A already sent.
    let cluster = Cluster::start(Setup {
        auth: "sms_blocking_timeout = 0\n".into(),
        ..Setup::default()
    });
    let (to_a, to_b) = (
        RawClient::new(cluster.a.addr),
        RawClient::new(cluster.b.addr),
    );
    let (state_a, state_b) = round_one_twice(&to_a, &to_b, 1);
    assert_eq!(state_a, state_b, "both nodes answer with the one State");
    assert_eq!(cluster.messages(), 1, "exactly one SMS");
    // A new request (another Authenticator) is a new login: without a blocking timeout it
    // sends a new code.
    let (again_a, again_b) = round_one_twice(&to_b, &to_a, 2);
    assert_eq!(again_a, again_b);
    assert_ne!(again_a, state_a);
    assert_eq!(cluster.messages(), 2);
    // A sent the first code, B the second; each State is answered by its own code.
    for (state, otp) in [
        (&state_a, cluster.a.last_otp()),
        (&again_a, cluster.b.last_otp()),
    ] {
        cluster
            .b
            .auth("alice", &otp, Some(&format!("0x{}", hex(state))))
            .expect("Access-Accept");
    }
}

#[test]
fn issue_15_a_round_one_resent_from_another_port_sends_nothing_on_sqlite_either() {
    // One node on SQLite; the NAS resends from another socket (another source port), so the
    // reply cache does not know it: the store's record of the request does.
    let node = Server::start_with(&Setup {
        auth: "sms_blocking_timeout = 0\n".into(),
        ..Setup::default()
    });
    let (first, second) = (RawClient::new(node.addr), RawClient::new(node.addr));
    let (state_1, state_2) = round_one_twice(&first, &second, 1);
    assert_eq!(state_1, state_2, "the one State");
    assert_eq!(node.spool().len(), 1, "exactly one SMS");
}

#[test]
fn issue_15_a_nas_failover_during_a_slow_sms_sends_once_and_both_nodes_give_the_same_state() {
    // The gateway answers after 3 s; the NAS gives up on A after 1 s and resends to B.
    let gw = crate::util::peers::http_gateway(200, "ID=42", &["--delay", "3"]);
    let cluster = Cluster::start(Setup {
        providers: format!(
            "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{}\"\nRETURN_SUCCESS = \"ID\"\n\
             SMS_TEXT_KEY = \"text\"\nTIMEOUT = 10\n\n\
             [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
            gw.url("/send")
        ),
        ..Setup::default()
    });
    let (to_a, to_b) = (
        RawClient::new(cluster.a.addr),
        RawClient::new(cluster.b.addr),
    );
    let (request, auth) = RawClient::access_request(1, "alice", "wonderland", None);
    let (from_a, from_b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            to_a.send(&request);
            to_a.receive()
        });
        let b = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            to_b.send(&request);
            to_b.receive()
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let state_of = |reply: Option<Vec<u8>>| {
        assert_eq!(code_of(reply.clone(), &auth), Code::ACCESS_CHALLENGE);
        Packet::decode(&reply.unwrap())
            .unwrap()
            .get(AttributeType::STATE)
            .unwrap()
            .to_vec()
    };
    let (state_a, state_b) = (state_of(from_a), state_of(from_b));
    assert_eq!(state_a, state_b, "both nodes answer with the one State");
    assert_eq!(gw.records().len(), 1, "exactly one SMS: {:?}", gw.records());
    // And the code answers it on either node.
    let otp =
        crate::util::peers::otp_in(gw.records()[0]["form"]["text"].as_str().unwrap_or_default());
    cluster
        .b
        .auth("alice", &otp, Some(&format!("0x{}", hex(&state_a))))
        .expect("Access-Accept");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn issue_15_a_hotp_request_resent_to_b_is_accepted_again_and_the_counter_moves_once() {
    let cluster = Cluster::start(otp_policy());
    let (code, _, err) = cluster.a.cli(
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "alice",
            "--seed-file",
            "-",
        ],
        SEED_HEX,
    );
    assert_eq!(code, 0, "{err}");
    let (to_a, to_b) = (
        RawClient::new(cluster.a.addr),
        RawClient::new(cluster.b.addr),
    );
    let otp = hotp(SEED, 0, 6);
    let (request, auth) = RawClient::access_request(7, "alice", &otp, None);
    to_a.send(&request);
    assert_eq!(code_of(to_a.receive(), &auth), Code::ACCESS_ACCEPT);
    to_b.send(&request);
    assert_eq!(code_of(to_b.receive(), &auth), Code::ACCESS_ACCEPT);
    let (_, list, _) = cluster
        .a
        .cli(&["token", "list", "--user", "alice", "--json"], "");
    let value: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(value[0]["counter"], 1, "the counter moved once: {list}");
    assert_eq!(
        value[0]["fail_count"], 0,
        "the retransmit counted no failure: {list}"
    );
    let (replay, auth) = RawClient::access_request(8, "alice", &otp, None);
    to_b.send(&replay);
    assert_eq!(code_of(to_b.receive(), &auth), Code::ACCESS_REJECT);
}

#[test]
fn issue_15_several_hosts_in_the_url_the_node_finds_the_one_that_takes_writes() {
    // First in the list: a server that takes no writes (as a standby); then the primary.
    let standby = Postgres::start_new();
    standby.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    standby.psql("SELECT pg_reload_conf()");
    assert_eq!(standby.psql("SHOW default_transaction_read_only"), "on");
    let primary = Postgres::start_new();
    let shared = tempfile::tempdir().unwrap();
    write_password_file(shared.path());
    let keys = store_keys(&primary, shared.path()).replace(
        &format!("127.0.0.1:{}", primary.port),
        &format!("127.0.0.1:{},127.0.0.1:{}", standby.port, primary.port),
    );
    assert!(keys.contains(&format!(":{},", standby.port)), "{keys}");
    let node = Server::start_with(&Setup {
        store: keys,
        ..Setup::default()
    });
    let first = node.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    node.auth("alice", &node.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    assert_eq!(primary.psql("SELECT count(*) FROM tokens"), "1");
    assert_eq!(standby.psql("SELECT to_regclass('tokens') IS NULL"), "t");
}

#[test]
fn issue_15_after_a_failover_connections_to_the_read_only_old_primary_are_dropped() {
    // The node knows two hosts; the first is the primary until it turns read-only (as an old
    // primary demoted in a failover) while the node's pooled connections to it stay open.
    let old = Postgres::start_new();
    let new = Postgres::start_new();
    let shared = tempfile::tempdir().unwrap();
    write_password_file(shared.path());
    let keys = store_keys(&old, shared.path()).replace(
        &format!("127.0.0.1:{}", old.port),
        &format!("127.0.0.1:{},127.0.0.1:{}", old.port, new.port),
    );
    let node = Server::start_with(&Setup {
        store: keys,
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    });
    // The new primary holds the schema and the cluster's key, as a standby would.
    let new_dir = tempfile::tempdir().unwrap();
    let new_config = write_config(
        new_dir.path(),
        &Setup {
            store: store_keys(&new, shared.path()),
            ..Setup::default()
        },
    );
    let migrated = run_cli(&new_config, &["store", "migrate"], "");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let first = node.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    node.auth("alice", &node.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    assert_eq!(old.psql("SELECT count(*) FROM tokens"), "1");

    old.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    old.psql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    // The first login meets the old primary's refusal: a Reject that says why.
    let refused = node.auth("alice", "wonderland", None);
    refused.expect("Access-Reject");
    assert!(
        refused
            .get("Reply-Message")
            .is_some_and(|m| m.contains("service unavailable")),
        "{}",
        refused.output
    );
    // Then the pool drops those connections and finds the new primary by itself.
    let mut last = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            let reply = node.auth("alice", "wonderland", None);
            let ok = reply.code == "Access-Challenge";
            last = Some(reply);
            ok
        }),
        "logins work on the new primary: {:?}",
        last.as_ref().map(|r| &r.output)
    );
    let state = last.unwrap().state();
    node.auth("alice", &node.last_otp(), Some(&state))
        .expect("Access-Accept");
    assert_eq!(new.psql("SELECT count(*) FROM tokens"), "1");
    assert_eq!(node.http_get("/healthz").0, "HTTP/1.1 200 OK");
}

#[test]
fn issue_15_tls_to_postgresql_is_verified_against_ca_file() {
    let ca = testkit::ca::TestCa::new();
    let pg = Postgres::start_new_with_tls(&ca.cert, &ca.key);
    let shared = tempfile::tempdir().unwrap();
    write_password_file(shared.path());
    let store = |ca_file: Option<&Path>| {
        let keys = store_keys(&pg, shared.path()).replace("sslmode=disable", "sslmode=require");
        match ca_file {
            Some(path) => format!("{keys}ca_file = \"{}\"\n", path.display()),
            None => keys,
        }
    };
    // The system's CAs do not know the test CA: no connection.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &Setup {
            store: store(None),
            ..Setup::default()
        },
    );
    let out = run_cli(&config, &["token", "list"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(
        stderr.contains("ca_file") && stderr.contains("sslmode=disable"),
        "says what to do: {stderr}"
    );
    // With the CA: a login over TLS.
    let node = Server::start_with(&Setup {
        store: store(Some(&ca.ca)),
        ..Setup::default()
    });
    let first = node.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    node.auth("alice", &node.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    let encrypted = pg.psql(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE ssl AND application_name = 'tessera'",
    );
    assert_ne!(encrypted, "0", "tessera's connections use TLS");
}

#[test]
fn issue_15_a_node_with_another_key_file_refuses_to_start() {
    let cluster = Cluster::start(Setup::default());
    // Seal one seed with the cluster's key.
    cluster
        .a
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let other = tempfile::tempdir().unwrap();
    let setup = Setup {
        store: store_keys(&cluster.pg, cluster.shared.path()).replace(
            &cluster
                .shared
                .path()
                .join("tessera.key")
                .display()
                .to_string(),
            &other.path().join("other.key").display().to_string(),
        ),
        ..Setup::default()
    };
    let config = write_config(other.path(), &setup);
    // A key file of its own: made by a first run against an empty SQLite store.
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite_config = write_config(
        sqlite_dir.path(),
        &Setup {
            store: format!(
                "path = \"tessera.db\"\nkey_file = \"{}\"\n",
                other.path().join("other.key").display()
            ),
            ..Setup::default()
        },
    );
    // (`store migrate` makes a store and its key; `token list` no longer does, issue 23.)
    let made = run_cli(&sqlite_config, &["store", "migrate"], "");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(other.path().join("other.key").exists());

    let out = run_cli(&config, &["token", "list"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not the key that sealed"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    let checked = run_cli(&config, &["check-config"], "");
    assert_eq!(checked.status.code(), Some(1));
}

/// The PostgreSQL store's own calls, from two stores (two nodes' pools) on one database: the
/// plans of a login's statements, a batch that cannot be written, an old schema. What every
/// backend must do, the races between nodes included, is in the conformance suite
/// (`tests/store_conformance/`, `cargo test --test store_conformance`).
mod store_races {
    use std::sync::Arc;

    use tessera::secret::Secret;
    use tessera::store::config::{PgSettings, StoreBackend, StoreConfig};
    use tessera::store::{Backoff, RequestMark, Store, Token, TokenKind};

    use super::*;

    fn token(serial: &str, autoenrolled: bool) -> Token {
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
            created_at: UnixMs::from_secs(0),
            owner_id: None,
            autoenrolled,
            last_used: None,
            pending: false,
            algorithm: tessera::store::HashAlgorithm::Sha1,
            time_step: None,
            public_id: None,
        }
    }

    /// Two stores ("nodes") on a new cluster.
    async fn two_nodes(pg: &Postgres, shared: &Path) -> (Arc<dyn Store>, Arc<dyn Store>) {
        write_password_file(shared);
        let config = StoreConfig {
            backend: StoreBackend::Postgres(PgSettings {
                url: pg.url(),
                password_file: Some(shared.join("pg.password")),
                pool_size: 32,
                statement_timeout: 5,
                ca_file: None,
            }),
            key_file: shared.join("tessera.key"),
            audit_days: 90,
            accounting_days: 90,
            max_open_sessions_per_nas: 100_000,
        };
        let a = tessera::store::open(&config).await.unwrap();
        let b = tessera::store::open(&config).await.unwrap();
        (a, b)
    }

    /// The sequential scans of the tables a login reads, as "table:scans" (statistics reach
    /// the view when a backend is idle, within a second or two).
    fn seq_scans(pg: &Postgres) -> String {
        pg.psql(
            "SELECT string_agg(relname || ':' || seq_scan, ',' ORDER BY relname) \
             FROM pg_stat_user_tables WHERE relname IN ('tokens', 'answered', 'login_failures')",
        )
    }

    /// Logins on a new database, from its first on: every statement of a login reads its
    /// table by index. PostgreSQL keeps a plan per connection and statement, made in its first
    /// executions; one made while a table was empty (`answered` is, and grows by a row per
    /// login) would otherwise read the whole table on every login as long as the node runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_15_logins_from_a_new_database_read_every_table_by_index() {
        let pg = Postgres::start_new();
        let shared = tempfile::tempdir().unwrap();
        let tokens: Vec<Token> = (0..50)
            .map(|i| Token {
                user: format!("user{i}"),
                ..token(&format!("OATH{i:04}"), false)
            })
            .collect();
        {
            // Creating the tables and their indexes counts as scans: that happens on stores
            // of its own, whose connections close (and report) before the count starts.
            let (setup, _) = two_nodes(&pg, shared.path()).await;
            setup.insert_tokens(tokens).await.unwrap();
        }
        std::thread::sleep(Duration::from_millis(2500));
        pg.psql("SELECT pg_stat_reset()");
        let (a, b) = two_nodes(&pg, shared.path()).await;
        // Twelve rounds of 50 logins, half at each node: each statement runs past the five
        // executions after which PostgreSQL may keep a generic plan.
        for round in 0..12u8 {
            let tasks: Vec<_> = (0..50u8)
                .map(|i| {
                    let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                    tokio::spawn(async move {
                        let (user, serial) = (format!("user{i}"), format!("OATH{i:04}"));
                        let mut digest = [round; 16];
                        digest[0] = i;
                        let now_ms = 1_000_000 + i64::from(round);
                        let (state, retransmit) = store
                            .user_state_of_request(
                                &user,
                                "local",
                                Some("st-1"),
                                Some((&digest, UnixMs::from_ms(0))),
                            )
                            .await
                            .unwrap();
                        assert_eq!((state.tokens.len(), retransmit), (1, None));
                        let by = Some(RequestMark {
                            digest,
                            now: UnixMs::from_ms(now_ms),
                        });
                        let moved = store
                            .consume_counter(
                                &serial,
                                u64::from(round),
                                Some(UnixMs::from_ms(now_ms)),
                                by,
                            )
                            .await
                            .unwrap();
                        assert!(moved, "round {round}, {user}");
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
        let read = || {
            pg.psql(
                "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'answered'",
            ) != "0"
        };
        assert!(eventually(Duration::from_secs(20), read), "no statistics");
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(
            seq_scans(&pg),
            "answered:0,login_failures:0,tokens:0",
            "a login's statement read a whole table"
        );
    }

    /// An identity's back-off counts (over all origins, from `origin`): (failures, last).
    async fn backoff_counts(
        store: &Arc<dyn Store>,
        user: &str,
        origin: &str,
    ) -> (Option<(u32, i64)>, Option<(u32, i64)>) {
        let rows = store
            .user_state(user, "local", Some(origin))
            .await
            .unwrap()
            .backoff;
        let pair = |b: Option<Backoff>| b.map(|b| (b.failures, b.last_failure.as_ms()));
        (pair(rows.identity), pair(rows.origin))
    }

    /// Issue 23: a back-off batch that cannot be written is known until one is written again,
    /// and a database of schema 3 keeps its counts as the identities' over all origins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_23_unwritten_backoff_counts_are_known_and_schema_3_is_kept() {
        let pg = Postgres::start_new();
        let shared = tempfile::tempdir().unwrap();
        let (a, b) = two_nodes(&pg, shared.path()).await;
        let forget = 3_600_000;
        // A batch that cannot be written (here: the table refuses every new row) is known
        // until one is written again.
        pg.psql("ALTER TABLE login_failures ADD CONSTRAINT refuse CHECK (false) NOT VALID");
        a.record_login_failure("alice", "local", "st-a", UnixMs::from_ms(5_000_003), forget)
            .await;
        a.checkpoint().await.unwrap();
        assert!(a.writes_failing(), "the failure was not written");
        pg.psql("ALTER TABLE login_failures DROP CONSTRAINT refuse");
        a.audit(tessera::store::AuditEntry::default()).await;
        a.checkpoint().await.unwrap();
        assert!(!a.writes_failing(), "the next batch was written");

        // A database of schema 3: one row per identity, keyed by user and realm.
        drop((a, b));
        pg.psql(
            "DELETE FROM login_failures; \
             ALTER TABLE login_failures DROP CONSTRAINT login_failures_pkey; \
             ALTER TABLE login_failures DROP COLUMN origin; \
             ALTER TABLE login_failures ADD PRIMARY KEY (username, realm); \
             INSERT INTO login_failures VALUES ('carol', 'local', 7, 9000); \
             UPDATE meta SET value = '3' WHERE name = 'schema_version'",
        );
        let (a, _) = two_nodes(&pg, shared.path()).await;
        assert_eq!(
            backoff_counts(&a, "carol", "st-a").await,
            (Some((7, 9000)), None),
            "kept as carol's count over all origins"
        );
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario (a SQLite node in use, copied, then every token on PostgreSQL) read as a story"
)]
fn issue_15_store_copy_from_sqlite_then_every_token_logs_in_on_postgresql() {
    // A single node on SQLite, in use: an SMS token (autoenrolled, answered) and a HOTP token.
    let single = Server::start_with(&Setup {
        policies: "[[policy]]\nname = \"autoenroll\"\nscope = \"enrollment\"\naction = \"autoenrollment=sms email\"\n\n\
                   [[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=1\"\n"
            .into(),
        ..Setup::default()
    });
    let first = single.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    single
        .auth("alice", &single.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    let (code, _, err) = single.cli(
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "carol",
            "--seed-file",
            "-",
        ],
        SEED_HEX,
    );
    assert_eq!(code, 0, "{err}");
    let (_, before, _) = single.cli(&["token", "list", "--json"], "");
    let sqlite_config = single.dir.path().join("tessera.toml");

    // The PostgreSQL config uses the same key file.
    let pg = Postgres::start_new();
    let shared = tempfile::tempdir().unwrap();
    write_password_file(shared.path());
    std::fs::copy(
        single.dir.path().join("tessera.key"),
        shared.path().join("tessera.key"),
    )
    .unwrap();
    let node_dir = tempfile::tempdir().unwrap();
    let pg_config = write_config(
        node_dir.path(),
        &Setup {
            store: store_keys(&pg, shared.path()),
            ..Setup::default()
        },
    );
    // Stopped, its files kept.
    let mut single = single;
    single.signal("TERM");
    single.wait_exit();
    let copy = |force: bool| {
        let mut args = vec!["store", "copy", "--from"];
        let (from, to) = (
            sqlite_config.display().to_string(),
            pg_config.display().to_string(),
        );
        args.push(&from);
        args.push("--to");
        args.push(&to);
        if force {
            args.push("--force");
        }
        let out = run_cli(&pg_config, &args, "");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = copy(false);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("copied 2 tokens, 1 challenge rows, 0 back-off rows, 0 grace rows and "),
        "{out}"
    );
    // Again: the target is not empty now.
    let (code, _, err) = copy(false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(copy(true).0, Some(0));

    // The same tokens, counters and all; the audit came along.
    let node = Server::start_in(node_dir, &pg_config);
    let (_, after, _) = node.cli(&["token", "list", "--json"], "");
    let strip = |json: &str| -> serde_json::Value { serde_json::from_str(json).unwrap() };
    assert_eq!(strip(&after), strip(&before));
    let (_, audit, _) = node.cli(&["audit", "--json"], "");
    assert!(audit.contains("token enrolled"), "{audit}");
    // Every token logs in on PostgreSQL.
    let first = node.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    node.auth("alice", &node.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    node.auth("carol", &format!("carolpw{}", hotp(SEED, 0, 6)), None)
        .expect("Access-Accept");

    // And back to a new SQLite file.
    let back_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shared.path().join("tessera.key"),
        back_dir.path().join("tessera.key"),
    )
    .unwrap();
    let back = write_config(back_dir.path(), &Setup::default());
    let out = run_cli(
        &back,
        &[
            "store",
            "copy",
            "--from",
            &pg_config.display().to_string(),
            "--to",
            &back.display().to_string(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = run_cli(&back, &["token", "list", "--json"], "");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn issue_15_store_migrate_and_a_newer_schema_is_refused() {
    let pg = Postgres::start_new();
    let shared = tempfile::tempdir().unwrap();
    write_password_file(shared.path());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &Setup {
            store: store_keys(&pg, shared.path()),
            ..Setup::default()
        },
    );
    let out = run_cli(&config, &["store", "migrate"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema up to date"));
    assert_eq!(
        pg.psql("SELECT value FROM meta WHERE name = 'schema_version'"),
        "8"
    );
    // A database a newer tessera wrote.
    pg.psql("UPDATE meta SET value = '99' WHERE name = 'schema_version'");
    for args in [&["token", "list"][..], &["store", "migrate"][..]] {
        let out = run_cli(&config, args, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("schema version 99, newer than this tessera's (8)"),
            "{stderr}"
        );
    }
    let out = run_cli(&config, &["check-config"], "");
    assert_eq!(out.status.code(), Some(1));
}
