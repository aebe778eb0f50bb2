//! `SmtpSMSProvider`: an SMS sent as an e-mail to an SMTP-to-SMS gateway.
//!
//! The keys are LinOTP's (`linotp/provider/smsprovider/SmtpSMSProvider.py`). The gateway reads
//! the phone number and text from wherever its configuration says, so `<phone>` is replaced in
//! `mailto`, `subject` and `body`, and `<otp>` in `subject` and `body` — with the whole SMS text,
//! as in LinOTP, not only the code. The SMTP exchange itself lives in [`super::smtp`].

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::class::{ProviderClass, ProviderSettings};
use super::smtp::{EndpointKeys, PlainText, SmtpClient, SmtpEndpoint, mailbox};
use super::{Channel, DeliveryError, Message, PhoneFormat, Provider, Receipt};
use crate::backend::{Problem, Resolve, from_table};
use crate::linotp_values::{Flag, Port, Timeout};
use crate::secret::Secret;

/// The registry's row: `class = "SmtpSMSProvider"`.
pub static CLASS: ProviderClass = ProviderClass {
    name: "SmtpSMSProvider",
    aliases: &[],
    channels: &[Channel::Sms],
    check,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<std::sync::Arc<dyn ProviderSettings>, Vec<Problem>> {
    let mut config: SmtpSmsConfig = from_table(keys)?;
    config.ca_file = config.ca_file.as_deref().map(resolve);
    Ok(std::sync::Arc::new(config.check()?))
}

/// [`SmtpSmsConfig`], checked: the endpoint and sender the check built go on to
/// [`SmtpSmsProvider::new`] as they are.
#[derive(Debug, Clone)]
pub struct SmtpSmsSettings {
    /// The keys as given.
    pub config: SmtpSmsConfig,
    /// Where and how to deliver.
    pub endpoint: SmtpEndpoint,
    sender: lettre::message::Mailbox,
}

impl ProviderSettings for SmtpSmsSettings {
    fn secret_values(&self) -> Vec<String> {
        self.config.secret_values()
    }

    fn open(&self, name: &str) -> Result<std::sync::Arc<dyn Provider>, String> {
        Ok(std::sync::Arc::new(SmtpSmsProvider::new(name, self)?))
    }
}

/// `[provider.sms.NAME]` with `class = "SmtpSMSProvider"`: LinOTP's keys, same spelling.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSmsConfig {
    /// SMTP server: `host` or `host:port` (required).
    pub mailserver: String,
    /// Port; default 25, 587 with `start_tls`, 465 with `use_ssl`.
    #[serde(default)]
    pub mailserver_port: Option<Port>,
    /// Envelope and header sender (default `tessera@localhost`).
    #[serde(default)]
    pub mailsender: Option<String>,
    /// AUTH user (optional: no AUTH without it).
    #[serde(default)]
    pub mailuser: Option<String>,
    /// AUTH password.
    #[serde(default)]
    pub mailpassword: Option<Secret>,
    /// The gateway's address, with `<phone>` where it wants the number (required).
    pub mailto: String,
    /// Subject template (default `[tessera]`; LinOTP's was `[LinOTP]`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Body template (default `<otp>`).
    #[serde(default)]
    pub body: Option<String>,
    /// STARTTLS, required once asked for.
    #[serde(default)]
    pub start_tls: Flag,
    /// Implicit TLS (SMTPS).
    #[serde(default)]
    pub use_ssl: Flag,
    /// Seconds for the whole exchange (default 5).
    #[serde(rename = "TIMEOUT", alias = "timeout", default)]
    pub timeout: Option<Timeout>,
    /// Reduce the phone number to `+` and digits.
    #[serde(rename = "MSISDN", default)]
    pub msisdn: Flag,
    /// A prefix to strip from the phone number.
    #[serde(rename = "SUPPRESS_PREFIX", default)]
    pub suppress_prefix: Option<String>,
    /// A PEM CA file to trust for STARTTLS/SMTPS (tessera extension).
    #[serde(rename = "CA_FILE", default)]
    pub ca_file: Option<PathBuf>,
    /// LinOTP's switch between raising and returning False: accepted and ignored (tessera
    /// always reports the failure).
    #[serde(default)]
    pub raise_exception: Option<Flag>,
}

