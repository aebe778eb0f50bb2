//! Issue 30 with a real NAS: hostapd as a wired 802.1X authenticator (`testkit::nas`: a veth
//! pair, the supplicant's end in a network namespace) sending its accounting to tessera and
//! answering Disconnect-Requests, with wpa_supplicant logging alice in through hostapd's own
//! EAP server. Disabling alice's token with `tessera token disable` ends her session at the
//! NAS: hostapd acknowledges the Disconnect-Request, ends the port and sends the Stop, and the
//! audit shows the ACK. A session hostapd does not know (recorded from radclient) gets a NAK,
//! audited with its Error-Cause. Removing alice with `tessera user del` ends it the same way.
//!
//! Issues 26 and 30 together: tessera is also hostapd's authentication server, alice logs in
//! with EAP-TTLS/PAP under the outer identity `anonymous`, and the User-Name of tessera's
//! Access-Accept (her inner identity) is what hostapd's accounting names — so her session is
//! found and ended when her token is disabled. With EAP-TTLS/GTC in two rounds (the password,
//! then the code from the spool, answered on wpa_supplicant's control interface) the NAS
//! accounts under her name too.
//!
//! Needs root for the namespace; skipped, saying why, where `ip netns add` is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::ca::TestCa;
use testkit::nas::{Authenticator, Nas, NasConfig, Supplicant, netns_permitted};
use testkit::ports::try_free_udp_port;
use testkit::radclient::{SECRET, radclient_command};

use crate::accounting::accounting_addr;
use crate::admin_api::Client;
use crate::util::{Server, Setup};

const DAS_SECRET: &str = "das-secret";

fn json(server: &Server, args: &[&str]) -> Value {
    let (code, out, err) = server.cli(args, "");
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Waits until `found` picks something out of `tessera <args>`'s JSON.
fn wait_json<T>(server: &Server, args: &[&str], found: impl Fn(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = json(server, args);
        if let Some(t) = found(&value) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never showed it: {value}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn skip_without_netns() -> bool {
    match netns_permitted() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped: this test makes a network namespace, and here {why}");
            true
        }
    }
}

/// The client entry of the NAS (127.0.0.1), its DAS on `das_port`.
fn das_client(das_port: u16) -> String {
    format!(
        "[[client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nname = \"test-nas\"\n\
         das_port = {das_port}\ndas_secret = \"{DAS_SECRET}\"\n"
    )
}

/// tessera with a client entry whose DAS is on `das_port`, and a TOTP token for alice: the
/// server, its accounting address and the token's serial.
fn server_with_das(das_port: u16) -> (Server, SocketAddr, String) {
    // With the admin API (dave is admin), for the revoke through it.
    let server = Server::start_with(&Setup {
        clients: das_client(das_port),
        ..crate::admin_api::setup("", "")
    });
    let accounting = accounting_addr(&server);
    let args = [
        "token", "enroll", "--type", "totp", "--user", "alice", "--json",
    ];
    let serial = json(&server, &args)["serial"]
        .as_str()
        .expect("a serial")
        .to_string();
    (server, accounting, serial)
}

/// A session hostapd does not know, of the same NAS (127.0.0.1, its own_ip_addr), under
/// another spelling of alice's name: kept with the identity it resolves to.
fn ghost_session(server: &Server, accounting: SocketAddr) {
    radclient_command(
        accounting,
        SECRET,
        "acct",
        &[
            ("Acct-Status-Type", "Start"),
            ("Acct-Session-Id", "\"ghost\""),
            ("NAS-IP-Address", "127.0.0.1"),
            ("User-Name", "\"ALICE@local\""),
        ],
    )
    .expect("Accounting-Response");
    let ghost = wait_json(server, &["sessions", "--json", "--open"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["session_id"] == "ghost")
            .cloned()
    });
    let field = |name: &str| ghost[name].as_str().unwrap_or("-").to_string();
    assert_eq!(
        [field("user"), field("identity"), field("realm")],
        ["ALICE@local", "alice", "local"],
        "{ghost}"
    );
}

