//! RadSec (RADIUS over TLS, RFC 6614): a two-round login through Debian's radsecproxy, client
//! certificates tessera must refuse, and the framing rules with a bare TLS client.

use tessera::radius::codec::{Code, Packet};

use crate::util::radsec::{RadsecProxy, TlsClient};
use crate::util::{Server, Setup};
use testkit::ca::TestCa;

/// tessera with RadSec on a free port, its certificate from `ca`, and `clients` (TOML)
/// besides the default UDP client.
pub(crate) fn radsec_setup(ca: &TestCa, clients: &str) -> Setup {
    let default = Setup::default();
    Setup {
        server: format!(
            "tls_listen = [\"127.0.0.1:0\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            ca.cert.display(),
            ca.key.display(),
            ca.ca.display()
        ),
        clients: format!("{}\n{clients}", default.clients),
        ..default
    }
}

pub(crate) const PROXY_CLIENT: &str =
    "[[client]]\nname = \"proxy\"\ntls_identity = \"nas1.example.org\"\n";

#[test]
fn two_round_login_through_radsecproxy() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    let proxy = RadsecProxy::start(server.tls_addr.unwrap(), &ca.ca, &cert, &key);

    let first = proxy.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    assert_eq!(
        first.get("Reply-Message"),
        Some("sms submitted to +49********678")
    );
    let otp = server.last_otp();
    proxy
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    // It came over TLS, from the client the certificate names.
    let line = server.wait_for_log("RadSec connection open");
    assert!(line.contains("client=proxy"), "{line}");
    assert!(line.contains("transport=\"tls\""), "{line}");
    // The answer to a wrong code, too, goes back through the proxy.
    let again = proxy.auth("alice", "wonderland", None);
    again.expect("Access-Challenge");
    proxy
        .auth("alice", "000000", Some(&again.state()))
        .expect("Access-Reject");
}

