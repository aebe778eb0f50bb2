//! PEAPv0 (draft-kamath-pppext-peapv0, as Windows and wpa_supplicant speak it) with inner
//! EAP-GTC: the handshake through [`super::tls`], then inner EAP through the tunnel.
//!
//! PEAPv0 strips the inner EAP header (code, identifier, length) except on Identity requests
//! (FreeRADIUS sends those whole and every peer takes them) and EAP-TLV (the result
//! indication). Once the handshake is done tessera asks the inner identity, then a GTC request
//! asks for the password; when the engine challenges, a second GTC request carries the
//! challenge's text and its response is the code. The engine's Accept is told to the peer in
//! a Result TLV (success); its answer ends the conversation with EAP-Success. There is no
//! crypto binding (PEAPv0 peers make it optional).

use super::gtc;
use super::packet::{self, code, kind};
use super::tls::{Received, Tunnel};
use super::{Conversation, Phase};
use super::{Login, Step, Verdict};
use crate::secret::Secret;

/// The Result TLV (mandatory bit set), length 2.
const RESULT_TLV: [u8; 4] = [0x80, 0x03, 0x00, 0x02];
const RESULT_SUCCESS: [u8; 2] = [0, 1];

/// How far the inner method is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    /// The handshake is going on.
    Handshake,
    /// The inner Identity request is out.
    Identity { identifier: u8 },
    /// A GTC request is out.
    Gtc { user: String, identifier: u8 },
    /// The success Result TLV is out.
    Result { identifier: u8 },
}

/// A PEAP conversation's tunnel and inner method.
pub struct Peap {
    /// The TLS tunnel.
    pub tunnel: Tunnel,
    inner: Inner,
}

impl Peap {
    /// Right after the peer accepted PEAP.
    pub fn new(tunnel: Tunnel) -> Peap {
        Peap {
            tunnel,
            inner: Inner::Handshake,
        }
    }
}

fn this(conversation: &mut Conversation) -> Option<&mut Peap> {
    match &mut conversation.phase {
        Phase::Peap(p) => Some(p),
        _ => None,
    }
}

/// Sends what the tunnel has to say (an empty request when nothing).
fn flush(conversation: &mut Conversation) -> Step {
    let Some(peap) = this(conversation) else {
        return Step::Failure("not PEAP");
    };
    let data = match peap.tunnel.flush() {
        Ok(Some(data)) => data,
        Ok(None) => Tunnel::ack(),
        Err(_) => return Step::Failure("TLS write failed"),
    };
    let id = conversation.next_identifier();
    Step::Send(packet::request(id, kind::PEAP, &data))
}

/// Writes an inner packet into the tunnel and sends it.
fn send_inner(conversation: &mut Conversation, inner: &[u8]) -> Step {
    let Some(peap) = this(conversation) else {
        return Step::Failure("not PEAP");
    };
    if peap.tunnel.write(inner).is_err() {
        return Step::Failure("TLS write failed");
    }
    flush(conversation)
}

/// One PEAP response from the peer.
pub fn receive(conversation: &mut Conversation, data: &[u8]) -> Step {
    let Some(peap) = this(conversation) else {
        return Step::Failure("not PEAP");
    };
    match peap.tunnel.receive(data) {
        Err(error) => {
            tracing::info!(%error, "PEAP: the tunnel failed");
            Step::Failure("TLS failed")
        }
        Ok(Received::Fragment) => {
            let id = conversation.next_identifier();
            Step::Send(packet::request(id, kind::PEAP, &Tunnel::ack()))
        }
        Ok(Received::Ack) => match peap.tunnel.next_fragment() {
            Some(fragment) => {
                let id = conversation.next_identifier();
                Step::Send(packet::request(id, kind::PEAP, &fragment))
            }
            None => Step::Failure("an acknowledgement of nothing"),
        },
        Ok(Received::Message) if peap.tunnel.is_handshaking() => flush(conversation),
        Ok(Received::Message) if peap.inner == Inner::Handshake => {
            // The handshake is done: ask the inner identity, whole (with its header).
            let identifier = 0;
            peap.inner = Inner::Identity { identifier };
            let request = packet::request(identifier, kind::IDENTITY, &[]);
            send_inner(conversation, &request)
        }
        Ok(Received::Message) => {
            let plaintext = peap.tunnel.plaintext();
            if plaintext.is_empty() {
                return flush(conversation);
            }
            inner(conversation, &plaintext)
        }
    }
}

