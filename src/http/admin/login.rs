//! An operator's (or self-service user's) login, one step at a time, through tessera's own
//! engine: first the name and password, then — when the engine answers with a challenge — the
//! code, matched to the challenge by a pending login this node keeps behind the cookie (the
//! engine's State never reaches the browser or a URL). The engine applies everything a RADIUS
//! login gets: the directory password, autoenrollment of a first-time operator, the code, the
//! back-off, the identity rules, the audit.
//!
//! After the engine's Accept, the role is decided by the identity the directory returns for
//! the name (so `ALICE` or `ａlice` is alice, with alice's role, and nobody else's) and its
//! groups ([`crate::admin::roles::role_of`]). No role: 403, unless self-service is on. The
//! decision is audited as `admin login`.
//!
//! [`login_step`] is the one function for a step; the JSON API (`POST /api/v1/login`) and
//! the page's login form both call it.

use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::AdminShared;
use super::answer::{clear_cookie, set_cookie};
use super::guard::AdminCaller;
use super::session::{Found, PENDING_LIFETIME, PendingLogin, Session, new_session};
use crate::admin::roles::role_of;
use crate::admin::{Role, users};
use crate::auth::decision::MSG_FAILED;
use crate::auth::{AuthRequest, Outcome};
use crate::secret::Secret;
use crate::store::AuditEntry;
use crate::store::audit::{AuditAction, AuditResult};

/// One step of a login.
#[derive(Debug, Clone)]
pub enum LoginInput {
    /// The first: name and password (or password and code together, as the engine allows).
    Password {
        /// The name as typed.
        user: String,
        /// The password.
        password: Secret,
    },
    /// The second: the code the engine sent (the pending login is the cookie's).
    Code {
        /// The code.
        code: Secret,
    },
}

/// A session as its owner sees it (`GET /api/v1/session`, the login's answer).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionView {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The role.
    pub role: Role,
    /// The CSRF token to echo on every state-changing request.
    pub csrf: String,
    /// What self-service allows (empty for operators).
    pub selfservice: Vec<&'static str>,
    /// Seconds without a request after which the session ends.
    pub idle_timeout: u64,
    /// Seconds until it ends however busy.
    pub expires_in: u64,
}

impl SessionView {
    /// The view of `session` under a lifetime of `lifetime`.
    pub fn of(session: &Session, idle: Duration, lifetime: Duration) -> Self {
        SessionView {
            user: session.user.clone(),
            realm: session.realm.clone(),
            role: session.role,
            csrf: session.csrf.clone(),
            selfservice: session.selfservice.iter().map(|a| a.as_str()).collect(),
            idle_timeout: idle.as_secs(),
            expires_in: lifetime
                .saturating_sub(Instant::now().duration_since(session.created))
                .as_secs(),
        }
    }
}

/// What a login step led to.
#[derive(Debug, Clone)]
pub enum LoginAnswer {
    /// Logged in: the session, and its cookie to set.
    LoggedIn {
        /// The session.
        session: SessionView,
        /// `Set-Cookie`.
        cookie: HeaderValue,
    },
    /// The engine sent a code: ask for it. The cookie binds the pending login.
    Challenge {
        /// Where the code went (`sms submitted to +49********678`).
        message: String,
        /// `Set-Cookie`.
        cookie: HeaderValue,
    },
    /// Not logged in: 400 (input missing), 401 (refused), 403 (no role), 503 (full).
    Refused {
        /// The status.
        status: StatusCode,
        /// What to tell the user.
        message: String,
        /// `Set-Cookie` forgetting a pending login, if one was there.
        cookie: Option<HeaderValue>,
    },
}

fn refused(status: StatusCode, message: impl Into<String>, tls: bool) -> LoginAnswer {
    LoginAnswer::Refused {
        status,
        message: message.into(),
        cookie: Some(clear_cookie(tls)),
    }
}

