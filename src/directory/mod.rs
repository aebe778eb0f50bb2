//! Directories: where users, their passwords and their attributes (mobile, e-mail, groups) live.
//!
//! [`Directory`] is the one trait the engine sees. Each implementation has its own file (or
//! folder) and owns its config struct: [`users_file`] (a local TOML file) and [`ldap`] (OpenLDAP,
//! Active Directory). A [`Realm`] is an ordered list of directories; the first one that knows a
//! user answers for that user.
//!
//! A directory that cannot answer returns [`DirectoryError::Unavailable`]; the realm does not
//! fall through to the next directory then, because the user might live in the one that is down
//! and a namesake in the next one must not log in in their place.

pub mod ldap;
pub mod users_file;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::secret::Secret;

/// What a directory knows about a user. Attribute names follow LinOTP's USERINFO keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The login name as the directory spells it.
    pub login: String,
    /// The directory's own id for the user (LinOTP's "uid"): the entry's DN for LDAP, the
    /// login for the users file. Password checks use it, so they need no second search.
    pub id: String,
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

    /// A realm by name.
    pub fn get(&self, name: &str) -> Option<&Realm> {
        self.realms
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }
}

static EMPTY_REALM: Realm = Realm {
    name: String::new(),
    directories: Vec::new(),
};
