//! The SMTP side shared by `SmtpSMSProvider` and `SMTPEmailProvider`: where to connect, how
//! (plain, STARTTLS, implicit TLS), whether to log in, and one bounded send of a plain-text
//! message built here ([`SmtpClient::send_text`]; lettre, rustls).
//!
//! lettre's own timeout covers only the TCP connect of its async transport, so a server that
//! accepts and then stays silent would hang a send for ever: [`SmtpClient::send_text`] wraps
//! the whole exchange in `tokio::time::timeout`. No connection pool: OTP mail is rare, and a fresh
//! connection per message never trips over a connection the server has silently dropped.
//!
//! Errors are sorted as LinOTP does: no connection, a failed TLS handshake (an untrusted
//! certificate, too) or no answer in time is *unavailable* (the next provider is tried); a
//! server that answered and said no (a 4xx/5xx reply, failed AUTH, STARTTLS required but not
//! offered) *refused* the message.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::DeliveryError;
use crate::backend::Problem;
use crate::secret::Secret;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (port 25 by default).
    Plain,
    /// STARTTLS, required: a server that does not offer it fails the send (port 587).
    StartTls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Implicit,
}

impl Security {
    /// From LinOTP's two flags; implicit TLS wins, as in LinOTP (STARTTLS is skipped then).
    pub fn from_flags(start_tls: bool, use_ssl: bool) -> Self {
        match (start_tls, use_ssl) {
            (_, true) => Security::Implicit,
            (true, false) => Security::StartTls,
            (false, false) => Security::Plain,
        }
    }

    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        }
    }
}

/// Splits `host:port` (or `[v6]:port`); a bare host gets no port.
pub fn split_host_port(server: &str) -> Result<(String, Option<u16>), String> {
    let server = server.trim();
    if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{server:?}: unclosed ["))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), Some(parse_port(server, port)?))),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(format!("{server:?} is not host or host:port")),
        };
    }
    match server.split_once(':') {
        // More than one colon: a bare IPv6 address.
        Some((_, rest)) if rest.contains(':') => Ok((server.to_string(), None)),
        Some((host, port)) => Ok((host.to_string(), Some(parse_port(server, port)?))),
        None if server.is_empty() => Err("the server name is empty".into()),
        None => Ok((server.to_string(), None)),
    }
}

fn parse_port(server: &str, port: &str) -> Result<u16, String> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{server:?}: {port:?} is not a port"))
}

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct SmtpEndpoint {
    /// Host name or IP address (also the TLS name checked against the certificate).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: Security,
    /// User and password for AUTH; without them no AUTH is attempted.
    pub credentials: Option<(String, Secret)>,
    /// Bound on the whole exchange, connect to QUIT.
    pub timeout: Duration,
    /// A PEM CA file trusted instead of the system's roots (`tls::trust_roots`).
    pub ca_file: Option<PathBuf>,
}

/// The connection keys both SMTP classes have, whatever LinOTP called them there.
pub struct EndpointKeys<'a> {
    /// The server key's name, for errors (`SMTP_SERVER`, `mailserver`).
    pub server_key: &'static str,
    /// `host` or `host:port`.
    pub server: &'a str,
    /// An explicit port, winning over one in `server`.
    pub port: Option<u16>,
    /// STARTTLS.
    pub start_tls: bool,
    /// Implicit TLS.
    pub use_ssl: bool,
    /// AUTH user; no AUTH without it.
    pub user: Option<&'a String>,
    /// AUTH password.
    pub password: Option<&'a Secret>,
    /// Bound on the whole exchange (default 5 s).
    pub timeout: Option<crate::linotp_values::Timeout>,
    /// Extra CA file.
    pub ca_file: Option<&'a PathBuf>,
}

impl SmtpEndpoint {
    /// Checks the keys and builds the endpoint: the port is the explicit one, else the one in
    /// the server name, else the security's default (25, 587 with STARTTLS, 465 with TLS).
    pub fn from_keys(keys: EndpointKeys<'_>) -> Result<SmtpEndpoint, Problem> {
        let (host, port_in_name) =
            split_host_port(keys.server).map_err(|e| Problem::new(keys.server_key, e))?;
        let security = Security::from_flags(keys.start_tls, keys.use_ssl);
        Ok(SmtpEndpoint {
            host,
            port: keys
                .port
                .or(port_in_name)
                .unwrap_or(security.default_port()),
            security,
            credentials: keys
                .user
                .cloned()
                .map(|user| (user, keys.password.cloned().unwrap_or_default())),
            timeout: keys
                .timeout
                .unwrap_or(crate::linotp_values::Timeout::secs(5))
                .total,
            ca_file: keys.ca_file.cloned(),
        })
    }
}

