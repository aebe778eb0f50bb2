//! The HTTP face (issue 24): LinOTP's and privacyIDEA's `/validate/check` and
//! `/validate/simplecheck` on the real binary, called with curl (every body encoding, TLS with
//! the test CA) and with privacyIDEA's own `privacyidea-validate` script.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::util::{Server, Setup};

/// tessera with `[http]` on a free port, plus `http` (more `[http]` keys) and `extra` sections.
pub(crate) fn http_setup(http: &str, extra: &str) -> Setup {
    Setup {
        extra: format!("[http]\nlisten = [\"127.0.0.1:0\"]\n{http}\n{extra}"),
        ..Setup::default()
    }
}

/// An HTTP answer: status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// Runs curl with `args` (the URL among them) and returns the answer.
fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Answer {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_string(),
    }
}

fn url(server: &Server, path: &str) -> String {
    format!(
        "http://{}{path}",
        server.http_addr.expect("no [http] listener")
    )
}

/// POSTs `fields` urlencoded to `/validate/check`.
fn check(server: &Server, fields: &[(&str, &str)]) -> Answer {
    let mut args: Vec<String> = vec![];
    for (name, value) in fields {
        args.push("--data-urlencode".into());
        args.push(format!("{name}={value}"));
    }
    args.push(url(server, "/validate/check"));
    curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Asserts a 200 with `authentication` and LinOTP's `value`; returns the JSON.
#[track_caller]
fn expect(answer: &Answer, authentication: &str) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["result"]["status"], true, "{json}");
    assert_eq!(json["result"]["authentication"], authentication, "{json}");
    assert_eq!(
        json["result"]["value"],
        authentication == "ACCEPT",
        "{json}"
    );
    json
}

/// The transaction id of a challenge, after checking every name it goes by.
#[track_caller]
fn transaction(json: &Value) -> String {
    let id = json["detail"]["transaction_id"]
        .as_str()
        .expect("transaction_id")
        .to_string();
    assert_eq!(json["detail"]["transactionid"], id.as_str(), "{json}");
    assert_eq!(json["detail"]["state"], id.as_str(), "{json}");
    assert_eq!(
        json["detail"]["multi_challenge"][0]["transaction_id"],
        id.as_str(),
        "{json}"
    );
    id
}

#[test]
fn sms_two_rounds_then_the_replay_is_refused() {
    // Debug logging: not even there may a password or a code appear.
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &http_setup("", ""));
    let server = Server::start_logging(dir, &config, "debug");
    let first = expect(
        &check(&server, &[("user", "alice"), ("pass", "wonderland")]),
        "CHALLENGE",
    );
    assert_eq!(
        first["detail"]["message"],
        "sms submitted to +49********678"
    );
    let challenge = &first["detail"]["multi_challenge"][0];
    assert_eq!(challenge["type"], "sms", "{first}");
    assert!(
        challenge["serial"].as_str().unwrap().starts_with("LSSM"),
        "{first}"
    );
    assert_eq!(first["jsonrpc"], "2.0");
    assert!(
        first["version"].as_str().unwrap().starts_with("tessera "),
        "{first}"
    );
    let id = transaction(&first);
    let spool = server.spool();
    assert_eq!((spool.len(), spool[0].0.as_str()), (1, "sms"));
    let otp = server.last_otp();
    let second = [
        ("user", "alice"),
        ("pass", otp.as_str()),
        ("transaction_id", id.as_str()),
    ];
    let accept = expect(&check(&server, &second), "ACCEPT");
    assert!(accept["detail"].get("transaction_id").is_none(), "{accept}");
    let replay = expect(&check(&server, &second), "REJECT");
    assert!(replay["detail"].get("transaction_id").is_none(), "{replay}");
    // The audit names the transport and the caller.
    let (code, audit, _) = server.cli(&["audit"], "");
    assert_eq!(code, 0);
    assert!(audit.contains("http/127.0.0.1"), "{audit}");
    server.wait_for_log("reason=\"unknown, expired or closed challenge");
    let log = server.log_text();
    assert!(!log.contains("wonderland"), "a password in the log:\n{log}");
    assert!(!log.contains(&otp), "a code in the log:\n{log}");
}

