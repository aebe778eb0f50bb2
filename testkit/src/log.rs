//! What a peer writes to a pipe, line by line: collected by a thread of its own so the peer
//! never blocks on a full pipe, and read by tests that wait for a line or count them.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lines a process wrote so far (cheap to clone; clones share the lines).
#[derive(Clone, Default)]
pub struct LogLines(Arc<Mutex<Vec<String>>>);

impl LogLines {
    /// Collects the lines of `pipe` until it closes, handing each to `on_line` first.
    pub fn collect(
        pipe: impl Read + Send + 'static,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> LogLines {
        let lines = LogLines::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                on_line(&line);
                sink.0.lock().unwrap().push(line);
            }
        });
        lines
    }

    /// Waits up to `timeout` for a line containing `needle` and returns it; panics naming
    /// `who` and showing everything logged otherwise.
    pub fn wait_for(&self, needle: &str, timeout: Duration, who: &str) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{who} logged no line containing {needle:?}; log:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits up to `timeout` until `needle` is in `n` lines and returns the count then (less
    /// than `n` when the time ran out): the lines arrive a little behind the peer's answers.
    pub fn count_reaching(&self, needle: &str, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.count(needle);
            if count >= n || Instant::now() > deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything so far, one line each.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}
