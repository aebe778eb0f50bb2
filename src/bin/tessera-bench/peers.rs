//! The processes a benchmark talks to: tessera (the binary under test, on a temporary config)
//! and FreeRADIUS (the reference, on a minimal config of its own). Both are started on free
//! loopback ports and killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process under load.
pub struct Peer {
    child: Child,
    /// Where it receives RADIUS.
    pub addr: SocketAddr,
    /// Where it serves RadSec, when it does (tessera with `tls_listen`).
    pub tls_addr: Option<SocketAddr>,
    /// Its log, when it writes one the benchmark can read (tessera).
    log: Option<PathBuf>,
    /// Its working directory, deleted when the peer is dropped.
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// Its working directory.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// The reasons tessera logged for its rejects so far, most frequent first: a table with
    /// rejects is only useful if it says why.
    pub fn reject_reasons(&self) -> Vec<(String, usize)> {
        let text = self
            .log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for line in text
            .lines()
            .filter(|l| l.contains("result=\"reject\"") || l.contains("result=reject"))
        {
            let reason = line
                .split("reason=")
                .nth(1)
                // The reason is the field before `serial` (see `Engine::decide`).
                .and_then(|rest| rest.split(" serial=").next())
                .unwrap_or("?");
            *counts.entry(reason.to_string()).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counts
    }

    /// CPU time used so far by every thread of the server (user + system), from /proc.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The command name (field 2) may hold spaces; the fields after its `)` are plain.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name, in
        // clock ticks: 100 per second on Linux (USER_HZ).
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// Peak resident memory (VmHWM) in MiB, from /proc.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// A free UDP port on loopback (bound and released; fine for a benchmark on a quiet machine).
pub fn free_udp_port() -> std::io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts tessera with `config` (already written into `dir`) and waits until it listens.
pub fn start_tessera(binary: &Path, dir: tempfile::TempDir, config: &Path) -> Result<Peer, String> {
    let log_path = dir.path().join("tessera.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let radsec = std::fs::read_to_string(config)
        .unwrap_or_default()
        .contains("tls_listen");
    let address_after = |text: &str, marker: &str| -> Option<Result<SocketAddr, String>> {
        let addr = text.lines().find_map(|l| l.split(marker).nth(1))?;
        let addr = addr.split_whitespace().next().unwrap_or("");
        Some(
            addr.parse()
                .map_err(|_| format!("bad listen address {addr:?}")),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tls_addr = address_after(&text, "RadSec (RADIUS over TLS) on ").transpose()?;
        if let Some(addr) = address_after(&text, "listening on ").transpose()?
            && (tls_addr.is_some() || !radsec)
        {
            return Ok(Peer {
                child,
                addr,
                tls_addr,
                log: Some(log_path),
                _dir: dir,
            });
        }
        if Instant::now() > deadline {
            return Err(format!("tessera did not start:\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts FreeRADIUS 3.2 (`freeradius`, Debian's name for radiusd) with a minimal config:
/// one client, the `files` module with `users` (Cleartext-Password), PAP.
// TODO(issue 14): split by the workspace/testkit helper, then drop this allow.
#[allow(clippy::too_many_lines)]
pub fn start_freeradius(users: &[(String, String)], secret: &str) -> Result<Peer, String> {
    let binary = ["/usr/sbin/freeradius", "/usr/sbin/radiusd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("FreeRADIUS is not installed (Debian package freeradius)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path().display().to_string();
    let port = free_udp_port().map_err(|e| e.to_string())?;
    for sub in ["log", "run"] {
        std::fs::create_dir_all(dir.path().join(sub)).map_err(|e| e.to_string())?;
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
max_requests = 65536
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
  start_servers = 4
  max_servers = 16
  min_spare_servers = 2
  max_spare_servers = 8
  max_requests_per_server = 0
}}
client localhost {{
  ipaddr = 127.0.0.1
  secret = {secret}
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
}}
"#
    );
    std::fs::write(dir.path().join("radiusd.conf"), config).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("dictionary"),
        "$INCLUDE /usr/share/freeradius/dictionary\n",
    )
    .map_err(|e| e.to_string())?;
    let users: String = users
        .iter()
        .map(|(u, p)| format!("{u} Cleartext-Password := \"{p}\"\n"))
        .collect();
    std::fs::write(dir.path().join("users"), users).map_err(|e| e.to_string())?;
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
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => Ok(Peer {
            child,
            addr,
            tls_addr: None,
            log: None,
            _dir: dir,
        }),
        Err(_) => {
            let _ = child.kill();
            let log =
                std::fs::read_to_string(dir.path().join("log/radius.log")).unwrap_or_default();
            Err(format!("FreeRADIUS did not start:\n{log}"))
        }
    }
}

/// Makes, with the openssl CLI, what a RadSec run needs in `dir`: `ca.pem`, the server's
/// `server.pem`/`server.key` (IP 127.0.0.1) and the load generator's `client.pem`/`client.key`
/// (DNS `bench-nas.example.org`, the `tls_identity` of the benchmark's RadSec client).
// TODO(issue 14): split by the workspace/testkit helper, then drop this allow.
#[allow(clippy::too_many_lines)]
pub fn make_radsec_certificates(dir: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bench CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ])?;
    for (name, san) in [
        ("server", "IP:127.0.0.1"),
        ("client", "DNS:bench-nas.example.org"),
    ] {
        let (key, csr, cert, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ])?;
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\n"),
        )
        .map_err(|e| e.to_string())?;
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ])?;
    }
    Ok(())
}