#[test]
fn email_two_rounds_with_linotp_names_and_a_get_query_string() {
    let server = Server::start_with(&http_setup("", ""));
    let first = curl(&[&url(&server, "/validate/check?user=bob&pass=builder")]);
    let first = expect(&first, "CHALLENGE");
    assert_eq!(
        first["detail"]["message"],
        "e-mail submitted to b**@example.org"
    );
    assert_eq!(
        first["detail"]["multi_challenge"][0]["type"], "email",
        "{first}"
    );
    let id = transaction(&first);
    assert_eq!(server.spool()[0].1, "bob@example.org");
    let second = format!(
        "/validate/check?user=bob&pass={}&transactionid={id}&client=10.9.9.9",
        server.last_otp()
    );
    expect(&curl(&[&url(&server, &second)]), "ACCEPT");
    // LinOTP's other name, `state`, in a form body.
    let first = expect(
        &check(&server, &[("user", "alice"), ("pass", "wonderland")]),
        "CHALLENGE",
    );
    let id = transaction(&first);
    let otp = server.last_otp();
    expect(
        &check(
            &server,
            &[("user", "alice"), ("pass", &otp), ("state", &id)],
        ),
        "ACCEPT",
    );
}

#[test]
fn json_and_multipart_bodies() {
    let server = Server::start_with(&http_setup("", ""));
    let first = curl(&[
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"user": "alice", "pass": "wonderland", "realm": "local", "client": "x"}"#,
        &url(&server, "/validate/check"),
    ]);
    let id = transaction(&expect(&first, "CHALLENGE"));
    let otp = server.last_otp();
    let second = curl(&[
        "-F",
        "user=alice",
        "-F",
        &format!("pass={otp}"),
        "-F",
        &format!("transaction_id={id}"),
        &url(&server, "/validate/check"),
    ]);
    expect(&second, "ACCEPT");
}

#[test]
fn simplecheck_answers_in_smileys() {
    let server = Server::start_with(&http_setup("", ""));
    let simple = url(&server, "/validate/simplecheck");
    let first = curl(&["--data", "user=alice&pass=wonderland", &simple]);
    assert_eq!(first.status, 200);
    let mut words = first.body.splitn(3, ' ');
    assert_eq!(words.next(), Some(":-("), "{}", first.body);
    let state = words.next().expect("transaction id").to_string();
    assert_eq!(words.next(), Some("sms submitted to +49********678"));
    let wrong = if server.last_otp() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let reject = curl(&[
        "--data",
        &format!("user=alice&pass={wrong}&state={state}"),
        &simple,
    ]);
    assert_eq!(reject.body, ":-(");
    let accept = curl(&[
        "--data",
        &format!("user=alice&pass={}&state={state}", server.last_otp()),
        &simple,
    ]);
    assert_eq!(accept.body, ":-)");
}

#[test]
fn a_second_first_round_is_told_already_submitted_and_nothing_is_sent() {
    let server = Server::start_with(&http_setup("", ""));
    let login = [("user", "alice"), ("pass", "wonderland")];
    let first = transaction(&expect(&check(&server, &login), "CHALLENGE"));
    let again = expect(&check(&server, &login), "CHALLENGE");
    assert_eq!(transaction(&again), first, "the open challenge comes back");
    assert_eq!(
        again["detail"]["multi_challenge"][0]["type"], "sms",
        "{again}"
    );
    assert_eq!(
        again["detail"]["message"],
        "sms with otp already submitted to +49********678"
    );
    assert_eq!(server.spool().len(), 1, "nothing is sent again");
}

