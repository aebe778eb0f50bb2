//! `otpauth://` URIs (the Key Uri Format authenticator apps scan) and the base32 they need,
//! and finding two consecutive OTPs for a resync.

use super::hotp::hotp_with;
use crate::store::HashAlgorithm;

/// RFC 4648 base32, no padding (what authenticator apps expect in `secret=`).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What an authenticator app needs to know about a token.
pub struct OtpAuth<'a> {
    /// `hotp` or `totp`.
    pub kind: &'a str,
    /// Issuer shown in the app (e.g. `tessera`).
    pub issuer: &'a str,
    /// Account shown in the app (e.g. `alice@local`).
    pub account: &'a str,
    /// The seed.
    pub seed: &'a [u8],
    /// Digits.
    pub digits: u32,
    /// HOTP: the next counter. Ignored for TOTP.
    pub counter: u64,
    /// TOTP: the time step. Ignored for HOTP.
    pub period: u64,
    /// The HMAC hash.
    pub algorithm: HashAlgorithm,
}

impl OtpAuth<'_> {
    /// The URI, e.g. `otpauth://totp/tessera:alice%40local?secret=…&issuer=tessera&…`.
    pub fn uri(&self) -> String {
        let mut uri = format!(
            "otpauth://{}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}",
            self.kind,
            percent_encode(self.issuer),
            percent_encode(self.account),
            base32(self.seed),
            percent_encode(self.issuer),
            self.algorithm.as_str().to_uppercase(),
            self.digits
        );
        if self.kind == "hotp" {
            uri.push_str(&format!("&counter={}", self.counter));
        } else {
            uri.push_str(&format!("&period={}", self.period));
        }
        uri
    }
}

/// Finds `c` in `start..start + window` such that `otp1` is HOTP(c) and `otp2` is HOTP(c+1):
/// two consecutive codes prove possession of a token that drifted out of the window.
pub fn find_consecutive(
    algorithm: HashAlgorithm,
    seed: &[u8],
    digits: u32,
    start: u64,
    window: u64,
    otp1: &str,
    otp2: &str,
) -> Option<u64> {
    let hotp = |c: u64| hotp_with(algorithm, seed, c, digits);
    (start..start.saturating_add(window))
        .find(|c| hotp(*c) == otp1 && hotp(c.saturating_add(1)) == otp2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_rfc4648_vectors() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foob"), "MZXW6YQ");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn uri_shapes() {
        let t = OtpAuth {
            kind: "totp",
            issuer: "tessera",
            account: "alice@local",
            seed: b"12345678901234567890",
            digits: 6,
            counter: 0,
            period: 30,
            algorithm: HashAlgorithm::Sha1,
        };
        assert_eq!(
            t.uri(),
            "otpauth://totp/tessera:alice@local?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=tessera&algorithm=SHA1&digits=6&period=30"
        );
        let h = OtpAuth {
            kind: "hotp",
            account: "bob smith",
            counter: 5,
            ..t
        };
        assert!(
            h.uri().starts_with("otpauth://hotp/tessera:bob%20smith?"),
            "{}",
            h.uri()
        );
        assert!(h.uri().ends_with("&counter=5"));
    }

    #[test]
    fn resync_finds_consecutive_codes() {
        let seed = b"12345678901234567890";
        // RFC 4226 Appendix D: counters 7 and 8 are 162583 and 399871.
        assert_eq!(
            find_consecutive(HashAlgorithm::Sha1, seed, 6, 0, 1000, "162583", "399871"),
            Some(7)
        );
        assert_eq!(
            find_consecutive(HashAlgorithm::Sha1, seed, 6, 0, 1000, "399871", "162583"),
            None
        );
        assert_eq!(
            find_consecutive(HashAlgorithm::Sha1, seed, 6, 8, 1000, "162583", "399871"),
            None
        );
    }
}
