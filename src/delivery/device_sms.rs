//! The device SMS provider (LinOTP's `DeviceSMSProvider`): sends through a GSM modem on a
//! serial port with AT commands (3GPP TS 27.005 text mode).
//!
//! LinOTP ran the `gnokii` tool; tessera talks to the modem itself, so the only thing to
//! install is the modem. The dialogue per message:
//!
//! ```text
//! AT                      -> OK
//! AT+CPIN?                -> +CPIN: READY | +CPIN: SIM PIN   (only when PIN is configured)
//! AT+CPIN="<PIN>"         -> OK                              (only when the SIM asks)
//! AT+CSCA="<SMSC>"        -> OK                              (only when SMSC is configured)
//! AT+CMGF=1               -> OK
//! AT+CMGS="<number>"      -> "> "
//! <text> Ctrl-Z           -> +CMGS: <n>, OK
//! ```
//!
//! A PIN the SIM refused is not entered again while the provider lives: three wrong PINs lock a
//! SIM, and every login would spend one.
//!
//! `ERROR`, `+CMS ERROR: n` or `+CME ERROR: n` is a refusal carrying that code; a port that does
//! not open, a modem that does not answer within `TIMEOUT` or a line that breaks is
//! *unavailable*. Lines the modem echoes are never quoted in errors or logs: they contain the
//! PIN and the OTP.
//!
//! Serial I/O blocks, so each dialogue runs in `spawn_blocking`. A modem handles one message at
//! a time: every provider on the same device shares one async mutex (FIFO), taken before the
//! blocking task starts so that a message that waited past its deadline is never sent late.
//!
//! The text goes out in the modem's default character set: ASCII passes as it is (the GSM
//! alphabet covers digits and letters); any other character becomes `?` and control characters
//! other than line feed become spaces (Ctrl-Z would end the message early, ESC cancel it).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use super::PhoneFormat;
use super::class::{ProviderClass, ProviderSettings};
use super::{Channel, DeliveryError, Message, Provider, Receipt};
use crate::backend::{Problem, Resolve, from_table};
use crate::failure::{LocalFailure, Whose, whose};
use crate::linotp_values::{self, Flag};
use crate::secret::Secret;

/// The registry's row: `class = "DeviceSMSProvider"`.
pub static CLASS: ProviderClass = ProviderClass {
    name: "DeviceSMSProvider",
    aliases: &[],
    channels: &[Channel::Sms],
    check,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<Arc<dyn ProviderSettings>, Vec<Problem>> {
    let mut config: DeviceSmsConfig = from_table(keys)?;
    config.check()?;
    config.device = config.device.as_deref().map(resolve);
    config.config_file = config.config_file.as_deref().map(resolve);
    Ok(Arc::new(config))
}

impl ProviderSettings for DeviceSmsConfig {
    fn secret_values(&self) -> Vec<String> {
        DeviceSmsConfig::secret_values(self)
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(DeviceSmsProvider::open(name, self)?))
    }
}

/// `[provider.sms.NAME]` with `class = "DeviceSMSProvider"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSmsConfig {
    /// The modem's serial port, e.g. `/dev/ttyACM1`.
    #[serde(rename = "DEVICE", default)]
    pub device: Option<PathBuf>,
    /// LinOTP's form: a gnokiirc whose `[global]` section's `port` names the device.
    #[serde(rename = "CONFIGFILE", default)]
    pub config_file: Option<PathBuf>,
    /// Line speed.
    #[serde(
        rename = "BAUDRATE",
        default = "default_baud_rate",
        deserialize_with = "linotp_values::baud_rate"
    )]
    pub baud_rate: u32,
    /// The SIM PIN, entered only when the SIM asks for it.
    #[serde(rename = "PIN", default)]
    pub pin: Option<Secret>,
    /// The SMS service centre number to set before sending (`AT+CSCA`).
    #[serde(rename = "SMSC", default)]
    pub smsc: Option<String>,
    /// Seconds for the whole dialogue, waiting for the modem included.
    #[serde(
        rename = "TIMEOUT",
        alias = "timeout",
        default = "default_timeout",
        deserialize_with = "linotp_values::seconds"
    )]
    pub timeout: Duration,
    /// LinOTP's `MSISDN`: reduce the number to `+` and digits.
    #[serde(rename = "MSISDN", default)]
    pub msisdn: Flag,
    /// LinOTP's `SUPPRESS_PREFIX`: removed from the start of the number.
    #[serde(rename = "SUPPRESS_PREFIX", default)]
    pub suppress_prefix: Option<String>,
}

