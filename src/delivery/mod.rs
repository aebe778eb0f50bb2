//! Delivery: getting an OTP to the user by SMS or e-mail.
//!
//! [`Provider`] is the trait each provider class implements, one file per class: `file`,
//! `http_sms` (LinOTP's HttpSMSProvider), `smtp_sms` (SmtpSMSProvider), `smpp_sms`
//! (SMPPSMSProvider, with `smpp_encoding`), `device_sms` (DeviceSMSProvider, a GSM modem) and
//! `smtp_email` (SMTPEmailProvider); each module's `CLASS` is its row in [`registry::CLASSES`],
//! which the config looks class names up in. `smtp` is the SMTP exchange both SMTP classes share;
//! `crate::linotp_values` reads LinOTP's loosely typed values (numbers and booleans written
//! as strings). `redact` takes each provider's configured secrets out of what its peer says.
//! [`Providers`] holds the named providers of each channel and does failover: the next
//! provider is tried only when one is *unavailable* (connection error, timeout), never when a
//! gateway explicitly refused the message — as LinOTP does. An unavailable provider is skipped
//! for a while afterwards ([`Backoff`], LinOTP's ResourceScheduler). [`crate::failure`]
//! decides whose a failure is: one of tessera's own (no descriptor, no memory …) is never the
//! provider's.
//!
//! [`PhoneFormat`] is LinOTP's `MSISDN`/`SUPPRESS_PREFIX` handling, read the same way and
//! applied the same way by every SMS provider.

pub mod class;
pub mod device_sms;
pub mod file;
pub mod http_sms;
mod http_sms_keys;
mod phone;
pub mod redact;
pub mod registry;
pub mod smpp_encoding;
pub mod smpp_sms;
pub mod smtp;
pub mod smtp_email;
pub mod smtp_sms;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;

pub use phone::PhoneFormat;

use crate::secret::Secret;

/// The two ways an OTP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A text message to a phone.
    Sms,
    /// An e-mail.
    Email,
}

impl Channel {
    /// The channel's name in the config (`[provider.sms.*]`) and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outgoing message. The text holds the OTP, so it is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Message {
    /// SMS or e-mail.
    pub channel: Channel,
    /// Phone number or e-mail address.
    pub recipient: String,
    /// E-mail subject (None: the provider's default).
    pub subject: Option<String>,
    /// The rendered text, OTP included.
    pub text: Secret,
    /// The token's serial, for provider templates (`<serial>` in an e-mail `TEMPLATE`).
    pub serial: String,
    /// The user's login name, for provider templates (`<user>`).
    pub user: String,
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The provider could not be reached or did not answer in time: try the next one.
    #[error("provider {provider} unavailable: {reason}")]
    Unavailable {
        /// Provider name.
        provider: String,
        /// What went wrong.
        reason: String,
    },
    /// The provider answered and refused the message: do not try another.
    #[error("provider {provider} refused the message: {reason}")]
    Refused {
        /// Provider name.
        provider: String,
        /// What the peer said.
        reason: String,
    },
    /// tessera could not try the provider: a failure of its own (descriptors, memory, the
    /// runtime …; see [`crate::failure`]), never the provider's. Neither the provider's back-off nor
    /// a `delivery_failmode` applies.
    #[error("provider {provider} not tried: {failure}")]
    Local {
        /// Provider name.
        provider: String,
        /// What failed, with the error as its source.
        #[source]
        failure: crate::failure::LocalFailure,
    },
    /// No provider is configured for the channel or by the policy's names.
    #[error("no {channel} provider configured{}", .name.as_deref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NotConfigured {
        /// The channel.
        channel: Channel,
        /// The name asked for, if any.
        name: Option<String>,
    },
}

impl DeliveryError {
    /// A failure of tessera's own while sending through `provider`.
    pub fn local(provider: &str, failure: crate::failure::LocalFailure) -> DeliveryError {
        DeliveryError::Local {
            provider: provider.to_string(),
            failure,
        }
    }

