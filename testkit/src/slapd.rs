//! A throwaway OpenLDAP `slapd` for the LDAP tests and the benchmark: its own directory, config,
//! data and free ports, loaded with `slapadd`, run in the foreground as a child (for the tests
//! `-d stats`, so its log shows every BIND and SRCH), stopped with kill + wait on drop.
//! [`Slapd::with_tls`] adds a CA and a server certificate ([`crate::ca`]) and an `ldaps://`
//! listener; [`Slapd::try_with_people`] holds the benchmark's users instead of the test people.
//!
//! The people (all under `dc=example,dc=org`):
//!
//! | entry                 | password  | mobile           | mail              | other |
//! |-----------------------|-----------|------------------|-------------------|-------|
//! | uid=alice,ou=people   | alicepw   | +4917012345678   | alice@example.org |       |
//! | uid=bob,ou=people     | bobpw ({SSHA}) | –           | bob@example.org   |       |
//! | uid=carol,ou=people   | carolpw   | –                | –                 |       |
//! | uid=erin,ou=people    | erinpw    | –                | –                 | pager +4916000000001 |
//! | uid=twin,ou=people and uid=twin,ou=staff | twinpw | +4915100000001 | – | two entries |
//!
//! The service account `cn=reader,dc=example,dc=org` / `readerpw` may read everything;
//! anonymous searches are allowed too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ca::{KeyKind, TestCa};
use crate::ports::try_free_port;

/// The search base.
pub const BASE_DN: &str = "dc=example,dc=org";
/// The service account.
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// Its password.
pub const READER_PW: &str = "readerpw";

/// A running (or stopped) slapd.
pub struct Slapd {
    dir: tempfile::TempDir,
    /// The `ldap://` port.
    pub port: u16,
    /// The `ldaps://` port, when started with TLS.
    pub tls_port: Option<u16>,
    /// `-d stats` into `slapd.log` (the tests read it); off, slapd logs nothing (`-d 0`), as
    /// the benchmark wants: a log line per operation would be measured too.
    stats_log: bool,
    child: Option<Child>,
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| {
        format!("{command:?}: {e} (run scripts/test.sh, which installs slapd and ldap-utils)")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn slapd_binary() -> &'static str {
    if Path::new("/usr/sbin/slapd").exists() {
        "/usr/sbin/slapd"
    } else {
        "slapd"
    }
}

impl Slapd {
    /// Plain `ldap://` only, with the test people.
    pub fn start() -> Slapd {
        Slapd::create(false, &data_ldif(), true).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ldap://` with StartTLS and `ldaps://`, with a certificate from [`Slapd::ca_file`].
    pub fn with_tls() -> Slapd {
        Slapd::create(true, &data_ldif(), true).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Plain `ldap://`, no log, holding only `people` (name, plain-text password, mobile) as
    /// `uid=NAME,ou=people,dc=example,dc=org`: the benchmark's directory.
    pub fn try_with_people(people: &[(String, String, String)]) -> Result<Slapd, String> {
        let mut ldif = format!(
            "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n"
        );
        for (name, password, mobile) in people {
            ldif.push_str(&format!(
                "dn: uid={name},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\n\
                 sn: {name}\nmobile: {mobile}\nuserPassword: {password}\n\n"
            ));
        }
        Slapd::create(false, &ldif, false)
    }

    fn create(tls: bool, ldif: &str, stats_log: bool) -> Result<Slapd, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let d = dir.path();
        let write = |name: &str, text: &str| {
            std::fs::write(d.join(name), text).map_err(|e| format!("{name}: {e}"))
        };
        std::fs::create_dir_all(d.join("db")).map_err(|e| format!("db dir: {e}"))?;
        let tls_conf = if tls {
            TestCa::try_create_in(d, KeyKind::EcP256)?;
            format!(
                "TLSCACertificateFile {0}/ca.pem\nTLSCertificateFile {0}/server.pem\nTLSCertificateKeyFile {0}/server.key\n",
                d.display()
            )
        } else {
            String::new()
        };
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
{tls_conf}modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 1073741824
suffix "{BASE_DN}"
rootdn "cn=admin,{BASE_DN}"
rootpw secret
directory {d}/db
index objectClass eq
index uid,mail eq
"#,
            d = d.display()
        );
        write("slapd.conf", &conf)?;
        write("data.ldif", ldif)?;
        run(Command::new("slapadd")
            .args(["-q", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("data.ldif")))?;
        let mut slapd = Slapd {
            dir,
            port: try_free_port()?,
            tls_port: if tls { Some(try_free_port()?) } else { None },
            stats_log,
            child: None,
        };
        slapd.try_resume()?;
        Ok(slapd)
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_uri(&self) -> String {
        format!(
            "ldaps://127.0.0.1:{}",
            self.tls_port.expect("started with TLS")
        )
    }

    /// The test CA that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Stops slapd (kill + wait); the data stays for [`Slapd::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd on its ports and waits until it answers a search.
    pub fn resume(&mut self) {
        self.try_resume().unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_resume(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "slapd is running");
        let mut listen = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(p) = self.tls_port {
            listen.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("slapd.log"))
            .map_err(|e| format!("slapd.log: {e}"))?;
        let child = Command::new(slapd_binary())
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .args([
                "-h",
                &listen,
                "-d",
                if self.stats_log { "stats" } else { "0" },
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot start slapd: {e} (run scripts/test.sh, which installs it)")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = Command::new("ldapsearch")
                .args([
                    "-x",
                    "-H",
                    &self.uri(),
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
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("slapd exited with {status}; log:\n{}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("slapd did not start; log:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Applies an LDIF of changes (`changetype: …`) as the directory's admin, with `ldapmodify`.
    pub fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.uri(),
                "-D",
                &format!("cn=admin,{BASE_DN}"),
                "-w",
                "secret",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (ldap-utils)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// slapd's stats log so far (one line per connection event and operation).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ssha(password: &str) -> String {
    let out = Command::new("slappasswd")
        .args(["-s", password])
        .output()
        .or_else(|_| {
            Command::new("/usr/sbin/slappasswd")
                .args(["-s", password])
                .output()
        })
        .expect("slappasswd");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn data_ldif() -> String {
    format!(
        r#"dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=staff,{BASE_DN}
objectClass: organizationalUnit
ou: staff

dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: {READER_PW}

dn: uid=alice,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
givenName: Alice
mail: alice@example.org
mobile: +4917012345678
userPassword: alicepw

dn: uid=bob,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.org
userPassword: {bob}

dn: uid=carol,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Carol
userPassword: carolpw

dn: uid=erin,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: erin
cn: Erin
sn: Erin
pager: +4916000000001
userPassword: erinpw

dn: uid=twin,ou=people,{BASE_DN}
objectClass: inetOrgPerson
uid: twin
cn: Twin One
sn: Twin
mobile: +4915100000001
userPassword: twinpw

dn: uid=twin,ou=staff,{BASE_DN}
objectClass: inetOrgPerson
uid: twin
cn: Twin Two
sn: Twin
mobile: +4915100000002
userPassword: twinpw
"#,
        bob = ssha("bobpw")
    )
}
