//! The contract every directory type and provider class meets when the config is loaded: its
//! keys, read from its table by [`from_table`], are checked into its settings or into a list of
//! [`Problem`]s, each naming the key it is about. The config stage puts each problem at its
//! key's line; nothing here knows about files or lines.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::source_location::KeyIndex;

/// One thing wrong with a backend's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key as the backend names it (`URL`, `attributes.mobile`); empty for the table as a
    /// whole (a missing key, an unknown class).
    pub key: String,
    /// What is wrong. Never a secret's value.
    pub message: String,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A problem with the table as a whole.
    pub fn table(message: impl Into<String>) -> Self {
        Problem::new("", message)
    }
}

/// `key: message`, as a provider that is opened directly reports it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl From<Problem> for Vec<Problem> {
    fn from(problem: Problem) -> Self {
        vec![problem]
    }
}

impl From<Problem> for String {
    fn from(problem: Problem) -> Self {
        problem.to_string()
    }
}

/// Resolves a path from the config against the config file's directory.
pub type Resolve<'a> = &'a dyn Fn(&Path) -> PathBuf;

/// Reads a backend's keys from its table. A serde error names the key it is about (found from
/// the spans of the table written out as TOML), or none when it is about the table (a missing
/// key).
pub fn from_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T, Vec<Problem>> {
    let text = toml::to_string(table).map_err(|e| Problem::table(e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        let key = e
            .span()
            .and_then(|span| KeyIndex::new(&text).name_at(&span))
            .unwrap_or_default();
        vec![Problem::new(key, e.message().trim())]
    })
}

/// How a key may be spelt in a backend's table, as dotted paths inside it: the key itself.
/// Backends that accept LinOTP's spellings too give their own list.
pub fn spelt_as_named(key: &str) -> Vec<String> {
    vec![key.to_string()]
}
