//! RADIUS's cryptography: the MD5 chains that hide User-Password (RFC 2865 §5.2), the Response
//! Authenticator (RFC 2865 §3) and the HMAC-MD5 Message-Authenticator (RFC 3579 §3.2).
//!
//! These functions work on bytes and shared secrets only. Comparisons of authenticators are
//! constant-time.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use subtle::ConstantTimeEq;

use super::codec::{AttributeType, HEADER_LEN, Reader};
use super::digest::{hmac_md5, md5_concat};

/// Why a User-Password could not be recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// RFC 2865 §5.2: the hidden value is 16..=128 octets, a multiple of 16.
    #[error("User-Password of {len} octets is not a multiple of 16 within 16..=128")]
    BadLength {
        /// The hidden value's length.
        len: usize,
    },
}

/// Recovers a User-Password (RFC 2865 §5.2): p_i = c_i XOR MD5(S + c_(i-1)), c_0 = the Request
/// Authenticator. Trailing NUL padding is removed.
pub fn unhide_password(
    hidden: &[u8],
    authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, PasswordError> {
    let len = hidden.len();
    if len == 0 || len > 128 || !len.is_multiple_of(16) {
        return Err(PasswordError::BadLength { len });
    }
    let mut clear = Vec::with_capacity(len);
    let mut previous: &[u8] = authenticator;
    for block in hidden.chunks(16) {
        let key = md5_concat(&[secret, previous]);
        clear.extend(block.iter().zip(key.iter()).map(|(c, k)| c ^ k));
        previous = block;
    }
    while clear.last() == Some(&0) {
        clear.pop();
    }
    Ok(clear)
}

/// Hides an MS-MPPE-Send-Key or MS-MPPE-Recv-Key (RFC 2548 §2.4.2-3): a two-octet salt
/// (high bit set), then the key's length and the key, padded to 16, each block XORed with
/// b_1 = MD5(S + R + salt), b_i = MD5(S + c_(i-1)), R the Request Authenticator.
pub fn hide_mppe_key(
    key: &[u8],
    salt: [u8; 2],
    authenticator: &[u8; 16],
    secret: &[u8],
) -> Vec<u8> {
    let key = key.get(..240).unwrap_or(key);
    let mut plain = Vec::with_capacity(key.len() + 16);
    plain.push(u8::try_from(key.len()).unwrap_or(u8::MAX));
    plain.extend_from_slice(key);
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    let [high, low] = salt;
    let salt = [high | 0x80, low];
    let mut out = salt.to_vec();
    let mut previous = md5_concat(&[secret, authenticator, &salt]);
    for block in plain.chunks(16) {
        let cipher: Vec<u8> = block
            .iter()
            .zip(previous.iter())
            .map(|(p, b)| p ^ b)
            .collect();
        previous = md5_concat(&[secret, &cipher]);
        out.extend_from_slice(&cipher);
    }
    out
}

/// Hides a User-Password as a client does (RFC 2865 §5.2). Passwords longer than 128 octets
/// are truncated, as the RFC allows no more.
pub fn hide_password(clear: &[u8], authenticator: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let clear = clear.get(..128).unwrap_or(clear);
    let padded_len = clear.len().div_ceil(16).max(1) * 16;
    let mut padded = clear.to_vec();
    padded.resize(padded_len, 0);
    let mut out: Vec<u8> = Vec::with_capacity(padded_len);
    let mut previous = *authenticator;
    for block in padded.chunks(16) {
        let key = md5_concat(&[secret, &previous]);
        let hidden: Vec<u8> = block.iter().zip(key.iter()).map(|(p, k)| p ^ k).collect();
        previous.copy_from_slice(&hidden);
        out.extend_from_slice(&hidden);
    }
    out
}

/// Checks a request's Message-Authenticator (RFC 3579 §3.2): HMAC-MD5 over the packet (up to
/// its Length) with the Message-Authenticator value zeroed. Returns `None` when the packet
/// carries none, `Some(valid)` otherwise. `datagram` must already have passed
/// [`super::codec::Packet::decode`].
pub fn check_request_message_authenticator(datagram: &[u8], secret: &[u8]) -> Option<bool> {
    let mut header = Reader::new(datagram);
    header.take(2)?;
    let declared = usize::from(header.u16_be()?);
    let packet = datagram.get(..declared)?;
    let mut reader = Reader::new(packet.get(HEADER_LEN..)?);
    while reader.any_left() {
        let offset = HEADER_LEN + reader.offset();
        let typ = reader.u8()?;
        let len = usize::from(reader.u8()?);
        let value = reader.take(len.checked_sub(2)?)?;
        if AttributeType(typ) == AttributeType::MESSAGE_AUTHENTICATOR && value.len() == 16 {
            let mut copy = packet.to_vec();
            copy.get_mut(offset + 2..offset + 18)?.fill(0);
            let expected = hmac_md5(secret, &copy);
            return Some(bool::from(expected.ct_eq(value)));
        }
    }
    None
}

/// Checks an Accounting-Request (RFC 2866 §3): its Request Authenticator must be
/// MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret), and a
/// Message-Authenticator, when present, HMAC-MD5 over the packet with both the authenticator
/// and its own value zeroed (RFC 5176 §3.5's rule for requests whose authenticator is a
/// digest, as FreeRADIUS signs and checks accounting). `datagram` must already have passed
/// [`super::codec::Packet::decode`].
pub fn check_accounting_request(datagram: &[u8], secret: &[u8]) -> AccountingCheck {
    let declared = Reader::new(datagram)
        .take(4)
        .and_then(|h| h.get(2..4))
        .and_then(|l| <[u8; 2]>::try_from(l).ok())
        .map_or(0, |l| usize::from(u16::from_be_bytes(l)));
    let (Some(packet), Some(header), Some(given), Some(attributes)) = (
        datagram.get(..declared),
        datagram.get(..4),
        datagram.get(4..HEADER_LEN),
        datagram.get(HEADER_LEN..declared),
    ) else {
        return AccountingCheck::BadAuthenticator;
    };
    let expected = md5_concat(&[header, &[0u8; 16], attributes, secret]);
    if !bool::from(expected.ct_eq(given)) {
        return AccountingCheck::BadAuthenticator;
    }
    let mut zeroed = packet.to_vec();
    if let Some(field) = zeroed.get_mut(4..HEADER_LEN) {
        field.fill(0);
    }
    match check_request_message_authenticator(&zeroed, secret) {
        Some(false) => AccountingCheck::BadMessageAuthenticator,
        Some(true) | None => AccountingCheck::Valid,
    }
}

/// What [`check_accounting_request`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountingCheck {
    /// Both checks passed (or no Message-Authenticator was sent).
    Valid,
    /// The Request Authenticator is wrong: another secret, or forged.
    BadAuthenticator,
    /// The Message-Authenticator is wrong.
    BadMessageAuthenticator,
}

