//! Issue 12, as an attacker tries it over the wire: one identity whatever the spelling (real
//! slapd and the users file), one token and one message for concurrent first logins, no State
//! handed out for a code a slow gateway then fails to send, wrong passwords that slow the name
//! down instead of locking the person out — answered exactly like an unknown name — and
//! duplicate attributes dropped as malformed.

use std::time::{Duration, Instant};

use crate::util::peers::http_gateway;
use crate::util::slapd::{BASE_DN, READER_DN, READER_PW, Slapd};
use crate::util::{Reply, Server, Setup};

/// Runs a `tessera` admin command against the server's config; (exit code, stdout).
fn cli(server: &Server, args: &[&str]) -> (i32, String) {
    let (code, out, _) = server.cli(args, "");
    (code, out)
}

/// The serials of `user`'s tokens, from `tessera token list --json`.
fn serials(server: &Server, user: &str) -> Vec<String> {
    let (code, out) = cli(server, &["token", "list", "--json"]);
    assert_eq!(code, 0, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|t| t["user"] == user)
        .map(|t| t["serial"].as_str().unwrap().to_string())
        .collect()
}

/// The default setup with the LDAP directory as the default realm `corp`.
fn ldap_setup(slapd: &Slapd) -> Setup {
    Setup {
        directories: format!(
            "[directory.corp]\ntype = \"ldap\"\nuri = [\"{}\"]\nbase_dn = \"{BASE_DN}\"\n\
             bind_dn = \"{READER_DN}\"\nbind_password = \"{READER_PW}\"\n\n\
             [[realm]]\nname = \"corp\"\ndirectories = [\"corp\"]\ndefault = true\n",
            slapd.uri()
        ),
        ..Setup::default()
    }
}

/// What an attacker compares: the code and every attribute but the Message-Authenticator.
fn visible(reply: &Reply) -> (String, Vec<(String, String)>) {
    let attrs = reply
        .attrs
        .iter()
        .filter(|(k, _)| k != "Message-Authenticator")
        .cloned()
        .collect();
    (reply.code.clone(), attrs)
}

/// After `tessera token disable`, no spelling of alice's name (case, spaces, fullwidth) gets
/// her a second token or in — and a per-user policy follows her under every spelling.
#[test]
fn issue_12_spellings_are_one_identity_in_ldap() {
    let slapd = Slapd::start();
    let mut setup = ldap_setup(&slapd);
    setup.policies.push_str(
        "\n[[policy]]\nname = \"alice only\"\nscope = \"authentication\"\nuser = \"alice\"\n\
         reply = [\"Fortinet-Group-Name = restricted\"]\n",
    );
    let server = Server::start_with(&setup);

    // Her first login under another spelling enrolls the token of `alice`, and the Accept
    // carries alice's policy.
    let first = server.auth("ALICE", "alicepw", None);
    first.expect("Access-Challenge");
    let accept = server.auth(" Alice", &server.last_otp(), Some(&first.state()));
    accept.expect("Access-Accept");
    assert_eq!(accept.get("Fortinet-Group-Name"), Some("restricted"));
    let tokens = serials(&server, "alice");
    assert_eq!(tokens.len(), 1);
    let line = server.wait_for_log("typed=\"ALICE\"");
    assert!(line.contains("user=alice realm=corp"), "{line}");

    assert_eq!(cli(&server, &["token", "disable", &tokens[0]]).0, 0);
    for spelling in [
        "alice",
        "ALICE",
        "Alice",
        " alice",
        "alice ",
        "ａｌｉｃｅ",
        "ＡＬＩＣＥ",
    ] {
        let reply = server.auth(spelling, "alicepw", None);
        reply.expect("Access-Reject");
        assert_eq!(reply.get("Reply-Message"), Some("authentication failed"));
    }
    let (_, list) = cli(&server, &["token", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "no second token: {list}");
    assert_eq!(server.spool().len(), 1, "no second message");
}

/// With the users file: the trigger limit, blocking 0 and the lockout hold for every spelling.
#[test]
fn issue_12_spellings_share_the_trigger_limit_and_the_lockout_in_the_users_file() {
    let server = Server::start_with(&Setup {
        auth: "sms_blocking_timeout = 0\ntrigger_limit = 2\nmax_fail = 2\n".into(),
        ..Setup::default()
    });
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    // Blocking 0 never blocks, even within the same second: a second code.
    let second = server.auth("ALICE", "wonderland", None);
    second.expect("Access-Challenge");
    assert_ne!(first.state(), second.state());
    assert_eq!(
        second.get("Reply-Message"),
        Some("sms submitted to +49********678")
    );
    let limited = server.auth("ａlice", "wonderland", None);
    limited.expect("Access-Reject");
    assert_eq!(
        limited.get("Reply-Message"),
        Some("too many codes requested; try again in 10 minutes")
    );
    assert_eq!(server.spool().len(), 2);

    // Two wrong codes after the right password lock the token, for every spelling.
    let code = server.last_otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        server
            .auth("alice", wrong, Some(&second.state()))
            .expect("Access-Reject");
    }
    for spelling in ["alice", "Alice", " ALICE "] {
        let reply = server.auth(spelling, "wonderland", None);
        reply.expect("Access-Reject");
        assert_eq!(
            reply.get("Reply-Message"),
            Some("too many failed attempts: your token is locked"),
            "{spelling:?}"
        );
    }
    assert_eq!(serials(&server, "alice").len(), 1);
    assert!(serials(&server, "ALICE").is_empty());
}

