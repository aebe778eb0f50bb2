//! `tessera login`: a two-round login answered on stdin, over UDP and over RadSec, and the
//! exit codes a script sees (0 Accept, 1 Reject, 2 no answer). Also `tls_only`, which drops a
//! RadSec client's UDP packets, with `tessera login --tls` as that client.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use crate::util::{SECRET, Server, Setup, tessera};
use testkit::ca::TestCa;
use testkit::ports::closed_port;

/// What a login run showed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tessera login ARGS`, types `password`, and answers each challenge with `answer`
/// (or, when `None`, with the OTP the server just spooled).
fn login(server: &Server, args: &[&str], password: &str, answer: Option<&str>) -> Run {
    let mut child = tessera()
        .arg("login")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera login");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut shown = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("Access-Challenge: ") {
            let code = answer.map_or_else(|| server.last_otp(), str::to_string);
            writeln!(stdin, "{code}").unwrap();
        }
        shown.push_str(&line);
        line.clear();
    }
    drop(stdin);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: shown,
        stderr,
    }
}

fn secret_file(server: &Server) -> String {
    let path = server.dir.path().join("nas.secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path.display().to_string()
}

#[test]
fn two_rounds_over_udp_answered_on_stdin() {
    let server = Server::start();
    let secret = secret_file(&server);
    let address = server.addr.to_string();
    let args = ["alice", "--server", &address, "--secret-file", &secret];

    let run = login(&server, &args, "wonderland", None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("Access-Challenge: sms submitted to +49********678"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Access-Accept"), "{}", run.stdout);

    // A wrong code: Access-Reject, exit 1.
    let run = login(&server, &args, "wonderland", Some("000000"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Access-Reject"), "{}", run.stdout);

    // Nobody there: exit 2.
    let closed = format!("127.0.0.1:{}", closed_port());
    let run = login(
        &server,
        &[
            "alice",
            "--server",
            &closed,
            "--secret-file",
            &secret,
            "--timeout",
            "1",
        ],
        "wonderland",
        None,
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
}

/// A server whose only client is `nas1`: 127.0.0.1 over UDP and the certificate over RadSec,
/// `tls_only` as given.
fn tls_setup(ca: &TestCa, tls_only: bool) -> Setup {
    Setup {
        server: format!(
            "tls_listen = [\"127.0.0.1:0\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            ca.cert.display(),
            ca.key.display(),
            ca.ca.display()
        ),
        clients: format!(
            "[[client]]\nname = \"nas1\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\ntls_identity = \"nas1.example.org\"\ntls_only = {tls_only}\n"
        ),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    }
}

#[test]
fn two_rounds_over_radsec_and_radius_1_1() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&tls_setup(&ca, false));
    let address = server.tls_addr.unwrap().to_string();
    let (cert, key, ca_path) = (
        cert.display().to_string(),
        key.display().to_string(),
        ca.ca.display().to_string(),
    );
    let args = [
        "alice", "--server", &address, "--tls", "--cert", &cert, "--key", &key, "--ca", &ca_path,
    ];
    let run = login(&server, &args, "wonderland", None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Access-Challenge: sms"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Access-Accept"), "{}", run.stdout);
    // The same over RADIUS/1.1 (bob: an e-mail token).
    let mut radius11 = args.to_vec();
    radius11[0] = "bob";
    radius11.push("--radius11");
    let run = login(&server, &radius11, "builder", None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Access-Challenge: e-mail"),
        "{}",
        run.stdout
    );
    let (_, metrics) = server.http_get("/metrics");
    for transport in ["tls", "radius/1.1"] {
        let series = format!(
            "tessera_radius_replies_total{{code=\"Access-Accept\",client=\"nas1\",transport=\"{transport}\"}} 1"
        );
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
}

#[test]
fn tls_only_drops_the_clients_udp_and_counts_it() {
    let ca = TestCa::new();
    let (cert, key) = ca.client_cert("nas1", "DNS:nas1.example.org");
    let server = Server::start_with(&tls_setup(&ca, true));
    server.auth("alice", "wonderland", None).expect("none");
    server.wait_for_log("cause=\"tls_only\"");
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("tessera_radius_drops_total{cause=\"tls_only\"} 1"),
        "{metrics}"
    );
    // Over RadSec the same client is served.
    let address = server.tls_addr.unwrap().to_string();
    let (cert, key, ca_path) = (
        cert.display().to_string(),
        key.display().to_string(),
        ca.ca.display().to_string(),
    );
    let args = [
        "alice", "--server", &address, "--tls", "--cert", &cert, "--key", &key, "--ca", &ca_path,
    ];
    let run = login(&server, &args, "wonderland", None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn at_a_terminal_the_password_is_not_echoed_and_the_reply_attributes_are_named() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"attributes\"\nscope = \"authentication\"\n\
         reply = [\"Fortinet-Group-Name = staff-{user}\"]\n",
    );
    let server = Server::start_with(&setup);
    let secret = secret_file(&server);
    let address = server.addr.to_string();
    let spool = server.dir.path().join("spool.log");
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/util/pty_login.py"
        ))
        .args(["--password", "wonderland", "--spool"])
        .arg(&spool)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "login",
            "alice",
            "--server",
            &address,
            "--secret-file",
            &secret,
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    let shown = run["output"].as_str().unwrap();
    assert_eq!(run["exit"], 0, "{shown}");
    assert!(shown.contains("Password: "), "{shown}");
    assert!(
        !shown.contains("wonderland"),
        "the password was echoed:\n{shown}"
    );
    assert!(
        shown.contains("Access-Challenge: sms submitted to +49********678"),
        "{shown}"
    );
    assert!(shown.contains("Code: "), "{shown}");
    assert!(
        shown.contains("Fortinet-Group-Name = \"staff-alice\""),
        "{shown}"
    );
}
