//! [`Redactor`]: a provider's configured secret values taken out of everything its peer says
//! before that text reaches a log line, an error or the audit.
//!
//! Gateways echo requests in their error replies: query strings (URL-encoded), form bodies,
//! headers, `Authorization: Basic …` (base64). So each secret value is searched for as written,
//! percent-encoded (upper and lower case hex, space as `%20` or `+`) and in base64 — and the
//! basic-auth pair `user:password` as a whole, since its base64 does not contain the base64
//! of either half. Values shorter than [`MIN_LEN`] characters are not searched for: they would
//! blot out ordinary text and protect nothing.
//!
//! [`Redacting`] wraps every configured provider (`config/open.rs`), so no caller can forget
//! it; providers that cut a reply short (HTTP) also redact before cutting, so the cut cannot
//! leave half a secret behind.

use std::sync::Arc;

use async_trait::async_trait;

use super::{DeliveryError, Message, Provider, Receipt};
use crate::secret::Secret;

/// Shorter values are not redacted (see the module documentation).
pub const MIN_LEN: usize = 4;

/// See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Every form of every value, longest first (so a value containing another goes first).
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these values (empty ones and short ones are ignored).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles: Vec<String> = values
            .into_iter()
            .filter(|v| v.as_ref().chars().count() >= MIN_LEN)
            .flat_map(|v| forms(v.as_ref()))
            .collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// `text` with every form of every value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "***");
            }
        }
        text
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// The secret values of an AUTH user and password (SMTP, basic auth): each, the pair as
/// `user:password` (basic auth) and as SASL PLAIN's `\0user\0password`.
pub fn credentials(user: Option<&str>, password: Option<&Secret>) -> Vec<String> {
    let password = password
        .map(|p| String::from_utf8_lossy(p.expose()).into_owned())
        .unwrap_or_default();
    let user = user.unwrap_or_default().to_string();
    if user.is_empty() && password.is_empty() {
        return vec![];
    }
    vec![
        format!("{user}:{password}"),
        format!("\0{user}\0{password}"),
        user,
        password,
    ]
}

/// The forms a value may come back in.
fn forms(value: &str) -> Vec<String> {
    let upper = percent_encode(value, false);
    let lower = percent_encode(value, true);
    let mut out = vec![
        value.to_string(),
        upper.clone(),
        lower.clone(),
        upper.replace("%20", "+"),
        lower.replace("%20", "+"),
        base64(value.as_bytes()),
    ];
    // base64 without its padding, as it appears inside longer base64 text.
    let b64 = base64(value.as_bytes());
    let unpadded = b64.trim_end_matches('=');
    if unpadded.chars().count() >= MIN_LEN {
        out.push(unpadded.to_string());
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str, lower: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32| char::from(ALPHABET.get((n & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(n >> 18));
        out.push(sextet(n >> 12));
        out.push(if chunk.len() > 1 { sextet(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n) } else { '=' });
    }
    out
}

/// A provider whose receipts and errors pass its [`Redactor`] (and the message text, which
/// holds the OTP, in the same forms) before anyone sees them.
pub struct Redacting {
    inner: Arc<dyn Provider>,
    redactor: Redactor,
}

impl Redacting {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Provider>, redactor: Redactor) -> Self {
        Redacting { inner, redactor }
    }

    fn redact(&self, text: &str, message: &Secret) -> String {
        let text = self.redactor.redact(text);
        match message.expose_str() {
            Some(m) => Redactor::new([m]).redact(&text),
            None => text,
        }
    }
}

#[async_trait]
impl Provider for Redacting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        match self.inner.send(message).await {
            Ok(receipt) => Ok(Receipt {
                detail: self.redact(&receipt.detail, &message.text),
                provider: receipt.provider,
            }),
            Err(DeliveryError::Unavailable { provider, reason }) => {
                Err(DeliveryError::Unavailable {
                    reason: self.redact(&reason, &message.text),
                    provider,
                })
            }
            Err(DeliveryError::Refused { provider, reason }) => Err(DeliveryError::Refused {
                reason: self.redact(&reason, &message.text),
                provider,
            }),
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"gwuser:gw pass"), "Z3d1c2VyOmd3IHBhc3M=");
    }

    #[test]
    fn every_form_is_redacted() {
        let r = Redactor::new(["s3cret key/+", "gwuser:gw pass", "abc"]);
        let echoed = "k=s3cret key/+ q=s3cret%20key%2F%2B f=s3cret+key%2f%2b \
                      Authorization: Basic Z3d1c2VyOmd3IHBhc3M= abc";
        assert_eq!(
            r.redact(echoed),
            "k=*** q=*** f=*** Authorization: Basic *** abc",
            "short values stay"
        );
        assert!(Redactor::new(["", "ab"]).is_empty());
    }
}
