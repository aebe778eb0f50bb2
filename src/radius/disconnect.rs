//! Disconnect-Request (RFC 5176): tessera as a Dynamic Authorization Client, asking a NAS to
//! end one session. The admin layer (`admin::revoke`) decides which sessions to end and
//! records what each NAS answered; this file only speaks the protocol: it builds the request,
//! sends it from a fresh UDP socket, resends it on silence, and checks the reply's
//! authenticators before believing an ACK or a NAK.
//!
//! The request names the session as the NAS reported it: User-Name, Acct-Session-Id and the
//! NAS (NAS-IP-Address when the recorded NAS is an IPv4 address, NAS-IPv6-Address for IPv6,
//! NAS-Identifier otherwise: RFC 5176 §3 says the NAS must match the identification
//! attributes with its own), with Event-Timestamp (§3.4: replay protection) and a
//! Message-Authenticator first. Its Request Authenticator is computed as an
//! Accounting-Request's (RFC 5176 §2.3: MD5 over the packet with a zero authenticator and the
//! secret), and the Message-Authenticator with that field zeroed (§3.5).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::codec::{AttributeType, Code, Packet};
use super::crypto::{sign_accounting_request, verify_accounting_response, verify_response};
use crate::secret::Secret;
use crate::time::UnixMs;

const ACCT_SESSION_ID: AttributeType = AttributeType(44);
const EVENT_TIMESTAMP: AttributeType = AttributeType(55);
const ERROR_CAUSE: AttributeType = AttributeType(101);

/// How long to wait for an answer before sending again.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a request is sent before it counts as unanswered.
pub const TRIES: u32 = 3;

/// The session to end, as the NAS knows it.
#[derive(Debug, Clone)]
pub struct Disconnect {
    /// The NAS's DAS: its address and port.
    pub to: SocketAddr,
    /// The secret shared with it.
    pub secret: Secret,
    /// User-Name as the NAS sent it in accounting.
    pub user_name: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The NAS as recorded: an IP address, or a NAS-Identifier.
    pub nas: String,
    /// Event-Timestamp.
    pub at: UnixMs,
}

/// What the NAS answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Disconnect-ACK: the session is ended.
    Ack,
    /// Disconnect-NAK, with its Error-Cause (RFC 5176 §3.6) when given.
    Nak(Option<u32>),
    /// Nothing that checked out, after every try; `String` says what went wrong locally
    /// (a socket error), if anything.
    NoAnswer(Option<String>),
}

impl Answer {
    /// The answer as the audit shows it.
    pub fn describe(&self) -> String {
        match self {
            Answer::Ack => "Disconnect-ACK".into(),
            Answer::Nak(None) => "Disconnect-NAK".into(),
            Answer::Nak(Some(cause)) => match error_cause_name(*cause) {
                Some(name) => format!("Disconnect-NAK, Error-Cause {name} ({cause})"),
                None => format!("Disconnect-NAK, Error-Cause {cause}"),
            },
            Answer::NoAnswer(None) => format!("no answer after {TRIES} tries"),
            Answer::NoAnswer(Some(error)) => format!("not sent: {error}"),
        }
    }
}

/// RFC 5176 §3.6's Error-Cause names.
pub fn error_cause_name(cause: u32) -> Option<&'static str> {
    Some(match cause {
        201 => "Residual-Session-Context-Removed",
        202 => "Invalid-EAP-Packet",
        401 => "Unsupported-Attribute",
        402 => "Missing-Attribute",
        403 => "NAS-Identification-Mismatch",
        404 => "Invalid-Request",
        405 => "Unsupported-Service",
        406 => "Unsupported-Extension",
        407 => "Invalid-Attribute-Value",
        501 => "Administratively-Prohibited",
        502 => "Request-Not-Routable",
        503 => "Session-Context-Not-Found",
        504 => "Session-Context-Not-Removable",
        505 => "Other-Proxy-Processing-Error",
        506 => "Resources-Unavailable",
        507 => "Request-Initiated",
        508 => "Multiple-Session-Selection-Unsupported",
        _ => return None,
    })
}

/// The signed Disconnect-Request with this identifier.
pub fn encode(request: &Disconnect, identifier: u8) -> Result<Vec<u8>, String> {
    let mut packet = Packet {
        code: Code::DISCONNECT_REQUEST,
        identifier,
        authenticator: [0; 16],
        attributes: vec![],
    };
    if !request.user_name.is_empty() {
        packet.push_split(AttributeType::USER_NAME, request.user_name.as_bytes());
    }
    packet.push_split(ACCT_SESSION_ID, request.session_id.as_bytes());
    match request.nas.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => packet.push_split(AttributeType::NAS_IP_ADDRESS, &v4.octets()),
        Ok(IpAddr::V6(v6)) => packet.push_split(AttributeType::NAS_IPV6_ADDRESS, &v6.octets()),
        Err(_) => packet.push_split(AttributeType::NAS_IDENTIFIER, request.nas.as_bytes()),
    }
    let seconds = u32::try_from(request.at.as_secs().max(0)).unwrap_or(u32::MAX);
    packet.push_split(EVENT_TIMESTAMP, &seconds.to_be_bytes());
    sign_accounting_request(&packet, request.secret.expose(), true).map_err(|e| e.to_string())
}

