//! The local users file, maintained with `tessera user add|passwd|del` while the server runs:
//! each change is picked up without a restart.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::util::{Server, run_cli};

/// Runs `tessera --config CONFIG user ARGS…` with `stdin` as the password input.
fn user_command(config: &Path, args: &[&str], stdin: &str) -> Output {
    let args: Vec<&str> = std::iter::once("user")
        .chain(args.iter().copied())
        .collect();
    run_cli(config, &args, stdin)
}

/// The server looks at the file's modification time at most once a second (documented in
/// `directory/users_file.rs`); waiting out that interval makes the next request see the edit.
/// This is a wait for a documented behaviour, not a timing assertion.
fn let_the_server_notice() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn add_change_password_and_delete_while_the_server_runs() {
    let server = Server::start();
    let config = server.dir.path().join("tessera.toml");
    server.auth("erin", "erinpw", None).expect("Access-Reject");

    let out = user_command(
        &config,
        &[
            "add",
            "erin",
            "--mobile",
            "+4916000000001",
            "--group",
            "vpn",
        ],
        "erinpw\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("user \"erin\" added"));
    let_the_server_notice();
    let first = server.auth("erin", "erinpw", None);
    first.expect("Access-Challenge");
    assert_eq!(server.spool().last().unwrap().1, "+4916000000001");
    server.wait_for_log("users file reloaded");

    // Adding her again is a "no" (exit 1), and the file stays as it was.
    let again = user_command(&config, &["add", "erin"], "other\n");
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let out = user_command(&config, &["passwd", "erin"], "newpw\n");
    assert!(out.status.success(), "{out:?}");
    let_the_server_notice();
    // The old password no longer opens a challenge; the new one does (the open challenge is
    // reused, so no second message is sent).
    server.auth("erin", "erinpw", None).expect("Access-Reject");
    server
        .auth("erin", "newpw", None)
        .expect("Access-Challenge");

    let out = user_command(&config, &["del", "erin"], "");
    assert!(out.status.success(), "{out:?}");
    let_the_server_notice();
    server.auth("erin", "newpw", None).expect("Access-Reject");
    let missing = user_command(&config, &["del", "erin"], "");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");

    // The other users were never touched.
    let text = std::fs::read_to_string(server.dir.path().join("users.toml")).unwrap();
    assert!(
        text.contains("name = \"alice\"") && !text.contains("erin"),
        "{text}"
    );
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

#[test]
fn a_user_added_with_file_gets_an_email_token() {
    let server = Server::start();
    let file = server.dir.path().join("users.toml");
    let out = user_command(
        Path::new("/nonexistent/tessera.toml"),
        &[
            "add",
            "frank",
            "--email",
            "frank@example.org",
            "--file",
            file.to_str().unwrap(),
        ],
        "frankpw\n",
    );
    assert!(out.status.success(), "{out:?}");
    let_the_server_notice();
    server
        .auth("frank", "frankpw", None)
        .expect("Access-Challenge");
    assert_eq!(server.spool().last().unwrap().1, "frank@example.org");
}

#[test]
fn user_show_masks_what_the_directory_knows() {
    let server = crate::util::Server::start();
    let config = server.dir.path().join("tessera.toml");
    let out = crate::util::tessera()
        .arg("--config")
        .arg(&config)
        .args(["user", "show", "alice@local", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["user"], "alice");
    assert_eq!(value["directory"], "local");
    assert_eq!(value["mobile"], "+49********678");
    let missing = crate::util::tessera()
        .arg("--config")
        .arg(&config)
        .args(["user", "show", "nobody"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}
