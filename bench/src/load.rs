//! The load generator's RADIUS side: a client per virtual user on its own UDP socket (a
//! socket has only 256 Identifiers, so many sockets are the only way to many outstanding
//! requests) or its own RadSec connection, retransmits after a timeout (UDP only: TCP does
//! that), and the runners that drive virtual users either as fast as they are answered (closed
//! loop) or at a fixed rate (paced).
//!
//! A client may also reach tessera's HTTP face instead (one kept-alive HTTP/1.1 connection to
//! `/validate/check` per virtual user, [`crate::http`]): the virtual users ask the same
//! question through [`Client::access_request`] whichever door they use, so a scenario runs
//! over RADIUS and over HTTP unchanged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::radius::codec::{Attribute, AttributeType, Code, HEADER_LEN, MAX_PACKET_LEN, Packet};
use tessera::radius::crypto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;

/// How the virtual users reach the server.
#[derive(Clone)]
pub enum Transport {
    /// RADIUS over UDP with the given shared secret.
    Udp(Arc<Vec<u8>>),
    /// RadSec: one TLS connection per virtual user, secret `radsec`.
    Tls(Arc<rustls::ClientConfig>),
    /// tessera's `/validate/check`: one kept-alive HTTP/1.1 connection per virtual user.
    Http,
}

/// A virtual user's way to the server.
enum Link {
    Udp(UdpSocket),
    Tls(Box<TlsStream<TcpStream>>),
    Http(Box<crate::http::Connection>),
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Access-Accept.
    Accept,
    /// Access-Reject.
    Reject,
    /// Access-Challenge.
    Challenge,
    /// No valid answer after all retransmits.
    Lost,
}

/// One measured request.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Which round of a login (1 or 2).
    pub round: u8,
    /// Microseconds from first send to answer.
    pub micros: u32,
    /// How it ended.
    pub answer: Answer,
    /// Answered after the run's time was up: counts for latency, not for throughput.
    pub late: bool,
}

/// A RADIUS client on its own socket (or an HTTP client on its own connection).
pub struct Client {
    link: Link,
    secret: Arc<Vec<u8>>,
    next_id: u8,
    timeout: Duration,
    retries: u32,
    /// Retransmissions sent.
    pub retransmits: u64,
}

impl Client {
    /// Binds a socket connected to `server`, or opens a RadSec (or HTTP) connection to it.
    pub async fn connect(server: SocketAddr, transport: &Transport) -> std::io::Result<Client> {
        let (link, secret) = match transport {
            Transport::Udp(secret) => {
                let socket = UdpSocket::bind("127.0.0.1:0").await?;
                socket.connect(server).await?;
                (Link::Udp(socket), secret.clone())
            }
            Transport::Tls(config) => {
                let tcp = TcpStream::connect(server).await?;
                tcp.set_nodelay(true)?;
                let name = rustls::pki_types::ServerName::IpAddress(server.ip().into());
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await?;
                (Link::Tls(Box::new(stream)), Arc::new(b"radsec".to_vec()))
            }
            Transport::Http => {
                let connection = crate::http::Connection::open(server).await?;
                (Link::Http(Box::new(connection)), Arc::new(vec![]))
            }
        };
        Ok(Client {
            link,
            secret,
            next_id: 0,
            timeout: Duration::from_secs(2),
            retries: 2,
            retransmits: 0,
        })
    }

