//! One-time password algorithms: HOTP (RFC 4226) and TOTP (RFC 6238), HMAC-SHA1/-SHA256/
//! -SHA512 based, and Yubico OTP (a YubiKey's 44 modhex characters, [`yubico`]).
//!
//! Pure functions over a seed and a counter; which counter values are acceptable (windows,
//! replay, challenges) is the engine's business, not this module's.

pub mod hotp;
pub mod otpauth;
pub mod totp;
pub mod yubico;

pub use hotp::{hotp, hotp_with};
pub use totp::totp_step;
