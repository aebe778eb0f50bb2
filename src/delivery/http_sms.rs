//! `HttpSMSProvider`: hands an SMS to a web gateway with one HTTP GET or POST (reqwest, rustls).
//!
//! The keys are LinOTP's (`linotp/provider/smsprovider/HttpSMSProvider.py`), so a LinOTP
//! provider JSON loads unchanged. The phone number and text go into the parameters named by
//! `SMS_PHONENUMBER_KEY`/`SMS_TEXT_KEY`; the fixed `PARAMETER`s are merged afterwards and may
//! override them. GET puts the parameters in the query string, POST in a form body.
//!
//! Whether the gateway took the message is decided as in LinOTP, from the reply body and the
//! first configured rule of `RETURN_SUCCESS_REGEX` (search) > `RETURN_FAIL_REGEX` (search) >
//! `RETURN_SUCCESS` (prefix) > `RETURN_FAIL` (prefix) > anything goes. One deliberate
//! improvement: a status other than 2xx is a failure whatever the body says.
//!
//! No connection, or no complete answer within `timeout`: [`DeliveryError::Unavailable`], so the
//! next provider is tried. An answer that says no: [`DeliveryError::Refused`], with the reply.
//! URLs are never put in errors, because with GET they carry the OTP and gateway passwords.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use regex::Regex;
use serde::Deserialize;

use super::class::{ProviderClass, ProviderSettings};
use super::{Channel, DeliveryError, Message, PhoneFormat, Provider, Receipt, peer_reply};
use crate::backend::{Problem, Resolve, from_table};
use crate::linotp_values::{Flag, StringMap, Timeout};
use crate::secret::Secret;

