//! The server: one UDP receive loop per listen address, one RadSec accept loop per TLS
//! address (`radsec.rs`), one task per request; both transports share the reply path below.
//!
//! The receive loop does only cheap work — find the client, decode, consult the reply cache —
//! and spawns the rest, so a slow SMS gateway or directory delays only the requests waiting on
//! it. A semaphore caps the requests in flight. On shutdown the loops stop receiving and the
//! requests in flight get a bounded time to finish, so counters they are committing land.
//! Each request is served by one configuration [`Snapshot`], read once when it arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::clients::{Client, ClientTable};
use super::codec::{Code, Packet};
use super::counters::{Counters, DropCause};
use super::dictionary::Dictionary;
use super::handler;
use super::radsec;
use super::reply_cache::{Lookup, Pending, ReplyCache, RequestKey};
use super::tls::TlsServer;
use super::verify;
use crate::auth::Authenticate;
use crate::live::Live;
use crate::metrics::{self, Health};

/// `[server]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Addresses to listen on, e.g. `["0.0.0.0:1812", "[::]:1812"]`.
    pub listen: Vec<toml::Spanned<String>>,
    /// Seconds a reply stays cached for retransmits (RFC 5080).
    pub reply_cache_seconds: u64,
    /// Most replies cached.
    pub reply_cache_size: usize,
    /// Most requests processed at once; more are dropped (the client retransmits).
    pub max_in_flight: usize,
    /// Seconds requests in flight get to finish on shutdown.
    pub shutdown_grace_seconds: u64,
    /// The top RADIUS dictionary file (FreeRADIUS format), relative to the config file.
    /// Absent: the copy of `dictionaries/` built into the binary.
    pub dictionary: Option<std::path::PathBuf>,
    /// RadSec (RADIUS over TLS, RFC 6614) listen addresses, e.g. `["0.0.0.0:2083"]`.
    pub tls_listen: Vec<toml::Spanned<String>>,
    /// The server certificate chain (PEM), leaf first.
    pub tls_certificate: Option<toml::Spanned<std::path::PathBuf>>,
    /// The server certificate's private key (PEM).
    pub tls_key: Option<toml::Spanned<std::path::PathBuf>>,
    /// The CA certificate(s) (PEM) client certificates must chain to.
    pub tls_client_ca: Option<toml::Spanned<std::path::PathBuf>>,
    /// Seconds a RadSec connection may stay silent before it is closed.
    pub tls_idle_timeout_seconds: u64,
    /// Most RadSec connections open at once; when reached, the oldest one still in its
    /// handshake is closed to make room, and without one the new one is closed on accept.
    pub tls_max_connections: usize,
    /// Most RadSec connections open at once from one address; more are closed on accept.
    pub tls_max_connections_per_source: toml::Spanned<usize>,
    /// Seconds a RadSec client has to finish the TLS handshake (an idle socket included).
    pub tls_handshake_timeout_seconds: toml::Spanned<u64>,
    /// Descriptors listeners leave free for the store, the directory and the providers: a
    /// connection is kept only while fewer than the limit (`RLIMIT_NOFILE`) minus this are
    /// open (at most half the limit is kept back).
    pub descriptor_reserve: usize,
    /// Most requests in flight on one RadSec connection; beyond it the connection is not read
    /// until one finishes (TCP pushes back on the client).
    pub tls_max_in_flight_per_connection: usize,
    /// Threads that run requests (the store's writer and password hashing have their own).
    /// Absent: [`ServerSettings::worker_threads`] decides.
    pub worker_threads: Option<toml::Spanned<usize>>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: vec![toml::Spanned::new(0..0, "127.0.0.1:1812".to_string())],
            reply_cache_seconds: 30,
            reply_cache_size: 65_536,
            max_in_flight: 4096,
            shutdown_grace_seconds: 5,
            dictionary: None,
            tls_listen: vec![],
            tls_certificate: None,
            tls_key: None,
            tls_client_ca: None,
            tls_idle_timeout_seconds: 300,
            tls_max_connections: 1024,
            tls_max_connections_per_source: toml::Spanned::new(0..0, 16),
            tls_handshake_timeout_seconds: toml::Spanned::new(0..0, 5),
            descriptor_reserve: 128,
            tls_max_in_flight_per_connection: 64,
            worker_threads: None,
        }
    }
}

impl ServerSettings {
    /// The request threads: as configured, else half the CPUs (at least one). The other half
    /// is left to the store's writer, the database and the kernel's network and disk work: on
    /// two cores, a second request thread measured 15–20% more CPU per request at low load
    /// (each arrival and each store answer woke both threads) and no more throughput.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.as_ref().map_or_else(
            || {
                std::thread::available_parallelism()
                    .map_or(1, std::num::NonZeroUsize::get)
                    .div_ceil(2)
                    .max(1)
            },
            |n| *n.get_ref(),
        )
    }
}