    /// `error` judged by [`crate::failure::whose`]: tessera's own becomes [`DeliveryError::Local`],
    /// the provider's whatever `peer` makes of it.
    pub fn judged<E: std::error::Error + Send + Sync + 'static>(
        provider: &str,
        error: E,
        peer: impl FnOnce(E) -> DeliveryError,
    ) -> DeliveryError {
        match crate::failure::whose(error) {
            crate::failure::Whose::Ours(failure) => DeliveryError::local(provider, failure),
            crate::failure::Whose::Peer(error) => peer(error),
        }
    }

    /// The failure of tessera's own behind this error, if it is one.
    pub fn local_failure(&self) -> Option<&crate::failure::LocalFailure> {
        match self {
            DeliveryError::Local { failure, .. } => Some(failure),
            _ => None,
        }
    }

    /// The `kind` label of `tessera_delivery_failures_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryError::Unavailable { .. } => "unavailable",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::Local { .. } => "local",
            DeliveryError::NotConfigured { .. } => "not_configured",
        }
    }
}

/// What a provider reports after a successful hand-over.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// Provider name.
    pub provider: String,
    /// What the peer said (gateway reply, message id …), for logs and audit.
    pub detail: String,
}

/// A provider class.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured name.
    fn name(&self) -> &str;

    /// Hands the message to the peer. Implementations bound their own time.
    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError>;
}

/// A peer's reply made fit for an error message or a log line: the message text (it holds the
/// OTP, and some gateways echo it) replaced by `***`, line breaks flattened, cut to 200 chars.
pub fn peer_reply(reply: &str, text: &Secret) -> String {
    let mut reply = reply.trim().to_string();
    if let Some(text) = text.expose_str().filter(|t| !t.is_empty()) {
        reply = reply.replace(text, "***");
    }
    let flat: String = reply
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// How long an unavailable provider is skipped: 30 s, doubling on each repeat up to 10 min,
/// as LinOTP's ResourceScheduler does. A success forgets the provider's history.
#[derive(Debug, Default)]
pub struct Backoff {
    // (channel, name) → (skip until, last delay). A std Mutex: never held across an await.
    state: Mutex<HashMap<(Channel, String), (Instant, Duration)>>,
}

impl Backoff {
    /// The first back-off.
    pub const FIRST: Duration = Duration::from_secs(30);
    /// The longest back-off.
    pub const MAX: Duration = Duration::from_secs(600);

    /// Until when the provider is skipped, if it is.
    fn skipped_until(&self, channel: Channel, name: &str) -> Option<Instant> {
        let state = self.state.lock().ok()?;
        let (until, _) = state.get(&(channel, name.to_string()))?;
        (*until > Instant::now()).then_some(*until)
    }

    /// Records an unavailable provider and returns how long it is now skipped.
    fn failed(&self, channel: Channel, name: &str) -> Duration {
        let Ok(mut state) = self.state.lock() else {
            return Duration::ZERO;
        };
        let key = (channel, name.to_string());
        let delay = match state.get(&key) {
            Some((_, last)) => (*last * 2).min(Self::MAX),
            None => Self::FIRST,
        };
        state.insert(key, (Instant::now() + delay, delay));
        delay
    }

    /// Forgets a provider that worked.
    fn succeeded(&self, channel: Channel, name: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.remove(&(channel, name.to_string()));
        }
    }
}

/// The configured providers of both channels, by name, with the default of each.
#[derive(Clone, Default)]
pub struct Providers {
    by_channel: BTreeMap<Channel, BTreeMap<String, Arc<dyn Provider>>>,
    defaults: BTreeMap<Channel, String>,
    backoff: Arc<Backoff>,
}

impl Providers {
    /// Adds a provider; the first of a channel, or one marked default, becomes the default.
    pub fn insert(&mut self, channel: Channel, provider: Arc<dyn Provider>, default: bool) {
        let name = provider.name().to_string();
        if default || !self.defaults.contains_key(&channel) {
            self.defaults.insert(channel, name.clone());
        }
        self.by_channel
            .entry(channel)
            .or_default()
            .insert(name, provider);
    }

    /// Whether a provider of that name exists for the channel.
    pub fn contains(&self, channel: Channel, name: &str) -> bool {
        self.by_channel
            .get(&channel)
            .is_some_and(|m| m.contains_key(name))
    }

