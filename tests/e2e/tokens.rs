//! Tokens enrolled and managed with the admin command line, used over RADIUS while the server
//! runs: HOTP and TOTP with otppin 0 and 2, lockout and unlock, disable, delete, audit.

use std::process::Stdio;

use tessera::otp::{hotp, totp_step};

use crate::util::{Server, Setup, tessera};

/// "12345678901234567890" in hex: RFC 4226's test seed.
const SEED_HEX: &str = "3132333435363738393031323334353637383930";
const SEED: &[u8] = b"12345678901234567890";

fn setup(otppin: &str, auth: &str) -> Setup {
    Setup {
        policies: format!(
            "[[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin={otppin}\"\n"
        ),
        auth: auth.into(),
        ..Setup::default()
    }
}

/// Runs `tessera --config <server's config> ARGS`, feeding `stdin`; returns (exit, stdout, stderr).
fn cli(server: &Server, args: &[&str], stdin: &str) -> (i32, String, String) {
    server.cli(args, stdin)
}

fn enroll(server: &Server, kind: &str) -> String {
    let (code, out, err) = cli(
        server,
        &[
            "token",
            "enroll",
            "--type",
            kind,
            "--user",
            "alice",
            "--seed-file",
            "-",
            "--json",
        ],
        SEED_HEX,
    );
    assert_eq!(code, 0, "{err}");
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uri = value["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with(&format!(
            "otpauth://{kind}/tessera:alice@local?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        )),
        "{uri}"
    );
    value["serial"].as_str().unwrap().to_string()
}

#[test]
fn cli_enrolled_hotp_token_with_only_otp() {
    let server = Server::start_with(&setup("2", ""));
    let serial = enroll(&server, "hotp");
    assert!(serial.starts_with("OATH"), "{serial}");
    server.auth("alice", "755224", None).expect("Access-Accept");
    server.auth("alice", "755224", None).expect("Access-Reject"); // replay
    server.auth("alice", "359152", None).expect("Access-Accept"); // counter 2, within the window
    let (_, out, _) = cli(&server, &["token", "show", &serial, "--json"], "");
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["counter"], 3);
    assert!(
        !out.contains(SEED_HEX) && !out.contains("GEZDGNBV"),
        "the seed is never shown again"
    );
}

#[test]
fn cli_enrolled_totp_token_with_token_pin() {
    let server = Server::start_with(&setup("0", ""));
    let serial = enroll(&server, "totp");
    let (code, out, _) = cli(&server, &["token", "set-pin", &serial], "4321\n");
    assert_eq!(
        (code, out.trim()),
        (0, format!("{serial}: PIN set").as_str())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let otp = hotp(SEED, totp_step(now, 30), 6);
    server
        .auth("alice", &format!("0000{otp}"), None)
        .expect("Access-Reject"); // wrong PIN
    server
        .auth("alice", &format!("4321{otp}"), None)
        .expect("Access-Accept");
    server
        .auth("alice", &format!("4321{otp}"), None)
        .expect("Access-Reject"); // same step twice
}

#[test]
fn lockout_at_max_fail_and_unlock_with_the_cli() {
    let server = Server::start_with(&setup("2", "max_fail = 3\n"));
    let serial = enroll(&server, "hotp");
    for _ in 0..3 {
        server.auth("alice", "000000", None).expect("Access-Reject");
    }
    let locked = server.auth("alice", "755224", None);
    locked.expect("Access-Reject");
    assert_eq!(
        locked.get("Reply-Message"),
        Some("too many failed attempts: your token is locked")
    );
    let (_, list, _) = cli(&server, &["token", "list", "--user", "alice"], "");
    assert!(
        list.lines()
            .any(|l| l.contains(&serial) && l.contains("locked") && l.contains("4/3")),
        "{list}"
    );
    assert_eq!(cli(&server, &["token", "unlock", &serial], "").0, 0);
    server.auth("alice", "287082", None).expect("Access-Accept");
}

#[test]
fn disable_enable_delete_and_audit() {
    let server = Server::start_with(&setup("2", ""));
    let serial = enroll(&server, "hotp");
    assert_eq!(cli(&server, &["token", "disable", &serial], "").0, 0);
    server.auth("alice", "755224", None).expect("Access-Reject");
    assert_eq!(cli(&server, &["token", "enable", &serial], "").0, 0);
    server.auth("alice", "755224", None).expect("Access-Accept");
    assert_eq!(cli(&server, &["token", "delete", &serial], "").0, 0);
    let (code, _, err) = cli(&server, &["token", "delete", &serial], "");
    assert_eq!(code, 1, "deleting twice is a 'no'");
    assert!(err.contains("no token with serial"), "{err}");

    // Audit rows are written just after the reply leaves: wait for both.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (out, rows) = loop {
        let (code, out, _) = cli(
            &server,
            &["audit", "--user", "alice", "--since", "1h", "--json"],
            "",
        );
        assert_eq!(code, 0);
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rows = rows.as_array().unwrap().clone();
        let decisions = rows
            .iter()
            .filter(|r| !r["action"].as_str().unwrap().starts_with("token "))
            .count();
        if decisions >= 2 || std::time::Instant::now() > deadline {
            break (out, rows);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let results: Vec<&str> = rows
        .iter()
        .filter(|r| !r["action"].as_str().unwrap().starts_with("token "))
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["accept", "reject"], "newest first");
    assert!(!out.contains("755224"));

    // Issue 13: the admin commands wrote no audit row. Each change now does: who ran it (the
    // OS user), what, which serial, whose token, and how it went.
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    let admin: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .filter(|r| r["action"].as_str().unwrap().starts_with("token "))
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["serial"].as_str().unwrap_or("-"),
                r["result"].as_str().unwrap(),
                r["client"].as_str().unwrap(),
            )
        })
        .collect();
    let client = format!("cli ({me})");
    assert_eq!(
        admin,
        [
            ("token delete", serial.as_str(), "ok", client.as_str()),
            ("token enable", serial.as_str(), "ok", client.as_str()),
            ("token disable", serial.as_str(), "ok", client.as_str()),
            ("token enroll", serial.as_str(), "ok", client.as_str()),
        ],
        "newest first:\n{out}"
    );
    // The failed second delete is there too (the token no longer names its owner).
    let (_, all, _) = cli(&server, &["audit", "--json"], "");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    let failed = &all.as_array().unwrap()[0];
    assert_eq!(failed["action"], "token delete", "{all}");
    assert_eq!(failed["result"], "failed", "{all}");
    assert_eq!(failed["serial"], serial.as_str(), "{all}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("no token with serial"),
        "{all}"
    );
}

