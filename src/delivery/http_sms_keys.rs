//! `HttpSMSProvider`'s keys: LinOTP's names as the config gives them ([`HttpSmsConfig`]), the
//! check that parses what can be parsed at load (URL, method, reply rule) into
//! [`HttpSmsSettings`], and the values a gateway's reply must not echo. Sending lives in
//! `http_sms.rs`, which reads these; nothing here imports it back.

use std::fmt;
use std::path::PathBuf;

use regex::Regex;
use serde::Deserialize;

use crate::backend::Problem;
use crate::linotp_values::{Flag, StringMap, Timeout};
use crate::secret::Secret;

/// [`HttpSmsConfig`], checked: what the check parsed (URL, method, reply rule) goes on to
/// [`HttpSmsProvider::new`](super::http_sms::HttpSmsProvider::new) as it is.
#[derive(Clone)]
pub struct HttpSmsSettings {
    /// The keys as given.
    pub config: HttpSmsConfig,
    pub(super) url: reqwest::Url,
    pub(super) method: Method,
    pub(super) rule: ReplyRule,
}

/// The keys only: the parsed URL may carry credentials.
impl fmt::Debug for HttpSmsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

/// `SERVER_CERTIFICATE`: a CA file, or `false` to switch verification off.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ServerCertificate {
    /// `false` disables verification (LinOTP's meaning); `true` is the default verification.
    Verify(bool),
    /// A PEM file with the CA certificate(s) to trust instead of the system's; an empty string
    /// or `"false"`/`"true"` as a string mean the same as the booleans.
    File(String),
}

/// `PROXY`: one URL for every scheme, or LinOTP's `{scheme: url}` dict.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum ProxySetting {
    /// One proxy for http and https. May carry `user:password@`.
    All(Secret),
    /// Per scheme (`http`, `https`).
    PerScheme(std::collections::BTreeMap<String, Secret>),
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::All(_) => f.write_str("All(***)"),
            ProxySetting::PerScheme(m) => {
                f.debug_map().entries(m.keys().map(|k| (k, "***"))).finish()
            }
        }
    }
}

/// `[provider.sms.NAME]` with `class = "HttpSMSProvider"`: LinOTP's keys, same spelling.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSmsConfig {
    /// The gateway's URL (required).
    #[serde(rename = "URL")]
    pub url: String,
    /// `GET` or `POST` (default), any case.
    #[serde(rename = "HTTP_Method", default)]
    pub http_method: Option<String>,
    /// Fixed parameters, merged after phone and text.
    #[serde(rename = "PARAMETER", default)]
    pub parameter: StringMap,
    /// The parameter holding the text (default `sms`).
    #[serde(rename = "SMS_TEXT_KEY", default)]
    pub sms_text_key: Option<String>,
    /// The parameter holding the phone number (default `phone`).
    #[serde(rename = "SMS_PHONENUMBER_KEY", default)]
    pub sms_phonenumber_key: Option<String>,
    /// Basic-auth user.
    #[serde(rename = "USERNAME", default)]
    pub username: Option<String>,
    /// Basic-auth password.
    #[serde(rename = "PASSWORD", default)]
    pub password: Option<Secret>,
    /// `basic` only (LinOTP's `digest` is not supported).
    #[serde(rename = "AUTH_TYPE", default)]
    pub auth_type: Option<String>,
    /// Proxy URL(s); without it no proxy is used, whatever the environment says.
    #[serde(rename = "PROXY", default)]
    pub proxy: Option<ProxySetting>,
    /// Extra request headers.
    #[serde(rename = "HEADERS", default)]
    pub headers: StringMap,
    /// Seconds, or `"connect,read"` (default 5).
    #[serde(rename = "timeout", alias = "TIMEOUT", default)]
    pub timeout: Option<Timeout>,
    /// CA file, or `false` to disable certificate verification.
    #[serde(rename = "SERVER_CERTIFICATE", default)]
    pub server_certificate: Option<ServerCertificate>,
    /// Reduce the phone number to `+` and digits.
    #[serde(rename = "MSISDN", default)]
    pub msisdn: Flag,
    /// A prefix to strip from the phone number (e.g. `+`).
    #[serde(rename = "SUPPRESS_PREFIX", default)]
    pub suppress_prefix: Option<String>,
    /// Success when the reply starts with this.
    #[serde(rename = "RETURN_SUCCESS", default)]
    pub return_success: Option<String>,
    /// Success when this regex matches somewhere in the reply.
    #[serde(rename = "RETURN_SUCCESS_REGEX", default)]
    pub return_success_regex: Option<String>,
    /// Failure when the reply starts with this.
    #[serde(rename = "RETURN_FAIL", default)]
    pub return_fail: Option<String>,
    /// Failure when this regex matches somewhere in the reply.
    #[serde(rename = "RETURN_FAIL_REGEX", default)]
    pub return_fail_regex: Option<String>,
    /// LinOTP 2.x's choice of Python HTTP library: accepted and ignored.
    #[serde(rename = "PREFERRED_HTTPLIB", default)]
    pub preferred_httplib: Option<String>,
}

