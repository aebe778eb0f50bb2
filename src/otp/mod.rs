//! One-time password algorithms: HOTP (RFC 4226) and TOTP (RFC 6238), HMAC-SHA1 based.
//!
//! Pure functions over a seed and a counter; which counter values are acceptable (windows,
//! replay, challenges) is the engine's business, not this module's.

pub mod hotp;
pub mod otpauth;
pub mod totp;

pub use hotp::hotp;
pub use totp::totp_step;
