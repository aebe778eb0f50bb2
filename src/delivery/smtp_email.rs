//! `SMTPEmailProvider`: the OTP e-mail, sent over SMTP (lettre, rustls).
//!
//! The keys are LinOTP's (`linotp/provider/emailprovider/__init__.py`). The engine has already
//! rendered the text (the `emailtext` policy, `<otp>` appended when missing) and the subject
//! (the `emailsubject` policy); this provider wraps them in a plain-text message with From, To,
//! Subject, Date and Message-ID and hands it to the server through [`super::smtp`].
//!
//! With `TEMPLATE`, the body comes from a text file instead: `<otp>` (or LinOTP's `${otp}`) is
//! replaced by the rendered text (just the OTP unless an `emailtext` policy says more),
//! `<serial>`/`${serial}` by the token serial and `<user>`/`${user}` by the login name. LinOTP's
//! inline MIME templates are not supported; `file://name` is read as the file `name`.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::Deserialize;

use super::class::{ProviderClass, ProviderSettings};
use super::smtp::{EndpointKeys, PlainText, SmtpClient, SmtpEndpoint, mailbox};
use super::{Channel, DeliveryError, Message, Provider, Receipt};
use crate::backend::{Problem, Resolve, from_table};
use crate::linotp_values::{Flag, Port, Timeout};
use crate::secret::Secret;

/// The registry's row: `class = "SMTPEmailProvider"`.
pub static CLASS: ProviderClass = ProviderClass {
    name: "SMTPEmailProvider",
    aliases: &[],
    channels: &[Channel::Email],
    check,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<std::sync::Arc<dyn ProviderSettings>, Vec<Problem>> {
    let mut config: SmtpEmailConfig = from_table(keys)?;
    config.resolve_paths(resolve);
    Ok(std::sync::Arc::new(config.check()?))
}

/// [`SmtpEmailConfig`], checked: the endpoint and sender the check built go on to
/// [`SmtpEmailProvider::new`] as they are.
#[derive(Debug, Clone)]
pub struct SmtpEmailSettings {
    /// The keys as given.
    pub config: SmtpEmailConfig,
    /// Where and how to deliver.
    pub endpoint: SmtpEndpoint,
    from: lettre::message::Mailbox,
}

impl ProviderSettings for SmtpEmailSettings {
    fn secret_values(&self) -> Vec<String> {
        self.config.secret_values()
    }

    fn open(&self, name: &str) -> Result<std::sync::Arc<dyn Provider>, String> {
        Ok(std::sync::Arc::new(SmtpEmailProvider::new(name, self)?))
    }
}

/// Default `EMAIL_FROM` (LinOTP's is `linotp@example.com`, a domain nobody can send from).
pub const DEFAULT_FROM: &str = "tessera@localhost";
/// Default `EMAIL_SUBJECT`, as in LinOTP.
pub const DEFAULT_SUBJECT: &str = "Your OTP";

/// `[provider.email.NAME]` with `class = "SMTPEmailProvider"`: LinOTP's keys, same spelling.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpEmailConfig {
    /// SMTP server: `host` or `host:port` (required).
    #[serde(rename = "SMTP_SERVER")]
    pub smtp_server: String,
    /// Port; default 25, 587 with `START_TLS`, 465 with `USE_SSL`.
    #[serde(rename = "SMTP_PORT", default)]
    pub smtp_port: Option<Port>,
    /// AUTH user (optional: no AUTH without it).
    #[serde(rename = "SMTP_USER", default)]
    pub smtp_user: Option<String>,
    /// AUTH password.
    #[serde(rename = "SMTP_PASSWORD", default)]
    pub smtp_password: Option<Secret>,
    /// Sender (default `tessera@localhost`).
    #[serde(rename = "EMAIL_FROM", default)]
    pub email_from: Option<String>,
    /// Subject when no `emailsubject` policy gives one (default `Your OTP`).
    #[serde(rename = "EMAIL_SUBJECT", default)]
    pub email_subject: Option<String>,
    /// STARTTLS, required once asked for.
    #[serde(rename = "START_TLS", default)]
    pub start_tls: Flag,
    /// Implicit TLS (SMTPS).
    #[serde(rename = "USE_SSL", default)]
    pub use_ssl: Flag,
    /// Seconds for the whole exchange (default 5).
    #[serde(rename = "TIMEOUT", alias = "timeout", default)]
    pub timeout: Option<Timeout>,
    /// A PEM CA file to trust for STARTTLS/SMTPS (tessera extension).
    #[serde(rename = "CA_FILE", default)]
    pub ca_file: Option<PathBuf>,
    /// A text file for the body, with `<otp>`, `<serial>`, `<user>` (relative paths are
    /// relative to the config file; a `file://` prefix is accepted).
    #[serde(rename = "TEMPLATE", default)]
    pub template: Option<PathBuf>,
}