/// The audit's `session disconnect` rows of alice, once there are `n`.
fn disconnect_rows(server: &Server, n: usize) -> Vec<Value> {
    let args = ["audit", "--user", "alice", "--since", "1h", "--json"];
    wait_json(server, &args, |v| {
        let rows: Vec<Value> = v
            .as_array()?
            .iter()
            .filter(|r| r["action"] == "session disconnect")
            .cloned()
            .collect();
        (rows.len() == n).then_some(rows)
    })
}

/// hostapd with alice logged in through it, sending accounting to `accounting` and taking
/// Disconnect-Requests on `das_port`; and her session's id as tessera recorded it.
fn alice_online(server: &Server, accounting: SocketAddr, das_port: u16) -> (Nas, String) {
    let (nas, session) = online(
        server,
        accounting,
        das_port,
        Authenticator::IntegratedEap(vec![("alice".into(), "md5pw".into())]),
        Supplicant::Md5("alice".into(), "md5pw".into()),
    );
    let id = session["session_id"].as_str().expect("an id").to_string();
    (nas, id)
}

/// hostapd authenticating through `authenticator`, with `supplicant` logged in through it,
/// sending accounting to `accounting` and taking Disconnect-Requests on `das_port`; and
/// alice's open session as tessera recorded it.
fn online(
    server: &Server,
    accounting: SocketAddr,
    das_port: u16,
    authenticator: Authenticator,
    supplicant: Supplicant,
) -> (Nas, Value) {
    testkit::require_program("hostapd", "-v", "apt-get install hostapd");
    testkit::require_program("wpa_supplicant", "-v", "apt-get install wpasupplicant");
    let nas = Nas::start(&NasConfig {
        authenticator,
        acct_server: accounting,
        acct_secret: SECRET.into(),
        das: Some((das_port, DAS_SECRET.into())),
        supplicant,
    });
    nas.wait_authorized();
    let session = wait_json(server, &["sessions", "--json", "--user", "alice"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["open"] == true && s["calling_station"].is_string())
            .cloned()
    });
    (nas, session)
}

#[test]
fn a_disabled_token_ends_the_session_at_the_nas() {
    if skip_without_netns() {
        return;
    }
    let das_port = try_free_udp_port().expect("a free port");
    let (server, accounting, serial) = server_with_das(das_port);
    let (nas, session) = alice_online(&server, accounting, das_port);
    ghost_session(&server, accounting);

    let (code, _, err) = server.cli(&["token", "disable", &serial], "");
    assert_eq!(code, 0, "{err}");
    let wait = Duration::from_secs(10);
    nas.hostapd_log
        .wait_for("Found a matching session", wait, "hostapd");
    // hostapd ends the port and sends the Stop: the session is closed in tessera.
    let closed = wait_json(&server, &["sessions", "--json", "--user", "alice"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["session_id"] == session.as_str() && s["open"] == false)
            .cloned()
    });
    assert!(closed["stopped"].is_string(), "{closed}");

    // The audit: an ACK for the real session, a NAK for the ghost, both naming the token.
    let rows = disconnect_rows(&server, 2);
    let of = |id: &str| {
        let end = format!("session {id}");
        rows.iter()
            .find(|r| r["reason"].as_str().unwrap().ends_with(&end))
            .unwrap_or_else(|| panic!("no audit row for session {id}: {rows:?}"))
    };
    let ack = of(&session);
    assert_eq!(
        (&ack["result"], &ack["serial"]),
        (&Value::from("ok"), &Value::from(serial.as_str())),
        "{ack}"
    );
    assert!(
        ack["reason"].as_str().unwrap().contains("Disconnect-ACK"),
        "{ack}"
    );
    let nak = of("ghost");
    assert_eq!(nak["result"], "failed", "{nak}");
    let cause = "Disconnect-NAK, Error-Cause Session-Context-Not-Found (503)";
    assert!(nak["reason"].as_str().unwrap().contains(cause), "{nak}");
}