#[test]
fn no_password_or_otp_reaches_log_or_audit() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    let otp = server.last_otp();
    server.auth("alice", "wonderland-wrong", None);
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    server.wait_for_log("result=\"accept\"");
    let (_, audit, _) = cli(&server, &["audit", "--json"], "");
    for text in [server.log_text(), audit] {
        assert!(!text.contains("wonderland"), "password leaked:\n{text}");
        assert!(!text.contains(&otp), "OTP leaked:\n{text}");
        assert!(!text.contains("testing123"), "secret leaked:\n{text}");
    }
}

/// Issue 13: a User-Name with a newline wrote a genuine-looking second line into the human log
/// and a forged row into `tessera audit`; ESC and CR went out raw. Each is escaped now: one
/// request, one log line, one audit row.
#[test]
fn issue_13_control_characters_cannot_forge_log_lines_or_audit_rows() {
    let server = Server::start();
    // radclient turns the escapes in a quoted string into the control characters themselves.
    let user = "\"mallory\\nFORGED 2026-12-01T00:00:00Z  INFO tessera::auth::engine: \
                authentication client=test-nas user=alice result=\\\"accept\\\" reason=otp valid\
                \\033[2K\\r\"";
    let reply = server.radclient(&[
        ("User-Name", user),
        ("User-Password", "\"x\""),
        ("Message-Authenticator", "0x00"),
    ]);
    reply.expect("Access-Reject");
    assert!(reply.output.contains("FORGED"), "{}", reply.output);
    let line = server.wait_for_log("FORGED");
    assert!(line.contains("user=\"mallory\\\\nFORGED"), "{line}");
    assert_eq!(server.log_count("FORGED"), 1, "{}", server.log_text());
    let log = server.log_text();
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log:?}");

    // The audit row is written just after the reply leaves: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let table = loop {
        let (code, out, err) = cli(&server, &["audit"], "");
        assert_eq!(code, 0, "{err}");
        if out.contains("FORGED") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(table.lines().count(), 2, "a header and one row:\n{table}");
    assert!(
        table.contains("mallory\\nFORGED") && !table.contains('\x1b') && !table.contains('\r'),
        "{table:?}"
    );
    // Stored escaped, so any other reader of the table is safe too.
    let (_, json, _) = cli(&server, &["audit", "--json"], "");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let stored = rows[0]["user"].as_str().unwrap();
    assert!(stored.starts_with("mallory\\nFORGED"), "{stored:?}");
    assert!(!stored.contains('\x1b'), "{stored:?}");
}

/// The `key=value` fields of a human log line after `message`, read as a reader of the log
/// would: a value is a word, or a quoted string in which `\"` and `\\` are escapes.
fn log_fields(line: &str, message: &str) -> Vec<(String, String)> {
    let rest = line.split_once(message).map_or("", |(_, rest)| rest);
    let mut fields = Vec::new();
    let mut chars = rest.trim_start().chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            chars.next_if_eq(&' ');
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        fields.push((key.trim().to_string(), value));
    }
    fields
}

