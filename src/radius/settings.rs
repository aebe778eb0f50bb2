//! `[server]`: the listener settings the UDP server, RadSec and its TLS configuration read.
//! Below all three, so none of them imports another for it.

use serde::Deserialize;

/// `[server]` in the config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Addresses to listen on, e.g. `["0.0.0.0:1812", "[::]:1812"]`.
    pub listen: Vec<toml::Spanned<String>>,
    /// Accounting addresses (RFC 2866), e.g. `["0.0.0.0:1813"]`. Absent: `listen`'s
    /// addresses with port 1813 (port 0 where `listen` has 0); `[]` turns accounting off.
    pub accounting_listen: Option<Vec<toml::Spanned<String>>>,
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
            accounting_listen: None,
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
