//! A real NAS-side client: Debian's `libpam-radius-auth` driven by `pamtester`, as an SSH or
//! console login would use it — the password at PAM's prompt, tessera's challenge shown through
//! the PAM conversation and answered there (issue 17). `pam_radius_auth` 2.0 sends no
//! Message-Authenticator, so its client entry allows that, as an admin of such a NAS would.
//!
//! The tests write a PAM service file under /etc/pam.d (they run as root, as CI does) and remove
//! it when done.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{SECRET, Server, Setup};

/// A PAM service that authenticates with pam_radius_auth against one tessera; removed on drop.
struct PamService {
    name: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl PamService {
    fn new(server: &Server) -> PamService {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pam_radius_auth.conf");
        // Server, secret, and how long pam_radius waits for an answer: long enough for a
        // first login on a busy CI machine; no test here expects silence.
        std::fs::write(&conf, format!("{} {SECRET} 10\n", server.addr)).unwrap();
        let name = format!("tessera-e2e-{}-{}", std::process::id(), server.addr.port());
        let file = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::write(
            &file,
            format!(
                "auth required pam_radius_auth.so conf={}\naccount required pam_permit.so\n",
                conf.display()
            ),
        )
        .expect("write /etc/pam.d (the PAM tests run as root, as scripts/test.sh in CI does)");
        PamService {
            name,
            file,
            _dir: dir,
        }
    }

    /// Runs `pamtester SERVICE USER authenticate`, typing `password` at the first prompt and,
    /// once `answer` has one (the code, when it has arrived), that at the challenge's prompt.
    /// Returns (success, everything shown).
    fn login(
        &self,
        user: &str,
        password: &str,
        answer: impl Fn() -> Option<String>,
    ) -> (bool, String) {
        let mut child = Command::new("pamtester")
            .args(["-v", &self.name, user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester (scripts/test.sh installs it)");
        // Each stream into its own buffer: read together they would interleave mid-line.
        let streams = [
            Arc::new(Mutex::new(String::new())),
            Arc::new(Mutex::new(String::new())),
        ];
        let mut readers = vec![];
        let pipes = [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ];
        for (pipe, shown) in pipes.into_iter().zip(streams.iter().cloned()) {
            readers.push(std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut buf = Vec::new();
                while reader.read_until(b' ', &mut buf).unwrap_or(0) > 0 {
                    shown
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf));
                    buf.clear();
                }
            }));
        }
        let shown = || {
            format!(
                "{}\n{}",
                streams[0].lock().unwrap(),
                streams[1].lock().unwrap()
            )
        };
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        // A second prompt (the challenge) shows tessera's Reply-Message.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if let Some(code) = answer() {
                let _ = writeln!(stdin, "{code}");
                break;
            }
            assert!(Instant::now() < deadline, "pamtester hangs: {}", shown());
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
        let status = child.wait().unwrap();
        // Everything pamtester printed is read once its pipes close.
        for reader in readers {
            let _ = reader.join();
        }
        (status.success(), shown())
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

fn setup(policies: &str) -> Setup {
    let mut setup = Setup {
        clients: format!(
            "[[client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nname = \"pam-host\"\n\
             require_message_authenticator = false\n"
        ),
        ..Setup::default()
    };
    setup.policies.push_str(policies);
    setup
}

#[test]
fn issue_17_pam_login_answers_the_challenge_through_the_conversation() {
    let server = Server::start_with(&setup(""));
    let pam = PamService::new(&server);
    // The code, once tessera has sent it (the spool is the phone).
    let code_after = |sent: usize| {
        let server = &server;
        move || (server.spool().len() > sent).then(|| server.last_otp())
    };
    let (ok, shown) = pam.login("alice", "wonderland", code_after(0));
    assert!(ok, "{shown}");
    assert!(shown.contains("sms submitted to +49********678"), "{shown}");
    assert!(shown.contains("successfully authenticated"), "{shown}");
    // A wrong answer to the challenge is refused.
    std::thread::sleep(Duration::from_millis(1100));
    let sent = server.spool().len();
    let wrong = move || (server.spool().len() > sent).then(|| "000000".to_string());
    let (ok, shown) = pam.login("alice", "wonderland", wrong);
    assert!(!ok, "{shown}");
}

#[test]
fn issue_17_pam_login_in_append_mode() {
    let server = Server::start_with(&setup(
        "\n[[policy]]\nname = \"pam\"\nscope = \"authentication\"\nclient = \"127.0.0.1\"\n\
         action = \"login_mode=append\"\n",
    ));
    let pam = PamService::new(&server);
    let (ok, _) = pam.login("alice", "wonderland", || None);
    assert!(!ok, "the bare password only sends the code");
    let code = server.last_otp();
    let (ok, shown) = pam.login("alice", &format!("wonderland{code}"), || None);
    assert!(ok, "{shown}");
}
