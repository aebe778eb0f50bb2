//! RADIUS conformance at the edges: who gets an answer, Message-Authenticator, Proxy-State,
//! Status-Server, retransmits and hostile datagrams.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};
use tessera::radius::crypto;

use crate::util::{SECRET, Server, Setup, quote, radclient};

/// How long a [`RawClient`] waits for an answer. Every caller expects one, so a long wait costs
/// nothing when things go right; it sends once (no retransmit), and a first login that enrolls
/// on PostgreSQL on a loaded machine can take seconds.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A raw client for what radclient cannot do (resending identical bytes, garbage).
pub(crate) struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl RawClient {
    pub(crate) fn new(server: SocketAddr) -> RawClient {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        RawClient { socket, server }
    }

    pub(crate) fn access_request(
        id: u8,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
    ) -> (Vec<u8>, [u8; 16]) {
        Self::access_request_with(SECRET, id, user, password, state)
    }

    /// An Access-Request signed with `secret` (a wrong one makes a wrong Message-Authenticator).
    fn access_request_with(
        secret: &str,
        id: u8,
        user: &str,
        password: &str,
        state: Option<&[u8]>,
    ) -> (Vec<u8>, [u8; 16]) {
        let mut authenticator = [0u8; 16];
        getrandom::fill(&mut authenticator).unwrap();
        let mut packet = Packet {
            code: Code::ACCESS_REQUEST,
            identifier: id,
            authenticator,
            attributes: vec![],
        };
        packet.attributes.push(Attribute {
            typ: AttributeType::USER_NAME,
            value: user.as_bytes().to_vec(),
        });
        let hidden = crypto::hide_password(password.as_bytes(), &authenticator, secret.as_bytes());
        packet.attributes.push(Attribute {
            typ: AttributeType::USER_PASSWORD,
            value: hidden,
        });
        if let Some(state) = state {
            packet.attributes.push(Attribute {
                typ: AttributeType::STATE,
                value: state.to_vec(),
            });
        }
        (
            packet.encode_request(secret.as_bytes(), true).unwrap(),
            authenticator,
        )
    }

    pub(crate) fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).unwrap();
    }

    /// The server's next datagram; `None` when none came within [`RECEIVE_TIMEOUT`]. A wait
    /// ended early by EINTR waits on for the rest of the time: with a receive timeout set,
    /// Linux ends a `recvfrom` that a signal or a stop and continue (a frozen test process)
    /// interrupts instead of restarting it, and the test took that for "no answer". A
    /// datagram from anywhere else (a late reply to an earlier owner of this port) is not it.
    pub(crate) fn receive(&self) -> Option<Vec<u8>> {
        let deadline = Instant::now() + RECEIVE_TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())?;
            self.socket.set_read_timeout(Some(left)).unwrap();
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) => panic!("receiving from {}: {e}", self.server),
            }
        }
    }
}

/// The raw client waits through a stop and continue of the test process (a CI runner freezing
/// it, say): Linux ends a receive with a timeout on EINTR, and the client once took that for
/// "no answer" and failed tests whose server had answered. The answer here comes after the
/// process was stopped and continued.
#[test]
fn the_raw_client_waits_through_a_stop_and_continue() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap();
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, from) = server.recv_from(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        server.send_to(b"answer", from).unwrap();
    });
    let client = RawClient::new(address);
    client.send(b"request");
    let mut stop_and_continue = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep 0.2; kill -STOP {pid}; sleep 0.1; kill -CONT {pid}",
            pid = std::process::id()
        ))
        .spawn()
        .unwrap();
    assert_eq!(client.receive(), Some(b"answer".to_vec()));
    assert!(stop_and_continue.wait().unwrap().success());
    answering.join().unwrap();
}

#[test]
fn unknown_client_and_wrong_secret_get_no_answer() {
    let setup = Setup {
        clients: "[[client]]\naddress = \"127.0.0.2\"\nsecret = \"testing123\"\n".into(),
        ..Setup::default()
    };
    let server = Server::start_with(&setup);
    server.auth("alice", "wonderland", None).expect("none");
    server.wait_for_log("cause=\"unknown_client\"");

    let server = Server::start();
    let attrs = [
        ("User-Name", "\"alice\""),
        ("User-Password", "\"wonderland\""),
        ("Message-Authenticator", "0x00"),
    ];
    radclient(server.addr, "not-the-secret", &attrs).expect("none");
    server.wait_for_log("cause=\"bad_message_authenticator\"");
    assert!(server.spool().is_empty());
}