#[test]
fn wrong_passwords_over_http_back_off_the_right_one_over_radius() {
    let server = Server::start_with(
        &http_setup("", "").clone_with_auth("backoff_after = 3\nbackoff_initial = 60\n"),
    );
    for _ in 0..3 {
        let reject = expect(
            &check(&server, &[("user", "alice"), ("pass", "guess")]),
            "REJECT",
        );
        assert_eq!(reject["detail"]["message"], "authentication failed");
    }
    // The NAS sends no Calling-Station-Id, so its request comes from the same origin as the
    // HTTP caller: 127.0.0.1. The back-off is one per identity and origin, whatever the door.
    let radius = server.auth("alice", "wonderland", None);
    radius.expect("Access-Reject");
    server.wait_for_log("reason=\"back-off: not checked, 3 failed passwords from this origin");
    assert!(server.spool().is_empty(), "no code was sent");
}

trait WithAuth {
    fn clone_with_auth(&self, auth: &str) -> Setup;
}

impl WithAuth for Setup {
    fn clone_with_auth(&self, auth: &str) -> Setup {
        Setup {
            auth: auth.into(),
            ..self.clone()
        }
    }
}

#[test]
fn callers_outside_allow_get_403_and_nothing_is_decided() {
    let server = Server::start_with(&http_setup(
        "allow = [\"10.0.0.0/8\"]",
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    ));
    let refused = check(&server, &[("user", "alice"), ("pass", "wonderland")]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["result"]["status"], false);
    let simple = curl(&[
        "--data",
        "user=alice&pass=wonderland",
        &url(&server, "/validate/simplecheck"),
    ]);
    assert_eq!((simple.status, simple.body.as_str()), (403, ":-("));
    assert!(server.spool().is_empty(), "no code was sent");
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("tessera_http_refused_total{cause=\"not_allowed\"} 2"),
        "{metrics}"
    );
    // RADIUS is not affected.
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}

#[test]
fn bad_requests_get_400_and_consume_nothing() {
    let server = Server::start_with(&http_setup("", ""));
    let target = url(&server, "/validate/check");
    for (args, what) in [
        (vec!["--data", "user=alice"], "missing pass"),
        (vec!["--data", "pass=wonderland"], "missing user"),
        (
            vec![
                "-H",
                "Content-Type: application/json",
                "--data",
                "{\"user\": \"alice\", \"pass\"",
            ],
            "truncated JSON",
        ),
        (
            vec![
                "-H",
                "Content-Type: application/json",
                "--data",
                "[\"alice\"]",
            ],
            "JSON not an object",
        ),
        (
            vec![
                "-H",
                "Content-Type: multipart/form-data",
                "--data",
                "user=alice&pass=wonderland",
            ],
            "multipart without boundary",
        ),
        (
            vec![
                "-H",
                "Content-Type: application/xml",
                "--data",
                "<user>alice</user>",
            ],
            "unknown type",
        ),
    ] {
        let mut args = args.clone();
        args.push(&target);
        let answer = curl(&args);
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        let json = answer.json();
        assert_eq!(json["result"]["status"], false, "{what}: {json}");
        assert!(
            json["result"]["error"]["message"].is_string(),
            "{what}: {json}"
        );
    }
    // An oversized body: 413, read no further.
    let big = format!("user=alice&pass=wonderland&pad={}", "x".repeat(20 * 1024));
    let too_large = curl(&["--data", &big, &target]);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(server.spool().is_empty(), "no code was sent");
    // Nothing was counted against alice either.
    expect(
        &check(&server, &[("user", "alice"), ("pass", "wonderland")]),
        "CHALLENGE",
    );
    assert_eq!(curl(&[&url(&server, "/healthz")]).body, "ok\n");
}

