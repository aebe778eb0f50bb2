//! [`Reason`]: why the engine decided as it did, as a type. The log line and the audit row
//! show its text ([`fmt::Display`]); the decision metric counts it under a short, fixed
//! [`Reason::label`], so no count, serial or provider message ever becomes a label value.

use std::fmt;

use crate::failure::LocalResource;

/// Why a request got its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The User-Name was refused before any lookup (control characters …).
    RefusedUserName(String),
    /// Nothing left of the User-Name.
    EmptyUserName,
    /// A directory could not answer, or the engine failed inside (the error's text).
    Internal(String),
    /// No directory knows the name.
    UnknownUser,
    /// The directory password was wrong.
    WrongPassword,
    /// The token PIN was wrong.
    WrongPin,
    /// The OTP (alone, under otppin=2, or after a right PIN) was wrong.
    WrongOtp,
    /// A valid OTP came with a wrong PIN.
    WrongPinWithValidOtp,
    /// The identity is in back-off from the request's origin: refused without a check.
    BackOff {
        /// Consecutive failed passwords from the origin.
        failures: u32,
        /// How much longer the window lasts.
        left_ms: i64,
    },
    /// The identity is past its ceiling of failures from all origins: refused without a
    /// check for a few seconds after the last one.
    BackOffCeiling {
        /// Failed passwords from all origins.
        failures: u32,
        /// How much longer the window lasts.
        left_ms: i64,
    },
    /// A failed password could not be recorded (the store does not commit): no password is
    /// checked until a write succeeds again, so the answer tells nothing about it.
    FailuresUnrecorded,
    /// No token, and no autoenrollment policy applies.
    NoAutoenrollmentPolicy,
    /// Autoenrollment found no mobile number / e-mail address (the words for it).
    MissingAddress(&'static str),
    /// The user's only tokens belong to an earlier account of the same name.
    EarlierAccount(Vec<String>),
    /// Every token of the user is disabled.
    AllTokensDisabled,
    /// The PIN alone for a HOTP/TOTP token, which has no challenge.
    PinWithoutOtp,
    /// The token is locked (fail counter at maximum).
    TokenLocked,
    /// A right code for a challenge that was answered, or a counter already used.
    Replay,
    /// Accepted.
    OtpValid,
    /// The same request, resent to another node after this store's Accept: Accept again.
    Retransmit,
    /// A wrong answer to a challenge.
    WrongOtpForChallenge,
    /// The State is unknown, expired or closed.
    ChallengeGone,
    /// The challenge's tokens were disabled or deleted.
    ChallengeTokenGone,
    /// A challenge went out to this many tokens.
    OtpSent(usize),
    /// A challenge of the blocking timeout was returned; nothing was sent.
    AlreadySubmitted,
    /// Too many challenges in the window.
    TriggerLimit {
        /// Challenges in the window.
        sent: u32,
        /// The window in seconds.
        window_seconds: u64,
    },
    /// No provider delivered the code (their failures).
    DeliveryFailed(String),
    /// No code went out because of tessera's own failure (descriptors, memory …), not the
    /// providers': refused whatever `delivery_failmode` says.
    DeliveryFailedLocally {
        /// What of tessera's own failed.
        resource: LocalResource,
        /// The failures, with their causes.
        failures: String,
    },
    /// The delivery of a challenge this request joined failed.
    ConcurrentDeliveryFailed,
    /// The delivery of a challenge this request joined did not finish in time.
    ConcurrentDeliveryUnfinished,
    /// A concurrent autoenrollment this request joined was undone.
    ConcurrentEnrollmentUndone,
    /// A token was enrolled for this request; then this.
    Enrolled(Box<Reason>),
    /// A token enrolled for this request was removed again because of this.
    EnrollmentUndone(Box<Reason>),
    /// `mfa=password_only`: accepted on the directory password alone.
    PasswordOnly,
    /// `grace_seconds`: accepted on the password within the grace after a two-factor login.
    Grace,
    /// `passthru`: forwarded to this legacy server (the user has no token).
    Passthru(String),
    /// `passthru` not done: the typed name is another spelling (`DOMAIN\user`, `user@suffix`)
    /// of a user the legacy server would take it for, and that user holds a token or is not
    /// passed through.
    PassthruRefused {
        /// The legacy server.
        upstream: String,
        /// The identity the name is a spelling of.
        identity: String,
        /// Whether that identity holds a token (else: no passthru policy sends it there).
        holds_token: bool,
    },
    /// `delivery_failmode=password_only`: no code could be delivered (why), accepted on the
    /// password or PIN just checked.
    DeliveryFailedPasswordOnly(Box<Reason>),
    /// A reply attribute cannot be sent, so the Accept became a Reject.
    ReplyAttribute {
        /// The attribute.
        attribute: String,
        /// Why it cannot be sent.
        error: String,
    },
    /// The reply attributes together do not fit in one reply, so the Accept became a Reject.
    ReplyTooLong {
        /// The octets the message and attributes take.
        len: usize,
        /// The octets the reply has room for.
        limit: usize,
    },
}

