//! RadSec connections (RFC 6614): TLS over TCP, RADIUS packets back to back, shared secret
//! `radsec`. Each request goes the same way as a UDP datagram (`server::process`: verify,
//! handler, engine, reply cache), only its reply goes to the connection's writer.
//!
//! - Framing (RFC 6613 §2.6.4): the Length field delimits packets, so one read may hold several
//!   packets and one packet may arrive over several reads. A Length outside 20..=4096 or a
//!   packet that does not decode is not RADIUS: the connection is closed (there is no way to
//!   find the next packet), and the server goes on.
//! - Bounds: the [`Admission`] of all RadSec listeners decides which connections are kept
//!   (`tls_max_connections` in all, `tls_max_connections_per_source` per address, a reserve of
//!   `descriptor_reserve` descriptors, the oldest connection still in its handshake closed to
//!   make room), the handshake must finish within `tls_handshake_timeout_seconds`, at most
//!   `tls_max_in_flight_per_connection` requests are in flight on one connection (beyond it
//!   the connection is not read, so TCP pushes back), and a silent connection is closed after
//!   `tls_idle_timeout_seconds`.
//! - Duplicates: the reply cache is keyed by the connection's peer address and port, so it is
//!   per connection as RFC 6614 §2.5 asks (a request resent on a new connection is new).
//! - Status-Server is the watchdog (RFC 6614 §2.6); it is answered like over UDP.
//! - RADIUS/1.1 (RFC 9765), when ALPN chose `radius/1.1` (over TLS 1.3 only): the request is
//!   verified by the TLS session alone (`verify::verify_radius11`), the handler reads the
//!   password in the clear and answers with the Token, and there is no deduplication (§4.2.2).
//!
//! The TLS configuration, and with it the client check, is read from the snapshot when the
//! connection is accepted; each request reads the current snapshot and finds its client again
//! by certificate, so a client removed by a reload loses its connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::codec::{HEADER_LEN, MAX_PACKET_LEN, Packet};
use super::counters::DropCause;
use super::reply_cache::{Pending, RequestKey};
use super::settings::ServerSettings;
use super::shared::{
    ClientKey, Job, Port, ReplyTo, Shared, Transport, count_request, is_new_request, log_drop,
    process, route,
};
use super::tls;
use crate::admission::{Admission, AdmissionLimits, Closed, Refusal, Ticket};
use crate::auth::Authenticate;

const TLS: Transport = Transport::Tls;

/// The RadSec bounds from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    idle: Duration,
    in_flight: usize,
    /// What the listeners' [`Admission`] is made with.
    pub admission: AdmissionLimits,
}

impl Limits {
    /// The limits configured.
    pub fn from_settings(settings: &ServerSettings) -> Limits {
        Limits {
            idle: Duration::from_secs(settings.tls_idle_timeout_seconds.max(1)),
            in_flight: settings.tls_max_in_flight_per_connection.max(1),
            admission: AdmissionLimits {
                max_connections: settings.tls_max_connections.max(1),
                max_per_source: (*settings.tls_max_connections_per_source.get_ref()).max(1),
                handshake_timeout: Duration::from_secs(
                    (*settings.tls_handshake_timeout_seconds.get_ref()).max(1),
                ),
                descriptor_reserve: settings.descriptor_reserve,
            },
        }
    }
}

