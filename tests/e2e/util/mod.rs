//! Test helpers: a real tessera process on a free port with a temporary config. The peers it
//! talks to (radclient, slapd, FreeRADIUS, PostgreSQL, the SMSC …) live in the `testkit` crate,
//! shared with the benchmark, and are re-exported here under their old names.
//!
//! Every server gets its own directory and port (it binds port 0 and the helper reads the port
//! from its log), so tests run in parallel. Dropping a [`Server`] kills the process.

#![allow(dead_code)]

pub use testkit::radclient::{
    Reply, SECRET, quote, radclient, radclient_command, require_radclient,
};
pub use testkit::{freeradius, modem, peers, postgres, radsec, slapd, smsc};

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tessera::password_hash;
use tessera::secret::Secret;
use testkit::log::LogLines;

/// Users of every test config: (name, password, mobile, email).
pub const USERS: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("alice", "wonderland", Some("+4917012345678"), None),
    ("bob", "builder", None, Some("bob@example.org")),
    ("carol", "carolpw", None, None),
    (
        "dave",
        "davepw",
        Some("+4915199999999"),
        Some("dave@example.org"),
    ),
];

/// The users file, hashed once per test binary (argon2 is slow on purpose).
fn users_toml() -> &'static str {
    static USERS_TOML: OnceLock<String> = OnceLock::new();
    USERS_TOML.get_or_init(|| {
        let mut out = String::new();
        for (name, password, mobile, email) in USERS {
            let hash = password_hash::hash(&Secret::from(*password)).expect("hash");
            out.push_str(&format!(
                "[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\n"
            ));
            if let Some(m) = mobile {
                out.push_str(&format!("mobile = \"{m}\"\n"));
            }
            if let Some(e) = email {
                out.push_str(&format!("email = \"{e}\"\n"));
            }
            out.push('\n');
        }
        out
    })
}

/// Parts of a test configuration that tests change.
#[derive(Clone)]
pub struct Setup {
    /// `[[client]]` blocks (TOML). Default: 127.0.0.1 requiring Message-Authenticator.
    pub clients: String,
    /// `[[policy]]` blocks (TOML).
    pub policies: String,
    /// Extra `[auth]` lines.
    pub auth: String,
    /// `[directory.*]` and `[[realm]]` blocks (TOML). Default: the users file as realm `local`.
    pub directories: String,
    /// `[provider.*.*]` blocks (TOML). Default: the `file` provider for both channels.
    pub providers: String,
    /// Listen addresses.
    pub listen: Vec<String>,
    /// Further `[server]` lines (RadSec's `tls_listen`, certificates).
    pub server: String,
    /// Further sections appended to the config (e.g. `[metrics]`).
    pub extra: String,
    /// The `[store]` keys. Default: SQLite in the server's directory.
    pub store: String,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            clients: format!("[[client]]\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nname = \"test-nas\"\n"),
            policies: "[[policy]]\nname = \"autoenroll\"\nscope = \"enrollment\"\naction = \"autoenrollment=sms email\"\n\n\
                       [[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=1\"\n"
                .into(),
            auth: String::new(),
            directories: "[directory.local]\ntype = \"users_file\"\npath = \"users.toml\"\n\n\
                          [[realm]]\nname = \"local\"\ndirectories = [\"local\"]\ndefault = true\n"
                .into(),
            providers: "[provider.sms.spool]\nclass = \"file\"\npath = \"spool.log\"\n\n\
                        [provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n"
                .into(),
            listen: vec!["127.0.0.1:0".into()],
            server: String::new(),
            extra: String::new(),
            store: "path = \"tessera.db\"\nkey_file = \"tessera.key\"\n".into(),
        }
    }
}