impl Reason {
    /// The decision metric's label: one per kind of reason, never a value.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::RefusedUserName(_) => "refused user name",
            Reason::EmptyUserName => "empty user name",
            Reason::Internal(text) if text.starts_with("directory unavailable") => {
                "directory unavailable"
            }
            Reason::Internal(_) => "internal error",
            Reason::UnknownUser => "unknown user",
            Reason::WrongPassword => "wrong password",
            Reason::WrongPin => "wrong pin",
            Reason::WrongOtp => "wrong otp",
            Reason::WrongPinWithValidOtp => "wrong pin with a valid otp",
            Reason::BackOff { .. } => "back-off",
            Reason::BackOffCeiling { .. } => "back-off ceiling",
            Reason::FailuresUnrecorded => "failures unrecorded",
            Reason::NoAutoenrollmentPolicy => "no token and no autoenrollment policy",
            Reason::MissingAddress(_) => "autoenrollment failed",
            Reason::EarlierAccount(_) => "tokens of an earlier account",
            Reason::AllTokensDisabled => "all tokens disabled",
            Reason::PinWithoutOtp => "pin without otp",
            Reason::TokenLocked => "token locked",
            Reason::Replay => "otp already used",
            Reason::OtpValid => "otp valid",
            Reason::Retransmit => "retransmit of an accepted request",
            Reason::WrongOtpForChallenge => "wrong otp for challenge",
            Reason::ChallengeGone => "unknown, expired or closed challenge",
            Reason::ChallengeTokenGone => "challenge token disabled or deleted",
            Reason::OtpSent(_) => "otp sent",
            Reason::AlreadySubmitted => "otp already submitted",
            Reason::TriggerLimit { .. } => "trigger limit reached",
            Reason::DeliveryFailed(_)
            | Reason::ConcurrentDeliveryFailed
            | Reason::ConcurrentDeliveryUnfinished
            | Reason::ConcurrentEnrollmentUndone => "delivery failed",
            Reason::DeliveryFailedLocally { .. } => "delivery failed locally",
            Reason::Enrolled(_) => "token enrolled",
            Reason::EnrollmentUndone(_) => "autoenrollment undone",
            Reason::ReplyAttribute { .. } => "reply attribute cannot be sent",
            Reason::ReplyTooLong { .. } => "reply too long",
            Reason::PasswordOnly => "password only",
            Reason::Grace => "grace",
            Reason::Passthru(_) => "passthru",
            Reason::PassthruRefused { .. } => "passthru refused",
            Reason::DeliveryFailedPasswordOnly(_) => "delivery failed, password only",
        }
    }
}

