//! The local users file: a TOML list of users with argon2id password hashes and attributes.
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! mobile = "+4917012345678"
//! email = "alice@example.org"
//! groups = ["vpn"]
//! ```
//!
//! The file is re-read when its modification time changes (checked at most once a second), so
//! edits take effect without a restart. A file that fails to parse on re-read is logged and the
//! previous contents stay in force.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use super::{Directory, DirectoryError, UserInfo};
use crate::password_hash;
use crate::secret::Secret;

/// `[directory.NAME]` with `type = "users_file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFileConfig {
    /// Path of the users file (relative paths are relative to the config file).
    pub path: PathBuf,
}

/// One `[[user]]` entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Login name.
    pub name: String,
    /// Argon2 PHC hash of the password.
    pub password: String,
    /// Mobile number for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Landline or other phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub givenname: Option<String>,
    /// Surname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    /// Groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFileContents {
    /// The users.
    #[serde(default, rename = "user")]
    pub users: Vec<UserEntry>,
}

impl UsersFileContents {
    /// Parses and checks a users file: hashes well-formed, names unique. Errors carry the
    /// file name and line.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let contents: UsersFileContents = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| crate::config::line_col(text, s.start).0)
                .unwrap_or(0);
            format!("{}:{line}: {}", path.display(), e.message())
        })?;
        let mut seen = HashMap::new();
        for (i, user) in contents.users.iter().enumerate() {
            if !password_hash::is_well_formed(&user.password) {
                return Err(format!(
                    "{}: user {:?}: password is not an argon2 hash (make one with `tessera user hash`)",
                    path.display(),
                    user.name
                ));
            }
            if let Some(first) = seen.insert(user.name.clone(), i) {
                return Err(format!(
                    "{}: user {:?} appears twice (entries {} and {})",
                    path.display(),
                    user.name,
                    first + 1,
                    i + 1
                ));
            }
        }
        Ok(contents)
    }

    /// Reads and parses a users file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(path, &text)
    }
}

struct Loaded {
    modified: Option<SystemTime>,
    checked: Instant,
    users: HashMap<String, UserEntry>,
}

/// A users file as a [`Directory`].
pub struct UsersFile {
    name: String,
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl UsersFile {
    /// Loads the file now; an unreadable or invalid file is a startup error.
    pub fn open(name: &str, config: &UsersFileConfig) -> Result<Self, String> {
        let modified = std::fs::metadata(&config.path)
            .and_then(|m| m.modified())
            .ok();
        let contents = UsersFileContents::load(&config.path)?;
        Ok(UsersFile {
            name: name.to_string(),
            path: config.path.clone(),
            loaded: Mutex::new(Loaded {
                modified,
                checked: Instant::now(),
                users: index(contents),
            }),
        })
    }

    /// Re-reads the file if it changed since the last look (at most one look a second).
    async fn refresh(&self) {
        let due = {
            let Ok(loaded) = self.loaded.lock() else {
                return;
            };
            loaded.checked.elapsed() >= Duration::from_secs(1)
        };
        if !due {
            return;
        }
        let modified = tokio::fs::metadata(&self.path)
            .await
            .and_then(|m| m.modified())
            .ok();
        let changed = {
            let Ok(mut loaded) = self.loaded.lock() else {
                return;
            };
            loaded.checked = Instant::now();
            modified != loaded.modified
        };
        if !changed {
            return;
        }
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || UsersFileContents::load(&path)).await;
        match result {
            Ok(Ok(contents)) => {
                if let Ok(mut loaded) = self.loaded.lock() {
                    loaded.users = index(contents);
                    loaded.modified = modified;
                }
                tracing::info!(directory = %self.name, path = %self.path.display(), "users file reloaded");
            }
            Ok(Err(error)) => {
                if let Ok(mut loaded) = self.loaded.lock() {
                    loaded.modified = modified; // do not retry until it changes again
                }
                tracing::error!(directory = %self.name, %error, "users file not reloaded, keeping the previous one");
            }
            Err(error) => {
                tracing::error!(directory = %self.name, %error, "users file reload task failed")
            }
        }
    }

    fn entry(&self, login: &str) -> Option<UserEntry> {
        self.loaded.lock().ok()?.users.get(login).cloned()
    }
}

fn index(contents: UsersFileContents) -> HashMap<String, UserEntry> {
    contents
        .users
        .into_iter()
        .map(|u| (u.name.clone(), u))
        .collect()
}

fn user_info(entry: &UserEntry) -> UserInfo {
    let mut attributes = BTreeMap::new();
    for (key, value) in [
        ("phone", &entry.phone),
        ("givenname", &entry.givenname),
        ("surname", &entry.surname),
    ] {
        if let Some(v) = value {
            attributes.insert(key.to_string(), v.clone());
        }
    }
    UserInfo {
        login: entry.name.clone(),
        mobile: entry.mobile.clone().filter(|s| !s.is_empty()),
        email: entry.email.clone().filter(|s| !s.is_empty()),
        groups: entry.groups.clone(),
        attributes,
    }
}

#[async_trait]
impl Directory for UsersFile {
    fn name(&self) -> &str {
        &self.name
    }

    async fn lookup(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError> {
        self.refresh().await;
        Ok(self.entry(login).as_ref().map(user_info))
    }

    async fn check_password(
        &self,
        user: &UserInfo,
        password: &Secret,
    ) -> Result<bool, DirectoryError> {
        if password.is_empty() {
            return Ok(false);
        }
        let Some(entry) = self.entry(&user.login) else {
            return Ok(false);
        };
        password_hash::verify_blocking_pool(password, &entry.password)
            .await
            .map_err(|e| DirectoryError::Unavailable {
                name: self.name.clone(),
                reason: e.to_string(),
            })
    }
}
