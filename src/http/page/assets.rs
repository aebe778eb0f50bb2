//! The page's two assets, compiled into the binary (many sites are air-gapped: no CDN, no
//! build step): `tessera.css` and `tessera.js`, under `/ui/assets/`; and the HTML answer and
//! redirect every screen uses. The security headers (the Content-Security-Policy that allows
//! only these files: no inline script or style; no framing; no caching) are added to every
//! page and API answer by the admin router's layer (`http::admin::answer::secured`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet.
pub const CSS: &str = include_str!("assets/tessera.css");

/// The script: search as you type and confirmation dialogs; the page works without it.
pub const JS: &str = include_str!("assets/tessera.js");

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
    response
}

/// An HTML answer.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A redirect after a form (303: the browser GETs `location`).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
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
    }
}
