//! Issue 17 over the wire: `mfa=password_only` for a directory group, `login_mode=append` for
//! one NAS, `delivery_failmode=password_only` with a failing gateway, and per-NAS texts — each
//! with its negative case and the audit row or metric it leaves.

use std::time::{Duration, Instant};

use crate::util::peers::http_gateway;
use crate::util::{Server, Setup, write_config};

/// The default setup plus `policies`, with erin (group `break-glass`) in the users file.
pub(super) fn start(policies: &str, extra: &str) -> Server {
    let mut setup = Setup {
        extra: extra.into(),
        ..Setup::default()
    };
    setup.policies.push_str(policies);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &setup);
    let hash = tessera::password_hash::hash(&tessera::secret::Secret::from("erinpw")).unwrap();
    let mut users = std::fs::read_to_string(dir.path().join("users.toml")).unwrap();
    users.push_str(&format!(
        "[[user]]\nname = \"erin\"\npassword = \"{hash}\"\nmobile = \"+4915000000002\"\n\
         groups = [\"break-glass\"]\n"
    ));
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    Server::start_in(dir, &config)
}

/// The audit reasons of `user`, newest first, once there are `at_least`.
pub(super) fn audit_reasons(server: &Server, user: &str, at_least: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = server.cli(&["audit", "--user", user, "--json"], "");
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let reasons: Vec<String> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["reason"].as_str().map(String::from))
            .collect();
        if reasons.len() >= at_least || Instant::now() > deadline {
            return reasons;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn issue_17_mfa_password_only_for_a_directory_group_is_audited() {
    let server = start(
        "\n[[policy]]\nname = \"break-glass\"\nscope = \"authentication\"\n\
         group = \"Break-Glass\"\naction = \"mfa=password_only\"\n",
        "",
    );
    server.auth("erin", "erinpw", None).expect("Access-Accept");
    assert_eq!(server.spool().len(), 0, "no code for a break-glass account");
    let reasons = audit_reasons(&server, "erin", 1);
    assert_eq!(reasons[0], "password only (mfa=password_only)");
    server.wait_for_log("accepted without a second factor (mfa=password_only)");
    // Its password is still checked, and users outside the group still need a code.
    server.auth("erin", "guess", None).expect("Access-Reject");
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

#[test]
fn issue_17_append_mode_for_a_nas_that_cannot_show_a_challenge() {
    let server = start(
        "\n[[policy]]\nname = \"old vpn\"\nscope = \"authentication\"\n\
         client = \"127.0.0.1\"\naction = \"login_mode=append\"\n",
        "",
    );
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Reject");
    assert_eq!(
        first.get("Reply-Message"),
        Some(
            "sms submitted to +49********678; log in again with your password followed by the code"
        )
    );
    assert_eq!(first.get("State"), None);
    let code = server.last_otp();
    server
        .auth("alice", &format!("wonderland{code}"), None)
        .expect("Access-Accept");
    server
        .auth("alice", &format!("wonderland{code}"), None)
        .expect("Access-Reject");

    // A policy for another NAS leaves this one in challenge mode.
    let other = start(
        "\n[[policy]]\nname = \"old vpn\"\nscope = \"authentication\"\n\
         client = \"10.0.0.0/8\"\naction = \"login_mode=append\"\n",
        "",
    );
    other
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

#[test]
fn issue_17_delivery_failmode_password_only_with_a_failing_gateway() {
    let gw = http_gateway(500, "out of credit", &[]);
    let mut setup = Setup {
        providers: format!(
            "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{}\"\n\n\
             [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
            gw.url("/send")
        ),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    };
    setup.policies.push_str(
        "\n[[policy]]\nname = \"fail open\"\nscope = \"authentication\"\n\
         action = \"delivery_failmode=password_only\"\n",
    );
    let server = Server::start_with(&setup);
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Accept");
    server.wait_for_log("accepted on the password alone (delivery_failmode=password_only)");
    let reasons = audit_reasons(&server, "alice", 1);
    assert!(
        reasons[0].starts_with("accepted on the password alone"),
        "{reasons:?}"
    );
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("reason=\"delivery failed, password only\"} 1"),
        "{metrics}"
    );
    server.auth("alice", "guess", None).expect("Access-Reject");
}

#[test]
fn issue_17_challenge_and_reject_texts_per_nas() {
    let server = start(
        "\n[[policy]]\nname = \"german nas\"\nscope = \"authentication\"\nclient = \"127.0.0.1\"\n\
         action = \"challenge_text='Bitte den Code eingeben, gesendet an <recipient>', reject_text='Anmeldung fehlgeschlagen'\"\n",
        "",
    );
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    assert_eq!(
        first.get("Reply-Message"),
        Some("Bitte den Code eingeben, gesendet an +49********678")
    );
    let wrong = server.auth("nobody", "guess", None);
    assert_eq!(wrong.get("Reply-Message"), Some("Anmeldung fehlgeschlagen"));
}

/// A VPN client reconnecting from the same station within `grace_seconds` needs no second code.
#[test]
fn issue_17_grace_for_a_reconnect_from_the_same_station() {
    let server = start(
        "\n[[policy]]\nname = \"reconnect\"\nscope = \"authentication\"\n\
         action = \"grace_seconds=600\"\n",
        "",
    );
    let request = |password: &str, state: Option<&str>, station: &str| {
        let mut attrs = vec![
            ("User-Name", "\"alice\"".to_string()),
            ("User-Password", crate::util::quote(password)),
            ("Calling-Station-Id", crate::util::quote(station)),
            ("Message-Authenticator", "0x00".to_string()),
        ];
        if let Some(state) = state {
            attrs.push(("State", state.to_string()));
        }
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.radclient(&attrs)
    };
    let first = request("wonderland", None, "198.51.100.7");
    first.expect("Access-Challenge");
    request(&server.last_otp(), Some(&first.state()), "198.51.100.7").expect("Access-Accept");
    request("wonderland", None, "198.51.100.7").expect("Access-Accept");
    assert_eq!(server.spool().len(), 1, "no second code");
    let reasons = audit_reasons(&server, "alice", 3);
    assert!(reasons[0].starts_with("password within the re-authentication grace"));
    // Another station is a new login.
    request("wonderland", None, "198.51.100.8").expect("Access-Challenge");
}

/// Issue 30: the grace ends when the NAS reports the session's Stop: reconnecting after it is
/// a new login with both factors (that a Stop ends exactly its own grace is the store's
/// conformance case `backoff::grace_window`).
#[test]
fn issue_30_a_sessions_stop_ends_its_grace() {
    let server = start(
        "\n[[policy]]\nname = \"reconnect\"\nscope = \"authentication\"\n\
         action = \"grace_seconds=600\"\n",
        "",
    );
    let login = |password: &str, state: Option<&str>| {
        let mut attrs = vec![
            ("User-Name", "\"alice\"".to_string()),
            ("User-Password", crate::util::quote(password)),
            ("Calling-Station-Id", "\"198.51.100.7\"".to_string()),
            ("Message-Authenticator", "0x00".to_string()),
        ];
        if let Some(state) = state {
            attrs.push(("State", state.to_string()));
        }
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.radclient(&attrs)
    };
    let acct = |status: &str, station: &str| {
        let station = crate::util::quote(station);
        testkit::radclient::radclient_command(
            crate::accounting::accounting_addr(&server),
            crate::util::SECRET,
            "acct",
            &[
                ("Acct-Status-Type", status),
                ("Acct-Session-Id", "\"vpn-1\""),
                ("User-Name", "\"alice\""),
                ("Calling-Station-Id", &station),
            ],
        )
        .expect("Accounting-Response");
    };
    let first = login("wonderland", None);
    first.expect("Access-Challenge");
    login(&server.last_otp(), Some(&first.state())).expect("Access-Accept");
    acct("Start", "198.51.100.7");
    login("wonderland", None).expect("Access-Accept");
    acct("Stop", "198.51.100.7");
    server.wait_for_log("re-authentication grace ended by the session's Stop");
    login("wonderland", None).expect("Access-Challenge");
}

/// The config lines of a passthru to `legacy` at `addr` (secret `oldsecret`).
pub(super) fn upstream(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[radius_upstream.legacy]\naddress = \"{addr}\"\nsecret = \"oldsecret\"\ntimeout = 1\n\
         retries = 1\n{extra}\n"
    )
}

/// Passthru during a migration, against a real FreeRADIUS: a user without a token is accepted
/// by the old server through tessera (its Reply-Message relayed, Proxy-State echoed); with
/// `passthru_assign=sms` the next login is tessera's own SMS challenge; a wrong password is the
/// old server's Reject; the old server down is a Reject with a clear message.
#[test]
fn issue_17_passthru_to_the_old_server_then_assign_an_sms_token() {
    let mut legacy = crate::util::freeradius::FreeRadius::start(
        &[("alice", "old-password"), ("bob", "old-bob")],
        "oldsecret",
    );
    let server = start(
        "\n[[policy]]\nname = \"migration\"\nscope = \"authentication\"\n\
         action = \"passthru=legacy, passthru_assign=sms\"\n",
        &upstream(legacy.addr, ""),
    );
    let accept = server.radclient(&[
        ("User-Name", "\"alice\""),
        ("User-Password", "\"old-password\""),
        ("Proxy-State", "0x6e61732d31"),
        ("Message-Authenticator", "0x00"),
    ]);
    assert_eq!(
        accept.code,
        "Access-Accept",
        "{}\ntessera:\n{}\nFreeRADIUS:\n{}",
        accept.output,
        server.log_text(),
        legacy.log()
    );
    assert_eq!(
        accept.get("Reply-Message"),
        Some("welcome from the old server")
    );
    assert_eq!(accept.get_all("Proxy-State"), ["0x6e61732d31"]);
    server.wait_for_log("passthru: relayed the legacy server's answer");
    server.wait_for_log("passthru assign");

    // alice now has a token: her next login is tessera's (otppin=1: her directory password).
    let (_, tokens, _) = server.cli(&["token", "list", "--json"], "");
    assert!(tokens.contains("\"user\": \"alice\""), "{tokens}");
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");

    // bob (no token yet) with a wrong password: the old server's Reject.
    server.auth("bob", "wrong", None).expect("Access-Reject");
    server.wait_for_log("answer=Access-Reject");
    let reasons = audit_reasons(&server, "bob", 1);
    assert!(
        reasons[0].contains("forwarded to the legacy server legacy"),
        "{reasons:?}"
    );

    // The old server down: a Reject that says so, after the retries.
    legacy.stop();
    let down = server.auth("bob", "old-bob", None);
    down.expect("Access-Reject");
    assert_eq!(
        down.get("Reply-Message"),
        Some("authentication service unavailable, try again later")
    );
    server.wait_for_log("passthru: the legacy server did not answer");
}

/// A passthru policy naming no `[radius_upstream]` is a config error with its line.
#[test]
fn issue_17_passthru_to_an_unknown_upstream_is_a_config_error() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"migration\"\nscope = \"authentication\"\naction = \"passthru=nowhere\"\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &setup);
    let out = crate::util::run_cli(&config, &["check-config"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("policy.action: policy \"migration\": passthru=nowhere, but no [radius_upstream.nowhere] exists"),
        "{stderr}"
    );
}
