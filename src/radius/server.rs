//! The server: one UDP receive loop per listen address (authentication and accounting
//! alike, each knowing its port), one RadSec accept loop per TLS address (`radsec.rs`), one
//! task per request; both transports share the reply path (`shared.rs`).
//!
//! The receive loop does only cheap work — find the client, decode, consult the reply cache —
//! and spawns the rest, so a slow SMS gateway or directory delays only the requests waiting on
//! it. A semaphore caps the requests in flight. On shutdown the loops stop receiving and the
//! requests in flight get a bounded time to finish, so counters they are committing land.
//! Each request is served by one configuration [`Snapshot`], read once when it arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::codec::Packet;
use super::counters::{Counters, DropCause};
use super::radsec;
use super::reply_cache::{Pending, ReplyCache, RequestKey};
use super::settings::ServerSettings;
use super::shared::{
    ClientKey, Job, Port, ReplyTo, Shared, Snapshot, Transport, count_request, is_new_request,
    log_drop, process, route,
};
use crate::auth::Authenticate;
use crate::live::Live;
use crate::metrics::{self, Health};

/// What the server answers with.
pub struct Context<A> {
    /// The current configuration; replaced on reload.
    pub config: Arc<Live<Snapshot<A>>>,
    /// Whether the store and directories answer (Status-Server follows it).
    pub health: Arc<Health>,
    /// What was received and dropped.
    pub counters: Arc<Counters>,
    /// The accounting engine; `None` serves no accounting (nor on RadSec).
    pub accounting: Option<Arc<crate::accounting::Accounting>>,
}

/// The bound sockets the server serves.
pub struct Listeners {
    /// UDP authentication (`listen`).
    pub udp: Vec<UdpSocket>,
    /// UDP accounting (`accounting_listen`).
    pub accounting: Vec<UdpSocket>,
    /// RadSec (`tls_listen`).
    pub tls: Vec<TcpListener>,
}

/// Serves RADIUS on the given UDP sockets and RadSec listeners until `shutdown` is cancelled.
pub async fn run<A: Authenticate>(
    listeners: Listeners,
    context: Context<A>,
    settings: &ServerSettings,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let Context {
        config,
        health,
        counters,
        accounting,
    } = context;
    let Listeners {
        udp: sockets,
        accounting: accounting_sockets,
        tls: tls_listeners,
    } = listeners;
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
        accounting,
    });
    let mut loops = JoinSet::new();
    let udp = sockets
        .into_iter()
        .map(|s| (s, Port::Authentication))
        .chain(
            accounting_sockets
                .into_iter()
                .map(|s| (s, Port::Accounting)),
        );
    for (socket, port) in udp {
        loops.spawn(receive_loop(
            Arc::new(socket),
            port,
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
    port: Port,
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
        if let Some(job) = admit(&shared, &socket, port, datagram, source) {
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

/// The receive loop's share of the work: client, decode, code, duplicates, capacity.
fn admit<A: Authenticate>(
    shared: &Arc<Shared<A>>,
    socket: &UdpSocket,
    port: Port,
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
    let service = match route(packet.code, port, shared.accounting.is_some()) {
        Ok(service) => service,
        Err(cause) => {
            log_drop(shared, udp, cause, source, &format!("{:?}", packet.code));
            return None;
        }
    };
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
        service,
        source,
        packet,
        datagram: datagram.to_vec(),
        pending: Some(pending),
        permit,
        connection_permit: None,
    })
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

/// Binds the accounting addresses (`accounting_listen`).
pub async fn bind_accounting(addresses: &[SocketAddr]) -> std::io::Result<Vec<UdpSocket>> {
    let mut sockets = Vec::with_capacity(addresses.len());
    for address in addresses {
        let socket = bind_one(*address).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen for accounting on {address}: {e}"),
            )
        })?;
        tracing::info!(address = %socket.local_addr()?, "accounting on {}", socket.local_addr()?);
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
