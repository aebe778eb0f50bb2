//! Accounting of passthru users forwarded to the legacy server (issue 30): while a
//! `passthru` policy sends a user's logins to the old server, their Accounting-Requests go
//! there too, so its records of those sessions stay whole during a migration. tessera
//! records each one itself first; the NAS is answered only when both have it (the old server's
//! Accounting-Response checked), as a RADIUS proxy does — so a record the old server did not
//! take is sent again by the NAS, and the local copy, already kept, stays unchanged.
//!
//! The forward is a new Accounting-Request of tessera's own to the upstream's
//! `accounting_address`: the NAS's attributes (without its Message-Authenticator), one
//! Proxy-State of tessera's, signed with the upstream's secret (RFC 2866 §3's Request
//! Authenticator, and a Message-Authenticator), resent on silence as an Access-Request's
//! forward is.

use tokio::net::UdpSocket;

use super::{Upstream, UpstreamError};
use crate::radius::codec::{Attribute, AttributeType, Code, Packet};
use crate::radius::crypto;

impl Upstream {
    /// Forwards the NAS's Accounting-Request; `Ok` once the upstream acknowledged it with an
    /// authentic Accounting-Response.
    pub async fn forward_accounting(&self, request: &Packet) -> Result<(), UpstreamError> {
        let failed = |reason: String| UpstreamError::Socket {
            name: self.name.clone(),
            reason,
        };
        let mut marker = [0u8; 8];
        getrandom::fill(&mut marker).map_err(|e| failed(format!("random source failed: {e}")))?;
        let mut attributes: Vec<Attribute> = request
            .attributes
            .iter()
            .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR)
            .cloned()
            .collect();
        attributes.push(Attribute {
            typ: AttributeType::PROXY_STATE,
            value: marker.to_vec(),
        });
        let outgoing = Packet {
            code: Code::ACCOUNTING_REQUEST,
            identifier: request.identifier,
            authenticator: [0; 16],
            attributes,
        };
        let secret = self.secret.expose();
        let bytes = crypto::sign_accounting_request(&outgoing, secret, true)
            .map_err(|e| failed(e.to_string()))?;
        let authenticator = bytes
            .get(4..20)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .ok_or_else(|| failed("the request was not encoded".into()))?;
        let socket = UdpSocket::bind(self.local_address())
            .await
            .map_err(|e| failed(e.to_string()))?;
        socket
            .connect(self.accounting_address)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut buf = vec![0u8; 4096];
        let tries = self.retries.saturating_add(1);
        for _ in 0..tries {
            socket
                .send(&bytes)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await
            {
                // An ICMP port unreachable: wait for the next try.
                let Ok(len) = received else {
                    tokio::time::sleep_until(deadline).await;
                    break;
                };
                let datagram = buf.get(..len).unwrap_or_default();
                let answers = Packet::decode(datagram).is_ok_and(|reply| {
                    reply.code == Code::ACCOUNTING_RESPONSE
                        && reply.identifier == outgoing.identifier
                });
                if answers && crypto::verify_accounting_response(datagram, &authenticator, secret) {
                    return Ok(());
                }
                tracing::warn!(upstream = %self.name, "accounting reply from the upstream dropped: bad authenticator or not ours");
            }
        }
        Err(UpstreamError::NoAnswer {
            name: self.name.clone(),
            address: self.accounting_address,
            tries,
            unsigned: 0,
        })
    }
}