/// The same through the admin API, and for a deleted token: the API's change runs the same
/// revoke as the command line.
#[test]
fn a_token_deleted_through_the_admin_api_ends_the_session_too() {
    if skip_without_netns() {
        return;
    }
    let das_port = try_free_udp_port().expect("a free port");
    let (server, accounting, serial) = server_with_das(das_port);
    let (nas, session) = alice_online(&server, accounting, das_port);
    let mut dave = Client::login(&server, "dave", "davepw");
    let answer = dave.call("DELETE", &format!("/api/v1/tokens/{serial}"), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let wait = Duration::from_secs(10);
    nas.hostapd_log
        .wait_for("Found a matching session", wait, "hostapd");
    let rows = disconnect_rows(&server, 1);
    let row = &rows[0];
    assert_eq!(row["result"], "ok", "{row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("by dave@local (admin): Disconnect-ACK"),
        "{row}"
    );
    assert!(reason.ends_with(&format!("session {session}")), "{row}");
    assert!(
        row["client"].as_str().unwrap().starts_with("admin/"),
        "{row}"
    );
}

/// A leaver: `tessera user del alice` removes her from the users file of realm `local` and
/// ends her open session at the NAS as a disabled token does, audited without a serial.
#[test]
fn a_user_deleted_from_the_users_file_has_the_session_ended() {
    if skip_without_netns() {
        return;
    }
    let das_port = try_free_udp_port().expect("a free port");
    let (server, accounting, _serial) = server_with_das(das_port);
    let (nas, session) = alice_online(&server, accounting, das_port);
    let (code, out, err) = server.cli(&["user", "del", "alice"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Disconnect-ACK"), "{out}");
    let wait = Duration::from_secs(10);
    nas.hostapd_log
        .wait_for("Found a matching session", wait, "hostapd");
    let rows = disconnect_rows(&server, 1);
    let row = &rows[0];
    assert_eq!(
        (&row["result"], &row["realm"], &row["serial"]),
        (&Value::from("ok"), &Value::from("local"), &Value::Null),
        "{row}"
    );
    let reason = row["reason"].as_str().unwrap();
    assert!(reason.contains("Disconnect-ACK"), "{row}");
    assert!(reason.ends_with(&format!("session {session}")), "{row}");
}

/// `[eap]` with `methods` and the test CA's server certificate.
fn eap_section(ca: &TestCa, methods: &str) -> String {
    format!(
        "[eap]\nmethods = [{methods}]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
        ca.cert.display(),
        ca.key.display()
    )
}

/// The whole chain with tessera as the NAS's authentication server: alice logs in with
/// EAP-TTLS/PAP (outer identity `anonymous`, password and HOTP code in one field), hostapd's
/// Accounting Start names her as tessera's Access-Accept did, and disabling her token ends the
/// session at the NAS: Disconnect-ACK in the audit, the Stop closes the session.
#[test]
fn an_eap_ttls_login_through_tessera_is_accounted_and_disconnected() {
    if skip_without_netns() {
        return;
    }
    let ca = TestCa::new();
    let das_port = try_free_udp_port().expect("a free port");
    let server = Server::start_with(&Setup {
        clients: das_client(das_port),
        extra: eap_section(&ca, "\"ttls\""),
        ..Setup::default()
    });
    let accounting = accounting_addr(&server);
    let (code, out, err) = server.cli(
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "alice",
            "--seed-file",
            "-",
            "--json",
        ],
        crate::eap::SEED_HEX,
    );
    assert_eq!(code, 0, "{err}");
    let enrolled: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let serial = enrolled["serial"].as_str().expect("a serial").to_string();

    let network = format!(
        "eap=TTLS\nidentity=\"alice\"\nanonymous_identity=\"anonymous\"\n\
         password=\"wonderland{}\"\nca_cert=\"{}\"\nphase2=\"auth=PAP\"",
        crate::eap::code(0),
        ca.ca.display()
    );
    let (nas, session) = online(
        &server,
        accounting,
        das_port,
        Authenticator::Radius(server.addr, SECRET.into()),
        Supplicant::Network(network),
    );
    // tessera authenticated her, and hostapd's Start names her, not `anonymous`.
    let audit = json(&server, &["audit", "--user", "alice", "--json"]);
    let login = audit
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["client"] == "test-nas eap-ttls/pap"));
    assert!(login.is_some_and(|r| r["result"] == "accept"), "{audit}");
    let field = |name: &str| session[name].as_str().unwrap_or("-").to_string();
    assert_eq!(
        [field("user"), field("identity")],
        ["alice", "alice"],
        "{session}"
    );
    let id = field("session_id");

    let (code, _, err) = server.cli(&["token", "disable", &serial], "");
    assert_eq!(code, 0, "{err}");
    let wait = Duration::from_secs(10);
    nas.hostapd_log
        .wait_for("Found a matching session", wait, "hostapd");
    let closed = wait_json(&server, &["sessions", "--json", "--user", "alice"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["session_id"] == id.as_str() && s["open"] == false)
            .cloned()
    });
    assert!(closed["stopped"].is_string(), "{closed}");
    let rows = disconnect_rows(&server, 1);
    let row = &rows[0];
    assert_eq!(
        (&row["result"], &row["serial"]),
        (&Value::from("ok"), &Value::from(serial.as_str())),
        "{row}"
    );
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Disconnect-ACK"), "{row}");
    assert!(reason.ends_with(&format!("session {id}")), "{row}");
}