/// 20 first logins at once: one token, one message, and every one of them gets its State.
#[test]
fn issue_12_concurrent_first_logins_enroll_one_token_and_send_one_message() {
    let slapd = Slapd::start();
    let server = Server::start_with(&ldap_setup(&slapd));
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| server.auth("alice", "alicepw", None)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        reply.expect("Access-Challenge");
    }
    let state = replies[0].state();
    assert!(replies.iter().all(|r| r.state() == state), "one challenge");
    assert_eq!(serials(&server, "alice").len(), 1, "one token");
    assert_eq!(server.spool().len(), 1, "one message");
    server
        .auth("alice", &server.last_otp(), Some(&state))
        .expect("Access-Accept");
}

/// While a slow gateway is still sending, a second login waits for the outcome: when the send
/// fails, both are told so; nobody waits for a code that never comes.
#[test]
fn issue_12_a_second_login_during_a_failing_send_is_told_it_failed() {
    let gw = http_gateway(500, "out of credit", &["--delay", "1.5"]);
    let server = Server::start_with(&Setup {
        providers: format!(
            "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{}\"\ntimeout = 5\n\n\
             [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n",
            gw.url("/send")
        ),
        ..Setup::default()
    });
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| server.auth("alice", "wonderland", None));
        std::thread::sleep(Duration::from_millis(400));
        let second = scope.spawn(|| server.auth("alice", "wonderland", None));
        (first.join().unwrap(), second.join().unwrap())
    });
    for reply in [&first, &second] {
        reply.expect("Access-Reject");
        assert_eq!(
            reply.get("Reply-Message"),
            Some("sending the OTP by SMS failed"),
            "{}",
            reply.output
        );
    }
    assert_eq!(gw.records().len(), 1, "one send, not two");
    assert!(
        serials(&server, "alice").is_empty(),
        "nothing half-enrolled"
    );
}

