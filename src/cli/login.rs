//! `tessera login`: a RADIUS client for admins that can answer a challenge, which `radtest`
//! cannot. Round 1 sends the password; an Access-Challenge shows its Reply-Message and asks
//! for the code, which goes back with the State; the outcome is printed with the reply
//! attributes by dictionary name (the built-in dictionary).
//!
//! Over UDP with a shared secret (`--secret-file`), or RadSec (`--tls`, secret `radsec`, with a
//! client certificate). Every request carries a Message-Authenticator, and a reply is accepted
//! only with a right Response Authenticator *and* Message-Authenticator.
//!
//! Exit codes: 0 Access-Accept, 1 Access-Reject, 2 no (valid) answer or could not run.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tessera::radius::codec::{AttributeType, Code, HEADER_LEN, MAX_PACKET_LEN, Packet};
use tessera::radius::crypto;
use tessera::radius::dictionary::Dictionary;
use tessera::secret::Secret;

use super::Failure;

/// `tessera login USER`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The user to log in.
    user: String,
    /// The server: HOST:PORT.
    #[arg(long)]
    server: String,
    /// A file holding the shared secret (UDP; first line).
    #[arg(long, required_unless_present = "tls")]
    secret_file: Option<PathBuf>,
    /// RadSec: RADIUS over TLS (RFC 6614), secret `radsec`.
    #[arg(long, requires_all = ["cert", "key", "ca"])]
    tls: bool,
    /// With --tls: insist on RADIUS/1.1 (RFC 9765, ALPN `radius/1.1`): a Token instead of
    /// Identifier and authenticators, the password in the clear inside TLS, no MD5.
    #[arg(long, requires = "tls")]
    radius11: bool,
    /// The client certificate (PEM) for --tls.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM) for --tls.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The CA certificate(s) (PEM) the server's certificate must chain to, for --tls.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Read the password from this file (first line) instead of asking.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Read the password, then the code, as lines from stdin without prompting (the default
    /// when stdin is not a terminal).
    #[arg(long)]
    password_stdin: bool,
    /// The answer to the challenge, instead of asking for it.
    #[arg(long)]
    code: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Runs the login.
pub fn run(args: LoginArgs) -> Result<(), Failure> {
    let secret = match (&args.secret_file, args.tls) {
        (_, true) => Secret::from("radsec"),
        (Some(path), false) => Secret::from(first_line(path)?),
        (None, false) => return Err(Failure::Error("--secret-file or --tls is needed".into())),
    };
    let mut input = Input::new(args.password_stdin);
    let password = match &args.password_file {
        Some(path) => first_line(path)?,
        None => input.ask("Password: ", false)?,
    };
    let dictionary = Dictionary::builtin()
        .map_err(|_| Failure::Error("the built-in dictionary does not load".into()))?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let mut link = Link::open(&args).await?;
        let timeout = Duration::from_secs(args.timeout.max(1));
        let mut state: Option<Vec<u8>> = None;
        let mut answer = password;
        // A server may challenge more than once; five rounds is more than any policy asks.
        for _ in 0..5 {
            let reply = exchange(
                &mut link,
                &args.user,
                &answer,
                state.as_deref(),
                &secret,
                timeout,
            )
            .await?;
            let messages: Vec<String> = reply
                .get_all(AttributeType::REPLY_MESSAGE)
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect();
            let message = messages.concat();
            let attributes: Vec<_> = reply
                .attributes
                .iter()
                .filter(|a| {
                    a.typ != AttributeType::MESSAGE_AUTHENTICATOR
                        && a.typ != AttributeType::REPLY_MESSAGE
                        && a.typ != AttributeType::STATE
                })
                .cloned()
                .collect();
            match reply.code {
                Code::ACCESS_CHALLENGE => {
                    out!("Access-Challenge: {message}");
                    state = Some(
                        reply
                            .get(AttributeType::STATE)
                            .ok_or_else(|| Failure::Error("the challenge has no State".into()))?
                            .to_vec(),
                    );
                    answer = match &args.code {
                        Some(code) => code.clone(),
                        None => input.ask("Code: ", true)?,
                    };
                }
                Code::ACCESS_ACCEPT => {
                    out!("Access-Accept: {message}");
                    for attribute in &attributes {
                        out!("  {}", dictionary.describe(attribute));
                    }
                    return Ok(());
                }
                Code::ACCESS_REJECT => {
                    out!("Access-Reject: {message}");
                    return Err(Failure::No("tessera: login rejected".into()));
                }
                other => {
                    return Err(Failure::Error(format!("unexpected reply {other}")));
                }
            }
        }
        Err(Failure::Error("still challenged after five rounds".into()))
    })
}