impl fmt::Debug for HttpSmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSmsConfig")
            .field("url", &redact_url(&self.url))
            .field("http_method", &self.http_method)
            .field("parameter", &self.parameter)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("proxy", &self.proxy)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("server_certificate", &self.server_certificate)
            .field("msisdn", &self.msisdn)
            .field("suppress_prefix", &self.suppress_prefix)
            .finish_non_exhaustive()
    }
}

/// The URL without `user:password@` and without the query (which may hold API keys).
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("***");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
}

/// LinOTP's reply rules, in precedence order; only the first configured one counts.
#[derive(Debug, Clone)]
pub(super) enum ReplyRule {
    SuccessRegex(Regex),
    FailRegex(Regex),
    SuccessPrefix(String),
    FailPrefix(String),
    Anything,
}

impl ReplyRule {
    pub(super) fn from_config(c: &HttpSmsConfig) -> Result<Self, Problem> {
        let regex = |key: &str, r: &str| {
            Regex::new(r).map_err(|e| Problem::new(key, format!("not a regular expression: {e}")))
        };
        Ok(if let Some(r) = &c.return_success_regex {
            ReplyRule::SuccessRegex(regex("RETURN_SUCCESS_REGEX", r)?)
        } else if let Some(r) = &c.return_fail_regex {
            ReplyRule::FailRegex(regex("RETURN_FAIL_REGEX", r)?)
        } else if let Some(p) = &c.return_success {
            ReplyRule::SuccessPrefix(p.clone())
        } else if let Some(p) = &c.return_fail {
            ReplyRule::FailPrefix(p.clone())
        } else {
            ReplyRule::Anything
        })
    }

    /// Whether a reply means the gateway took the message; `Err` says why not.
    pub(super) fn check(&self, status: u16, body: &str) -> Result<(), &'static str> {
        if !(200..300).contains(&status) {
            return Err("the gateway answered with an error status");
        }
        match self {
            ReplyRule::SuccessRegex(r) if !r.is_match(body) => {
                Err("the reply does not match RETURN_SUCCESS_REGEX")
            }
            ReplyRule::FailRegex(r) if r.is_match(body) => {
                Err("the reply matches RETURN_FAIL_REGEX")
            }
            ReplyRule::SuccessPrefix(p) if !body.starts_with(p.as_str()) => {
                Err("the reply does not start with RETURN_SUCCESS")
            }
            ReplyRule::FailPrefix(p) if body.starts_with(p.as_str()) => {
                Err("the reply starts with RETURN_FAIL")
            }
            _ => Ok(()),
        }
    }
}