/// A running tessera.
pub struct Server {
    child: Child,
    /// The temporary directory holding config, database and spool.
    pub dir: tempfile::TempDir,
    /// Where it listens (the first listen address).
    pub addr: SocketAddr,
    /// Where it serves metrics, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Where it serves RadSec, when configured.
    pub tls_addr: Option<SocketAddr>,
    /// Where it serves the HTTP API (`[http] listen`), when configured.
    pub http_addr: Option<SocketAddr>,
    /// Every line it logged so far.
    pub log: LogLines,
}

/// Writes the config for `setup` into `dir` and returns its path.
pub fn write_config(dir: &Path, setup: &Setup) -> PathBuf {
    std::fs::write(dir.join("users.toml"), users_toml()).expect("write users");
    let listen = setup
        .listen
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        r#"[server]
listen = [{listen}]{server}

[store]
{store}
{clients}
{directories}
{providers}
{policies}
[auth]
{auth}
{extra}
"#,
        // No empty line when there is nothing: line numbers other tests assert stay put.
        server = if setup.server.is_empty() {
            String::new()
        } else {
            format!("\n{}", setup.server.trim_end())
        },
        clients = setup.clients,
        directories = setup.directories,
        providers = setup.providers,
        policies = setup.policies,
        auth = setup.auth,
        extra = setup.extra,
        store = setup.store,
    );
    let path = dir.join("tessera.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Writes `contents` to a new or existing file at `path`, mode 0600: tessera refuses a file
/// holding a secret (a database's password file) that group or others may read.
pub fn write_private(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.as_ref();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_ref()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The tessera binary under test.
pub fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

/// Runs `tessera --config CONFIG ARGS…` with `stdin` as its input, and waits for it.
pub fn run_cli(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = tessera()
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for tessera")
}

impl Server {
    /// Starts tessera with the default setup.
    pub fn start() -> Server {
        Server::start_with(&Setup::default())
    }

    /// Starts tessera with `setup` and waits until it listens.
    pub fn start_with(setup: &Setup) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), setup);
        Server::start_in(dir, &config)
    }

    /// Starts tessera on an existing config in `dir`.
    pub fn start_in(dir: tempfile::TempDir, config: &Path) -> Server {
        Server::start_logging(dir, config, "info")
    }

    /// Starts tessera on an existing config in `dir` with `RUST_LOG=log_filter`.
    pub fn start_logging(dir: tempfile::TempDir, config: &Path, log_filter: &str) -> Server {
        let mut command = tessera();
        command.arg("--config").arg(config).arg("serve");
        // An empty filter leaves RUST_LOG unset, so the config's `[log] level` applies.
        if log_filter.is_empty() {
            command.env_remove("RUST_LOG");
        } else {
            command.env("RUST_LOG", log_filter);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tessera");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = LogLines::collect(stderr, move |line| {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let addr = addr.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(addr);
            }
        });
        let metrics_wanted = std::fs::read_to_string(config)
            .unwrap_or_default()
            .contains("[metrics]");
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!("tessera did not start; log:\n{}", log.text());
            }
        };
        let tls_wanted = std::fs::read_to_string(config)
            .unwrap_or_default()
            .contains("tls_listen");
        // A table header of its own (the shipped config has a commented `# [http]`).
        let http_wanted = std::fs::read_to_string(config)
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "[http]");
        let mut server = Server {
            child,
            dir,
            addr,
            metrics_addr: None,
            tls_addr: None,
            http_addr: None,
            log,
        };
        if http_wanted {
            let line = server.wait_for_log("HTTP API on ");
            let addr = line
                .split("://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            server.http_addr = Some(addr.parse().expect("HTTP API address"));
        }
        if tls_wanted {
            let line = server.wait_for_log("RadSec (RADIUS over TLS) on ");
            let addr = line
                .split("RadSec (RADIUS over TLS) on ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            server.tls_addr = Some(addr.parse().expect("RadSec address"));
        }
        if metrics_wanted {
            let line = server.wait_for_log("metrics on http://");
            let addr = line
                .split("http://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            server.metrics_addr = Some(addr.parse().expect("metrics address"));
        }
        server
    }

    /// Stops this process (SIGKILL) and starts a new one on the same config and data, as a
    /// crash and restart would. The new one may listen on another port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let config = self.dir.path().join("tessera.toml");
        // Move the directory into a new server, then take the process back out of it.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let mut fresh = Server::start_in(dir, &config);
        std::mem::swap(self, &mut fresh);
        // `fresh` now holds the dead child and the placeholder directory; dropping it is harmless.
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`"HUP"`, `"TERM"`) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "tessera did not exit; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` on the metrics listener: (status line, body).
    pub fn http_get(&self, path: &str) -> (String, String) {
        use std::io::Read;
        let addr = self.metrics_addr.expect("no [metrics] listener configured");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to metrics");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    }

    /// Counts log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log.count(needle)
    }

    /// Waits (10 s at most) until `needle` is in the log `n` times, and returns the count then:
    /// the log is read by a thread of its own, a little behind the server's answers.
    pub fn log_count_reaching(&self, needle: &str, n: usize) -> usize {
        self.log.count_reaching(needle, n, Duration::from_secs(10))
    }

    /// The spool file's messages: (channel, recipient, subject, text).
    pub fn spool(&self) -> Vec<(String, String, String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("spool.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[1].to_string(),
                    f[2].to_string(),
                    f[3].to_string(),
                    f[4].to_string(),
                )
            })
            .collect()
    }

    /// The OTP of the last spooled message (its last six-digit word).
    pub fn last_otp(&self) -> String {
        let spool = self.spool();
        let (_, _, _, text) = spool.last().expect("no message in the spool");
        text.split_whitespace()
            .rev()
            .find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))
            .expect("no OTP in the message")
            .to_string()
    }

    /// Sends one request with radclient (one try, 5 s timeout).
    pub fn radclient(&self, attrs: &[(&str, &str)]) -> Reply {
        radclient(self.addr, SECRET, attrs)
    }

    /// Sends a Status-Server (RFC 5997, with the Message-Authenticator it requires).
    pub fn status_server(&self) -> Reply {
        radclient_command(
            self.addr,
            SECRET,
            "status",
            &[("Message-Authenticator", "0x00")],
        )
    }

    /// Sends one request with a Message-Authenticator, as a modern NAS does.
    pub fn auth(&self, user: &str, password: &str, state: Option<&str>) -> Reply {
        testkit::radclient::auth(self.addr, SECRET, user, password, state)
    }

    /// Waits until a log line contains `needle` (the log is written asynchronously).
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log
            .wait_for(needle, Duration::from_secs(10), "tessera")
    }

    /// Runs an admin command (`token list`, `audit` …) on this server's config: (exit code,
    /// stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let out = run_cli(&self.dir.path().join("tessera.toml"), args, stdin);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test shows where the server's threads were and what it said: CI keeps only
        // the test's output.
        if std::thread::panicking() {
            eprintln!("--- tessera's threads ({}) ---", self.addr);
            eprint!("{}", threads_of(self.child.id()));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_LINES_ON_FAILURE)..];
            eprintln!("--- last lines of tessera's log ({}) ---", self.addr);
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Each thread of process `pid`: its name, state, the kernel function it waits in and the
/// system call it is in (number first), from /proc.
fn threads_of(pid: u32) -> String {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "(no /proc entry)\n".into();
    };
    let mut out = String::new();
    for task in tasks.flatten() {
        let dir = task.path();
        let stat = read(dir.join("stat"));
        // The state follows the name in parentheses.
        let state = stat.rsplit(") ").next().unwrap_or("").split(' ').next();
        out.push_str(&format!(
            "{:>8} {:<16} state={} wchan={} syscall={}\n",
            task.file_name().to_string_lossy(),
            read(dir.join("comm")),
            state.unwrap_or("?"),
            read(dir.join("wchan")),
            read(dir.join("syscall"))
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    out
}

/// How much of a server's log a failing test prints.
const LOG_LINES_ON_FAILURE: usize = 40;