/// Two rounds through the NAS: TTLS with inner GTC, the password and then the code asked on
/// wpa_supplicant's control interface; tessera's Accept names alice, and so does hostapd's
/// accounting.
#[test]
fn an_eap_ttls_gtc_login_in_two_rounds_through_tessera_is_accounted_under_the_user() {
    if skip_without_netns() {
        return;
    }
    let ca = TestCa::new();
    let das_port = try_free_udp_port().expect("a free port");
    let server = Server::start_with(&Setup {
        clients: das_client(das_port),
        extra: eap_section(&ca, "\"ttls\""),
        ..Setup::default()
    });
    testkit::require_program("hostapd", "-v", "apt-get install hostapd");
    testkit::require_program("wpa_supplicant", "-v", "apt-get install wpasupplicant");
    let network = format!(
        "eap=TTLS\nidentity=\"alice\"\nanonymous_identity=\"anonymous\"\nca_cert=\"{}\"\n\
         phase2=\"autheap=GTC\"",
        ca.ca.display()
    );
    let nas = Nas::start(&NasConfig {
        authenticator: Authenticator::Radius(server.addr, SECRET.into()),
        acct_server: accounting_addr(&server),
        acct_secret: SECRET.into(),
        das: Some((das_port, DAS_SECRET.into())),
        supplicant: Supplicant::Prompted(network),
    });
    let (prompts, succeeded) = nas.answer(|prompt| {
        if prompt == "Password: " {
            "wonderland".into()
        } else {
            server.last_otp()
        }
    });
    assert!(succeeded, "{prompts:?}");
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert_ne!(prompts[1], "Password: ");
    let session = wait_json(&server, &["sessions", "--json", "--user", "alice"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["open"] == true && s["calling_station"].is_string())
            .cloned()
    });
    assert_eq!(session["identity"], "alice", "{session}");
    let audit = json(&server, &["audit", "--user", "alice", "--json"]);
    let login = audit
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["client"] == "test-nas eap-ttls/gtc"));
    assert!(login.is_some_and(|r| r["result"] == "accept"), "{audit}");
}
