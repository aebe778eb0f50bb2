//! Directories: where users, their passwords and their attributes (mobile, e-mail, groups) live.
//!
//! [`Directory`] is the one trait the engine sees. Each implementation has its own file (or
//! folder) and owns its config struct: [`users_file`] (a local TOML file) and [`ldap`] (OpenLDAP,
//! Active Directory); each one's `TYPE` is its row in [`registry::TYPES`], which the config
//! looks `type` names up in. A [`Realm`] is an ordered list of directories; the first one that
//! knows a user answers for that user.
//!
//! A directory that cannot answer returns [`DirectoryError::Unavailable`]; the realm does not
//! fall through to the next directory then, because the user might live in the one that is down
//! and a namesake in the next one must not log in in their place.

pub mod ldap;
pub mod login_name;
pub mod registry;
pub mod users_file;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::{Problem, Resolve};
use crate::secret::Secret;

/// What a directory knows about a user. Attribute names follow LinOTP's USERINFO keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The login name as the directory spells it in the entry found: the user's identity.
    /// Tokens, challenges, limits, policies and the audit are keyed on it, never on the
    /// spelling the user typed.
    pub login: String,
    /// The directory's own id for the user (LinOTP's "uid"): the entry's DN for LDAP, the
    /// login for the users file. Password checks use it, so they need no second search.
    pub id: String,
    /// The entry's stable id (`entryUUID`, AD `objectGUID`), when the directory has one: kept
    /// on autoenrolled tokens, so an account deleted and created again under the same name
    /// does not inherit the old account's tokens.
    pub stable_id: Option<String>,
    /// The mobile number, for SMS tokens.
    pub mobile: Option<String>,
    /// The e-mail address, for e-mail tokens.
    pub email: Option<String>,
    /// Group names (for reply attributes and policies).
    pub groups: Vec<String>,
    /// Any further mapped attributes (givenname, surname, phone …).
    pub attributes: BTreeMap<String, String>,
}

/// Why a directory could not answer. "Wrong password" is not an error: it is `Ok(false)`.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The directory could not be reached or read. The text starts with "directory
    /// unavailable" so operators can grep the log and the audit for it.
    #[error("directory unavailable: {name}: {reason}")]
    Unavailable {
        /// The directory's configured name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The same login matched more than one entry; refuse rather than guess.
    #[error("directory {name}: login {login:?} is ambiguous ({count} entries)")]
    Ambiguous {
        /// The directory's configured name.
        name: String,
        /// The login searched for.
        login: String,
        /// How many entries matched.
        count: usize,
    },
}

/// A source of users.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The configured name, for logs and audit.
    fn name(&self) -> &str;

    /// Looks a user up. `Ok(None)`: this directory does not know the login.
    async fn lookup(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError>;

    /// Checks the user's password. An empty password is always refused.
    async fn check_password(
        &self,
        user: &UserInfo,
        password: &Secret,
    ) -> Result<bool, DirectoryError>;

    /// Does the work a password check of a known user would do, for a name this directory
    /// does not know, so the answer's timing does not tell who exists. The answer is always
    /// "no". The default does nothing: a directory whose misses cost what its checks cost
    /// (LDAP: a search either way) needs nothing more.
    async fn check_password_of_unknown(&self, _password: &Secret) {}

    /// Users whose login contains `part` (ignoring case), at most `limit` of them, for the
    /// helpdesk's search (`admin::users`). The default finds nobody: a directory that cannot
    /// list its users is still a directory.
    async fn find_users(
        &self,
        _part: &str,
        _limit: usize,
    ) -> Result<Vec<UserInfo>, DirectoryError> {
        Ok(vec![])
    }
}

/// Wraps a directory to record latency and errors in the metrics registry.
pub struct Metered(pub Arc<dyn Directory>);

impl Metered {
    fn record<T>(
        &self,
        operation: &'static str,
        started: std::time::Instant,
        result: &Result<T, DirectoryError>,
    ) {
        let name = self.0.name();
        crate::metrics::observe(
            "tessera_directory_seconds",
            &[("directory", name), ("operation", operation)],
            started.elapsed(),
        );
        if result.is_err() {
            crate::metrics::inc("tessera_directory_errors_total", &[("directory", name)]);
        }
    }
}

#[async_trait]
impl Directory for Metered {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn lookup(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError> {
        let started = std::time::Instant::now();
        let result = self.0.lookup(login).await;
        self.record("lookup", started, &result);
        result
    }

    async fn check_password(
        &self,
        user: &UserInfo,
        password: &Secret,
    ) -> Result<bool, DirectoryError> {
        let started = std::time::Instant::now();
        let result = self.0.check_password(user, password).await;
        self.record("password", started, &result);
        result
    }

    async fn check_password_of_unknown(&self, password: &Secret) {
        self.0.check_password_of_unknown(password).await
    }

    async fn find_users(&self, part: &str, limit: usize) -> Result<Vec<UserInfo>, DirectoryError> {
        let started = std::time::Instant::now();
        let result = self.0.find_users(part, limit).await;
        self.record("search", started, &result);
        result
    }
}

/// A realm: a name and the directories that serve it, in order.
#[derive(Clone)]
pub struct Realm {
    /// The realm name (lower case).
    pub name: String,
    /// Directories in lookup order.
    pub directories: Vec<Arc<dyn Directory>>,
}

impl Realm {
    /// Finds the user in the first directory that knows them, returning that directory too.
    pub async fn lookup(
        &self,
        login: &str,
    ) -> Result<Option<(UserInfo, Arc<dyn Directory>)>, DirectoryError> {
        for directory in &self.directories {
            if let Some(user) = directory.lookup(login).await? {
                return Ok(Some((user, directory.clone())));
            }
        }
        Ok(None)
    }

