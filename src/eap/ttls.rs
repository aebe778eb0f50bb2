//! EAP-TTLS v0 (RFC 5281): the handshake through [`super::tls`], then the inner method in
//! Diameter AVPs (§10) through the tunnel.
//!
//! - Inner PAP (§11.2.5): User-Name and User-Password AVPs. One field (password+code); when
//!   the engine challenges, the challenge's text goes back in a Reply-Message AVP and the
//!   peer's next User-Password is the answer (peers that implement it; wpa_supplicant does
//!   not, and fails the login).
//! - Inner EAP (§11.2.1) with EAP-GTC: the peer's inner EAP-Response/Identity names the user;
//!   a GTC request asks for the password, and when the engine challenges a second GTC request
//!   carries the challenge's text and its response is the code.
//!
//! The outer identity is logged, never used: the inner identity decides.

use super::gtc;
use super::packet::{self, Eap, code, kind};
use super::tls::{Received, Tunnel};
use super::{Conversation, Phase};
use super::{Login, Step, Verdict};
use crate::secret::Secret;

/// RADIUS attribute numbers used as AVP codes (RFC 5281 §10.1).
mod avp {
    pub const USER_NAME: u32 = 1;
    pub const USER_PASSWORD: u32 = 2;
    pub const REPLY_MESSAGE: u32 = 18;
    pub const EAP_MESSAGE: u32 = 79;
}

/// The M (mandatory) flag.
const FLAG_MANDATORY: u8 = 0x40;
/// The V (vendor) flag.
const FLAG_VENDOR: u8 = 0x80;

/// One AVP: code, vendor (0: none) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp<'a> {
    /// The code.
    pub code: u32,
    /// The vendor, 0 without the V flag.
    pub vendor: u32,
    /// Whether the M flag is set.
    pub mandatory: bool,
    /// The data.
    pub data: &'a [u8],
}

/// Decodes AVPs (RFC 5281 §10.1): each padded to four octets; a length that overruns the
/// octets, or is shorter than its header, makes the whole list malformed.
pub fn decode_avps(mut octets: &[u8]) -> Result<Vec<Avp<'_>>, &'static str> {
    let mut out = vec![];
    while !octets.is_empty() {
        let (header, rest) = octets
            .split_first_chunk::<8>()
            .ok_or("truncated AVP header")?;
        let [c0, c1, c2, c3, flags, l0, l1, l2] = *header;
        let code = u32::from_be_bytes([c0, c1, c2, c3]);
        let length = usize::try_from(u32::from_be_bytes([0, l0, l1, l2])).unwrap_or(usize::MAX);
        let (vendor, header_len, rest) = if flags & FLAG_VENDOR != 0 {
            let (vendor, rest) = rest.split_first_chunk::<4>().ok_or("truncated vendor")?;
            (u32::from_be_bytes(*vendor), 12, rest)
        } else {
            (0, 8, rest)
        };
        let data_len = length
            .checked_sub(header_len)
            .ok_or("AVP length too short")?;
        let data = rest.get(..data_len).ok_or("AVP length overruns")?;
        out.push(Avp {
            code,
            vendor,
            mandatory: flags & FLAG_MANDATORY != 0,
            data,
        });
        let padded = data_len.div_ceil(4) * 4;
        octets = rest.get(padded..).unwrap_or_default();
    }
    Ok(out)
}

