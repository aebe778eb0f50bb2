//! Issue 30: accounting sessions in the admin API, on the real binary: a user's sessions (the
//! open ones first, found through the identity a variant spelling resolves to) and every open
//! session, each with the fields of `tessera sessions --json`.

use serde_json::Value;
use testkit::radclient::{SECRET, radclient_command};

use crate::accounting::accounting_addr;
use crate::admin_api::{Client, setup};
use crate::util::Server;

/// An Accounting-Request of session `id` of `user`.
fn acct(server: &Server, status: &str, id: &str, user: &str) {
    let (id, user) = (format!("\"{id}\""), format!("\"{user}\""));
    radclient_command(
        accounting_addr(server),
        SECRET,
        "acct",
        &[
            ("Acct-Status-Type", status),
            ("Acct-Session-Id", &id),
            ("NAS-Identifier", "\"gw1\""),
            ("User-Name", &user),
            ("Calling-Station-Id", "\"02-00-00-00-00-01\""),
        ],
    )
    .expect("Accounting-Response");
}

fn ids(answer: &Value) -> Vec<&str> {
    answer["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions: {answer}"))
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect()
}

fn keys(row: &Value) -> Vec<String> {
    let mut keys: Vec<String> = row.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn a_users_sessions_open_first_and_all_open_sessions() {
    let server = Server::start_with(&setup("", ""));
    acct(&server, "Start", "s1", "alice");
    // Newer than s1, and stopped: newest first would put it first, open first does not.
    acct(&server, "Start", "s2", "ALICE@local");
    acct(&server, "Stop", "s2", "ALICE@local");
    acct(&server, "Start", "s3", "bob");

    let mut dave = Client::login(&server, "dave", "davepw");
    let answer = dave.call("GET", "/api/v1/users/local/Alice/sessions", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let alice = answer.json();
    assert_eq!(
        (&alice["user"], &alice["realm"]),
        (&"alice".into(), &"local".into())
    );
    assert_eq!(ids(&alice), ["s1", "s2"], "{alice}");
    assert_eq!(alice["sessions"][0]["open"], true);
    assert_eq!(alice["sessions"][1]["open"], false);
    assert_eq!(alice["sessions"][1]["identity"], "alice");

    let answer = dave.call("GET", "/api/v1/sessions", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let open = answer.json();
    assert_eq!(ids(&open), ["s3", "s1"], "{open}");

    // The same fields as `tessera sessions --json`.
    let (code, out, err) = server.cli(&["sessions", "--json", "--user", "bob"], "");
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli[0], open["sessions"][0], "{out}");
    assert_eq!(keys(&cli[0]), keys(&open["sessions"][0]));

    let answer = dave.call("GET", "/api/v1/sessions?limit=many", None);
    assert_eq!(answer.status, 400, "{}", answer.body);
}