    /// The provider of that name for the channel (for `tessera provider test`).
    pub fn get(&self, channel: Channel, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_channel.get(&channel)?.get(name).cloned()
    }

    /// Sends through `names` in order (or the channel's default when empty), moving on only
    /// when a provider is unavailable. A provider in back-off is skipped, unless it is the last
    /// one left: trying a doubtful provider beats failing without trying. A failure of
    /// tessera's own ([`DeliveryError::Local`]) moves on too, but puts no provider in back-off,
    /// and is what this returns when no provider delivered.
    pub async fn send(
        &self,
        names: &[String],
        message: &Message,
    ) -> Result<Receipt, DeliveryError> {
        let channel = message.channel;
        let default: Vec<String> = self.defaults.get(&channel).cloned().into_iter().collect();
        let names = if names.is_empty() { &default } else { names };
        let mut last = DeliveryError::NotConfigured {
            channel,
            name: None,
        };
        let mut local = None;
        for (i, name) in names.iter().enumerate() {
            let is_last = i + 1 == names.len();
            let Some(provider) = self.by_channel.get(&channel).and_then(|m| m.get(name)) else {
                last = DeliveryError::NotConfigured {
                    channel,
                    name: Some(name.clone()),
                };
                continue;
            };
            if !is_last && let Some(until) = self.backoff.skipped_until(channel, name) {
                let seconds = until.saturating_duration_since(Instant::now()).as_secs();
                tracing::info!(provider = %name, %channel, seconds, "provider skipped: unavailable recently");
                last = DeliveryError::Unavailable {
                    provider: name.clone(),
                    reason: format!("skipped for another {seconds}s after failing"),
                };
                continue;
            }
            match send_metered(provider.as_ref(), message).await {
                Ok(receipt) => {
                    self.backoff.succeeded(channel, name);
                    return Ok(receipt);
                }
                Err(error @ DeliveryError::Unavailable { .. }) => {
                    let delay = self.backoff.failed(channel, name);
                    tracing::warn!(provider = %name, %channel, %error, backoff_secs = delay.as_secs(), "provider unavailable");
                    last = error;
                }
                Err(DeliveryError::Local { provider, failure }) => {
                    // Not the provider's doing, so no back-off for it. The next provider may
                    // still work; if none does, the failure to report is this one.
                    tracing::warn!(provider = %name, %channel, resource = %failure.resource, error = %failure.chain(), "provider not tried: tessera's own failure");
                    local.get_or_insert(DeliveryError::Local { provider, failure });
                }
                Err(error) => return Err(error),
            }
        }
        Err(local.unwrap_or(last))
    }
}

