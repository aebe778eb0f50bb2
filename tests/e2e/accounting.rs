//! Issue 30: RADIUS accounting against the real binary, with FreeRADIUS's `radclient` as the
//! NAS: Start, Interim-Update and Stop answered and kept (read back with `tessera sessions
//! --json`), a retransmit answered from the reply cache and recorded once, a wrong secret
//! dropped and counted, Accounting-On closing the NAS's open sessions, Status-Server and a
//! misdirected Access-Request on the accounting port, and a store that cannot write leaving
//! records unanswered until it can again.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use serde_json::Value;
use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};
use tessera::radius::crypto::sign_accounting_request;
use testkit::radclient::{Reply, SECRET, radclient_command};

use crate::backoff::Tmpfs;
use crate::util::{Server, Setup};

const METRICS: &str = "[metrics]\nlisten = \"127.0.0.1:0\"\n";

fn with_metrics() -> Setup {
    Setup {
        extra: METRICS.into(),
        ..Setup::default()
    }
}

/// Where the server receives accounting (its log's `accounting on ADDRESS`).
pub(crate) fn accounting_addr(server: &Server) -> SocketAddr {
    let line = server.wait_for_log("accounting on ");
    line.split("accounting on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no accounting address in {line:?}"))
}

/// One Accounting-Request with radclient.
fn acct(server: &Server, secret: &str, attrs: &[(&str, &str)]) -> Reply {
    radclient_command(accounting_addr(server), secret, "acct", attrs)
}

/// Session `id` of alice on NAS `nas`, with status `status` and `extra` attributes.
fn record<'a>(
    status: &'a str,
    id: &'a str,
    nas: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut attrs = vec![
        ("Acct-Status-Type", status),
        ("Acct-Session-Id", id),
        ("NAS-Identifier", nas),
        ("User-Name", "\"alice\""),
        ("Calling-Station-Id", "\"02-00-00-00-00-01\""),
    ];
    attrs.extend_from_slice(extra);
    attrs
}

/// `tessera sessions --json` with `args`.
fn sessions(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["sessions", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = server.cli(&all, "");
    assert_eq!(code, 0, "{err}");
    match serde_json::from_str(&out) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("not a JSON array: {other:?} from {out}"),
    }
}

fn metrics(server: &Server) -> String {
    server.http_get("/metrics").1
}

#[test]
fn start_interim_and_stop_are_answered_and_kept() {
    let server = Server::start();
    acct(&server, SECRET, &record("Start", "\"s1\"", "\"gw1\"", &[])).expect("Accounting-Response");
    let open = sessions(&server, &["--open"]);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["user"], "alice");
    assert_eq!(open[0]["nas"], "gw1");
    assert_eq!(open[0]["client"], "test-nas");
    assert_eq!(open[0]["calling_station"], "02-00-00-00-00-01");
    acct(
        &server,
        SECRET,
        &record(
            "Interim-Update",
            "\"s1\"",
            "\"gw1\"",
            &[
                ("Framed-IP-Address", "10.0.0.7"),
                ("Acct-Input-Octets", "5"),
                ("Acct-Input-Gigawords", "1"),
                ("Acct-Output-Octets", "7"),
                ("Acct-Input-Packets", "3"),
                ("Acct-Output-Packets", "4"),
                ("Acct-Session-Time", "60"),
            ],
        ),
    )
    .expect("Accounting-Response");
    let row = &sessions(&server, &["--user", "alice"])[0];
    assert_eq!(row["framed_ip"], "10.0.0.7");
    assert_eq!(row["input_octets"], (1u64 << 32) + 5);
    assert_eq!(row["output_octets"], 7);
    assert_eq!(row["input_packets"], 3);
    assert!(row["last_interim"].is_string(), "{row}");
    assert_eq!(row["open"], true);
    acct(
        &server,
        SECRET,
        &record(
            "Stop",
            "\"s1\"",
            "\"gw1\"",
            &[
                ("Acct-Terminate-Cause", "User-Request"),
                ("Acct-Output-Octets", "9"),
            ],
        ),
    )
    .expect("Accounting-Response");
    assert!(sessions(&server, &["--open"]).is_empty());
    let row = &sessions(&server, &[])[0];
    assert_eq!(row["open"], false);
    assert_eq!(row["cause"], "User-Request");
    assert_eq!(row["output_octets"], 9);
    assert!(row["stopped"].is_string(), "{row}");
    // The table names the session too.
    let (code, table, _) = server.cli(&["sessions"], "");
    assert_eq!(code, 0);
    assert!(
        table.contains("test-nas/gw1") && table.contains("User-Request"),
        "{table}"
    );
}