impl HttpSmsConfig {
    /// The values a gateway's reply must not carry into a log: `PARAMETER` and `HEADERS`
    /// values, the URL's query values and credentials, `USERNAME`/`PASSWORD`, and the proxy
    /// URLs with their credentials.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self.parameter.0.values().cloned().collect();
        values.extend(self.headers.0.values().cloned());
        let mut urls = vec![self.url.clone()];
        match &self.proxy {
            None => {}
            Some(ProxySetting::All(url)) => urls.push(String::from_utf8_lossy(url.expose()).into()),
            Some(ProxySetting::PerScheme(map)) => urls.extend(
                map.values()
                    .map(|u| String::from_utf8_lossy(u.expose()).into_owned()),
            ),
        }
        for (i, url) in urls.iter().enumerate() {
            // The gateway URL itself is not secret; a proxy URL with credentials is.
            if i > 0 {
                values.push(url.clone());
            }
            if let Ok(u) = reqwest::Url::parse(url) {
                values.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
                if let Some(q) = u.query() {
                    values.push(q.to_string());
                }
                let user = decode(u.username());
                let password = Secret::from(decode(u.password().unwrap_or("")));
                values.extend(super::redact::credentials(Some(&user), Some(&password)));
            }
        }
        values.extend(super::redact::credentials(
            self.username.as_deref(),
            self.password.as_ref(),
        ));
        values
    }

    /// Checks what can be checked without the outside world (for `file:line` errors at load).
    pub fn check(self) -> Result<HttpSmsSettings, Problem> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| Problem::new("URL", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Problem::new(
                "URL",
                format!("scheme {:?} is not http or https", url.scheme()),
            ));
        }
        let method = self.method()?;
        self.check_proxy()?;
        let rule = ReplyRule::from_config(&self)?;
        if let Some(t) = &self.auth_type
            && !t.eq_ignore_ascii_case("basic")
        {
            return Err(Problem::new(
                "AUTH_TYPE",
                format!("{t:?} is not supported (only \"basic\")"),
            ));
        }
        Ok(HttpSmsSettings {
            config: self,
            url,
            method,
            rule,
        })
    }

    /// `PROXY`: http:// or https:// URLs only (reqwest is built without SOCKS), and per-scheme
    /// keys `http`/`https`. Anything else would be skipped silently and the gateway reached
    /// directly. Errors never quote the URL: it may carry credentials.
    fn check_proxy(&self) -> Result<(), Problem> {
        let urls: Vec<(Option<&str>, &Secret)> = match &self.proxy {
            None => vec![],
            Some(ProxySetting::All(url)) => vec![(None, url)],
            Some(ProxySetting::PerScheme(map)) => {
                map.iter().map(|(k, v)| (Some(k.as_str()), v)).collect()
            }
        };
        for (key, url) in urls {
            if let Some(key) = key
                && !matches!(key.to_ascii_lowercase().as_str(), "http" | "https")
            {
                return Err(Problem::new(
                    "PROXY",
                    format!("scheme {key:?} is not http or https"),
                ));
            }
            let text = String::from_utf8_lossy(url.expose());
            match reqwest::Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => {
                    return Err(Problem::new(
                        "PROXY",
                        format!(
                            "scheme {:?} is not supported (use an http:// or https:// proxy)",
                            u.scheme()
                        ),
                    ));
                }
                Err(_) => return Err(Problem::new("PROXY", "not a proxy URL")),
            }
        }
        Ok(())
    }

    fn method(&self) -> Result<Method, Problem> {
        match self.http_method.as_deref().map(str::to_ascii_uppercase) {
            None => Ok(Method::Post),
            Some(m) if m == "POST" => Ok(Method::Post),
            Some(m) if m == "GET" => Ok(Method::Get),
            Some(m) => Err(Problem::new(
                "HTTP_Method",
                format!("{m:?} is not GET or POST"),
            )),
        }
    }

    /// Resolves a relative `SERVER_CERTIFICATE` path against the config file's directory.
    pub fn resolve_paths(&mut self, resolve: impl Fn(&std::path::Path) -> PathBuf) {
        if let Some(ServerCertificate::File(f)) = &self.server_certificate
            && !matches!(
                f.trim().to_ascii_lowercase().as_str(),
                "" | "true" | "false"
            )
        {
            let resolved = resolve(std::path::Path::new(f));
            self.server_certificate = Some(ServerCertificate::File(
                resolved.to_string_lossy().into_owned(),
            ));
        }
    }
}

/// Percent-decoding for URL user info.
pub(super) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
