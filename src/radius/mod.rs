//! The RADIUS front end: wire format, client table, duplicate detection and the UDP server.
//!
//! - [`codec`]: bytes ⇄ [`codec::Packet`], strictly, never panicking; [`wire`]: the codes,
//!   attribute types and errors it is made of.
//! - [`digest`]: MD5 and HMAC-MD5, below the codec and the crypto.
//! - [`crypto`]: User-Password hiding, authenticators, Message-Authenticator.
//! - [`dictionary`]: attribute names and types from FreeRADIUS-format dictionary files.
//! - [`clients`]: which source addresses may talk to us, with which secret and options.
//! - [`verify`]: authenticity checks that turn a packet into a [`verify::Verified`] one.
//! - [`reply_cache`]: RFC 5080 duplicate detection — retransmits get the cached reply.
//! - [`handler`]: the one place where a packet becomes an `auth::AuthRequest` and an
//!   `auth::Outcome` becomes a reply.
//! - [`eap`]: the seam to [`crate::eap`] (RFC 3579): EAP-Message, State, the MPPE keys.
//! - [`accounting`]: the one place where an Accounting-Request becomes an
//!   `accounting::Event`, and a committed one an Accounting-Response.
//! - [`server`]: sockets, the receive loop, tasks and shutdown.
//! - [`shared`]: what the UDP server and RadSec share: the snapshot, the loops' state, the
//!   reply path after admission.
//! - [`settings`]: `[server]`, read by the server, RadSec and TLS alike.
//! - [`upstream`]: passthru to a legacy RADIUS server (tessera as a proxy).
//! - [`tls`]: RadSec's TLS configuration and the client-certificate check.
//! - [`radsec`]: RadSec connections (RFC 6614): framing, limits, the same request path.
//! - [`counters`]: what was received and what was dropped, and why.
//! - [`disconnect`]: Disconnect-Request (RFC 5176) to a NAS's DAS port, and its answer.

pub mod accounting;
pub mod clients;
pub mod codec;
pub mod counters;
pub mod crypto;
pub mod dictionary;
pub mod digest;
pub mod disconnect;
pub mod eap;
pub mod handler;
pub mod radsec;
pub mod reply_cache;
pub mod server;
pub mod settings;
pub mod shared;
pub mod tls;
pub mod upstream;
pub mod verify;
pub mod wire;