/// Sends through one provider, recording attempts, failures and latency.
async fn send_metered(
    provider: &dyn Provider,
    message: &Message,
) -> Result<Receipt, DeliveryError> {
    let started = std::time::Instant::now();
    let name = provider.name();
    let channel = message.channel.as_str();
    crate::metrics::inc(
        "tessera_delivery_attempts_total",
        &[("provider", name), ("channel", channel)],
    );
    let result = provider.send(message).await;
    crate::metrics::observe(
        "tessera_delivery_seconds",
        &[("provider", name)],
        started.elapsed(),
    );
    if let Err(error) = &result {
        crate::metrics::inc(
            "tessera_delivery_failures_total",
            &[
                ("provider", name),
                ("channel", channel),
                ("kind", error.kind()),
            ],
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn peer_reply_hides_the_text_and_is_bounded() {
        let text = Secret::from("Your code 123456");
        assert_eq!(
            peer_reply("ERR: Your code 123456\r\nrejected", &text),
            "ERR: ***  rejected"
        );
        let long = "x".repeat(500);
        assert_eq!(peer_reply(&long, &text).chars().count(), 201);
    }

    /// A provider that is unavailable or works on demand, counting its calls.
    struct Scripted {
        name: String,
        up: bool,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Provider for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        async fn send(&self, _: &Message) -> Result<Receipt, DeliveryError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.up {
                Ok(Receipt {
                    provider: self.name.clone(),
                    detail: "ok".into(),
                })
            } else {
                Err(DeliveryError::Unavailable {
                    provider: self.name.clone(),
                    reason: "down".into(),
                })
            }
        }
    }

    fn scripted(name: &str, up: bool) -> Arc<Scripted> {
        Arc::new(Scripted {
            name: name.into(),
            up,
            calls: AtomicUsize::new(0),
        })
    }

    fn sms() -> Message {
        Message {
            channel: Channel::Sms,
            recipient: "+491701".into(),
            subject: None,
            text: Secret::from("123456"),
            serial: "LSSM0001".into(),
            user: "alice".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unavailable_provider_is_skipped_with_growing_backoff() {
        let (down, up) = (scripted("down", false), scripted("up", true));
        let mut providers = Providers::default();
        providers.insert(Channel::Sms, down.clone(), true);
        providers.insert(Channel::Sms, up.clone(), false);
        let names = vec!["down".to_string(), "up".to_string()];

        let receipt = providers.send(&names, &sms()).await.unwrap();
        assert_eq!(receipt.provider, "up");
        assert_eq!(down.calls.load(Ordering::SeqCst), 1);

        // Within 30 s the failed provider is not asked again.
        tokio::time::advance(Duration::from_secs(29)).await;
        providers.send(&names, &sms()).await.unwrap();
        assert_eq!(down.calls.load(Ordering::SeqCst), 1);

        // After 30 s it is tried again, fails again, and is now skipped for 60 s.
        tokio::time::advance(Duration::from_secs(2)).await;
        providers.send(&names, &sms()).await.unwrap();
        assert_eq!(down.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(59)).await;
        providers.send(&names, &sms()).await.unwrap();
        assert_eq!(down.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(2)).await;
        providers.send(&names, &sms()).await.unwrap();
        assert_eq!(down.calls.load(Ordering::SeqCst), 3);
        assert_eq!(up.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_provider_is_tried_even_in_backoff() {
        let down = scripted("down", false);
        let mut providers = Providers::default();
        providers.insert(Channel::Sms, down.clone(), true);
        for _ in 0..3 {
            let error = providers.send(&[], &sms()).await.unwrap_err();
            assert!(matches!(error, DeliveryError::Unavailable { .. }));
        }
        assert_eq!(down.calls.load(Ordering::SeqCst), 3);
    }

    /// A provider tessera cannot reach: no descriptor left (EMFILE).
    struct Starved;

    #[async_trait]
    impl Provider for Starved {
        fn name(&self) -> &str {
            "starved"
        }
        async fn send(&self, _: &Message) -> Result<Receipt, DeliveryError> {
            Err(DeliveryError::judged(
                "starved",
                std::io::Error::from_raw_os_error(24),
                |_| unreachable!("EMFILE is tessera's own"),
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_of_tesseras_own_moves_on_without_backoff_and_is_what_is_reported() {
        let (up, down) = (scripted("up", true), scripted("down", false));
        let mut providers = Providers::default();
        providers.insert(Channel::Sms, Arc::new(Starved), true);
        providers.insert(Channel::Sms, up.clone(), false);
        providers.insert(Channel::Sms, down.clone(), false);
        let starved_then_up = vec!["starved".to_string(), "up".to_string()];
        assert_eq!(
            providers
                .send(&starved_then_up, &sms())
                .await
                .unwrap()
                .provider,
            "up"
        );
        assert!(
            providers
                .backoff
                .skipped_until(Channel::Sms, "starved")
                .is_none(),
            "not the provider's failure: no back-off"
        );
        // With the other provider down, the failure reported is tessera's own.
        let starved_then_down = vec!["starved".to_string(), "down".to_string()];
        let error = providers
            .send(&starved_then_down, &sms())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "local");
        assert!(error.local_failure().is_some());
    }

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..7)
            .map(|_| backoff.failed(Channel::Sms, "gw").as_secs())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 600, 600]);
        backoff.succeeded(Channel::Sms, "gw");
        assert_eq!(backoff.failed(Channel::Sms, "gw").as_secs(), 30);
    }
}