/// Encodes one AVP without vendor, with the M flag, padded.
pub fn encode_avp(code: u32, data: &[u8]) -> Vec<u8> {
    let length = u32::try_from(8 + data.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut out = Vec::with_capacity(8 + data.len() + 3);
    out.extend_from_slice(&code.to_be_bytes());
    out.push(FLAG_MANDATORY);
    out.extend_from_slice(length.get(1..).unwrap_or_default());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

/// Which inner method, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    /// Nothing through the tunnel yet.
    Waiting,
    /// Inner PAP: a check or a Reply-Message challenge is out.
    Pap { user: String },
    /// Inner EAP: the identity is known, a GTC request is out.
    Gtc { user: String, identifier: u8 },
}

/// A TTLS conversation's tunnel and inner method.
pub struct Ttls {
    /// The TLS tunnel.
    pub tunnel: Tunnel,
    inner: Inner,
}

impl Ttls {
    /// Right after the peer accepted TTLS.
    pub fn new(tunnel: Tunnel) -> Ttls {
        Ttls {
            tunnel,
            inner: Inner::Waiting,
        }
    }

    /// `eap-ttls/pap`, `eap-ttls/gtc`, or `eap-ttls` before the inner method is known.
    pub fn label(&self) -> &'static str {
        match self.inner {
            Inner::Waiting => "eap-ttls",
            Inner::Pap { .. } => "eap-ttls/pap",
            Inner::Gtc { .. } => "eap-ttls/gtc",
        }
    }
}

fn this(conversation: &mut Conversation) -> Option<&mut Ttls> {
    match &mut conversation.phase {
        Phase::Ttls(t) => Some(t),
        _ => None,
    }
}

/// Sends what the tunnel has to say, or an empty request when it has nothing (TLS 1.3: the
/// peer's Finished arrived; the empty request lets the peer start its inner method).
fn flush(conversation: &mut Conversation) -> Step {
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    let data = match ttls.tunnel.flush() {
        Ok(Some(data)) => data,
        Ok(None) => Tunnel::ack(),
        Err(_) => return Step::Failure("TLS write failed"),
    };
    let id = conversation.next_identifier();
    Step::Send(packet::request(id, kind::TTLS, &data))
}

/// One TTLS response from the peer.
pub fn receive(conversation: &mut Conversation, data: &[u8]) -> Step {
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    match ttls.tunnel.receive(data) {
        Err(error) => {
            tracing::info!(%error, "EAP-TTLS: the tunnel failed");
            Step::Failure("TLS failed")
        }
        Ok(Received::Fragment) => {
            let id = conversation.next_identifier();
            Step::Send(packet::request(id, kind::TTLS, &Tunnel::ack()))
        }
        Ok(Received::Ack) => match ttls.tunnel.next_fragment() {
            Some(fragment) => {
                let id = conversation.next_identifier();
                Step::Send(packet::request(id, kind::TTLS, &fragment))
            }
            None => Step::Failure("an acknowledgement of nothing"),
        },
        Ok(Received::Message) if ttls.tunnel.is_handshaking() => flush(conversation),
        Ok(Received::Message) => {
            let plaintext = ttls.tunnel.plaintext();
            if plaintext.is_empty() {
                return flush(conversation);
            }
            inner(conversation, &plaintext)
        }
    }
}

/// The AVPs the peer tunnelled.
fn inner(conversation: &mut Conversation, plaintext: &[u8]) -> Step {
    let Ok(avps) = decode_avps(plaintext) else {
        return Step::Failure("malformed AVPs");
    };
    let find = |code: u32| {
        avps.iter()
            .find(|a| a.code == code && a.vendor == 0)
            .map(|a| a.data)
    };
    if let Some(eap) = find(avp::EAP_MESSAGE) {
        return inner_eap(conversation, eap);
    }
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    let (Some(password), user) = (find(avp::USER_PASSWORD), find(avp::USER_NAME)) else {
        return Step::Failure("no inner method tessera speaks");
    };
    let user = match (&ttls.inner, user) {
        (_, Some(user)) => String::from_utf8_lossy(user).into_owned(),
        // The answer to a Reply-Message challenge may come without User-Name.
        (Inner::Pap { user }, None) => user.clone(),
        _ => return Step::Failure("inner PAP without User-Name"),
    };
    ttls.inner = Inner::Pap { user: user.clone() };
    // RFC 5281 §11.2.5: the password may be padded with NULs to a multiple of 16.
    let end = password.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    Step::Check(Login {
        user,
        password: Secret::new(password.get(..end).unwrap_or_default().to_vec()),
    })
}

