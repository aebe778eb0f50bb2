//! EAP over RADIUS (issue 26) against wpa_supplicant's `eapol_test`, the real supplicant and
//! NAS: outer EAP-GTC, EAP-TTLS with inner PAP, EAP-TTLS and PEAPv0 with inner EAP-GTC in two
//! rounds (the code answered on the control interface, read from the spool), TLS 1.2 and 1.3,
//! a wrong code, a server certificate the supplicant does not trust. A run that expects keys
//! passes only when the MS-MPPE-Recv-Key tessera sent equals eapol_test's own MSK.

use tessera::otp::hotp;
use testkit::ca::TestCa;
use testkit::eapol;

use crate::util::{SECRET, Server, Setup};

/// "12345678901234567890" in hex: RFC 4226's test seed; its first codes are 755224, 287082.
pub(crate) const SEED_HEX: &str = "3132333435363738393031323334353637383930";

/// tessera with `[eap] methods` and the CA's server certificate.
fn start(ca: &TestCa, methods: &str) -> Server {
    Server::start_with(&Setup {
        extra: format!(
            "[eap]\nmethods = [{methods}]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            ca.cert.display(),
            ca.key.display()
        ),
        ..Setup::default()
    })
}

/// Enrolls an HOTP token with the RFC seed for alice (her password is then the PIN: otppin=1).
fn enroll_hotp(server: &Server) {
    let (code, _, err) = server.cli(
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
}

/// What OpenSSL logs for a message only a TLS 1.3 handshake has.
const TLS13_HANDSHAKE: &str = "TLSv1.3 read encrypted extensions";

pub(crate) fn code(counter: u64) -> String {
    hotp(b"12345678901234567890", counter, 6)
}

fn tunnel(ca: &TestCa, method: &str, phase1: &str, phase2: &str, password: &str) -> String {
    format!(
        "key_mgmt=WPA-EAP\neap={method}\nidentity=\"alice\"\nanonymous_identity=\"anonymous\"\n\
         ca_cert=\"{}\"\nphase1=\"{phase1}\"\nphase2=\"{phase2}\"\n{password}",
        ca.ca.display()
    )
}

fn no_prompt(prompt: &str) -> Option<String> {
    panic!("unexpected prompt {prompt:?}")
}

#[test]
fn outer_gtc_takes_password_and_code_in_one_field() {
    let ca = TestCa::new();
    let server = start(&ca, "\"gtc\"");
    enroll_hotp(&server);
    let network = format!(
        "key_mgmt=NONE\neap=GTC\nidentity=\"alice\"\npassword=\"wonderland{}\"",
        code(0)
    );
    let run = eapol::run(server.addr, SECRET, &network, false, no_prompt);
    assert!(run.succeeded(), "{}", run.output);
    let (_, audit, _) = server.cli(&["audit"], "");
    assert!(audit.contains("test-nas eap-gtc"), "{audit}");
}

#[test]
fn ttls_with_inner_pap_over_tls_1_2_sends_the_keys() {
    let ca = TestCa::new();
    // TTLS is not the first method: the supplicant's Nak picks it.
    let server = start(&ca, "\"peap\", \"ttls\"");
    enroll_hotp(&server);
    // The supplicant cuts its TLS messages into 100-octet fragments: tessera reassembles them.
    let network = tunnel(
        &ca,
        "TTLS",
        "tls_disable_tlsv1_3=1",
        "auth=PAP",
        &format!("password=\"wonderland{}\"\nfragment_size=100", code(0)),
    );
    let run = eapol::run(server.addr, SECRET, &network, true, no_prompt);
    assert!(run.succeeded(), "{}", run.output);
    assert!(run.output.contains("MPPE keys OK: 1"), "{}", run.output);
    assert!(!run.output.contains(TLS13_HANDSHAKE), "{}", run.output);
    assert!(
        run.output
            .contains("sending 100 bytes, more fragments will follow"),
        "{}",
        run.output
    );
    // The outer identity decided nothing: the audit has alice, and the NAS gets her name.
    assert_eq!(
        accepted_user_name(&run.output).as_deref(),
        Some("alice"),
        "{}",
        run.output
    );
    let (_, audit, _) = server.cli(&["audit"], "");
    assert!(
        audit.contains("eap-ttls/pap") && audit.contains("alice"),
        "{audit}"
    );
    // The same code again is a replay: EAP-Failure, Access-Reject.
    let replay = eapol::run(server.addr, SECRET, &network, true, no_prompt);
    assert!(!replay.succeeded(), "{}", replay.output);
    assert!(replay.output.contains("Access-Reject"), "{}", replay.output);
}

/// The User-Name of the Access-Accept eapol_test received (its dump of the RADIUS message:
/// `Attribute 1 (User-Name) length=7` then `Value: 'alice'`), if it had one.
fn accepted_user_name(output: &str) -> Option<String> {
    let (_, accept) = output.rsplit_once("(Access-Accept)")?;
    let accept = accept.split("RADIUS message:").next()?;
    let (_, attribute) = accept.split_once("(User-Name)")?;
    let (_, value) = attribute.split_once("Value: '")?;
    Some(value.split_once('\'')?.0.to_string())
}

/// The two rounds: the password to the first GTC request, the SMS code to the second, whose
/// text is tessera's challenge message.
fn two_rounds(server: &Server, network: &str) -> eapol::Outcome {
    eapol::run(server.addr, SECRET, network, true, |prompt| {
        if prompt == "Password: " {
            Some("wonderland".into())
        } else {
            Some(server.last_otp())
        }
    })
}

#[test]
fn ttls_with_inner_gtc_in_two_rounds_over_tls_1_3() {
    let ca = TestCa::new();
    let server = start(&ca, "\"ttls\"");
    let network = tunnel(&ca, "TTLS", "tls_disable_tlsv1_3=0", "autheap=GTC", "");
    let run = two_rounds(&server, &network);
    assert!(run.succeeded(), "{}", run.output);
    assert!(run.output.contains("MPPE keys OK: 1"), "{}", run.output);
    assert_eq!(run.prompts.len(), 2, "{:?}", run.prompts);
    assert_ne!(run.prompts[1], "Password: ");
    assert!(run.output.contains(TLS13_HANDSHAKE), "{}", run.output);
    let (_, audit, _) = server.cli(&["audit"], "");
    assert!(audit.contains("eap-ttls/gtc"), "{audit}");
}

#[test]
fn peap_with_inner_gtc_in_two_rounds_over_tls_1_2_and_1_3() {
    let ca = TestCa::new();
    let server = start(&ca, "\"peap\"");
    for phase1 in [
        "peapver=0 tls_disable_tlsv1_3=1",
        "peapver=0 tls_disable_tlsv1_3=0",
    ] {
        let network = tunnel(&ca, "PEAP", phase1, "auth=GTC", "");
        let run = two_rounds(&server, &network);
        assert!(run.succeeded(), "{phase1}: {}", run.output);
        assert!(run.output.contains("MPPE keys OK: 1"), "{}", run.output);
        assert_eq!(run.prompts.len(), 2, "{:?}", run.prompts);
        // The inner identity, not `anonymous`, for the NAS's accounting.
        let user = accepted_user_name(&run.output);
        assert_eq!(user.as_deref(), Some("alice"), "{}", run.output);
        let tls13 = run.output.contains(TLS13_HANDSHAKE);
        assert_eq!(tls13, phase1.ends_with("=0"), "{phase1}: {}", run.output);
    }
}

#[test]
fn a_wrong_code_is_eap_failure_and_access_reject() {
    let ca = TestCa::new();
    let server = start(&ca, "\"ttls\"");
    let network = tunnel(&ca, "TTLS", "", "autheap=GTC", "");
    let run = eapol::run(server.addr, SECRET, &network, true, |prompt| {
        Some(
            if prompt == "Password: " {
                "wonderland"
            } else {
                "000000"
            }
            .into(),
        )
    });
    assert!(!run.succeeded(), "{}", run.output);
    assert!(
        run.output.contains("EAP-FAILURE") || run.output.contains("EAP FAILURE"),
        "{}",
        run.output
    );
    assert!(run.output.contains("Access-Reject"), "{}", run.output);
}

#[test]
fn a_server_certificate_the_supplicant_does_not_trust_is_refused() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let server = start(&ca, "\"ttls\"");
    enroll_hotp(&server);
    let network = tunnel(
        &other,
        "TTLS",
        "",
        "auth=PAP",
        &format!("password=\"wonderland{}\"", code(0)),
    );
    let run = eapol::run(server.addr, SECRET, &network, true, no_prompt);
    assert!(!run.succeeded(), "{}", run.output);
    assert!(
        run.output.contains("certificate verify failed")
            || run.output.contains("unable to get local issuer"),
        "{}",
        run.output
    );
    // The code was never sent: it still logs alice in.
    let network = tunnel(
        &ca,
        "TTLS",
        "",
        "auth=PAP",
        &format!("password=\"wonderland{}\"", code(0)),
    );
    let run = eapol::run(server.addr, SECRET, &network, true, no_prompt);
    assert!(run.succeeded(), "{}", run.output);
}

