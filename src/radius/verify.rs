//! Authenticity checks on a decoded request, and the proof that they ran.
//!
//! [`Verified`] can only be made here. The handler accepts nothing else, so a request whose
//! Message-Authenticator was not checked cannot reach the engine by accident (rustls's
//! "goto fail" lesson: the absence of an error does not prove a check ran).

use super::clients::Client;
use super::codec::{AttributeType, Code, Packet};
use super::counters::DropCause;
use super::crypto;

/// A packet whose authenticity checks passed for its client.
#[derive(Debug)]
pub struct Verified(Packet);

impl Verified {
    /// The packet.
    pub fn packet(&self) -> &Packet {
        &self.0
    }
}

/// Checks a request (RFC 3579 §3.2, RFC 5997 §3, BlastRADIUS / CVE-2024-3596):
/// - a Message-Authenticator, when present, must be right — always;
/// - Status-Server must carry one;
/// - an Access-Request without one is dropped when the client requires it, or when it carries
///   Proxy-State and `limit_proxy_state` is on.
///
/// `datagram` is the raw packet the `packet` was decoded from.
pub fn verify(packet: Packet, datagram: &[u8], client: &Client) -> Result<Verified, DropCause> {
    match crypto::check_request_message_authenticator(datagram, client.secret.expose()) {
        Some(true) => return Ok(Verified(packet)),
        Some(false) => return Err(DropCause::BadMessageAuthenticator),
        None => {}
    }
    if packet.code == Code::STATUS_SERVER || client.require_message_authenticator {
        return Err(DropCause::MissingMessageAuthenticator);
    }
    if client.limit_proxy_state && packet.get(AttributeType::PROXY_STATE).is_some() {
        return Err(DropCause::ProxyStateWithoutAuthenticator);
    }
    Ok(Verified(packet))
}