/// An inner response, whole or without its header: (identifier, type, data).
fn parse_inner(octets: &[u8], expected: u8) -> Option<(u8, u8, &[u8])> {
    if let Ok(eap) = packet::Eap::decode(octets)
        && eap.code == code::RESPONSE
        && usize::from(u16::from_be_bytes([*octets.get(2)?, *octets.get(3)?])) == octets.len()
    {
        return Some((eap.identifier, eap.kind?, eap.data));
    }
    let (typ, data) = octets.split_first()?;
    Some((expected, *typ, data))
}

/// An inner response.
fn inner(conversation: &mut Conversation, plaintext: &[u8]) -> Step {
    let Some(peap) = this(conversation) else {
        return Step::Failure("not PEAP");
    };
    let expected = match &peap.inner {
        Inner::Identity { identifier }
        | Inner::Gtc { identifier, .. }
        | Inner::Result { identifier } => *identifier,
        Inner::Handshake => return Step::Failure("inner data during the handshake"),
    };
    let Some((identifier, typ, data)) = parse_inner(plaintext, expected) else {
        return Step::Failure("malformed inner EAP");
    };
    if identifier != expected {
        return Step::Failure("an inner response to another request");
    }
    match (&peap.inner, typ) {
        (Inner::Identity { .. }, kind::IDENTITY) => {
            let user = String::from_utf8_lossy(data).into_owned();
            let identifier = expected.wrapping_add(1);
            peap.inner = Inner::Gtc { user, identifier };
            send_gtc(conversation, gtc::PROMPT)
        }
        (Inner::Gtc { user, .. }, kind::GTC) => Step::Check(Login {
            user: user.clone(),
            password: Secret::new(data.to_vec()),
        }),
        (Inner::Result { .. }, kind::TLV) => {
            if data.get(..4) == Some(&RESULT_TLV[..]) && data.get(4..6) == Some(&RESULT_SUCCESS[..])
            {
                Step::Success
            } else {
                Step::Failure("the peer's result is not success")
            }
        }
        _ => Step::Failure("an inner response out of turn, or another inner method"),
    }
}

/// An inner GTC request, without its header (PEAPv0).
fn send_gtc(conversation: &mut Conversation, text: &str) -> Step {
    let mut inner = vec![kind::GTC];
    inner.extend_from_slice(text.as_bytes());
    send_inner(conversation, &inner)
}

/// The engine's verdict on the inner credentials.
pub fn resume(conversation: &mut Conversation, verdict: Verdict) -> Step {
    let Some(peap) = this(conversation) else {
        return Step::Failure("not PEAP");
    };
    let Inner::Gtc { identifier, .. } = &mut peap.inner else {
        return Step::Failure("a verdict out of turn");
    };
    *identifier = identifier.wrapping_add(1);
    let identifier = *identifier;
    match verdict {
        Verdict::Accept => {
            peap.inner = Inner::Result { identifier };
            let mut tlv = RESULT_TLV.to_vec();
            tlv.extend_from_slice(&RESULT_SUCCESS);
            send_inner(conversation, &packet::request(identifier, kind::TLV, &tlv))
        }
        Verdict::Challenge { message } => send_gtc(conversation, gtc::prompt(&message)),
        Verdict::Reject => Step::Failure("rejected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_responses_with_and_without_header() {
        // Whole: Response/Identity "bob".
        assert_eq!(
            parse_inner(&[2, 5, 0, 8, 1, b'b', b'o', b'b'], 5),
            Some((5, kind::IDENTITY, &b"bob"[..]))
        );
        // Without the header: GTC "1234".
        assert_eq!(
            parse_inner(&[6, b'1', b'2', b'3', b'4'], 9),
            Some((9, kind::GTC, &b"1234"[..]))
        );
        assert_eq!(parse_inner(&[], 1), None);
    }
}
