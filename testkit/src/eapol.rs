//! wpa_supplicant's `eapol_test` (Debian `eapoltest`) as the 802.1X supplicant and NAS of a
//! test: it runs one EAP conversation over RADIUS against the server and exits 0 on
//! Access-Accept — with MPPE keys equal to its own MSK, unless run with `-n` (no keys, outer
//! GTC). Each run writes its network block into a directory of its own.
//!
//! A password left out of the network block is asked on wpa_supplicant's control interface:
//! the run starts with `-W` (wait for a monitor), attaches to `<dir>/ctrl/test`, and answers
//! each `CTRL-REQ-<FIELD>-<id>:<text>` with `CTRL-RSP-<FIELD>-<id>:<value>`, the value from the
//! test's callback (which reads a code from the spool, say). The process is killed on drop and
//! never outlives the run.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test with what to install when eapol_test is missing.
pub fn require_eapol_test() {
    crate::require_program(
        "eapol_test",
        "-v",
        "run scripts/test.sh, which installs eapoltest",
    );
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// eapol_test's exit code (0: Access-Accept, and keys matching when expected).
    pub code: i32,
    /// Its output (stdout and stderr).
    pub output: String,
    /// The prompts the control interface showed, in order (`Password: ` …).
    pub prompts: Vec<String>,
}

impl Outcome {
    /// Whether it ended with EAP-Success and Access-Accept.
    pub fn succeeded(&self) -> bool {
        self.code == 0 && self.output.contains("SUCCESS")
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs eapol_test with `network` (the lines inside `network={…}`) against `server`;
/// `keys`: whether MPPE keys are expected (else `-n`). Prompts on the control interface are
/// answered by `answer(prompt)`; `None` leaves one unanswered (the run then times out).
pub fn run(
    server: SocketAddr,
    secret: &str,
    network: &str,
    keys: bool,
    mut answer: impl FnMut(&str) -> Option<String>,
) -> Outcome {
    require_eapol_test();
    let dir = tempfile::tempdir().expect("tempdir");
    let ctrl = dir.path().join("ctrl");
    let conf = dir.path().join("eapol.conf");
    std::fs::write(
        &conf,
        format!(
            "ctrl_interface={}\nnetwork={{\n{network}\n}}\n",
            ctrl.display()
        ),
    )
    .expect("write eapol_test config");
    let mut command = Command::new("eapol_test");
    command
        .arg("-c")
        .arg(&conf)
        .args(["-a", &server.ip().to_string()])
        .args(["-p", &server.port().to_string()])
        .args(["-s", secret, "-t", "20", "-W"]);
    if !keys {
        command.arg("-n");
    }
    let out_path = dir.path().join("out.log");
    let out = std::fs::File::create(&out_path).expect("eapol_test log");
    let child = command
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start eapol_test");
    let mut child = Killed(child);
    let prompts = monitor(&mut child.0, &ctrl.join("test"), dir.path(), &mut answer);
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code,
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
        prompts,
    }
}

/// Attaches to the control socket and answers requests until eapol_test exits.
fn monitor(
    child: &mut Child,
    socket: &Path,
    dir: &Path,
    answer: &mut impl FnMut(&str) -> Option<String>,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            return vec![];
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let local = dir.join("monitor");
    let monitor = UnixDatagram::bind(&local).expect("bind the monitor socket");
    monitor.connect(socket).expect("connect to eapol_test");
    monitor
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    monitor.send(b"ATTACH").expect("ATTACH");
    let mut prompts = vec![];
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        let Ok(n) = monitor.recv(&mut buf) else {
            continue;
        };
        let event = String::from_utf8_lossy(&buf[..n]).into_owned();
        let Some((field_id, prompt)) = control_request(&event) else {
            continue;
        };
        prompts.push(prompt.clone());
        if let Some(value) = answer(&prompt) {
            let reply = format!("CTRL-RSP-{field_id}:{value}");
            monitor.send(reply.as_bytes()).expect("answer eapol_test");
        }
    }
    prompts
}

/// A control interface event that asks for a credential: the field and request id to answer
/// (`OTP-0`) and the prompt; `None` for other events.
/// `<3>CTRL-REQ-OTP-0:Password:  needed for SSID …` → (`OTP-0`, `Password: `).
pub fn control_request(event: &str) -> Option<(String, String)> {
    let request = event.split("CTRL-REQ-").nth(1)?;
    let (field_id, text) = request.split_once(':')?;
    let prompt = text
        .rsplit_once(" needed for SSID")
        .map_or(text, |(prompt, _)| prompt)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Some((field_id.to_string(), prompt))
}