/// What one configuration serves requests with. A reload replaces the whole snapshot at once,
/// and each request reads it once, when it arrives, and uses that one to the end: it can never
/// be checked against one client table, decided by another configuration's engine and encoded
/// with a third one's dictionary.
pub struct Snapshot<A> {
    /// Who may talk to us, with which secret.
    pub clients: ClientTable,
    /// The engine.
    pub auth: A,
    /// Attribute names for logs and reply attributes.
    pub dictionary: Arc<Dictionary>,
    /// Legacy RADIUS servers for passthru.
    pub upstreams: Arc<super::upstream::Upstreams>,
    /// RadSec's server certificate and client check (none when RadSec is off).
    pub tls: Option<Arc<TlsServer>>,
}

/// The transport a request came over, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RADIUS over UDP (RFC 2865).
    Udp,
    /// RadSec: RADIUS over TLS (RFC 6614).
    Tls,
    /// RADIUS/1.1 over TLS (RFC 9765), negotiated by ALPN on the RadSec listener.
    Radius11,
}

impl Transport {
    /// A stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tls => "tls",
            Transport::Radius11 => "radius/1.1",
        }
    }
}

/// How a request's client is found again in its snapshot.
#[derive(Clone)]
pub(super) enum ClientKey {
    /// By source address (UDP).
    Address(std::net::IpAddr),
    /// By certificate: its DER bytes and subject alternative names (RadSec).
    Certificate(Arc<(Vec<u8>, Vec<String>)>),
}

impl ClientKey {
    pub(super) fn find<'a>(&self, clients: &'a ClientTable) -> Option<&'a Client> {
        match self {
            ClientKey::Address(ip) => clients.find(*ip),
            ClientKey::Certificate(cert) => clients.find_tls(&cert.0, &cert.1),
        }
    }
}

/// Where a reply goes.
pub(super) enum ReplyTo {
    /// Back to the datagram's source.
    Udp(Arc<UdpSocket>),
    /// To the connection's writer.
    Tls(tokio::sync::mpsc::Sender<Vec<u8>>),
}

/// What the server answers with.
pub struct Context<A> {
    /// The current configuration; replaced on reload.
    pub config: Arc<Live<Snapshot<A>>>,
    /// Whether the store and directories answer (Status-Server follows it).
    pub health: Arc<Health>,
    /// What was received and dropped.
    pub counters: Arc<Counters>,
}

/// Everything the loops share.
pub(super) struct Shared<A> {
    pub(super) config: Arc<Live<Snapshot<A>>>,
    pub(super) health: Arc<Health>,
    pub(super) cache: Arc<ReplyCache>,
    pub(super) counters: Arc<Counters>,
    pub(super) in_flight: Arc<Semaphore>,
}

/// Serves RADIUS on the given UDP sockets and RadSec listeners until `shutdown` is cancelled.
pub async fn run<A: Authenticate>(
    sockets: Vec<UdpSocket>,
    tls_listeners: Vec<TcpListener>,
    context: Context<A>,
    settings: &ServerSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let Context {
        config,
        health,
        counters,
    } = context;
    let cache = Arc::new(ReplyCache::new(
        Duration::from_secs(settings.reply_cache_seconds),
        settings.reply_cache_size,
    ));
    let watched = Arc::downgrade(&cache);
    metrics::register_gauge("tessera_reply_cache_entries", move || {
        watched.upgrade().map_or(0, |c| c.order_len())
    });
    let shared = Arc::new(Shared {
        config,
        health,
        cache,
        counters,
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
    });
    let mut loops = JoinSet::new();
    for socket in sockets {
        loops.spawn(receive_loop(
            Arc::new(socket),
            shared.clone(),
            shutdown.clone(),
        ));
    }
    let limits = radsec::Limits::from_settings(settings);
    // One admission for every RadSec listener: the bounds are the server's, not each address's.
    let admission = crate::admission::Admission::new("radsec", limits.admission);
    for listener in tls_listeners {
        loops.spawn(radsec::accept_loop(
            listener,
            shared.clone(),
            limits,
            admission.clone(),
            shutdown.clone(),
        ));
    }
    let mut result = Ok(());
    while let Some(done) = loops.join_next().await {
        if let Ok(Err(e)) = done {
            // A fatal socket error ends the server; the others stop with it.
            shutdown.cancel();
            result = Err(e);
        }
    }
    // Every loop has stopped receiving. Let requests in flight finish, within the grace time.
    let grace = Duration::from_secs(settings.shutdown_grace_seconds);
    let permits = u32::try_from(settings.max_in_flight.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, shared.in_flight.acquire_many(permits))
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace time");
    }
    result
}