fn default_baud_rate() -> u32 {
    115_200
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Whether `number` can go between the quotes of an AT command: `+` and digits only, so no
/// quote or line break can smuggle a second command in.
fn is_dialable(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

impl DeviceSmsConfig {
    /// The values a modem's answer must not carry into a log: the SIM PIN.
    pub fn secret_values(&self) -> Vec<String> {
        self.pin
            .iter()
            .map(|p| String::from_utf8_lossy(p.expose()).into_owned())
            .collect()
    }

    /// Checks the keys without touching the device or the gnokiirc; messages never show the PIN.
    pub fn check(&self) -> Result<(), Problem> {
        match (&self.device, &self.config_file) {
            (None, None) => {
                return Err(Problem::new(
                    "DEVICE",
                    "set DEVICE (the modem's serial port) or CONFIGFILE (a gnokiirc)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Problem::new(
                    "CONFIGFILE",
                    "set either DEVICE or CONFIGFILE, not both",
                ));
            }
            _ => {}
        }
        if let Some(pin) = &self.pin {
            let pin = pin.expose();
            if !(4..=8).contains(&pin.len()) || !pin.iter().all(u8::is_ascii_digit) {
                return Err(Problem::new("PIN", "a SIM PIN is 4 to 8 digits"));
            }
        }
        if let Some(smsc) = &self.smsc
            && !is_dialable(smsc)
        {
            return Err(Problem::new(
                "SMSC",
                format!("{smsc:?} is not a phone number (+ and digits)"),
            ));
        }
        Ok(())
    }
}

/// The `port` of a gnokiirc's `[global]` section (section and key names are case-insensitive;
/// `#` and `;` start comments).
pub fn gnokiirc_port(text: &str) -> Option<String> {
    let mut in_global = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_global = section.trim().eq_ignore_ascii_case("global");
            continue;
        }
        if !in_global {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("port")
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// What tessera remembers about a modem between messages.
#[derive(Debug, Default)]
struct DeviceState {
    /// The SIM refused the configured PIN. It is not tried again until a restart: a SIM locks
    /// after three wrong PINs, and every login would otherwise spend one.
    pin_rejected: bool,
}

/// One lock (and state) per device path, shared by every provider that uses the device. The
/// registry holds them weakly: once no provider uses a device, its state is gone.
fn device_lock(device: &Path) -> Arc<tokio::sync::Mutex<DeviceState>> {
    type Registry = HashMap<PathBuf, Weak<tokio::sync::Mutex<DeviceState>>>;
    static LOCKS: OnceLock<Mutex<Registry>> = OnceLock::new();
    let key = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    locks.retain(|_, lock| lock.strong_count() > 0);
    if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(DeviceState::default()));
    locks.insert(key, Arc::downgrade(&lock));
    lock
}

/// See the module documentation.
pub struct DeviceSmsProvider {
    name: String,
    device: PathBuf,
    config: DeviceSmsConfig,
    phone: PhoneFormat,
    lock: Arc<tokio::sync::Mutex<DeviceState>>,
}

impl DeviceSmsProvider {
    /// Resolves the device (reading the gnokiirc if configured so); the port itself is opened
    /// per message, so a modem plugged in later still works.
    pub fn open(name: &str, config: &DeviceSmsConfig) -> Result<Self, String> {
        let device = match (&config.device, &config.config_file) {
            (Some(device), _) => device.clone(),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("CONFIGFILE: cannot read {}: {e}", file.display()))?;
                let port = gnokiirc_port(&text).ok_or_else(|| {
                    format!(
                        "CONFIGFILE: {} has no `port` in its [global] section",
                        file.display()
                    )
                })?;
                PathBuf::from(port)
            }
            (None, None) => return Err("DEVICE: no device configured".into()),
        };
        if !device.exists() {
            // Not an error: a USB modem may be plugged in after tessera started.
            tracing::warn!(provider = %name, device = %device.display(), "the modem's device does not exist (yet)");
        }
        Ok(DeviceSmsProvider {
            name: name.to_string(),
            lock: device_lock(&device),
            device,
            config: config.clone(),
            phone: PhoneFormat::new(config.msisdn, config.suppress_prefix.as_deref()),
        })
    }

    /// The serial port in use.
    pub fn device(&self) -> &Path {
        &self.device
    }
}

