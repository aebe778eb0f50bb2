//! A real 802.1X NAS: hostapd (Debian `hostapd`) with `driver=wired` on one end of a veth
//! pair, and `wpa_supplicant -Dwired` (Debian `wpasupplicant`) on the other end, inside a
//! network namespace of its own — made by the test (`ip netns`, `ip link`, Debian
//! `iproute2`; root needed) and removed on drop with both processes.
//!
//! hostapd stays in the root namespace, so the RADIUS servers it talks to are reached on
//! 127.0.0.1 as every other peer here; only the supplicant's end of the link is in the
//! namespace (two ends of a link in one namespace would do too, but the supplicant's
//! `ip netns exec` makes sure nothing but the link joins them). hostapd sends its accounting
//! to `acct_server`, answers Disconnect-Requests (RFC 5176) from 127.0.0.1 on `das_port`, and
//! authenticates through a RADIUS server (`eap_server=0`): a given one
//! ([`Authenticator::Radius`]: tessera with `[eap]`) or hostapd's integrated EAP server with
//! EAP-MD5 users of its own ([`Authenticator::IntegratedEap`]), run as a second hostapd
//! (`driver=none`, its RADIUS server on a free port). The supplicant logs in with EAP-MD5 or
//! with a network block the test writes ([`Supplicant`]: EAP-TTLS against tessera, say),
//! answering what it asks on its control interface ([`Nas::answer`]: inner GTC's two rounds).
//! Not the NAS's own
//! `eap_server=1`: a NAS that authenticates by itself does not learn the EAP identity for its
//! accounting, and sends the supplicant's MAC address as User-Name.
//!
//! [`netns_permitted`] says whether namespaces can be made here; a test skips (saying so)
//! when not.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::log::LogLines;
use crate::ports::try_free_udp_port;

/// How hostapd authenticates the supplicant.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// hostapd's integrated EAP server with EAP-MD5 users (name, password), as a RADIUS
    /// server of its own.
    IntegratedEap(Vec<(String, String)>),
    /// A RADIUS authentication server (`eap_server=0`): its address and secret.
    Radius(SocketAddr, String),
}

/// How the supplicant logs in.
#[derive(Debug, Clone)]
pub enum Supplicant {
    /// EAP-MD5 with this identity and password (for [`Authenticator::IntegratedEap`]).
    Md5(String, String),
    /// The lines of wpa_supplicant's `network={…}` block that say the method and the
    /// credentials (`eap=TTLS`, `identity=…`, `ca_cert=…`); `key_mgmt` and `eapol_flags` are
    /// added.
    Network(String),
    /// The same, with a credential left out that wpa_supplicant asks for on its control
    /// interface (inner GTC's password and code): it waits for [`Nas::answer`] to attach
    /// before it starts.
    Prompted(String),
}

impl Supplicant {
    /// The whole `network={…}` block.
    fn network(&self) -> String {
        let lines = match self {
            Supplicant::Md5(user, password) => {
                format!("eap=MD5\nidentity=\"{user}\"\npassword=\"{password}\"")
            }
            Supplicant::Network(lines) | Supplicant::Prompted(lines) => lines.clone(),
        };
        format!("network={{\nkey_mgmt=IEEE8021X\neapol_flags=0\n{lines}\n}}\n")
    }
}

/// What the NAS is configured with.
#[derive(Debug, Clone)]
pub struct NasConfig {
    /// How it authenticates.
    pub authenticator: Authenticator,
    /// The accounting server (tessera's accounting port).
    pub acct_server: SocketAddr,
    /// The accounting secret.
    pub acct_secret: String,
    /// Its DAS (RFC 5176): the UDP port it listens on and the secret of the
    /// Disconnect-Requests it accepts from 127.0.0.1; off when `None`.
    pub das: Option<(u16, String)>,
    /// How the supplicant logs in.
    pub supplicant: Supplicant,
}