/// A throwaway OpenLDAP slapd holding the benchmark's users, killed on drop.
pub struct Slapd {
    child: Child,
    /// `ldap://127.0.0.1:PORT`.
    pub uri: String,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts slapd on a free port with `users` as `uid=NAME,ou=people,dc=example,dc=org`
/// (plain-text password, mobile number).
// TODO(issue 14): split by the workspace/testkit helper, then drop this allow.
#[allow(clippy::too_many_lines)]
pub fn start_slapd(users: &[(String, String, String)]) -> Result<Slapd, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    std::fs::create_dir_all(d.join("db")).map_err(|e| e.to_string())?;
    let conf = format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 1073741824
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory {d}/db
index objectClass eq
index uid eq
"#,
        d = d.display()
    );
    std::fs::write(d.join("slapd.conf"), conf).map_err(|e| e.to_string())?;
    let mut ldif = String::from(
        "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n",
    );
    for (name, password, mobile) in users {
        ldif.push_str(&format!(
            "dn: uid={name},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\n\
             mobile: {mobile}\nuserPassword: {password}\n\n"
        ));
    }
    std::fs::write(d.join("data.ldif"), ldif).map_err(|e| e.to_string())?;
    let added = Command::new("slapadd")
        .args(["-q", "-f"])
        .arg(d.join("slapd.conf"))
        .arg("-l")
        .arg(d.join("data.ldif"))
        .output()
        .map_err(|e| format!("slapadd: {e} (Debian packages slapd and ldap-utils)"))?;
    if !added.status.success() {
        return Err(format!(
            "slapadd failed: {}",
            String::from_utf8_lossy(&added.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let uri = format!("ldap://127.0.0.1:{port}");
    let slapd = if Path::new("/usr/sbin/slapd").exists() {
        "/usr/sbin/slapd"
    } else {
        "slapd"
    };
    let child = Command::new(slapd)
        .arg("-f")
        .arg(d.join("slapd.conf"))
        .args(["-h", &format!("{uri}/"), "-d", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start slapd: {e}"))?;
    let slapd = Slapd {
        child,
        uri,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &slapd.uri,
                "-b",
                "",
                "-s",
                "base",
                "namingContexts",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            return Ok(slapd);
        }
        if Instant::now() > deadline {
            return Err("slapd did not answer within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster for the `-pg` scenarios: `initdb` into a temporary directory and
/// `pg_ctl` on a free loopback port, as the `postgres` OS user when we are root (PostgreSQL
/// refuses root). Durable like production (fsync on), trust authentication on loopback.
/// Stopped (`-m immediate`) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Postgres {
    /// Creates and starts a cluster with role and database `tessera`.
    pub fn start() -> Result<Postgres, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("PostgreSQL is not installed (/usr/lib/postgresql: {e})"))?
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, e.path().join("bin")))
            })
            .max()
            .map(|(_, bin)| bin)
            .ok_or("PostgreSQL is not installed")?;
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_udp_port().map_err(|e| e.to_string())?;
        let pg = Postgres { dir, bin, port };
        if is_root() {
            pg.check(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:postgres")
                    .arg(pg.dir.path()),
            )?;
        }
        let data = pg.dir.path().join("data");
        pg.check(pg.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "tessera",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            pg.dir.path().display()
        );
        pg.check(
            pg.command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.path().join("server.log"))
                .args(["-o", &options, "-w", "start"]),
        )?;
        pg.check(pg.command("createdb").arg("-h").arg(pg.dir.path()).args([
            "-p",
            &port.to_string(),
            "-U",
            "tessera",
            "tessera",
        ]))?;
        Ok(pg)
    }

    /// The `[store]` keys of a node on this cluster, with `key_file`.
    pub fn store_keys(&self, key_file: &Path) -> String {
        format!(
            "backend = \"postgresql\"\nurl = \"{}\"\nkey_file = \"{}\"\npool_size = 32\n",
            self.url(),
            key_file.display()
        )
    }

    /// The URL (loopback, no TLS).
    pub fn url(&self) -> String {
        format!(
            "postgresql://tessera@127.0.0.1:{}/tessera?sslmode=disable",
            self.port
        )
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        }
    }

    fn check(&self, command: &mut Command) -> Result<(), String> {
        let out = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{command:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{command:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