impl fmt::Debug for SmtpEmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEmailConfig")
            .field("smtp_server", &self.smtp_server)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_user", &self.smtp_user)
            .field("smtp_password", &self.smtp_password)
            .field("email_from", &self.email_from)
            .field("email_subject", &self.email_subject)
            .field("start_tls", &self.start_tls)
            .field("use_ssl", &self.use_ssl)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("template", &self.template)
            .finish()
    }
}

impl SmtpEmailConfig {
    /// The values a server's reply must not carry into a log: the AUTH credentials.
    pub fn secret_values(&self) -> Vec<String> {
        super::redact::credentials(self.smtp_user.as_deref(), self.smtp_password.as_ref())
    }

    /// Resolves `CA_FILE` and `TEMPLATE` against the config file's directory.
    pub fn resolve_paths(&mut self, resolve: impl Fn(&std::path::Path) -> PathBuf) {
        self.ca_file = self.ca_file.as_deref().map(&resolve);
        self.template = self.template.as_deref().map(|t| {
            let text = t.to_string_lossy();
            match text.strip_prefix("file://") {
                Some(rest) => resolve(std::path::Path::new(rest)),
                None => resolve(t),
            }
        });
    }

    /// Checks the keys and builds the endpoint and sender (for `file:line` errors at load).
    pub fn check(self) -> Result<SmtpEmailSettings, Problem> {
        let from = mailbox(
            "EMAIL_FROM",
            self.email_from.as_deref().unwrap_or(DEFAULT_FROM),
        )?;
        let endpoint = SmtpEndpoint::from_keys(EndpointKeys {
            server_key: "SMTP_SERVER",
            server: &self.smtp_server,
            port: self.smtp_port.map(|p| p.0),
            start_tls: self.start_tls.0,
            use_ssl: self.use_ssl.0,
            user: self.smtp_user.as_ref(),
            password: self.smtp_password.as_ref(),
            timeout: self.timeout,
            ca_file: self.ca_file.as_ref(),
        })?;
        Ok(SmtpEmailSettings {
            config: self,
            endpoint,
            from,
        })
    }
}

/// See the module documentation.
pub struct SmtpEmailProvider {
    name: String,
    client: SmtpClient,
    from: lettre::message::Mailbox,
    subject: String,
    template: Option<String>,
}

impl SmtpEmailProvider {
    /// Builds the provider (reads `CA_FILE`).
    pub fn new(name: &str, settings: &SmtpEmailSettings) -> Result<Self, String> {
        let config = &settings.config;
        let client = settings.endpoint.client(name)?;
        let template = match &config.template {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("TEMPLATE: {}: {e}", path.display()))?;
                if !text.contains("<otp>") && !text.contains("${otp}") {
                    return Err(format!(
                        "TEMPLATE: {} has no <otp> placeholder",
                        path.display()
                    ));
                }
                Some(text)
            }
        };
        Ok(SmtpEmailProvider {
            template,
            name: name.to_string(),
            client,
            from: settings.from.clone(),
            subject: config
                .email_subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.into()),
        })
    }
}

impl SmtpEmailProvider {
    /// The message text, or the template filled in with it.
    fn body(&self, message: &Message) -> String {
        let text = String::from_utf8_lossy(message.text.expose());
        match &self.template {
            None => text.into_owned(),
            // The text last, so placeholders that happen to be in it stay as they are.
            Some(t) => t
                .replace("<serial>", &message.serial)
                .replace("${serial}", &message.serial)
                .replace("<user>", &message.user)
                .replace("${user}", &message.user)
                .replace("<otp>", &text)
                .replace("${otp}", &text),
        }
    }
}

#[async_trait]
impl Provider for SmtpEmailProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let refused = |reason: String| DeliveryError::Refused {
            provider: self.name.clone(),
            reason,
        };
        let to = mailbox("recipient", &message.recipient).map_err(|p| refused(p.into()))?;
        let reply = self
            .client
            .send_text(PlainText {
                from: &self.from,
                to,
                subject: message.subject.as_deref().unwrap_or(&self.subject),
                body: self.body(message),
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
    fn seed_example_and_default_ports() {
        let c: SmtpEmailConfig = toml::from_str(
            r#"SMTP_SERVER = "mail.example.com"
SMTP_USER = "smtp-user"
SMTP_PASSWORD = "smpt-secret-pwd"
EMAIL_FROM = "linotp@example.com"
EMAIL_SUBJECT = "Your OTP"
"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("smpt-secret-pwd"));
        let e = c.check().unwrap().endpoint;
        assert_eq!((e.port, e.security), (25, Security::Plain));
        for (flags, port) in [("START_TLS = true", 587), ("USE_SSL = \"true\"", 465)] {
            let c: SmtpEmailConfig =
                toml::from_str(&format!("SMTP_SERVER = \"mx\"\n{flags}")).unwrap();
            assert_eq!(c.check().unwrap().endpoint.port, port, "{flags}");
        }
        let c: SmtpEmailConfig =
            toml::from_str("SMTP_SERVER = \"mx\"\nEMAIL_FROM = \"not an address\"").unwrap();
        assert_eq!(c.check().unwrap_err().key, "EMAIL_FROM");
    }
}
