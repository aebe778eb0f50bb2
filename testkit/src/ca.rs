//! A test CA made with the `openssl` CLI: a CA, a server certificate for `localhost` /
//! `127.0.0.1`, and client certificates on demand. The tests use RSA keys (what most
//! deployments have); slapd and the benchmark use P-256 keys (fast to make and to handshake).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The kind of every key the CA makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048.
    Rsa,
    /// ECDSA on P-256.
    EcP256,
}

impl KeyKind {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyKind::Rsa => &["-newkey", "rsa:2048", "-nodes"],
            KeyKind::EcP256 => &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ],
        }
    }
}

/// A CA and a server certificate: `ca.pem`, `server.pem`, `server.key` in one directory.
pub struct TestCa {
    _dir: Option<tempfile::TempDir>,
    dir: PathBuf,
    kind: KeyKind,
    /// The CA certificate (PEM), for the client to trust.
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA with RSA keys in a directory of its own.
    #[allow(
        clippy::new_without_default,
        reason = "making a CA runs openssl; no default"
    )]
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca =
            TestCa::try_create_in(dir.path(), KeyKind::Rsa).unwrap_or_else(|e| panic!("{e}"));
        ca._dir = Some(dir);
        ca
    }

    /// A fresh CA with `kind` keys, its files written into `dir` (which the caller keeps).
    pub fn try_create_in(dir: &Path, kind: KeyKind) -> Result<TestCa, String> {
        let ca = TestCa {
            _dir: None,
            dir: dir.to_path_buf(),
            kind,
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        ca.openssl(
            &["req", "-x509"],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tessera test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        ca.try_sign(
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )?;
        Ok(ca)
    }

    /// A client certificate signed by this CA with the subject alternative name `san` (e.g.
    /// `DNS:nas1.example.org`): (certificate, key) PEM paths in the CA's directory.
    pub fn client_cert(&self, name: &str, san: &str) -> (PathBuf, PathBuf) {
        self.try_client_cert(name, san)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same, or why openssl failed.
    pub fn try_client_cert(&self, name: &str, san: &str) -> Result<(PathBuf, PathBuf), String> {
        self.try_sign(
            name,
            &format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth,serverAuth\n"),
        )
    }

    /// Makes `NAME.key` and `NAME.pem` signed by the CA with the extensions `ext`.
    fn try_sign(&self, name: &str, ext: &str) -> Result<(PathBuf, PathBuf), String> {
        let (key, csr, cert, ext_file) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        self.openssl(
            &["req"],
            &[
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        )?;
        std::fs::write(self.dir.join(&ext_file), ext)
            .map_err(|e| format!("{}: {e}", self.dir.join(&ext_file).display()))?;
        self.run(&[
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
            &ext_file,
        ])?;
        Ok((self.dir.join(cert), self.dir.join(key)))
    }

    /// `openssl COMMAND… -newkey … REST…` in the CA's directory.
    fn openssl(&self, command: &[&str], rest: &[&str]) -> Result<(), String> {
        let args: Vec<&str> = command
            .iter()
            .chain(self.kind.newkey())
            .chain(rest)
            .copied()
            .collect();
        self.run(&args)
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("openssl: {e} (install openssl)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A certificate's SHA-256 fingerprint as openssl prints it (`AB:CD:…`).
    pub fn fingerprint(cert: &Path) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(cert)
            .output()
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .split_once('=')
            .map(|(_, f)| f.to_string())
            .expect("fingerprint")
    }
}
