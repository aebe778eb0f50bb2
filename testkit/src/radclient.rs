//! FreeRADIUS's `radclient` as the NAS of a test: one request per run (`-x -r 1 -t 5`), its
//! output parsed into a [`Reply`]. One try, so a count in the server's log is the requests sent;
//! 5 s, because a test expecting silence pays it once while a first login on a loaded CI machine
//! (argon2, enrolment, a PostgreSQL commit, debug build) has taken seconds.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// The shared secret of the test client entries.
pub const SECRET: &str = "testing123";

/// Fails the test with a clear message when radclient is missing.
pub fn require_radclient() {
    crate::require_program(
        "radclient",
        "-h",
        "run scripts/test.sh, which installs freeradius-utils",
    );
}

/// Sends one Access-Request as a modern NAS does (with a Message-Authenticator): `user`,
/// `password` and, for a second round, the `state` radclient printed (`0x…`).
pub fn auth(
    addr: SocketAddr,
    secret: &str,
    user: &str,
    password: &str,
    state: Option<&str>,
) -> Reply {
    let mut attrs = vec![
        ("User-Name", quote(user)),
        ("User-Password", quote(password)),
    ];
    if let Some(state) = state {
        attrs.push(("State", state.to_string()));
    }
    attrs.push(("Message-Authenticator", "0x00".into()));
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    radclient(addr, secret, &attrs)
}

/// A quoted radclient string value.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What radclient received.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `Access-Accept`, `Access-Challenge`, `Access-Reject`, or `none` when nothing came back.
    pub code: String,
    /// Attributes as radclient printed them, values unquoted.
    pub attrs: Vec<(String, String)>,
    /// radclient's whole output, for failure messages.
    pub output: String,
}

impl Reply {
    /// The first value of an attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of an attribute.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.attrs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The State, as radclient prints it (`0x…`), ready to send back.
    pub fn state(&self) -> String {
        self.get("State")
            .unwrap_or_else(|| panic!("no State in {}", self.output))
            .to_string()
    }

    /// Asserts the code, showing radclient's output otherwise.
    #[track_caller]
    pub fn expect(&self, code: &str) -> &Self {
        assert_eq!(self.code, code, "radclient output:\n{}", self.output);
        self
    }
}

/// Runs `radclient -x` once against `addr` and parses the reply.
pub fn radclient(addr: SocketAddr, secret: &str, attrs: &[(&str, &str)]) -> Reply {
    radclient_command(addr, secret, "auth", attrs)
}

/// Runs `radclient -x` once with a packet type (`auth`, `status`) and parses the reply.
pub fn radclient_command(
    addr: SocketAddr,
    secret: &str,
    packet_type: &str,
    attrs: &[(&str, &str)],
) -> Reply {
    require_radclient();
    let target = match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "5"])
        .arg(&target)
        .arg(packet_type)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run radclient");
    let input: String = attrs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write radclient stdin");
    let out = child.wait_with_output().expect("radclient output");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_radclient(&output)
}

fn parse_radclient(output: &str) -> Reply {
    let mut code = "none".to_string();
    let mut attrs = vec![];
    let mut in_reply = false;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("Received ") {
            code = rest.split_whitespace().next().unwrap_or("").to_string();
            in_reply = true;
            attrs.clear();
        } else if in_reply && (line.starts_with('\t') || line.starts_with("  ")) {
            if let Some((k, v)) = line.trim().split_once(" = ") {
                attrs.push((k.to_string(), v.trim_matches('"').to_string()));
            }
        } else {
            in_reply = false;
        }
    }
    Reply {
        code,
        attrs,
        output: output.to_string(),
    }
}