#[test]
fn certificates_of_another_ca_or_of_no_client_are_refused() {
    let ca = TestCa::new();
    let (known, known_key) = ca.client_cert("known", "DNS:known.example.org");
    let (stranger, stranger_key) = ca.client_cert("stranger", "DNS:stranger.example.org");
    let other_ca = TestCa::new();
    let (foreign, foreign_key) = other_ca.client_cert("nas1", "DNS:nas1.example.org");
    // `known` by its fingerprint (openssl's colon format), `nas1` by name.
    let clients = format!(
        "{PROXY_CLIENT}\n[[client]]\nname = \"known\"\ntls_identity = \"sha256:{}\"\n",
        TestCa::fingerprint(&known)
    );
    let server = Server::start_with(&radsec_setup(&ca, &clients));
    let tls = server.tls_addr.unwrap();

    // The fingerprint's certificate is let in.
    let proxy = RadsecProxy::start(tls, &ca.ca, &known, &known_key);
    proxy
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    drop(proxy);

    // Same CA, but no client has its name or fingerprint: refused at the handshake.
    let proxy = RadsecProxy::start(tls, &ca.ca, &stranger, &stranger_key);
    proxy.auth("alice", "wonderland", None).expect("none");
    server.wait_for_log("matches no [[client]] tls_identity");
    drop(proxy);

    // The right name, but signed by a CA tessera does not trust: refused.
    let proxy = RadsecProxy::start(tls, &ca.ca, &foreign, &foreign_key);
    proxy.auth("alice", "wonderland", None).expect("none");
    server.wait_for_log("TLS client certificate refused");
    assert!(
        server.log_count("client=proxy") == 0,
        "{}",
        server.log_text()
    );
    // UDP is unharmed.
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

fn status_server(identifier: u8) -> Vec<u8> {
    Packet {
        code: Code::STATUS_SERVER,
        identifier,
        authenticator: [identifier; 16],
        attributes: vec![],
    }
    .encode_request(b"radsec", true)
    .unwrap()
}

#[test]
fn framing_joined_split_too_long_and_garbage() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    let tls = server.tls_addr.unwrap();
    let connect = || TlsClient::connect(tls, &ca.ca, &cert, &key).expect("connect");

    let mut client = connect();
    // Three packets in one write.
    let joined: Vec<u8> = (1..=3).flat_map(status_server).collect();
    client.write(&joined).unwrap();
    let mut ids: Vec<u8> = (0..3)
        .map(|_| {
            let reply = client.read_packet().expect("a reply");
            assert_eq!(reply[0], Code::ACCESS_ACCEPT.0);
            reply[1]
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    // One packet over three writes.
    let packet = status_server(4);
    for part in [&packet[..3], &packet[3..21], &packet[21..]] {
        client.write(part).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(client.read_packet().expect("a reply")[1], 4);

    // A Length beyond 4096: dropped, the connection closed.
    let mut too_long = status_server(5);
    too_long[2..4].copy_from_slice(&4097u16.to_be_bytes());
    too_long.resize(4097, 0);
    client.write(&too_long).unwrap();
    assert_eq!(client.read_packet(), None, "the connection must be closed");

    // Garbage: the same.
    let mut client = connect();
    client.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(client.read_packet(), None, "the connection must be closed");

    // A well-framed packet that is not RADIUS (an attribute overruns Length): the same.
    let mut client = connect();
    let mut bad = status_server(6);
    bad[21] = 200;
    client.write(&bad).unwrap();
    assert_eq!(client.read_packet(), None, "the connection must be closed");

    // The server goes on.
    let mut client = connect();
    client.write(&status_server(7)).unwrap();
    assert_eq!(client.read_packet().expect("a reply")[1], 7);
    assert!(
        server.log_count_reaching("cause=\"malformed\"", 1) >= 1,
        "{}",
        server.log_text()
    );
}

#[test]
fn sighup_reloads_radsec_clients_and_certificates_and_reports_the_expiry() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas2", "DNS:nas2.example.org");
    let mut setup = radsec_setup(&ca, PROXY_CLIENT);
    setup.extra = "[metrics]\nlisten = \"127.0.0.1:0\"\n".into();
    let server = Server::start_with(&setup);
    let tls = server.tls_addr.unwrap();
    // The TestCa certificate lives two days: warned about, and its expiry is a metric.
    server.wait_for_log("RadSec server certificate expires within 30 days");
    let (_, metrics) = server.http_get("/metrics");
    let expiry: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_tls_certificate_expiry_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no expiry metric in:\n{metrics}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry > now && expiry < now + 3 * 86_400, "{expiry}");

    // nas2 is no client yet: refused.
    let refused = TlsClient::connect(tls, &ca.ca, &cert, &key).map(|mut c| {
        let _ = c.write(&status_server(1));
        c.read_packet()
    });
    assert!(matches!(refused, Err(_) | Ok(None)), "{refused:?}");

    // Add it and reload: the new configuration's client check takes the next connection.
    let path = server.dir.path().join("tessera.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[[client]]\nname = \"nas2\"\ntls_identity = \"nas2.example.org\"\n"),
    )
    .unwrap();
    // And a new server certificate (another CA's) in place of the old files.
    let renewed = TestCa::new();
    std::fs::copy(&renewed.cert, &ca.cert).unwrap();
    std::fs::copy(&renewed.key, &ca.key).unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    let mut client = TlsClient::connect(tls, &renewed.ca, &cert, &key).expect("connect");
    client.write(&status_server(2)).unwrap();
    assert_eq!(client.read_packet().expect("a reply")[1], 2);
    // A client that trusts only the old CA no longer accepts the server.
    assert!(TlsClient::connect(tls, &ca.ca, &cert, &key).is_err());
}

