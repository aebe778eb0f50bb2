//! What a provider class is, for the registry (`registry.rs`) and every class module alike:
//! the row type [`ProviderClass`] and the [`ProviderSettings`] trait its checked keys implement.
//! Below both, so a class module never imports the table that lists it.

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
