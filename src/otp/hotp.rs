//! HOTP (RFC 4226): HMAC over an 8-octet big-endian counter, dynamically truncated to
//! `digits` decimal digits. HMAC-SHA1 as RFC 4226 says, or HMAC-SHA256/-SHA512 as RFC 6238
//! allows for TOTP and hardware tokens' seed files ask for (the truncation is the same: the
//! low nibble of the last octet picks four octets).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::store::HashAlgorithm;

/// The HMAC of `message` under `key` with `algorithm` (also a PSKC file's MAC).
pub(crate) fn hmac(algorithm: HashAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match algorithm {
        HashAlgorithm::Sha1 => Hmac::<Sha1>::new_from_slice(key)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
        HashAlgorithm::Sha256 => Hmac::<Sha256>::new_from_slice(key)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
        HashAlgorithm::Sha512 => Hmac::<Sha512>::new_from_slice(key)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
    }
    .unwrap_or_default()
}

/// The HOTP (HMAC-SHA1) value for `counter`, zero-padded to `digits` digits (6 to 9).
pub fn hotp(seed: &[u8], counter: u64, digits: u32) -> String {
    hotp_with(HashAlgorithm::Sha1, seed, counter, digits)
}

/// The HOTP value for `counter` with `algorithm`'s HMAC, zero-padded to `digits` digits (6
/// to 9).
pub fn hotp_with(algorithm: HashAlgorithm, seed: &[u8], counter: u64, digits: u32) -> String {
    let h = hmac(algorithm, seed, &counter.to_be_bytes());
    // RFC 4226 §5.3: the low nibble of the last octet selects 4 octets.
    let Some(offset) = h.last().map(|b| usize::from(b & 0x0f)) else {
        return String::new();
    };
    let Some(&[a, b, c, d]) = h.get(offset..offset + 4) else {
        return String::new();
    };
    let code = u32::from_be_bytes([a & 0x7f, b, c, d]);
    let digits = digits.clamp(6, 9);
    format!(
        "{:0width$}",
        code % 10u32.pow(digits),
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_appendix_b_sha256_sha512() {
        // RFC 6238 Appendix B: the SHA-256 seed is 32 octets, the SHA-512 one 64.
        let seed32 = b"12345678901234567890123456789012";
        let seed64 = b"1234567890123456789012345678901234567890123456789012345678901234";
        let cases = [
            (59, "46119246", "90693936"),
            (1_111_111_109, "68084774", "25091201"),
            (1_234_567_890, "91819424", "93441116"),
            (20_000_000_000, "77737706", "47863826"),
        ];
        for (time, sha256, sha512) in cases {
            let step = crate::otp::totp_step(time, 30);
            assert_eq!(hotp_with(HashAlgorithm::Sha256, seed32, step, 8), sha256);
            assert_eq!(hotp_with(HashAlgorithm::Sha512, seed64, step, 8), sha512);
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *want);
        }
    }

    #[test]
    fn linotp_test_key() {
        // linotp-behaviour.md §8: key AD8EABE2… c0..5
        let key: Vec<u8> = (0..20)
            .map(|i| {
                u8::from_str_radix(
                    &"AD8EABE235FC57C815B26CEF3709075580B44738"[2 * i..2 * i + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        let got: Vec<String> = (0..6).map(|c| hotp(&key, c, 6)).collect();
        assert_eq!(
            got,
            ["870581", "793334", "088491", "013126", "818771", "454594"]
        );
    }
}
