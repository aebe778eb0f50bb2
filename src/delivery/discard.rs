//! A toy class, `DiscardProvider`: accepts every message and sends nothing. It exists to show
//! what adding a class takes (this module and one registry row).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::registry::{ProviderClass, ProviderSettings};
use super::{Channel, DeliveryError, Message, Provider, Receipt};
use crate::backend::{Problem, Resolve, from_table};

/// The registry's row: `class = "DiscardProvider"`, on either channel.
pub static CLASS: ProviderClass = ProviderClass {
    name: "DiscardProvider",
    aliases: &[],
    channels: &[Channel::Sms, Channel::Email],
    check,
};

/// `[provider.*.NAME]` with `class = "DiscardProvider"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardConfig {
    /// What the receipt says.
    #[serde(default)]
    pub reply: String,
}

fn check(keys: &toml::Table, _: Resolve<'_>) -> Result<Arc<dyn ProviderSettings>, Vec<Problem>> {
    let config: DiscardConfig = from_table(keys)?;
    if config.reply.len() > 64 {
        return Err(Problem::new("reply", "at most 64 characters").into());
    }
    Ok(Arc::new(config))
}

impl ProviderSettings for DiscardConfig {
    fn secret_values(&self) -> Vec<String> {
        vec![]
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Provider>, String> {
        Ok(Arc::new(Discard {
            name: name.to_string(),
            reply: self.reply.clone(),
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct Discard {
    name: String,
    reply: String,
}

#[async_trait]
impl Provider for Discard {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, _: &Message) -> Result<Receipt, DeliveryError> {
        Ok(Receipt {
            provider: self.name.clone(),
            detail: self.reply.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn a_toy_class_loads_and_its_problems_are_located() {
        let text = std::fs::read_to_string("conf/tessera.toml").unwrap()
            + "\n[provider.email.void]\nclass = \"DiscardProvider\"\nreply = \"gone\"\n";
        let c = Config::parse(Path::new("/etc/tessera/tessera.toml"), &text).unwrap();
        assert!(c.open_providers().is_ok());
        let long = text.replace("\"gone\"", &format!("{:?}", "x".repeat(65)));
        let e = Config::parse(Path::new("t.toml"), &long)
            .unwrap_err()
            .to_string();
        assert!(e.contains("provider.email.void.reply: at most 64"), "{e}");
    }
}
