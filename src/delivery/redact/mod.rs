//! [`Redactor`]: a provider's configured secret values taken out of everything its peer says
//! before that text reaches a log line, an error, the audit or `tessera provider test`.
//!
//! Gateways echo requests in their error replies, and not always as they got them: query
//! strings and form bodies (percent-encoded, `+` for a space, hex in either case), headers,
//! `Authorization: Basic …` (base64), and all of it again HTML-escaped for an error page
//! (`&amp;`, `&auml;`, `&#228;`, `&#xE4;`) or JSON-escaped for an API (`\"`, `\\`, `\u00e4`).
//! So the text is read in each of those encodings (`decode.rs`: as it is, HTML- or
//! JSON-unescaped, each of those URL- or form-decoded), every value is searched for in every
//! reading, and what spelled it in the original text — whichever encoding that was — becomes
//! `***`. Base64 cannot be decoded in place (it packs three octets into four characters), so
//! each value is searched for as base64 at each of the three alignments it can have inside a
//! longer base64 text (and in base64url), which also covers the basic-auth pair
//! `user:password`, searched as a value of its own. Values shorter than [`MIN_LEN`] characters
//! are not searched for: they would blot out ordinary text and protect nothing.
//!
//! [`Redacting`] wraps every configured provider (`config/open.rs`), so no caller can forget
//! it; it also takes out the message text, the OTP in it and the recipient, in the same
//! encodings. Providers that cut a reply short (HTTP) redact before cutting, so the cut cannot
//! leave half a secret behind, and keep only a short excerpt ([`super::peer_reply`]).

mod decode;
mod entities;

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;

use super::{DeliveryError, Message, Provider, Receipt};
use crate::secret::Secret;

/// Shorter values are not redacted (see the module documentation).
pub const MIN_LEN: usize = 4;

/// See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Every value and its base64 forms, as characters, longest first.
    needles: Vec<Vec<char>>,
}

impl Redactor {
    /// A redactor for these values (empty ones and short ones are ignored).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor::default().with(values)
    }

    /// This redactor and these values too.
    pub fn with<I, S>(&self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles: Vec<Vec<char>> = self.needles.clone();
        needles.extend(
            values
                .into_iter()
                .filter(|v| v.as_ref().chars().count() >= MIN_LEN)
                .flat_map(|v| forms(v.as_ref()))
                .map(|form| form.chars().collect::<Vec<char>>()),
        );
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// `text` with every encoding of every value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.needles.is_empty() {
            return text.to_string();
        }
        let mut found: Vec<Range<usize>> = vec![];
        for view in decode::readings(text) {
            for needle in &self.needles {
                let windows = view.windows(needle.len());
                found.extend(
                    windows
                        .filter(|w| w.iter().map(|(c, _)| c).eq(needle.iter()))
                        .filter_map(|w| Some(w.first()?.1.start..w.last()?.1.end)),
                );
            }
        }
        blot(text, found)
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// `text` with each of the (possibly overlapping) byte ranges `found` replaced by one `***`.
fn blot(text: &str, mut found: Vec<Range<usize>>) -> String {
    found.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in found {
        if range.end <= copied {
            continue;
        }
        if range.start >= copied {
            out.push_str(text.get(copied..range.start).unwrap_or_default());
            out.push_str("***");
        }
        copied = range.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
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

/// The forms a value is searched for in every reading: itself, and its base64 (see the
/// module documentation).
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string(), base64(value.as_bytes())];
    for offset in 0..3 {
        let inner = base64_inner(value.as_bytes(), offset);
        if inner.chars().count() >= MIN_LEN {
            out.push(inner.replace('+', "-").replace('/', "_"));
            out.push(inner);
        }
    }
    out
}

