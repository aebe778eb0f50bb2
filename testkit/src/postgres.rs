//! A throwaway PostgreSQL cluster for the tests of several nodes and the benchmark's `-pg`
//! scenarios: `initdb` into a temporary
//! directory, `pg_ctl` on a free port on 127.0.0.1 (and a Unix socket in the same directory),
//! password authentication (SCRAM) for the `tessera` role, database `tessera`. PostgreSQL
//! refuses to run as root, so when the tests run as root (CI) the directory is given to the
//! `postgres` OS user (Debian's package creates it) and every command runs through
//! `runuser -u postgres --`. [`Postgres::stop`] and [`Postgres::start`] let a test take the
//! database away mid-run; dropping it stops the server (`-m immediate`) and removes the
//! directory, and so does the end of the process for a cluster that is never dropped
//! ([`Postgres::stop_when_this_process_exits`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::is_root;
use crate::ports::try_free_port;

/// The role's password (SCRAM over TCP).
pub const PASSWORD: &str = "pg-s3cret-for-tests";

/// A running (or stopped) PostgreSQL.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    running: bool,
    tls: bool,
    /// The benchmark's cluster: fsync on, as in production (the tests turn it off for speed),
    /// and trust on loopback (no SCRAM exchange while the pool fills).
    bench: bool,
}

/// The directory of `initdb` and `pg_ctl`: Debian keeps them in /usr/lib/postgresql/VER/bin
/// (the newest wins), elsewhere they are on PATH.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(path) if !path.is_empty() => Ok(Path::new(&path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()),
        _ => Err("initdb not found: run scripts/test.sh, which installs postgresql".into()),
    }
}

impl Postgres {
    /// Creates and starts a cluster with role `tessera` and database `tessera`.
    pub fn start_new() -> Postgres {
        Postgres::create(None, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same, with TLS on (the server's certificate and key, PEM).
    pub fn start_new_with_tls(cert: &Path, key: &Path) -> Postgres {
        Postgres::create(Some((cert, key)), false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The benchmark's cluster (durable like production, trust on loopback, no password), or
    /// why it did not start.
    pub fn try_start_for_benchmark() -> Result<Postgres, String> {
        Postgres::create(None, true)
    }

    fn create(tls: Option<(&Path, &Path)>, bench: bool) -> Result<Postgres, String> {
        let dir = tempfile::Builder::new()
            .prefix("tessera-pg")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let mut pg = Postgres {
            bin: bin_dir()?,
            port: try_free_port()?,
            running: false,
            tls: false,
            bench,
            dir,
        };
        std::fs::write(pg.dir.path().join("pwfile"), PASSWORD)
            .map_err(|e| format!("pwfile: {e}"))?;
        if let Some((cert, key)) = tls {
            // PostgreSQL wants its key private to it (0600, owned by the server's user).
            std::fs::copy(cert, pg.dir.path().join("server.crt"))
                .map_err(|e| format!("copy certificate: {e}"))?;
            std::fs::copy(key, pg.dir.path().join("server.key"))
                .map_err(|e| format!("copy key: {e}"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                pg.dir.path().join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .map_err(|e| format!("chmod key: {e}"))?;
            pg.tls = true;
        }
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err("chown to postgres failed".into());
            }
        }
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "tessera",
                "--auth-local=trust",
                if pg.bench {
                    "--auth-host=trust"
                } else {
                    "--auth-host=scram-sha-256"
                },
                "--pwfile",
                &pg.path("pwfile"),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        pg.try_start()?;
        let port = pg.port.to_string();
        let socket = pg.dir.path().display().to_string();
        pg.run(
            "createdb",
            &["-h", &socket, "-p", &port, "-U", "tessera", "tessera"],
        )?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.path("data")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// One of PostgreSQL's programs, to run as `postgres` when we are root.
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

    /// Runs one of PostgreSQL's programs (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let binary = self.bin.join(program);
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{program} {args:?} failed:\n{}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        ))
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn start(&mut self) {
        self.try_start().unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_start(&mut self) -> Result<(), String> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if !self.bench {
            options.push_str(" -c fsync=off");
        }
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.path("server.crt"),
                self.path("server.key")
            ));
        }
        let data = self.data();
        let log = self.path("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (fast: open connections are closed) and waits until it is gone.
    pub fn stop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .unwrap_or_else(|e| panic!("{e}"));
        self.running = false;
    }

    /// The URL a node uses: TCP on 127.0.0.1, no TLS, no password in it.
    pub fn url(&self) -> String {
        format!(
            "postgresql://tessera@127.0.0.1:{}/tessera?sslmode=disable&target_session_attrs=read-write",
            self.port
        )
    }

    /// Makes sure the cluster goes away with this process, for one kept in a `static` (whose
    /// `Drop` never runs) and shared by a test binary's tests: a shell in a process group of
    /// its own (a Ctrl-C of the tests does not reach it) waits until this process has exited,
    /// however it ended, then stops the server (`-m immediate`) and removes its directory.
    pub fn stop_when_this_process_exits(&self) {
        use std::os::unix::process::CommandExt;
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let as_postgres = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
             {as_postgres}{pg_ctl} -D {data} -m immediate -w stop; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = quote(&self.bin.join("pg_ctl").display().to_string()),
            data = quote(&self.data()),
            dir = quote(&self.dir.path().display().to_string()),
        );
        let watcher = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        if let Err(e) = watcher {
            panic!("cannot watch for the end of the tests to stop PostgreSQL: {e}");
        }
    }

    /// Runs SQL with `psql` over the Unix socket; returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = self
            .command("psql")
            .args(["-h", &self.dir.path().display().to_string()])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "tessera",
                "-d",
                "tessera",
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
