//! radsecproxy (Debian's package) as a real RadSec client: it takes RADIUS over UDP from
//! radclient on a free port and forwards it over TLS to tessera, with a client certificate the
//! test made.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::log::LogLines;
use crate::radclient::{Reply, SECRET};

/// A running radsecproxy.
pub struct RadsecProxy {
    child: Child,
    _dir: tempfile::TempDir,
    /// Where it takes UDP from radclient (secret [`SECRET`]).
    pub udp: SocketAddr,
    log: LogLines,
}

impl RadsecProxy {
    /// Starts radsecproxy forwarding to tessera's RadSec address `server`, presenting
    /// `cert`/`key` and trusting `ca` for tessera's certificate.
    pub fn start(server: SocketAddr, ca: &Path, cert: &Path, key: &Path) -> RadsecProxy {
        crate::require_program(
            "radsecproxy",
            "-v",
            "run scripts/test.sh, which installs it",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // A free UDP port: bind, note, release (radsecproxy binds it right after).
        let udp = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free port");
        let config = format!(
            r#"ListenUDP 127.0.0.1:{udp_port}
LogLevel 4
tls default {{
    CACertificateFile {ca}
    CertificateFile {cert}
    CertificateKeyFile {key}
}}
client radclient {{
    host 127.0.0.1
    type udp
    secret {SECRET}
}}
server tessera {{
    host {host}
    port {port}
    type tls
    secret radsec
    tls default
    StatusServer off
    RetryCount 0
}}
realm * {{
    server tessera
}}
"#,
            udp_port = udp.port(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
            host = server.ip(),
            port = server.port(),
        );
        let path = dir.path().join("radsecproxy.conf");
        std::fs::write(&path, config).expect("write radsecproxy.conf");
        let mut child = Command::new("radsecproxy")
            .args(["-f", "-d", "4", "-c"])
            .arg(&path)
            .arg("-i")
            .arg(dir.path().join("pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start radsecproxy");
        let stderr = child.stderr.take().expect("stderr");
        let log = LogLines::collect(stderr, |_| {});
        let proxy = RadsecProxy {
            child,
            _dir: dir,
            udp,
            log,
        };
        proxy.wait_for_log("listening for udp on");
        proxy
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log
            .wait_for(needle, Duration::from_secs(15), "radsecproxy")
    }

    /// Everything radsecproxy logged so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// An Access-Request through the proxy, as a NAS sends it (with Message-Authenticator).
    pub fn auth(&self, user: &str, password: &str, state: Option<&str>) -> Reply {
        crate::radclient::auth(self.udp, SECRET, user, password, state)
    }
}

impl Drop for RadsecProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare RadSec client on rustls (blocking), for what radsecproxy cannot be made to send:
/// packets split or joined at will, impossible lengths, garbage.
pub struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
}

impl TlsClient {
    /// Connects and completes the handshake (TLS 1.3 may report a refused client certificate
    /// only on the first read).
    pub fn connect(
        server: SocketAddr,
        ca: &Path,
        cert: &Path,
        key: &Path,
    ) -> std::io::Result<TlsClient> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
        let name = ServerName::IpAddress(server.ip().into());
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = std::net::TcpStream::connect(server)?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            match stream.conn.complete_io(&mut stream.sock) {
                // With a read timeout set, a stop and continue of this process ends the read
                // with EINTR instead of restarting it: read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(TlsClient { stream })
    }

    /// Writes bytes as one TLS record write.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one RADIUS packet; `None` when the server closed the connection.
    pub fn read_packet(&mut self) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut packet = header.to_vec();
        packet.resize(len.max(4), 0);
        self.stream.read_exact(&mut packet[4..]).ok()?;
        Some(packet)
    }
}
