//! Issue 30 with a real NAS: hostapd as a wired 802.1X authenticator (`testkit::nas`: a veth
//! pair, the supplicant's end in a network namespace) sending its accounting to tessera and
//! answering Disconnect-Requests, with wpa_supplicant logging alice in through hostapd's own
//! EAP server (tessera has no EAP yet). Disabling alice's token with `tessera token disable`
//! ends her session at the NAS: hostapd acknowledges the Disconnect-Request, ends the port and
//! sends the Stop, and the audit shows the ACK. A session hostapd does not know (recorded
//! from radclient) gets a NAK, audited with its Error-Cause.
//!
//! Needs root for the namespace; skipped, saying why, where `ip netns add` is refused.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::nas::{Authenticator, Nas, NasConfig, netns_permitted};
use testkit::ports::try_free_udp_port;
use testkit::radclient::{SECRET, radclient_command};

use crate::util::{Server, Setup};

const DAS_SECRET: &str = "das-secret";

/// Where the server receives accounting (its log's `accounting on ADDRESS`).
fn accounting_addr(server: &Server) -> SocketAddr {
    let line = server.wait_for_log("accounting on ");
    line.split("accounting on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no accounting address in {line:?}"))
}

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

#[test]
fn a_disabled_token_ends_the_session_at_the_nas() {
    if skip_without_netns() {
        return;
    }
    testkit::require_program("hostapd", "-v", "apt-get install hostapd");
    testkit::require_program("wpa_supplicant", "-v", "apt-get install wpasupplicant");
    let das_port = try_free_udp_port().expect("a free port");
    let server = Server::start_with(&Setup {
        clients: format!(
            "[[client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nname = \"test-nas\"\n\
             das_port = {das_port}\ndas_secret = \"{DAS_SECRET}\"\n"
        ),
        ..Setup::default()
    });
    let accounting = accounting_addr(&server);
    let enrolled = json(
        &server,
        &[
            "token", "enroll", "--type", "totp", "--user", "alice", "--json",
        ],
    );
    let serial = enrolled["serial"].as_str().expect("a serial").to_string();

    let nas = Nas::start(&NasConfig {
        authenticator: Authenticator::IntegratedEap(vec![("alice".into(), "md5pw".into())]),
        acct_server: accounting,
        acct_secret: SECRET.into(),
        das: Some((das_port, DAS_SECRET.into())),
        supplicant: ("alice".into(), "md5pw".into()),
    });
    nas.wait_authorized();
    let open = |v: &Value| {
        v.as_array()?
            .iter()
            .find(|s| s["open"] == true && s["calling_station"].is_string())
            .and_then(|s| s["session_id"].as_str().map(str::to_string))
    };
    let session = wait_json(&server, &["sessions", "--json", "--user", "alice"], open);

    // A session hostapd does not know, of the same NAS (127.0.0.1, its own_ip_addr).
    radclient_command(
        accounting,
        SECRET,
        "acct",
        &[
            ("Acct-Status-Type", "Start"),
            ("Acct-Session-Id", "\"ghost\""),
            ("NAS-IP-Address", "127.0.0.1"),
            ("User-Name", "\"alice\""),
        ],
    )
    .expect("Accounting-Response");

    let (code, _, err) = server.cli(&["token", "disable", &serial], "");
    assert_eq!(code, 0, "{err}");
    nas.hostapd_log.wait_for(
        "Found a matching session",
        Duration::from_secs(10),
        "hostapd",
    );

    // hostapd ends the port and sends the Stop: the session is closed in tessera.
    let closed = wait_json(&server, &["sessions", "--json", "--user", "alice"], |v| {
        v.as_array()?
            .iter()
            .find(|s| s["session_id"] == session.as_str() && s["open"] == false)
            .cloned()
    });
    assert!(closed["stopped"].is_string(), "{closed}");

    // The audit: an ACK for the real session, a NAK for the ghost, both naming the token.
    let rows = wait_json(
        &server,
        &["audit", "--user", "alice", "--since", "1h", "--json"],
        |v| {
            let rows: Vec<Value> = v
                .as_array()?
                .iter()
                .filter(|r| r["action"] == "session disconnect")
                .cloned()
                .collect();
            (rows.len() == 2).then_some(rows)
        },
    );
    let of = |id: &str| {
        rows.iter()
            .find(|r| {
                r["reason"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("session {id}"))
            })
            .unwrap_or_else(|| panic!("no audit row for session {id}: {rows:?}"))
    };
    let ack = of(&session);
    assert_eq!(ack["result"], "ok", "{ack}");
    assert!(
        ack["reason"].as_str().unwrap().contains("Disconnect-ACK"),
        "{ack}"
    );
    assert_eq!(ack["serial"], serial.as_str());
    let nak = of("ghost");
    assert_eq!(nak["result"], "failed", "{nak}");
    assert!(
        nak["reason"]
            .as_str()
            .unwrap()
            .contains("Disconnect-NAK, Error-Cause Session-Context-Not-Found (503)"),
        "{nak}"
    );
}
