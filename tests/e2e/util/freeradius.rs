//! A real FreeRADIUS (Debian `freeradius`) as the legacy server of a passthru: started by the
//! test on a free port with a minimal config of its own — one client (tessera), the `files`
//! module with a users file of Cleartext-Passwords, PAP — and killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::slapd::free_port;

/// A running FreeRADIUS.
pub struct FreeRadius {
    child: Child,
    /// Where it listens (127.0.0.1, UDP).
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl FreeRadius {
    /// Starts FreeRADIUS knowing `users` (name, password), for clients with `secret`.
    // TODO(issue 14): split by the workspace/testkit helper, then drop this allow.
    #[allow(clippy::too_many_lines)]
    pub fn start(users: &[(&str, &str)], secret: &str) -> FreeRadius {
        let binary = ["/usr/sbin/freeradius", "/usr/sbin/radiusd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("FreeRADIUS is not installed: run scripts/test.sh, which installs it");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let port = free_port();
        for sub in ["log", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let config = format!(
            r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}/log
raddbdir = {d}
radacctdir = {d}/acct
name = freeradius
confdir = {d}
modconfdir = {d}/mods-config
run_dir = {d}/run
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/run/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
  destination = files
  file = {d}/log/radius.log
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}}
thread pool {{
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
client tessera {{
  ipaddr = 127.0.0.1
  secret = {secret}
  require_message_authenticator = yes
}}
modules {{
  files {{
    filename = {d}/users
  }}
  pap {{
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
  post-auth {{
    Post-Auth-Type REJECT {{
      update reply {{
        Message-Authenticator := 0x00
      }}
    }}
  }}
}}
"#
        );
        std::fs::write(dir.path().join("radiusd.conf"), config).expect("radiusd.conf");
        std::fs::write(
            dir.path().join("dictionary"),
            "$INCLUDE /usr/share/freeradius/dictionary\n",
        )
        .expect("dictionary");
        let users: String = users
            .iter()
            .map(|(u, p)| {
                // FreeRADIUS 3.2.1 (Debian 12) signs a reply's Message-Authenticator only when
                // the reply holds one; later versions always do (BlastRADIUS).
                format!(
                    "{u} Cleartext-Password := \"{p}\"\n\tReply-Message := \"welcome from the old server\",\n\
                     \tMessage-Authenticator := 0x00\n"
                )
            })
            .collect();
        std::fs::write(dir.path().join("users"), users).expect("users");
        let mut child = Command::new(&binary)
            .args(["-f", "-d"])
            .arg(dir.path())
            .args(["-l", "stdout"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start freeradius");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to process requests") {
                    let _ = tx.send(());
                }
            }
        });
        let started = rx.recv_timeout(Duration::from_secs(30));
        let server = FreeRadius {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        assert!(
            started.is_ok(),
            "FreeRADIUS did not start:\n{}",
            server.log()
        );
        server
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/radius.log")).unwrap_or_default()
    }

    /// Stops it (the test of a legacy server that is down).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.stop();
    }
}