fn first_line(path: &std::path::Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Error(format!("{}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Answers from the terminal (prompted; the password without echo) or from stdin lines.
struct Input {
    prompt: bool,
    lines: std::io::Lines<std::io::StdinLock<'static>>,
}

impl Input {
    fn new(password_stdin: bool) -> Input {
        let stdin = std::io::stdin();
        Input {
            prompt: !password_stdin && stdin.is_terminal(),
            lines: stdin.lock().lines(),
        }
    }

    fn ask(&mut self, prompt: &str, echo: bool) -> Result<String, Failure> {
        // No echo through stty(1): tessera forbids `unsafe`, so no termios calls of its own.
        // Off before the prompt shows, so nothing typed after it can be echoed.
        let hide = self.prompt && !echo && stty("-echo");
        if self.prompt {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
        }
        let line = self.lines.next();
        if hide {
            stty("echo");
            eprintln!();
        }
        match line {
            Some(Ok(line)) => Ok(line.trim_end_matches('\r').to_string()),
            Some(Err(e)) => Err(Failure::Error(format!("cannot read stdin: {e}"))),
            None => Err(Failure::Error(format!(
                "stdin ended before the {}",
                prompt.trim_end_matches(": ").to_lowercase()
            ))),
        }
    }
}

fn stty(setting: &str) -> bool {
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

/// The way to the server.
enum Link {
    Udp(tokio::net::UdpSocket),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    /// RADIUS/1.1 over TLS.
    Radius11(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Link {
    async fn open(args: &LoginArgs) -> Result<Link, Failure> {
        let server: SocketAddr = tokio::net::lookup_host(&args.server)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Failure::Error(format!("{}: not a HOST:PORT", args.server)))?;
        if !args.tls {
            let local = if server.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let failed = |e: std::io::Error| Failure::Error(format!("{server}: {e}"));
            let socket = tokio::net::UdpSocket::bind(local).await.map_err(failed)?;
            socket.connect(server).await.map_err(failed)?;
            return Ok(Link::Udp(socket));
        }
        let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
            return Err(Failure::Error("--tls needs --cert, --key and --ca".into()));
        };
        let mut config = client_config(cert, key, ca)?;
        if args.radius11 {
            config.alpn_protocols = vec![tessera::radius::tls::ALPN_RADIUS_11.to_vec()];
        }
        let host = args
            .server
            .rsplit_once(':')
            .map_or(args.server.as_str(), |(h, _)| h)
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| Failure::Error(format!("{}: {e}", args.server)))?;
        let tcp = tokio::time::timeout(
            Duration::from_secs(args.timeout.max(1)),
            tokio::net::TcpStream::connect(server),
        )
        .await
        .map_err(|_| Failure::Error(format!("{server}: no connection")))?
        .map_err(|e| Failure::Error(format!("{server}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Error(format!("{server}: TLS: {e}")))?;
        if args.radius11 {
            let (_, session) = stream.get_ref();
            if session.alpn_protocol() != Some(tessera::radius::tls::ALPN_RADIUS_11) {
                return Err(Failure::Error(format!(
                    "{server}: the server did not agree to radius/1.1"
                )));
            }
            return Ok(Link::Radius11(Box::new(stream)));
        }
        Ok(Link::Tls(Box::new(stream)))
    }

    async fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send(packet).await.map(|_| ()),
            Link::Tls(stream) | Link::Radius11(stream) => {
                stream.write_all(packet).await?;
                stream.flush().await
            }
        }
    }

    async fn receive(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Link::Udp(socket) => {
                let mut buf = vec![0u8; MAX_PACKET_LEN];
                let n = socket.recv(&mut buf).await?;
                buf.truncate(n);
                Ok(buf)
            }
            Link::Tls(stream) | Link::Radius11(stream) => {
                let mut header = [0u8; 4];
                stream.read_exact(&mut header).await?;
                let [_, _, high, low] = header;
                let len = usize::from(u16::from_be_bytes([high, low]));
                if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
                    return Err(std::io::Error::other(format!("reply Length {len}")));
                }
                let mut packet = header.to_vec();
                packet.resize(len, 0);
                if let Some(rest) = packet.get_mut(4..) {
                    stream.read_exact(rest).await?;
                }
                Ok(packet)
            }
        }
    }
}

fn client_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
) -> Result<rustls::ClientConfig, Failure> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let chain = tessera::radius::tls::read_certificates(cert).map_err(Failure::Error)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Failure::Error(format!("{}: {e}", key.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in tessera::radius::tls::read_certificates(ca).map_err(Failure::Error)? {
        roots
            .add(certificate)
            .map_err(|e| Failure::Error(format!("{}: {e}", ca.display())))?;
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .and_then(|b| {
            b.with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
        })
        .map_err(|e| Failure::Error(format!("TLS client: {e}")))
}

/// Sends one Access-Request (retried over UDP) and returns the verified reply.
async fn exchange(
    link: &mut Link,
    user: &str,
    password: &str,
    state: Option<&[u8]>,
    secret: &Secret,
    timeout: Duration,
) -> Result<Packet, Failure> {
    let mut random = [0u8; 17];
    getrandom::fill(&mut random).map_err(|e| Failure::Error(e.to_string()))?;
    let [identifier, authenticator @ ..] = random;
    let radius11 = matches!(link, Link::Radius11(_));
    let mut request = Packet {
        code: Code::ACCESS_REQUEST,
        identifier,
        authenticator,
        attributes: vec![],
    };
    request.push_split(AttributeType::USER_NAME, user.as_bytes());
    if radius11 {
        // RFC 9765 §5.1.1: a plain string inside TLS.
        request.push_split(AttributeType::USER_PASSWORD, password.as_bytes());
    } else {
        request.push_split(
            AttributeType::USER_PASSWORD,
            &crypto::hide_password(password.as_bytes(), &authenticator, secret.expose()),
        );
    }
    request.push_split(AttributeType::NAS_IDENTIFIER, b"tessera-login");
    if let Some(state) = state {
        request.push_split(AttributeType::STATE, state);
    }
    let token = request.token();
    let bytes = if radius11 {
        request.encode_radius11(token)
    } else {
        request.encode_request(secret.expose(), true)
    }
    .map_err(|e| Failure::Error(e.to_string()))?;
    // UDP: three tries; TLS: one (TCP retransmits, RFC 6614 §2.5).
    let tries = if matches!(link, Link::Udp(_)) { 3 } else { 1 };
    for _ in 0..tries {
        link.send(&bytes)
            .await
            .map_err(|e| Failure::Error(format!("sending: {e}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = match tokio::time::timeout_at(deadline, link.receive()).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(Failure::Error(format!("receiving: {e}"))),
                Ok(Ok(received)) => received,
            };
            let Ok(reply) = Packet::decode(&received) else {
                continue;
            };
            if radius11 {
                // TLS authenticated the server; the Token pairs the reply with the request.
                if reply.token() != token {
                    continue;
                }
                return Ok(reply);
            }
            // Someone else's or a forged reply: ignored, as a NAS would.
            if reply.identifier != identifier
                || !reply.has_message_authenticator()
                || !crypto::verify_response(&received, &authenticator, secret.expose())
            {
                eprintln!("tessera: a reply failed verification (wrong secret?); ignored");
                continue;
            }
            return Ok(reply);
        }
    }
    Err(Failure::Error(format!(
        "no answer from the server within {} s",
        timeout.as_secs() * tries
    )))
}