async fn receive_loop<A: Authenticate>(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared<A>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    let mut tasks = JoinSet::new();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = socket.recv_from(&mut buf) => received,
            // Reap finished tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (len, source) = match received {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems: not fatal.
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "transient receive error");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "receive failed, stopping this listener");
                return Err(e);
            }
        };
        shared
            .counters
            .received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let datagram = buf.get(..len).unwrap_or_default();
        if let Some(job) = admit(&shared, &socket, datagram, source) {
            let reply_to = ReplyTo::Udp(socket.clone());
            let shared = shared.clone();
            tasks.spawn(async move { process(reply_to, shared, job).await });
        }
    }
    // Dropping the set would abort requests in flight; let them finish (`run` waits).
    tasks.detach_all();
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | Interrupted | WouldBlock | TimedOut
    )
}

/// A request that passed the cheap checks, with its permit and its configuration.
pub(super) struct Job<A> {
    pub(super) snapshot: Arc<Snapshot<A>>,
    pub(super) client: ClientKey,
    pub(super) transport: Transport,
    pub(super) source: SocketAddr,
    pub(super) packet: Packet,
    pub(super) datagram: Vec<u8>,
    /// The reply cache entry (none for RADIUS/1.1: RFC 9765 §4.2.2, no deduplication over
    /// TLS).
    pub(super) pending: Option<Pending>,
    pub(super) permit: tokio::sync::OwnedSemaphorePermit,
    /// RadSec: the connection's own in-flight permit.
    pub(super) connection_permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

pub(super) fn log_drop<A>(
    shared: &Shared<A>,
    transport: Transport,
    cause: DropCause,
    source: SocketAddr,
    detail: &str,
) {
    metrics::inc("tessera_radius_drops_total", &[("cause", cause.as_str())]);
    if shared.counters.record_drop(cause, source.ip()) {
        tracing::warn!(%source, transport = transport.as_str(), cause = cause.as_str(), detail, "request dropped (logged once a minute per client and cause)");
    }
}

/// Whether the request is new. A retransmit of one in flight is dropped; of one answered, the
/// same reply goes out again through `resend`, byte for byte, without touching the engine.
pub(super) fn is_new_request<A>(
    shared: &Shared<A>,
    transport: Transport,
    key: RequestKey,
    resend: impl FnOnce(&[u8]),
) -> bool {
    match shared.cache.begin(key) {
        Lookup::New => true,
        Lookup::InFlight => {
            log_drop(
                shared,
                transport,
                DropCause::DuplicateInFlight,
                key.source,
                "retransmit while the first copy is processed",
            );
            false
        }
        Lookup::Answered(reply) => {
            shared
                .counters
                .resent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            resend(&reply[..]);
            false
        }
    }
}

/// The receive loop's share of the work: client, decode, code, duplicates, capacity.
fn admit<A: Authenticate>(
    shared: &Arc<Shared<A>>,
    socket: &UdpSocket,
    datagram: &[u8],
    source: SocketAddr,
) -> Option<Job<A>> {
    // The one read of the configuration for this request.
    let snapshot = shared.config.get();
    let udp = Transport::Udp;
    let Some(client) = snapshot.clients.find(source.ip()) else {
        log_drop(
            shared,
            udp,
            DropCause::UnknownClient,
            source,
            "no client entry for this address",
        );
        return None;
    };
    if client.tls_only {
        log_drop(
            shared,
            udp,
            DropCause::TlsOnly,
            source,
            &format!("client {} is tls_only", client.name),
        );
        return None;
    }
    let packet = match Packet::decode(datagram) {
        Ok(p) => p,
        Err(e) => {
            log_drop(shared, udp, DropCause::Malformed, source, &e.to_string());
            return None;
        }
    };
    if packet.code != Code::ACCESS_REQUEST && packet.code != Code::STATUS_SERVER {
        log_drop(
            shared,
            udp,
            DropCause::UnsupportedCode,
            source,
            &format!("{:?}", packet.code),
        );
        return None;
    }
    count_request(&packet, client, udp);
    let key = RequestKey {
        source,
        identifier: packet.identifier,
        authenticator: packet.authenticator,
    };
    // A UDP send that would block is dropped: the client retransmits.
    let resend = |reply: &[u8]| {
        if let Err(e) = socket.try_send_to(reply, source) {
            tracing::debug!(%source, error = %e, "re-sending a cached reply failed");
        }
    };
    if !is_new_request(shared, udp, key, resend) {
        return None;
    }
    // From here on every way out ends the entry (dropping `pending` aborts it).
    let pending = Pending::new(shared.cache.clone(), key);
    let Ok(permit) = shared.in_flight.clone().try_acquire_owned() else {
        drop(pending);
        log_drop(
            shared,
            udp,
            DropCause::Overloaded,
            source,
            "too many requests in flight",
        );
        return None;
    };
    Some(Job {
        snapshot,
        client: ClientKey::Address(source.ip()),
        transport: udp,
        source,
        packet,
        datagram: datagram.to_vec(),
        pending: Some(pending),
        permit,
        connection_permit: None,
    })
}

/// `tessera_radius_requests_total` for a decoded request.
pub(super) fn count_request(packet: &Packet, client: &Client, transport: Transport) {
    metrics::inc(
        "tessera_radius_requests_total",
        &[
            ("code", &packet.code.to_string()),
            ("client", &client.name),
            ("transport", transport.as_str()),
        ],
    );
}

/// A request's life after admission, the same for both transports: verify, answer (the
/// engine, or Status-Server here), cache the reply, send it.
pub(super) async fn process<A: Authenticate>(
    reply_to: ReplyTo,
    shared: Arc<Shared<A>>,
    job: Job<A>,
) {
    let Job {
        snapshot,
        client,
        transport,
        source,
        packet,
        datagram,
        pending,
        permit,
        connection_permit,
    } = job;
    let Some(client) = client.find(&snapshot.clients) else {
        return;
    };
    let checked = match transport {
        Transport::Radius11 => Ok(verify::verify_radius11(packet)),
        Transport::Udp | Transport::Tls => verify::verify(packet, &datagram, client),
    };
    let verified = match checked {
        Ok(v) => v,
        Err(cause) => {
            drop(pending);
            log_drop(&shared, transport, cause, source, &client.name);
            return;
        }
    };
    // RFC 5997: a server that cannot serve requests stays silent to Status-Server, so the
    // NAS fails over to another one.
    if verified.packet().code == Code::STATUS_SERVER && !shared.health.is_up() {
        tracing::debug!(%source, "Status-Server unanswered: health check failing");
        return;
    }
    match handler::handle(
        &snapshot.auth,
        &snapshot.dictionary,
        &snapshot.upstreams,
        client,
        source.ip(),
        verified,
    )
    .await
    {
        Ok(reply) => {
            // Cache before sending: a NAS that retransmits the moment the reply leaves must
            // find it cached, not "in flight" (which is dropped).
            if let Some(pending) = pending {
                pending.complete(reply.clone());
            }
            let sent = match &reply_to {
                ReplyTo::Udp(socket) => socket.send_to(&reply, source).await.map(|_| ()),
                ReplyTo::Tls(writer) => writer.send(reply.clone()).await.map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed")
                }),
            };
            if let Err(e) = sent {
                tracing::warn!(%source, transport = transport.as_str(), error = %e, "sending a reply failed");
            }
            shared
                .counters
                .replied
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let code = reply
                .first()
                .map(|c| Code(*c).to_string())
                .unwrap_or_default();
            metrics::inc(
                "tessera_radius_replies_total",
                &[
                    ("code", &code),
                    ("client", &client.name),
                    ("transport", transport.as_str()),
                ],
            );
        }
        Err(e) => {
            drop(pending);
            tracing::error!(%source, error = %e, "reply could not be encoded");
        }
    }
    drop(permit);
    drop(connection_permit);
}

/// Binds the configured listen addresses.
pub async fn bind(addresses: &[SocketAddr]) -> std::io::Result<Vec<UdpSocket>> {
    let mut sockets = Vec::with_capacity(addresses.len());
    for address in addresses {
        let socket = bind_one(*address).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
        })?;
        tracing::info!(address = %socket.local_addr()?, "listening on {}", socket.local_addr()?);
        sockets.push(socket);
    }
    Ok(sockets)
}

/// The receive buffer asked for: a burst of Access-Requests (a VPN gateway reconnecting all
/// its users at once) must wait in the kernel, not be dropped there unseen. The kernel caps it
/// at `net.core.rmem_max`.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;

fn bind_one(address: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::warn!(%error, "cannot enlarge the receive buffer");
    }
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if granted < RECEIVE_BUFFER {
        tracing::info!(
            bytes = granted,
            "receive buffer smaller than asked (raise net.core.rmem_max for large bursts)"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}
