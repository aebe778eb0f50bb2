//! The real peers tessera talks to, for its end-to-end tests (`tests/e2e`) and its benchmark
//! (`bench/`): each one started on free loopback ports in a directory of its own, and killed
//! and waited for on drop, so tests run in parallel and nothing outlives them.
//!
//! | module | peer |
//! |--------|------|
//! | [`ports`] | free and closed loopback ports |
//! | [`log`] | a peer's output, collected line by line, waited for |
//! | [`radclient`] | FreeRADIUS's `radclient`, run once per request, its reply parsed |
//! | [`freeradius`] | FreeRADIUS as a legacy server (passthru) or as the benchmark's reference |
//! | [`slapd`] | OpenLDAP with the test people, or with the benchmark's users |
//! | [`postgres`] | a PostgreSQL cluster made with `initdb` |
//! | [`radsec`] | radsecproxy as a RadSec client, and a bare rustls RadSec client |
//! | [`ca`] | a CA with server and client certificates, made with the `openssl` CLI |
//! | [`eapol`] | wpa_supplicant's `eapol_test`: an 802.1X supplicant and NAS, its prompts answered |
//! | [`peers`] | an HTTP SMS gateway and an SMTP server (Python), a silent TCP server |
//! | [`smsc`] | an SMPP SMSC on rusmpp's codec |
//! | [`modem`] | a GSM modem on a pseudo-terminal |
//! | [`browser`] | headless Chromium through chromedriver (the page's tests) |
//! | [`nas`] | hostapd as a wired 802.1X NAS with wpa_supplicant, on a veth pair in a network namespace |
//!
//! The test-facing constructors panic with what to install when a peer cannot start (a test
//! set-up failure); the `try_` ones return the reason, for the benchmark to report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly by design"
)]

pub mod browser;
pub mod ca;
pub mod eapol;
pub mod freeradius;
pub mod log;
pub mod modem;
pub mod nas;
pub mod peers;
pub mod ports;
pub mod postgres;
pub mod radclient;
pub mod radsec;
pub mod slapd;
pub mod smsc;

/// Fails the test with what to install when `program` cannot be run (`probe` is an argument
/// that makes it print something and exit). Debian keeps some programs in /usr/sbin, off a
/// user's PATH.
pub fn require_program(program: &str, probe: &str, hint: &str) {
    let found = std::path::Path::new("/usr/sbin").join(program).exists()
        || std::process::Command::new(program)
            .arg(probe)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
    assert!(found, "{program} not found: {hint}");
}

/// Whether we run as root (PostgreSQL then runs as the `postgres` OS user).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
