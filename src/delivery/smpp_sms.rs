//! The SMPP SMS provider (LinOTP's `SMPPSMSProvider`): hands each message to an SMSC over
//! SMPP 3.4.
//!
//! One short session per message, as LinOTP's provider does: connect, `bind_transceiver` (or
//! `bind_transmitter` with `bind = "transmitter"`), one `submit_sm` per part — each waiting for
//! its `submit_sm_resp` — then `unbind` and close. `TIMEOUT` bounds everything up to the last
//! `submit_sm_resp`; the unbind gets one more second of its own, and its failure is only logged:
//! once the SMSC has accepted the message, nothing turns that into a failure (and a failover
//! that sends it twice). A text longer than one SMS is split as
//! LinOTP splits it: separate `submit_sm`s of at most 153 octets (67 UCS-2 characters), with no
//! concatenation header, so the phone shows consecutive messages.
//!
//! Failures map onto the two kinds [`Providers`](super::Providers) tells apart: no connection,
//! a dropped connection or no answer within `TIMEOUT` is *unavailable* (the next provider is
//! tried); an SMSC that answers with an error status — a refused bind (`ESME_RINVPASWD`), a
//! refused message — has *refused* it, and the status name goes into the error.
//!
//! We speak the protocol through rusmpp's codec (`CommandCodec` over a `TcpStream`), not the
//! rusmppc client: a session here is four request/response pairs, and the codec keeps the
//! dependency tree small (rusmppc always pulls a DNS resolver and a cache crate) and avoids
//! its SMPP 5.0 interface-version check. rusmpp's `tracing` feature stays off: it logs whole
//! PDUs, the bind password included.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use rusmpp::pdus::{BindTransceiver, BindTransmitter, SubmitSm};
use rusmpp::tokio_codec::CommandCodec;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, InterfaceVersion, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::class::{ProviderClass, ProviderSettings};
use crate::backend::{Problem, Resolve, from_table};

/// The registry's row: `class = "SMPPSMSProvider"`.
pub static CLASS: ProviderClass = ProviderClass {
    name: "SMPPSMSProvider",
    aliases: &[],
    channels: &[super::Channel::Sms],
    check,
};

fn check(
    keys: &toml::Table,
    _: Resolve<'_>,
) -> Result<std::sync::Arc<dyn ProviderSettings>, Vec<Problem>> {
    let config: SmppSmsConfig = from_table(keys)?;
    config.check()?;
    Ok(std::sync::Arc::new(config))
}

impl ProviderSettings for SmppSmsConfig {
    fn secret_values(&self) -> Vec<String> {
        SmppSmsConfig::secret_values(self)
    }

    fn open(&self, name: &str) -> Result<std::sync::Arc<dyn Provider>, String> {
        Ok(std::sync::Arc::new(SmppSmsProvider::new(name, self)))
    }
}

use super::PhoneFormat;
use super::smpp_encoding::{TargetEncoding, encoding};
use super::{DeliveryError, Message, Provider, Receipt};
use crate::failure::{LocalFailure, Whose, whose};
use crate::linotp_values::{self, Flag};
use crate::secret::Secret;

/// How long an `unbind` may take after the message was accepted; its failure is only logged.
const UNBIND_GRACE: Duration = Duration::from_secs(1);

/// `[provider.sms.NAME]` with `class = "SMPPSMSProvider"`: LinOTP's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppSmsConfig {
    /// Host name or address of the SMSC.
    pub server: String,
    /// TCP port (LinOTP's default 5100; SMSCs commonly use 2775).
    #[serde(default = "default_port", deserialize_with = "linotp_values::port")]
    pub port: u16,
    /// The ESME's login (at most 15 characters).
    pub system_id: String,
    /// Its password (at most 8 characters).
    pub password: Secret,
    /// Sent in the bind; empty by default.
    #[serde(default)]
    pub system_type: String,
    /// The sender shown on the phone (digits, or text with TON 5 / NPI 0).
    #[serde(default)]
    pub source_addr: String,
    /// Type of number of the sender (SMPP 3.4 §5.2.5).
    #[serde(default = "one", deserialize_with = "linotp_values::octet")]
    pub source_addr_ton: u8,
    /// Numbering plan of the sender (SMPP 3.4 §5.2.6).
    #[serde(default = "one", deserialize_with = "linotp_values::octet")]
    pub source_addr_npi: u8,
    /// Type of number of the recipient.
    #[serde(default = "one", deserialize_with = "linotp_values::octet")]
    pub dest_addr_ton: u8,
    /// Numbering plan of the recipient.
    #[serde(default = "one", deserialize_with = "linotp_values::octet")]
    pub dest_addr_npi: u8,
    /// How the text is encoded: `ISO8859-1` (default), `UCS2`/`UTF-16BE`, `IA5`/`ASCII`.
    #[serde(default = "default_encoding", deserialize_with = "encoding")]
    pub target_encoding: TargetEncoding,
    /// Seconds for the whole session (LinOTP's `TIMEOUT`; `timeout` as LinOTP injects it).
    #[serde(
        rename = "TIMEOUT",
        alias = "timeout",
        default = "default_timeout",
        deserialize_with = "linotp_values::seconds"
    )]
    pub timeout: Duration,
    /// `transceiver` (LinOTP's choice, the default) or `transmitter`.
    #[serde(default)]
    pub bind: BindMode,
    /// LinOTP's `MSISDN`: reduce the number to `+` and digits.
    #[serde(rename = "MSISDN", default)]
    pub msisdn: Flag,
    /// LinOTP's `SUPPRESS_PREFIX`: removed from the start of the number (e.g. `+`).
    #[serde(rename = "SUPPRESS_PREFIX", default)]
    pub suppress_prefix: Option<String>,
}

