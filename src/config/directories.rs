//! `[directory.NAME]` and `[[realm]]`: each directory's keys checked by its type, and the realms
//! over them.

use std::collections::BTreeMap;

use toml::Spanned;

use super::locate::Errors;
use super::raw::{RawDirectory, RawRealm};
use super::{DirectoryConfig, RealmConfig};
use crate::backend::Resolve;
use crate::directory::registry;

/// Every `[directory.NAME]`, checked by its type, by name.
pub(super) fn directories(
    raw: &BTreeMap<String, Spanned<RawDirectory>>,
    resolve: Resolve<'_>,
    errors: &mut Errors<'_>,
) -> BTreeMap<String, DirectoryConfig> {
    let mut directories = BTreeMap::new();
    for (name, spanned) in raw {
        let directory = spanned.get_ref();
        let kind = match registry::find(&directory.kind) {
            Ok(kind) => kind,
            Err(message) => {
                errors.at(spanned.span(), format!("directory.{name}"), message);
                continue;
            }
        };
        match (kind.check)(&directory.rest, resolve) {
            Ok(settings) => {
                directories.insert(name.clone(), settings);
            }
            Err(problems) => {
                errors.backend(
                    &["directory", name],
                    spanned.span(),
                    kind.spellings,
                    problems,
                );
            }
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
