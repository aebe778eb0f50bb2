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

use super::{DeliveryError, Message, Provider, Receipt};

/// `[provider.sms.NAME]` / `[provider.email.NAME]` with `class = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProviderConfig {
    /// The spool file (relative paths are relative to the config file).
    pub path: PathBuf,
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

/// Formats a Unix time as RFC 3339 UTC (`2026-11-23T10:15:00Z`) without a date crate.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
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
            rfc3339(now),
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
            Ok(Err(e)) => Err(DeliveryError::Unavailable {
                provider: name,
                reason: format!("{}: {e}", self.path.display()),
            }),
            Err(e) => Err(DeliveryError::Unavailable {
                provider: name,
                reason: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_400_000), "2026-11-23T02:13:20Z");
    }
}
