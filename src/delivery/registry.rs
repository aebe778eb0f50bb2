//! The provider classes tessera knows: one row per class in [`CLASSES`], each from its own
//! module. A row names the class (and LinOTP's other spellings of it), the channels it serves,
//! and how its keys are checked into [`ProviderSettings`], which open the provider. Adding a
//! class is one module and one row here.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Channel, Provider};
use crate::backend::{Problem, Resolve};

/// A provider's keys, checked: what it needs to open, and what its peer must not echo.
pub trait ProviderSettings: Any + fmt::Debug + Send + Sync {
    /// The configured values the provider's peer must not get into a log, an error or the
    /// audit (see `delivery::redact`).
    fn secret_values(&self) -> Vec<String>;

    /// Builds the provider (reads CA files, sets up clients); nothing is sent yet.
    fn open(&self, name: &str) -> Result<Arc<dyn Provider>, String>;
}

impl dyn ProviderSettings {
    /// The concrete settings, for tests and tools that look inside.
    pub fn downcast_ref<T: ProviderSettings>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }
}

/// Checks a class's keys into its settings.
pub type CheckProvider =
    fn(&toml::Table, Resolve<'_>) -> Result<Arc<dyn ProviderSettings>, Vec<Problem>>;

/// One provider class.
pub struct ProviderClass {
    /// The name errors list (LinOTP's class name).
    pub name: &'static str,
    /// Other names of the same class.
    pub aliases: &'static [&'static str],
    /// The channels it delivers on.
    pub channels: &'static [Channel],
    /// Its keys, checked.
    pub check: CheckProvider,
}

/// Every provider class, in the order errors list them.
pub static CLASSES: &[&ProviderClass] = &[
    &super::file::CLASS,
    &super::http_sms::CLASS,
    &super::smtp_sms::CLASS,
    &super::smpp_sms::CLASS,
    &super::device_sms::CLASS,
    &super::smtp_email::CLASS,
];

/// The class a `[provider.CHANNEL.NAME]` names. LinOTP's dotted class paths
/// (`smsprovider.HttpSMSProvider.HttpSMSProvider`, `linotp.lib.emailprovider.SMTPEmailProvider`)
/// name the same class as their last part.
pub fn find(channel: Channel, class: &str) -> Result<&'static ProviderClass, String> {
    let short = class.rsplit('.').next().unwrap_or(class);
    let Some(found) = CLASSES
        .iter()
        .find(|c| c.name == short || c.aliases.contains(&short))
    else {
        let known: Vec<&str> = CLASSES
            .iter()
            .filter(|c| c.channels.contains(&channel))
            .map(|c| c.name)
            .collect();
        return Err(format!(
            "unknown provider class {class:?} (known: {})",
            known.join(", ")
        ));
    };
    if found.channels.contains(&channel) {
        return Ok(found);
    }
    let (noun, table) = match channel {
        Channel::Sms => ("an e-mail", "email"),
        Channel::Email => ("an SMS", "sms"),
    };
    Err(format!(
        "{class:?} is {noun} provider class: define it as [provider.{table}.NAME]"
    ))
}
