//! The provider classes tessera knows: one row per class in [`CLASSES`], each from its own
//! module. A row names the class (and LinOTP's other spellings of it), the channels it serves,
//! and how its keys are checked into [`ProviderSettings`](super::class::ProviderSettings), which
//! open the provider. Adding a class is one module and one row here; the row's type
//! ([`ProviderClass`]) lives in `class.rs`, below every class.

use super::Channel;
use super::class::ProviderClass;

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