/// Binds the RadSec listen addresses.
pub async fn bind(addresses: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let listener = TcpListener::bind(address).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {address} (RadSec): {e}"),
            )
        })?;
        tracing::info!(address = %listener.local_addr()?, "RadSec (RADIUS over TLS) on {}", listener.local_addr()?);
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Accepts connections until `shutdown`; each connection gets a task.
pub(super) async fn accept_loop<A: Authenticate>(
    listener: TcpListener,
    shared: Arc<Shared<A>>,
    limits: Limits,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                // Out of file descriptors and the like: wait a little, never spin or stop.
                tracing::warn!(%error, transport = "tls", "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ticket = match admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                let why = match refusal {
                    Refusal::PerSource => "too many RadSec connections from this address",
                    Refusal::Full => "too many RadSec connections",
                    Refusal::Descriptors => {
                        "too many RadSec connections for the descriptors left (the rest is kept for the store, the directory and the providers)"
                    }
                };
                log_drop(&shared, TLS, DropCause::Overloaded, peer, why);
                continue;
            }
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let admission = admission.clone();
        connections.spawn(async move {
            let conn = Accepted {
                stream,
                peer,
                ticket,
            };
            connection(conn, shared, limits, &admission, shutdown).await;
        });
    }
    // Connections notice the shutdown themselves and end once their requests are answered.
    connections.detach_all();
    Ok(())
}

/// A connection as accepted, with its place.
struct Accepted {
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
}

/// The TLS handshake, bounded by the admission's handshake timeout and cut short when the
/// connection is evicted to make room; a failed one is logged and counted.
async fn handshake<A: Authenticate>(
    acceptor: &tokio_rustls::TlsAcceptor,
    accepted: Accepted,
    shared: &Shared<A>,
    admission: &Admission,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Ticket,
)> {
    let Accepted {
        stream,
        peer,
        ticket,
    } = accepted;
    let limit = admission.limits().handshake_timeout;
    let why = tokio::select! {
        done = tokio::time::timeout(limit, acceptor.accept(stream)) => match done {
            Ok(Ok(stream)) => return Some((stream, ticket)),
            Ok(Err(error)) => error.to_string(),
            Err(_) => {
                admission.closed(Closed::HandshakeTimeout);
                format!("no handshake within {} s", limit.as_secs())
            }
        },
        () = ticket.evicted() => {
            "closed before its handshake finished, to make room for a newer connection".to_string()
        }
    };
    log_drop(shared, TLS, DropCause::TlsHandshake, peer, &why);
    None
}

/// One connection: handshake, find the client, then read packets until EOF, garbage, idle
/// timeout or shutdown.
async fn connection<A: Authenticate>(
    accepted: Accepted,
    shared: Arc<Shared<A>>,
    limits: Limits,
    admission: &Admission,
    shutdown: CancellationToken,
) {
    let peer = accepted.peer;
    // One snapshot for the handshake and the client it admits (the verifier holds the same
    // configuration's client table).
    let snapshot = shared.config.get();
    let Some(server) = snapshot.tls.clone() else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(server.config.clone());
    let Some((stream, ticket)) = handshake(&acceptor, accepted, &shared, admission).await else {
        return;
    };
    let (_, session) = stream.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return;
    };
    let der = leaf.as_ref().to_vec();
    let names = tls::subject_alt_names(&der);
    let version = session
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let transport = if session.alpn_protocol() == Some(tls::ALPN_RADIUS_11) {
        // RFC 9765 §3.4: RADIUS/1.1 needs TLS 1.3.
        if session.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            log_drop(
                &shared,
                Transport::Radius11,
                DropCause::TlsHandshake,
                peer,
                "radius/1.1 negotiated over TLS 1.2; RFC 9765 requires TLS 1.3",
            );
            return;
        }
        Transport::Radius11
    } else {
        TLS
    };
    let certificate = Arc::new((der, names));
    let Some(name) = snapshot
        .clients
        .find_tls(&certificate.0, &certificate.1)
        .map(|c| c.name.clone())
    else {
        return;
    };
    drop(snapshot);
    // Known now: this connection keeps its place until it ends (`ticket` lives as long).
    ticket.authenticated();
    tracing::info!(%peer, client = %name, transport = transport.as_str(), tls = %version, "RadSec connection open");
    let (reader, writer) = tokio::io::split(stream);
    let (replies, queued) = mpsc::channel(limits.in_flight);
    let writing = tokio::spawn(write_replies(writer, queued));
    let why = read_requests(
        reader,
        Conn {
            peer,
            certificate: ClientKey::Certificate(certificate),
            transport,
            replies,
            in_flight: Arc::new(Semaphore::new(limits.in_flight)),
        },
        &shared,
        limits.idle,
        &shutdown,
    )
    .await;
    // Requests still in flight hold the sender; the writer ends after their replies.
    let _ = writing.await;
    tracing::info!(%peer, client = %name, transport = transport.as_str(), reason = why, "RadSec connection closed");
}