/// Whether this process may make network namespaces (root, and a kernel that lets it);
/// `Err` says why not.
pub fn netns_permitted() -> Result<(), String> {
    // A name of this call's own: tests probing at once must not see each other's namespace
    // ("File exists") and skip.
    static PROBE: AtomicU32 = AtomicU32::new(0);
    let n = PROBE.fetch_add(1, Ordering::Relaxed);
    let name = format!("tsr-probe-{}-{n}", std::process::id());
    let out = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .map_err(|e| format!("ip not found ({e}): apt-get install iproute2"))?;
    if !out.status.success() {
        return Err(format!(
            "ip netns add: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    Ok(())
}

/// A running NAS with its supplicant.
pub struct Nas {
    namespace: String,
    link: String,
    hostapd: Option<Child>,
    supplicant: Option<Child>,
    eap_server: Option<Child>,
    /// hostapd's output (`-d`).
    pub hostapd_log: LogLines,
    /// wpa_supplicant's output (`-d`).
    pub supplicant_log: LogLines,
    /// wpa_supplicant's control socket.
    control: PathBuf,
    _dir: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn_logged(mut command: Command, who: &'static str) -> (Child, LogLines) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{who} not started ({e}): apt-get install hostapd wpasupplicant")
        });
    let out = child.stdout.take().expect("stdout");
    let log = LogLines::collect(out, |_| {});
    (child, log)
}

impl Nas {
    /// Makes the namespace and the link, starts hostapd on the root end and waits until it
    /// is up, then starts wpa_supplicant on the namespace's end.
    pub fn start(config: &NasConfig) -> Nas {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        // Interface names have at most 15 characters.
        let (link, peer, namespace) = (
            format!("tna{tag}"),
            format!("tns{tag}"),
            format!("tessera-nas-{tag}"),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        ip(&["netns", "add", &namespace]);
        let mut nas = Nas {
            namespace: namespace.clone(),
            link: link.clone(),
            hostapd: None,
            supplicant: None,
            eap_server: None,
            hostapd_log: LogLines::default(),
            supplicant_log: LogLines::default(),
            control: dir.path().join("ctrl").join(&peer),
            _dir: tempfile::tempdir().expect("tempdir"),
        };
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &namespace]);
        ip(&["link", "set", &link, "up"]);
        ip(&[
            "netns", "exec", &namespace, "ip", "link", "set", &peer, "up",
        ]);

        let auth_server = match &config.authenticator {
            Authenticator::Radius(addr, secret) => (*addr, secret.clone()),
            Authenticator::IntegratedEap(users) => {
                let (child, addr) = start_eap_server(dir.path(), users);
                nas.eap_server = Some(child);
                (addr, EAP_SERVER_SECRET.to_string())
            }
        };
        let conf = hostapd_conf(&link, config, &auth_server);
        std::fs::write(dir.path().join("hostapd.conf"), conf).expect("write hostapd.conf");
        // Line-buffered: the test waits for lines while hostapd runs.
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "hostapd", "-d"])
            .arg(dir.path().join("hostapd.conf"));
        let (child, log) = spawn_logged(command, "hostapd");
        nas.hostapd = Some(child);
        nas.hostapd_log = log;
        nas.hostapd_log
            .wait_for("AP-ENABLED", Duration::from_secs(20), "hostapd");

        let supplicant_conf = format!(
            "ctrl_interface={}\nap_scan=0\n{}",
            dir.path().join("ctrl").display(),
            config.supplicant.network()
        );
        let path = dir.path().join("wpa_supplicant.conf");
        std::fs::write(&path, supplicant_conf).expect("write wpa_supplicant.conf");
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &namespace,
                "stdbuf",
                "-oL",
                "wpa_supplicant",
            ])
            .args(["-d", "-Dwired", "-i"])
            .arg(&peer);
        if matches!(config.supplicant, Supplicant::Prompted(_)) {
            command.arg("-W");
        }
        command.arg("-c").arg(&path);
        let (child, log) = spawn_logged(command, "wpa_supplicant");
        nas.supplicant = Some(child);
        nas.supplicant_log = log;
        nas._dir = dir;
        nas
    }

    /// Waits until the supplicant's port is authorized (its EAP succeeded).
    pub fn wait_authorized(&self) {
        self.supplicant_log.wait_for(
            "CTRL-EVENT-EAP-SUCCESS",
            Duration::from_secs(30),
            "wpa_supplicant",
        );
    }
}