/// How the dialogue went wrong.
#[derive(Debug)]
enum Failure {
    /// The port or the modem did not work: try another provider.
    Link(String),
    /// The modem answered with an error.
    Refused(String),
    /// tessera could not open a descriptor for the port: its own failure, not the modem's.
    Local(LocalFailure),
}

/// What the modem said, one line (or the prompt) at a time.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    /// `ERROR`, `+CMS ERROR: n`, `+CME ERROR: n`, `NO CARRIER` — the line itself (none of these
    /// carries a secret).
    Error(String),
    /// The `> ` prompt of `AT+CMGS`.
    Prompt,
    /// Anything else: information lines, echoes, unsolicited codes.
    Info(String),
}

fn classify(line: &str) -> Answer {
    let line = line.trim();
    if line == "OK" {
        Answer::Ok
    } else if line == "ERROR"
        || line == "NO CARRIER"
        || line.starts_with("+CMS ERROR:")
        || line.starts_with("+CME ERROR:")
    {
        Answer::Error(line.to_string())
    } else {
        Answer::Info(line.to_string())
    }
}

/// Lines longer than this are noise; they are cut so a babbling device cannot fill memory.
const MAX_LINE: usize = 512;
/// Information lines kept per command; a command answers with a few at most.
const MAX_INFO_LINES: usize = 32;

struct Modem {
    port: Box<dyn serialport::SerialPort>,
    pending: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
}

impl Modem {
    fn write(&mut self, bytes: &[u8], what: &str) -> Result<(), Failure> {
        self.port
            .write_all(bytes)
            .and_then(|()| self.port.flush())
            .map_err(|e| Failure::Link(format!("writing {what}: {e}")))
    }

    /// The next line, or the prompt when `prompt` is set and the unterminated rest is `> `.
    fn next(&mut self, what: &str, prompt: bool) -> Result<Answer, Failure> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\r' || *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(line.get(..end).unwrap_or(&[])).into_owned();
                if line.trim().is_empty() {
                    continue;
                }
                return Ok(classify(&line));
            }
            if prompt && self.pending.starts_with(b">") {
                self.pending.clear();
                return Ok(Answer::Prompt);
            }
            if self.pending.len() > MAX_LINE {
                self.pending.clear();
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(Failure::Link(format!(
                    "no answer to {what} within {}s",
                    self.timeout.as_secs_f64()
                )));
            }
            let wait = (self.deadline - now).min(Duration::from_millis(100));
            self.port
                .set_timeout(wait)
                .map_err(|e| Failure::Link(format!("serial port: {e}")))?;
            let mut chunk = [0u8; 256];
            match self.port.read(&mut chunk) {
                // Nothing read without an error: do not spin until the deadline.
                Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                Ok(n) => self
                    .pending
                    .extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::Link(format!("reading the answer to {what}: {e}"))),
            }
        }
    }

    /// Sends a command and collects its information lines up to `OK`. `what` names the command
    /// in errors — it is never the command itself, which may hold the PIN.
    fn command(&mut self, command: &str, what: &str) -> Result<Vec<String>, Failure> {
        self.write(format!("{command}\r").as_bytes(), what)?;
        let mut info = vec![];
        loop {
            match self.next(what, false)? {
                Answer::Ok => return Ok(info),
                Answer::Error(e) => return Err(Failure::Refused(format!("{what}: {e}"))),
                // Bounded: a babbling device cannot fill memory before the deadline.
                Answer::Info(line) if info.len() < MAX_INFO_LINES => info.push(line),
                Answer::Info(_) | Answer::Prompt => {}
            }
        }
    }
}

/// Everything a dialogue needs, moved into the blocking task.
struct Job {
    device: PathBuf,
    baud_rate: u32,
    pin: Option<Secret>,
    smsc: Option<String>,
    number: String,
    text: Secret,
    timeout: Duration,
    deadline: Instant,
}