/// The same datagram twice: the same reply, byte for byte, and the record kept once (a second
/// processing would count an `unchanged` record).
#[test]
fn a_retransmit_is_answered_once() {
    let server = Server::start_with(&with_metrics());
    let mut attributes = vec![
        Attribute {
            typ: AttributeType(40),
            value: 1u32.to_be_bytes().to_vec(),
        },
        Attribute {
            typ: AttributeType(44),
            value: b"r1".to_vec(),
        },
        Attribute {
            typ: AttributeType::USER_NAME,
            value: b"alice".to_vec(),
        },
    ];
    attributes.push(Attribute {
        typ: AttributeType::NAS_IDENTIFIER,
        value: b"gw1".to_vec(),
    });
    let packet = Packet {
        code: Code::ACCOUNTING_REQUEST,
        identifier: 42,
        authenticator: [0; 16],
        attributes,
    };
    let datagram = sign_accounting_request(&packet, SECRET.as_bytes(), true).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let to = accounting_addr(&server);
    let mut replies = vec![];
    for _ in 0..2 {
        socket.send_to(&datagram, to).unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = socket.recv_from(&mut buf).expect("an Accounting-Response");
        replies.push(buf[..len].to_vec());
    }
    assert_eq!(replies[0], replies[1], "the cached reply");
    let reply = Packet::decode(&replies[0]).unwrap();
    assert_eq!(reply.code, Code::ACCOUNTING_RESPONSE);
    assert_eq!(reply.identifier, 42);
    assert!(tessera::radius::crypto::verify_accounting_response(
        &replies[0],
        &datagram[4..20].try_into().unwrap(),
        SECRET.as_bytes()
    ));
    let text = metrics(&server);
    assert!(
        text.contains("tessera_accounting_records_total{status=\"start\",result=\"stored\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("result=\"unchanged\""),
        "recorded twice: {text}"
    );
    assert_eq!(sessions(&server, &[]).len(), 1);
}

#[test]
fn a_wrong_secret_is_dropped_and_counted() {
    let server = Server::start_with(&with_metrics());
    let reply = acct(
        &server,
        "not-the-secret",
        &record("Start", "\"s1\"", "\"gw1\"", &[]),
    );
    assert_eq!(reply.code, "none", "{}", reply.output);
    let text = metrics(&server);
    assert!(
        text.contains("tessera_radius_drops_total{cause=\"bad_request_authenticator\"} 1"),
        "{text}"
    );
    assert!(sessions(&server, &[]).is_empty());
}

#[test]
fn accounting_on_closes_the_nas_s_open_sessions() {
    let server = Server::start();
    for (id, nas) in [
        ("\"a\"", "\"gw1\""),
        ("\"b\"", "\"gw1\""),
        ("\"c\"", "\"gw2\""),
    ] {
        acct(&server, SECRET, &record("Start", id, nas, &[])).expect("Accounting-Response");
    }
    assert_eq!(sessions(&server, &["--open"]).len(), 3);
    acct(
        &server,
        SECRET,
        &[
            ("Acct-Status-Type", "Accounting-On"),
            ("NAS-Identifier", "\"gw1\""),
        ],
    )
    .expect("Accounting-Response");
    let open = sessions(&server, &["--open"]);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["nas"], "gw2");
    let closed: Vec<Value> = sessions(&server, &[])
        .into_iter()
        .filter(|s| s["nas"] == "gw1")
        .collect();
    assert_eq!(closed.len(), 2);
    assert!(
        closed.iter().all(|s| s["cause"] == "NAS-Reboot"),
        "{closed:?}"
    );
}

#[test]
fn status_server_is_answered_and_access_requests_dropped_on_the_accounting_port() {
    let server = Server::start_with(&with_metrics());
    let to = accounting_addr(&server);
    radclient_command(to, SECRET, "status", &[("Message-Authenticator", "0x00")])
        .expect("Accounting-Response");
    let reply = radclient_command(
        to,
        SECRET,
        "auth",
        &[
            ("User-Name", "\"alice\""),
            ("User-Password", "\"wonderland\""),
            ("Message-Authenticator", "0x00"),
        ],
    );
    assert_eq!(reply.code, "none", "{}", reply.output);
    let text = metrics(&server);
    assert!(
        text.contains("tessera_radius_drops_total{cause=\"wrong_port\"} 1"),
        "{text}"
    );
}

