//! Real delivery peers on loopback for the provider tests: an HTTP SMS gateway / proxy
//! (`scripts/http_gateway.py`), an SMTP server (`scripts/smtp_server.py`, aiosmtpd), and a TCP
//! server that accepts connections and never says a word.
//!
//! Each peer binds port 0 and reports its port; each one is its own process (or thread), killed
//! and waited for on drop, so tests run in parallel.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A peer process that prints `listening on PORT` and then one JSON line per thing it got.
pub struct Peer {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    records: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

impl Peer {
    fn spawn(script_name: &str, args: &[&str]) -> Peer {
        let mut child = Command::new("python3")
            .arg(script(script_name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().expect("stdout");
        let mut err_pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            err_sink.lock().unwrap().push_str(&text);
        });
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = tx.send(port.trim().parse::<u16>().unwrap_or(0));
                } else if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) if port > 0 => port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{script_name} did not start (run scripts/test.sh, which installs aiosmtpd):\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Peer {
            child,
            port,
            records,
            stderr,
        }
    }

    /// What the peer received so far.
    pub fn records(&self) -> Vec<Value> {
        self.records.lock().unwrap().clone()
    }

    /// Waits until the peer has received `n` things and returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "the peer received {} of {n}: {records:?}\nstderr: {}",
                records.len(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMS web gateway answering `status` with `body` (see `http_gateway.py` for `extra`).
pub fn http_gateway(status: u16, body: &str, extra: &[&str]) -> Peer {
    let status = status.to_string();
    let mut args = vec!["--status", &status, "--body", body];
    args.extend_from_slice(extra);
    Peer::spawn("http_gateway.py", &args)
}

/// An aiosmtpd server (see `smtp_server.py` for `args`).
pub fn smtp_server(args: &[&str]) -> Peer {
    Peer::spawn("smtp_server.py", args)
}

/// The last word of six digits in `text`: the OTP.
pub fn otp_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .rev()
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no OTP in {text:?}"))
        .to_string()
}

/// A TCP server that accepts connections and never sends a byte (an SMTP server that hangs
/// before its greeting, a web server that never answers).
pub struct Silent {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    /// Starts listening.
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = vec![];
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Silent {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