/// Runs the whole dialogue; returns the message reference of `+CMGS: n`.
fn dialogue(job: &Job, state: &mut DeviceState) -> Result<String, Failure> {
    let port = serialport::new(job.device.to_string_lossy(), job.baud_rate)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open()
        .map_err(|e| match whose(e) {
            Whose::Ours(failure) => Failure::Local(failure),
            Whose::Peer(e) => Failure::Link(format!("cannot open {}: {e}", job.device.display())),
        })?;
    let _ = port.clear(serialport::ClearBuffer::Input);
    let mut modem = Modem {
        port,
        pending: vec![],
        deadline: job.deadline,
        timeout: job.timeout,
    };

    modem.command("AT", "AT").map_err(|e| match e {
        // A modem that cannot even say OK to AT is not working, whatever it said.
        Failure::Refused(r) | Failure::Link(r) => Failure::Link(r),
        local @ Failure::Local(_) => local,
    })?;
    if let Some(pin) = &job.pin {
        let info = modem.command("AT+CPIN?", "AT+CPIN?")?;
        let sim = info
            .iter()
            .find_map(|l| l.strip_prefix("+CPIN:"))
            .map(str::trim)
            .unwrap_or("");
        match sim {
            "READY" => {}
            "SIM PIN" if state.pin_rejected => {
                return Err(Failure::Refused(
                    "the SIM refused the configured PIN before; not trying it again until \
                     tessera restarts"
                        .into(),
                ));
            }
            "SIM PIN" => {
                let pin = pin.expose_str().unwrap_or("");
                modem
                    .command(&format!("AT+CPIN=\"{pin}\""), "AT+CPIN")
                    .map_err(|e| match e {
                        Failure::Refused(r) => {
                            state.pin_rejected = true;
                            Failure::Refused(format!("SIM PIN not accepted ({r})"))
                        }
                        link => link,
                    })?;
            }
            other => {
                // Never guess further: a wrong PUK attempt can lock the SIM for good.
                return Err(Failure::Refused(format!(
                    "the SIM is not ready ({other:?}); tessera only enters the SIM PIN"
                )));
            }
        }
    }
    if let Some(smsc) = &job.smsc {
        modem.command(&format!("AT+CSCA=\"{smsc}\""), "AT+CSCA")?;
    }
    modem.command("AT+CMGF=1", "AT+CMGF=1")?;

    let result = send_text(&mut modem, job);
    if let Err(Failure::Link(_)) = &result {
        // Leave the modem out of prompt mode, so the next dialogue starts clean.
        let _ = modem.port.write_all(b"\x1b");
    }
    result
}

fn send_text(modem: &mut Modem, job: &Job) -> Result<String, Failure> {
    modem.write(
        format!("AT+CMGS=\"{}\"\r", job.number).as_bytes(),
        "AT+CMGS",
    )?;
    loop {
        match modem.next("AT+CMGS", true)? {
            Answer::Prompt => break,
            Answer::Error(e) => return Err(Failure::Refused(format!("AT+CMGS: {e}"))),
            // A stray OK (or the echo) is not the prompt.
            Answer::Ok | Answer::Info(_) => {}
        }
    }
    let mut body = modem_text(job.text.expose());
    body.push(0x1a);
    modem.write(&body, "the message text")?;
    let mut reference = None;
    loop {
        match modem.next("the message text", false)? {
            Answer::Info(line) => {
                if let Some(n) = line.strip_prefix("+CMGS:") {
                    reference = Some(n.trim().to_string());
                }
            }
            // An OK before +CMGS can only be the echo of a text line reading "OK".
            Answer::Ok => {
                if let Some(reference) = reference {
                    return Ok(reference);
                }
            }
            Answer::Error(e) => return Err(Failure::Refused(format!("sending the text: {e}"))),
            Answer::Prompt => {}
        }
    }
}

/// The text as the modem's text mode can carry it (see the module documentation).
fn modem_text(text: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| match c {
            '\n' => b'\n',
            c if c.is_ascii_control() => b' ',
            c if c.is_ascii() => c as u8,
            _ => b'?',
        })
        .collect()
}

