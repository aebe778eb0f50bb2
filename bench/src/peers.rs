//! The servers a benchmark measures: tessera (the binary under test, on a temporary config)
//! and FreeRADIUS (the reference, [`testkit::freeradius`] in its `Reference` role), with what
//! the tables report of them (CPU time, peak memory, reject reasons). Both are started on free
//! loopback ports and killed when dropped. The other peers (slapd, PostgreSQL, the test CA)
//! come from `testkit` as they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::freeradius::{FreeRadius, Role};
use testkit::postgres::Postgres;

/// The process behind a [`Peer`].
enum Process {
    Tessera(Child),
    FreeRadius(FreeRadius),
}

/// A server process under load.
pub struct Peer {
    process: Process,
    /// Where it receives RADIUS.
    pub addr: SocketAddr,
    /// Where it serves RadSec, when it does (tessera with `tls_listen`).
    pub tls_addr: Option<SocketAddr>,
    /// Where it serves `/validate/check`, when it does (tessera with `[http] listen`).
    pub http_addr: Option<SocketAddr>,
    /// Its log, when it writes one the benchmark can read (tessera).
    log: Option<PathBuf>,
    /// Its working directory (tessera's), deleted when the peer is dropped.
    dir: Option<tempfile::TempDir>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Process::Tessera(child) = &mut self.process {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Peer {
    /// Its working directory (tessera's; FreeRADIUS's is its own business).
    pub fn dir(&self) -> Result<&Path, String> {
        self.dir
            .as_ref()
            .map(tempfile::TempDir::path)
            .ok_or_else(|| "this server has no working directory of the benchmark's".into())
    }

    fn pid(&self) -> u32 {
        match &self.process {
            Process::Tessera(child) => child.id(),
            Process::FreeRadius(server) => server.pid(),
        }
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
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
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
        self.status_mib("VmHWM:")
    }

    /// Resident memory now (VmRSS) in MiB, from /proc.
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    /// A `/proc/PID/status` line in kB, as MiB.
    fn status_mib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// Starts tessera with `config` (already written into `dir`) and waits until it listens.
pub fn start_tessera(binary: &Path, dir: tempfile::TempDir, config: &Path) -> Result<Peer, String> {
    // TESSERA_BENCH_LOGS=DIR keeps every tessera's log there (to match stalls with the store's
    // "slow …" lines); otherwise the log goes with the scratch directory.
    let log_path = match std::env::var_os("TESSERA_BENCH_LOGS") {
        Some(keep) => {
            static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Path::new(&keep).join(format!("tessera-{}-{n}.log", std::process::id()))
        }
        None => dir.path().join("tessera.log"),
    };
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
    let config_text = std::fs::read_to_string(config).unwrap_or_default();
    let radsec = config_text.contains("tls_listen");
    let http = config_text.contains("\n[http]\n");
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
        // "HTTP API on http://127.0.0.1:5080/validate/check"
        let http_addr = text
            .lines()
            .find_map(|l| l.split("HTTP API on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(|addr| {
                addr.parse::<SocketAddr>()
                    .map_err(|_| format!("bad HTTP address {addr:?}"))
            })
            .transpose()?;
        if let Some(addr) = address_after(&text, "listening on ").transpose()?
            && (tls_addr.is_some() || !radsec)
            && (http_addr.is_some() || !http)
        {
            return Ok(Peer {
                process: Process::Tessera(child),
                addr,
                tls_addr,
                http_addr,
                log: Some(log_path),
                dir: Some(dir),
            });
        }
        if Instant::now() > deadline {
            return Err(format!("tessera did not start:\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts FreeRADIUS as the reference: `users` (name, password) in its users file, PAP.
pub fn start_freeradius(users: &[(String, String)], secret: &str) -> Result<Peer, String> {
    let server = FreeRadius::try_start(Role::Reference, users, secret)?;
    Ok(Peer {
        addr: server.addr,
        process: Process::FreeRadius(server),
        tls_addr: None,
        http_addr: None,
        log: None,
        dir: None,
    })
}

/// The `[store]` keys of a node on the benchmark's PostgreSQL `pg` (trust on loopback: no
/// password), with `key_file`.
pub fn pg_store_keys(pg: &Postgres, key_file: &Path) -> String {
    format!(
        "backend = \"postgresql\"\nurl = \"{}\"\nkey_file = \"{}\"\npool_size = 32\n",
        pg.url(),
        key_file.display()
    )
}