/// Signs an Accounting-Request as a NAS does (RFC 2866 §3), with a Message-Authenticator
/// first when `with_message_authenticator`. Used by tests.
pub fn sign_accounting_request(
    packet: &super::codec::Packet,
    secret: &[u8],
    with_message_authenticator: bool,
) -> Result<Vec<u8>, super::wire::EncodeError> {
    let mut zeroed = packet.clone();
    zeroed.authenticator = [0; 16];
    let mut out = zeroed.encode_request(secret, with_message_authenticator)?;
    let authenticator = md5_concat(&[&out, secret]);
    if let Some(field) = out.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(&authenticator);
    }
    Ok(out)
}

/// Encodes an Accounting-Response to an Accounting-Request: a Message-Authenticator first,
/// computed with the authenticator field zeroed (as for the request it answers: FreeRADIUS
/// signs and checks accounting replies so), then the Response Authenticator =
/// MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret).
pub fn sign_accounting_response(
    reply: &super::codec::Packet,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, super::wire::EncodeError> {
    let mut zeroed = reply.clone();
    zeroed.authenticator = [0; 16];
    let mut out = zeroed.encode_request(secret, true)?;
    if let Some(field) = out.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(request_authenticator);
    }
    let response = md5_concat(&[&out, secret]);
    if let Some(field) = out.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(&response);
    }
    Ok(out)
}

