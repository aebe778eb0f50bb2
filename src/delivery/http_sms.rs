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

use std::time::Duration;

use async_trait::async_trait;

use super::class::{ProviderClass, ProviderSettings};
pub use super::http_sms_keys::{HttpSmsConfig, HttpSmsSettings, ProxySetting, ServerCertificate};
use super::http_sms_keys::{Method, ReplyRule, decode};
use super::{Channel, DeliveryError, Message, PhoneFormat, Provider, Receipt, peer_reply};
use crate::backend::{Problem, Resolve, from_table};
use crate::linotp_values::{StringMap, Timeout};
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
