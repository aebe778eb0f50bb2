//! The directory types tessera knows: one row per type in [`TYPES`], each from its own module.
//! A row names the type (and LinOTP's other names for it), how its keys are checked into
//! [`DirectorySettings`], which open the directory, and how its keys may be spelt (for pointing
//! at a problem's line). Adding a type is one module and one row here.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::Directory;
use crate::backend::{Problem, Resolve};

/// A directory's keys, checked.
pub trait DirectorySettings: Any + fmt::Debug + Send + Sync {
    /// Opens the directory (reads the users file, sets up LDAP connections).
    fn open(&self, name: &str) -> Result<Arc<dyn Directory>, String>;
}

impl dyn DirectorySettings {
    /// The concrete settings, for tests and tools that look inside.
    pub fn downcast_ref<T: DirectorySettings>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }
}

/// Checks a type's keys into its settings.
pub type CheckDirectory =
    fn(&toml::Table, Resolve<'_>) -> Result<Arc<dyn DirectorySettings>, Vec<Problem>>;

/// One directory type.
pub struct DirectoryType {
    /// The `type` value errors list.
    pub name: &'static str,
    /// Other names of the same type.
    pub aliases: &'static [&'static str],
    /// Its keys, checked.
    pub check: CheckDirectory,
    /// How a problem's key may be spelt in the table, as dotted paths, most precise first.
    pub spellings: fn(&str) -> Vec<String>,
}

/// Every directory type, in the order errors list them.
pub static TYPES: &[&DirectoryType] = &[&super::users_file::TYPE, &super::ldap::TYPE];

/// The type a `[directory.NAME]` names.
pub fn find(kind: &str) -> Result<&'static DirectoryType, String> {
    TYPES
        .iter()
        .find(|t| t.name == kind || t.aliases.contains(&kind))
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
            format!(
                "unknown directory type {kind:?} (known: {})",
                known.join(", ")
            )
        })
}
