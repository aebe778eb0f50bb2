//! Reading the password field: the OTP at its end (LinOTP `PrependPin`) and, under
//! `login_mode=append`, the channel keyword after a comma. Pure functions; which tokens the
//! parts are checked against is `engine.rs`'s and `otp_check.rs`'s business.

use crate::otp::yubico;
use crate::secret::Secret;
use crate::store::{Token, TokenKind};

/// Splits `password` into (PIN, OTP) where the OTP is what `token` shows at the end (LinOTP
/// `PrependPin`): its last `digits` characters, all ASCII digits, or for a YubiKey the last
/// 44, all modhex (what it types after the password in one field).
pub(super) fn split_pin_otp<'a>(password: &'a Secret, token: &Token) -> Option<(Secret, &'a [u8])> {
    let bytes = password.expose();
    let length = match token.kind {
        TokenKind::Yubikey => yubico::OTP_LEN,
        _ => usize::try_from(token.digits).ok()?,
    };
    let split = bytes.len().checked_sub(length)?;
    let (pin, otp) = bytes.split_at_checked(split)?;
    let shaped = match token.kind {
        TokenKind::Yubikey => yubico::is_modhex(otp),
        _ => otp.iter().all(u8::is_ascii_digit),
    };
    shaped.then(|| (Secret::new(pin), otp))
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