/// RFC 2866: nothing is acknowledged that was not recorded. With the store's file system full,
/// a Start gets no answer (and is counted); with room again, the NAS's next try is answered
/// and kept.
#[test]
fn a_store_that_cannot_write_leaves_records_unanswered() {
    let fs = Tmpfs::mount("4m");
    let db = fs.path.join("tessera.db");
    let server = Server::start_with(&Setup {
        store: format!("path = \"{}\"\nkey_file = \"tessera.key\"\n", db.display()),
        extra: METRICS.into(),
        ..Setup::default()
    });
    acct(&server, SECRET, &record("Start", "\"s0\"", "\"gw1\"", &[])).expect("Accounting-Response");
    let filler = fs.fill();
    let mut unanswered = false;
    for i in 0..20 {
        let id = format!("\"full-{i}\"");
        if acct(&server, SECRET, &record("Start", &id, "\"gw1\"", &[])).code == "none" {
            unanswered = true;
            break;
        }
    }
    assert!(unanswered, "every record was answered with the store full");
    assert!(
        metrics(&server).contains("tessera_radius_drops_total{cause=\"not_recorded\"}"),
        "counted"
    );
    std::fs::remove_file(&filler).unwrap();
    let mut tries = 0;
    while acct(&server, SECRET, &record("Start", "\"s2\"", "\"gw1\"", &[])).code
        != "Accounting-Response"
    {
        tries += 1;
        assert!(tries < 20, "still unanswered with room on the file system");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        sessions(&server, &[])
            .iter()
            .any(|s| s["session_id"] == "s2"),
        "kept once answered"
    );
}

/// RFC 6614: RadSec carries accounting on the same connection as logins, signed with the
/// secret `radsec`.
#[test]
fn radsec_carries_accounting() {
    use crate::radsec::{PROXY_CLIENT, radsec_setup};
    use crate::util::radsec::TlsClient;
    let ca = testkit::ca::TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    let mut client =
        TlsClient::connect(server.tls_addr.unwrap(), &ca.ca, &cert, &key).expect("connect");
    let mut request = Packet {
        code: Code::ACCOUNTING_REQUEST,
        identifier: 3,
        authenticator: [0; 16],
        attributes: vec![],
    };
    request.push_split(AttributeType(40), &1u32.to_be_bytes());
    request.push_split(AttributeType(44), b"tls-1");
    request.push_split(AttributeType::USER_NAME, b"alice");
    let datagram = sign_accounting_request(&request, b"radsec", true).unwrap();
    client.write(&datagram).unwrap();
    let reply = client.read_packet().expect("an Accounting-Response");
    assert!(tessera::radius::crypto::verify_accounting_response(
        &reply,
        &datagram[4..20].try_into().unwrap(),
        b"radsec"
    ));
    assert_eq!(
        Packet::decode(&reply).unwrap().code,
        Code::ACCOUNTING_RESPONSE
    );
    let row = &sessions(&server, &["--open"])[0];
    assert_eq!(row["session_id"], "tls-1");
    assert_eq!(row["client"], "proxy");
}

/// `max_open_sessions_per_nas`: a Start beyond it is neither kept nor answered, logged once a
/// minute; a Stop makes room again.
#[test]
fn open_sessions_beyond_the_bound_are_not_answered() {
    let server = Server::start_with(&Setup {
        store: "path = \"tessera.db\"\nkey_file = \"tessera.key\"\nmax_open_sessions_per_nas = 1\n"
            .into(),
        ..Setup::default()
    });
    acct(&server, SECRET, &record("Start", "\"a\"", "\"gw1\"", &[])).expect("Accounting-Response");
    for _ in 0..2 {
        let refused = acct(&server, SECRET, &record("Start", "\"b\"", "\"gw1\"", &[]));
        assert_eq!(refused.code, "none", "{}", refused.output);
    }
    assert_eq!(
        server.log_count("the client has max_open_sessions_per_nas open sessions"),
        1,
        "logged once a minute"
    );
    acct(&server, SECRET, &record("Stop", "\"a\"", "\"gw1\"", &[])).expect("Accounting-Response");
    acct(&server, SECRET, &record("Start", "\"b\"", "\"gw1\"", &[])).expect("Accounting-Response");
    assert_eq!(sessions(&server, &["--open"]).len(), 1);
}
