//! tessera as a service: metrics and health after real traffic, reload on SIGHUP (good and
//! bad configs), graceful stop on SIGTERM, open challenges across reloads and restarts.

use crate::util::{Server, Setup, write_config};

fn with_metrics() -> Setup {
    Setup {
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    }
}

fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_and_health_after_real_traffic() {
    let server = Server::start_with(&with_metrics());
    let first = server.auth("alice", "wonderland", None);
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    server.auth("mallory", "x", None).expect("Access-Reject");
    server
        .radclient(&[("User-Name", "\"alice\""), ("User-Password", "\"x\"")])
        .expect("none");
    server.wait_for_log("cause=\"missing_message_authenticator\"");

    let (status, body) = server.http_get("/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let expect = |series: &str, value: f64| {
        assert_eq!(metric(&body, series), Some(value), "{series} in:\n{body}");
    };
    expect(
        "tessera_radius_requests_total{code=\"Access-Request\",client=\"test-nas\",transport=\"udp\"}",
        4.0,
    );
    expect(
        "tessera_radius_replies_total{code=\"Access-Challenge\",client=\"test-nas\",transport=\"udp\"}",
        1.0,
    );
    expect(
        "tessera_radius_replies_total{code=\"Access-Accept\",client=\"test-nas\",transport=\"udp\"}",
        1.0,
    );
    expect(
        "tessera_radius_replies_total{code=\"Access-Reject\",client=\"test-nas\",transport=\"udp\"}",
        1.0,
    );
    expect(
        "tessera_radius_drops_total{cause=\"missing_message_authenticator\"}",
        1.0,
    );
    expect(
        "tessera_auth_decisions_total{result=\"challenge\",reason=\"token enrolled\"}",
        1.0,
    );
    expect(
        "tessera_auth_decisions_total{result=\"accept\",reason=\"otp valid\"}",
        1.0,
    );
    expect(
        "tessera_auth_decisions_total{result=\"reject\",reason=\"unknown user\"}",
        1.0,
    );
    expect(
        "tessera_delivery_attempts_total{provider=\"spool\",channel=\"sms\"}",
        1.0,
    );
    expect("tessera_delivery_seconds_count{provider=\"spool\"}", 1.0);
    assert!(
        metric(
            &body,
            "tessera_directory_seconds_count{directory=\"local\",operation=\"password\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{body}"
    );
    assert!(
        metric(&body, "tessera_store_seconds_count").unwrap_or(0.0) >= 3.0,
        "{body}"
    );
    expect("tessera_up", 1.0);
    assert!(!body.contains("wonderland") && !body.contains("testing123"));

    assert_eq!(
        server.http_get("/healthz"),
        ("HTTP/1.1 200 OK".to_string(), "ok\n".to_string())
    );
    assert_eq!(server.http_get("/nope").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn sighup_reloads_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    let mut setup = Setup::default();
    let server = Server::start_with(&setup);
    let first = server.auth("alice", "wonderland", None);
    let old_otp = server.last_otp();

    // A new SMS text and no blocking: visible in the next message.
    setup.policies = setup
        .policies
        .replace("otppin=1", "otppin=1, smstext='Reloaded <otp>'");
    setup.auth = "sms_blocking_timeout = 0\n".into();
    write_config(server.dir.path(), &setup);
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");

    // The challenge sent before the reload can still be answered.
    server
        .auth("alice", &old_otp, Some(&first.state()))
        .expect("Access-Accept");
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let spool = server.spool();
    assert!(
        spool.last().unwrap().3.starts_with("Reloaded "),
        "{spool:?}"
    );

    // A broken config is refused; the running one stays.
    std::fs::write(
        server.dir.path().join("tessera.toml"),
        "[server]\nlisten = 5\n",
    )
    .unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration not reloaded");
    assert!(
        server.log_text().contains("server.listen"),
        "the problem is logged with its key"
    );
    server.auth("mallory", "x", None).expect("Access-Reject");
}

#[test]
fn sigterm_stops_gracefully() {
    let mut server = Server::start();
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    server.signal("TERM");
    assert_eq!(server.wait_exit(), Some(0));
    server.wait_for_log("tessera stopped");
    // Issue 13: a clean stop checkpoints the WAL into the database and leaves no -wal data
    // beside it (it left megabytes).
    let wal = server.dir.path().join("tessera.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "{} bytes left in the WAL", wal_len);
}

#[test]
fn open_challenge_survives_a_restart() {
    let mut server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    let otp = server.last_otp();
    server.restart();
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Reject");
}

#[test]
fn log_level_comes_from_the_config_when_rust_log_is_unset() {
    let setup = Setup {
        extra: "[log]\nlevel = \"warn,tessera::radius::server=info\"\n".into(),
        ..Setup::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &setup);
    let server = Server::start_logging(dir, &config, "");
    let first = server.auth("alice", "wonderland", None);
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    server.auth("alice", "x", None).expect("Access-Reject");
    server
        .radclient(&[("User-Name", "\"alice\""), ("User-Password", "\"x\"")])
        .expect("none");
    server.wait_for_log("cause=\"missing_message_authenticator\""); // warn: kept
    assert_eq!(
        server.log_count("tessera::auth::engine"),
        0,
        "info lines filtered:\n{}",
        server.log_text()
    );
    assert_eq!(server.log_count("result=\"accept\""), 0);

    let bad = Setup {
        extra: "[log]\nlevel = \"tessera=loud\"\n".into(),
        ..Setup::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &bad);
    let out = crate::util::tessera()
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log.level:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_server_and_healthz_follow_health() {
    // The only directory is an LDAP server that is not there: tessera starts, but it is not
    // healthy, so /healthz says 503 and Status-Server gets no answer (the NAS fails over).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let setup = Setup {
        directories: format!(
            "[directory.corp]\ntype = \"ldap\"\nuri = [\"ldap://127.0.0.1:{port}\"]\nbase_dn = \"dc=example,dc=org\"\ntimeout = 1\n\n\
             [[realm]]\nname = \"corp\"\ndirectories = [\"corp\"]\ndefault = true\n"
        ),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    };
    let server = Server::start_with(&setup);
    server.wait_for_log("health check failed");
    assert_eq!(
        server.http_get("/healthz").0,
        "HTTP/1.1 503 Service Unavailable"
    );
    let (_, body) = server.http_get("/metrics");
    assert!(body.lines().any(|l| l == "tessera_up 0"), "{body}");
    let reply = server.status_server();
    assert!(
        reply.output.contains("Sent Status-Server"),
        "{}",
        reply.output
    );
    reply.expect("none");
}

/// Makes files immutable (`chattr +i`) for the life of the guard.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn new(paths: Vec<std::path::PathBuf>) -> Immutable {
        for path in &paths {
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .expect("chattr (e2fsprogs) is needed for this test");
            assert!(
                status.success(),
                "chattr +i {} failed: the test needs root on a filesystem with the immutable flag",
                path.display()
            );
        }
        Immutable(paths)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(path)
                .status();
        }
    }
}

