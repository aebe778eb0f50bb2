//! The HTTP face: LinOTP's and privacyIDEA's validation API (`/validate/check`,
//! `/validate/simplecheck`) and `/healthz`, on the same engine as RADIUS.
//!
//! Like [`crate::radius::handler`], this layer only translates: parameters become an
//! [`AuthRequest`](crate::auth::AuthRequest), the engine's [`Outcome`](crate::auth::Outcome)
//! becomes the JSON (or smiley) both families of clients read. It knows nothing of tokens;
//! identity, policies, back-off, blocking, audit and the decision metrics are the engine's, so a
//! caller gains nothing by switching between RADIUS and HTTP.
//!
//! Files: `settings.rs` (the `[http]` section, the allow-list, the TLS configuration),
//! `server.rs` (listeners, connections, their limits and shutdown), `params.rs` (query string,
//! urlencoded, multipart and JSON bodies), `answer.rs` (the answers), `routes.rs` (the routes
//! and the request's way through them), `admin/` (the admin API, its sessions and logins, on
//! the same listener; see `admin/mod.rs`).
//!
//! Why axum on hyper: HTTP/1.1 parsing is where a hand-written server gets request smuggling,
//! header and chunked-encoding bugs; hyper is the tokio ecosystem's audited HTTP
//! implementation (reqwest, which tessera already uses for SMS gateways, runs on it, so the
//! parser is already in the binary), and axum is tokio's small router over it. tessera drives
//! hyper's connection itself (`server.rs`) rather than `axum::serve`, because the listener must
//! speak TLS with a certificate that reloads, cap connections, and time out slow headers
//! (hyper's `header_read_timeout`, which also bounds an idle keep-alive connection). tower-http
//! is not used: its timeout layer would also cut the engine's work short (a delivery, a
//! counter commit), so the body alone is read under a deadline (`routes.rs`).

pub mod admin;
pub mod answer;
pub mod page;
pub mod params;
pub mod routes;
pub mod server;
pub mod settings;

pub use settings::{AllowList, HttpConfig, HttpSettings};

/// The caller's address, attached to each request by the connection that read it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// What one configuration gives the listener, swapped whole on reload: who may call, the TLS
/// configuration (`None`: plain HTTP), and the admin API's configuration.
pub struct HttpLive {
    /// Who may call `/validate/*`.
    pub allow: AllowList,
    /// The listener's TLS configuration, when `tls_certificate` is set.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// `[admin]` with the realms and engine settings of the same configuration; `None`
    /// while the admin API is off.
    pub admin: Option<std::sync::Arc<admin::AdminLive>>,
}
