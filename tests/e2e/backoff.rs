//! Issue 23, items 4, 5 and part of 9, as an attacker tries it over the wire: a stranger's
//! steady stream of wrong passwords from one station does not keep the owner out of another;
//! the identity's ceiling over all stations only slows; a store that cannot commit refuses
//! every password before checking it, right or wrong alike; `backoff_after = 0` writes no
//! failure.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tessera::radius::codec::{Attribute, AttributeType, Code, Packet};
use tessera::radius::crypto;

use crate::util::{Reply, SECRET, Server, Setup, quote};

/// Most wrong passwords a stranger sends (at ten a second: a minute at most).
const STREAM_MAX: usize = 600;

/// One Access-Request from `station` (Calling-Station-Id), with a Message-Authenticator, by
/// radclient; `state` for a second round.
fn auth_from(
    server: &Server,
    user: &str,
    password: &str,
    station: &str,
    state: Option<&str>,
) -> Reply {
    let (user, password, station) = (quote(user), quote(password), quote(station));
    let mut attrs = vec![
        ("User-Name", user.as_str()),
        ("User-Password", password.as_str()),
        ("Calling-Station-Id", station.as_str()),
    ];
    if let Some(state) = state {
        attrs.push(("State", state));
    }
    attrs.push(("Message-Authenticator", "0x00"));
    server.radclient(&attrs)
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

/// A stranger sending wrong passwords for one name, ten a second, on a thread of its own,
/// until stopped (or [`STREAM_MAX`]); each from `station(i)`.
struct Stranger {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stranger {
    fn start(server: SocketAddr, user: &'static str, station: fn(usize) -> String) -> Stranger {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let (stopped, counted) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut buf = [0u8; 4096];
            for i in 0..STREAM_MAX {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let id = u8::try_from(i % 256).unwrap();
                let request = access_request(id, user, "guess", &station(i));
                socket.send_to(&request, server).unwrap();
                // Whatever comes within the pause is read (EINTR and a timeout alike end
                // the wait: the stream goes on either way).
                if let Ok((_, from)) = socket.recv_from(&mut buf)
                    && from == server
                {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Stranger {
            stop,
            answered,
            thread: Some(thread),
        }
    }

    /// Waits until the stream has been answered `n` times (a minute at most).
    fn wait_answered(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.answered.load(Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the stranger got fewer than {n} answers"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the stream; how many answers it read.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An Access-Request for `user` with `password` from `station`, signed with the test secret.
fn access_request(id: u8, user: &str, password: &str, station: &str) -> Vec<u8> {
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let hidden = crypto::hide_password(password.as_bytes(), &authenticator, SECRET.as_bytes());
    let attribute = |typ, value: &[u8]| Attribute {
        typ,
        value: value.to_vec(),
    };
    let packet = Packet {
        code: Code::ACCESS_REQUEST,
        identifier: id,
        authenticator,
        attributes: vec![
            attribute(AttributeType::USER_NAME, user.as_bytes()),
            attribute(AttributeType::USER_PASSWORD, &hidden),
            attribute(AttributeType::CALLING_STATION_ID, station.as_bytes()),
        ],
    };
    packet.encode_request(SECRET.as_bytes(), true).unwrap()
}

/// Alice's first login from her laptop: her token is enrolled and she is in.
fn first_login(server: &Server) {
    let first = auth_from(server, "alice", "wonderland", "02-00-00-00-00-01", None);
    first.expect("Access-Challenge");
    let otp = server.last_otp();
    auth_from(
        server,
        "alice",
        &otp,
        "02-00-00-00-00-01",
        Some(&first.state()),
    )
    .expect("Access-Accept");
}

/// Item 4: a stranger's steady stream of wrong passwords for alice from one station; alice, on
/// her laptop, logs in while it lasts; her name from the stranger's station is refused — even
/// with the right password, exactly like a name nobody has.
#[test]
fn issue_23_a_strangers_stream_from_one_station_does_not_keep_alice_out() {
    // A long first window: the stranger's station stays refused while the test looks.
    let server = Server::start_with(&Setup {
        auth: "backoff_initial = 60\n".into(),
        ..Setup::default()
    });
    first_login(&server);
    let stranger = Stranger::start(server.addr, "alice", |_| "02-00-00-00-00-66".into());
    // Ten checked (a few more when answers overlap), then refused without a check.
    server.wait_for_log("reason=\"back-off: not checked, ");
    for _ in 0..3 {
        let reply = auth_from(&server, "alice", "wonderland", "02-00-00-00-00-01", None);
        reply.expect("Access-Challenge");
        let otp = server.last_otp();
        auth_from(
            &server,
            "alice",
            &otp,
            "02-00-00-00-00-01",
            Some(&reply.state()),
        )
        .expect("Access-Accept");
    }
    // A NAS that sends no station counts as a station of its own.
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let attacked = auth_from(&server, "alice", "wonderland", "02-00-00-00-00-66", None);
    let nobody = auth_from(&server, "nobody", "guess", "02-00-00-00-00-99", None);
    assert_eq!(nobody.code, "Access-Reject");
    assert_eq!(visible(&attacked), visible(&nobody));
    let answered = stranger.stop();
    assert!(answered > 10, "the stranger was answered {answered} times");
    let (_, list, _) = server.cli(&["token", "list", "--json"], "");
    assert!(list.contains("\"fail_count\": 0"), "{list}");
}

/// Item 4: a stranger with a fresh station for every guess reaches the identity's ceiling:
/// then every station, alice's too, waits a short window after the last counted failure —
/// and gets in once the stream stops. The gauge counts alice as under attack.
#[test]
fn issue_23_the_identity_ceiling_only_slows() {
    let server = Server::start_with(&Setup {
        auth: "backoff_after = 3\nbackoff_initial = 60\nbackoff_identity_after = 20\nbackoff_identity_window = 2\n".into(),
        extra: "[metrics]\nlisten = \"127.0.0.1:0\"\n".into(),
        ..Setup::default()
    });
    first_login(&server);
    let stranger = Stranger::start(server.addr, "alice", |i| format!("02-00-00-01-{i:02x}"));
    // Twenty checked (three per station would be), then one in each short window. A
    // back-off over the identity alone would hold alice a minute from the third on.
    stranger.wait_answered(40);
    stranger.stop();
    // Each refused try shows the window is short: alice is in after a few tries, not after
    // the five minutes a doubling back-off would have reached.
    let mut tries = 0;
    let challenge = loop {
        tries += 1;
        let reply = auth_from(&server, "alice", "wonderland", "02-00-00-00-00-01", None);
        if reply.code == "Access-Challenge" {
            break reply;
        }
        reply.expect("Access-Reject");
        assert!(tries < 10, "alice is still refused after {tries} tries");
        std::thread::sleep(Duration::from_millis(500));
    };
    let otp = server.last_otp();
    auth_from(
        &server,
        "alice",
        &otp,
        "02-00-00-00-00-01",
        Some(&challenge.state()),
    )
    .expect("Access-Accept");
    server.wait_for_log(
        "reason=\"back-off ceiling: not checked, 20 failed passwords from all origins",
    );
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.contains("tessera_backoff_identities_under_attack 1"),
        "{metrics}"
    );
}

/// A tmpfs mounted for one test, unmounted on drop (also the accounting tests').
pub(crate) struct Tmpfs {
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub(crate) fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount tmpfs (the tests run as root, as CI does)"
        );
        Tmpfs { path, _dir: dir }
    }

    /// Fills it to the last byte with a file of its own; returns the file.
    pub(crate) fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        let mut small = vec![0u8; 512];
        loop {
            use std::io::Write;
            if file.write_all(&block).is_err() {
                // What is left, in small pieces.
                while file.write_all(&small).is_ok() {}
                small.truncate(1);
                while file.write_all(&small).is_ok() {}
                return filler;
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Item 5: with the store's file system full, no failure can be recorded: from the first
/// failed write on, the right password and a wrong one get the same answer, and neither is
/// checked; once the store commits again, the right password works.
#[test]
fn issue_23_a_store_that_cannot_commit_checks_no_password() {
    let fs = Tmpfs::mount("4m");
    let db = fs.path.join("tessera.db");
    let server = Server::start_with(&Setup {
        store: format!("path = \"{}\"\nkey_file = \"tessera.key\"\n", db.display()),
        ..Setup::default()
    });
    first_login(&server);
    let filler = fs.fill();
    // Until the first write fails, a wrong password is still checked (and its failure lost).
    let mut first_refusal = None;
    for _ in 0..20 {
        let reply = auth_from(&server, "alice", "guess", "02-00-00-00-00-66", None);
        reply.expect("Access-Reject");
        if reply.get("Reply-Message") != Some("authentication failed") {
            first_refusal = Some(reply);
            break;
        }
    }
    let wrong = first_refusal.expect("every wrong password was checked and answered as such");
    let right = auth_from(&server, "alice", "wonderland", "02-00-00-00-00-66", None);
    let again = auth_from(&server, "alice", "guess", "02-00-00-00-00-66", None);
    assert_eq!(visible(&right), visible(&wrong), "right and wrong alike");
    assert_eq!(visible(&again), visible(&wrong));
    let not_checked = "reason=\"not checked: the store could not record a failed password";
    assert!(
        server.log_count_reaching(not_checked, 3) >= 3,
        "{}",
        server.log_text()
    );
    assert_eq!(
        server.log_count("result=\"challenge\""),
        1,
        "the right password was never checked: no challenge since the first login"
    );
    // Room again: the next audit row commits, and the right password works.
    std::fs::remove_file(&filler).unwrap();
    let mut tries = 0;
    while auth_from(&server, "alice", "wonderland", "02-00-00-00-00-01", None).code
        != "Access-Challenge"
    {
        tries += 1;
        assert!(tries < 20, "still refused with room on the file system");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(server);
    assert!(Path::new(&db).exists());
}

/// Item 9: `backoff_after = 0` turns the back-off off: wrong passwords are not counted, not
/// written, and refuse nothing.
#[test]
fn issue_23_backoff_after_zero_writes_no_failure() {
    let server = Server::start_with(&Setup {
        auth: "backoff_after = 0\n".into(),
        ..Setup::default()
    });
    for _ in 0..15 {
        server.auth("alice", "guess", None).expect("Access-Reject");
        server.auth("nobody", "guess", None).expect("Access-Reject");
    }
    // Dave's first login commits a batch, with every write queued before it.
    server
        .auth("dave", "davepw", None)
        .expect("Access-Challenge");
    let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM login_failures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "no failure row written");
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
}
