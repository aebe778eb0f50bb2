//! Reading the password field: the OTP at its end (LinOTP `PrependPin`) and, under
//! `login_mode=append`, the channel keyword after a comma. Pure functions; which tokens the
//! parts are checked against is `engine.rs`'s and `otp_check.rs`'s business.

use crate::secret::Secret;
use crate::store::TokenKind;

/// Splits `password` into (PIN, OTP) where the OTP is the last `digits` characters, all ASCII
/// digits (LinOTP `PrependPin`).
pub(super) fn split_pin_otp(password: &Secret, digits: u32) -> Option<(Secret, &[u8])> {
    let bytes = password.expose();
    let split = bytes.len().checked_sub(usize::try_from(digits).ok()?)?;
    let (pin, otp) = bytes.split_at_checked(split)?;
    otp.iter()
        .all(u8::is_ascii_digit)
        .then(|| (Secret::new(pin), otp))
}

/// `password,sms` / `password,email` (login_mode=append; the keywords are configurable): the
/// password and the token type asked for. Anything else is the password as it is.
pub(super) fn split_channel_keyword(
    password: &Secret,
    keywords: &[(String, TokenKind)],
) -> Option<(Secret, TokenKind)> {
    let bytes = password.expose();
    keywords.iter().find_map(|(keyword, kind)| {
        let suffix = format!(",{keyword}");
        bytes
            .strip_suffix(suffix.as_bytes())
            .map(|rest| (Secret::new(rest), *kind))
    })
}