#[test]
fn message_authenticator_required_by_default_optional_per_client() {
    let server = Server::start();
    let attrs = [
        ("User-Name", "\"alice\""),
        ("User-Password", "\"wonderland\""),
    ];
    server.radclient(&attrs).expect("none");
    server.wait_for_log("cause=\"missing_message_authenticator\"");

    let setup = Setup {
        clients: "[[client]]\naddress = \"127.0.0.0/8\"\nsecret = \"testing123\"\nrequire_message_authenticator = false\n".into(),
        ..Setup::default()
    };
    let lenient = Server::start_with(&setup);
    let reply = lenient.radclient(&attrs);
    reply.expect("Access-Challenge");
    assert_eq!(
        reply.attrs[0].0, "Message-Authenticator",
        "replies always carry it, first"
    );
    // limit_proxy_state (on by default): Proxy-State without Message-Authenticator is dropped.
    let with_proxy = [
        ("User-Name", "\"alice\""),
        ("User-Password", "\"wonderland\""),
        ("Proxy-State", "0x01"),
    ];
    lenient.radclient(&with_proxy).expect("none");
    lenient.wait_for_log("cause=\"proxy_state_without_message_authenticator\"");
}

#[test]
fn proxy_state_is_echoed_in_order() {
    let server = Server::start();
    let attrs = [
        ("User-Name", "\"mallory\""),
        ("User-Password", "\"x\""),
        ("Proxy-State", "0x6669727374"),
        ("Proxy-State", "0x7365636f6e64"),
        ("Message-Authenticator", "0x00"),
    ];
    let reply = server.radclient(&attrs);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get_all("Proxy-State"),
        vec!["0x6669727374", "0x7365636f6e64"]
    );
}

#[test]
fn status_server_is_answered_with_access_accept() {
    let server = Server::start();
    let reply = server.status_server();
    reply.expect("Access-Accept");
    assert_eq!(reply.attrs[0].0, "Message-Authenticator");
}

#[test]
fn retransmit_gets_the_cached_reply_and_the_otp_is_checked_once() {
    let server = Server::start();
    let client = RawClient::new(server.addr);
    let (first, auth) = RawClient::access_request(1, "alice", "wonderland", None);
    client.send(&first);
    let challenge = client.receive().expect("challenge");
    assert!(crypto::verify_response(
        &challenge,
        &auth,
        SECRET.as_bytes()
    ));
    let challenge = Packet::decode(&challenge).unwrap();
    assert_eq!(challenge.code, Code::ACCESS_CHALLENGE);
    let state = challenge.get(AttributeType::STATE).unwrap().to_vec();

    let (answer, auth) = RawClient::access_request(2, "alice", &server.last_otp(), Some(&state));
    client.send(&answer);
    let accept = client.receive().expect("accept");
    assert!(crypto::verify_response(&accept, &auth, SECRET.as_bytes()));
    assert_eq!(Packet::decode(&accept).unwrap().code, Code::ACCESS_ACCEPT);
    // The NAS lost our reply and sends the very same datagram again.
    client.send(&answer);
    let again = client.receive().expect("cached reply");
    assert_eq!(again, accept, "byte-for-byte the same reply");
    // Same Identifier, new authenticator: a new request, and the OTP is spent.
    let (replay, _) = RawClient::access_request(2, "alice", &server.last_otp(), Some(&state));
    client.send(&replay);
    assert_eq!(
        Packet::decode(&client.receive().unwrap()).unwrap().code,
        Code::ACCESS_REJECT
    );
    assert_eq!(
        server.log_text().matches("result=\"accept\"").count(),
        1,
        "verified once"
    );
    assert_eq!(server.spool().len(), 1, "sent once");
}

#[test]
fn hostile_datagrams_are_dropped_and_the_server_keeps_answering() {
    let server = Server::start();
    let client = RawClient::new(server.addr);
    let (valid, _) = RawClient::access_request(7, "mallory", "x", None);
    let mut bad_attr = valid.clone();
    bad_attr[21] = 1; // first attribute length 1
    let mut overrun = valid.clone();
    overrun[21] = 200;
    let mut long_len = valid.clone();
    long_len[2] = 0x10;
    long_len[3] = 0x01; // Length 4097
    let mut short = valid.clone();
    short.truncate(valid.len() - 3);
    let mut accounting = valid.clone();
    accounting[0] = 4;
    for garbage in [
        vec![],
        vec![1u8; 5],
        vec![0xff; 4096],
        vec![1u8; 6000],
        bad_attr,
        overrun,
        long_len,
        short,
        accounting,
    ] {
        client.send(&garbage);
    }
    client.send(&valid);
    let reply = Packet::decode(&client.receive().expect("a reply to the valid request")).unwrap();
    assert_eq!(reply.code, Code::ACCESS_REJECT);
    assert_eq!(reply.identifier, 7);
    server.wait_for_log("cause=\"malformed\"");
    server.wait_for_log("cause=\"unsupported_code\"");
}

