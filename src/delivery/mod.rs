//! Delivery: getting an OTP to the user by SMS or e-mail.
//!
//! [`Provider`] is the trait each provider class implements, one file per class (`file` today;
//! LinOTP's HTTP, SMTP, SMPP and device SMS providers and the SMTP e-mail provider next).
//! [`Providers`] holds the named providers of each channel and does failover: the next
//! provider is tried only when one is *unavailable* (connection error, timeout), never when a
//! gateway explicitly refused the message — as LinOTP does.

pub mod device_sms;
pub mod file;
mod linotp_values;
pub mod smpp_encoding;
pub mod smpp_sms;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::secret::Secret;

/// The two ways an OTP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// A text message to a phone.
    Sms,
    /// An e-mail.
    Email,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        })
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
    /// No provider is configured for the channel or by the policy's names.
    #[error("no {channel} provider configured{}", .name.as_deref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NotConfigured {
        /// The channel.
        channel: Channel,
        /// The name asked for, if any.
        name: Option<String>,
    },
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

/// The configured providers of both channels, by name, with the default of each.
#[derive(Clone, Default)]
pub struct Providers {
    by_channel: BTreeMap<Channel, BTreeMap<String, Arc<dyn Provider>>>,
    defaults: BTreeMap<Channel, String>,
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

    /// Sends through `names` in order (or the channel's default when empty), moving on only
    /// when a provider is unavailable.
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
        for name in names {
            let Some(provider) = self.by_channel.get(&channel).and_then(|m| m.get(name)) else {
                last = DeliveryError::NotConfigured {
                    channel,
                    name: Some(name.clone()),
                };
                continue;
            };
            match send_metered(provider.as_ref(), message).await {
                Ok(receipt) => return Ok(receipt),
                Err(error @ DeliveryError::Unavailable { .. }) => {
                    tracing::warn!(provider = %name, %channel, %error, "provider unavailable, trying the next");
                    last = error;
                }
                Err(error) => return Err(error),
            }
        }
        Err(last)
    }
}

/// Sends through one provider, recording attempts, failures and latency.
async fn send_metered(
    provider: &dyn Provider,
    message: &Message,
) -> Result<Receipt, DeliveryError> {
    let started = std::time::Instant::now();
    let name = provider.name();
    let channel = message.channel.to_string();
    crate::metrics::inc(
        "tessera_delivery_attempts_total",
        &[("provider", name), ("channel", &channel)],
    );
    let result = provider.send(message).await;
    crate::metrics::observe(
        "tessera_delivery_seconds",
        &[("provider", name)],
        started.elapsed(),
    );
    if let Err(error) = &result {
        let kind = match error {
            DeliveryError::Unavailable { .. } => "unavailable",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::NotConfigured { .. } => "not_configured",
        };
        crate::metrics::inc(
            "tessera_delivery_failures_total",
            &[("provider", name), ("channel", &channel), ("kind", kind)],
        );
    }
    result
}
