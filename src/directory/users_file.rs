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
//! Names are matched as LDAP and AD match them: after NFKC and trimming
//! ([`super::login_name::normalize`]) and ignoring case, so `Alice`, ` alice` and `ａlice` all
//! find `alice`, and the identity is always the name as written in the file. Two entries whose
//! names differ only in case (or compatibility form) are refused when the file is read.
//!
//! A name the file does not know still costs an argon2 verification (against a dummy hash made
//! at first use), so the time to answer does not tell who has an entry.
//!
//! The file is re-read when its modification time changes (checked at most once a second), so
//! edits take effect without a restart. A file that fails to parse on re-read is logged and the
//! previous contents stay in force.
//!
//! [`edit`] makes the changes `tessera user add|passwd|del` ask for. It edits the TOML document
//! in place (toml_edit), so the administrator's comments and layout survive, checks the result
//! like the server would, and replaces the file atomically (write a temporary file, rename), so
//! the server never reads half a file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use super::{Directory, DirectoryError, DirectorySettings, DirectoryType, UserInfo, login_name};
use crate::backend::{Problem, Resolve, from_table, spelt_as_named};
use crate::password_hash;
use crate::secret::Secret;

/// The registry's row: `type = "users_file"`.
pub static TYPE: DirectoryType = DirectoryType {
    name: "users_file",
    aliases: &[],
    check,
    spellings: spelt_as_named,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<std::sync::Arc<dyn DirectorySettings>, Vec<Problem>> {
    let mut config: UsersFileConfig = from_table(keys)?;
    config.path = resolve(&config.path);
    Ok(std::sync::Arc::new(config))
}

impl DirectorySettings for UsersFileConfig {
    fn open(&self, name: &str) -> Result<std::sync::Arc<dyn Directory>, String> {
        Ok(std::sync::Arc::new(UsersFile::open(name, self)?))
    }
}

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
                .map(|s| crate::source_location::line_col(text, s.start).0)
                .unwrap_or(0);
            format!("{}:{line}: {}", path.display(), e.message())
        })?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, user) in contents.users.iter().enumerate() {
            let key = match login_key(&user.name) {
                Ok(key) => key,
                Err(error) => {
                    return Err(format!("{}: user {:?}: {error}", path.display(), user.name));
                }
            };
            if !password_hash::is_well_formed(&user.password) {
                return Err(format!(
                    "{}: user {:?}: password is not an argon2 hash (make one with `tessera user hash`)",
                    path.display(),
                    user.name
                ));
            }
            if let Some(first) = seen.insert(key, i) {
                let first_name = contents.users.get(first).map_or("", |u| u.name.as_str());
                return Err(format!(
                    "{}: user {:?} appears twice (entries {} and {}{}); names are matched ignoring case",
                    path.display(),
                    user.name,
                    first + 1,
                    i + 1,
                    if first_name == user.name {
                        String::new()
                    } else {
                        format!(", {first_name:?}")
                    }
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
    /// What a miss is checked against, made at the first miss (see the module comment).
    dummy_hash: tokio::sync::OnceCell<String>,
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
            dummy_hash: tokio::sync::OnceCell::new(),
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
        let key = login_key(login).ok()?;
        self.loaded.lock().ok()?.users.get(&key).cloned()
    }
}

/// The index key of a name: normalised and case-folded.
fn login_key(name: &str) -> Result<String, login_name::LoginError> {
    login_name::normalize(name).map(|n| login_name::fold(&n))
}

/// Entries by [`login_key`]. `parse` has refused names without a key and duplicate keys.
fn index(contents: UsersFileContents) -> HashMap<String, UserEntry> {
    contents
        .users
        .into_iter()
        .filter_map(|u| Some((login_key(&u.name).ok()?, u)))
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
        id: entry.name.clone(),
        stable_id: None,
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
        password_hash::verify_on_hash_thread(password, &entry.password)
            .await
            .map_err(|e| DirectoryError::Unavailable {
                name: self.name.clone(),
                reason: e.to_string(),
            })
    }

    async fn find_users(&self, part: &str, limit: usize) -> Result<Vec<UserInfo>, DirectoryError> {
        self.refresh().await;
        let part = login_key(part).unwrap_or_default();
        let Ok(loaded) = self.loaded.lock() else {
            return Ok(vec![]);
        };
        let mut found: Vec<UserInfo> = loaded
            .users
            .iter()
            .filter(|(key, _)| key.contains(&part))
            .map(|(_, entry)| user_info(entry))
            .collect();
        found.sort_by(|a, b| a.login.cmp(&b.login));
        found.truncate(limit);
        Ok(found)
    }

    async fn check_password_of_unknown(&self, password: &Secret) {
        let dummy = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 16];
                getrandom::fill(&mut random).map_err(|e| e.to_string())?;
                password_hash::hash_on_hash_thread(&Secret::new(random.to_vec()))
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        match dummy {
            // The answer is "no" whatever the verification says (it cannot say yes).
            Ok(dummy) => {
                let _ = password_hash::verify_on_hash_thread(password, dummy).await;
            }
            Err(error) => {
                tracing::warn!(directory = %self.name, %error, "no dummy password hash")
            }
        }
    }
}

