//! Issue 23, items 1–3: a stranger with sockets must not turn a fail mode into an open door.
//! Idle TCP connections to the RadSec port (from other loopback addresses than the NAS) must
//! not keep a NAS out, and a descriptor shortage of tessera's own must be a Reject, never a
//! `delivery_failmode=password_only` Accept. tessera's descriptor limit is lowered from outside
//! with `prlimit` (util-linux), so the tests need no thousand sockets and the shortage happens
//! exactly where the test wants it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tessera::radius::codec::{AttributeType, Code, Packet};

use crate::radsec::{PROXY_CLIENT, access_request, answer_request, radsec_setup};
use crate::util::radsec::TlsClient;
use crate::util::{Server, Setup};
use testkit::ca::TestCa;

const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

/// Sets the soft `RLIMIT_NOFILE` of process `pid` (the hard one stays). Descriptors already
/// open stay open; a new one must be numbered below the limit.
fn set_soft_nofile(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit (util-linux) must be installed: run scripts/test.sh");
    assert!(status.success(), "prlimit --nofile={soft}: failed");
}

/// The soft `RLIMIT_NOFILE` of process `pid`, as `prlimit` takes it back.
fn soft_nofile(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/PID/limits");
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a Max open files line")
        .to_string()
}

/// A TCP connection from `source` to `to` that never sends a byte; `None` if refused.
fn idle_connection(source: Ipv4Addr, to: SocketAddr) -> Option<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    socket
        .bind(&SocketAddr::new(IpAddr::V4(source), 0).into())
        .ok()?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .ok()?;
    Some(socket)
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn issue_23_idle_connections_before_the_handshake_do_not_keep_a_nas_out() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let mut setup = radsec_setup(&ca, PROXY_CLIENT);
    setup.extra = METRICS.into();
    let server = Server::start_with(&setup);
    let tls = server.tls_addr.unwrap();
    server.wait_for_log("descriptor limit (RLIMIT_NOFILE)");
    // A small descriptor budget, so a few hundred idle sockets exhaust it.
    set_soft_nofile(server.pid(), "256");

    // The stranger: 20 loopback addresses with 12 idle connections each, and one address
    // with 40 (more than one address may hold). Nothing is ever sent on them.
    let mut idle = vec![];
    for host in 2..=21u8 {
        for _ in 0..12 {
            idle.extend(idle_connection(Ipv4Addr::new(127, 0, 0, host), tls));
        }
    }
    for _ in 0..40 {
        idle.extend(idle_connection(Ipv4Addr::new(127, 0, 0, 22), tls));
    }
    assert!(idle.len() > 200, "only {} idle connections", idle.len());

    // The NAS (from 127.0.0.1) connects and logs in while they are all still open.
    let mut nas = TlsClient::connect(tls, &ca.ca, &cert, &key).expect("the NAS connects");
    nas.write(&access_request(1, "alice", "wonderland"))
        .unwrap();
    let reply = nas.read_packet().expect("an answer to the NAS");
    assert_eq!(reply[0], Code::ACCESS_CHALLENGE.0);
    let otp = server.last_otp();
    let state = Packet::decode(&reply)
        .unwrap()
        .get(AttributeType::STATE)
        .unwrap()
        .to_vec();
    nas.write(&answer_request(2, "alice", &otp, Some(&state)))
        .unwrap();
    let accept = nas.read_packet().expect("an answer to the NAS");
    assert_eq!(accept[0], Code::ACCESS_ACCEPT.0);

    // What was refused and closed is counted; the limit and the descriptors in use are shown.
    let (_, metrics) = server.http_get("/metrics");
    let count = |name: &str, reason: &str| {
        metric(
            &metrics,
            &format!("{name}{{listener=\"radsec\",reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(
        count("tessera_connections_refused_total", "per_source") >= 1.0,
        "{metrics}"
    );
    assert!(
        count("tessera_connections_closed_total", "evicted") >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tessera_descriptor_limit "),
        Some(256.0),
        "{metrics}"
    );
    let in_use = metric(&metrics, "tessera_descriptors_open ").expect("tessera_descriptors_open");
    assert!(in_use > 10.0 && in_use < 256.0, "{metrics}");
    drop(idle);
}

/// tessera with the SMS provider `sms` (TOML keys after its table header), metrics, and
/// `delivery_failmode=password_only` for everyone; carol has logged in once, so the directory
/// and the store have opened what they open.
fn failing_open(sms: &str) -> Server {
    let mut setup = Setup {
        providers: format!(
            "[provider.sms.gw]\n{sms}\n\n\
             [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n"
        ),
        extra: METRICS.into(),
        ..Setup::default()
    };
    setup.policies.push_str(
        "\n[[policy]]\nname = \"fail open\"\nscope = \"authentication\"\n\
         action = \"delivery_failmode=password_only\"\n",
    );
    let server = Server::start_with(&setup);
    server
        .auth("carol", "carolpw", None)
        .expect("Access-Reject");
    server
}

/// alice's login while tessera can open no new descriptor (those open stay usable: only what
/// needs a new one fails, and the reply says which did).
fn login_without_descriptors(server: &Server) -> testkit::radclient::Reply {
    let pid = server.pid();
    let normal = soft_nofile(pid);
    set_soft_nofile(pid, "0");
    let reply = server.auth("alice", "wonderland", None);
    set_soft_nofile(pid, &normal);
    reply
}

/// The refusal of tessera's own, then the control: the same provider, still down, with
/// descriptors to spare, is the provider's failure and `password_only` lets alice in.
fn refused_then_accepted_on_the_password(server: &Server) {
    let reply = login_without_descriptors(server);
    reply.expect("Access-Reject");
    let message = reply.get("Reply-Message").unwrap_or_default();
    assert!(message.contains("problem on this server"), "{message}");
    server.wait_for_log("tessera's own failure");

    server
        .auth("alice", "wonderland", None)
        .expect("Access-Accept");
    server.wait_for_log("accepted on the password alone (delivery_failmode=password_only)");
}

#[test]
fn issue_23_a_descriptor_shortage_is_a_reject_never_a_fail_mode_accept() {
    // The gateway is down (nothing listens on its port). Without a descriptor for the socket
    // the failure is tessera's own (EMFILE in the error's causes).
    let down = testkit::ports::closed_port();
    let server = failing_open(&format!(
        "class = \"HttpSMSProvider\"\nURL = \"http://127.0.0.1:{down}/send\""
    ));
    refused_then_accepted_on_the_password(&server);

    let (_, metrics) = server.http_get("/metrics");
    assert_eq!(
        metric(
            &metrics,
            "tessera_delivery_failures_total{provider=\"gw\",channel=\"sms\",kind=\"local\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "tessera_local_failures_total{resource=\"descriptors\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn issue_23_a_modem_that_cannot_be_opened_for_want_of_a_descriptor_is_no_fail_mode() {
    // The modem is unplugged (its device is gone). serialport reports a failed open without
    // its cause, so only the check that tessera can open a descriptor tells whose it is.
    let server = failing_open(
        "class = \"DeviceSMSProvider\"\nDEVICE = \"/dev/tessera-test-modem-gone\"\nTIMEOUT = 5",
    );
    refused_then_accepted_on_the_password(&server);
}