fn default_port() -> u16 {
    5100
}
fn one() -> u8 {
    1
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_encoding() -> TargetEncoding {
    TargetEncoding::Latin1
}

/// The bind operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    /// `bind_transceiver`, as LinOTP binds.
    #[default]
    Transceiver,
    /// `bind_transmitter`, for SMSCs that grant only that.
    Transmitter,
}

impl SmppSmsConfig {
    /// The values an SMSC's answer must not carry into a log: the bind credentials.
    pub fn secret_values(&self) -> Vec<String> {
        super::redact::credentials(Some(&self.system_id), Some(&self.password))
    }

    /// Checks what the types cannot: SMPP 3.4's field lengths (§5.2), and ASCII where the
    /// protocol demands C-octet strings. Messages never show the password.
    pub fn check(&self) -> Result<(), Problem> {
        let fields = [
            ("server", self.server.as_str(), 255),
            ("system_id", self.system_id.as_str(), 15),
            ("system_type", self.system_type.as_str(), 12),
            ("source_addr", self.source_addr.as_str(), 20),
        ];
        for (key, value, max) in fields {
            if !value.is_ascii() || value.len() > max || value.contains('\0') {
                return Err(Problem::new(
                    key,
                    format!("{value:?} must be ASCII and at most {max} characters (SMPP 3.4)"),
                ));
            }
        }
        if self.server.trim().is_empty() {
            return Err(Problem::new("server", "the SMSC's host name is empty"));
        }
        let password = self.password.expose();
        if !password.is_ascii() || password.len() > 8 || password.contains(&0) {
            return Err(Problem::new(
                "password",
                "must be ASCII and at most 8 characters (SMPP 3.4)",
            ));
        }
        Ok(())
    }
}

/// See the module documentation.
pub struct SmppSmsProvider {
    name: String,
    config: SmppSmsConfig,
    phone: PhoneFormat,
}