/// A change to a users file.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Add a user; refused if the name exists.
    Add(UserEntry),
    /// Replace a user's password hash.
    SetPassword {
        /// The login.
        name: String,
        /// The new argon2 PHC string.
        hash: String,
    },
    /// Remove a user.
    Delete {
        /// The login.
        name: String,
    },
}

/// Why a users file could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file (before or after the edit) is not a valid users file.
    #[error("{0}")]
    Invalid(String),
    /// `add` of a name that exists.
    #[error("user {0:?} exists already")]
    Exists(String),
    /// `passwd`/`del` of a name that does not exist.
    #[error("no user {0:?} in the file")]
    NotFound(String),
}

/// Applies `edit` to the users file at `path` (created, mode 0600, by the first `Add`).
///
/// Two editors at once would each read the old file and the second rename would drop the
/// first one's change, so edits hold an exclusive lock on a sidecar `.NAME.lock` file (the
/// users file itself is replaced by rename, so a lock on it would guard the old inode).
pub fn edit(path: &Path, edit: Edit) -> Result<(), EditError> {
    let io = |source| EditError::Io {
        path: path.display().to_string(),
        source,
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(sidecar(path, "lock"))
        .map_err(io)?;
    lock.lock().map_err(io)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && matches!(edit, Edit::Add(_)) => {
            String::new()
        }
        Err(e) => return Err(io(e)),
    };
    // Refuse to edit a file the server could not read: the edit would hide the problem.
    let current = UsersFileContents::parse(path, &text).map_err(EditError::Invalid)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| EditError::Invalid(format!("{}: {e}", path.display())))?;
    // Matched as lookups match (ignoring case), so `user add Alice` next to `alice` is refused
    // and `user passwd ALICE` changes `alice`.
    let position = |name: &str| {
        let key = login_key(name).ok()?;
        current
            .users
            .iter()
            .position(|u| login_key(&u.name).ok().as_ref() == Some(&key))
    };

    match edit {
        Edit::Add(user) => {
            if position(&user.name).is_some() {
                return Err(EditError::Exists(user.name));
            }
            let mut table = user_table(&user);
            match doc.get_mut("user") {
                Some(item) => item
                    .as_array_of_tables_mut()
                    .ok_or_else(|| {
                        EditError::Invalid(format!(
                            "{}: `user` is not an array of tables",
                            path.display()
                        ))
                    })?
                    .push(table),
                None => {
                    // In a file without users, toml_edit keeps the comments as the document's
                    // trailing text; move them above the first user so they stay on top.
                    let comments = doc.trailing().as_str().unwrap_or("").to_string();
                    doc.set_trailing("");
                    table.decor_mut().set_prefix(comments);
                    let mut users = toml_edit::ArrayOfTables::new();
                    users.push(table);
                    doc.insert("user", toml_edit::Item::ArrayOfTables(users));
                }
            }
        }
        Edit::SetPassword { name, hash } => {
            let index = position(&name).ok_or_else(|| EditError::NotFound(name.clone()))?;
            let table = users_mut(&mut doc)
                .and_then(|users| users.get_mut(index))
                .ok_or_else(|| EditError::NotFound(name.clone()))?;
            table.insert("password", toml_edit::value(hash));
        }
        Edit::Delete { name } => {
            let index = position(&name).ok_or_else(|| EditError::NotFound(name.clone()))?;
            let users = users_mut(&mut doc).ok_or_else(|| EditError::NotFound(name.clone()))?;
            users.remove(index);
        }
    }

    let new_text = doc.to_string();
    UsersFileContents::parse(path, &new_text).map_err(EditError::Invalid)?;
    replace_file(path, new_text.as_bytes()).map_err(io)
}