/// What a datagram from the NAS says about the request `sent`: `None` when it is not a
/// checked answer to it (another identifier, a wrong authenticator, another code).
pub fn read_answer(datagram: &[u8], sent: &[u8], secret: &[u8]) -> Option<Answer> {
    let reply = Packet::decode(datagram).ok()?;
    let (Some(&identifier), Some(authenticator)) = (sent.get(1), sent.get(4..20)) else {
        return None;
    };
    let authenticator = <[u8; 16]>::try_from(authenticator).ok()?;
    if reply.identifier != identifier {
        return None;
    }
    // RFC 5176 §3.5 computes a reply's Message-Authenticator over the request's
    // authenticator (hostapd does); some servers zero it, as for an Accounting-Response.
    if !verify_response(datagram, &authenticator, secret)
        && !verify_accounting_response(datagram, &authenticator, secret)
    {
        return None;
    }
    match reply.code {
        Code::DISCONNECT_ACK => Some(Answer::Ack),
        Code::DISCONNECT_NAK => Some(Answer::Nak(
            reply
                .get(ERROR_CAUSE)
                .and_then(|v| <[u8; 4]>::try_from(v).ok())
                .map(u32::from_be_bytes),
        )),
        _ => None,
    }
}

/// Sends the request, [`TRIES`] times at most, [`TIMEOUT`] apart, and returns the first
/// answer that checks out.
pub async fn send(request: &Disconnect) -> Answer {
    let mut identifier = [0u8; 1];
    if let Err(e) = getrandom::fill(&mut identifier) {
        return Answer::NoAnswer(Some(e.to_string()));
    }
    let datagram = match encode(request, identifier[0]) {
        Ok(d) => d,
        Err(e) => return Answer::NoAnswer(Some(e)),
    };
    let local: SocketAddr = match request.to {
        SocketAddr::V4(_) => (IpAddr::from([0u8; 4]), 0).into(),
        SocketAddr::V6(_) => (IpAddr::from([0u16; 8]), 0).into(),
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return Answer::NoAnswer(Some(e.to_string())),
    };
    if let Err(e) = socket.connect(request.to).await {
        return Answer::NoAnswer(Some(e.to_string()));
    }
    let mut buf = vec![0u8; 4096];
    for _ in 0..TRIES {
        if let Err(e) = socket.send(&datagram).await {
            tracing::debug!(to = %request.to, error = %e, "Disconnect-Request not sent");
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                // An ICMP port unreachable: nobody listens; the next try may find it.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => {
                    let got = buf.get(..n).unwrap_or_default();
                    if let Some(answer) = read_answer(got, &datagram, request.secret.expose()) {
                        return answer;
                    }
                }
            }
        }
    }
    Answer::NoAnswer(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::radius::crypto::check_accounting_request;

    fn request() -> Disconnect {
        Disconnect {
            to: "127.0.0.1:3799".parse().unwrap(),
            secret: Secret::from("das-secret"),
            user_name: "alice".into(),
            session_id: "S1".into(),
            nas: "10.0.0.1".into(),
            at: UnixMs::from_secs(1_800_000_000),
        }
    }

    #[test]
    fn the_request_is_signed_as_accounting_and_names_the_session() {
        let datagram = encode(&request(), 7).unwrap();
        assert_eq!(
            check_accounting_request(&datagram, b"das-secret"),
            crate::radius::crypto::AccountingCheck::Valid
        );
        let p = Packet::decode(&datagram).unwrap();
        assert_eq!(p.code, Code::DISCONNECT_REQUEST);
        assert!(p.has_message_authenticator());
        assert_eq!(p.get(AttributeType::USER_NAME), Some(&b"alice"[..]));
        assert_eq!(p.get(ACCT_SESSION_ID), Some(&b"S1"[..]));
        assert_eq!(
            p.get(AttributeType::NAS_IP_ADDRESS),
            Some(&[10, 0, 0, 1][..])
        );
        let mut named = request();
        named.nas = "gw1".into();
        let p = Packet::decode(&encode(&named, 1).unwrap()).unwrap();
        assert_eq!(p.get(AttributeType::NAS_IDENTIFIER), Some(&b"gw1"[..]));
    }

    #[test]
    fn only_a_signed_answer_to_this_request_counts() {
        let sent = encode(&request(), 9).unwrap();
        let authenticator: [u8; 16] = sent[4..20].try_into().unwrap();
        let mut nak = Packet {
            code: Code::DISCONNECT_NAK,
            identifier: 9,
            authenticator: [0; 16],
            attributes: vec![],
        };
        nak.push_split(ERROR_CAUSE, &503u32.to_be_bytes());
        let signed =
            crate::radius::crypto::sign_accounting_response(&nak, &authenticator, b"das-secret")
                .unwrap();
        assert_eq!(
            read_answer(&signed, &sent, b"das-secret"),
            Some(Answer::Nak(Some(503)))
        );
        assert_eq!(read_answer(&signed, &sent, b"other"), None);
        let other = encode(&request(), 10).unwrap();
        assert_eq!(read_answer(&signed, &other, b"das-secret"), None);
        assert_eq!(
            Answer::Nak(Some(503)).describe(),
            "Disconnect-NAK, Error-Cause Session-Context-Not-Found (503)"
        );
    }
}