/// The characters of the base64 of `value` preceded by `offset` other octets that depend on
/// `value`'s octets alone: what any base64 text holding `value` at that offset (mod 3) holds.
fn base64_inner(value: &[u8], offset: usize) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(value);
    let encoded = base64(&bytes);
    let first = (8 * offset).div_ceil(6);
    let end = 8 * (offset + value.len()) / 6;
    encoded
        .chars()
        .skip(first)
        .take(end.saturating_sub(first))
        .collect()
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

    /// `text` without the provider's secrets, `message`'s text, the OTP in it (every run of
    /// digits) and its recipient (also as digits only: gateways get it normalised).
    fn redact(&self, text: &str, message: &Message) -> String {
        let body = String::from_utf8_lossy(message.text.expose()).into_owned();
        let digits = |s: &str| -> Vec<String> {
            s.split(|c: char| !c.is_ascii_digit())
                .filter(|run| !run.is_empty())
                .map(String::from)
                .collect()
        };
        let recipient: String = message
            .recipient
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let mut values = digits(&body);
        values.extend([body, message.recipient.clone(), recipient]);
        self.redactor.with(values).redact(text)
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
                detail: self.redact(&receipt.detail, message),
                provider: receipt.provider,
            }),
            Err(DeliveryError::Unavailable { provider, reason }) => {
                Err(DeliveryError::Unavailable {
                    reason: self.redact(&reason, message),
                    provider,
                })
            }
            Err(DeliveryError::Refused { provider, reason }) => Err(DeliveryError::Refused {
                reason: self.redact(&reason, message),
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
    fn base64_inside_longer_base64_at_every_alignment() {
        for prefix in ["", "x", "xy", "xyz"] {
            let text = format!(
                "Basic {}",
                base64(format!("{prefix}Secret-77 and more").as_bytes())
            );
            let redacted = Redactor::new(["Secret-77"]).redact(&text);
            assert!(redacted.contains("***"), "{prefix:?}: {redacted}");
        }
        let url_safe = base64("??>>Secret-77".as_bytes())
            .replace('+', "-")
            .replace('/', "_");
        assert!(
            Redactor::new(["??>>Secret-77"])
                .redact(&url_safe)
                .contains("***")
        );
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

    /// Issue 23: the encodings of the attacker's report, each alone and combined.
    #[test]
    fn issue_23_html_json_url_and_form_encodings_are_redacted() {
        let r = Redactor::new(["S3cr3t P@ss&w0rd=1+2", "Pässwort", "KEY\"with\\backslash"]);
        for (echo, left) in [
            ("html: S3cr3t P@ss&amp;w0rd=1+2.", "html: ***."),
            ("S3cr3t&#32;P&#x40;ss&#38;w0rd&#61;1&#43;2", "***"),
            (
                "P&auml;sswort P&#228;sswort P&#xe4;sswort P&#XE4sswort",
                "*** *** *** ***",
            ),
            (
                "json: {\"p\": \"P\\u00e4sswort\", \"k\": \"KEY\\\"with\\\\backslash\"}",
                "json: {\"p\": \"***\", \"k\": \"***\"}",
            ),
            ("P\\u00E4sswort", "***"),
            (
                "url: S3cr3t%20P%40ss%26w0rd%3D1%2B2 P%C3%A4sswort P%c3%a4sswort",
                "url: *** *** ***",
            ),
            (
                "form: S3cr3t+P%40ss%26w0rd%3d1%2b2&k=KEY%22with%5Cbackslash",
                "form: ***&k=***",
            ),
            (
                "html of a form: a=S3cr3t+P%40ss%26amp;w0rd",
                "html of a form: a=S3cr3t+P%40ss%26amp;w0rd",
            ),
            (
                "html of a form: a=S3cr3t+P%40ss&amp;w0rd%3D1%2B2",
                "html of a form: a=***",
            ),
            (
                "json of a query: \"P%C3%A4sswort\"",
                "json of a query: \"***\"",
            ),
            ("nothing here: S3cr3t P@ss", "nothing here: S3cr3t P@ss"),
        ] {
            assert_eq!(r.redact(echo), left, "{echo}");
        }
    }

    #[test]
    fn the_message_and_its_recipient_are_redacted_too() {
        let message = Message {
            channel: super::super::Channel::Sms,
            recipient: "+49 170 1234567".into(),
            subject: None,
            text: Secret::from("Your code: 483920"),
            serial: String::new(),
            user: String::new(),
        };
        struct Idle;
        #[async_trait]
        impl Provider for Idle {
            fn name(&self) -> &str {
                "idle"
            }
            async fn send(&self, _: &Message) -> Result<Receipt, DeliveryError> {
                Err(DeliveryError::Unavailable {
                    provider: "idle".into(),
                    reason: "idle".into(),
                })
            }
        }
        let wrapper = Redacting::new(Arc::new(Idle), Redactor::new(["gw-secret"]));
        let echo = "to=491701234567&text=Your+code%3A+483920 code=483920 \
                    b64=WW91ciBjb2RlOiA0ODM5MjA= key=gw-secret";
        assert_eq!(
            wrapper.redact(echo, &message),
            "to=***&text=*** code=*** b64=*** key=***"
        );
    }
}