#[test]
fn long_passwords_and_non_utf8_user_names() {
    let server = Server::start();
    // 128-octet password: the longest RFC 2865 allows.
    let long = "p".repeat(128);
    server.auth("alice", &long, None).expect("Access-Reject");
    let attrs = [
        ("User-Name", "0xff fe".replace(' ', "")),
        ("User-Password", quote("x")),
        ("Message-Authenticator", "0x00".into()),
    ];
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server.radclient(&attrs).expect("Access-Reject");
}

#[test]
fn ipv6_client_on_loopback() {
    let setup = Setup {
        clients: "[[client]]\naddress = \"::1/128\"\nsecret = \"testing123\"\n".into(),
        listen: vec!["[::1]:0".into()],
        ..Setup::default()
    };
    let server = Server::start_with(&setup);
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

#[test]
fn debug_log_names_attributes_from_the_dictionary_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &Setup::default());
    let server = Server::start_logging(dir, &config, "info,tessera::radius::handler=debug");
    let attrs = [
        ("User-Name", quote("alice")),
        ("User-Password", quote("wonderland")),
        ("Service-Type", "Framed-User".into()),
        ("Cisco-AVPair", quote("shell:priv-lvl=15")),
        ("Message-Authenticator", "0x00".into()),
    ];
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server.radclient(&attrs).expect("Access-Challenge");
    // One field in the human log: the list quoted, its quotes escaped (issue 23).
    let line = server.wait_for_log("attributes=\"User-Name = \\\"alice\\\"");
    assert!(line.contains("User-Password = ***"), "{line}");
    assert!(line.contains("Service-Type = Framed-User"), "{line}");
    assert!(
        line.contains("Cisco-AVPair = \\\"shell:priv-lvl=15\\\""),
        "{line}"
    );
    assert!(!server.log_text().contains("wonderland"));
}