/// Inner EAP: Identity, then GTC.
fn inner_eap(conversation: &mut Conversation, octets: &[u8]) -> Step {
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    let Ok(eap) = Eap::decode(octets) else {
        return Step::Failure("malformed inner EAP");
    };
    if eap.code != code::RESPONSE {
        return Step::Failure("inner EAP not a response");
    }
    match (&ttls.inner, eap.kind) {
        (Inner::Waiting, Some(kind::IDENTITY)) => {
            let user = String::from_utf8_lossy(eap.data).into_owned();
            let identifier = eap.identifier.wrapping_add(1);
            ttls.inner = Inner::Gtc { user, identifier };
            send_gtc(conversation, identifier, gtc::PROMPT)
        }
        (Inner::Gtc { user, identifier }, Some(kind::GTC)) if eap.identifier == *identifier => {
            Step::Check(Login {
                user: user.clone(),
                password: Secret::new(eap.data.to_vec()),
            })
        }
        _ => Step::Failure("an inner EAP response out of turn, or another inner method"),
    }
}

/// Writes an inner EAP-Request/GTC into the tunnel and sends it.
fn send_gtc(conversation: &mut Conversation, identifier: u8, text: &str) -> Step {
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    let request = packet::request(identifier, kind::GTC, text.as_bytes());
    if ttls
        .tunnel
        .write(&encode_avp(avp::EAP_MESSAGE, &request))
        .is_err()
    {
        return Step::Failure("TLS write failed");
    }
    flush(conversation)
}

/// The engine's verdict on the inner credentials.
pub fn resume(conversation: &mut Conversation, verdict: Verdict) -> Step {
    let Some(ttls) = this(conversation) else {
        return Step::Failure("not TTLS");
    };
    match (verdict, &mut ttls.inner) {
        (Verdict::Accept, _) => Step::Success,
        (Verdict::Reject, _) => Step::Failure("rejected"),
        (Verdict::Challenge { message }, Inner::Gtc { identifier, .. }) => {
            *identifier = identifier.wrapping_add(1);
            let identifier = *identifier;
            send_gtc(conversation, identifier, gtc::prompt(&message))
        }
        (Verdict::Challenge { message }, Inner::Pap { .. }) => {
            // §11.2.5: at least a Reply-Message, the challenge's text.
            if ttls
                .tunnel
                .write(&encode_avp(avp::REPLY_MESSAGE, message.as_bytes()))
                .is_err()
            {
                return Step::Failure("TLS write failed");
            }
            flush(conversation)
        }
        (Verdict::Challenge { .. }, Inner::Waiting) => Step::Failure("a verdict before a method"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avps_round_trip_with_padding_and_vendor() {
        let mut octets = encode_avp(avp::USER_NAME, b"alice");
        octets.extend(encode_avp(avp::USER_PASSWORD, b"wonderland\0\0\0\0\0\0"));
        // A vendor AVP (V flag, vendor 311).
        octets.extend([
            0,
            0,
            0,
            1,
            FLAG_VENDOR,
            0,
            0,
            14,
            0,
            0,
            1,
            55,
            b'x',
            b'y',
            0,
            0,
        ]);
        let avps = decode_avps(&octets).unwrap();
        assert_eq!(avps.len(), 3);
        assert_eq!((avps[0].code, avps[0].data), (1, &b"alice"[..]));
        assert_eq!(avps[1].data.len(), 16);
        assert_eq!((avps[2].vendor, avps[2].data), (311, &b"xy"[..]));
    }

    #[test]
    fn lying_avp_lengths_are_malformed() {
        // Length 4: shorter than the header.
        assert!(decode_avps(&[0, 0, 0, 1, 0x40, 0, 0, 4]).is_err());
        // Length 200 with four octets of data.
        assert!(decode_avps(&[0, 0, 0, 1, 0x40, 0, 0, 200, 1, 2, 3, 4]).is_err());
        assert!(decode_avps(&[0, 0, 0]).is_err());
        // Vendor flag without a vendor.
        assert!(decode_avps(&[0, 0, 0, 1, 0xc0, 0, 0, 12]).is_err());
    }
}