/// What requests on one connection share.
struct Conn {
    peer: SocketAddr,
    certificate: ClientKey,
    /// RadSec or RADIUS/1.1, as ALPN decided.
    transport: Transport,
    replies: mpsc::Sender<Vec<u8>>,
    in_flight: Arc<Semaphore>,
}

/// Reads packets and starts a task for each; returns why it stopped.
async fn read_requests<A: Authenticate, R: AsyncRead + Unpin>(
    mut reader: R,
    conn: Conn,
    shared: &Arc<Shared<A>>,
    idle: Duration,
    shutdown: &CancellationToken,
) -> &'static str {
    let mut buffer: Vec<u8> = Vec::with_capacity(MAX_PACKET_LEN);
    let mut chunk = [0u8; 8192];
    loop {
        // Every complete packet in the buffer first, then read more.
        match next_frame(&mut buffer) {
            Ok(Some(frame)) => {
                shared
                    .counters
                    .received
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Per connection, then overall: wait (TCP pushes back), never drop.
                let permits = tokio::select! {
                    _ = shutdown.cancelled() => return "shutdown",
                    p = async {
                        let c = conn.in_flight.clone().acquire_owned().await;
                        let g = shared.in_flight.clone().acquire_owned().await;
                        (c, g)
                    } => p,
                };
                let (Ok(connection_permit), Ok(permit)) = permits else {
                    return "shutdown";
                };
                match admit(shared, &conn, frame, permit, connection_permit) {
                    Ok(Some(job)) => {
                        let reply_to = ReplyTo::Tls(conn.replies.clone());
                        let shared = shared.clone();
                        // Detached: a request outlives the reading (its reply is still sent
                        // when the client half-closes), and `run` waits for its permit.
                        tokio::spawn(async move { process(reply_to, shared, job).await });
                    }
                    Ok(None) => {}
                    Err(why) => return why,
                }
                continue;
            }
            Ok(None) => {}
            Err(detail) => {
                log_drop(
                    shared,
                    conn.transport,
                    DropCause::Malformed,
                    conn.peer,
                    &detail,
                );
                return "not RADIUS";
            }
        }
        let read = tokio::select! {
            _ = shutdown.cancelled() => return "shutdown",
            read = tokio::time::timeout(idle, reader.read(&mut chunk)) => read,
        };
        match read {
            Err(_) => return "idle timeout",
            Ok(Ok(0)) => return "closed by the client",
            Ok(Ok(n)) => buffer.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Ok(Err(error)) => {
                tracing::debug!(peer = %conn.peer, %error, transport = "tls", "read failed");
                return "read error";
            }
        }
    }
}

/// Takes the first whole packet off the front of `buffer`, if there is one. An impossible
/// Length is an error: nothing after it can be trusted to start a packet.
fn next_frame(buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, String> {
    let Some(length) = buffer.get(2..4) else {
        return Ok(None);
    };
    let length = usize::from(u16::from_be_bytes([
        length.first().copied().unwrap_or(0),
        length.get(1).copied().unwrap_or(0),
    ]));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
        return Err(format!(
            "Length {length} outside {HEADER_LEN}..={MAX_PACKET_LEN}: connection closed"
        ));
    }
    if buffer.len() < length {
        return Ok(None);
    }
    let rest = buffer.split_off(length);
    Ok(Some(std::mem::replace(buffer, rest)))
}

