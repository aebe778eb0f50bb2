//! A real FreeRADIUS (Debian `freeradius`), started on a free port with a minimal config of its
//! own — one client, the `files` module with a users file of Cleartext-Passwords, PAP — and
//! killed on drop. Two roles: the legacy server behind a passthru (the tests), and the
//! reference the benchmark measures tessera against.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::ports::try_free_udp_port;

/// What the FreeRADIUS is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The legacy server of a passthru: a small thread pool, requires a Message-Authenticator
    /// in requests, and greets accepted users with a Reply-Message. Its replies are FreeRADIUS's
    /// own: 3.2.1 (Debian 12) signs a reply only when its reply list holds a
    /// Message-Authenticator, which only [`FreeRadius::start_signing_for`] adds.
    Legacy,
    /// The benchmark's reference: PAP and nothing else, a thread pool sized for load.
    Reference,
}

impl Role {
    /// (max_requests, the `thread pool` section, the client's extra lines, post-auth).
    fn tuning(self) -> (u32, &'static str, &'static str, &'static str) {
        match self {
            Role::Legacy => (
                1024,
                "  start_servers = 2\n  max_servers = 4\n  min_spare_servers = 1\n  max_spare_servers = 2\n",
                "  require_message_authenticator = yes\n",
                "",
            ),
            Role::Reference => (
                65536,
                "  start_servers = 4\n  max_servers = 16\n  min_spare_servers = 2\n  max_spare_servers = 8\n",
                "",
                "",
            ),
        }
    }

    /// A users file line for (user, password); `signed`: the Accept carries a
    /// Message-Authenticator (FreeRADIUS 3.2.1 signs a reply only when the reply holds one;
    /// later versions always do, BlastRADIUS).
    fn user_entry(self, user: &str, password: &str, signed: bool) -> String {
        match self {
            Role::Legacy => {
                let mut entry = format!(
                    "{user} Cleartext-Password := \"{password}\"\n\tReply-Message := \"welcome from the old server\""
                );
                if signed {
                    entry.push_str(",\n\tMessage-Authenticator := 0x00");
                }
                entry.push('\n');
                entry
            }
            Role::Reference => format!("{user} Cleartext-Password := \"{password}\"\n"),
        }
    }
}

/// A running FreeRADIUS.
pub struct FreeRadius {
    child: Child,
    /// Where it listens (127.0.0.1, UDP).
    pub addr: SocketAddr,
    /// Where it takes accounting (127.0.0.1, UDP); each record is appended to a detail file
    /// ([`FreeRadius::accounting_records`]).
    pub acct_addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl FreeRadius {
    /// Starts FreeRADIUS as a legacy server knowing `users` (name, password), for clients with
    /// `secret`.
    pub fn start(users: &[(&str, &str)], secret: &str) -> FreeRadius {
        FreeRadius::start_signing_for(users, secret, &[])
    }

    /// As [`FreeRadius::start`], with a Message-Authenticator in the Accepts of the users named
    /// in `signed` (a server that signs some replies and not others).
    pub fn start_signing_for(users: &[(&str, &str)], secret: &str, signed: &[&str]) -> FreeRadius {
        FreeRadius::try_start_signing(Role::Legacy, users, secret, signed)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts FreeRADIUS in `role`, or says why it did not start.
    pub fn try_start<U: AsRef<str>, P: AsRef<str>>(
        role: Role,
        users: &[(U, P)],
        secret: &str,
    ) -> Result<FreeRadius, String> {
        FreeRadius::try_start_signing(role, users, secret, &[])
    }

    /// [`FreeRadius::try_start`] with the users whose Accepts carry a Message-Authenticator.
    fn try_start_signing<U: AsRef<str>, P: AsRef<str>>(
        role: Role,
        users: &[(U, P)],
        secret: &str,
        signed: &[&str],
    ) -> Result<FreeRadius, String> {
        let binary = ["/usr/sbin/freeradius", "/usr/sbin/radiusd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or("FreeRADIUS is not installed (Debian package freeradius; scripts/test.sh and bench/run.sh install it)")?;
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let port = try_free_udp_port()?;
        let acct_port = try_free_udp_port()?;
        for sub in ["log", "run", "acct"] {
            std::fs::create_dir_all(dir.path().join(sub)).map_err(|e| format!("mkdir: {e}"))?;
        }
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        write(
            "radiusd.conf",
            &config(role, dir.path(), (port, acct_port), secret),
        )?;
        write("dictionary", "$INCLUDE /usr/share/freeradius/dictionary\n")?;
        let users: String = users
            .iter()
            .map(|(u, p)| {
                let signed = signed.contains(&u.as_ref());
                role.user_entry(u.as_ref(), p.as_ref(), signed)
            })
            .collect();
        write("users", &users)?;
        let mut child = Command::new(&binary)
            .args(["-f", "-d"])
            .arg(dir.path())
            .args(["-l", "stdout"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
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
            acct_addr: SocketAddr::from(([127, 0, 0, 1], acct_port)),
            dir,
        };
        match started {
            Ok(()) => Ok(server),
            Err(_) => Err(format!("FreeRADIUS did not start:\n{}", server.log())),
        }
    }

    /// Its process id (the benchmark reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/radius.log")).unwrap_or_default()
    }

    /// The accounting records it kept so far (its detail file: one block per record, the
    /// attributes one per line).
    pub fn accounting_records(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("acct/detail")).unwrap_or_default()
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

/// `radiusd.conf` for `role` in `dir`, listening on 127.0.0.1: authentication on the first
/// port, accounting (kept in a detail file) on the second.
fn config(role: Role, dir: &Path, (port, acct_port): (u16, u16), secret: &str) -> String {
    let d = dir.display();
    let (max_requests, pool, client, post_auth) = role.tuning();
    format!(
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
max_requests = {max_requests}
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
{pool}  max_requests_per_server = 0
}}
client nas {{
  ipaddr = 127.0.0.1
  secret = {secret}
{client}}}
modules {{
  files {{
    filename = {d}/users
  }}
  pap {{
  }}
  detail {{
    filename = {d}/acct/detail
    escape_filenames = no
    permissions = 0600
    header = "%t"
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  listen {{
    type = acct
    ipaddr = 127.0.0.1
    port = {acct_port}
  }}
  accounting {{
    detail
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
{post_auth}}}
"#
    )
}
