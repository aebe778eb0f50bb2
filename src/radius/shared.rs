//! What the UDP server (`server.rs`) and RadSec (`radsec.rs`) share: the configuration
//! [`Snapshot`] a request is served by, the loops' `Shared` state, the admitted `Job`, and
//! the one reply path after admission (`process`: verify, answer, cache, send), with its drop
//! log and duplicate check. It binds and accepts nothing; the two servers do.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

use super::accounting;
use super::clients::{Client, ClientTable};
use super::codec::{Code, Packet};
use super::counters::{Counters, DropCause};
use super::dictionary::Dictionary;
use super::handler;
use super::reply_cache::{Lookup, Pending, ReplyCache, RequestKey};
use super::tls::TlsServer;
use super::verify;
use crate::auth::Authenticate;
use crate::live::Live;
use crate::metrics::{self, Health};

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
    /// EAP's methods and certificate (none when EAP is off).
    pub eap: Option<Arc<crate::eap::EapServer>>,
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

/// Where a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Port {
    /// A UDP `listen` address (authentication).
    Authentication,
    /// A UDP `accounting_listen` address.
    Accounting,
    /// A RadSec connection: both services on one port (RFC 6614 §2.1).
    RadSec,
}

/// Which service answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Service {
    /// The engine (Access-Request), or Status-Server answered with Access-Accept.
    Authentication,
    /// The accounting engine (Accounting-Request), or Status-Server answered with
    /// Accounting-Response.
    Accounting,
}

/// Which service answers `code` on `port` (`accounting`: whether accounting is served), or
/// why the request is dropped.
pub(super) fn route(code: Code, port: Port, accounting: bool) -> Result<Service, DropCause> {
    match (port, code) {
        (Port::Authentication | Port::RadSec, Code::ACCESS_REQUEST | Code::STATUS_SERVER) => {
            Ok(Service::Authentication)
        }
        (Port::Accounting, Code::ACCOUNTING_REQUEST | Code::STATUS_SERVER) => {
            Ok(Service::Accounting)
        }
        (Port::RadSec, Code::ACCOUNTING_REQUEST) if accounting => Ok(Service::Accounting),
        (Port::Accounting, Code::ACCESS_REQUEST) => Err(DropCause::WrongPort),
        _ => Err(DropCause::UnsupportedCode),
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

/// Everything the loops share.
pub(super) struct Shared<A> {
    pub(super) config: Arc<Live<Snapshot<A>>>,
    pub(super) health: Arc<Health>,
    pub(super) cache: Arc<ReplyCache>,
    pub(super) counters: Arc<Counters>,
    pub(super) in_flight: Arc<Semaphore>,
    /// The accounting engine; `None` serves no accounting.
    pub(super) accounting: Option<Arc<crate::accounting::Accounting>>,
}

/// A request that passed the cheap checks, with its permit and its configuration.
pub(super) struct Job<A> {
    pub(super) snapshot: Arc<Snapshot<A>>,
    pub(super) client: ClientKey,
    pub(super) transport: Transport,
    pub(super) service: Service,
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
        service,
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
        Transport::Udp | Transport::Tls if packet.code == Code::ACCOUNTING_REQUEST => {
            verify::verify_accounting(packet, &datagram, client)
        }
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
    let answered = answer(&shared, &snapshot, service, client, source, verified).await;
    match answered {
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
        Err(cause) => {
            drop(pending);
            // An Access-Request's reply that could not be encoded was logged above.
            if cause != DropCause::Malformed || service == Service::Accounting {
                log_drop(&shared, transport, cause, source, &client.name);
            }
        }
    }
    drop(permit);
    drop(connection_permit);
}

/// The reply of the service `service` to a verified request, or why none goes out.
async fn answer<A: Authenticate>(
    shared: &Shared<A>,
    snapshot: &Snapshot<A>,
    service: Service,
    client: &Client,
    source: SocketAddr,
    verified: verify::Verified,
) -> Result<Vec<u8>, DropCause> {
    match (service, &shared.accounting) {
        (Service::Accounting, Some(engine)) => {
            accounting::handle(
                engine,
                &snapshot.auth,
                &snapshot.upstreams,
                client,
                source.ip(),
                verified,
            )
            .await
        }
        // Routed to accounting only when it is served.
        (Service::Accounting, None) => Err(DropCause::UnsupportedCode),
        (Service::Authentication, _) => handler::handle(
            &snapshot.auth,
            snapshot.eap.as_deref(),
            &snapshot.dictionary,
            &snapshot.upstreams,
            client,
            source.ip(),
            verified,
        )
        .await
        .map_err(|e| {
            tracing::error!(%source, error = %e, "reply could not be encoded");
            DropCause::Malformed
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_port_serves_its_codes() {
        use Port::*;
        let a = Ok(Service::Authentication);
        let acct = Ok(Service::Accounting);
        assert_eq!(route(Code::ACCESS_REQUEST, Authentication, true), a);
        assert_eq!(route(Code::STATUS_SERVER, Authentication, true), a);
        assert_eq!(
            route(Code::ACCOUNTING_REQUEST, Authentication, true),
            Err(DropCause::UnsupportedCode)
        );
        assert_eq!(route(Code::ACCOUNTING_REQUEST, Accounting, true), acct);
        assert_eq!(route(Code::STATUS_SERVER, Accounting, true), acct);
        assert_eq!(
            route(Code::ACCESS_REQUEST, Accounting, true),
            Err(DropCause::WrongPort)
        );
        assert_eq!(route(Code::ACCOUNTING_REQUEST, RadSec, true), acct);
        assert_eq!(
            route(Code::ACCOUNTING_REQUEST, RadSec, false),
            Err(DropCause::UnsupportedCode)
        );
        assert_eq!(route(Code::STATUS_SERVER, RadSec, true), a);
        assert_eq!(
            route(Code::COA_REQUEST, Accounting, true),
            Err(DropCause::UnsupportedCode)
        );
    }
}