/// The registry's row: `class = "HttpSMSProvider"`.
pub static CLASS: ProviderClass = ProviderClass {
    name: "HttpSMSProvider",
    aliases: &[],
    channels: &[Channel::Sms],
    check,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<std::sync::Arc<dyn ProviderSettings>, Vec<Problem>> {
    let mut config: HttpSmsConfig = from_table(keys)?;
    config.resolve_paths(resolve);
    Ok(std::sync::Arc::new(config.check()?))
}

/// [`HttpSmsConfig`], checked: what the check parsed (URL, method, reply rule) goes on to
/// [`HttpSmsProvider::new`] as it is.
#[derive(Clone)]
pub struct HttpSmsSettings {
    /// The keys as given.
    pub config: HttpSmsConfig,
    url: reqwest::Url,
    method: Method,
    rule: ReplyRule,
}

/// The keys only: the parsed URL may carry credentials.
impl fmt::Debug for HttpSmsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl ProviderSettings for HttpSmsSettings {
    fn secret_values(&self) -> Vec<String> {
        self.config.secret_values()
    }

    fn open(&self, name: &str) -> Result<std::sync::Arc<dyn Provider>, String> {
        Ok(std::sync::Arc::new(HttpSmsProvider::new(name, self)?))
    }
}

/// How much of a reply is redacted for its excerpt (characters): far more than the excerpt's
/// 200 plus the longest encoding of a secret that could start inside it.
const REDACTED_HEAD: usize = 4096;

/// The longest gateway reply read; the rest is ignored (a reply is a status line, not a file).
const MAX_REPLY: usize = 64 * 1024;

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
enum Method {
    Get,
    Post,
}

/// LinOTP's reply rules, in precedence order; only the first configured one counts.
#[derive(Debug, Clone)]
enum ReplyRule {
    SuccessRegex(Regex),
    FailRegex(Regex),
    SuccessPrefix(String),
    FailPrefix(String),
    Anything,
}

impl ReplyRule {
    fn from_config(c: &HttpSmsConfig) -> Result<Self, Problem> {
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
    fn check(&self, status: u16, body: &str) -> Result<(), &'static str> {
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

/// See the module documentation.
pub struct HttpSmsProvider {
    name: String,
    client: reqwest::Client,
    url: reqwest::Url,
    method: Method,
    text_key: String,
    phone_key: String,
    parameter: StringMap,
    basic_auth: Option<(String, Secret)>,
    rule: ReplyRule,
    total_timeout: Duration,
    phone: PhoneFormat,
    /// Applied to the reply before it is cut to size (so no half secret is left at the cut).
    redactor: super::redact::Redactor,
}

/// `PROXY` on the client builder; without it, no proxy at all (whatever the environment says).
fn with_proxy(
    builder: reqwest::ClientBuilder,
    setting: Option<&ProxySetting>,
) -> Result<reqwest::ClientBuilder, String> {
    Ok(match setting {
        None => builder.no_proxy(),
        Some(ProxySetting::All(url)) => builder.proxy(proxy(url, None)?),
        Some(ProxySetting::PerScheme(map)) => {
            let mut b = builder;
            for (scheme, url) in map {
                b = match scheme.to_ascii_lowercase().as_str() {
                    "http" => b.proxy(proxy(url, Some("http"))?),
                    "https" => b.proxy(proxy(url, Some("https"))?),
                    other => {
                        return Err(format!("PROXY: scheme {other:?} is not http or https"));
                    }
                };
            }
            b
        }
    })
}

/// `SERVER_CERTIFICATE` on the client builder: the system's roots, none checked, or a CA file.
fn with_server_certificate(
    builder: reqwest::ClientBuilder,
    setting: Option<&ServerCertificate>,
) -> Result<reqwest::ClientBuilder, String> {
    Ok(match setting {
        None | Some(ServerCertificate::Verify(true)) => builder,
        Some(ServerCertificate::Verify(false)) => builder.danger_accept_invalid_certs(true),
        Some(ServerCertificate::File(f)) => match f.trim().to_ascii_lowercase().as_str() {
            "" | "true" => builder,
            "false" => builder.danger_accept_invalid_certs(true),
            _ => {
                let pem = std::fs::read(f).map_err(|e| format!("SERVER_CERTIFICATE: {f}: {e}"))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("SERVER_CERTIFICATE: {f}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("SERVER_CERTIFICATE: {f}: no PEM certificate"));
                }
                // As requests' `verify=<path>`: this CA bundle instead of the system's.
                builder.tls_certs_only(certs)
            }
        },
    })
}

impl HttpSmsProvider {
    /// Builds the provider and its HTTP client (reads `SERVER_CERTIFICATE`).
    pub fn new(name: &str, settings: &HttpSmsSettings) -> Result<Self, String> {
        let config = &settings.config;
        crate::tls::install_crypto_provider();
        let timeout = config.timeout.unwrap_or(Timeout::secs(5));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.connect)
            .timeout(timeout.total)
            // LinOTP (requests) follows redirects; a loop is cut short and counts as unavailable.
            .redirect(reqwest::redirect::Policy::limited(5));
        builder = with_proxy(builder, config.proxy.as_ref())?;
        builder = with_server_certificate(builder, config.server_certificate.as_ref())?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &config.headers.0 {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("HEADERS: {k:?} is not a header name"))?;
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("HEADERS: the value of {k:?} is not a header value"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = builder
            .default_headers(headers)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;

        let mut url = settings.url.clone();
        // LinOTP: without USERNAME/PASSWORD, credentials in the URL are used.
        let basic_auth = if config.username.is_some() || config.password.is_some() {
            Some((
                config.username.clone().unwrap_or_default(),
                config.password.clone().unwrap_or_default(),
            ))
        } else if !url.username().is_empty() {
            let user = decode(url.username());
            let password = Secret::from(decode(url.password().unwrap_or("")));
            Some((user, password))
        } else {
            None
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);

        Ok(HttpSmsProvider {
            name: name.to_string(),
            client,
            url,
            method: settings.method,
            text_key: config.sms_text_key.clone().unwrap_or_else(|| "sms".into()),
            phone_key: config
                .sms_phonenumber_key
                .clone()
                .unwrap_or_else(|| "phone".into()),
            parameter: config.parameter.clone(),
            basic_auth,
            rule: settings.rule.clone(),
            total_timeout: timeout.total,
            phone: PhoneFormat::new(config.msisdn, config.suppress_prefix.as_deref()),
            redactor: super::redact::Redactor::new(config.secret_values()),
        })
    }

    /// Phone and text first, then the fixed parameters (which may replace them).
    fn parameters(&self, message: &Message) -> Vec<(String, String)> {
        let phone = self.phone.apply(&message.recipient);
        let text = String::from_utf8_lossy(message.text.expose()).into_owned();
        let mut params = vec![(self.phone_key.clone(), phone)];
        if self.text_key == self.phone_key {
            params.clear();
        }
        params.push((self.text_key.clone(), text));
        for (k, v) in &self.parameter.0 {
            match params.iter_mut().find(|(name, _)| name == k) {
                Some(p) => p.1 = v.clone(),
                None => params.push((k.clone(), v.clone())),
            }
        }
        params
    }

    async fn exchange(&self, message: &Message) -> Result<(u16, String), reqwest::Error> {
        let params = self.parameters(message);
        let mut request = match self.method {
            Method::Get => self.client.get(self.url.clone()).query(&params),
            Method::Post => self.client.post(self.url.clone()).form(&params),
        };
        if let Some((user, password)) = &self.basic_auth {
            request = request.basic_auth(user, Some(String::from_utf8_lossy(password.expose())));
        }
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_REPLY {
                body.truncate(MAX_REPLY);
                break;
            }
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A proxy from a URL that may carry credentials (reqwest turns them into Proxy-Authorization).
/// `scheme`: the requests it is for (`None`: all).
fn proxy(url: &Secret, scheme: Option<&str>) -> Result<reqwest::Proxy, String> {
    let url = String::from_utf8_lossy(url.expose()).into_owned();
    let proxy = match scheme {
        None => reqwest::Proxy::all(url),
        Some("http") => reqwest::Proxy::http(url),
        Some(_) => reqwest::Proxy::https(url),
    };
    // The error would quote the URL and its password: say only what is wrong.
    proxy.map_err(|_| "PROXY: not a proxy URL".to_string())
}

/// Percent-decoding for URL user info.
fn decode(s: &str) -> String {
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

/// An error with its causes, without the request URL (it may hold the OTP and passwords).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl Provider for HttpSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let unavailable = |reason: String| DeliveryError::Unavailable {
            provider: self.name.clone(),
            reason,
        };
        // reqwest's own timeout covers the request; this one also bounds reading the body.
        let exchanged = tokio::time::timeout(self.total_timeout, self.exchange(message)).await;
        let (status, body) = match exchanged {
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {:.1}s",
                    self.total_timeout.as_secs_f64()
                )));
            }
            Ok(Err(e)) => {
                return Err(DeliveryError::judged(&self.name, e.without_url(), |e| {
                    let reason = self.redactor.redact(&error_chain(&e));
                    if e.is_connect() || e.is_timeout() || e.is_redirect() || e.is_request() {
                        unavailable(reason)
                    } else {
                        DeliveryError::Refused {
                            provider: self.name.clone(),
                            reason,
                        }
                    }
                }));
            }
            Ok(Ok(answer)) => answer,
        };
        // Only the head of the reply can reach the excerpt (`peer_reply` keeps 200
        // characters): redacting the head whole, before the excerpt is cut, leaves no half of
        // a secret at the cut.
        let head = body
            .char_indices()
            .nth(REDACTED_HEAD)
            .map_or(body.as_str(), |(cut, _)| {
                body.get(..cut).unwrap_or_default()
            });
        let reply = peer_reply(&self.redactor.redact(head), &message.text);
        match self.rule.check(status, &body) {
            Ok(()) => Ok(Receipt {
                provider: self.name.clone(),
                detail: format!("HTTP {status}: {reply}"),
            }),
            Err(why) => Err(DeliveryError::Refused {
                provider: self.name.clone(),
                reason: format!("{why}: HTTP {status}: {reply}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> HttpSmsConfig {
        toml::from_str(&format!("URL = \"http://127.0.0.1:9/send\"\n{extra}")).unwrap()
    }

    #[test]
    fn reply_rules_follow_linotp_precedence() {
        // Every rule set at once: the success regex alone decides.
        let all = config(
            "RETURN_SUCCESS_REGEX = \"queued\"\nRETURN_FAIL_REGEX = \"400\"\nRETURN_SUCCESS = \"ID\"\nRETURN_FAIL = \"FAILED\"",
        );
        let rule = ReplyRule::from_config(&all).unwrap();
        assert!(rule.check(200, "<Status>queued</Status> 400").is_ok());
        assert!(rule.check(200, "ID=1").is_err());

        let rule = ReplyRule::from_config(&config(
            "RETURN_FAIL_REGEX = \"<Status>400</Status>\"\nRETURN_SUCCESS = \"ID\"",
        ))
        .unwrap();
        assert!(rule.check(200, "x <Status>400</Status>").is_err());
        assert!(rule.check(200, "whatever").is_ok());

        let rule = ReplyRule::from_config(&config("RETURN_SUCCESS = \"ID\"")).unwrap();
        assert!(rule.check(200, "ID=123").is_ok());
        assert!(rule.check(200, "MISSING PARAMETERS").is_err());
        assert!(
            rule.check(200, " ID=123").is_err(),
            "a prefix, not a search"
        );

        let rule = ReplyRule::from_config(&config("RETURN_FAIL = \"FAILED\"")).unwrap();
        assert!(rule.check(200, "FAILED: no credit").is_err());
        assert!(rule.check(200, "OK").is_ok());

        let rule = ReplyRule::from_config(&config("")).unwrap();
        assert!(rule.check(200, "").is_ok());
    }

    #[test]
    fn non_2xx_fails_whatever_the_body() {
        let rule = ReplyRule::from_config(&config("RETURN_SUCCESS = \"ID\"")).unwrap();
        assert!(rule.check(500, "ID=1").is_err());
        assert!(
            ReplyRule::from_config(&config(""))
                .unwrap()
                .check(302, "")
                .is_err()
        );
    }

    #[test]
    fn config_checks() {
        assert!(config("HTTP_Method = \"get\"").check().is_ok());
        assert!(config("HTTP_Method = \"PUT\"").check().is_err());
        assert!(config("RETURN_SUCCESS_REGEX = \"(\"").check().is_err());
        assert!(config("AUTH_TYPE = \"digest\"").check().is_err());
        assert!(
            toml::from_str::<HttpSmsConfig>("URL = \"x\"\nRETRUN_SUCCESS = \"ID\"").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let c = config(
            "PASSWORD = \"pw-secret\"\nPARAMETER = { password = \"param-secret\" }\nPROXY = \"http://u:proxy-secret@p:8080\"\nHEADERS = { AUTH_TOKEN = \"header-secret\" }",
        );
        let mut with_url = c.clone();
        with_url.url = "https://user:url-secret@gw.example/send?key=query-secret".into();
        let debug = format!("{with_url:?}");
        for secret in [
            "pw-secret",
            "param-secret",
            "proxy-secret",
            "header-secret",
            "url-secret",
            "query-secret",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn parameters_override_phone_and_text() {
        let c = config(
            "MSISDN = true\nSUPPRESS_PREFIX = \"+\"\nSMS_TEXT_KEY = \"text\"\nPARAMETER = { text = \"fixed\", from = \"me\" }",
        );
        let p = HttpSmsProvider::new("gw", &c.check().unwrap()).unwrap();
        let params = p.parameters(&Message {
            channel: super::super::Channel::Sms,
            recipient: "+49 (0170) 123-45".into(),
            subject: None,
            text: Secret::from("123456"),
            serial: String::new(),
            user: String::new(),
        });
        assert_eq!(
            params,
            vec![
                ("phone".to_string(), "49017012345".to_string()),
                ("text".to_string(), "fixed".to_string()),
                ("from".to_string(), "me".to_string()),
            ]
        );
    }

    #[test]
    fn url_credentials_become_basic_auth() {
        let mut c = config("");
        c.url = "http://gw%40x:p%3Ass@127.0.0.1:9/send".into();
        let p = HttpSmsProvider::new("gw", &c.check().unwrap()).unwrap();
        let (user, password) = p.basic_auth.clone().unwrap();
        assert_eq!(user, "gw@x");
        assert_eq!(password, Secret::from("p:ss"));
        assert_eq!(p.url.as_str(), "http://127.0.0.1:9/send");
    }
}
