//! The closed lists of what an audit row may say: [`AuditAction`], what was asked, and
//! [`AuditResult`], how it went. Every writer picks from them, so `tessera audit` filters and
//! the metrics' `result` label see the same few words; the store keeps them as text.

use std::fmt;

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A login's first request (password, or password and OTP).
    Authenticate,
    /// The second round: an OTP sent back with the challenge's State.
    AnswerChallenge,
    /// A token assigned because the legacy RADIUS server accepted the login.
    PassthruAssign,
    /// `tessera token enroll`, or an enrolment through the admin API.
    TokenEnroll,
    /// `tessera token enable`, or the admin API's enable.
    TokenEnable,
    /// `tessera token disable`, or the admin API's disable.
    TokenDisable,
    /// `tessera token delete`, or the admin API's remove.
    TokenDelete,
    /// `tessera token unlock`, or the admin API's reset (which also ends the back-off).
    TokenUnlock,
    /// `tessera token resync`, or the admin API's resync.
    TokenResync,
    /// `tessera token set-pin`.
    TokenSetPin,
    /// `tessera token identities --fix` moving a token to its owner's new login.
    TokenIdentitiesFix,
    /// A token's description set (admin API).
    TokenDescribe,
    /// A self-enrolled token confirmed by its first code (self-service).
    TokenConfirm,
    /// `tessera token assign`, or the admin API's assign: a token handed to a user.
    TokenAssign,
    /// `tessera token unassign`, or the admin API's unassign: a token taken back.
    TokenUnassign,
    /// `tessera token import`, or the admin API's import: a seed file's tokens stored.
    TokenImport,
    /// An operator's or a self-service user's login to the admin API: the role decided.
    AdminLogin,
    /// An admin API session ended by its owner.
    AdminLogout,
    /// A Disconnect-Request (RFC 5176) sent to a NAS for an open session of a user whose
    /// token was disabled or deleted, or who was removed by `tessera user del`; the result says whether the NAS acknowledged it.
    SessionDisconnect,
}

impl AuditAction {
    /// The text the audit row holds.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Authenticate => "authenticate",
            AuditAction::AnswerChallenge => "answer challenge",
            AuditAction::PassthruAssign => "passthru assign",
            AuditAction::TokenEnroll => "token enroll",
            AuditAction::TokenEnable => "token enable",
            AuditAction::TokenDisable => "token disable",
            AuditAction::TokenDelete => "token delete",
            AuditAction::TokenUnlock => "token unlock",
            AuditAction::TokenResync => "token resync",
            AuditAction::TokenSetPin => "token set-pin",
            AuditAction::TokenIdentitiesFix => "token identities --fix",
            AuditAction::TokenDescribe => "token description",
            AuditAction::TokenConfirm => "token confirm",
            AuditAction::TokenAssign => "token assign",
            AuditAction::TokenUnassign => "token unassign",
            AuditAction::TokenImport => "token import",
            AuditAction::AdminLogin => "admin login",
            AuditAction::AdminLogout => "admin logout",
            AuditAction::SessionDisconnect => "session disconnect",
        }
    }
}

/// How it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// Access-Accept.
    Accept,
    /// Access-Challenge.
    Challenge,
    /// Access-Reject.
    Reject,
    /// Handed to a legacy RADIUS server (passthru).
    Forward,
    /// An administrative change (or a passthru assignment) that worked.
    Ok,
    /// One that did not.
    Failed,
}

impl AuditResult {
    /// The text the audit row holds; also the `result` label of
    /// `tessera_auth_decisions_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Accept => "accept",
            AuditResult::Challenge => "challenge",
            AuditResult::Reject => "reject",
            AuditResult::Forward => "forward",
            AuditResult::Ok => "ok",
            AuditResult::Failed => "failed",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AuditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AuditAction> for String {
    fn from(action: AuditAction) -> Self {
        action.as_str().to_string()
    }
}

impl From<AuditResult> for String {
    fn from(result: AuditResult) -> Self {
        result.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_texts_rows_hold_are_distinct() {
        use AuditAction as A;
        use AuditResult as R;
        let actions = [
            A::Authenticate,
            A::AnswerChallenge,
            A::PassthruAssign,
            A::TokenEnroll,
            A::TokenEnable,
            A::TokenDisable,
            A::TokenDelete,
            A::TokenUnlock,
            A::TokenResync,
            A::TokenSetPin,
            A::TokenIdentitiesFix,
            A::TokenDescribe,
            A::TokenConfirm,
            A::TokenAssign,
            A::TokenUnassign,
            A::TokenImport,
            A::AdminLogin,
            A::AdminLogout,
        ];
        let texts: std::collections::HashSet<&str> = actions.iter().map(|a| a.as_str()).collect();
        assert_eq!(texts.len(), actions.len());
        let results = [
            R::Accept,
            R::Challenge,
            R::Reject,
            R::Forward,
            R::Ok,
            R::Failed,
        ];
        let texts: std::collections::HashSet<&str> = results.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts.len(), results.len());
        assert_eq!(String::from(A::AnswerChallenge), "answer challenge");
    }
}