    /// Sends an Access-Request (with Message-Authenticator) and waits for its answer; over
    /// HTTP, the same question as a `/validate/check` (`state` as its `transaction_id`).
    /// Returns the answer, what a second round sends back when the answer is a challenge (the
    /// State, or the `transaction_id`), and the latency.
    pub async fn access_request(
        &mut self,
        user: &str,
        password: &[u8],
        state: Option<&[u8]>,
    ) -> (Answer, Option<Vec<u8>>, Duration) {
        if let Link::Http(connection) = &mut self.link {
            return connection.check(user, password, state).await;
        }
        let mut packet = self.new_request(Code::ACCESS_REQUEST);
        packet.attributes.push(Attribute {
            typ: AttributeType::USER_NAME,
            value: user.as_bytes().to_vec(),
        });
        packet.attributes.push(Attribute {
            typ: AttributeType::USER_PASSWORD,
            value: crypto::hide_password(password, &packet.authenticator, &self.secret),
        });
        if let Some(state) = state {
            packet.attributes.push(Attribute {
                typ: AttributeType::STATE,
                value: state.to_vec(),
            });
        }
        let started = Instant::now();
        match self.exchange(packet).await {
            Some(reply) => {
                let answer = match reply.code {
                    Code::ACCESS_ACCEPT => Answer::Accept,
                    Code::ACCESS_CHALLENGE => Answer::Challenge,
                    _ => Answer::Reject,
                };
                let state = reply.get(AttributeType::STATE).map(<[u8]>::to_vec);
                (answer, state, started.elapsed())
            }
            None => (Answer::Lost, None, started.elapsed()),
        }
    }

    /// A new request of `code`: the next Identifier, a random authenticator, no attributes.
    pub fn new_request(&mut self, code: Code) -> Packet {
        let mut authenticator = [0u8; 16];
        let _ = getrandom::fill(&mut authenticator);
        let identifier = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Packet {
            code,
            identifier,
            authenticator,
            attributes: Vec::with_capacity(4),
        }
    }

    /// Sends `packet` (made by [`Client::new_request`]) with a Message-Authenticator,
    /// retransmitting over UDP, and returns the verified reply; `None` when none came.
    pub async fn exchange(&mut self, packet: Packet) -> Option<Packet> {
        let (identifier, authenticator) = (packet.identifier, packet.authenticator);
        let bytes = packet.encode_request(&self.secret, true).ok()?;
        let mut buf = [0u8; 4096];
        let retries = match self.link {
            Link::Udp(_) => self.retries,
            Link::Tls(_) | Link::Http(_) => 0,
        };
        for attempt in 0..=retries {
            if attempt > 0 {
                self.retransmits += 1;
            }
            if self.link.send(&bytes).await.is_err() {
                continue;
            }
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let Ok(Ok(n)) =
                    tokio::time::timeout_at(deadline, self.link.receive(&mut buf)).await
                else {
                    break;
                };
                let reply = buf.get(..n).unwrap_or_default();
                // Late answers to earlier requests have another Identifier: skip them.
                if reply.get(1) != Some(&identifier)
                    || !crypto::verify_response(reply, &authenticator, &self.secret)
                {
                    continue;
                }
                if let Ok(reply) = Packet::decode(reply) {
                    return Some(reply);
                }
            }
        }
        None
    }
}

impl Link {
    async fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send(packet).await.map(|_| ()),
            Link::Tls(stream) => stream.write_all(packet).await,
            Link::Http(_) => Err(std::io::Error::other("no RADIUS over HTTP")),
        }
    }

    /// One datagram, or one packet off the TLS stream (framed by its Length).
    async fn receive(&mut self, buf: &mut [u8; MAX_PACKET_LEN]) -> std::io::Result<usize> {
        match self {
            Link::Udp(socket) => socket.recv(buf).await,
            Link::Tls(stream) => {
                let (header, rest) = buf.split_at_mut(4);
                stream.read_exact(header).await?;
                let len = match header {
                    [_, _, high, low] => usize::from(u16::from_be_bytes([*high, *low])),
                    _ => 0,
                };
                let body = rest
                    .get_mut(..len.saturating_sub(4))
                    .filter(|_| (HEADER_LEN..=MAX_PACKET_LEN).contains(&len))
                    .ok_or_else(|| std::io::Error::other("bad Length"))?;
                stream.read_exact(body).await?;
                Ok(len)
            }
            Link::Http(_) => Err(std::io::Error::other("no RADIUS over HTTP")),
        }
    }
}