impl SmppSmsProvider {
    /// A provider with a checked config.
    pub fn new(name: &str, config: &SmppSmsConfig) -> Self {
        SmppSmsProvider {
            name: name.to_string(),
            config: config.clone(),
            phone: PhoneFormat::new(config.msisdn, config.suppress_prefix.as_deref()),
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Unavailable {
            provider: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn refused(&self, reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Refused {
            provider: self.name.clone(),
            reason: reason.into(),
        }
    }
}

/// `ESME_RINVPASWD (0x0000000e)`: the SMPP name of a status, from rusmpp's variant name.
pub fn status_name(status: CommandStatus) -> String {
    let code = u32::from(status);
    if let CommandStatus::Other(_) = status {
        return format!("status 0x{code:08x}");
    }
    let variant = format!("{status:?}");
    let mut name = String::with_capacity(variant.len() + 2);
    for (i, c) in variant.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && !name.ends_with('_') {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    format!("{name} (0x{code:08x})")
}

type Connection = Framed<TcpStream, CommandCodec>;

/// How a step of the session went wrong.
enum Failure {
    /// The connection broke or the SMSC spoke nonsense.
    Link(String),
    /// The SMSC answered with an error status.
    Status(String),
    /// tessera's own failure (no descriptor for the socket …), not the SMSC's.
    Local(LocalFailure),
}

impl Failure {
    /// `error` while doing `what`: a broken link, unless [`whose`] says it is tessera's own.
    fn link<E: std::error::Error + Send + Sync + 'static>(what: &str, error: E) -> Failure {
        match whose(error) {
            Whose::Ours(failure) => Failure::Local(failure),
            Whose::Peer(error) => Failure::Link(format!("{what}: {error}")),
        }
    }
}

/// Sends `command` and waits for the response with its sequence number, answering the SMSC's
/// own `enquire_link`s meanwhile. A `generic_nack` for our number is an answer too.
async fn call(conn: &mut Connection, command: Command, what: &str) -> Result<Command, Failure> {
    let sequence = command.sequence_number();
    conn.send(command)
        .await
        .map_err(|e| Failure::link(&format!("sending {what}"), e))?;
    loop {
        let answer = match conn.next().await {
            None => {
                return Err(Failure::Link(format!(
                    "the SMSC closed the connection before answering {what}"
                )));
            }
            Some(Err(e)) => {
                return Err(Failure::link(&format!("reading the answer to {what}"), e));
            }
            Some(Ok(answer)) => answer,
        };
        // SMPP 3.4 §5.1.2.1: a response's command_id has bit 31 set (generic_nack is
        // 0x80000000); a request from the SMSC with our number is not our answer.
        let is_response = u32::from(answer.id()) & 0x8000_0000 != 0;
        if answer.sequence_number() == sequence && is_response {
            if answer.status() != CommandStatus::EsmeRok {
                let kind = if answer.id() == CommandId::GenericNack {
                    "generic_nack"
                } else {
                    "error"
                };
                return Err(Failure::Status(format!(
                    "{what}: {kind} {}",
                    status_name(answer.status())
                )));
            }
            return Ok(answer);
        }
        match answer.pdu() {
            Some(Pdu::EnquireLink) => {
                let reply = Command::new(
                    CommandStatus::EsmeRok,
                    answer.sequence_number(),
                    Pdu::EnquireLinkResp,
                );
                conn.send(reply)
                    .await
                    .map_err(|e| Failure::link("answering enquire_link", e))?;
            }
            Some(Pdu::Unbind) => {
                let reply = Command::new(
                    CommandStatus::EsmeRok,
                    answer.sequence_number(),
                    Pdu::UnbindResp,
                );
                let _ = conn.send(reply).await;
                return Err(Failure::Link(format!(
                    "the SMSC unbound before answering {what}"
                )));
            }
            // A transceiver may be sent delivery receipts or other traffic; we asked for none,
            // so anything else is ignored until our answer arrives.
            _ => {}
        }
    }
}

fn c_octet<const MIN: usize, const MAX: usize>(
    key: &str,
    value: &str,
) -> Result<COctetString<MIN, MAX>, Failure> {
    value
        .parse()
        .map_err(|_| Failure::Status(format!("{key} {value:?} is not a valid SMPP field")))
}

impl SmppSmsProvider {
    /// Connects, binds and submits every part; returns the connection, the last sequence
    /// number used and the message ids the SMSC gave.
    async fn submit(
        &self,
        destination: &str,
        parts: &[Vec<u8>],
    ) -> Result<(Connection, u32, Vec<String>), Failure> {
        let c = &self.config;
        // Checked before connecting: a number SMPP cannot carry is refused without a session.
        let source = c_octet::<1, 21>("source_addr", &c.source_addr)?;
        let destination = c_octet::<1, 21>("destination", destination)?;
        let stream = TcpStream::connect((c.server.as_str(), c.port))
            .await
            .map_err(|e| Failure::link(&format!("cannot connect to {}:{}", c.server, c.port), e))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Framed::new(stream, CommandCodec::new());
        let mut sequence = 1u32;

        // The password is ASCII and at most 8 octets (checked at startup); it is copied only
        // into the bind PDU.
        let password = std::str::from_utf8(c.password.expose())
            .ok()
            .and_then(|p| p.parse::<COctetString<1, 9>>().ok())
            .ok_or_else(|| Failure::Status("password is not a valid SMPP password".into()))?;
        let system_id = c_octet("system_id", &c.system_id)?;
        let system_type = c_octet("system_type", &c.system_type)?;
        let (bind, what): (Pdu, &str) = match c.bind {
            BindMode::Transceiver => (
                BindTransceiver::builder()
                    .system_id(system_id)
                    .password(password)
                    .system_type(system_type)
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .build()
                    .into(),
                "bind_transceiver",
            ),
            BindMode::Transmitter => (
                BindTransmitter::builder()
                    .system_id(system_id)
                    .password(password)
                    .system_type(system_type)
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .build()
                    .into(),
                "bind_transmitter",
            ),
        };
        call(
            &mut conn,
            Command::new(CommandStatus::EsmeRok, sequence, bind),
            what,
        )
        .await?;

        let mut ids = Vec::with_capacity(parts.len());
        for part in parts {
            sequence += 1;
            let short_message = OctetString::<0, 255>::from_slice(part)
                .map_err(|_| Failure::Status("a message part is too long".into()))?;
            let submit = SubmitSm::builder()
                // Explicit zero: rusmpp's default EsmClass encodes 0x08, which marks the
                // message as an ANSI-41 delivery acknowledgement.
                .esm_class(EsmClass::from(0u8))
                .source_addr_ton(Ton::from(c.source_addr_ton))
                .source_addr_npi(Npi::from(c.source_addr_npi))
                .source_addr(source.clone())
                .dest_addr_ton(Ton::from(c.dest_addr_ton))
                .dest_addr_npi(Npi::from(c.dest_addr_npi))
                .destination_addr(destination.clone())
                .data_coding(DataCoding::from(c.target_encoding.data_coding()))
                .short_message(short_message)
                .build();
            let answer = call(
                &mut conn,
                Command::new(CommandStatus::EsmeRok, sequence, submit),
                "submit_sm",
            )
            .await?;
            if let Some(Pdu::SubmitSmResp(resp)) = answer.pdu() {
                ids.push(resp.message_id().to_string());
            }
        }

        Ok((conn, sequence, ids))
    }

    /// Ends the session politely. The message is with the SMSC now, so this runs outside the
    /// session's timeout with a short one of its own: a slow or failed unbind must not turn a
    /// delivered message into a failure (and a failover that sends it twice).
    async fn unbind(&self, mut conn: Connection, sequence: u32) {
        let unbind = Command::new(CommandStatus::EsmeRok, sequence + 1, Pdu::Unbind);
        let grace = UNBIND_GRACE.min(self.config.timeout);
        match tokio::time::timeout(grace, call(&mut conn, unbind, "unbind")).await {
            Ok(Ok(_)) => {}
            Ok(Err(Failure::Link(e) | Failure::Status(e))) => {
                tracing::debug!(provider = %self.name, error = %e, "unbind failed after the message was accepted");
            }
            Ok(Err(Failure::Local(failure))) => {
                tracing::debug!(provider = %self.name, error = %failure.chain(), "unbind failed after the message was accepted");
            }
            Err(_) => {
                tracing::debug!(provider = %self.name, "no unbind_resp, closing anyway");
            }
        }
        let _ = tokio::time::timeout(grace, SinkExt::<Command>::close(&mut conn)).await;
    }
}

#[async_trait]
impl Provider for SmppSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let c = &self.config;
        let destination = self.phone.apply(&message.recipient);
        let text = String::from_utf8_lossy(message.text.expose());
        let parts = c.target_encoding.split(&text);
        match tokio::time::timeout(c.timeout, self.submit(&destination, &parts)).await {
            Ok(Ok((conn, sequence, ids))) => {
                self.unbind(conn, sequence).await;
                Ok(Receipt {
                    provider: self.name.clone(),
                    detail: format!(
                        "{} submit_sm accepted by {}:{}, message id {}",
                        parts.len(),
                        c.server,
                        c.port,
                        ids.join(", ")
                    ),
                })
            }
            Ok(Err(Failure::Link(reason))) => Err(self.unavailable(reason)),
            Ok(Err(Failure::Status(reason))) => Err(self.refused(reason)),
            Ok(Err(Failure::Local(failure))) => Err(DeliveryError::local(&self.name, failure)),
            Err(_) => Err(self.unavailable(format!(
                "no complete answer from {}:{} within {}s",
                c.server,
                c.port,
                c.timeout.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_follow_the_spec() {
        assert_eq!(
            status_name(CommandStatus::EsmeRinvpaswd),
            "ESME_RINVPASWD (0x0000000e)"
        );
        assert_eq!(
            status_name(CommandStatus::EsmeRsubmitfail),
            "ESME_RSUBMITFAIL (0x00000045)"
        );
        assert_eq!(
            status_name(CommandStatus::Other(0x400)),
            "status 0x00000400"
        );
    }

    #[test]
    fn config_defaults_and_limits() {
        let c: SmppSmsConfig =
            toml::from_str("server = \"smsc\"\nsystem_id = \"otp\"\npassword = \"pw\"").unwrap();
        assert_eq!(c.port, 5100);
        assert_eq!(
            (
                c.source_addr_ton,
                c.source_addr_npi,
                c.dest_addr_ton,
                c.dest_addr_npi
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(c.target_encoding, TargetEncoding::Latin1);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.bind, BindMode::Transceiver);
        assert!(c.check().is_ok());
        let long: SmppSmsConfig =
            toml::from_str("server = \"smsc\"\nsystem_id = \"otp\"\npassword = \"far-too-long\"")
                .unwrap();
        let e = long.check().unwrap_err();
        assert!(
            e.key == "password" && !e.message.contains("far-too-long"),
            "{e}"
        );
    }
}
