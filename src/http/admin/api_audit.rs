//! The session routes (`POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/session`),
//! the audit (`GET /api/v1/audit`, `format=csv` to export) and the service's state
//! (`GET /api/v1/state`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AdminShared;
use super::answer::{ApiError, clear_cookie, json, ok, with_cookie};
use super::fields::Fields;
use super::guard::{Operator, Posted, Unauthenticated};
use super::login::{LoginAnswer, LoginInput, SessionView, login_step};
use crate::admin::audit::{AuditFilter, csv, rows};
use crate::admin::{Action, SelfServiceAction};
use crate::auth::{Clock, SystemClock};
use crate::store::AuditEntry;
use crate::store::audit::{AuditAction, AuditResult};

/// `POST /api/v1/login`: `user` and `password`, or then `code`. Answers
/// `{"status": "challenge", "message"}` (200, a code was sent), `{"status": "ok", "session"}`
/// (200), or an error (400, 401, 403).
pub async fn login(
    State(shared): State<Arc<AdminShared>>,
    Unauthenticated { caller, fields }: Unauthenticated,
) -> Response {
    let input = match (fields.secret("code"), fields.get("user")) {
        (Some(code), None) => LoginInput::Code { code },
        (_, user) => LoginInput::Password {
            user: user.unwrap_or_default().to_string(),
            password: fields.secret("password").unwrap_or_else(|| "".into()),
        },
    };
    match login_step(&shared, &caller, input).await {
        LoginAnswer::LoggedIn { session, cookie } => {
            with_cookie(ok(&json!({"status": "ok", "session": session})), cookie)
        }
        LoginAnswer::Challenge { message, cookie } => with_cookie(
            ok(&json!({"status": "challenge", "message": message})),
            cookie,
        ),
        LoginAnswer::Refused {
            status,
            message,
            cookie,
        } => {
            let response = ApiError::new(status, message).into_response();
            match cookie {
                Some(cookie) => with_cookie(response, cookie),
                None => response,
            }
        }
    }
}

/// `POST /api/v1/logout`: ends the session.
pub async fn logout(State(shared): State<Arc<AdminShared>>, posted: Posted) -> Response {
    let operator = posted.operator;
    shared.sessions.end(&operator.id);
    let actor = operator.actor();
    shared
        .store
        .audit(AuditEntry {
            time: SystemClock.now(),
            client: actor.client,
            user: operator.session.user.clone(),
            realm: operator.session.realm.clone(),
            serial: None,
            action: AuditAction::AdminLogout.into(),
            result: AuditResult::Ok.into(),
            reason: format!("by {}", actor.name),
        })
        .await;
    with_cookie(
        ok(&json!({"status": "logged out"})),
        clear_cookie(operator.caller.tls),
    )
}

/// `GET /api/v1/session`: who is logged in, the role and the CSRF token.
pub async fn session(operator: Operator) -> Response {
    let config = &operator.caller.live.config;
    ok(&SessionView::of(
        &operator.session,
        config.idle_timeout,
        config.lifetime,
    ))
}

/// `GET /api/v1/audit?user=&result=&client=&serial=&since=&until=&limit=&format=csv`.
/// Self-service (with `history`) sees its own rows only.
pub async fn audit(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    request: Request,
) -> Result<Response, ApiError> {
    let fields = Fields::from_query(request.uri().query());
    let as_csv = fields.get("format") == Some("csv");
    if as_csv {
        operator.require_or_own(Action::Export, None)?;
    } else {
        operator.require_or_own(Action::Audit, Some(SelfServiceAction::History))?;
    }
    let mut filter = AuditFilter {
        user: fields.get("user").map(String::from),
        result: fields.get("result").map(String::from),
        client: fields.get("client").map(String::from),
        serial: fields.get("serial").map(String::from),
        since: fields.get("since").map(String::from),
        until: fields.get("until").map(String::from),
        limit: fields.get("limit").map(String::from),
    };
    if operator.is_self_service() {
        filter.user = Some(operator.session.user.clone());
    }
    let mut query = filter.to_query(SystemClock.now())?;
    if operator.is_self_service() {
        query.realm = Some(operator.session.realm.clone());
    }
    let found = rows(shared.store.as_ref(), &query).await?;
    if !as_csv {
        return Ok(ok(&json!({ "rows": found })));
    }
    let mut response = (StatusCode::OK, csv(&found)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tessera-audit.csv\""),
    );
    Ok(response)
}

/// `GET /api/v1/state`: counters, rates and health.
pub async fn state(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
) -> Result<Response, ApiError> {
    operator.require(Action::View)?;
    let live = &operator.caller.live;
    let state = shared.state.read(shared.store.as_ref(), &live.realms).await;
    Ok(json(StatusCode::OK, &state))
}
