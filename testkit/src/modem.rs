//! A fake GSM modem on a pseudo-terminal: the test keeps the master side of
//! `serialport::TTYPort::pair()` and answers AT commands on it; the code under test opens the
//! slave's path as it would open `/dev/ttyACM1`.
//!
//! Like a real modem it echoes what it receives (ATE1 is the factory default), asks for the SIM
//! PIN when one is set, shows the `> ` prompt after `AT+CMGS`, and ends a message at Ctrl-Z. It
//! records every command and message. Dropping it stops its thread.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serialport::{SerialPort, TTYPort};

/// How the modem behaves.
#[derive(Clone, Debug)]
pub struct ModemBehaviour {
    /// A SIM PIN the modem asks for before it sends anything.
    pub pin: Option<String>,
    /// Answer every message with `+CMS ERROR: n`.
    pub cms_error: Option<u16>,
    /// Whether it answers at all.
    pub answers: bool,
}

impl Default for ModemBehaviour {
    fn default() -> Self {
        ModemBehaviour {
            pin: None,
            cms_error: None,
            answers: true,
        }
    }
}

/// What the modem received.
#[derive(Default, Debug, Clone)]
pub struct ModemRecord {
    /// Command lines, in order.
    pub commands: Vec<String>,
    /// Messages sent: (number, text).
    pub messages: Vec<(String, String)>,
    /// Commands it did not understand (a sign of interleaved sessions).
    pub unknown: usize,
}

/// A running fake modem.
pub struct FakeModem {
    /// The device path to configure (`/dev/pts/N`).
    pub path: PathBuf,
    record: Arc<Mutex<ModemRecord>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeModem {
    /// Starts a modem with the default behaviour.
    pub fn start() -> FakeModem {
        FakeModem::start_with(ModemBehaviour::default())
    }

    /// Starts a modem on a new pseudo-terminal.
    pub fn start_with(behaviour: ModemBehaviour) -> FakeModem {
        let (mut master, slave) = TTYPort::pair().expect("pseudo-terminal pair");
        let path = PathBuf::from(slave.name().expect("slave name"));
        // The slave is closed here and opened by the code under test for each message, as a
        // real device node would be.
        drop(slave);
        master
            .set_timeout(Duration::from_millis(20))
            .expect("timeout");
        let record = Arc::new(Mutex::new(ModemRecord::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let record = record.clone();
            let stop = stop.clone();
            std::thread::spawn(move || run(master, behaviour, record, stop))
        };
        FakeModem {
            path,
            record,
            stop,
            thread: Some(thread),
        }
    }

    /// What it received so far.
    pub fn record(&self) -> ModemRecord {
        self.record.lock().unwrap().clone()
    }
}

impl Drop for FakeModem {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one loop over the AT commands the modem answers, one arm each: a table, read top to bottom"
)]
fn run(
    mut port: TTYPort,
    behaviour: ModemBehaviour,
    record: Arc<Mutex<ModemRecord>>,
    stop: Arc<AtomicBool>,
) {
    let mut pending: Vec<u8> = vec![];
    let mut pin_entered = behaviour.pin.is_none();
    // Some(number) while the `> ` prompt is open.
    let mut composing: Option<String> = None;
    let mut reference = 0;
    let say = |port: &mut TTYPort, text: &str| {
        let _ = port.write_all(text.as_bytes());
        let _ = port.flush();
    };
    while !stop.load(Ordering::Relaxed) {
        let mut chunk = [0u8; 256];
        match port.read(&mut chunk) {
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            // No slave open right now (EIO): wait for the next session.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        if !behaviour.answers {
            pending.clear();
            continue;
        }
        loop {
            if let Some(number) = composing.clone() {
                if let Some(i) = pending.iter().position(|b| *b == 0x1b) {
                    pending.drain(..=i);
                    composing = None;
                    say(&mut port, "\r\nOK\r\n");
                    continue;
                }
                let Some(end) = pending.iter().position(|b| *b == 0x1a) else {
                    break;
                };
                let text: Vec<u8> = pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&text[..end]).into_owned();
                say(&mut port, &text); // echo
                composing = None;
                match behaviour.cms_error {
                    Some(code) => say(&mut port, &format!("\r\n+CMS ERROR: {code}\r\n")),
                    None => {
                        reference += 1;
                        record.lock().unwrap().messages.push((number, text));
                        say(&mut port, &format!("\r\n+CMGS: {reference}\r\n\r\nOK\r\n"));
                    }
                }
                continue;
            }
            let Some(end) = pending.iter().position(|b| *b == b'\r') else {
                break;
            };
            let line: Vec<u8> = pending.drain(..=end).collect();
            let command = String::from_utf8_lossy(&line[..end])
                .trim_matches(|c: char| c.is_whitespace() || c == '\x1b')
                .to_string();
            if command.is_empty() {
                continue;
            }
            say(&mut port, &format!("{command}\r")); // echo
            record.lock().unwrap().commands.push(command.clone());
            let answer = if command == "AT" || command == "AT+CMGF=1" {
                "\r\nOK\r\n".to_string()
            } else if command == "AT+CPIN?" {
                let state = if pin_entered { "READY" } else { "SIM PIN" };
                format!("\r\n+CPIN: {state}\r\n\r\nOK\r\n")
            } else if let Some(pin) = command
                .strip_prefix("AT+CPIN=\"")
                .and_then(|p| p.strip_suffix('"'))
            {
                if Some(pin) == behaviour.pin.as_deref() {
                    pin_entered = true;
                    "\r\nOK\r\n".to_string()
                } else {
                    "\r\n+CME ERROR: 16\r\n".to_string()
                }
            } else if command.starts_with("AT+CSCA=\"") {
                "\r\nOK\r\n".to_string()
            } else if let Some(number) = command
                .strip_prefix("AT+CMGS=\"")
                .and_then(|p| p.strip_suffix('"'))
            {
                if pin_entered {
                    composing = Some(number.to_string());
                    "\r\n> ".to_string()
                } else {
                    "\r\n+CMS ERROR: 311\r\n".to_string()
                }
            } else {
                record.lock().unwrap().unknown += 1;
                "\r\nERROR\r\n".to_string()
            };
            say(&mut port, &answer);
        }
    }
}
