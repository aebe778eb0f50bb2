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
    /// An operator's or a self-service user's login to the admin API: the role decided.
    AdminLogin,
    /// An admin API session ended by its owner.
    AdminLogout,
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
            AuditAction::AdminLogin => "admin login",
            AuditAction::AdminLogout => "admin logout",
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

/// Which audit rows to read ([`crate::store::Store::audit_query`]): every filter given must
/// match; newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this user's rows (the identity, exactly).
    pub user: Option<String>,
    /// Only rows of this realm.
    pub realm: Option<String>,
    /// Only rows of this token.
    pub serial: Option<String>,
    /// Only rows with this result (`accept`, `reject`, `ok` …; see [`AuditResult`]).
    pub result: Option<String>,
    /// Only rows whose client contains this text (`http/10.0.0.5`, `vpn-gw`, `admin`).
    pub client: Option<String>,
    /// Only rows at or after this Unix time.
    pub since: Option<i64>,
    /// Only rows before this Unix time.
    pub until: Option<i64>,
    /// At most this many rows.
    pub limit: u32,
}

/// A column an [`AuditQuery`] filters on by equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditColumn {
    /// The identity.
    User,
    /// Its realm.
    Realm,
    /// The token.
    Serial,
    /// The result.
    Result,
}

/// One condition of an [`AuditQuery`], for a backend to write in its SQL: only the filters
/// given become conditions, so each backend's planner sees plain terms it can use an index
/// for (`serial = ?` for a token's last use) instead of `(? IS NULL OR …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTerm<'a> {
    /// The column equals the text.
    Equals(AuditColumn, &'a str),
    /// The client contains the text.
    ClientContains(&'a str),
    /// At or after this Unix time.
    Since(i64),
    /// Before this Unix time.
    Until(i64),
}

impl AuditQuery {
    /// The conditions of the filters given, in a fixed order.
    pub fn terms(&self) -> Vec<AuditTerm<'_>> {
        let mut terms = vec![];
        for (column, value) in [
            (AuditColumn::User, &self.user),
            (AuditColumn::Realm, &self.realm),
            (AuditColumn::Serial, &self.serial),
            (AuditColumn::Result, &self.result),
        ] {
            if let Some(value) = value {
                terms.push(AuditTerm::Equals(column, value));
            }
        }
        if let Some(client) = &self.client {
            terms.push(AuditTerm::ClientContains(client));
        }
        if let Some(since) = self.since {
            terms.push(AuditTerm::Since(since));
        }
        if let Some(until) = self.until {
            terms.push(AuditTerm::Until(until));
        }
        terms
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