/// 12 wrong passwords: every answer is an unknown name's; the token is not locked, and once
/// the short back-off has passed the right password gets the challenge.
#[test]
fn issue_12_wrong_passwords_slow_the_name_and_look_like_an_unknown_one() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    let stranger = visible(&server.auth("nobody", "guess", None));
    assert_eq!(stranger.0, "Access-Reject");
    for _ in 0..12 {
        assert_eq!(visible(&server.auth("alice", "guess", None)), stranger);
        // A user without a token is throttled alike, and answered alike.
        assert_eq!(visible(&server.auth("dave", "guess", None)), stranger);
    }
    // The back-off is at most a few seconds now (1 s doubling per failure it counted): until
    // it has passed, even the right password is answered like a stranger's guess.
    let deadline = Instant::now() + Duration::from_secs(15);
    let challenge = loop {
        let reply = server.auth("alice", "wonderland", None);
        if reply.code == "Access-Challenge" {
            break reply;
        }
        assert_eq!(visible(&reply), stranger);
        assert!(Instant::now() < deadline, "still refused after 15 s");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        challenge.get("Reply-Message"),
        Some("sms submitted to +49********678"),
        "a challenge, not 'locked'"
    );
    let (_, list) = cli(&server, &["token", "list", "--json"]);
    assert!(list.contains("\"fail_count\": 0"), "{list}");
}

/// 30 wrong passwords, then the right one within the back-off: refused without a check,
/// exactly as a name nobody has.
#[test]
fn issue_12_within_the_back_off_the_right_password_is_refused_like_a_stranger() {
    let server = Server::start_with(&Setup {
        auth: "backoff_initial = 60\n".into(),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    });
    let first = server.auth("alice", "wonderland", None);
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    for _ in 0..30 {
        server.auth("alice", "guess", None).expect("Access-Reject");
        server.auth("nobody", "guess", None).expect("Access-Reject");
    }
    let alice = server.auth("alice", "wonderland", None);
    let nobody = server.auth("nobody", "wonderland", None);
    assert_eq!(visible(&alice), visible(&nobody));
    assert_eq!(alice.get("Reply-Message"), Some("authentication failed"));
    server.wait_for_log("reason=\"back-off: not checked, 10 failed passwords");
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("reason=\"back-off\"}"),
        "one metric label for every back-off:\n{metrics}"
    );
}