#[test]
fn tls_with_a_private_ca() {
    let ca = testkit::ca::TestCa::new();
    let server = Server::start_with(&http_setup(
        &format!(
            "tls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            ca.cert.display(),
            ca.key.display()
        ),
        "",
    ));
    let addr = server.http_addr.unwrap();
    server.wait_for_log(&format!("HTTP API on https://{addr}"));
    // The test CA's certificates live two days: tessera warns, as for RadSec's.
    server.wait_for_log("the HTTP server certificate expires within 30 days");
    let target = format!("https://{addr}/validate/check");
    let ca_file = ca.ca.display().to_string();
    let first = curl(&[
        "--cacert",
        &ca_file,
        "--data",
        "user=alice&pass=wonderland",
        &target,
    ]);
    let id = transaction(&expect(&first, "CHALLENGE"));
    let second = format!("user=alice&pass={}&transaction_id={id}", server.last_otp());
    expect(
        &curl(&["--cacert", &ca_file, "--data", &second, &target]),
        "ACCEPT",
    );
    // Without the CA the certificate is not trusted; plain HTTP gets no answer.
    assert_eq!(curl(&["--data", "user=alice&pass=x", &target]).status, 0);
    assert_eq!(
        curl(&[
            "--data",
            "user=alice&pass=x",
            &format!("http://{addr}/validate/check")
        ])
        .status,
        0
    );
}

/// privacyIDEA's own command-line client, unpacked from its PyPI source (its `pip install`
/// fails): `TESSERA_PRIVACYIDEAADM` names the sdist, else `scripts/test.sh`'s download place.
fn privacyidea_validate(dir: &std::path::Path) -> PathBuf {
    let sdist = std::env::var("TESSERA_PRIVACYIDEAADM")
        .unwrap_or_else(|_| "/tmp/pidl/privacyideaadm-3.0.tar.gz".into());
    let status = Command::new("tar")
        .args(["xzf", &sdist, "-C"])
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(
        status.success(),
        "cannot unpack {sdist} (scripts/test.sh downloads it)"
    );
    dir.join("privacyideaadm-3.0/scripts/privacyidea-validate")
}

#[test]
fn privacyidea_validate_logs_in_with_password_and_code_in_one_field() {
    let server = Server::start_with(&http_setup("", ""));
    let unpacked = tempfile::tempdir().unwrap();
    let script = privacyidea_validate(unpacked.path());
    let base = format!("http://{}", server.http_addr.unwrap());
    let run = |password: &str| {
        let out = Command::new("python3")
            .arg(&script)
            .args([
                "--url", &base, "--user", "alice", "--realm", "local", "--client", "10.1.2.3",
            ])
            .args(["--password", password])
            .output()
            .expect("run privacyidea-validate");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // The first round: a challenge is no success to this client.
    let (code, out) = run("wonderland");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("failed to authenticate"), "{out}");
    let otp = server.last_otp();
    let (code, out) = run(&format!("wonderland{otp}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("User alice successfully authenticated"),
        "{out}"
    );
    // The same again is a replay.
    assert_eq!(run(&format!("wonderland{otp}")).0, Some(1));
}

#[test]
fn sighup_reloads_the_allow_list() {
    let server = Server::start_with(&http_setup("", ""));
    let login = [("user", "alice"), ("pass", "wonderland")];
    expect(&check(&server, &login), "CHALLENGE");
    let config = server.dir.path().join("tessera.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(
        "[http]\nlisten = [\"127.0.0.1:0\"]\n",
        "[http]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"10.0.0.0/8\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    assert_eq!(check(&server, &login).status, 403);
}

#[test]
fn a_policy_client_filter_matches_the_http_caller() {
    let default = Setup::default();
    let policies = format!(
        "{}\n[[policy]]\nname = \"loopback\"\nscope = \"authentication\"\nclient = \"127.0.0.1\"\n\
         action = \"challenge_text='code for callers on loopback sent to <recipient>'\"\n\n\
         [[policy]]\nname = \"lan\"\nscope = \"authentication\"\nclient = \"10.0.0.0/8\"\n\
         action = \"challenge_text='code for the LAN'\"\n",
        default.policies
    );
    let server = Server::start_with(&Setup {
        policies,
        ..http_setup("", "")
    });
    let first = expect(
        &check(&server, &[("user", "alice"), ("pass", "wonderland")]),
        "CHALLENGE",
    );
    assert_eq!(
        first["detail"]["message"],
        "code for callers on loopback sent to +49********678"
    );
}
