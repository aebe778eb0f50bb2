//! The users and tokens routes: search (`GET /api/v1/users?q=`), a user's tokens
//! (`GET /api/v1/users/{realm}/{user}/tokens`, `GET /api/v1/me/tokens`), one token
//! (`GET /api/v1/tokens/{serial}`), its changes (`POST /api/v1/tokens/{serial}/{action}`:
//! `enable`, `disable`, `reset`, `resync`, `description`, `remove`, `confirm`, `assign`,
//! `unassign`;
//! `DELETE /api/v1/tokens/{serial}`), and enrolment (`POST /api/v1/tokens`).
//!
//! A self-service session sees and changes only its own tokens, and only as `[admin]
//! selfservice` allows; another's serial is "no such token" to it.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde_json::json;

use super::AdminShared;
use super::answer::{ApiError, ok};
use super::fields::Fields;
use super::guard::{Operator, Posted};
use crate::admin::enroll::{EnrollRequest, confirm, enroll as enroll_token};
use crate::admin::tokens::{Admin, TokenView};
use crate::admin::users::{SEARCH_LIMIT, find};
use crate::admin::{Action, SelfServiceAction};
use crate::store::{Token, TokenKind};

/// `GET /api/v1/users?q=PART&limit=N`: users whose name contains PART.
pub async fn users(operator: Operator, request: Request) -> Result<Response, ApiError> {
    operator.require(Action::View)?;
    let fields = Fields::from_query(request.uri().query());
    let q = fields.required("q")?;
    let limit = fields
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(SEARCH_LIMIT);
    let found = find(&operator.caller.live.realms, q, limit).await?;
    Ok(ok(&json!({ "users": found })))
}

