//! The message of the last action, carried across the redirect that follows every form
//! (post, redirect, get: a reload never repeats an action). It travels in a cookie of its own,
//! `tessera_flash`, HttpOnly, SameSite=Strict, limited to the page's path and read once: the
//! screen that shows it clears it. The text is not secret ("Token LSSM0001 disabled"), is
//! escaped when shown, and never goes into a URL, so no log or history keeps it.

use axum::http::{HeaderMap, HeaderValue, header};

use super::html::Flash;

/// The cookie's name.
pub const COOKIE: &str = "tessera_flash";

/// The longest message carried (a cookie is small; messages are one line).
const MAX: usize = 300;

/// The `Set-Cookie` value that carries `flash` to the next screen.
pub fn set(flash: &Flash) -> String {
    let (kind, text) = match flash {
        Flash::Ok(text) => ("ok", text),
        Flash::Error(text) => ("error", text),
        Flash::Info(text) => ("info", text),
    };
    let text: String = text.chars().take(MAX).collect();
    let value: String =
        form_urlencoded::byte_serialize(format!("{kind}:{text}").as_bytes()).collect();
    format!(
        "{COOKIE}={value}; Path={}; HttpOnly; SameSite=Strict",
        super::PREFIX
    )
}

/// The `Set-Cookie` value that clears it.
pub fn clear() -> String {
    format!(
        "{COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        super::PREFIX
    )
}

/// The message the request carries, if any.
pub fn read(headers: &HeaderMap) -> Option<Flash> {
    let raw = cookie(headers, COOKIE)?;
    let decoded: String = form_urlencoded::parse(format!("v={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let (kind, text) = decoded.split_once(':')?;
    let text: String = text.chars().take(MAX).collect();
    match kind {
        "ok" => Some(Flash::Ok(text)),
        "error" => Some(Flash::Error(text)),
        "info" => Some(Flash::Info(text)),
        _ => None,
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Adds `Set-Cookie: value` to `headers`.
pub fn add(headers: &mut HeaderMap, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_survives_the_cookie() {
        let flash = Flash::Ok("Token LSSM0001 disabled; <b> & ü".into());
        let set = set(&flash);
        let value = set.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        assert_eq!(read(&headers), Some(flash));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("tessera_flash=x%3Ay"),
        );
        assert_eq!(read(&headers), None, "an unknown kind is dropped");
    }
}
