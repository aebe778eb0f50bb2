//! The benchmark's SMS gateway: tessera's HttpSMSProvider posts each OTP here, and the virtual
//! user waiting for that phone number gets the code — so a two-round login is measured end to
//! end, with real HTTP delivery. Phones starting with `+1` belong to a "slow" gateway that
//! answers after a delay (the slow-gateway scenario).
//!
//! A small HTTP/1.1 server on a tokio listener: keep-alive, `Content-Length` bodies, a
//! form-encoded `phone` and `sms`. Enough for reqwest; not a general server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Who waits for which phone's next code.
#[derive(Clone, Default)]
pub struct Waiters(Arc<Mutex<HashMap<String, oneshot::Sender<String>>>>);

impl Waiters {
    /// Registers interest in the next code sent to `phone`.
    pub fn expect(&self, phone: &str) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.0.lock() {
            map.insert(phone.to_string(), tx);
        }
        rx
    }

    fn deliver(&self, phone: &str, code: String) {
        let waiter = self.0.lock().ok().and_then(|mut map| map.remove(phone));
        if let Some(tx) = waiter {
            let _ = tx.send(code);
        }
    }
}

/// Starts the gateway; `slow` is the delay for `+1…` phones.
pub async fn start(waiters: Waiters, slow: Duration) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, waiters.clone(), slow));
        }
    });
    Ok(addr)
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(mut stream: TcpStream, waiters: Waiters, slow: Duration) {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        // Read until a whole request (head + Content-Length body) is buffered.
        let (head_end, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(buf.get(..end).unwrap_or_default())
                    .to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    break (end + 4, length);
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        };
        let body =
            String::from_utf8_lossy(buf.get(head_end..head_end + length).unwrap_or_default())
                .into_owned();
        buf.drain(..head_end + length);
        let mut phone = String::new();
        let mut text = String::new();
        for pair in body.split('&') {
            match pair.split_once('=') {
                Some(("phone", v)) => phone = url_decode(v),
                Some(("sms", v)) => text = url_decode(v),
                _ => {}
            }
        }
        if phone.starts_with("+1") {
            tokio::time::sleep(slow).await;
        }
        let code: String = text
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|w| w.len() == 6)
            .unwrap_or("")
            .into();
        waiters.deliver(&phone, code);
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
            .await
            .is_err()
        {
            return;
        }
    }
}