impl fmt::Debug for SmtpSmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSmsConfig")
            .field("mailserver", &self.mailserver)
            .field("mailserver_port", &self.mailserver_port)
            .field("mailsender", &self.mailsender)
            .field("mailuser", &self.mailuser)
            .field("mailpassword", &self.mailpassword)
            .field("mailto", &self.mailto)
            .field("start_tls", &self.start_tls)
            .field("use_ssl", &self.use_ssl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Default `mailsender` (LinOTP's is `linotp@localhost`).
pub const DEFAULT_SENDER: &str = "tessera@localhost";
/// Default `subject` (LinOTP's is `[LinOTP]`).
pub const DEFAULT_SUBJECT: &str = "[tessera]";

impl SmtpSmsConfig {
    /// The values a server's reply must not carry into a log: the AUTH credentials.
    pub fn secret_values(&self) -> Vec<String> {
        super::redact::credentials(self.mailuser.as_deref(), self.mailpassword.as_ref())
    }

    /// Checks the keys and builds the endpoint and sender (for `file:line` errors at load).
    pub fn check(self) -> Result<SmtpSmsSettings, Problem> {
        let sender = mailbox(
            "mailsender",
            self.mailsender.as_deref().unwrap_or(DEFAULT_SENDER),
        )?;
        // `<phone>` is not part of an address yet: check the shape with a stand-in number.
        mailbox("mailto", &self.mailto.replace("<phone>", "491701234567"))?;
        let endpoint = SmtpEndpoint::from_keys(EndpointKeys {
            server_key: "mailserver",
            server: &self.mailserver,
            port: self.mailserver_port.map(|p| p.0),
            start_tls: self.start_tls.0,
            use_ssl: self.use_ssl.0,
            user: self.mailuser.as_ref(),
            password: self.mailpassword.as_ref(),
            timeout: self.timeout,
            ca_file: self.ca_file.as_ref(),
        })?;
        Ok(SmtpSmsSettings {
            config: self,
            endpoint,
            sender,
        })
    }
}

/// See the module documentation.
pub struct SmtpSmsProvider {
    name: String,
    client: SmtpClient,
    sender: lettre::message::Mailbox,
    mailto: String,
    subject: String,
    body: String,
    phone: PhoneFormat,
}

impl SmtpSmsProvider {
    /// Builds the provider (reads `CA_FILE`).
    pub fn new(name: &str, settings: &SmtpSmsSettings) -> Result<Self, String> {
        let config = &settings.config;
        Ok(SmtpSmsProvider {
            name: name.to_string(),
            client: settings.endpoint.client(name)?,
            sender: settings.sender.clone(),
            mailto: config.mailto.clone(),
            subject: config
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.into()),
            body: config.body.clone().unwrap_or_else(|| "<otp>".into()),
            phone: PhoneFormat::new(config.msisdn, config.suppress_prefix.as_deref()),
        })
    }
}

/// `<phone>` first, then `<otp>`, so a text that happens to contain `<phone>` stays as it is.
fn fill(template: &str, phone: &str, text: Option<&str>) -> String {
    let with_phone = template.replace("<phone>", phone);
    match text {
        Some(text) => with_phone.replace("<otp>", text),
        None => with_phone,
    }
}

#[async_trait]
impl Provider for SmtpSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let refused = |reason: String| DeliveryError::Refused {
            provider: self.name.clone(),
            reason,
        };
        let phone = self.phone.apply(&message.recipient);
        let text = String::from_utf8_lossy(message.text.expose());
        let to =
            mailbox("mailto", &fill(&self.mailto, &phone, None)).map_err(|p| refused(p.into()))?;
        let reply = self
            .client
            .send_text(PlainText {
                from: &self.sender,
                to,
                subject: &fill(&self.subject, &phone, Some(&text)),
                body: fill(&self.body, &phone, Some(&text)),
            })
            .await?;
        Ok(Receipt {
            provider: self.name.clone(),
            detail: reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::smtp::Security;

    #[test]
    fn placeholders_as_linotp() {
        assert_eq!(
            fill("<phone>@sms.example", "+4917012345678", None),
            "+4917012345678@sms.example"
        );
        assert_eq!(
            fill("OTP for <phone>: <otp>", "123", Some("Your code 654321")),
            "OTP for 123: Your code 654321"
        );
        assert_eq!(fill("<otp>", "1", Some("text <phone>")), "text <phone>");
    }

    #[test]
    fn seed_example_loads_with_defaults() {
        let c: SmtpSmsConfig = toml::from_str(
            r#"mailserver = "smtp.yourdomain.com"
mailsender = "linotp@yourdomain.com"
mailuser = "account-to-login-to-smtp-server"
mailpassword = "somesecret"
mailto = "mailadress@smstp-gateway"
subject = "<phone>"
body = "This is your OTP-value: <otp>"
"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("somesecret"));
        let e = c.check().unwrap().endpoint;
        assert_eq!((e.host.as_str(), e.port), ("smtp.yourdomain.com", 25));
        let c: SmtpSmsConfig = toml::from_str(
            "mailserver = \"mx:2525\"\nmailto = \"<phone>@gw\"\nstart_tls = \"True\"",
        )
        .unwrap();
        let e = c.check().unwrap().endpoint;
        assert_eq!((e.port, e.security), (2525, Security::StartTls));
    }
}
