//! What one request's decision is made of, shared by the engine's files: the request's
//! resolved facts (`Ctx`, `Identity`), the `Decision` with what the log and the audit
//! need, and the texts users see. It decides nothing; `engine.rs` and its neighbours do.

use std::sync::{Arc, Mutex};

use super::policy::PolicyContext;
use super::reason::Reason;
use super::{AuthRequest, Outcome};
use crate::directory::{Directory, Realm, UserInfo};
use crate::secret::Secret;
use crate::store::TokenKind;
use crate::store::audit::AuditResult;
use crate::time::UnixMs;

/// What users see when authentication fails for a reason they may not learn (unknown user,
/// wrong password): the same text for all of them, so nothing can be enumerated.
pub const MSG_FAILED: &str = "authentication failed";
pub(super) const MSG_UNAVAILABLE: &str = "authentication service unavailable, try again later";
pub(super) const MSG_INTERNAL: &str = "internal error, try again later";
/// What a user with a locked token is told.
pub const MSG_LOCKED: &str = "too many failed attempts: your token is locked";
/// What a user of a NAS in `login_mode=append` is told after a code was sent.
pub const MSG_APPEND: &str = "log in again with your password followed by the code";
/// What a user answering a closed, expired or unknown challenge is told.
pub const MSG_EXPIRED: &str = "your code has expired or was already used; log in again";

/// A decision plus what the log and the audit need to know about it.
pub(super) struct Decision {
    pub(super) outcome: Outcome,
    pub(super) reason: Reason,
    pub(super) serial: Option<String>,
}

impl Decision {
    pub(super) fn reject(message: impl Into<String>, reason: Reason, serial: Option<&str>) -> Self {
        Decision {
            outcome: Outcome::Reject {
                message: message.into(),
            },
            reason,
            serial: serial.map(String::from),
        }
    }

    pub(super) fn accept(reason: Reason, serial: &str) -> Self {
        Decision {
            outcome: Outcome::Accept {
                message: None,
                reply: vec![],
            },
            reason,
            serial: Some(serial.into()),
        }
    }

    pub(super) fn result(&self) -> AuditResult {
        match self.outcome {
            Outcome::Accept { .. } => AuditResult::Accept,
            Outcome::Challenge { .. } => AuditResult::Challenge,
            Outcome::Reject { .. } => AuditResult::Reject,
            Outcome::Forward { .. } => AuditResult::Forward,
        }
    }
}

/// The facts of one request, resolved.
pub(super) struct Ctx<'a> {
    pub(super) req: &'a AuthRequest,
    /// The identity: the login as the directory spells it, or, for a name no directory knows,
    /// the normalised name as typed.
    pub(super) login: String,
    pub(super) realm: &'a Realm,
    /// The directory entry and the directory that holds it; `None`: no directory knows the name.
    pub(super) user: Option<(UserInfo, Arc<dyn Directory>)>,
    /// When the request is decided: one time for every rule and row it touches.
    pub(super) now: UnixMs,
    /// Under `login_mode=append`, the password field without a trailing `,sms` / `,email`
    /// (see [`Ctx::password`]).
    pub(super) appended_keyword_removed: Option<Secret>,
    /// `login_mode=append`: the token type the user asked for with `,sms` / `,email`.
    pub(super) channel: Option<TokenKind>,
    /// The directory's answers to passwords of this request, so one request never binds twice
    /// with the same password. Never held across an await.
    pub(super) answers: Mutex<Vec<(Secret, bool)>>,
}

impl Ctx<'_> {
    /// Why the directory refused the password: a wrong one, or a name no directory knows (an
    /// unknown name costs the same check and answers no).
    pub(super) fn refused_password(&self) -> Reason {
        if self.user.is_some() {
            Reason::WrongPassword
        } else {
            Reason::UnknownUser
        }
    }

    /// The password field as the engine reads it (borrowed: no copy per request).
    pub(super) fn password(&self) -> &Secret {
        self.appended_keyword_removed
            .as_ref()
            .unwrap_or(&self.req.password)
    }

    pub(super) fn policy(&self) -> PolicyContext<'_> {
        PolicyContext {
            user: &self.login,
            realm: &self.realm.name,
            client: self.req.client,
            groups: self
                .user
                .as_ref()
                .map_or(&[], |(user, _)| user.groups.as_slice()),
        }
    }
}

/// Who a request is for (see [`Engine::identify`]).
pub(super) struct Identity<'a> {
    /// The identity (or, for a refused name, the name as typed).
    pub(super) login: String,
    /// The realm.
    pub(super) realm: &'a Realm,
    /// The directory entry and its directory, when one knows the name.
    pub(super) user: Option<(UserInfo, Arc<dyn Directory>)>,
    /// Why the request cannot be decided (a refused name, a directory that cannot answer).
    pub(super) refused: Option<Decision>,
}
