//! Finding users through the directories: by part of their name across every realm
//! ([`find`]), and one user by the name as typed, resolved to the identity the directory
//! returns ([`resolve`]) — the same normalisation and realm split the engine applies, so
//! `ALICE`, `alice@local` and `ａlice` all lead to alice.

use serde::Serialize;

use super::error::AdminError;
use crate::auth::message::{mask_email, mask_phone};
use crate::directory::{Realms, UserInfo, login_name};

/// The most users one search returns.
pub const SEARCH_LIMIT: usize = 50;

/// A user found, as the helpdesk sees them: never a full phone number.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserSummary {
    /// The identity (the directory's spelling).
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The directory that knows them.
    pub directory: String,
    /// Given name and surname, when the directory has them.
    pub name: Option<String>,
    /// The mobile number, masked.
    pub mobile: Option<String>,
    /// The e-mail address, masked.
    pub email: Option<String>,
}

impl UserSummary {
    /// The summary of `user` of `realm`, found in `directory`.
    pub fn of(user: &UserInfo, realm: &str, directory: &str) -> Self {
        let name = [
            user.attributes.get("givenname"),
            user.attributes.get("surname"),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
        UserSummary {
            user: user.login.clone(),
            realm: realm.to_string(),
            directory: directory.to_string(),
            name: (!name.is_empty()).then_some(name),
            mobile: user.mobile.as_deref().map(mask_phone),
            email: user.email.as_deref().map(mask_email),
        }
    }
}

/// Users whose login contains `part` in any realm (or only in the realm of `part@realm`), at
/// most `limit` (capped at [`SEARCH_LIMIT`]). A directory that is down fails the search: an
/// incomplete list would look like a complete one.
pub async fn find(
    realms: &Realms,
    part: &str,
    limit: usize,
) -> Result<Vec<UserSummary>, AdminError> {
    let limit = limit.clamp(1, SEARCH_LIMIT);
    let normalized =
        login_name::normalize(part).map_err(|e| AdminError::BadInput(format!("search: {e}")))?;
    let (typed, only) = realms.resolve(&normalized);
    let typed = typed.trim().to_string();
    if typed.is_empty() {
        return Err(AdminError::BadInput(
            "search: type a part of a user name".into(),
        ));
    }
    // `part@realm` searches that realm; a bare part every realm.
    let searched: Vec<_> = if typed != normalized {
        vec![only]
    } else {
        realms.all().iter().collect()
    };
    let mut found = vec![];
    for realm in searched {
        for directory in &realm.directories {
            for user in directory.find_users(&typed, limit).await? {
                let duplicate = found
                    .iter()
                    .any(|f: &UserSummary| f.realm == realm.name && f.user == user.login);
                if !duplicate {
                    found.push(UserSummary::of(&user, &realm.name, directory.name()));
                }
            }
        }
    }
    found.sort_by(|a, b| (&a.user, &a.realm).cmp(&(&b.user, &b.realm)));
    found.truncate(limit);
    Ok(found)
}

/// The user behind a typed name (`alice`, `ALICE@corp`): their entry and realm name, or
/// [`AdminError::NoUser`].
pub async fn resolve(realms: &Realms, typed: &str) -> Result<(UserInfo, String), AdminError> {
    let normalized =
        login_name::normalize(typed).map_err(|e| AdminError::BadInput(format!("user: {e}")))?;
    let (login, realm) = realms.resolve(&normalized);
    let login = login.trim().to_string();
    match realm.lookup(&login).await? {
        Some((user, _)) => Ok((user, realm.name.clone())),
        None => Err(AdminError::NoUser {
            user: login,
            realm: realm.name.clone(),
        }),
    }
}
