//! The two digests RADIUS builds on: MD5 over concatenated parts and HMAC-MD5 keyed with the
//! shared secret. Below both the codec (which signs what it encodes) and `crypto.rs` (which
//! hides passwords and checks authenticators); it knows nothing of packets.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// MD5 over the concatenation of `parts`.
pub fn md5_concat(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-MD5 keyed with the shared secret.
pub fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    match Hmac::<Md5>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 16],
    }
}
