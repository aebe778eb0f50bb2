//! A request's fields: a JSON object or an urlencoded form in the body (the API's clients
//! send JSON, the page's forms send urlencoded), or the query string of a GET. The body is
//! read under [`BODY_LIMIT`] and [`BODY_TIMEOUT`], as `/validate/check`'s is.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};

use super::answer::ApiError;
use crate::secret::Secret;

/// The largest admin request body (an enrolment with a description is a few hundred octets).
pub const BODY_LIMIT: usize = 16 * 1024;

/// How long a client may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Named text fields; a name given twice keeps its first value. `Debug` shows names only:
/// a field may hold a password or a code.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<String, String>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Fields {
    /// Fields from `name=value` pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k.into()).or_insert_with(|| v.into());
        }
        Fields(map)
    }

    /// The query string's fields.
    pub fn from_query(query: Option<&str>) -> Self {
        Fields::from_pairs(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned())
    }

    /// The body's fields: JSON (an object of strings, numbers or booleans) when the
    /// Content-Type says so, else an urlencoded form.
    pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Ok(Fields::from_pairs(
                form_urlencoded::parse(body).into_owned(),
            ));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields::default());
        }
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        };
        let mut map = BTreeMap::new();
        for (name, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "field {name:?} must be a string, a number or a boolean"
                    )));
                }
            };
            map.insert(name, text);
        }
        Ok(Fields(map))
    }

    /// A field, trimmed; `None` when missing or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A field that must be there.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::bad_request(format!("missing field: {name}")))
    }

    /// A field as a secret (a password, a code), untrimmed; `None` when missing or empty.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.0
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| Secret::from(v.as_str()))
    }

    /// A field as a boolean (`true`/`1`/`yes`/`on`).
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| {
            ["true", "1", "yes", "on"]
                .iter()
                .any(|t| v.eq_ignore_ascii_case(t))
        })
    }
}

/// Reads a body under [`BODY_LIMIT`] and [`BODY_TIMEOUT`].
pub async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    read_body_up_to(body, BODY_LIMIT).await
}

/// The largest seed file upload (`POST /api/v1/tokens/import`): a PSKC file of thousands of
/// fobs.
pub const UPLOAD_LIMIT: usize = 8 * 1024 * 1024;

/// A body of at most `limit` octets, read under [`BODY_TIMEOUT`].
pub async fn read_body_up_to(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request body not received in time",
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} octets, or unreadable"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn json_and_forms_give_the_same_fields() {
        let mut headers = HeaderMap::new();
        let form = Fields::from_body(&headers, b"user=alice&csrf=ab&n=2&user=eve").unwrap();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let json =
            Fields::from_body(&headers, br#"{"user": " alice ", "csrf": "ab", "n": 2}"#).unwrap();
        for fields in [&form, &json] {
            assert_eq!(fields.get("user"), Some("alice"));
            assert_eq!(fields.get("n"), Some("2"));
            assert_eq!(fields.get("nothing"), None);
        }
        assert!(Fields::from_body(&headers, b"[1]").is_err());
        assert!(Fields::from_body(&headers, br#"{"a": [1]}"#).is_err());
        assert_eq!(format!("{form:?}"), r#"{"csrf", "n", "user"}"#);
    }
}
