//! End-to-end tests: the real tessera binary, driven over the wire by FreeRADIUS's radclient
//! (and, where radclient cannot do what a test needs, by a raw UDP client built on tessera's
//! own codec). One test binary, a module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly by design"
)]

mod accounting;
mod admin_api;
mod admin_enroll;
mod admin_sessions;
mod backoff;
mod browser;
mod config;
mod docs;
mod eap;
mod eap_client;
mod exhaustion;
mod flow;
mod http;
mod http_connections;
mod hwtok;
mod identity;
mod ldap;
mod login;
mod nas;
mod nodes;
mod package;
mod pam;
mod passthru;
mod radius;
mod radsec;
mod rollout;
mod service;
mod sms_device;
mod sms_echo;
mod sms_http;
mod sms_smpp;
mod smtp;
mod tokens;
mod users_file;
mod util;
