//! The parameters of `/validate/check` and `/validate/simplecheck`, from wherever the caller
//! put them: the query string, an `application/x-www-form-urlencoded` body, a
//! `multipart/form-data` body (simpleSAMLphp's client) or a JSON object (some privacyIDEA
//! clients; an unlabelled body that starts with `{` is read as JSON too, as privacyIDEA does).
//!
//! Only the names tessera uses are kept — `user`, `pass`, `realm` and the second round's
//! `transaction_id` (privacyIDEA), `transactionid` or `state` (LinOTP); any other (`client`,
//! `resConf`, `serial` …) is ignored. A value in the body wins over the same name in the query
//! string; within one source the first occurrence wins. The password stays a [`Secret`] from
//! the moment it is read.

use axum::body::Bytes;

use crate::secret::Secret;

/// The parameters tessera reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    /// `user`: the login, maybe `user@realm`.
    pub user: Option<String>,
    /// `pass`: password, PIN, PIN+OTP or OTP.
    pub pass: Option<Secret>,
    /// `realm`: appended to a `user` without one.
    pub realm: Option<String>,
    /// `transaction_id`, `transactionid` or `state`, in that order of preference; LinOTP's
    /// sub-transaction suffix (`<id>.01`) removed.
    pub transaction_id: Option<String>,
}

/// Why the parameters could not be read; the text goes to the caller (it names no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The body is not what its Content-Type says.
    #[error("malformed {0} body")]
    Malformed(&'static str),
    /// A Content-Type tessera does not read.
    #[error("unsupported content type {0:?}")]
    ContentType(String),
}

/// One source's values, before they are merged.
#[derive(Default)]
struct Raw {
    user: Option<String>,
    pass: Option<String>,
    realm: Option<String>,
    transaction_id: Option<String>,
    transactionid: Option<String>,
    state: Option<String>,
}

impl Raw {
    /// Keeps `name = value` when tessera reads `name` and has no value for it yet.
    fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "user" => &mut self.user,
            "pass" => &mut self.pass,
            "realm" => &mut self.realm,
            "transaction_id" => &mut self.transaction_id,
            "transactionid" => &mut self.transactionid,
            "state" => &mut self.state,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// `self`'s values, or `under`'s where `self` has none.
    fn over(self, under: Raw) -> Raw {
        Raw {
            user: self.user.or(under.user),
            pass: self.pass.or(under.pass),
            realm: self.realm.or(under.realm),
            transaction_id: self.transaction_id.or(under.transaction_id),
            transactionid: self.transactionid.or(under.transactionid),
            state: self.state.or(under.state),
        }
    }

    fn into_params(self) -> Params {
        let transaction_id = [self.transaction_id, self.transactionid, self.state]
            .into_iter()
            .flatten()
            .find(|id| !id.is_empty())
            .map(|id| match id.split_once('.') {
                Some((head, _)) => head.to_string(),
                None => id,
            });
        Params {
            user: self.user,
            pass: self.pass.map(Secret::from),
            realm: self.realm.filter(|r| !r.is_empty()),
            transaction_id,
        }
    }
}

/// Reads the parameters of one request: its query string, and its body as `content_type` says.
pub async fn parse(
    query: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Params, ParamsError> {
    let from_query = query.map(|q| urlencoded(q.as_bytes())).unwrap_or_default();
    let from_body = if body.is_empty() {
        Raw::default()
    } else {
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match essence.as_str() {
            "application/x-www-form-urlencoded" => urlencoded(&body),
            "multipart/form-data" => multipart(content_type.unwrap_or_default(), body).await?,
            e if e == "application/json" || e.ends_with("+json") => json(&body)?,
            // privacyIDEA reads an unlabelled JSON body; anything else unlabelled as a form.
            "" | "text/plain" if body.trim_ascii_start().starts_with(b"{") => json(&body)?,
            "" | "text/plain" => urlencoded(&body),
            other => return Err(ParamsError::ContentType(other.to_string())),
        }
    };
    Ok(from_body.over(from_query).into_params())
}

fn urlencoded(text: &[u8]) -> Raw {
    let mut raw = Raw::default();
    for (name, value) in form_urlencoded::parse(text) {
        raw.set(&name, value.into_owned());
    }
    raw
}

/// A JSON object's members; strings as they are, numbers and booleans as their text (a code
/// sent as a number), anything else ignored.
fn json(body: &[u8]) -> Result<Raw, ParamsError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| ParamsError::Malformed("JSON"))?;
    let serde_json::Value::Object(members) = value else {
        return Err(ParamsError::Malformed("JSON"));
    };
    let mut raw = Raw::default();
    for (name, value) in members {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        raw.set(&name, text);
    }
    Ok(raw)
}