/// Runs the independent Python client (`util/radius11_client.py`) once.
fn python_client(
    server: &Server,
    ca: &TestCa,
    cert: &std::path::Path,
    key: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let port = server.tls_addr.unwrap().port().to_string();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/util/radius11_client.py"
        ))
        .args(["--port", &port, "--ca"])
        .arg(&ca.ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(extra)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "client output: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn radius_1_1_two_round_login_with_token_and_clear_password() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    let round = |password: &str, state: &str| {
        let mut args = vec![
            "--alpn",
            "radius/1.0,radius/1.1",
            "--user",
            "alice",
            "--password",
            password,
        ];
        if !state.is_empty() {
            args.extend(["--state", state]);
        }
        python_client(&server, &ca, &cert, &key, &args)
    };
    let first = round("wonderland", "");
    assert_eq!(first["alpn"], "radius/1.1", "{first}");
    assert_eq!(first["code"], Code::ACCESS_CHALLENGE.0, "{first}");
    assert_eq!(first["reply_message"], "sms submitted to +49********678");
    assert_eq!(first["reserved1"], 0, "{first}");
    assert_eq!(first["token_echoed"], true, "{first}");
    assert_eq!(first["reserved2_zero"], true, "{first}");
    assert_eq!(first["has_message_authenticator"], false, "{first}");
    let state = first["state"].as_str().unwrap().to_string();
    let second = round(&server.last_otp(), &state);
    assert_eq!(second["code"], Code::ACCESS_ACCEPT.0, "{second}");
    assert_eq!(second["token_echoed"], true, "{second}");
    assert_eq!(second["has_message_authenticator"], false, "{second}");
    server.wait_for_log("transport=\"radius/1.1\"");

    // A Message-Authenticator sent anyway is ignored, not a reason to drop (RFC 9765 §5.2).
    let with_ma = python_client(
        &server,
        &ca,
        &cert,
        &key,
        &[
            "--user",
            "carol",
            "--password",
            "wrong",
            "--with-message-authenticator",
        ],
    );
    assert_eq!(with_ma["code"], Code::ACCESS_REJECT.0, "{with_ma}");
}

#[test]
fn radius_1_0_or_no_alpn_keeps_radsec_and_1_1_needs_tls_1_3() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    for alpn in ["radius/1.0", "none"] {
        let reply = python_client(
            &server,
            &ca,
            &cert,
            &key,
            &[
                "--alpn",
                alpn,
                "--user",
                "alice",
                "--password",
                "wonderland",
            ],
        );
        let expected_alpn = if alpn == "none" {
            serde_json::Value::Null
        } else {
            alpn.into()
        };
        assert_eq!(reply["alpn"], expected_alpn, "{reply}");
        assert_eq!(reply["code"], Code::ACCESS_CHALLENGE.0, "{reply}");
        assert_eq!(reply["has_message_authenticator"], true, "{reply}");
        assert_eq!(reply["response_authenticator_ok"], true, "{reply}");
    }
    // An ALPN name tessera does not speak: the handshake fails.
    let reply = python_client(
        &server,
        &ca,
        &cert,
        &key,
        &[
            "--alpn",
            "http/1.1",
            "--user",
            "alice",
            "--password",
            "wonderland",
        ],
    );
    assert!(reply.get("error").is_some(), "{reply}");
    // RADIUS/1.1 over TLS 1.2 is refused (RFC 9765 §3.4).
    let reply = python_client(
        &server,
        &ca,
        &cert,
        &key,
        &[
            "--alpn",
            "radius/1.1",
            "--tls12",
            "--user",
            "alice",
            "--password",
            "wonderland",
        ],
    );
    assert_eq!(reply["alpn"], "radius/1.1", "{reply}");
    assert!(reply.get("error").is_some(), "{reply}");
}

#[test]
fn connection_limit_and_idle_timeout_close_connections() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let mut setup = radsec_setup(&ca, PROXY_CLIENT);
    setup
        .server
        .push_str("tls_max_connections = 1\ntls_idle_timeout_seconds = 1\n");
    let server = Server::start_with(&setup);
    let tls = server.tls_addr.unwrap();
    let connect = || TlsClient::connect(tls, &ca.ca, &cert, &key);

    let mut first = connect().expect("connect");
    first.write(&status_server(1)).unwrap();
    assert_eq!(first.read_packet().expect("a reply")[1], 1);
    // A second connection while the first is open: closed on accept, counted.
    let second = connect().and_then(|mut c| {
        c.write(&status_server(2))?;
        Ok(c.read_packet())
    });
    assert!(matches!(second, Err(_) | Ok(None)), "{second:?}");
    server.wait_for_log("too many RadSec connections");
    // The first one, left silent, is closed by the idle timeout ...
    assert_eq!(
        first.read_packet(),
        None,
        "the idle connection must be closed"
    );
    server.wait_for_log("reason=\"idle timeout\"");
    // ... which frees its place.
    let mut third = connect().expect("connect");
    third.write(&status_server(3)).unwrap();
    assert_eq!(third.read_packet().expect("a reply")[1], 3);
}

