//! The `file` provider: appends each message as one line to a spool file instead of sending it.
//!
//! For trying tessera out with no SMS gateway or mail server, and for tests of the engine. Each
//! line is tab-separated: RFC 3339 UTC time, channel, recipient, subject (or `-`), text — with
//! tabs and line breaks in the text replaced by spaces.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::class::{ProviderClass, ProviderSettings};
use super::{Channel, DeliveryError, Message, Provider, Receipt};
use crate::backend::{Problem, Resolve, from_table};

/// The registry's row: `class = "file"` (LinOTP's `FileSMSProvider`), on either channel.
pub static CLASS: ProviderClass = ProviderClass {
    name: "file",
    aliases: &["FileSMSProvider"],
    channels: &[Channel::Sms, Channel::Email],
    check,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<Arc<dyn ProviderSettings>, Vec<Problem>> {
    let mut config: FileProviderConfig = from_table(keys)?;
    config.path = resolve(&config.path);
    Ok(Arc::new(config))
}

/// `[provider.sms.NAME]` / `[provider.email.NAME]` with `class = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProviderConfig {
    /// The spool file (relative paths are relative to the config file).
    pub path: PathBuf,
}

impl ProviderSettings for FileProviderConfig {
    fn secret_values(&self) -> Vec<String> {
        vec![]
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(FileProvider::new(name, self)))
    }
}

/// See the module documentation.
pub struct FileProvider {
    name: String,
    path: PathBuf,
    // One writer at a time, so lines never interleave.
    lock: Arc<std::sync::Mutex<()>>,
}

impl FileProvider {
    /// A provider appending to `config.path`.
    pub fn new(name: &str, config: &FileProviderConfig) -> Self {
        FileProvider {
            name: name.to_string(),
            path: config.path.clone(),
            lock: Arc::default(),
        }
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[async_trait]
impl Provider for FileProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\n",
            crate::rfc3339::format(now),
            message.channel,
            clean(&message.recipient),
            message
                .subject
                .as_deref()
                .map(clean)
                .unwrap_or_else(|| "-".into()),
            clean(&String::from_utf8_lossy(message.text.expose())),
        );
        let path = self.path.clone();
        let lock = self.lock.clone();
        let name = self.name.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let _guard = lock
                .lock()
                .map_err(|_| std::io::Error::other("spool lock poisoned"))?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(line.as_bytes())?;
            file.flush()
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(Receipt {
                provider: name,
                detail: format!("appended to {}", self.path.display()),
            }),
            // The spool is tessera's own disk: any system error writing it is tessera's.
            Ok(Err(e)) => Err(DeliveryError::judged(&name, e, |e| {
                DeliveryError::Unavailable {
                    provider: name.clone(),
                    reason: format!("{}: {e}", self.path.display()),
                }
            })),
            Err(e) => Err(DeliveryError::judged(&name, e, |e| {
                DeliveryError::Unavailable {
                    provider: name.clone(),
                    reason: e.to_string(),
                }
            })),
        }
    }
}
