//! tessera: a native RADIUS server with built-in OTP challenge-response.
//!
//! # Layout
//!
//! A request travels down these layers and its answer back up; dependencies point one way,
//! `{radius, http} → auth → {otp, store, directory, delivery}`, and `http → admin → auth`:
//!
//! - [`radius`]: the front end — wire format, dictionaries, client table, duplicate detection,
//!   UDP server, RadSec and RADIUS/1.1 over TLS.
//!   [`radius::handler`] is the only place where RADIUS meets the engine (EAP's inner logins
//!   reach it through [`radius::eap`] and [`eap`]).
//! - [`http`]: the other front end — LinOTP's and privacyIDEA's `/validate/check` and
//!   `/validate/simplecheck` on the same engine; [`http::routes`] is where HTTP meets it. The
//!   admin API ([`http::admin`]) and the helpdesk page on it ([`http::page`]) sit on the same
//!   listener.
//! - [`admin`]: what the helpdesk, self-service and `tessera token …` do to tokens, users and
//!   the audit, one piece of code for the command line and the admin API ([`http::admin`]).
//! - [`auth`]: the engine — policies, otppin, autoenrollment, challenges, fail counters. It
//!   knows nothing of RADIUS or HTTP.
//! - [`eap`]: EAP for 802.1X and IKEv2 (EAP-TTLS, PEAPv0, EAP-GTC) without RADIUS:
//!   [`radius::eap`] carries it in EAP-Message; the inner credentials go to the engine as a
//!   PAP login's do.
//! - [`accounting`]: what accounting records mean for the sessions kept in the store (issue
//!   30), without RADIUS: [`radius::accounting`] translates.
//! - [`otp`]: HOTP and TOTP.
//! - [`store`]: tokens, challenges, counters and audit, on SQLite (the embedded default) or
//!   PostgreSQL (several nodes sharing one database); seeds sealed at rest. Both backends
//!   implement one trait and only read and write: what a store call decides is decided once,
//!   in [`store::decide`], and one conformance suite (`tests/store_conformance/`) runs on both.
//! - [`directory`]: users, passwords and attributes: LDAP / Active Directory and a local users
//!   file, grouped into realms.
//! - [`delivery`]: SMS and e-mail providers.
//! - [`config`]: the TOML file, checked with `file:line` errors, assembling the layers.
//! - [`secret`] and [`password_hash`]: values that never reach a log, and argon2id hashes;
//!   [`secret_file`]: the rule every file holding a secret follows (no access for others).
//! - [`metrics`] and [`live`]: Prometheus counters and health; values swapped on reload.
//! - [`admission`] and [`descriptors`]: which TCP connections a listener keeps (per address, in
//!   all, a reserve of descriptors), and the process's descriptor count and limit.
//! - [`failure`]: whose failure an error is — tessera's own (descriptors, memory …) or a
//!   peer's; a provider's fail mode and back-off apply only to the peer's.
//! - [`log_format`]: control characters escaped on the way to the human log and the audit.
//! - [`tls`]: the one rustls CryptoProvider (ring) shared by every TLS client.
//! - [`hex`], [`rfc3339`], [`source_location`]: small text formats every layer may use;
//!   [`time`]: [`time::UnixMs`], the one time type of the store and the engine.
#![warn(missing_docs)]

pub mod accounting;
pub mod admin;
pub mod admission;
pub mod auth;
pub mod backend;
pub mod config;
pub mod delivery;
pub mod descriptors;
pub mod directory;
pub mod eap;
pub mod failure;
pub mod hex;
pub mod http;
pub mod linotp_values;
pub mod live;
pub mod log_format;
pub mod metrics;
pub mod otp;
pub mod password_hash;
pub mod radius;
pub mod rfc3339;
pub mod secret;
pub mod secret_file;
pub mod source_location;
pub mod store;
pub mod time;
pub mod tls;