#[test]
fn a_resent_request_gets_the_cached_reply_on_its_connection_only() {
    use tessera::radius::codec::AttributeType;
    use tessera::radius::crypto::hide_password;
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&radsec_setup(&ca, PROXY_CLIENT));
    let tls = server.tls_addr.unwrap();
    let authenticator = [7u8; 16];
    let mut request = Packet {
        code: Code::ACCESS_REQUEST,
        identifier: 42,
        authenticator,
        attributes: vec![],
    };
    request.push_split(AttributeType::USER_NAME, b"alice");
    request.push_split(
        AttributeType::USER_PASSWORD,
        &hide_password(b"wonderland", &authenticator, b"radsec"),
    );
    let bytes = request.encode_request(b"radsec", true).unwrap();

    let mut client = TlsClient::connect(tls, &ca.ca, &cert, &key).expect("connect");
    client.write(&bytes).unwrap();
    let first = client.read_packet().expect("a reply");
    assert_eq!(first[0], Code::ACCESS_CHALLENGE.0);
    // The same request again on the same connection: the same reply, byte for byte, and no
    // second SMS.
    client.write(&bytes).unwrap();
    assert_eq!(client.read_packet().expect("a reply"), first);
    assert_eq!(server.spool().len(), 1);
    // On another connection it is a new request: the engine answers it (the code was sent
    // already, so the message says so).
    let mut other = TlsClient::connect(tls, &ca.ca, &cert, &key).expect("connect");
    other.write(&bytes).unwrap();
    let fresh = other.read_packet().expect("a reply");
    assert_eq!(fresh[0], Code::ACCESS_CHALLENGE.0);
    assert_ne!(fresh, first);
    let fresh = Packet::decode(&fresh).unwrap();
    let message = fresh.get(AttributeType::REPLY_MESSAGE).unwrap();
    assert!(
        String::from_utf8_lossy(message).contains("already submitted"),
        "{}",
        String::from_utf8_lossy(message)
    );
}

/// An Access-Request as a RadSec client sends it (secret `radsec`, Message-Authenticator).
pub(crate) fn access_request(identifier: u8, user: &str, password: &str) -> Vec<u8> {
    answer_request(identifier, user, password, None)
}

/// As [`access_request`], answering the challenge whose State is `state` when given.
pub(crate) fn answer_request(
    identifier: u8,
    user: &str,
    password: &str,
    state: Option<&[u8]>,
) -> Vec<u8> {
    use tessera::radius::codec::AttributeType;
    let authenticator = [identifier; 16];
    let mut request = Packet {
        code: Code::ACCESS_REQUEST,
        identifier,
        authenticator,
        attributes: vec![],
    };
    request.push_split(AttributeType::USER_NAME, user.as_bytes());
    request.push_split(
        AttributeType::USER_PASSWORD,
        &tessera::radius::crypto::hide_password(password.as_bytes(), &authenticator, b"radsec"),
    );
    if let Some(state) = state {
        request.push_split(AttributeType::STATE, state);
    }
    request.encode_request(b"radsec", true).unwrap()
}

#[test]
fn requests_in_flight_per_connection_are_capped_by_not_reading() {
    // The SMS gateway takes 1.5 s, so alice's first round is in flight that long.
    let gateway = crate::util::peers::http_gateway(200, "ok", &["--delay", "1.5"]);
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let order = |limit: &str| {
        let mut setup = radsec_setup(&ca, PROXY_CLIENT);
        setup.server.push_str(limit);
        setup.providers = format!(
            "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{}\"\ntimeout = 5\n\n\
             [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
            gateway.url("/send")
        );
        let server = Server::start_with(&setup);
        let mut client =
            TlsClient::connect(server.tls_addr.unwrap(), &ca.ca, &cert, &key).expect("connect");
        // Both in one write: alice's login, then a Status-Server.
        let mut both = access_request(1, "alice", "wonderland");
        both.extend(status_server(2));
        client.write(&both).unwrap();
        let first = client.read_packet().expect("a reply");
        let second = client.read_packet().expect("a reply");
        (first[1], second[1])
    };
    // With one request in flight per connection, the Status-Server is read only once alice's
    // request is answered; without the cap it overtakes it.
    assert_eq!(order("tls_max_in_flight_per_connection = 1\n"), (1, 2));
    assert_eq!(order(""), (2, 1));
}