/// RFC 2865 allows one User-Name, User-Password and State per request: two are malformed,
/// dropped without an answer and counted.
#[test]
fn issue_12_duplicate_attributes_are_dropped_and_counted() {
    let server = Server::start_with(&Setup {
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    });
    let duplicates: [&[(&str, &str)]; 3] = [
        &[
            ("User-Name", "\"mallory\""),
            ("User-Name", "\"alice\""),
            ("User-Password", "\"wonderland\""),
        ],
        &[
            ("User-Name", "\"alice\""),
            ("User-Password", "\"x\""),
            ("User-Password", "\"wonderland\""),
        ],
        &[
            ("User-Name", "\"alice\""),
            ("User-Password", "\"123456\""),
            ("State", "0x01"),
            ("State", "0x02"),
        ],
    ];
    for attrs in duplicates {
        let mut attrs = attrs.to_vec();
        attrs.push(("Message-Authenticator", "0x00"));
        server.radclient(&attrs).expect("none");
    }
    server.wait_for_log("more than one attribute");
    let (_, body) = server.http_get("/metrics");
    let dropped: f64 = body
        .lines()
        .find_map(|l| {
            l.strip_prefix("tessera_radius_drops_total{cause=\"malformed\"}")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    assert_eq!(dropped, 3.0, "{body}");
    assert_eq!(server.spool().len(), 0);
}

/// Tokens an older version stored under a variant spelling are found, moved to the identity
/// when it has none, and otherwise listed for deletion; `token enroll` stores the identity.
#[test]
fn issue_12_token_identities_finds_and_moves_variant_spellings() {
    let server = Server::start();
    let (code, _) = cli(
        &server,
        &["token", "enroll", "--type", "hotp", "--user", "ALICE"],
    );
    assert_eq!(code, 0);
    let serial = serials(&server, "alice")
        .pop()
        .expect("stored under the identity");
    let (code, _) = cli(
        &server,
        &["token", "enroll", "--type", "hotp", "--user", "dave"],
    );
    assert_eq!(code, 0);
    let dave = serials(&server, "dave").pop().unwrap();
    // What an older version left behind: the same people under other spellings.
    let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
    db.execute(
        "UPDATE tokens SET user = 'ALICE' WHERE serial = ?1",
        [&serial],
    )
    .unwrap();
    let (code, _) = cli(
        &server,
        &["token", "enroll", "--type", "totp", "--user", "dave"],
    );
    assert_eq!(code, 0);
    db.execute("UPDATE tokens SET user = 'Dave' WHERE serial = ?1", [&dave])
        .unwrap();

    let (code, out) = cli(&server, &["token", "identities", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{out}");
    assert!(out.contains("\"identity\": \"alice\"") && out.contains("\"stored_as\": \"ALICE\""));

    let (code, out) = cli(&server, &["token", "identities", "--fix"]);
    assert_eq!(code, 0);
    assert!(out.contains("moved"), "{out}");
    assert!(out.contains("kept: the identity has a token"), "{out}");
    assert_eq!(serials(&server, "alice"), [serial]);
    assert_eq!(serials(&server, "Dave"), [dave], "never merged silently");
}

/// A hash of the directory password that an older version stored as PIN of an autoenrolled
/// token is removed at start when otppin is not 0.
#[test]
fn issue_12_stored_password_pins_are_removed_under_otppin_1() {
    let mut server = Server::start();
    let (code, _) = cli(
        &server,
        &["token", "enroll", "--type", "sms", "--user", "alice"],
    );
    assert_eq!(code, 0);
    let serial = serials(&server, "alice").pop().unwrap();
    assert_eq!(
        server.cli(&["token", "set-pin", &serial], "wonderland").0,
        0
    );
    let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
    db.execute(
        "UPDATE tokens SET description = 'auto enrolled for alice@local' WHERE serial = ?1",
        [&serial],
    )
    .unwrap();
    let has_pin = |server: &Server| {
        let (_, out) = cli(server, &["token", "show", &serial, "--json"]);
        out.contains("\"has_pin\": true")
    };
    assert!(has_pin(&server));
    server.restart();
    server.wait_for_log("removed the PIN hashes");
    assert!(!has_pin(&server));
}

/// An account deleted and created again under the same name is a new person: the old
/// account's token (which carries the old entry's entryUUID) is not inherited.
#[test]
fn issue_12_a_recreated_account_does_not_inherit_the_token() {
    let slapd = Slapd::start();
    let mut setup = ldap_setup(&slapd);
    setup.directories = setup
        .directories
        .replace("base_dn =", "cache_seconds = 0\nbase_dn =");
    let server = Server::start_with(&setup);
    let first = server.auth("alice", "alicepw", None);
    first.expect("Access-Challenge");
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    let serial = serials(&server, "alice").pop().unwrap();

    slapd.modify(&format!(
        "dn: uid=alice,ou=people,{BASE_DN}\nchangetype: delete\n\n\
         dn: uid=alice,ou=people,{BASE_DN}\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: alice\ncn: Another Alice\nsn: Other\nmobile: +4917099999999\nuserPassword: newpw\n"
    ));
    let reply = server.auth("alice", "newpw", None);
    reply.expect("Access-Reject");
    assert_eq!(reply.get("Reply-Message"), Some("authentication failed"));
    server.wait_for_log("belong to an earlier account");
    assert_eq!(
        server.spool().len(),
        1,
        "no code to the new account's phone"
    );
    assert_eq!(cli(&server, &["token", "delete", &serial]).0, 0);
    server
        .auth("alice", "newpw", None)
        .expect("Access-Challenge");
}

/// A reload (SIGHUP) forgives nobody: the back-off of a name no directory knows survives it.
#[test]
fn issue_12_a_reload_keeps_the_back_off_of_unknown_names() {
    let server = Server::start_with(&Setup {
        auth: "backoff_after = 3\nbackoff_initial = 60\n".into(),
        ..Setup::default()
    });
    for _ in 0..3 {
        server.auth("nobody", "guess", None).expect("Access-Reject");
    }
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    server.auth("nobody", "guess", None).expect("Access-Reject");
    server.wait_for_log("user=nobody realm=local result=\"reject\" reason=\"back-off: not checked, 3 failed passwords");
}