/// Carries out one login step for `caller`.
pub async fn login_step(
    shared: &AdminShared,
    caller: &AdminCaller,
    input: LoginInput,
) -> LoginAnswer {
    let limits = caller.live.limits();
    let tls = caller.tls;
    let pending = match caller
        .cookie
        .as_deref()
        .map(|id| shared.sessions.find(id, limits))
    {
        Some(Found::Pending(p)) if p.address == caller.peer.ip() => Some(p),
        _ => None,
    };
    let (user_name, password, state) = match input {
        LoginInput::Password { user, password } => {
            if user.trim().is_empty() || password.is_empty() {
                return refused(StatusCode::BAD_REQUEST, "user and password are needed", tls);
            }
            (user, password, None)
        }
        LoginInput::Code { code } => {
            let Some(pending) = &pending else {
                return refused(
                    StatusCode::UNAUTHORIZED,
                    "no login is waiting for a code (it expired?); start again",
                    tls,
                );
            };
            if code.is_empty() {
                return refused(StatusCode::BAD_REQUEST, "the code is needed", tls);
            }
            (pending.user_name.clone(), code, Some(pending.state.clone()))
        }
    };
    let address = caller.peer.ip().to_canonical();
    let request = AuthRequest {
        user_name: user_name.clone(),
        password,
        state,
        client: address,
        client_name: format!("admin/{address}"),
        calling_station: None,
        // The back-off's origin: the caller's address, as for /validate/check.
        origin: address.to_string(),
        request_id: None,
        reply_limit: None,
    };
    match shared.authenticate(request).await {
        Outcome::Accept { .. } => accepted(shared, caller, &user_name).await,
        Outcome::Challenge {
            state,
            message,
            timeout,
            ..
        } => {
            let lifetime = Duration::from_secs(u64::from(timeout)).min(PENDING_LIFETIME);
            let pending = PendingLogin {
                user_name,
                state,
                message: message.clone(),
                address,
                expires: Instant::now() + lifetime,
            };
            match shared
                .sessions
                .wait_for_code(pending, caller.cookie.as_deref(), limits)
            {
                Ok(id) => LoginAnswer::Challenge {
                    message,
                    cookie: set_cookie(&id, tls),
                },
                Err(full) => refused(StatusCode::SERVICE_UNAVAILABLE, full.to_string(), tls),
            }
        }
        Outcome::Reject { message } => {
            if let Some(id) = caller.cookie.as_deref() {
                shared.sessions.end(id);
            }
            refused(StatusCode::UNAUTHORIZED, message, tls)
        }
        Outcome::Forward { .. } => refused(StatusCode::UNAUTHORIZED, MSG_FAILED, tls),
    }
}

/// The engine accepted `user_name`: decide the role, audit it, open the session.
async fn accepted(shared: &AdminShared, caller: &AdminCaller, user_name: &str) -> LoginAnswer {
    let live = &caller.live;
    let config = &live.config;
    let tls = caller.tls;
    let address = caller.peer.ip().to_canonical();
    let (user, realm) = match users::resolve(&live.realms, user_name).await {
        Ok(found) => found,
        Err(error) => {
            // The engine found the user a moment ago; a directory gone since is a failure.
            tracing::warn!(%error, "admin login: the identity could not be read again");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the directory did not answer; try again",
                tls,
            );
        }
    };
    let role = role_of(
        &config.admins,
        &config.helpdesk,
        !config.selfservice.is_empty(),
        &user,
        &realm,
    );
    audit_login(shared, &user.login, &realm, address, role).await;
    let Some(role) = role else {
        tracing::info!(user = %user.login, %realm, %address, "admin login refused: no role");
        if let Some(id) = caller.cookie.as_deref() {
            shared.sessions.end(id);
        }
        return refused(
            StatusCode::FORBIDDEN,
            format!("{}@{realm} has no role on this service", user.login),
            tls,
        );
    };
    let selfservice = if role == Role::SelfService {
        config.selfservice.clone()
    } else {
        vec![]
    };
    let session = match new_session(
        user.login.clone(),
        realm.clone(),
        role,
        selfservice,
        address,
    ) {
        Ok(session) => session,
        Err(error) => {
            tracing::error!(%error, "admin login: the random source failed");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "try again", tls);
        }
    };
    let view = SessionView::of(&session, config.idle_timeout, config.lifetime);
    match shared
        .sessions
        .open(session, caller.cookie.as_deref(), live.limits())
    {
        Ok(id) => {
            tracing::info!(user = %user.login, %realm, %role, %address, "admin login");
            LoginAnswer::LoggedIn {
                session: view,
                cookie: set_cookie(&id, tls),
            }
        }
        Err(full) => refused(StatusCode::SERVICE_UNAVAILABLE, full.to_string(), tls),
    }
}

/// The `admin login` audit row: who, from where, and the role decided (or none).
async fn audit_login(
    shared: &AdminShared,
    user: &str,
    realm: &str,
    address: std::net::IpAddr,
    role: Option<Role>,
) {
    let (result, reason) = match role {
        Some(role) => (AuditResult::Ok, format!("role {role}")),
        None => (AuditResult::Failed, "no role: refused".to_string()),
    };
    let entry = AuditEntry {
        time: crate::auth::Clock::now(&crate::auth::SystemClock),
        client: format!("admin/{address}"),
        user: user.to_string(),
        realm: realm.to_string(),
        serial: None,
        action: AuditAction::AdminLogin.into(),
        result: result.into(),
        reason,
    };
    shared.store.audit(entry).await;
}
