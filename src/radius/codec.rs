//! The RADIUS wire format (RFC 2865 §3 and §5): hostile bytes in, a typed [`Packet`] out, and
//! replies encoded with their lengths, Message-Authenticator and Response Authenticator set by
//! one function.
//!
//! This module knows nothing of users, tokens or sockets. It reads every byte through a
//! [`Reader`] that cannot overrun, so no datagram can make it panic; the lints below keep it so.
//! Cryptographic helpers (MD5 chains, HMAC-MD5) live in [`super::crypto`]; the numbers the
//! format is made of (codes, attribute types) and its errors in [`super::wire`].
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::fmt;

use super::digest;
pub use super::wire::{AttributeType, Code, DecodeError, EncodeError};

/// RFC 2865 §3: the minimum packet length (the header alone).
pub const HEADER_LEN: usize = 20;
/// RFC 2865 §3 (and RFC 7930 for the 4096 figure): the maximum packet length.
pub const MAX_PACKET_LEN: usize = 4096;
/// RFC 2865 §5: an attribute's value holds at most 253 octets.
pub const MAX_ATTRIBUTE_VALUE: usize = 253;

/// A cursor over untrusted bytes. Every read returns `None` instead of running past the end.
pub struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, offset: 0 }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        self.offset += n;
        Some(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// Takes one byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take_array::<1>().map(|[b]| b)
    }

    /// Takes a big-endian u16.
    pub fn u16_be(&mut self) -> Option<u16> {
        self.take_array::<2>().map(u16::from_be_bytes)
    }

    /// How far into the original buffer the cursor is.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether bytes remain.
    pub fn any_left(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

/// One attribute: its type and raw value (1..=253 octets on the wire; we accept 0 on input).
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type.
    pub typ: AttributeType,
    /// The raw value.
    pub value: Vec<u8>,
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password, hidden or not.
        if self.typ == AttributeType::USER_PASSWORD || self.typ == AttributeType::CHAP_PASSWORD {
            return write!(f, "{:?}=***", self.typ);
        }
        write!(f, "{:?}=0x", self.typ)?;
        for b in &self.value {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// RFC 2865 §5.44 (table of attributes): in an Access-Request these appear at most once.
const SINGULAR_IN_REQUEST: [AttributeType; 4] = [
    AttributeType::USER_NAME,
    AttributeType::USER_PASSWORD,
    AttributeType::CHAP_PASSWORD,
    AttributeType::STATE,
];

/// The bit that tracks `typ` while decoding a request, if it may appear only once.
fn singular_bit(typ: AttributeType) -> Option<u32> {
    SINGULAR_IN_REQUEST
        .iter()
        .position(|t| *t == typ)
        .and_then(|i| 1u32.checked_shl(u32::try_from(i).ok()?))
}

/// A decoded RADIUS packet. Decoding checks structure only; authenticity is checked by
/// [`super::verify`], which is the only way to get a request the engine will act on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// Packet code.
    pub code: Code,
    /// Identifier, used to match replies to requests.
    pub identifier: u8,
    /// Request or Response Authenticator.
    pub authenticator: [u8; 16],
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// Decodes a datagram. Octets past the Length field are padding and ignored (RFC 2865 §3).
    pub fn decode(datagram: &[u8]) -> Result<Packet, DecodeError> {
        let received = datagram.len();
        if received < HEADER_LEN {
            return Err(DecodeError::TooShort { len: received });
        }
        let mut header = Reader::new(datagram);
        let code = Code(header.u8().ok_or(DecodeError::TooShort { len: received })?);
        let identifier = header.u8().ok_or(DecodeError::TooShort { len: received })?;
        let declared = usize::from(
            header
                .u16_be()
                .ok_or(DecodeError::TooShort { len: received })?,
        );
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&declared) {
            return Err(DecodeError::BadLength { declared });
        }
        // RFC 2865 §3: shorter than Length: silently discard.
        let packet = datagram
            .get(..declared)
            .ok_or(DecodeError::Truncated { declared, received })?;
        let mut reader = Reader::new(packet);
        reader
            .take(4)
            .ok_or(DecodeError::TooShort { len: received })?;
        let authenticator = reader
            .take_array::<16>()
            .ok_or(DecodeError::TooShort { len: received })?;

        let mut attributes = Vec::with_capacity(8);
        let mut seen_ma = false;
        // Bit n: a singular attribute of type n (see `SINGULAR_IN_REQUEST`) was seen.
        let mut seen_singular = 0u32;
        let is_request = code == Code::ACCESS_REQUEST;
        while reader.any_left() {
            let offset = reader.offset();
            let typ = reader.u8().ok_or(DecodeError::AttributeTooShort {
                typ: 0,
                offset,
                len: 1,
            })?;
            let len = usize::from(reader.u8().ok_or(DecodeError::AttributeTooShort {
                typ,
                offset,
                len: 1,
            })?);
            if len < 2 {
                return Err(DecodeError::AttributeTooShort { typ, offset, len });
            }
            let value =
                reader
                    .take(len - 2)
                    .ok_or(DecodeError::AttributeOverrun { typ, offset, len })?;
            let typ = AttributeType(typ);
            if typ == AttributeType::MESSAGE_AUTHENTICATOR {
                if value.len() != 16 {
                    return Err(DecodeError::BadMessageAuthenticatorLength { len: value.len() });
                }
                if seen_ma {
                    return Err(DecodeError::DuplicateMessageAuthenticator);
                }
                seen_ma = true;
            }
            if is_request && let Some(bit) = singular_bit(typ) {
                if seen_singular & bit != 0 {
                    return Err(DecodeError::DuplicateAttribute { typ: typ.0 });
                }
                seen_singular |= bit;
            }
            attributes.push(Attribute {
                typ,
                value: value.to_vec(),
            });
        }
        Ok(Packet {
            code,
            identifier,
            authenticator,
            attributes,
        })
    }

    /// The first attribute of a type.
    pub fn get(&self, typ: AttributeType) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// All attributes of a type, in wire order.
    pub fn get_all(&self, typ: AttributeType) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Whether the packet carries a Message-Authenticator.
    pub fn has_message_authenticator(&self) -> bool {
        self.get(AttributeType::MESSAGE_AUTHENTICATOR).is_some()
    }

    /// The octets [`Packet::push_split`] adds for a value of `len` octets: a 2-octet header
    /// per piece of at most 253.
    pub fn split_len(len: usize) -> usize {
        let pieces = len.div_ceil(MAX_ATTRIBUTE_VALUE).max(1);
        len.saturating_add(pieces.saturating_mul(2))
    }

    /// Appends an attribute, splitting a long value over several attributes (RFC 2865 §5.18
    /// allows several Reply-Messages, to be concatenated by the client).
    pub fn push_split(&mut self, typ: AttributeType, value: &[u8]) {
        if value.is_empty() {
            self.attributes.push(Attribute {
                typ,
                value: Vec::new(),
            });
        }
        for chunk in value.chunks(MAX_ATTRIBUTE_VALUE) {
            self.attributes.push(Attribute {
                typ,
                value: chunk.to_vec(),
            });
        }
    }

    /// Encodes the packet as it stands: Length computed, authenticator and attributes written
    /// as given. Replies and requests that need an authenticator computed use
    /// [`Packet::encode_reply`] or [`Packet::encode_request`].
    pub fn encode_raw(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.attributes.len() * 16);
        out.push(self.code.0);
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]); // Length, patched below
        out.extend_from_slice(&self.authenticator);
        for attribute in &self.attributes {
            let len = attribute.value.len();
            if len > MAX_ATTRIBUTE_VALUE {
                return Err(EncodeError::ValueTooLong {
                    typ: attribute.typ.0,
                    len,
                });
            }
            out.push(attribute.typ.0);
            out.push(
                u8::try_from(len + 2).map_err(|_| EncodeError::ValueTooLong {
                    typ: attribute.typ.0,
                    len,
                })?,
            );
            out.extend_from_slice(&attribute.value);
        }
        let len = out.len();
        let len16 = u16::try_from(len).ok().filter(|_| len <= MAX_PACKET_LEN);
        let len16 = len16.ok_or(EncodeError::PacketTooLong { len })?;
        if let Some(field) = out.get_mut(2..4) {
            field.copy_from_slice(&len16.to_be_bytes());
        }
        Ok(out)
    }

    /// Encodes a reply to a request (RFC 2865 §3, RFC 3579 §3.2): a Message-Authenticator is put
    /// first, computed over the packet with the Request Authenticator in place; then the Response
    /// Authenticator = MD5(Code|Identifier|Length|RequestAuth|Attributes|Secret).
    ///
    /// Any Message-Authenticator already in `self.attributes` is dropped: there is exactly one,
    /// and it is first.
    pub fn encode_reply(
        &self,
        request_authenticator: &[u8; 16],
        secret: &[u8],
    ) -> Result<Vec<u8>, EncodeError> {
        let mut reply = Packet {
            code: self.code,
            identifier: self.identifier,
            authenticator: *request_authenticator,
            attributes: Vec::with_capacity(self.attributes.len() + 1),
        };
        reply.attributes.push(Attribute {
            typ: AttributeType::MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        });
        reply.attributes.extend(
            self.attributes
                .iter()
                .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR)
                .cloned(),
        );
        let mut out = reply.encode_raw()?;
        // The Message-Authenticator value sits right after the header and its own 2-octet header.
        let ma = digest::hmac_md5(secret, &out);
        if let Some(field) = out.get_mut(HEADER_LEN + 2..HEADER_LEN + 18) {
            field.copy_from_slice(&ma);
        }
        let response = digest::md5_concat(&[&out, secret]);
        if let Some(field) = out.get_mut(4..HEADER_LEN) {
            field.copy_from_slice(&response);
        }
        Ok(out)
    }

    /// Encodes a RADIUS/1.1 packet (RFC 9765 §4): Reserved-1 zero, the 4-octet Token, then
    /// Reserved-2 (12 zero octets) where the authenticator was, and no Message-Authenticator
    /// (TLS protects the packet; there is no shared secret and no MD5).
    pub fn encode_radius11(&self, token: [u8; 4]) -> Result<Vec<u8>, EncodeError> {
        let mut authenticator = [0u8; 16];
        if let Some(field) = authenticator.get_mut(..4) {
            field.copy_from_slice(&token);
        }
        let packet = Packet {
            code: self.code,
            identifier: 0,
            authenticator,
            attributes: self
                .attributes
                .iter()
                .filter(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR)
                .cloned()
                .collect(),
        };
        packet.encode_raw()
    }

    /// The RADIUS/1.1 Token (RFC 9765 §4): the first four octets of what RADIUS/1.0 calls the
    /// authenticator.
    pub fn token(&self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.authenticator;
        [a, b, c, d]
    }

    /// Encodes a request as a client would: the given Request Authenticator, and, when
    /// `with_message_authenticator`, a Message-Authenticator first (RFC 3579 §3.2). Used by
    /// tests and the benchmark's load generator.
    pub fn encode_request(
        &self,
        secret: &[u8],
        with_message_authenticator: bool,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut request = self.clone();
        request
            .attributes
            .retain(|a| a.typ != AttributeType::MESSAGE_AUTHENTICATOR);
        if with_message_authenticator {
            request.attributes.insert(
                0,
                Attribute {
                    typ: AttributeType::MESSAGE_AUTHENTICATOR,
                    value: vec![0; 16],
                },
            );
        }
        let mut out = request.encode_raw()?;
        if with_message_authenticator {
            let ma = digest::hmac_md5(secret, &out);
            if let Some(field) = out.get_mut(HEADER_LEN + 2..HEADER_LEN + 18) {
                field.copy_from_slice(&ma);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::radius::crypto;

    /// RFC 2865 §7.1: the Access-Request of the PAP example (User-Name "nemo", password
    /// "arctangent", secret "xyzzy5461", NAS-IP-Address 192.168.1.16, NAS-Port 3).
    const RFC2865_7_1: &str = "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a0aee0406c0a80110050600000003";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `split_len` is what `push_split` adds to the encoded packet.
    #[test]
    fn split_len_is_what_push_split_adds() {
        for len in [0, 1, 252, 253, 254, 506, 507, 1000] {
            let mut packet = Packet {
                code: Code::ACCESS_ACCEPT,
                identifier: 1,
                authenticator: [0; 16],
                attributes: vec![],
            };
            packet.push_split(AttributeType::REPLY_MESSAGE, &vec![b'x'; len]);
            let encoded = packet.encode_raw().unwrap();
            assert_eq!(encoded.len() - HEADER_LEN, Packet::split_len(len), "{len}");
        }
    }

    #[test]
    fn decodes_rfc2865_example() {
        let p = Packet::decode(&hex(RFC2865_7_1)).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.identifier, 0);
        assert_eq!(p.get(AttributeType::USER_NAME), Some(&b"nemo"[..]));
        assert_eq!(
            p.get(AttributeType::NAS_IP_ADDRESS),
            Some(&[192, 168, 1, 16][..])
        );
        let hidden = p.get(AttributeType::USER_PASSWORD).unwrap();
        let clear = crypto::unhide_password(hidden, &p.authenticator, b"xyzzy5461").unwrap();
        assert_eq!(clear, b"arctangent");
    }

    /// Issue 12: two User-Names (or passwords, or States) in one Access-Request are malformed;
    /// in other packets (a Proxy-State-like repeat) attributes may repeat.
    #[test]
    fn issue_12_duplicate_singular_attributes_are_malformed() {
        for typ in [1u8, 2, 3, 24] {
            let mut packet = Packet {
                code: Code::ACCESS_REQUEST,
                identifier: 1,
                authenticator: [7; 16],
                attributes: vec![],
            };
            packet.push_split(AttributeType(typ), b"one");
            packet.push_split(AttributeType(typ), b"two");
            let bytes = packet.encode_raw().unwrap();
            assert_eq!(
                Packet::decode(&bytes),
                Err(DecodeError::DuplicateAttribute { typ }),
                "type {typ}"
            );
            packet.code = Code::ACCESS_ACCEPT;
            let bytes = packet.encode_raw().unwrap();
            assert!(Packet::decode(&bytes).is_ok(), "type {typ} in a reply");
        }
    }

    #[test]
    fn encode_raw_round_trips_known_packet() {
        let bytes = hex(RFC2865_7_1);
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.encode_raw().unwrap(), bytes);
    }

    #[test]
    fn rejects_short_and_bad_lengths() {
        assert_eq!(
            Packet::decode(&[1; 19]),
            Err(DecodeError::TooShort { len: 19 })
        );
        let mut b = hex(RFC2865_7_1);
        b[2] = 0;
        b[3] = 19;
        assert_eq!(
            Packet::decode(&b),
            Err(DecodeError::BadLength { declared: 19 })
        );
        b[2] = 0x10;
        b[3] = 1;
        assert_eq!(
            Packet::decode(&b),
            Err(DecodeError::BadLength { declared: 4097 })
        );
        let b = hex(RFC2865_7_1);
        assert_eq!(
            Packet::decode(&b[..40]),
            Err(DecodeError::Truncated {
                declared: 56,
                received: 40
            })
        );
    }

    #[test]
    fn trailing_bytes_are_padding() {
        let mut b = hex(RFC2865_7_1);
        let p = Packet::decode(&b).unwrap();
        b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Packet::decode(&b).unwrap(), p);
    }

    #[test]
    fn rejects_bad_attribute_lengths() {
        let mut b = hex(RFC2865_7_1);
        b[21] = 1; // User-Name length 1
        assert!(matches!(
            Packet::decode(&b),
            Err(DecodeError::AttributeTooShort {
                typ: 1,
                offset: 20,
                len: 1
            })
        ));
        let mut b = hex(RFC2865_7_1);
        let last = b.len() - 5; // NAS-Port's length octet
        b[last] = 9;
        assert!(matches!(
            Packet::decode(&b),
            Err(DecodeError::AttributeOverrun { typ: 5, .. })
        ));
    }

    #[test]
    fn reply_round_trips_and_verifies() {
        let req = Packet::decode(&hex(RFC2865_7_1)).unwrap();
        let mut reply = Packet {
            code: Code::ACCESS_CHALLENGE,
            identifier: req.identifier,
            authenticator: [0; 16],
            attributes: vec![],
        };
        reply.push_split(AttributeType::REPLY_MESSAGE, &[b'x'; 600]);
        reply.push_split(AttributeType::STATE, b"abc");
        let bytes = reply
            .encode_reply(&req.authenticator, b"xyzzy5461")
            .unwrap();
        let back = Packet::decode(&bytes).unwrap();
        assert_eq!(back.attributes[0].typ, AttributeType::MESSAGE_AUTHENTICATOR);
        let messages: Vec<_> = back.get_all(AttributeType::REPLY_MESSAGE).collect();
        assert_eq!(
            messages.iter().map(|m| m.len()).collect::<Vec<_>>(),
            vec![253, 253, 94]
        );
        assert!(crypto::verify_response(
            &bytes,
            &req.authenticator,
            b"xyzzy5461"
        ));
        assert!(!crypto::verify_response(
            &bytes,
            &req.authenticator,
            b"wrong"
        ));
    }

    #[test]
    fn oversized_reply_is_an_error() {
        let mut reply = Packet {
            code: Code::ACCESS_ACCEPT,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![],
        };
        reply.push_split(AttributeType::REPLY_MESSAGE, &[b'x'; 5000]);
        assert!(matches!(
            reply.encode_reply(&[0; 16], b"s"),
            Err(EncodeError::PacketTooLong { .. })
        ));
    }

    #[test]
    fn decoding_never_panics_on_prefixes_and_mutations() {
        let b = hex(RFC2865_7_1);
        for n in 0..b.len() {
            let _ = Packet::decode(&b[..n]);
        }
        for i in 0..b.len() {
            for v in [0u8, 1, 2, 0x7f, 0xff] {
                let mut m = b.clone();
                m[i] = v;
                let _ = Packet::decode(&m);
            }
        }
    }

    #[test]
    fn radius11_header_carries_the_token_and_no_message_authenticator() {
        let mut reply = Packet {
            code: Code::ACCESS_ACCEPT,
            identifier: 77,
            authenticator: [9; 16],
            attributes: vec![],
        };
        reply.push_split(AttributeType::MESSAGE_AUTHENTICATOR, &[0; 16]);
        reply.push_split(AttributeType::REPLY_MESSAGE, b"ok");
        let wire = reply.encode_radius11([1, 2, 3, 4]).unwrap();
        // RFC 9765 §4: Code, Reserved-1 = 0, Length, Token, Reserved-2 = 12 zeros.
        assert_eq!(&wire[..4], &[2, 0, 0, 24]);
        assert_eq!(&wire[4..8], &[1, 2, 3, 4]);
        assert_eq!(&wire[8..20], &[0; 12]);
        assert_eq!(&wire[20..], &[18, 4, b'o', b'k']);
        assert_eq!(Packet::decode(&wire).unwrap().token(), [1, 2, 3, 4]);
    }
}