/// An EAP-Response/Identity for `user`, as radclient sends octets.
fn identity(id: u8, user: &str) -> String {
    let mut eap = vec![2, id, 0, (5 + user.len()) as u8, 1];
    eap.extend_from_slice(user.as_bytes());
    format!(
        "0x{}",
        eap.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A metric's value in `/metrics` (0 when absent).
fn metric(server: &Server, series: &str) -> u64 {
    let (_, body) = server.http_get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn bounded(methods: &str, eap: &str) -> Server {
    Server::start_with(&Setup {
        extra: format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[eap]\nmethods = [{methods}]\n{eap}"
        ),
        ..Setup::default()
    })
}

#[test]
fn radius_framing_message_authenticator_required_and_eap_off_rejects() {
    // A client that does not require Message-Authenticator of PAP: EAP still does.
    let server = Server::start_with(&Setup {
        clients: format!(
            "[[client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nname = \"test-nas\"\n\
             require_message_authenticator = false\n"
        ),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[eap]\nmethods = [\"gtc\"]\n".into(),
        ..Setup::default()
    });
    // RFC 3579 §3.2: EAP without a Message-Authenticator is rejected.
    let eap = identity(1, "alice");
    server
        .radclient(&[("User-Name", "\"alice\""), ("EAP-Message", &eap)])
        .expect("Access-Reject");
    // With one: the GTC request, in EAP-Message, with a State.
    let reply = server.radclient(&[
        ("User-Name", "\"alice\""),
        ("EAP-Message", &eap),
        ("Message-Authenticator", "0x00"),
    ]);
    reply.expect("Access-Challenge");
    assert!(reply.get("State").is_some(), "{}", reply.output);
    // 0x01 02 000f 06 "Password: "
    assert_eq!(
        reply.get("EAP-Message"),
        Some("0x0102000f0650617373776f72643a20"),
        "{}",
        reply.output
    );
    // A truncated EAP packet (the length says 64): rejected, without EAP.
    let reply = server.radclient(&[
        ("User-Name", "\"alice\""),
        ("EAP-Message", "0x0201004001"),
        ("Message-Authenticator", "0x00"),
    ]);
    reply.expect("Access-Reject");
    assert_eq!(metric(&server, "tessera_eap_malformed_total"), 1);

    // Without [eap] methods, EAP is rejected as before.
    let off = Server::start();
    let reply = off.radclient(&[
        ("User-Name", "\"alice\""),
        ("EAP-Message", &eap),
        ("Message-Authenticator", "0x00"),
    ]);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("EAP is not supported; use PAP")
    );
}

#[test]
fn strangers_conversations_are_bounded_in_number_and_time() {
    let server = bounded(
        "\"gtc\"",
        "max_conversations = 2\nconversation_timeout_seconds = 1\n",
    );
    let open = |user: &str| {
        server.radclient(&[
            ("User-Name", &format!("\"{user}\"")),
            ("EAP-Message", &identity(1, user)),
            ("Message-Authenticator", "0x00"),
        ])
    };
    open("s1").expect("Access-Challenge");
    open("s2").expect("Access-Challenge");
    let opened = std::time::Instant::now();
    // The table is full: the third is refused, and counted.
    open("s3").expect("Access-Reject");
    assert_eq!(
        metric(&server, "tessera_eap_conversations_total{end=\"refused\"}"),
        1
    );
    assert_eq!(metric(&server, "tessera_eap_conversations "), 2);
    // Abandoned, they are forgotten after their timeout: the next one finds room, and the
    // two are counted as expired. Both deadlines were set before `opened` (s2's before its
    // answer left), so past `opened` + the timeout both have passed, however slow the run.
    std::thread::sleep(std::time::Duration::from_millis(1200).saturating_sub(opened.elapsed()));
    open("s4").expect("Access-Challenge");
    assert_eq!(
        metric(&server, "tessera_eap_conversations_total{end=\"expired\"}"),
        2
    );
    assert_eq!(metric(&server, "tessera_eap_conversations "), 1);
}

/// One station (a switch port, a Wi-Fi client: the NAS's Calling-Station-Id) cannot fill the
/// table: past its share its new conversations are refused, while another station's and the
/// NAS's others go on.
#[test]
fn one_station_cannot_fill_the_conversation_table() {
    let server = bounded("\"gtc\"", "");
    let open = |user: &str, station: &str| {
        server.radclient(&[
            ("User-Name", &format!("\"{user}\"")),
            ("EAP-Message", &identity(1, user)),
            ("Calling-Station-Id", &format!("\"{station}\"")),
            ("Message-Authenticator", "0x00"),
        ])
    };
    let port = "02-00-00-00-00-01";
    for i in 0..4 {
        open(&format!("s{i}"), port).expect("Access-Challenge");
    }
    open("s4", port).expect("Access-Reject");
    assert_eq!(
        metric(&server, "tessera_eap_conversations_total{end=\"refused\"}"),
        1
    );
    open("alice", "02-00-00-00-00-02").expect("Access-Challenge");
    assert_eq!(metric(&server, "tessera_eap_conversations "), 5);
}

/// The policies' `client` filter applies to EAP as to PAP: a policy for this NAS makes the
/// code alone enough (otppin=2), a policy for another NAS does not apply.
#[test]
fn a_policy_for_the_nas_applies_to_its_eap_logins() {
    let ca = TestCa::new();
    let setup = |nas: &str| Setup {
        policies: format!(
            "[[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=1\"\n\n\
             [[policy]]\nname = \"wifi\"\nscope = \"authentication\"\nclient = \"{nas}\"\n\
             action = \"otppin=2\"\n"
        ),
        extra: format!(
            "[eap]\nmethods = [\"ttls\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            ca.cert.display(),
            ca.key.display()
        ),
        ..Setup::default()
    };
    let code_only = |counter: u64| {
        tunnel(
            &ca,
            "TTLS",
            "",
            "auth=PAP",
            &format!("password=\"{}\"", code(counter)),
        )
    };
    let this_nas = Server::start_with(&setup("127.0.0.1"));
    enroll_hotp(&this_nas);
    let run = eapol::run(this_nas.addr, SECRET, &code_only(0), true, no_prompt);
    assert!(run.succeeded(), "{}", run.output);
    let other_nas = Server::start_with(&setup("192.0.2.1"));
    enroll_hotp(&other_nas);
    let run = eapol::run(other_nas.addr, SECRET, &code_only(0), true, no_prompt);
    assert!(!run.succeeded(), "{}", run.output);
}

/// RFC 5281 §11.2.5: with inner PAP the engine's challenge goes back in a tunnelled
/// Reply-Message, and the next User-Password answers it (eapol_test cannot; the client in
/// `eap_client.rs` does). A wrong answer is Access-Reject.
#[test]
fn ttls_with_inner_pap_answers_a_challenge_in_a_tunnelled_reply_message() {
    let ca = TestCa::new();
    let server = start(&ca, "\"ttls\"");
    let ended =
        crate::eap_client::ttls_pap(
            server.addr,
            None,
            &ca.ca,
            "alice",
            |challenge| match challenge {
                None => "wonderland".into(),
                Some(_) => server.last_otp(),
            },
        );
    assert_eq!(ended.code, tessera::radius::codec::Code::ACCESS_ACCEPT);
    assert_eq!(ended.challenges.len(), 1, "{:?}", ended.challenges);
    let ended =
        crate::eap_client::ttls_pap(
            server.addr,
            None,
            &ca.ca,
            "alice",
            |challenge| match challenge {
                None => "wonderland".into(),
                Some(_) => "000000".into(),
            },
        );
    assert_eq!(ended.code, tessera::radius::codec::Code::ACCESS_REJECT);
    assert_eq!(ended.challenges.len(), 1, "{:?}", ended.challenges);
}

/// `[eap]`'s certificate files are read again on reload (SIGHUP), like RadSec's: after new
/// files replace the old ones, a supplicant trusting the new CA logs in and one trusting the
/// old CA refuses the server.
#[test]
fn a_reload_reads_new_certificate_files() {
    let old = TestCa::new();
    let new = TestCa::new();
    let server = start(&old, "\"ttls\"");
    enroll_hotp(&server);
    let login = |ca: &TestCa, counter: u64| {
        let network = tunnel(
            ca,
            "TTLS",
            "",
            "auth=PAP",
            &format!("password=\"wonderland{}\"", code(counter)),
        );
        eapol::run(server.addr, SECRET, &network, true, no_prompt)
    };
    assert!(login(&old, 0).succeeded());
    std::fs::copy(&new.cert, &old.cert).unwrap();
    std::fs::copy(&new.key, &old.key).unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    let refused = login(&old, 1);
    assert!(!refused.succeeded(), "{}", refused.output);
    let run = login(&new, 1);
    assert!(run.succeeded(), "{}", run.output);
}

/// A NAS that resends an EAP Access-Request (its reply was lost) gets the same reply from the
/// reply cache, byte for byte, and no second conversation is opened.
#[test]
fn a_retransmitted_eap_request_gets_the_cached_reply() {
    use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};
    let server = bounded("\"gtc\"", "");
    let mut request = Packet {
        code: Code::ACCESS_REQUEST,
        identifier: 7,
        authenticator: [42; 16],
        attributes: vec![Attribute {
            typ: AttributeType::USER_NAME,
            value: b"alice".to_vec(),
        }],
    };
    request.push_split(
        AttributeType::EAP_MESSAGE,
        &[2, 1, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'],
    );
    let datagram = request.encode_request(SECRET.as_bytes(), true).unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut replies = vec![];
    for _ in 0..2 {
        socket.send_to(&datagram, server.addr).unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        replies.push(buf[..n].to_vec());
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(
        Packet::decode(&replies[0]).unwrap().code,
        Code::ACCESS_CHALLENGE
    );
    assert_eq!(
        metric(&server, "tessera_eap_conversations_total{end=\"opened\"}"),
        1
    );
}

/// Framed-MTU bounds tessera's fragments: at 300, no EAP packet of the handshake is longer,
/// and the login still succeeds.
#[test]
fn framed_mtu_bounds_the_fragments() {
    let ca = TestCa::new();
    let server = start(&ca, "\"ttls\"");
    enroll_hotp(&server);
    let password = format!("wonderland{}", code(0));
    let ended = crate::eap_client::ttls_pap(server.addr, Some(300), &ca.ca, "alice", |_| {
        password.clone()
    });
    assert_eq!(ended.code, tessera::radius::codec::Code::ACCESS_ACCEPT);
    assert!(ended.longest <= 300, "{}", ended.longest);
    assert!(ended.longest > 200, "{}", ended.longest);
}

/// EAP over RadSec (RFC 6614): eapol_test → radsecproxy (which re-hides the MPPE keys with
/// its UDP client's secret) → tessera over TLS. The keys still match eapol_test's MSK.
#[test]
fn ttls_over_radsec_through_radsecproxy() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&Setup {
        server: format!(
            "tls_listen = [\"127.0.0.1:0\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            ca.cert.display(),
            ca.key.display(),
            ca.ca.display()
        ),
        clients: format!(
            "[[client]]\nname = \"nas1\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\n\
             tls_identity = \"nas1.example.org\"\ntls_only = true\n"
        ),
        extra: format!(
            "[eap]\nmethods = [\"ttls\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            ca.cert.display(),
            ca.key.display()
        ),
        ..Setup::default()
    });
    enroll_hotp(&server);
    let proxy =
        crate::util::radsec::RadsecProxy::start(server.tls_addr.unwrap(), &ca.ca, &cert, &key);
    let network = tunnel(
        &ca,
        "TTLS",
        "",
        "auth=PAP",
        &format!("password=\"wonderland{}\"", code(0)),
    );
    let run = eapol::run(proxy.udp, SECRET, &network, true, no_prompt);
    assert!(run.succeeded(), "{}\n{}", run.output, proxy.log_text());
    assert!(run.output.contains("MPPE keys OK: 1"), "{}", run.output);
}
