//! `[directory.NAME]` and `[[realm]]`: each directory's keys checked by its type, and the realms
//! over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::locate::Errors;
use super::raw::{RawDirectory, RawRealm};
use super::{DirectoryConfig, RealmConfig, from_table};
use crate::directory::ldap::LdapConfig;
use crate::directory::users_file::UsersFileConfig;

/// Every `[directory.NAME]`, checked, by name.
pub(super) fn directories(
    raw: &BTreeMap<String, Spanned<RawDirectory>>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    errors: &mut Errors<'_>,
) -> BTreeMap<String, DirectoryConfig> {
    let mut directories = BTreeMap::new();
    for (name, spanned) in raw {
        let key = format!("directory.{name}");
        let directory = spanned.get_ref();
        let config = match directory.kind.as_str() {
            "users_file" => from_table::<UsersFileConfig>(&directory.rest).map(|mut c| {
                c.path = resolve(&c.path);
                DirectoryConfig::UsersFile(c)
            }),
            "ldap" | "ldapresolver" => match from_table::<LdapConfig>(&directory.rest) {
                Err(message) => Err(message),
                Ok(c) => match c.check(resolve) {
                    Ok(s) => Ok(DirectoryConfig::Ldap(Box::new(s))),
                    Err(problems) => {
                        // One error per key, on the key's own line.
                        for (k, message) in problems {
                            let spellings = crate::directory::ldap::config::spellings(&k);
                            errors.in_table(
                                &["directory", name],
                                &spellings,
                                spanned.span(),
                                format!("{key}.{k}"),
                                message,
                            );
                        }
                        continue;
                    }
                },
            },
            other => Err(format!(
                "unknown directory type {other:?} (known: users_file, ldap)"
            )),
        };
        match config {
            Ok(c) => {
                directories.insert(name.clone(), c);
            }
            Err(message) => errors.at(spanned.span(), key, message),
        }
    }
    directories
}

/// The `[[realm]]`s in file order, and the index of the default one.
pub(super) fn realms(
    raw: &[RawRealm],
    directories: &BTreeMap<String, Spanned<RawDirectory>>,
    errors: &mut Errors<'_>,
) -> (Vec<RealmConfig>, usize) {
    let mut realms = vec![];
    let mut default_realm = None;
    for realm in raw {
        let name = realm.name.get_ref().to_lowercase();
        if name.is_empty() || name.contains('@') {
            errors.at(
                realm.name.span(),
                "realm.name",
                format!("{name:?} is not a realm name"),
            );
        }
        if realms.iter().any(|r: &RealmConfig| r.name == name) {
            errors.at(
                realm.name.span(),
                "realm.name",
                format!("realm {name:?} is defined twice"),
            );
        }
        if realm.directories.is_empty() {
            errors.at(
                realm.name.span(),
                "realm.directories",
                "a realm needs at least one directory",
            );
        }
        for directory in &realm.directories {
            if !directories.contains_key(directory.get_ref()) {
                errors.at(
                    directory.span(),
                    "realm.directories",
                    format!("no [directory.{}] is defined", directory.get_ref()),
                );
            }
        }
        if realm.default {
            if default_realm.is_some() {
                errors.at(
                    realm.name.span(),
                    "realm.default",
                    "only one realm can be the default",
                );
            }
            default_realm = Some(realms.len());
        }
        realms.push(RealmConfig {
            name,
            directories: realm
                .directories
                .iter()
                .map(|d| d.get_ref().clone())
                .collect(),
        });
    }
    if realms.is_empty() {
        errors.at(0..0, "realm", "at least one [[realm]] is needed");
    }
    (realms, default_realm.unwrap_or(0))
}
