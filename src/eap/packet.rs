//! The EAP packet (RFC 3748 §4): code, identifier, length, and for requests and responses a
//! type and its data. Decoding is strict and never panics: a length field that overruns the
//! octets received, or is shorter than a header, is malformed; octets past the length are
//! padding and ignored (RFC 3748 §4.1).

/// EAP codes (RFC 3748 §4).
pub mod code {
    /// Request (server to peer).
    pub const REQUEST: u8 = 1;
    /// Response (peer to server).
    pub const RESPONSE: u8 = 2;
    /// Success.
    pub const SUCCESS: u8 = 3;
    /// Failure.
    pub const FAILURE: u8 = 4;
}

/// EAP method types (IANA "Method Types").
pub mod kind {
    /// Identity (RFC 3748 §5.1).
    pub const IDENTITY: u8 = 1;
    /// Notification (RFC 3748 §5.2).
    pub const NOTIFICATION: u8 = 2;
    /// Legacy Nak (RFC 3748 §5.3.1): the types the peer wants instead.
    pub const NAK: u8 = 3;
    /// Generic Token Card (RFC 3748 §5.6).
    pub const GTC: u8 = 6;
    /// EAP-TTLS (RFC 5281).
    pub const TTLS: u8 = 21;
    /// PEAP (draft-josefsson-pppext-eap-tls-eap).
    pub const PEAP: u8 = 25;
    /// EAP-TLV / Extensions, PEAP's result indication.
    pub const TLV: u8 = 33;
}

/// The EAP header: code, identifier, length.
pub const HEADER_LEN: usize = 4;

/// A decoded EAP packet, borrowing the octets it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eap<'a> {
    /// [`code`].
    pub code: u8,
    /// The identifier a response echoes.
    pub identifier: u8,
    /// The method type (requests and responses only).
    pub kind: Option<u8>,
    /// What follows the type (requests and responses), up to the length field.
    pub data: &'a [u8],
}

/// Why octets are not an EAP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer octets than a header, or than the length field says.
    Truncated,
    /// A length field shorter than the header, or a request or response without a type.
    BadLength,
    /// A code RFC 3748 does not define.
    UnknownCode,
}

impl Malformed {
    /// A short text for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadLength => "bad length",
            Malformed::UnknownCode => "unknown code",
        }
    }
}

impl<'a> Eap<'a> {
    /// Decodes `octets` (the EAP-Message attributes joined, for RADIUS).
    pub fn decode(octets: &'a [u8]) -> Result<Eap<'a>, Malformed> {
        let header = octets.get(..HEADER_LEN).ok_or(Malformed::Truncated)?;
        let (code, identifier) = match header {
            [code, identifier, ..] => (*code, *identifier),
            _ => return Err(Malformed::Truncated),
        };
        let length = match header {
            [_, _, high, low] => usize::from(u16::from_be_bytes([*high, *low])),
            _ => return Err(Malformed::Truncated),
        };
        if length < HEADER_LEN {
            return Err(Malformed::BadLength);
        }
        let body = octets.get(HEADER_LEN..length).ok_or(Malformed::Truncated)?;
        match code {
            code::REQUEST | code::RESPONSE => {
                let (kind, data) = body.split_first().ok_or(Malformed::BadLength)?;
                Ok(Eap {
                    code,
                    identifier,
                    kind: Some(*kind),
                    data,
                })
            }
            code::SUCCESS | code::FAILURE if body.is_empty() => Ok(Eap {
                code,
                identifier,
                kind: None,
                data: &[],
            }),
            code::SUCCESS | code::FAILURE => Err(Malformed::BadLength),
            _ => Err(Malformed::UnknownCode),
        }
    }
}

/// Encodes a request or response of `kind` carrying `data`. Data longer than a packet can say
/// is cut (the callers' data is bounded far below 64 KiB: fragments, prompts).
pub fn encode(code: u8, identifier: u8, kind: u8, data: &[u8]) -> Vec<u8> {
    let data = data
        .get(..usize::from(u16::MAX) - HEADER_LEN - 1)
        .unwrap_or(data);
    let length = u16::try_from(HEADER_LEN + 1 + data.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(usize::from(length));
    out.extend_from_slice(&[code, identifier]);
    out.extend_from_slice(&length.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(data);
    out
}

/// A request to the peer.
pub fn request(identifier: u8, kind: u8, data: &[u8]) -> Vec<u8> {
    encode(code::REQUEST, identifier, kind, data)
}

/// EAP-Success (RFC 3748 §4.2): the identifier of the response it answers.
pub fn success(identifier: u8) -> Vec<u8> {
    vec![code::SUCCESS, identifier, 0, 4]
}

/// EAP-Failure (RFC 3748 §4.2).
pub fn failure(identifier: u8) -> Vec<u8> {
    vec![code::FAILURE, identifier, 0, 4]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_identity_decodes_and_padding_is_ignored() {
        let octets = [2, 7, 0, 10, 1, b'a', b'l', b'i', b'c', b'e', 0xff, 0xff];
        let eap = Eap::decode(&octets).unwrap();
        assert_eq!(eap.code, code::RESPONSE);
        assert_eq!(eap.identifier, 7);
        assert_eq!(eap.kind, Some(kind::IDENTITY));
        assert_eq!(eap.data, b"alice");
    }

    #[test]
    fn truncated_and_lying_lengths_are_malformed() {
        assert_eq!(Eap::decode(&[2, 1, 0]), Err(Malformed::Truncated));
        // The length says 20, three octets follow the header.
        assert_eq!(
            Eap::decode(&[2, 1, 0, 20, 1, b'a', b'b']),
            Err(Malformed::Truncated)
        );
        assert_eq!(Eap::decode(&[2, 1, 0, 3, 1]), Err(Malformed::BadLength));
        // A response without a type.
        assert_eq!(Eap::decode(&[2, 1, 0, 4]), Err(Malformed::BadLength));
        // A Success with data.
        assert_eq!(Eap::decode(&[3, 1, 0, 5, 0]), Err(Malformed::BadLength));
        assert_eq!(Eap::decode(&[9, 1, 0, 4]), Err(Malformed::UnknownCode));
    }

    #[test]
    fn encode_round_trips() {
        let octets = request(3, kind::GTC, b"Password: ");
        let eap = Eap::decode(&octets).unwrap();
        assert_eq!(
            (eap.code, eap.identifier, eap.kind, eap.data),
            (code::REQUEST, 3, Some(kind::GTC), &b"Password: "[..])
        );
        assert_eq!(Eap::decode(&success(4)).unwrap().code, code::SUCCESS);
    }
}
