//! The directory types tessera knows: one row per type in [`TYPES`], each from its own module.
//! A row names the type (and LinOTP's other names for it), how its keys are checked into
//! [`DirectorySettings`](super::DirectorySettings), which open the directory, and how its keys
//! may be spelt (for pointing at a problem's line). Adding a type is one module and one row
//! here; the row's type ([`DirectoryType`]) and the settings trait live in the folder's
//! `mod.rs`, below every type.

use super::DirectoryType;

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