/// Checks an Accounting-Response as a NAS does: its Response Authenticator, and its
/// Message-Authenticator (computed with the authenticator field zeroed) when present. Used by
/// tests.
pub fn verify_accounting_response(
    reply: &[u8],
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> bool {
    verify_reply(reply, request_authenticator, &[0; 16], secret)
}

/// Checks a reply's Response Authenticator and Message-Authenticator, as a client does. Used
/// by tests and the load generator.
pub fn verify_response(reply: &[u8], request_authenticator: &[u8; 16], secret: &[u8]) -> bool {
    verify_reply(reply, request_authenticator, request_authenticator, secret)
}

/// A reply's Response Authenticator (MD5 over the reply with the request's authenticator in
/// its place), then its Message-Authenticator when present, computed with `in_place` in the
/// authenticator field: the request's authenticator for Access replies (RFC 3579), zeros for
/// Accounting-Response (RFC 5080).
fn verify_reply(
    reply: &[u8],
    request_authenticator: &[u8; 16],
    in_place: &[u8; 16],
    secret: &[u8],
) -> bool {
    let (Some(header), Some(auth), Some(rest)) = (
        reply.get(..4),
        reply.get(4..HEADER_LEN),
        reply.get(HEADER_LEN..),
    ) else {
        return false;
    };
    let expected = md5_concat(&[header, request_authenticator, rest, secret]);
    if !bool::from(expected.ct_eq(auth)) {
        return false;
    }
    let mut checked = reply.to_vec();
    if let Some(field) = checked.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(in_place);
    }
    check_request_message_authenticator(&checked, secret).unwrap_or(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_every_legal_length() {
        let auth = [7u8; 16];
        for n in 1usize..=128 {
            let clear: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = hide_password(&clear, &auth, b"secret");
            assert_eq!(hidden.len(), n.div_ceil(16) * 16);
            assert_eq!(unhide_password(&hidden, &auth, b"secret").unwrap(), clear);
        }
    }

    #[test]
    fn accounting_requests_are_checked_with_their_secret() {
        use super::super::codec::{Attribute, Packet};
        use super::super::wire::Code;
        let packet = Packet {
            code: Code::ACCOUNTING_REQUEST,
            identifier: 9,
            authenticator: [0; 16],
            attributes: vec![Attribute {
                typ: AttributeType(40),
                value: vec![0, 0, 0, 1],
            }],
        };
        for with_ma in [false, true] {
            let signed = sign_accounting_request(&packet, b"s3cret", with_ma).unwrap();
            assert_eq!(
                check_accounting_request(&signed, b"s3cret"),
                AccountingCheck::Valid
            );
            assert_eq!(
                check_accounting_request(&signed, b"other"),
                AccountingCheck::BadAuthenticator
            );
        }
        // A Message-Authenticator signed with another secret, the authenticator right.
        let mut zeroed = packet.clone();
        zeroed.authenticator = [0; 16];
        let mut forged = zeroed.encode_request(b"other", true).unwrap();
        let authenticator = md5_concat(&[&forged, b"s3cret"]);
        forged
            .get_mut(4..20)
            .unwrap()
            .copy_from_slice(&authenticator);
        assert_eq!(
            check_accounting_request(&forged, b"s3cret"),
            AccountingCheck::BadMessageAuthenticator
        );
    }

    #[test]
    fn accounting_responses_verify_as_a_nas_checks_them() {
        use super::super::codec::Packet;
        use super::super::wire::Code;
        let reply = Packet {
            code: Code::ACCOUNTING_RESPONSE,
            identifier: 9,
            authenticator: [0; 16],
            attributes: vec![],
        };
        let request_authenticator = [5u8; 16];
        let signed = sign_accounting_response(&reply, &request_authenticator, b"s3cret").unwrap();
        assert!(verify_accounting_response(
            &signed,
            &request_authenticator,
            b"s3cret"
        ));
        assert!(!verify_accounting_response(&signed, &[6; 16], b"s3cret"));
        assert!(!verify_accounting_response(
            &signed,
            &request_authenticator,
            b"other"
        ));
    }

    #[test]
    fn password_bad_lengths() {
        assert_eq!(
            unhide_password(&[0; 15], &[0; 16], b"s"),
            Err(PasswordError::BadLength { len: 15 })
        );
        assert_eq!(
            unhide_password(&[0; 144], &[0; 16], b"s"),
            Err(PasswordError::BadLength { len: 144 })
        );
        assert_eq!(
            unhide_password(&[], &[0; 16], b"s"),
            Err(PasswordError::BadLength { len: 0 })
        );
    }

    #[test]
    fn hmac_md5_rfc2104_vector() {
        // RFC 2104 test vector 2: key "Jefe", data "what do ya want for nothing?"
        let mac = hmac_md5(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            [
                0x75, 0x0c, 0x78, 0x3e, 0x6a, 0xb0, 0xb5, 0x03, 0xea, 0xa8, 0x6e, 0x31, 0x0a, 0x5d,
                0xb7, 0x38
            ]
        );
    }
}
