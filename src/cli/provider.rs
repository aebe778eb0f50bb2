//! `tessera provider test NAME --to RECIPIENT`: sends one test message through a configured
//! provider and prints what the peer answered.

use clap::{Subcommand, ValueEnum};
use tessera::delivery::{Channel, Message};
use tessera::secret::Secret;

use super::{Failure, load};

/// Provider commands.
#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Send "tessera test message" through one configured provider and print what the peer
    /// answered (exit 1 when the provider failed).
    Test {
        /// The provider's name, as in `[provider.sms.NAME]` or `[provider.email.NAME]`.
        name: String,
        /// Phone number or e-mail address to send to.
        #[arg(long)]
        to: String,
        /// Which channel's provider, when the name exists for both (default: the one it
        /// exists for, else sms).
        #[arg(long, value_enum)]
        channel: Option<ChannelArg>,
    },
}

/// `--channel`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    /// An SMS provider.
    Sms,
    /// An e-mail provider.
    Email,
}

/// Runs a provider command.
pub fn run(path: &std::path::Path, command: ProviderCommand) -> Result<(), Failure> {
    let ProviderCommand::Test { name, to, channel } = command;
    let providers = load(path)?.providers;
    let channel = match channel {
        Some(ChannelArg::Sms) => Channel::Sms,
        Some(ChannelArg::Email) => Channel::Email,
        None if providers.get(Channel::Sms, &name).is_none()
            && providers.get(Channel::Email, &name).is_some() =>
        {
            Channel::Email
        }
        None => Channel::Sms,
    };
    let Some(provider) = providers.get(channel, &name) else {
        return Err(Failure::No(format!(
            "tessera: no [provider.{channel}.{name}] is configured"
        )));
    };
    let message = Message {
        channel,
        recipient: to,
        subject: None,
        text: Secret::from("tessera test message"),
        serial: "TEST".into(),
        user: String::new(),
    };
    match super::runtime()?.block_on(provider.send(&message)) {
        Ok(receipt) => {
            out!(
                "{channel} provider {name}: sent; the peer said: {}",
                receipt.detail
            );
            Ok(())
        }
        Err(error) => Err(Failure::No(format!("tessera: {error}"))),
    }
}
