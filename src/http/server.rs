//! The HTTP listeners: one accept loop per `[http] listen` address, one task per connection,
//! TLS when the configuration has a certificate, and the limits that keep a slow or greedy
//! client from holding the server.
//!
//! - Connections are admitted by the [`Admission`] RadSec uses too (`max_connections`,
//!   `max_connections_per_source`, the descriptors kept for the store and the providers),
//!   one for every HTTP listener, counted in `tessera_connections_refused_total` and
//!   `…_closed_total` with `listener="http"`. A caller in `allow` is known at once, and its
//!   connection keeps its place; a stranger's (who can only be told 403) is the first closed
//!   to make room. HTTP/1.1 is served one request at a time per connection, so this bounds
//!   the requests in flight too.
//! - The TLS handshake and the request headers each get [`HEAD_TIMEOUT`]; hyper's header timer
//!   also runs while a kept-alive connection waits for its next request, so an idle connection
//!   is closed after it. The body has its own deadline (`routes.rs`).
//! - Request heads are limited to [`MAX_HEAD`] octets (hyper answers 431 beyond).
//!
//! On shutdown the loops stop accepting, each connection finishes the request it is serving
//! (hyper's graceful shutdown) within the grace time, and [`run`] returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::HttpLive;
use super::routes::Peer;
use crate::admission::{Admission, AdmissionLimits, Closed, Ticket};
use crate::live::Live;

/// How long a TLS handshake, and a request's headers, may take.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;

/// A listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve HTTP on {address}: {source}")]
pub struct BindError {
    address: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// Binds every address.
pub async fn bind(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = vec![];
    for &address in addresses {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| BindError { address, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// What the accept loops share.
struct Accepting {
    router: Router,
    live: Arc<Live<HttpLive>>,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
}

/// Serves `listeners` with `router` until `shutdown`, then lets open connections finish
/// within `grace`. `limits` bound the connections of all listeners together.
pub async fn run(
    listeners: Vec<TcpListener>,
    router: Router,
    live: Arc<Live<HttpLive>>,
    limits: AdmissionLimits,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let accepting = Arc::new(Accepting {
        router,
        admission: Admission::new("http", limits),
        live: live.clone(),
        shutdown: shutdown.clone(),
    });
    let scheme = if live.get().tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut loops = JoinSet::new();
    for listener in listeners {
        if let Ok(address) = listener.local_addr() {
            tracing::info!("HTTP API on {scheme}://{address}/validate/check");
        }
        loops.spawn(accept_loop(listener, accepting.clone()));
    }
    // One grace for all listeners, counted from the shutdown (the loops end on it).
    let mut deadline = None;
    while let Some(connections) = loops.join_next().await {
        let Ok(mut connections) = connections else {
            continue;
        };
        let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + grace);
        let drained = tokio::time::timeout_at(deadline, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("HTTP connections still open after the grace time: closed");
        }
    }
}

/// Accepts connections until shutdown; returns the connections still running.
async fn accept_loop(listener: TcpListener, accepting: Arc<Accepting>) -> JoinSet<()> {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = accepting.shutdown.cancelled() => return connections,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // EMFILE and the like: transient; don't spin.
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Finished connections leave the set, so it holds only open ones.
        while connections.try_join_next().is_some() {}
        let ticket = match accepting.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                // Counted by the admission; debug, so a flood does not fill the log.
                tracing::debug!(%peer, reason = refusal.as_str(), "HTTP connection refused");
                continue;
            }
        };
        // A caller in `allow` (or in `[admin] allow`) is known by its address: its connection
        // is never evicted.
        let live = accepting.live.get();
        let operator = live
            .admin
            .as_ref()
            .is_some_and(|a| a.config.enabled && a.config.allow.allows(peer.ip()));
        if live.allow.allows(peer.ip()) || operator {
            ticket.authenticated();
        }
        let accepting = accepting.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, ticket, &accepting).await;
        });
    }
}

/// One connection: TLS if configured, then HTTP/1.1 until the client closes, a timeout, an
/// eviction to make room, or shutdown. `ticket` holds its place until it ends.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    accepting: &Accepting,
) {
    let _ = stream.set_nodelay(true);
    let tls = accepting.live.get().tls.clone();
    match tls {
        None => serve_http(stream, peer, &ticket, accepting).await,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let limit = accepting.admission.limits().handshake_timeout;
            tokio::select! {
                done = tokio::time::timeout(limit, acceptor.accept(stream)) => match done {
                    Ok(Ok(stream)) => serve_http(stream, peer, &ticket, accepting).await,
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "HTTPS handshake failed"),
                    Err(_) => {
                        accepting.admission.closed(Closed::HandshakeTimeout);
                        tracing::debug!(%peer, "HTTPS handshake timed out");
                    }
                },
                () = ticket.evicted() => {
                    tracing::debug!(%peer, "HTTPS connection closed to make room");
                }
            }
        }
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, ticket: &Ticket, accepting: &Accepting)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = accepting.router.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "HTTP connection ended");
            }
        }
        _ = accepting.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        // A stranger's connection, closed to make room; its request in flight (a 403) ends.
        () = ticket.evicted() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HEAD_TIMEOUT, connection).await;
        }
    }
}
