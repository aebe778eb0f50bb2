//! The admin API's answers: JSON bodies, errors as `{"error": "…"}` with their status
//! ([`ApiError`]), the session cookie, and the security headers every admin and page answer
//! carries ([`secured`]).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::session::{COOKIE, COOKIE_TLS};
use crate::admin::AdminError;

/// The Content-Security-Policy of every admin answer: scripts and styles only from tessera
/// itself (no inline script), images also as `data:` (the QR code), `fetch` only to tessera
/// (the page's search as you type), no framing, forms only to tessera.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// An admin request refused or failed: the status and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// 400, 401, 403, 404, 500 …
    pub status: StatusCode,
    /// What to tell the operator (never a secret, never an internal detail).
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no session, or it expired.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match &error {
            AdminError::NoToken(_) | AdminError::NoUser { .. } => {
                ApiError::not_found(error.to_string())
            }
            AdminError::BadInput(_) => ApiError::bad_request(error.to_string()),
            AdminError::NotAllowed(_) => ApiError::forbidden(error.to_string()),
            AdminError::Directory(_) => {
                tracing::error!(%error, "admin API: a directory failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a directory is unavailable; see the log",
                )
            }
            AdminError::Store(_) | AdminError::Enroll(_) => {
                tracing::error!(%error, "admin API: the store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the token store failed; see the log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
        }
        json(
            self.status,
            &Body {
                error: &self.message,
            },
        )
    }
}

/// `value` as a JSON answer with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "admin API: an answer could not be serialized");
            (StatusCode::INTERNAL_SERVER_ERROR, "").into_response()
        }
    }
}

/// `value` as a 200 JSON answer.
pub fn ok<T: Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

/// Adds the security headers to an admin or page answer (a middleware: see `router`).
pub async fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The session cookie's name under TLS or not.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls { COOKIE_TLS } else { COOKIE }
}

/// The session id from the request's cookies, if it sent one.
pub fn cookie_of(headers: &HeaderMap, tls: bool) -> Option<String> {
    let name = cookie_name(tls);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for session `id`: `HttpOnly; SameSite=Strict; Path=/`, and `Secure` under
/// TLS. No `Max-Age`: the browser forgets it when it closes; the server ends it sooner.
pub fn set_cookie(id: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let text = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/{secure}",
        cookie_name(tls)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that makes the browser forget the session cookie.
pub fn clear_cookie(tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let text = format!(
        "{}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/{secure}",
        cookie_name(tls)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `response` with `cookie` set.
pub fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_and_checked() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; tessera_session=ab12; x=y"),
        );
        assert_eq!(cookie_of(&headers, false).as_deref(), Some("ab12"));
        assert_eq!(
            cookie_of(&headers, true),
            None,
            "under TLS the name is __Host-"
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("tessera_session=../x"),
        );
        assert_eq!(cookie_of(&headers, false), None);
        let set = set_cookie("ab12", true);
        assert_eq!(
            set.to_str().unwrap(),
            "__Host-tessera_session=ab12; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
    }
}