#[async_trait]
impl Provider for DeviceSmsProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let c = &self.config;
        let unavailable = |reason: String| DeliveryError::Unavailable {
            provider: self.name.clone(),
            reason,
        };
        let number = self.phone.apply(&message.recipient);
        if !is_dialable(&number) {
            return Err(DeliveryError::Refused {
                provider: self.name.clone(),
                reason: format!("{number:?} is not a phone number the modem can dial"),
            });
        }
        let started = tokio::time::Instant::now();
        let deadline = started + c.timeout;
        let Ok(guard) = tokio::time::timeout_at(deadline, self.lock.clone().lock_owned()).await
        else {
            return Err(unavailable(format!(
                "{} is still busy with earlier messages after {}s",
                self.device.display(),
                c.timeout.as_secs_f64()
            )));
        };
        let job = Job {
            device: self.device.clone(),
            baud_rate: c.baud_rate,
            pin: c.pin.clone(),
            smsc: c.smsc.clone(),
            number,
            text: message.text.clone(),
            timeout: c.timeout,
            deadline: deadline.into_std(),
        };
        let task = tokio::task::spawn_blocking(move || {
            let mut state = guard;
            dialogue(&job, &mut state)
        });
        // The dialogue stops by itself at the deadline; the margin only guards against a
        // blocking read that overruns it.
        let margin = Duration::from_secs(1);
        match tokio::time::timeout_at(deadline + margin, task).await {
            Ok(Ok(Ok(reference))) => Ok(Receipt {
                provider: self.name.clone(),
                detail: format!("+CMGS: {reference} from {}", self.device.display()),
            }),
            Ok(Ok(Err(Failure::Link(reason)))) => Err(unavailable(reason)),
            Ok(Ok(Err(Failure::Local(failure)))) => Err(DeliveryError::local(&self.name, failure)),
            Ok(Ok(Err(Failure::Refused(reason)))) => Err(DeliveryError::Refused {
                provider: self.name.clone(),
                reason,
            }),
            Ok(Err(e)) => Err(DeliveryError::judged(&self.name, e, |e| {
                unavailable(format!("modem task failed: {e}"))
            })),
            Err(_) => Err(unavailable(format!(
                "no answer from {} within {}s",
                self.device.display(),
                c.timeout.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnokiirc_of_the_seed() {
        let seed = "[global]\n model = AT\n port = /dev/ttyACM1\n connection = serial\n";
        assert_eq!(gnokiirc_port(seed).as_deref(), Some("/dev/ttyACM1"));
    }

    #[test]
    fn gnokiirc_other_sections_comments_and_case() {
        let text = "# gnokii\n[phone_other]\nport = /dev/ttyUSB9\n\n[Global]\n; port = /dev/no\nPort=/dev/ttyUSB0 \n";
        assert_eq!(gnokiirc_port(text).as_deref(), Some("/dev/ttyUSB0"));
        assert_eq!(gnokiirc_port("[global]\nmodel = AT\n"), None);
        assert_eq!(gnokiirc_port("port = /dev/ttyS0\n"), None);
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify("OK"), Answer::Ok);
        assert_eq!(
            classify("+CMS ERROR: 500"),
            Answer::Error("+CMS ERROR: 500".into())
        );
        assert_eq!(classify("ERROR"), Answer::Error("ERROR".into()));
        assert_eq!(classify("+CMGS: 12"), Answer::Info("+CMGS: 12".into()));
    }

    #[test]
    fn text_is_made_safe_for_text_mode() {
        assert_eq!(
            modem_text("OTP 123456\x1a\x1bä\nx".as_bytes()),
            b"OTP 123456  ?\nx"
        );
    }

    #[test]
    fn only_plain_numbers_are_dialled() {
        assert!(is_dialable("+4917012345678"));
        assert!(is_dialable("017012345678"));
        assert!(!is_dialable("+49\"\rAT+CPIN"));
        assert!(!is_dialable("+"));
        assert!(!is_dialable("+49 170"));
    }

    #[test]
    fn config_needs_a_device_and_hides_the_pin() {
        let c: DeviceSmsConfig = toml::from_str("BAUDRATE = \"9600\"").unwrap();
        assert_eq!(c.check().unwrap_err().key, "DEVICE");
        let c: DeviceSmsConfig =
            toml::from_str("DEVICE = \"/dev/ttyACM1\"\nPIN = \"12x4\"").unwrap();
        let e = c.check().unwrap_err();
        assert!(e.key == "PIN" && !e.message.contains("12x4"), "{e}");
        let c: DeviceSmsConfig = toml::from_str("CONFIGFILE = \"/etc/gnokiirc\"").unwrap();
        assert!(c.check().is_ok());
        assert_eq!((c.baud_rate, c.timeout), (115_200, Duration::from_secs(10)));
    }
}