impl Nas {
    /// Attaches to wpa_supplicant's control interface (a [`Supplicant::Prompted`] one waits
    /// for this to start) and answers each credential it asks for with `answer(prompt)`, until
    /// its EAP succeeds or fails: the prompts, in order, and whether it succeeded. Once per
    /// NAS.
    pub fn answer(&self, mut answer: impl FnMut(&str) -> String) -> (Vec<String>, bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.control.exists() {
            assert!(
                Instant::now() < deadline,
                "no control socket {:?}",
                self.control
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let local = self._dir.path().join("monitor");
        let monitor = UnixDatagram::bind(&local).expect("bind the monitor socket");
        monitor
            .connect(&self.control)
            .expect("connect to wpa_supplicant");
        monitor
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        monitor.send(b"ATTACH").expect("ATTACH");
        let mut prompts = vec![];
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(n) = monitor.recv(&mut buf) else {
                continue;
            };
            let event = String::from_utf8_lossy(&buf[..n]).into_owned();
            if event.contains("CTRL-EVENT-EAP-SUCCESS") {
                return (prompts, true);
            }
            if event.contains("CTRL-EVENT-EAP-FAILURE") {
                return (prompts, false);
            }
            let Some((field_id, prompt)) = crate::eapol::control_request(&event) else {
                continue;
            };
            let reply = format!("CTRL-RSP-{field_id}:{}", answer(&prompt));
            prompts.push(prompt);
            monitor
                .send(reply.as_bytes())
                .expect("answer wpa_supplicant");
        }
        (prompts, false)
    }
}

/// The secret between the NAS and the integrated EAP server.
const EAP_SERVER_SECRET: &str = "eap-server-secret";

/// Starts hostapd as a RADIUS server with its integrated EAP server and EAP-MD5 `users`, on a
/// free port of 127.0.0.1; waits until it is up.
fn start_eap_server(dir: &Path, users: &[(String, String)]) -> (Child, SocketAddr) {
    let users_file = dir.join("eap_users");
    let lines: String = users
        .iter()
        .map(|(u, p)| format!("\"{u}\" MD5 \"{p}\"\n"))
        .collect();
    std::fs::write(&users_file, lines).expect("write eap_users");
    let clients = dir.join("radius_clients");
    std::fs::write(&clients, format!("127.0.0.1/32 {EAP_SERVER_SECRET}\n"))
        .expect("write radius_clients");
    let port = try_free_udp_port().expect("a free port");
    let conf = format!(
        "driver=none\nlogger_stdout=-1\nlogger_stdout_level=0\neap_server=1\n\
         eap_user_file={}\nradius_server_clients={}\nradius_server_auth_port={port}\n",
        users_file.display(),
        clients.display()
    );
    let path = dir.join("eap_server.conf");
    std::fs::write(&path, conf).expect("write eap_server.conf");
    let mut command = Command::new("stdbuf");
    command.args(["-oL", "hostapd", "-d"]).arg(&path);
    let (child, log) = spawn_logged(command, "hostapd (EAP server)");
    log.wait_for(
        "AP-ENABLED",
        Duration::from_secs(20),
        "hostapd (EAP server)",
    );
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The NAS's hostapd configuration.
fn hostapd_conf(link: &str, config: &NasConfig, auth_server: &(SocketAddr, String)) -> String {
    let mut conf = format!(
        "interface={link}\ndriver=wired\nieee8021x=1\neapol_version=2\nuse_pae_group_addr=1\n\
         logger_stdout=-1\nlogger_stdout_level=0\nown_ip_addr=127.0.0.1\neap_server=0\n\
         auth_server_addr={}\nauth_server_port={}\nauth_server_shared_secret={}\n\
         acct_server_addr={}\nacct_server_port={}\nacct_server_shared_secret={}\n",
        auth_server.0.ip(),
        auth_server.0.port(),
        auth_server.1,
        config.acct_server.ip(),
        config.acct_server.port(),
        config.acct_secret,
    );
    if let Some((port, secret)) = &config.das {
        conf.push_str(&format!(
            "radius_das_port={port}\nradius_das_client=127.0.0.1 {secret}\n\
             radius_das_require_event_timestamp=1\n\
             radius_das_require_message_authenticator=1\n"
        ));
    }
    conf
}

impl Drop for Nas {
    fn drop(&mut self) {
        for child in [
            self.supplicant.as_mut(),
            self.hostapd.as_mut(),
            self.eap_server.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}
