//! The benchmark over tessera's HTTP face (issue 24): `hotp-one-round-http` and
//! `challenge-flow-http` are `hotp-one-round` and `challenge-flow` with the same virtual users,
//! tokens, directory and SMS gateway, asking LinOTP's and privacyIDEA's `/validate/check`
//! instead of sending Access-Requests; and [`Connection`], the client they ask it with.
//!
//! Each virtual user owns one kept-alive HTTP/1.1 connection, opened before the measured time
//! (as a RADIUS virtual user owns its socket), and sends one form-encoded POST at a time on it:
//! `user` and `pass` (the HOTP code alone under `otppin=2`, as over RADIUS; the password, then
//! the code with `transaction_id`, in the challenge flow). An answer counts as an accept only
//! when it is HTTP 200 with `result.status` and `result.value` true and `result.authentication`
//! `ACCEPT`; as a challenge only with `CHALLENGE` and a `detail.transaction_id`, which the
//! second round sends back; as a reject when it is the documented reject or any other status
//! than 200 (the first such is printed). A connection that fails, an answer that does not come
//! within [`TIMEOUT`] or is not one of those documents is lost; the connection is then reopened
//! for the next request.
//!
//! Why hyper's own client connection (`hyper::client::conn::http1`, on tokio through
//! hyper-util's `TokioIo`) rather than reqwest or hyper-util's pooled client: a load generator
//! must know what goes over the wire. With one connection in the virtual user's hands, no pool
//! opens connections behind the measurement's back or counts a handshake into a request's
//! latency, and there is no redirect, proxy or decompression layer doing work a server's
//! figures should not include. It is the same hyper that tessera's listener and reqwest run
//! on, so nothing new is compiled.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::{Answer, Transport};
use crate::scenarios::{self, Knobs, Row};

/// How long a request may take in all: as long as the RADIUS client waits (2 s, three sends).
pub const TIMEOUT: Duration = Duration::from_secs(6);

/// Connections reopened after a failure, over the whole process.
static REOPENED: AtomicU64 = AtomicU64::new(0);

/// Whether an answer other than HTTP 200 has been printed yet (once is enough to see why).
static REFUSAL_SHOWN: AtomicBool = AtomicBool::new(false);

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One virtual user's connection to `/validate/check`.
pub struct Connection {
    server: SocketAddr,
    /// `None` after a failure: the next request opens a new connection.
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// Opens a TCP connection to `server` and shakes HTTP/1.1 hands on it; the connection's own
/// task ends when its [`SendRequest`] is dropped.
async fn open_sender(server: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let tcp = TcpStream::connect(server).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        // Ends with an error when the server closes first; the next request sees that.
        let _ = connection.await;
    });
    Ok(sender)
}

impl Connection {
    /// Opens the connection.
    pub async fn open(server: SocketAddr) -> std::io::Result<Connection> {
        let sender = open_sender(server).await.map_err(std::io::Error::other)?;
        Ok(Connection {
            server,
            sender: Some(sender),
        })
    }

    /// One `/validate/check`: `user` and `password`, with `transaction` as `transaction_id`
    /// for a second round. Returns the answer, the transaction id of a challenge, and the
    /// latency (from before the request is written until its body is read).
    pub async fn check(
        &mut self,
        user: &str,
        password: &[u8],
        transaction: Option<&[u8]>,
    ) -> (Answer, Option<Vec<u8>>, Duration) {
        let body = form(user, password, transaction);
        let started = Instant::now();
        let (answer, transaction) = match tokio::time::timeout(TIMEOUT, self.post(body)).await {
            Ok(Ok((status, body))) => read_answer(status, &body),
            Ok(Err(_)) | Err(_) => {
                self.sender = None;
                (Answer::Lost, None)
            }
        };
        (answer, transaction, started.elapsed())
    }

    /// POSTs `body` and reads the whole answer; reopens the connection first when it failed
    /// or the server closed it.
    async fn post(&mut self, body: String) -> Result<(StatusCode, Bytes), Failure> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            REOPENED.fetch_add(1, Ordering::Relaxed);
            self.sender = Some(open_sender(self.server).await?);
        }
        let sender = self.sender.as_mut().ok_or("no connection")?;
        sender.ready().await?;
        let request = Request::post("/validate/check")
            .header(header::HOST, self.server.to_string())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// The form-encoded body of a `/validate/check`.
fn form(user: &str, password: &[u8], transaction: Option<&[u8]>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("user", user)
        .append_pair("pass", &String::from_utf8_lossy(password));
    if let Some(id) = transaction {
        form.append_pair("transaction_id", &String::from_utf8_lossy(id));
    }
    form.finish()
}

/// What an answer of `/validate/check` says (see the module comment), and a challenge's
/// `detail.transaction_id`.
fn read_answer(status: StatusCode, body: &[u8]) -> (Answer, Option<Vec<u8>>) {
    if status != StatusCode::OK {
        if !REFUSAL_SHOWN.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tessera-bench: /validate/check answered {status}: {} (counted as a reject)",
                String::from_utf8_lossy(body)
            );
        }
        return (Answer::Reject, None);
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (Answer::Lost, None);
    };
    let result = json.get("result");
    let field = |name: &str| result.and_then(|r| r.get(name));
    let status = field("status").and_then(serde_json::Value::as_bool);
    let value = field("value").and_then(serde_json::Value::as_bool);
    let authentication = field("authentication").and_then(serde_json::Value::as_str);
    let transaction = json
        .get("detail")
        .and_then(|d| d.get("transaction_id"))
        .and_then(serde_json::Value::as_str)
        .filter(|id| !id.is_empty());
    match (status, value, authentication, transaction) {
        (Some(true), Some(true), Some("ACCEPT"), _) => (Answer::Accept, None),
        (Some(true), Some(false), Some("CHALLENGE"), Some(id)) => {
            (Answer::Challenge, Some(id.as_bytes().to_vec()))
        }
        (Some(true), Some(false), Some("REJECT"), _) => (Answer::Reject, None),
        _ => (Answer::Lost, None),
    }
}

