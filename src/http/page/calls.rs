//! The page's calls into the admin API: each screen asks the API's own handler
//! (`http::admin::api`, `api_audit`, `api_import`, `api_sessions`) with the session it already checked, and reads the JSON
//! it answers into the screen's views. So the page cannot allow what the API refuses, or show
//! what the API would not (another user's tokens to self-service, a seed twice), and every
//! change is audited there, once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde_json::Value;

use super::views::{BackoffLine, Delivery, Found, Health, Row, SessionLine, StateView, TokenView};
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::fields::Fields;
use crate::http::admin::guard::{Operator, Posted, Upload};
use crate::http::admin::{api, api_audit, api_import, api_sessions};

/// The largest JSON answer read (a user's tokens, a page of audit rows).
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

/// The JSON of an API handler's answer.
async fn json_of(answer: Result<Response, ApiError>) -> Result<Value, ApiError> {
    let answer = answer?;
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT)
        .await
        .map_err(|e| ApiError::new(status, format!("unreadable answer: {e}")))?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(status, format!("unreadable answer: {e}")))?;
    if status.is_success() {
        Ok(value)
    } else {
        let message = value["error"].as_str().unwrap_or("refused").to_string();
        Err(ApiError::new(status, message))
    }
}

/// A GET request with `query`, for the handlers that read their query string.
fn get(path: &str, query: &[(&str, &str)]) -> Request {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().filter(|(_, v)| !v.trim().is_empty()))
        .finish();
    let mut request = Request::new(Body::empty());
    if let Ok(uri) = format!("{path}?{query}").parse() {
        *request.uri_mut() = uri;
    }
    request
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn small(value: &Value) -> u32 {
    u32::try_from(number(value)).unwrap_or(u32::MAX)
}