/// `GET /api/v1/users/{realm}/{user}/tokens`: the user's tokens and back-off. The name is
/// resolved through the realm's directories to the identity (a variant spelling finds the
/// same tokens); a name no directory knows is looked up as given (tokens of a removed user).
pub async fn user_tokens(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    Path((realm, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    operator.require(Action::View)?;
    let live = &operator.caller.live;
    let identity = identity_of(&operator, &realm, &user).await?;
    let admin = Admin::new(shared.store.as_ref(), &live.auth);
    Ok(ok(&admin
        .user_tokens(&identity.user, &identity.realm)
        .await?))
}

/// The identity behind `user` of `realm` as a path names it: resolved through the realm's
/// directories (a variant spelling finds the same identity); a name no directory knows is
/// taken as given (the tokens or sessions of a removed user).
pub async fn identity_of(
    operator: &Operator,
    realm: &str,
    user: &str,
) -> Result<crate::store::Identity, ApiError> {
    let Some(found_realm) = operator.caller.live.realms.get(realm) else {
        return Err(ApiError::not_found(format!("no realm {realm:?}")));
    };
    let normalized = crate::directory::login_name::normalize(user)
        .map_err(|e| ApiError::bad_request(format!("user: {e}")))?;
    let login = match found_realm
        .lookup(normalized.trim())
        .await
        .map_err(crate::admin::AdminError::from)?
    {
        Some((entry, _)) => entry.login,
        None => normalized.trim().to_string(),
    };
    Ok(crate::store::Identity {
        user: login,
        realm: found_realm.name.clone(),
    })
}

/// `GET /api/v1/me/tokens`: the session's own tokens (any role).
pub async fn my_tokens(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
) -> Result<Response, ApiError> {
    let admin = Admin::new(shared.store.as_ref(), &operator.caller.live.auth);
    let session = &operator.session;
    Ok(ok(&admin
        .user_tokens(&session.user, &session.realm)
        .await?))
}

/// The token `serial` as this session may see it: any for an operator with `action`, its own
/// (and allowed by `own`) for self-service.
async fn token_for(
    admin: &Admin<'_>,
    operator: &Operator,
    serial: &str,
    action: Action,
    own: Option<SelfServiceAction>,
) -> Result<Token, ApiError> {
    operator.require_or_own(action, own)?;
    if operator.is_self_service() {
        let session = &operator.session;
        Ok(admin.owned(serial, &session.user, &session.realm).await?)
    } else {
        Ok(admin.token(serial).await?)
    }
}

/// `GET /api/v1/tokens/{serial}`.
pub async fn token(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    let admin = Admin::new(shared.store.as_ref(), &operator.caller.live.auth);
    // Self-service may always look at its own tokens.
    let token = if operator.is_self_service() {
        let session = &operator.session;
        admin.owned(&serial, &session.user, &session.realm).await?
    } else {
        token_for(&admin, &operator, &serial, Action::View, None).await?
    };
    Ok(ok(&TokenView::of(&token)))
}

/// `DELETE /api/v1/tokens/{serial}` (with `X-CSRF-Token`).
pub async fn remove(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    Path(serial): Path<String>,
) -> Result<Response, ApiError> {
    let live = &operator.caller.live;
    let admin = Admin::new(shared.store.as_ref(), &live.auth).with_disconnect(&live.clients);
    token_for(
        &admin,
        &operator,
        &serial,
        Action::Remove,
        Some(SelfServiceAction::Delete),
    )
    .await?;
    let removed = admin.remove(&operator.actor(), &serial).await?;
    Ok(ok(&json!({"removed": removed.serial})))
}

/// `POST /api/v1/tokens/{serial}/{action}`: `enable`, `disable`, `reset` (fail counter and
/// the owner's back-off), `resync` (`otp1`, `otp2`), `description` (`description`),
/// `remove`, `confirm` (`code`: a self-enrolled token's first code), `assign` (`user`: a
/// token nobody holds handed to them), `unassign`. Answers the token.
pub async fn change(
    State(shared): State<Arc<AdminShared>>,
    Path((serial, action)): Path<(String, String)>,
    Posted { operator, fields }: Posted,
) -> Result<Response, ApiError> {
    let live = &operator.caller.live;
    let admin = Admin::new(shared.store.as_ref(), &live.auth).with_disconnect(&live.clients);
    let actor = operator.actor();
    let (needed, own) = match action.as_str() {
        "enable" => (Action::EnableDisable, Some(SelfServiceAction::Enable)),
        "disable" => (Action::EnableDisable, Some(SelfServiceAction::Disable)),
        "reset" => (Action::Reset, Some(SelfServiceAction::Reset)),
        "resync" => (Action::Resync, Some(SelfServiceAction::Resync)),
        "description" => (Action::Describe, Some(SelfServiceAction::SetDescription)),
        "remove" => (Action::Remove, Some(SelfServiceAction::Delete)),
        "confirm" => (Action::Enroll, Some(SelfServiceAction::EnrollTotp)),
        // Handing out a fob is the helpdesk's, never self-service's.
        "assign" | "unassign" => (Action::Enroll, None),
        other => {
            return Err(ApiError::not_found(format!(
                "no token action {other:?} (enable, disable, reset, resync, description, \
                 remove, confirm, assign, unassign)"
            )));
        }
    };
    let own = match (action.as_str(), operator.is_self_service()) {
        // Confirming needs either enrolment action, matching the token's type.
        ("confirm", true) => {
            let t = admin
                .owned(&serial, &operator.session.user, &operator.session.realm)
                .await?;
            if t.kind == TokenKind::Hotp {
                Some(SelfServiceAction::EnrollHotp)
            } else {
                own
            }
        }
        _ => own,
    };
    let token = token_for(&admin, &operator, &serial, needed, own).await?;
    let changed = match action.as_str() {
        "enable" => admin.set_active(&actor, &serial, true).await?,
        "disable" => admin.set_active(&actor, &serial, false).await?,
        "reset" => admin.reset(&actor, &serial).await?,
        "resync" => {
            let (otp1, otp2) = (fields.required("otp1")?, fields.required("otp2")?);
            admin.resync(&actor, &serial, otp1, otp2).await?
        }
        "description" => {
            let text = fields.get("description").unwrap_or("");
            admin.describe(&actor, &serial, text).await?
        }
        "remove" => {
            let removed = admin.remove(&actor, &serial).await?;
            return Ok(ok(&json!({"removed": removed.serial})));
        }
        "assign" => {
            let user = fields.required("user")?;
            let realms = &operator.caller.live.realms;
            admin.assign(realms, &actor, &serial, user).await?
        }
        "unassign" => admin.unassign(&actor, &serial).await?,
        _ => {
            let code = fields.required("code")?;
            confirm(&admin, &actor, &token, code).await?
        }
    };
    Ok(ok(&TokenView::of(&changed)))
}

/// `POST /api/v1/tokens`: `type` (`totp`, `hotp`, `sms`, `email`), `user` (`carol`,
/// `carol@corp`; self-service: always the session's own), `phone`, `email`, `description`.
/// Answers the token and, for TOTP/HOTP, `secret`, `otpauth_uri` and `qr_svg` — once. A
/// self-service token is `pending` until confirmed with its first code.
pub async fn enroll(
    State(shared): State<Arc<AdminShared>>,
    Posted { operator, fields }: Posted,
) -> Result<Response, ApiError> {
    let kind: TokenKind = fields
        .required("type")?
        .parse()
        .map_err(ApiError::bad_request)?;
    let own = match kind {
        TokenKind::Totp => Some(SelfServiceAction::EnrollTotp),
        TokenKind::Hotp => Some(SelfServiceAction::EnrollHotp),
        TokenKind::Sms | TokenKind::Email | TokenKind::Yubikey => None,
    };
    operator.require_or_own(Action::Enroll, own)?;
    let session = &operator.session;
    let user = if operator.is_self_service() {
        format!("{}@{}", session.user, session.realm)
    } else {
        fields.required("user")?.to_string()
    };
    let live = &operator.caller.live;
    let admin = Admin::new(shared.store.as_ref(), &live.auth);
    let request = EnrollRequest {
        kind,
        user,
        phone: fields.get("phone").map(String::from),
        email: fields.get("email").map(String::from),
        seed: None,
        description: fields.get("description").unwrap_or("").to_string(),
        pending: operator.is_self_service(),
        public_id: None,
    };
    let (_, enrolled) = enroll_token(&admin, &live.realms, &operator.actor(), request).await?;
    Ok(ok(&enrolled))
}