/// A ready transport plus the bound on each send.
#[derive(Clone)]
pub struct SmtpClient {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    provider: String,
}

impl SmtpEndpoint {
    /// Builds the transport (reads the CA file); errors name the key at fault.
    pub fn client(&self, provider: &str) -> Result<SmtpClient, String> {
        crate::tls::install_crypto_provider();
        let tls = if self.security == Security::Plain {
            Tls::None
        } else {
            let mut params = TlsParameters::builder(self.host.clone());
            if let Some(path) = &self.ca_file {
                // The CA file replaces the system's roots, as for every TLS client of tessera
                // (`tls::trust_roots`: a configured CA pins). Checked by that function first, so
                // an empty or unusable file is refused with the same words as elsewhere.
                let ca_error =
                    |e: &dyn std::fmt::Display| format!("CA_FILE: {}: {e}", path.display());
                crate::tls::trust_roots(Some(crate::tls::Ca::File(path)))
                    .map_err(|e| ca_error(&e))?;
                let pem = std::fs::read(path).map_err(|e| ca_error(&e))?;
                let certificates = Certificate::from_pem(&pem).map_err(|e| ca_error(&e))?;
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(certificates);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("TLS set-up for {}: {e}", self.host))?;
            match self.security {
                Security::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                String::from_utf8_lossy(password.expose()).into_owned(),
            ));
        }
        Ok(SmtpClient {
            transport: builder.build(),
            timeout: self.timeout,
            provider: provider.to_string(),
        })
    }
}

/// One plain-text e-mail, as both SMTP classes send it.
pub struct PlainText<'a> {
    /// The sender.
    pub from: &'a Mailbox,
    /// The recipient.
    pub to: Mailbox,
    /// The subject line.
    pub subject: &'a str,
    /// The text.
    pub body: String,
}

impl SmtpClient {
    /// Builds `text` into a message (dated now, a fresh Message-ID, `text/plain`) and sends
    /// it; on success returns the server's final reply (`250 …`). A message that cannot be
    /// built is refused.
    pub async fn send_text(&self, text: PlainText<'_>) -> Result<String, DeliveryError> {
        let email = lettre::Message::builder()
            .from(text.from.clone())
            .to(text.to)
            .subject(text.subject)
            .date_now()
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(text.body)
            .map_err(|e| DeliveryError::Refused {
                provider: self.provider.clone(),
                reason: format!("cannot build the e-mail: {e}"),
            })?;
        self.send(email).await
    }

    /// Sends one message; on success returns the server's final reply (`250 …`).
    async fn send(&self, email: lettre::Message) -> Result<String, DeliveryError> {
        let unavailable = |reason: String| DeliveryError::Unavailable {
            provider: self.provider.clone(),
            reason,
        };
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Err(_) => Err(unavailable(format!(
                "no answer from the SMTP server within {:.1}s",
                self.timeout.as_secs_f64()
            ))),
            Ok(Ok(response)) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) => Err(DeliveryError::judged(&self.provider, e, |e| {
                let reason = error_chain(&e);
                let answered = e.is_permanent()
                    || e.is_transient()
                    || e.is_response()
                    || e.is_client()
                    || e.is_tls();
                if answered && !e.is_timeout() {
                    DeliveryError::Refused {
                        provider: self.provider.clone(),
                        reason,
                    }
                } else {
                    unavailable(reason)
                }
            })),
        }
    }
}

/// A lettre error with its causes (lettre errors never carry the message or the password).
fn error_chain(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Parses a mailbox (`user@host` or `Name <user@host>`), naming the key on error.
pub fn mailbox(key: &str, value: &str) -> Result<Mailbox, Problem> {
    value
        .trim()
        .parse()
        .map_err(|e| Problem::new(key, format!("{value:?} is not an e-mail address: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("mail.example.org:2525").unwrap(),
            ("mail.example.org".into(), Some(2525))
        );
        assert_eq!(
            split_host_port("mail.example.org").unwrap(),
            ("mail.example.org".into(), None)
        );
        assert_eq!(
            split_host_port("[::1]:25").unwrap(),
            ("::1".into(), Some(25))
        );
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(split_host_port("host:smtp").is_err());
        assert!(split_host_port("").is_err());
    }

    #[test]
    fn linotp_default_ports() {
        assert_eq!(Security::from_flags(false, false).default_port(), 25);
        assert_eq!(Security::from_flags(true, false).default_port(), 587);
        assert_eq!(Security::from_flags(false, true).default_port(), 465);
        assert_eq!(Security::from_flags(true, true), Security::Implicit);
    }
}