/// The `[http]` section of the HTTP scenarios: a listener on a free loopback port (the default
/// `allow` is loopback), with room for every virtual user's connection from 127.0.0.1, and for
/// the next run's while the last run's close.
fn http_section(knobs: &Knobs) -> String {
    let room = knobs.concurrency * 2 + 16;
    format!(
        "\n[http]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = {room}\n\
         max_connections_per_source = {room}\n"
    )
}

/// Prints how many connections were reopened after a failure during `scenario`, if any.
fn report_reopened(scenario: &str, before: u64) {
    let reopened = REOPENED.load(Ordering::Relaxed).saturating_sub(before);
    if reopened > 0 {
        eprintln!(
            "tessera-bench: {scenario}: {reopened} HTTP connections reopened after a failure"
        );
    }
}

/// `hotp-one-round-http`: `hotp-one-round`'s tokens (HOTP, `otppin=2`) and virtual users, the
/// code in `pass`, at full speed and then paced at half of it.
pub async fn hotp_one_round_http(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let before = REOPENED.load(Ordering::Relaxed);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let more = http_section(knobs);
    let peer =
        scenarios::tessera_with_hotp_tokens_in(knobs, knobs.users, dir, false, &more).await?;
    let addr = peer.http_addr.ok_or("tessera serves no HTTP")?;
    let users = scenarios::hotp_users(knobs.users, knobs.concurrency);
    let (users, full) =
        scenarios::measure_over(knobs, &peer, addr, &Transport::Http, users, None).await?;
    let half = scenarios::accepts(&full) as f64 / full.elapsed.as_secs_f64() / 2.0;
    let (_, paced) =
        scenarios::measure_over(knobs, &peer, addr, &Transport::Http, users, Some(half)).await?;
    report_reopened("hotp-one-round-http", before);
    Ok(vec![
        scenarios::row(
            "hotp-one-round-http",
            knobs.users,
            format!("{} VUs", knobs.concurrency),
            &full,
            scenarios::accepts(&full),
            &peer,
        ),
        scenarios::row(
            "hotp-one-round-http@50%",
            knobs.users,
            format!("{half:.0}/s"),
            &paced,
            scenarios::accepts(&paced),
            &peer,
        ),
    ])
}

/// `challenge-flow-http`: `challenge-flow`'s directory, SMS token and gateway, over HTTP: the
/// password, a challenge with its `transaction_id`, the code the gateway received with it.
/// The same rows: first logins, full speed, half of it.
pub async fn challenge_flow_http(knobs: &Knobs) -> Result<Vec<Row>, String> {
    let before = REOPENED.load(Ordering::Relaxed);
    let (bed, vus) =
        crate::challenge::challenge_bed(knobs, false, false, &http_section(knobs)).await?;
    let addr = bed.peer.http_addr.ok_or("tessera serves no HTTP")?;
    let name = "challenge-flow-http";
    let rows =
        crate::challenge::challenge_rows(knobs, &bed.peer, addr, &Transport::Http, vus, name, true)
            .await;
    report_reopened(name, before);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: u16, body: &str) -> (Answer, Option<Vec<u8>>) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        read_answer(status, body.as_bytes())
    }

    #[test]
    fn answers_as_documented_in_docs_http_md() {
        let accept = r#"{"jsonrpc":"2.0","id":1,"version":"tessera 0.1.0",
            "result":{"status":true,"value":true,"authentication":"ACCEPT"}}"#;
        assert_eq!(read(200, accept), (Answer::Accept, None));
        let challenge = r#"{"jsonrpc":"2.0","id":1,"version":"tessera 0.1.0",
            "result":{"status":true,"value":false,"authentication":"CHALLENGE"},
            "detail":{"message":"sms submitted","transaction_id":"6566","transactionid":"6566",
            "state":"6566","multi_challenge":[]}}"#;
        assert_eq!(
            read(200, challenge),
            (Answer::Challenge, Some(b"6566".to_vec()))
        );
        let reject = r#"{"jsonrpc":"2.0","id":1,"version":"tessera 0.1.0",
            "result":{"status":true,"value":false,"authentication":"REJECT"},
            "detail":{"message":"Authentication failed"}}"#;
        assert_eq!(read(200, reject), (Answer::Reject, None));
    }

    #[test]
    fn anything_else_is_no_accept() {
        // A refusal is an answer: a reject.
        let error = r#"{"result":{"status":false,"error":{"code":905,"message":"missing"}}}"#;
        assert_eq!(read(400, error), (Answer::Reject, None));
        assert_eq!(read(403, error), (Answer::Reject, None));
        // Not the document, or its verdicts disagreeing: not a valid answer.
        assert_eq!(read(200, "<html>"), (Answer::Lost, None));
        assert_eq!(read(200, error), (Answer::Lost, None));
        let split = r#"{"result":{"status":true,"value":false,"authentication":"ACCEPT"}}"#;
        assert_eq!(read(200, split), (Answer::Lost, None));
        let no_id = r#"{"result":{"status":true,"value":false,"authentication":"CHALLENGE"}}"#;
        assert_eq!(read(200, no_id), (Answer::Lost, None));
    }
}
