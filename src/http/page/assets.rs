//! The page's two assets, compiled into the binary (many sites are air-gapped: no CDN, no
//! build step): `tessera.css` and `tessera.js`, under `/ui/assets/`. And the headers every
//! answer of the page carries: the Content-Security-Policy that allows only these files (no
//! inline script or style, no framing, forms only to ourselves), and no caching of screens
//! that show a user's tokens.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet.
pub const CSS: &str = include_str!("assets/tessera.css");

/// The script: search as you type and confirmation dialogs; the page works without it.
pub const JS: &str = include_str!("assets/tessera.js");

/// The policy: our own files only (the enrolment's QR code is an inline SVG element).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// `GET /ui/assets/tessera.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /ui/assets/tessera.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // An hour: a new release's file is fetched again soon enough, without a hash in its name.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    secure(headers);
    response
}

/// The headers of every answer of the page.
pub fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// An HTML answer with the page's headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(headers);
    response
}

/// A redirect after a form (303: the browser GETs `location`), with the page's headers.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    secure(headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assets_have_no_outside_reference() {
        for text in [CSS, JS] {
            assert!(!text.contains("http://"), "no outside URL");
            assert!(!text.contains("https://"), "no outside URL");
            assert!(!text.contains("@import"), "no import");
        }
        assert!(!CSP.contains("unsafe-inline"));
    }
}