/// `GET /api/v1/users?q=`.
pub async fn find_users(operator: Operator, q: &str) -> Result<Vec<Found>, ApiError> {
    let value = json_of(api::users(operator, get("/api/v1/users", &[("q", q)])).await).await?;
    Ok(value["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| Found {
                    user: text(&u["user"]).unwrap_or_default(),
                    realm: text(&u["realm"]).unwrap_or_default(),
                    name: text(&u["name"]),
                    mobile: text(&u["mobile"]),
                    email: text(&u["email"]),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A user's tokens and back-off as the screens show them.
pub struct Tokens {
    /// The identity the API resolved.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The tokens.
    pub tokens: Vec<TokenView>,
    /// The back-off rows.
    pub backoff: Vec<BackoffLine>,
}

fn tokens_of(value: &Value) -> Tokens {
    let backoff: Vec<BackoffLine> = value["backoff"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|b| BackoffLine {
                    origin: text(&b["origin"]),
                    failures: small(&b["failures"]),
                    waiting_seconds: number(&b["waiting_seconds"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let waiting = backoff
        .iter()
        .find(|b| b.waiting_seconds > 0)
        .map(|b| format!("{} failed passwords", b.failures));
    let tokens = value["tokens"]
        .as_array()
        .map(|tokens| {
            tokens
                .iter()
                .map(|t| {
                    let kind = text(&t["type"]).unwrap_or_default();
                    let active = t["active"].as_bool().unwrap_or(false);
                    let last_use = t["last_use"].as_i64();
                    TokenView {
                        serial: text(&t["serial"]).unwrap_or_default(),
                        // The token's own state: enrolled in self-service, not yet confirmed.
                        pending: t["pending"].as_bool().unwrap_or(false),
                        kind,
                        active,
                        fail_count: small(&t["fail_count"]),
                        max_fail: small(&t["max_fail"]),
                        backoff: waiting.clone(),
                        last_use,
                        recipient: text(&t["phone"]).or_else(|| text(&t["email"])),
                        description: text(&t["description"]).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Tokens {
        user: text(&value["user"]).unwrap_or_default(),
        realm: text(&value["realm"]).unwrap_or_default(),
        tokens,
        backoff,
    }
}

/// `GET /api/v1/users/{realm}/{user}/tokens`.
pub async fn user_tokens(
    shared: &Arc<AdminShared>,
    operator: Operator,
    realm: &str,
    user: &str,
) -> Result<Tokens, ApiError> {
    let answer = api::user_tokens(
        State(shared.clone()),
        operator,
        Path((realm.to_string(), user.to_string())),
    )
    .await;
    Ok(tokens_of(&json_of(answer).await?))
}

/// `GET /api/v1/users/{realm}/{user}/sessions`: the user's sessions, open ones first.
pub async fn user_sessions(
    shared: &Arc<AdminShared>,
    operator: Operator,
    realm: &str,
    user: &str,
) -> Result<Vec<SessionLine>, ApiError> {
    let answer = api_sessions::user_sessions(
        State(shared.clone()),
        operator,
        Path((realm.to_string(), user.to_string())),
        get("/api/v1/users/-/-/sessions", &[]),
    )
    .await;
    let value = json_of(answer).await?;
    Ok(value["sessions"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|s| SessionLine {
                    session_id: text(&s["session_id"]).unwrap_or_default(),
                    nas: format!(
                        "{}/{}",
                        text(&s["client"]).unwrap_or_default(),
                        text(&s["nas"]).unwrap_or_default()
                    ),
                    calling_station: text(&s["calling_station"]),
                    framed_ip: text(&s["framed_ip"]),
                    started: text(&s["started"]),
                    stopped: text(&s["stopped"]),
                    cause: text(&s["cause"]),
                    open: s["open"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// `GET /api/v1/me/tokens`.
pub async fn my_tokens(shared: &Arc<AdminShared>, operator: Operator) -> Result<Tokens, ApiError> {
    let answer = api::my_tokens(State(shared.clone()), operator).await;
    Ok(tokens_of(&json_of(answer).await?))
}

/// `POST /api/v1/tokens/{serial}/{action}` with `fields` (the CSRF token was checked when
/// the page's own request was extracted).
pub async fn change(
    shared: &Arc<AdminShared>,
    operator: Operator,
    serial: &str,
    action: &str,
    fields: Fields,
) -> Result<(), ApiError> {
    let answer = api::change(
        State(shared.clone()),
        Path((serial.to_string(), action.to_string())),
        Posted { operator, fields },
    )
    .await;
    json_of(answer).await.map(|_| ())
}

/// `POST /api/v1/tokens/import` (`file`, `file_name`, `format`, `psk`, `password`,
/// `force`): the serials stored and how many were assigned.
pub async fn import(
    shared: &Arc<AdminShared>,
    posted: Posted,
) -> Result<(Vec<String>, u64), ApiError> {
    let answer = api_import::import(State(shared.clone()), Upload(posted)).await;
    let value = json_of(answer).await?;
    let serials = value["serials"]
        .as_array()
        .map(|s| s.iter().filter_map(text).collect())
        .unwrap_or_default();
    Ok((serials, number(&value["assigned"])))
}

/// A token just enrolled, with what the app needs, shown once.
pub struct Enrolled {
    /// The serial.
    pub serial: String,
    /// The seed in base32.
    pub secret: String,
    /// The otpauth URI.
    pub uri: String,
    /// Its QR code, an SVG document.
    pub qr_svg: Option<String>,
}

/// `POST /api/v1/tokens` (`type`, `user`, `description`).
pub async fn enroll(
    shared: &Arc<AdminShared>,
    operator: Operator,
    fields: Fields,
) -> Result<Enrolled, ApiError> {
    let answer = api::enroll(State(shared.clone()), Posted { operator, fields }).await;
    let value = json_of(answer).await?;
    Ok(Enrolled {
        serial: text(&value["token"]["serial"]).unwrap_or_default(),
        secret: text(&value["secret"]).unwrap_or_default(),
        uri: text(&value["otpauth_uri"]).unwrap_or_default(),
        qr_svg: text(&value["qr_svg"]),
    })
}

/// `GET /api/v1/audit` with the filters; the rows as the audit screen shows them.
pub async fn audit(
    shared: &Arc<AdminShared>,
    operator: Operator,
    filters: &[(&str, &str)],
) -> Result<Vec<Row>, ApiError> {
    let answer = api_audit::audit(
        State(shared.clone()),
        operator,
        get("/api/v1/audit", filters),
    )
    .await;
    let value = json_of(answer).await?;
    Ok(value["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| Row {
                    time: super::html::when(r["time"].as_i64()),
                    client: text(&r["client"]).unwrap_or_default(),
                    user: match (text(&r["user"]), text(&r["realm"])) {
                        (Some(u), Some(realm)) => format!("{u}@{realm}"),
                        (u, _) => u.unwrap_or_default(),
                    },
                    serial: text(&r["serial"]).unwrap_or_default(),
                    action: text(&r["action"]).unwrap_or_default(),
                    result: text(&r["result"]).unwrap_or_default(),
                    reason: text(&r["reason"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default())
}

fn counts(value: &Value) -> Vec<(String, u64)> {
    value
        .as_object()
        .map(|map| map.iter().map(|(k, v)| (k.clone(), number(v))).collect())
        .unwrap_or_default()
}

fn health(value: &Value) -> Health {
    Health {
        name: text(&value["name"]).unwrap_or_default(),
        ok: value["ok"].as_bool().unwrap_or(false),
        error: text(&value["error"]),
    }
}

/// `GET /api/v1/state`.
pub async fn state(shared: &Arc<AdminShared>, operator: Operator) -> Result<StateView, ApiError> {
    let value = json_of(api_audit::state(State(shared.clone()), operator).await).await?;
    let mut peers = vec![health(&value["store"])];
    if let Some(directories) = value["directories"].as_array() {
        peers.extend(directories.iter().map(health));
    }
    Ok(StateView {
        per_minute: value["logins_per_minute"].as_f64(),
        decisions: counts(&value["decisions"]),
        rejects: counts(&value["rejects_by_reason"]),
        deliveries: value["deliveries"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|d| Delivery {
                        provider: text(&d["provider"]).unwrap_or_default(),
                        attempts: number(&d["attempts"]),
                        failures: counts(&d["failures"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        health: peers,
    })
}