fn users_mut(doc: &mut toml_edit::DocumentMut) -> Option<&mut toml_edit::ArrayOfTables> {
    doc.get_mut("user")?.as_array_of_tables_mut()
}

fn user_table(user: &UserEntry) -> toml_edit::Table {
    let mut table = toml_edit::Table::new();
    table.insert("name", toml_edit::value(user.name.as_str()));
    table.insert("password", toml_edit::value(user.password.as_str()));
    for (key, value) in [
        ("mobile", &user.mobile),
        ("email", &user.email),
        ("phone", &user.phone),
        ("givenname", &user.givenname),
        ("surname", &user.surname),
    ] {
        if let Some(v) = value {
            table.insert(key, toml_edit::value(v.as_str()));
        }
    }
    if !user.groups.is_empty() {
        let groups: toml_edit::Array = user.groups.iter().map(String::as_str).collect();
        table.insert("groups", toml_edit::value(groups));
    }
    table
}

/// `.NAME.SUFFIX` next to `path`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.toml".into());
    path.with_file_name(format!(".{file_name}.{suffix}"))
}

/// Writes `bytes` next to `path` and renames over it, keeping the old file's permissions
/// (0600 for a new file: it holds password hashes).
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let temporary = sidecar(path, &format!("{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, password: &str) -> UserEntry {
        UserEntry {
            name: name.into(),
            password: password_hash::hash(&Secret::from(password)).unwrap(),
            mobile: Some("+491701".into()),
            email: None,
            phone: None,
            givenname: None,
            surname: None,
            groups: vec!["vpn".into()],
        }
    }

    #[test]
    fn add_passwd_del_keep_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "# our users\n\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        edit(&path, Edit::Add(entry("erin", "one"))).unwrap();
        edit(&path, Edit::Add(entry("frank", "two"))).unwrap();
        assert!(matches!(
            edit(&path, Edit::Add(entry("erin", "x"))),
            Err(EditError::Exists(_))
        ));
        let hash = password_hash::hash(&Secret::from("three")).unwrap();
        edit(
            &path,
            Edit::SetPassword {
                name: "erin".into(),
                hash,
            },
        )
        .unwrap();
        edit(
            &path,
            Edit::Delete {
                name: "frank".into(),
            },
        )
        .unwrap();
        assert!(matches!(
            edit(
                &path,
                Edit::Delete {
                    name: "frank".into()
                }
            ),
            Err(EditError::NotFound(_))
        ));

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# our users"), "{text}");
        let contents = UsersFileContents::parse(&path, &text).unwrap();
        assert_eq!(contents.users.len(), 1);
        let erin = &contents.users[0];
        assert_eq!(
            (erin.name.as_str(), erin.groups.as_slice()),
            ("erin", &["vpn".to_string()][..])
        );
        assert!(password_hash::verify(&Secret::from("three"), &erin.password).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o640, "an edit keeps the file's mode");

        // A new file holds password hashes: only its owner may read it.
        let new = dir.path().join("new.toml");
        edit(&new, Edit::Add(entry("gina", "four"))).unwrap();
        assert_eq!(mode(&new), 0o600);
    }

    #[test]
    fn concurrent_adds_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let hash = password_hash::hash(&Secret::from("pw")).unwrap();
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (path, hash) = (&path, &hash);
                scope.spawn(move || {
                    let user = entry_with_hash(&format!("user{i}"), hash);
                    edit(path, Edit::Add(user)).unwrap();
                });
            }
        });
        let contents = UsersFileContents::load(&path).unwrap();
        assert_eq!(contents.users.len(), 8);
    }

    fn entry_with_hash(name: &str, hash: &str) -> UserEntry {
        UserEntry {
            name: name.into(),
            password: hash.into(),
            mobile: None,
            email: None,
            phone: None,
            givenname: None,
            surname: None,
            groups: vec![],
        }
    }

    #[test]
    fn a_broken_file_is_not_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[[user]]\nname = \"x\"\npassword = \"plain\"\n").unwrap();
        let err = edit(&path, Edit::Add(entry("erin", "one"))).unwrap_err();
        assert!(err.to_string().contains("not an argon2 hash"), "{err}");
    }
}