/// A virtual user: does one unit of work (one round, or a whole login) per call.
pub trait VirtualUser: Send + 'static {
    /// Does one unit of work, recording samples.
    fn step(
        &mut self,
        client: &mut Client,
        samples: &mut Vec<Sample>,
    ) -> impl std::future::Future<Output = ()> + Send;

    /// Whether this user has finished its work before the run's time is up.
    fn done(&self) -> bool {
        false
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Every sample.
    pub samples: Vec<Sample>,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Retransmissions.
    pub retransmits: u64,
    /// CPU time the server used during the run, when it could be read.
    pub server_cpu: Option<Duration>,
}

impl RunResult {
    /// A run of nothing, to absorb others into.
    pub fn empty() -> RunResult {
        RunResult {
            samples: vec![],
            elapsed: Duration::ZERO,
            retransmits: 0,
            server_cpu: Some(Duration::ZERO),
        }
    }

    /// Adds another run's samples and time to this one (runs measured in slices).
    pub fn absorb(&mut self, other: RunResult) {
        self.samples.extend(other.samples);
        self.elapsed += other.elapsed;
        self.retransmits += other.retransmits;
        self.server_cpu = self.server_cpu.zip(other.server_cpu).map(|(a, b)| a + b);
    }
}

/// Runs `users` for `duration` and hands them back (their state, e.g. HOTP counters, carries
/// over to the next run). With `rate` (requests per second over all users), each user paces
/// itself to its share; without, each goes as fast as it is answered (closed loop).
pub async fn run<V: VirtualUser>(
    server: SocketAddr,
    transport: &Transport,
    users: Vec<V>,
    duration: Duration,
    rate: Option<f64>,
) -> std::io::Result<(Vec<V>, RunResult)> {
    let count = users.len().max(1);
    let interval = rate.map(|r| Duration::from_secs_f64(count as f64 / r.max(1.0)));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    let first_send = tokio::time::Instant::now();
    for (index, mut user) in users.into_iter().enumerate() {
        let mut client = Client::connect(server, transport).await?;
        // Paced users start spread over one interval, so requests arrive evenly rather than
        // in a burst of `count` every interval (which measures the burst, not the rate).
        let offset = interval.map_or(Duration::ZERO, |i| i.mul_f64(index as f64 / count as f64));
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(4096);
            let mut next = first_send + offset;
            while Instant::now() < deadline && !user.done() {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next).await;
                    next += interval;
                }
                let before = samples.len();
                user.step(&mut client, &mut samples).await;
                if Instant::now() > deadline {
                    samples.iter_mut().skip(before).for_each(|s| s.late = true);
                }
            }
            (user, samples, client.retransmits)
        });
    }
    let mut result = RunResult::empty();
    let mut users = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        if let Ok((user, samples, retransmits)) = done {
            users.push(user);
            result.samples.extend(samples);
            result.retransmits += retransmits;
        }
    }
    // Throughput counts what was answered within the run's time, over that time: a virtual
    // user still waiting out a retransmission when time is up must not stretch the run.
    result.elapsed = started.elapsed().min(duration);
    Ok((users, result))
}

/// Latency percentiles of a set of samples, in milliseconds.
pub fn percentiles(samples: &[Sample], round: u8) -> (usize, f64, f64, f64) {
    let mut micros: Vec<u32> = samples
        .iter()
        .filter(|s| s.round == round && s.answer != Answer::Lost)
        .map(|s| s.micros)
        .collect();
    micros.sort_unstable();
    let at = |q: f64| {
        if micros.is_empty() {
            return 0.0;
        }
        let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        f64::from(micros.get(index).copied().unwrap_or(0)) / 1000.0
    };
    (micros.len(), at(0.50), at(0.99), at(0.999))
}