/// A multipart body's text fields (files are read like fields: a value is a value).
async fn multipart(content_type: &str, body: Bytes) -> Result<Raw, ParamsError> {
    let malformed = |_| ParamsError::Malformed("multipart");
    let boundary = multer::parse_boundary(content_type).map_err(malformed)?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut raw = Raw::default();
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_string();
        let value = field.bytes().await.map_err(malformed)?;
        let Ok(value) = String::from_utf8(value.to_vec()) else {
            return Err(ParamsError::Malformed("multipart"));
        };
        raw.set(&name, value);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<Params, ParamsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(parse(query, content_type, Bytes::from(body.to_string())))
    }

    fn params(user: &str, pass: &str, id: Option<&str>) -> Params {
        Params {
            user: Some(user.into()),
            pass: Some(Secret::from(pass)),
            realm: None,
            transaction_id: id.map(str::to_string),
        }
    }

    #[test]
    fn every_source_and_every_name_of_the_transaction() {
        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(
            run(Some("user=alice&pass=a%2Bb&client=10.0.0.1"), None, ""),
            Ok(params("alice", "a+b", None))
        );
        assert_eq!(
            run(None, form, "user=alice&pass=123456&transactionid=ab12.01"),
            Ok(params("alice", "123456", Some("ab12")))
        );
        assert_eq!(
            run(None, form, "user=alice&pass=1&state=cd34&transaction_id="),
            Ok(params("alice", "1", Some("cd34")))
        );
        assert_eq!(
            run(
                None,
                Some("application/json; charset=utf-8"),
                r#"{"user":"alice","pass":123456,"transaction_id":"ef56","x":[1]}"#
            ),
            Ok(params("alice", "123456", Some("ef56")))
        );
        assert_eq!(
            run(None, None, r#" {"user":"alice","pass":"p"}"#),
            Ok(params("alice", "p", None))
        );
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n\
                         --XyZ\r\nContent-Disposition: form-data; name=\"pass\"\r\n\r\nwonder land\r\n--XyZ--\r\n";
        assert_eq!(
            run(None, Some("multipart/form-data; boundary=XyZ"), multipart),
            Ok(params("alice", "wonder land", None))
        );
    }

    #[test]
    fn the_body_wins_over_the_query_string() {
        assert_eq!(
            run(
                Some("user=mallory&realm=corp"),
                Some("application/x-www-form-urlencoded"),
                "user=alice&pass=x"
            ),
            Ok(Params {
                realm: Some("corp".into()),
                ..params("alice", "x", None)
            })
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for (content_type, body) in [
            ("application/json", "{\"user\":"),
            ("application/json", "[1,2]"),
            ("multipart/form-data", "--a\r\n"),
            ("multipart/form-data; boundary=a", "--a\r\nno header end"),
            (
                "multipart/form-data; boundary=a",
                "--a\r\nContent-Disposition: form-data; name=\"pass\"\r\n\r\n\u{fffd}",
            ),
        ] {
            assert!(
                run(None, Some(content_type), body).is_err(),
                "{content_type}: {body:?}"
            );
        }
        assert_eq!(
            run(None, Some("application/xml"), "<a/>"),
            Err(ParamsError::ContentType("application/xml".into()))
        );
    }

    proptest::proptest! {
        /// Hostile bodies under every Content-Type tessera reads end in parameters or an
        /// error, never a panic.
        #[test]
        fn any_body_is_read_or_refused(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
            multipart_prefix in proptest::prelude::any::<bool>(),
            kind in 0usize..6,
        ) {
            let content_type = [
                None,
                Some("application/x-www-form-urlencoded"),
                Some("application/json"),
                Some("multipart/form-data; boundary=b"),
                Some("multipart/form-data"),
                Some("text/plain"),
            ][kind];
            let mut bytes = if multipart_prefix {
                b"--b\r\nContent-Disposition: form-data; name=\"pass\"\r\n\r\n".to_vec()
            } else {
                vec![]
            };
            bytes.extend(body);
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = runtime.block_on(parse(Some("user=a&pass=b"), content_type, Bytes::from(bytes)));
        }
    }
}