impl Reason {
    /// The text of a reason that carries no values; `None` for one that does.
    fn fixed_text(&self) -> Option<&'static str> {
        Some(match self {
            Reason::FailuresUnrecorded => {
                "not checked: the store could not record a failed password (it does not \
                 commit); no password is checked until a write succeeds"
            }
            Reason::NoAutoenrollmentPolicy => {
                "user has no token and no autoenrollment policy applies"
            }
            Reason::AllTokensDisabled => "all tokens of the user are disabled",
            Reason::PinWithoutOtp => "pin without otp for a hotp/totp token",
            Reason::TokenLocked => "token locked (fail counter at maximum)",
            Reason::Retransmit => "otp valid (retransmit of an accepted request)",
            Reason::Replay => "otp already used (replay)",
            Reason::AlreadySubmitted => "otp already submitted (blocking timeout), nothing sent",
            Reason::ConcurrentDeliveryFailed => "delivery failed (sent by a concurrent request)",
            Reason::ConcurrentDeliveryUnfinished => {
                "delivery by a concurrent request did not finish in time"
            }
            Reason::ConcurrentEnrollmentUndone => {
                "autoenrollment by a concurrent request was undone"
            }
            Reason::PasswordOnly => "password only (mfa=password_only)",
            Reason::Grace => {
                "password within the re-authentication grace (same NAS and Calling-Station-Id)"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.fixed_text() {
            return f.write_str(text);
        }
        match self {
            Reason::RefusedUserName(text) | Reason::Internal(text) => f.write_str(text),
            Reason::BackOff { failures, left_ms } => write!(
                f,
                "back-off: not checked, {failures} failed passwords from this origin, \
                 {left_ms} ms left"
            ),
            Reason::BackOffCeiling { failures, left_ms } => write!(
                f,
                "back-off ceiling: not checked, {failures} failed passwords from all origins, \
                 {left_ms} ms left"
            ),
            Reason::MissingAddress(what) => write!(f, "autoenrollment failed: missing {what}"),
            Reason::EarlierAccount(serials) => write!(
                f,
                "the user's tokens ({}) belong to an earlier account of the same name",
                serials.join(" ")
            ),
            Reason::OtpSent(tokens) => write!(f, "otp sent to {tokens} token(s)"),
            Reason::TriggerLimit {
                sent,
                window_seconds,
            } => write!(
                f,
                "trigger limit reached ({sent} codes in {window_seconds}s)"
            ),
            Reason::DeliveryFailed(failures) => write!(f, "delivery failed: {failures}"),
            Reason::DeliveryFailedLocally { resource, failures } => write!(
                f,
                "delivery failed on tessera's own {resource}, not the provider's (no fail mode): {failures}"
            ),
            Reason::Enrolled(then) => write!(f, "token enrolled; {then}"),
            Reason::EnrollmentUndone(why) => write!(f, "autoenrollment undone: {why}"),
            Reason::Passthru(upstream) => write!(
                f,
                "no token: forwarded to the legacy server {upstream} (passthru)"
            ),
            Reason::PassthruRefused {
                upstream,
                identity,
                holds_token,
            } => write!(
                f,
                "not forwarded to the legacy server {upstream}: the name is a spelling of {identity}, {}",
                if *holds_token {
                    "who holds a token"
                } else {
                    "whom no passthru policy sends there"
                }
            ),
            Reason::DeliveryFailedPasswordOnly(why) => write!(
                f,
                "accepted on the password alone (delivery_failmode=password_only): {why}"
            ),
            Reason::ReplyAttribute { attribute, error } => {
                write!(f, "reply attribute {attribute} cannot be sent: {error}")
            }
            Reason::ReplyTooLong { len, limit } => write!(
                f,
                "reply too long: the reply attributes take {len} octets, one reply has room \
                 for {limit}"
            ),
            other => f.write_str(other.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hold_no_values_and_texts_keep_them() {
        let limit = Reason::TriggerLimit {
            sent: 5,
            window_seconds: 600,
        };
        assert_eq!(limit.label(), "trigger limit reached");
        assert_eq!(limit.to_string(), "trigger limit reached (5 codes in 600s)");
        let enrolled = Reason::Enrolled(Box::new(Reason::OtpSent(1)));
        assert_eq!(enrolled.label(), "token enrolled");
        assert_eq!(
            enrolled.to_string(),
            "token enrolled; otp sent to 1 token(s)"
        );
        let down = Reason::Internal("directory unavailable: corp: refused".into());
        assert_eq!(down.label(), "directory unavailable");
        assert_eq!(
            Reason::BackOff {
                failures: 12,
                left_ms: 10
            }
            .label(),
            "back-off"
        );
        assert_eq!(Reason::WrongPassword.to_string(), "wrong password");
    }
}