/// Issue 13: with the database unable to commit (made immutable here; a full disk is the same
/// to SQLite), every login was rejected while /healthz said 200, tessera_up was 1 and
/// Status-Server was answered, so the NAS never failed over. Health now follows a write probe.
#[test]
fn issue_13_health_follows_the_stores_ability_to_commit() {
    let server = Server::start_with(&with_metrics());
    server.auth("mallory", "x", None).expect("Access-Reject");
    assert_eq!(server.http_get("/healthz").0, "HTTP/1.1 200 OK");
    let db = server.dir.path().join("tessera.db");
    let wal = server.dir.path().join("tessera.db-wal");
    assert!(wal.exists(), "WAL mode: the -wal file exists while serving");
    let guard = Immutable::new(vec![db, wal]);

    server.wait_for_log("health check failed");
    assert_eq!(
        server.http_get("/healthz").0,
        "HTTP/1.1 503 Service Unavailable"
    );
    let (_, body) = server.http_get("/metrics");
    assert!(body.lines().any(|l| l == "tessera_up 0"), "{body}");
    let reply = server.status_server();
    assert!(
        reply.output.contains("Sent Status-Server"),
        "{}",
        reply.output
    );
    reply.expect("none");
    assert!(server.log_text().contains("store health probe failed"));

    // Writable again: healthy again, without a restart.
    drop(guard);
    server.wait_for_log("health check passed again");
    assert_eq!(server.http_get("/healthz").0, "HTTP/1.1 200 OK");
    server.status_server().expect("Access-Accept");
    let first = server.auth("alice", "wonderland", None);
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

/// Issue 13: the audit table grew without limit. `[store] audit_days` (default 90) now
/// bounds it: older rows are purged in the background, from the start on.
#[test]
fn issue_13_audit_rows_older_than_audit_days_are_purged() {
    let mut server = Server::start();
    server.auth("mallory", "x", None).expect("Access-Reject");
    server.wait_for_log("result=\"reject\"");
    // The audit row is queued behind the answer and committed within milliseconds; the restart
    // below is a kill, so wait until it is on disk.
    let db_path = server.dir.path().join("tessera.db");
    let mallory_rows = || -> i64 {
        rusqlite::Connection::open(&db_path)
            .and_then(|db| {
                db.query_row(
                    "SELECT count(*) FROM audit WHERE user = 'mallory'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mallory_rows() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        mallory_rows(),
        1,
        "mallory's audit row never reached the database"
    );
    let config = server.dir.path().join("tessera.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "key_file = \"tessera.key\"\n",
        "key_file = \"tessera.key\"\naudit_days = 30\n",
    );
    std::fs::write(&config, text).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    {
        let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
        for (days, user) in [(45, "old-1"), (31, "old-2"), (29, "recent")] {
            db.execute(
                "INSERT INTO audit (time, client, user, realm, action, result, reason) \
                 VALUES (?1, 'test', ?2, 'local', 'authenticate', 'reject', 'test row')",
                rusqlite::params![now - days * 86_400, user],
            )
            .unwrap();
        }
    }
    server.restart();
    let line = server.wait_for_log("audit rows older than audit_days purged");
    assert!(line.contains("rows=2"), "{line}");
    let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
    let users: Vec<String> = db
        .prepare("SELECT user FROM audit ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(users, ["mallory", "recent"]);
}

/// Issue 23 (9): with the database's directory and then its files made immutable (`chattr
/// +i`), the server died of SIGBUS without a log line: SQLite stores into its mapped WAL
/// index (`-shm`), and a store into a mapped immutable file is a fault, not an error. The
/// store now checks the file's flags before each use: the login gets a Reject, the log says
/// what is wrong and how to fix it, an admin command says so too, and once the flag is gone
/// the same challenge is answered.
///
/// Needs root and a file system with the immutable flag, as the issue 13 health test does.
#[test]
fn issue_23_immutable_database_files_are_an_error_not_a_crash() {
    let server = Server::start();
    let dir = server.dir.path().to_path_buf();
    let files: Vec<std::path::PathBuf> = ["tessera.db", "tessera.db-wal", "tessera.db-shm"]
        .iter()
        .map(|name| dir.join(name))
        .collect();
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let otp = server.last_otp();

    // As the report did it: the directory, then the files; then their pages written back, so
    // the next store into the mapped index faults.
    let frozen_dir = Immutable::new(vec![dir.clone()]);
    let frozen_files = Immutable::new(files.clone());
    let synced = std::process::Command::new("sync").args(&files).status();
    assert!(synced.is_ok_and(|s| s.success()));

    let reply = server.auth("alice", &otp, Some(&first.state()));
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("authentication service unavailable, try again later")
    );
    let line = server.wait_for_log("store unusable");
    assert!(
        line.contains("tessera.db-shm is immutable (chattr +i)") && line.contains("chattr -ia"),
        "{line}"
    );
    let (code, _, stderr) = server.cli(&["token", "list"], "");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("tessera.db-shm is immutable"), "{stderr}");

    drop(frozen_files);
    drop(frozen_dir);
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    server.wait_for_log("store usable again");
}