/// Decode, client, code, duplicates. `Err` closes the connection.
fn admit<A: Authenticate>(
    shared: &Arc<Shared<A>>,
    conn: &Conn,
    frame: Vec<u8>,
    permit: tokio::sync::OwnedSemaphorePermit,
    connection_permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Option<Job<A>>, &'static str> {
    let source = conn.peer;
    let snapshot = shared.config.get();
    let Some(client) = conn.certificate.find(&snapshot.clients) else {
        log_drop(
            shared,
            conn.transport,
            DropCause::UnknownClient,
            source,
            "the certificate's client is no longer configured",
        );
        return Err("client no longer configured");
    };
    let packet = match Packet::decode(&frame) {
        Ok(p) => p,
        Err(e) => {
            log_drop(
                shared,
                conn.transport,
                DropCause::Malformed,
                source,
                &e.to_string(),
            );
            return Err("not RADIUS");
        }
    };
    let service = match route(packet.code, Port::RadSec, shared.accounting.is_some()) {
        Ok(service) => service,
        Err(cause) => {
            log_drop(
                shared,
                conn.transport,
                cause,
                source,
                &format!("{:?}", packet.code),
            );
            return Ok(None);
        }
    };
    count_request(&packet, client, conn.transport);
    // RFC 9765 §4.2.2: over RADIUS/1.1 nothing is retransmitted, so no deduplication.
    let pending = if conn.transport == Transport::Radius11 {
        None
    } else {
        let key = RequestKey {
            source,
            identifier: packet.identifier,
            authenticator: packet.authenticator,
        };
        let resend = |reply: &[u8]| {
            if conn.replies.try_send(reply.to_vec()).is_err() {
                tracing::debug!(%source, "re-sending a cached reply failed");
            }
        };
        if !is_new_request(shared, conn.transport, key, resend) {
            return Ok(None);
        }
        Some(Pending::new(shared.cache.clone(), key))
    };
    Ok(Some(Job {
        snapshot: snapshot.clone(),
        client: conn.certificate.clone(),
        transport: conn.transport,
        service,
        source,
        packet,
        datagram: frame,
        pending,
        permit,
        connection_permit: Some(connection_permit),
    }))
}

/// Writes replies in the order they are ready, then closes the TLS session (close_notify).
async fn write_replies<W: AsyncWrite + Unpin>(mut writer: W, mut queued: mpsc::Receiver<Vec<u8>>) {
    while let Some(reply) = queued.recv().await {
        if writer.write_all(&reply).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(id: u8, len: u16) -> Vec<u8> {
        let mut p = vec![1, id];
        p.extend_from_slice(&len.to_be_bytes());
        p.resize(usize::from(len), 0);
        p
    }

    #[test]
    fn frames_split_and_joined() {
        // Two packets and the start of a third in one read.
        let mut buffer = packet(1, 20);
        buffer.extend(packet(2, 30));
        let third = packet(3, 40);
        buffer.extend_from_slice(&third[..3]);
        assert_eq!(next_frame(&mut buffer).unwrap().unwrap(), packet(1, 20));
        assert_eq!(next_frame(&mut buffer).unwrap().unwrap(), packet(2, 30));
        assert_eq!(next_frame(&mut buffer).unwrap(), None);
        buffer.extend_from_slice(&third[3..39]);
        assert_eq!(next_frame(&mut buffer).unwrap(), None);
        buffer.extend_from_slice(&third[39..]);
        assert_eq!(next_frame(&mut buffer).unwrap().unwrap(), third);
        assert!(buffer.is_empty());
    }

    #[test]
    fn impossible_lengths_are_errors() {
        assert!(next_frame(&mut packet(1, 4097)).is_err());
        assert!(next_frame(&mut vec![1, 1, 0, 19]).is_err());
        assert!(next_frame(&mut b"GET / HTTP/1.1\r\n".to_vec()).is_err());
        assert_eq!(
            next_frame(&mut packet(1, 4096)).unwrap().map(|p| p.len()),
            Some(4096)
        );
    }
}
