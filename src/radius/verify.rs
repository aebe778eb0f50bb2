//! Authenticity checks on a decoded request, and the proof that they ran.
//!
//! [`Verified`] can only be made here. The handler accepts nothing else, so a request whose
//! Message-Authenticator was not checked cannot reach the engine by accident (rustls's
//! "goto fail" lesson: the absence of an error does not prove a check ran).

use super::clients::Client;
use super::codec::{AttributeType, Code, Packet};
use super::counters::DropCause;
use super::crypto;

/// A packet whose authenticity checks passed for its client, and how it is protected.
#[derive(Debug)]
pub struct Verified(Packet, Wire);

/// How a verified packet was protected, and so how its hidden attributes and its reply are
/// encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// RADIUS as in RFC 2865 (UDP, or RadSec inside TLS): Identifier and Request
    /// Authenticator, User-Password hidden with the shared secret, Message-Authenticator.
    Classic,
    /// RADIUS/1.1 (RFC 9765) inside TLS: a Token instead, everything in the clear, no
    /// Message-Authenticator.
    Radius11,
}

impl Verified {
    /// The packet.
    pub fn packet(&self) -> &Packet {
        &self.0
    }

    /// How it was protected.
    pub fn wire(&self) -> Wire {
        self.1
    }
}

/// A RADIUS/1.1 packet (RFC 9765 §5.2): TLS with a client certificate that belongs to the
/// client is the check, so there is nothing to verify here; any Message-Authenticator is
/// silently discarded, as the RFC asks, so nothing downstream can mistake it for a signature.
pub fn verify_radius11(mut packet: Packet) -> Verified {
    packet
        .attributes
        .retain(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR);
    Verified(packet, Wire::Radius11)
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
        Some(true) => return Ok(Verified(packet, Wire::Classic)),
        Some(false) => return Err(DropCause::BadMessageAuthenticator),
        None => {}
    }
    if packet.code == Code::STATUS_SERVER || client.require_message_authenticator {
        return Err(DropCause::MissingMessageAuthenticator);
    }
    if client.limit_proxy_state && packet.get(AttributeType::PROXY_STATE).is_some() {
        return Err(DropCause::ProxyStateWithoutAuthenticator);
    }
    Ok(Verified(packet, Wire::Classic))
}

/// Checks an Accounting-Request (RFC 2866 §3): the Request Authenticator is a digest with the
/// shared secret, so it is checked always; a Message-Authenticator, when present, must be
/// right too. A client's `require_message_authenticator` does not apply: the authenticator
/// already signs the whole packet (BlastRADIUS forges Access-Requests, whose authenticator is
/// random).
pub fn verify_accounting(
    packet: Packet,
    datagram: &[u8],
    client: &Client,
) -> Result<Verified, DropCause> {
    match crypto::check_accounting_request(datagram, client.secret.expose()) {
        crypto::AccountingCheck::Valid => Ok(Verified(packet, Wire::Classic)),
        crypto::AccountingCheck::BadAuthenticator => Err(DropCause::BadRequestAuthenticator),
        crypto::AccountingCheck::BadMessageAuthenticator => Err(DropCause::BadMessageAuthenticator),
    }
}