/// Issue 13: requests dropped after the reply-cache lookup (here: a wrong Message-Authenticator,
/// which anyone who can send from a client's address can produce) once left their keys in the
/// cache's age queue for its whole lifetime, so a flood grew memory without limit. The cache
/// now holds at most its size, and the dropped requests nothing at all.
#[test]
fn issue_13_reply_cache_stays_bounded_under_a_flood_of_dropped_requests() {
    let setup = Setup {
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &setup);
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[server]\n",
        "[server]\nreply_cache_size = 50\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start_in(dir, &config);
    let dropped = |body: &str| {
        body.lines()
            .find_map(|l| {
                l.strip_prefix("tessera_radius_drops_total{cause=\"bad_message_authenticator\"} ")
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let entries = |body: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix("tessera_reply_cache_entries "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no tessera_reply_cache_entries in:\n{body}"))
    };

    // The flood: each datagram a new request with a wrong Message-Authenticator, sent in
    // bursts smaller than the cache (a full cache hid the leak: making room swept the queue).
    let flood = RawClient::new(server.addr);
    let mut sent = 0u64;
    for burst in 0..300u32 {
        for i in 0..10u32 {
            let (bad, _) =
                RawClient::access_request_with("not-the-secret", (i % 256) as u8, "x", "x", None);
            flood.send(&bad);
            sent += 1;
        }
        // Let the server catch up before the next burst, so the kernel drops nothing.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while dropped(&server.http_get("/metrics").1) < sent {
            assert!(
                std::time::Instant::now() < deadline,
                "burst {burst}: the server did not see every datagram"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let (_, body) = server.http_get("/metrics");
    assert_eq!(dropped(&body), 3000);
    assert!(
        entries(&body) <= 50,
        "3000 dropped requests left entries behind:\n{body}"
    );
    // Answered requests then fill the cache to its size, and no further.
    let client = RawClient::new(server.addr);
    for i in 0..120u32 {
        let (valid, _) = RawClient::access_request((i % 256) as u8, "mallory", "x", None);
        client.send(&valid);
        client.receive().expect("a reject");
    }
    let (_, body) = server.http_get("/metrics");
    assert!(entries(&body) <= 50, "{body}");

    // And the server still answers, from the cache for a retransmit.
    let (valid, _) = RawClient::access_request(9, "mallory", "x", None);
    client.send(&valid);
    let first = client.receive().expect("a reply");
    client.send(&valid);
    assert_eq!(client.receive().expect("the cached reply"), first);
}

/// Issue 23 (9): an Accept whose reply attributes together overflow the 4,096 octets of a
/// packet could not be encoded: nothing was sent, the audit said `accept`, and every
/// retransmit was decided and audited again. The engine now measures the Accept against the
/// room the request leaves (less its Proxy-State, which the reply echoes) and decides a Reject
/// that fits, audited once with its reason; the retransmit gets the cached Reject.
#[test]
fn issue_23_a_reply_too_long_for_one_packet_is_one_audited_reject() {
    let class = |n: usize| {
        (0..n)
            .map(|i| format!("\"Class = {i:02}{}\"", "c".repeat(198)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut setup = Setup::default();
    // Everyone: 18 Class of 200 octets (3,636 octets of attributes), which fit; bob: 21,
    // which do not.
    setup.policies.push_str(&format!(
        "\n[[policy]]\nname = \"many\"\nscope = \"authentication\"\nreply = [{}]\n\
         \n[[policy]]\nname = \"too-many\"\nscope = \"authentication\"\nuser = \"bob\"\n\
         reply = [{}]\n",
        class(18),
        class(21)
    ));
    let server = Server::start_with(&setup);

    // alice: her Accept fits, with all 18.
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let accept = server.auth("alice", &server.last_otp(), Some(&first.state()));
    accept.expect("Access-Accept");
    assert_eq!(
        accept.attrs.iter().filter(|(k, _)| k == "Class").count(),
        18,
        "{}",
        accept.output
    );

    // bob: 21 never fit, and radclient hears a Reject.
    let first = server.auth("bob", "builder", None);
    first.expect("Access-Challenge");
    let reject = server.auth("bob", &server.last_otp(), Some(&first.state()));
    reject.expect("Access-Reject");
    assert_eq!(reject.get("Class"), None, "{}", reject.output);

    // dave: 18 fit, but not beside the 765 octets of his NAS's Proxy-State; and the NAS,
    // having heard nothing yet, resends.
    let client = RawClient::new(server.addr);
    let (request, _) = proxied_for_dave(1, "davepw", None);
    client.send(&request);
    let challenge = Packet::decode(&client.receive().expect("challenge")).unwrap();
    assert_eq!(challenge.code, Code::ACCESS_CHALLENGE);
    let state = challenge.get(AttributeType::STATE).unwrap().to_vec();
    let (answer, authenticator) = proxied_for_dave(2, &server.last_otp(), Some(&state));
    client.send(&answer);
    let reply = client.receive().expect("an answer, not silence");
    assert!(crypto::verify_response(
        &reply,
        &authenticator,
        SECRET.as_bytes()
    ));
    let decoded = Packet::decode(&reply).unwrap();
    assert_eq!(decoded.code, Code::ACCESS_REJECT);
    assert_eq!(decoded.get_all(AttributeType::PROXY_STATE).count(), 3);
    client.send(&answer);
    assert_eq!(
        client.receive(),
        Some(reply),
        "the cached Reject, byte for byte"
    );

    for user in ["bob", "dave"] {
        assert_one_reply_too_long_row(&server, user);
    }
    assert_eq!(
        server.log_count_reaching("reply attributes do not fit in one reply", 2),
        2,
        "{}",
        server.log_text()
    );
}

/// dave's Access-Request from behind three proxies: 765 octets of Proxy-State the reply must
/// echo.
fn proxied_for_dave(id: u8, password: &str, state: Option<&[u8]>) -> (Vec<u8>, [u8; 16]) {
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let mut packet = Packet {
        code: Code::ACCESS_REQUEST,
        identifier: id,
        authenticator,
        attributes: vec![],
    };
    let hidden = crypto::hide_password(password.as_bytes(), &authenticator, SECRET.as_bytes());
    packet.push_split(AttributeType::USER_NAME, b"dave");
    packet.push_split(AttributeType::USER_PASSWORD, &hidden);
    if let Some(state) = state {
        packet.push_split(AttributeType::STATE, state);
    }
    for hop in [b'a', b'b', b'c'] {
        packet.push_split(AttributeType::PROXY_STATE, &[hop; 253]);
    }
    (
        packet.encode_request(SECRET.as_bytes(), true).unwrap(),
        authenticator,
    )
}

/// `user`'s second round is in the audit once, as a Reject for a reply too long.
fn assert_one_reply_too_long_row(server: &Server, user: &str) {
    server.wait_for_log(&format!("user={user} realm=local result=\"reject\""));
    // The audit row is committed with the store's next write: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (out, rows) = loop {
        let (code, out, err) = server.cli(&["audit", "--user", user, "--json"], "");
        assert_eq!(code, 0, "{err}");
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        let answered = rows
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "answer challenge");
        if answered || Instant::now() > deadline {
            break (out, rows);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let second: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "answer challenge")
        .collect();
    assert_eq!(second.len(), 1, "{user}: one decision, one row:\n{out}");
    assert_eq!(second[0]["result"], "reject", "{out}");
    let reason = second[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("reply too long: the reply attributes take ")
            && reason.contains("one reply has room for"),
        "{reason}"
    );
}