/// Issue 23 (9): the human log's `user=` was written bare, so a User-Name with spaces put a
/// second `result="accept"` into the decision's line. A value that could end early is quoted
/// now: the line has one `result`, the reject, and `user` is the whole name.
#[test]
fn issue_23_a_user_name_cannot_forge_a_log_field() {
    let server = Server::start();
    let name = r#"mallory result="accept" reason="otp valid" serial=LSSM1"#;
    server.auth(name, "x", None).expect("Access-Reject");
    let line = server.wait_for_log("mallory");
    let fields = log_fields(&line, "authentication");
    let values = |key: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("result"), ["reject"], "{line}");
    assert_eq!(values("user"), [name], "{line}");
    assert_eq!(values("serial"), ["-"], "{line}");
    assert_eq!(values("reason"), ["unknown user"], "{line}");
}

/// Issue 13: `tessera audit | head -1` and `token list | head` panicked with exit 101 on the
/// closed pipe. They now stop quietly with success. The pipe's read end is closed before the
/// command starts, so its first line already meets a closed pipe.
#[test]
fn issue_13_cli_commands_exit_quietly_on_a_closed_pipe() {
    let server = Server::start();
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    server.wait_for_log("result=\"challenge\"");
    for args in [&["audit"][..], &["token", "list"], &["check-config"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = tessera()
            .arg("--config")
            .arg(server.dir.path().join("tessera.toml"))
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Issue 23 (9): `tessera token list` on a fresh install made an empty database and a new key
/// file. Commands that read the store, or change what it holds, now say there is none and
/// exit 1, creating nothing; `token enroll` still makes both.
#[test]
fn issue_23_commands_on_a_store_that_does_not_exist_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &Setup::default());
    let (db, key) = (
        dir.path().join("tessera.db"),
        dir.path().join("tessera.key"),
    );
    for args in [
        &["token", "list"][..],
        &["token", "list", "--json"],
        &["token", "show", "LSSM00000001"],
        &["token", "identities"],
        &["token", "identities", "--fix"],
        &["token", "disable", "LSSM00000001"],
        &["token", "delete", "LSSM00000001"],
        &["audit"],
    ] {
        let out = crate::util::run_cli(&config, args, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "tessera: no database at {} (nothing enrolled yet?)",
                db.display()
            ),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!db.exists() && !key.exists(), "{args:?} created a file");
    }
    // Enrolment makes the store; then the same commands answer.
    let out = crate::util::run_cli(
        &config,
        &["token", "enroll", "--type", "sms", "--user", "alice"],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(db.exists() && key.exists());
    let out = crate::util::run_cli(&config, &["token", "list"], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));

    // A database without its key file (moved away): no new key either.
    std::fs::remove_file(&key).unwrap();
    let out = crate::util::run_cli(&config, &["audit"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");
    assert!(!key.exists(), "audit created a key file");
}

/// Issue 23 (9): `token enroll --seed HEX` put the seed on the command line, where `ps` and
/// the shell's history show it. The seed comes from a file or standard input now
/// (`--seed-file`); `--seed` with a value is refused before anything happens, and the refusal
/// says what to use instead.
#[test]
fn issue_23_the_seed_is_read_from_a_file_never_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &Setup::default());
    for args in [
        &["--seed", SEED_HEX][..],
        &[&format!("--seed={SEED_HEX}")],
        &["--seed"],
    ] {
        let mut all = vec!["token", "enroll", "--type", "hotp", "--user", "alice"];
        all.extend_from_slice(args);
        let out = crate::util::run_cli(&config, &all, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--seed no longer takes the seed on the command line")
                && stderr.contains("--seed-file FILE")
                && !stderr.contains(SEED_HEX),
            "{args:?}: {stderr}"
        );
        assert!(!dir.path().join("tessera.db").exists(), "{args:?}");
    }

    // From a file: the token's codes are RFC 4226's for that seed.
    let seed_file = dir.path().join("seed.hex");
    std::fs::write(&seed_file, format!("{SEED_HEX}\n")).unwrap();
    let out = crate::util::run_cli(
        &config,
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "alice",
            "--json",
            "--seed-file",
            &seed_file.display().to_string(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let uri = value["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        "{uri}"
    );

    // Not a seed: refused without repeating what the file holds.
    std::fs::write(&seed_file, "not-hex-at-all\n").unwrap();
    let out = crate::util::run_cli(
        &config,
        &[
            "token",
            "enroll",
            "--type",
            "hotp",
            "--user",
            "alice",
            "--seed-file",
            &seed_file.display().to_string(),
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("expected a seed of at least 10 octets in hex"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-hex-at-all"), "{stderr}");
}