    /// For a name no directory of the realm knows: the work of a password check, answered
    /// "no" (see [`Directory::check_password_of_unknown`]). Done by the last directory, the
    /// one whose miss ended the lookup.
    pub async fn check_password_of_unknown(&self, password: &Secret) {
        if let Some(directory) = self.directories.last() {
            directory.check_password_of_unknown(password).await;
        }
    }
}

/// All realms, the default one, and how user names are split.
#[derive(Clone)]
pub struct Realms {
    realms: Vec<Realm>,
    default: usize,
    split_at_sign: bool,
}

impl Realms {
    /// Builds the realm table. `default` indexes `realms`.
    pub fn new(realms: Vec<Realm>, default: usize, split_at_sign: bool) -> Self {
        Realms {
            realms,
            default,
            split_at_sign,
        }
    }

    /// Splits `user@realm` (LinOTP `splitAtSign`, on by default) and finds the realm. A name
    /// whose suffix is no known realm stays whole and goes to the default realm, so logins
    /// like `first.last@example.com` keep working.
    pub fn resolve<'a>(&'a self, user_name: &str) -> (String, &'a Realm) {
        if self.split_at_sign
            && let Some((login, realm)) = user_name.rsplit_once('@')
            && let Some(found) = self
                .realms
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(realm))
        {
            return (login.to_string(), found);
        }
        let realm = self
            .realms
            .get(self.default)
            .or_else(|| self.realms.first());
        match realm {
            Some(realm) => (user_name.to_string(), realm),
            // `Config` refuses to start without a realm, so this is unreachable in practice.
            None => (user_name.to_string(), &EMPTY_REALM),
        }
    }

    /// Every realm, in the configured order.
    pub fn all(&self) -> &[Realm] {
        &self.realms
    }

    /// A realm by name.
    pub fn get(&self, name: &str) -> Option<&Realm> {
        self.realms
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// Whether at least one directory of any realm answers (a lookup of a name no directory
    /// should know; "not found" is an answer).
    pub async fn any_answers(&self) -> bool {
        for realm in &self.realms {
            for directory in &realm.directories {
                if directory.lookup("tessera-health-check").await.is_ok() {
                    return true;
                }
            }
        }
        false
    }
}

static EMPTY_REALM: Realm = Realm {
    name: String::new(),
    directories: Vec::new(),
};

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory that knows a fixed list of logins, or is down.
    struct Fixed {
        name: &'static str,
        logins: &'static [&'static str],
        down: bool,
    }

    #[async_trait]
    impl Directory for Fixed {
        fn name(&self) -> &str {
            self.name
        }

        async fn lookup(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError> {
            if self.down {
                return Err(DirectoryError::Unavailable {
                    name: self.name.into(),
                    reason: "connection refused".into(),
                });
            }
            Ok(self.logins.contains(&login).then(|| UserInfo {
                login: login.into(),
                id: format!("{}:{login}", self.name),
                ..UserInfo::default()
            }))
        }

        async fn check_password(&self, _: &UserInfo, _: &Secret) -> Result<bool, DirectoryError> {
            Ok(false)
        }
    }

    fn realm(name: &str, directories: Vec<Fixed>) -> Realm {
        Realm {
            name: name.into(),
            directories: directories
                .into_iter()
                .map(|d| Arc::new(d) as Arc<dyn Directory>)
                .collect(),
        }
    }

    fn realms(split_at_sign: bool) -> Realms {
        let corp = realm("corp", vec![]);
        let local = realm("local", vec![]);
        Realms::new(vec![corp, local], 1, split_at_sign)
    }

    #[test]
    fn user_at_realm_is_split_only_for_known_realms() {
        let r = realms(true);
        let (login, realm) = r.resolve("alice@CORP");
        assert_eq!((login.as_str(), realm.name.as_str()), ("alice", "corp"));
        let (login, realm) = r.resolve("first.last@example.com");
        assert_eq!(
            (login.as_str(), realm.name.as_str()),
            ("first.last@example.com", "local"),
            "an unknown suffix stays part of the login, in the default realm"
        );
        let unsplit = realms(false);
        let (login, realm) = unsplit.resolve("alice@corp");
        assert_eq!(
            (login.as_str(), realm.name.as_str()),
            ("alice@corp", "local")
        );
    }

    #[tokio::test]
    async fn the_first_directory_that_knows_the_user_wins() {
        let r = realm(
            "corp",
            vec![
                Fixed {
                    name: "ldap",
                    logins: &["alice"],
                    down: false,
                },
                Fixed {
                    name: "file",
                    logins: &["alice", "bob"],
                    down: false,
                },
            ],
        );
        let (alice, from) = r.lookup("alice").await.unwrap().unwrap();
        assert_eq!((alice.id.as_str(), from.name()), ("ldap:alice", "ldap"));
        let (bob, _) = r.lookup("bob").await.unwrap().unwrap();
        assert_eq!(bob.id, "file:bob");
        assert!(r.lookup("carol").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_directory_that_is_down_does_not_fall_through() {
        let r = realm(
            "corp",
            vec![
                Fixed {
                    name: "ldap",
                    logins: &[],
                    down: true,
                },
                Fixed {
                    name: "file",
                    logins: &["alice"],
                    down: false,
                },
            ],
        );
        let Err(error) = r.lookup("alice").await else {
            panic!("a down directory must not be skipped");
        };
        assert!(
            error
                .to_string()
                .starts_with("directory unavailable: ldap: "),
            "{error}"
        );
    }
}
