//! Yubico OTP: the 44 modhex characters a YubiKey in OTP mode types — its public id (12
//! characters, the token's name in clear) and one AES-128 block (32 characters) holding its
//! private id, usage and session counters, a timestamp, random octets and a CRC-16.
//!
//! Pure functions: [`check`] opens an OTP with a token's key and private id and says which
//! counter it carries; whether that counter is new enough, and consuming it durably, is the
//! engine's and the store's business (a YubiKey token's counter is one past its last OTP's,
//! like a HOTP token's). The layout is Yubico's ("YubiKey OTP", the `yubikey-val` server and
//! `yubico-c`'s `ykparse`): uid(6) ‖ useCtr(2, LE) ‖ tstp(3, LE) ‖ sessionCtr(1) ‖ rnd(2) ‖
//! crc(2, LE), the CRC being ISO 13239's, whose residue over the whole block is 0xf0b8.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use aes::Aes128;
use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};

/// Modhex: the hex digits 0–f as the keys a YubiKey types the same on every keyboard layout.
const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";

/// The length of an OTP: 12 characters of public id, 32 of encrypted block.
pub const OTP_LEN: usize = 44;

/// The length of a public id (6 octets, 12 modhex characters).
pub const PUBLIC_ID_LEN: usize = 12;

/// The length of a YubiKey token's seed: the AES key (16 octets), then the private id (6).
pub const SEED_LEN: usize = 22;

/// Whether every character is a modhex character (lowercase, as a YubiKey types it).
pub fn is_modhex(text: &[u8]) -> bool {
    text.iter().all(|c| MODHEX.contains(c))
}

/// `octets` in modhex.
pub fn modhex_encode(octets: &[u8]) -> String {
    let digit = |n: u8| char::from(*MODHEX.get(usize::from(n & 0x0f)).unwrap_or(&b'c'));
    octets
        .iter()
        .flat_map(|b| [digit(b >> 4), digit(*b)])
        .collect()
}

/// Modhex (upper or lower case) as octets; `None` for an odd length or another character.
pub fn modhex_decode(text: &[u8]) -> Option<Vec<u8>> {
    let value = |c: &u8| {
        MODHEX
            .iter()
            .position(|m| *m == c.to_ascii_lowercase())
            .and_then(|p| u8::try_from(p).ok())
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some((value(hi)? << 4) | value(lo)?),
            _ => None,
        })
        .collect()
}

/// The CRC-16 of ISO 13239 (reflected 0x8408, initial 0xffff), not inverted.
fn crc16(octets: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for b in octets {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            let carry = crc & 1 != 0;
            crc >>= 1;
            if carry {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// The counter an OTP carries: its usage counter (at power-up) times 65536 plus its session
/// counter (per press), so a later press always carries a larger one.
pub fn counter_of(usage: u16, session: u8) -> u64 {
    (u64::from(usage) << 16) | u64::from(session)
}

/// Opens `otp` (44 modhex characters) with a YubiKey token's `seed` (AES key ‖ private id)
/// and `public_id`: its counter ([`counter_of`]) when the public id is the token's, the
/// block decrypts to a right CRC and carries the token's private id; `None` otherwise.
pub fn check(otp: &[u8], seed: &[u8], public_id: &str) -> Option<u64> {
    if otp.len() != OTP_LEN {
        return None;
    }
    let (public, block) = otp.split_at_checked(PUBLIC_ID_LEN)?;
    if !public.eq_ignore_ascii_case(public_id.as_bytes()) {
        return None;
    }
    let (key, private_id) = seed.split_at_checked(16)?;
    if private_id.len() != 6 {
        return None;
    }
    let mut plain = GenericArray::clone_from_slice(&modhex_decode(block)?);
    Aes128::new_from_slice(key).ok()?.decrypt_block(&mut plain);
    if crc16(&plain) != 0xf0b8 {
        return None;
    }
    let uid = plain.get(..6)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(uid, private_id)) {
        return None;
    }
    let usage = u16::from_le_bytes([*plain.get(6)?, *plain.get(7)?]);
    let session = *plain.get(11)?;
    Some(counter_of(usage, session))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn modhex_round_trips() {
        assert_eq!(modhex_encode(&hex("0123456789abcdef")), "cbdefghijklnrtuv");
        assert_eq!(
            modhex_decode(b"CBDEFGHIJKLNRTUV").unwrap(),
            hex("0123456789abcdef")
        );
        assert!(modhex_decode(b"cbx").is_none());
        assert!(modhex_decode(b"ca").is_none());
    }

    /// yubiotp's doctest: key "0123456789abcdef", uid 0123456789ab, session 5, timestamp
    /// 0x0153f8, counter 0, random 0x1234, public id "cclngiuv" (a short one).
    #[test]
    fn yubiotp_doctest_vector() {
        let mut seed = b"0123456789abcdef".to_vec();
        seed.extend(hex("0123456789ab"));
        let otp = b"cclngiuvttkhthcilurtkerbjnnkljfkjccklkhl";
        let (public, block) = otp.split_at(8);
        // `check` wants a 12-character public id: test the block the same way.
        let mut plain = GenericArray::clone_from_slice(&modhex_decode(block).unwrap());
        Aes128::new_from_slice(&seed[..16])
            .unwrap()
            .decrypt_block(&mut plain);
        assert_eq!(crc16(&plain), 0xf0b8);
        assert_eq!(&plain[..6], &seed[16..]);
        assert_eq!(public, b"cclngiuv");
        assert_eq!(u16::from_le_bytes([plain[6], plain[7]]), 5);
    }

    /// Yubico's test vector (yubico-c `ykparse` tests / the OTP spec): AES key
    /// ecde18dbe76fbd0c33330f1c354871db, private id 8792ebfe26cc, usage 0x13, session 0,
    /// timestamp 0x24c8b4, random 0xc63c; public id vvvvvvcucrlc (ours).
    #[test]
    fn decrypts_and_checks() {
        let key = hex("ecde18dbe76fbd0c33330f1c354871db");
        let uid = hex("8792ebfe26cc");
        let mut plain = uid.clone();
        plain.extend([0x13, 0x00, 0xb4, 0xc8, 0x24, 0x00, 0x3c, 0xc6]);
        let crc = !crc16(&plain);
        plain.extend(crc.to_le_bytes());
        let mut block = GenericArray::clone_from_slice(&plain);
        aes::cipher::BlockEncrypt::encrypt_block(
            &Aes128::new_from_slice(&key).unwrap(),
            &mut block,
        );
        let otp = format!("vvvvvvcucrlc{}", modhex_encode(&block));
        let mut seed = key.clone();
        seed.extend(&uid);
        assert_eq!(
            check(otp.as_bytes(), &seed, "vvvvvvcucrlc"),
            Some(counter_of(0x13, 0))
        );
        // Another public id, another private id, a flipped bit: refused.
        assert_eq!(check(otp.as_bytes(), &seed, "vvvvvvcucrlb"), None);
        let mut other = seed.clone();
        other[21] ^= 1;
        assert_eq!(check(otp.as_bytes(), &other, "vvvvvvcucrlc"), None);
        let mut flipped = otp.into_bytes();
        flipped[20] = if flipped[20] == b'c' { b'b' } else { b'c' };
        assert_eq!(check(&flipped, &seed, "vvvvvvcucrlc"), None);
        assert!(counter_of(1, 255) < counter_of(2, 0));
    }
}
