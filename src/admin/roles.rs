//! Who may do what: the roles ([`Role`]), what each allows ([`Action`]), who holds them
//! ([`Members`], the `[admin] helpdesk` and `admin` keys) and the self-service actions a user
//! may take on their own tokens ([`SelfServiceAction`], LinOTP's `selfservice` scope names).
//!
//! Members are written like a policy's `group` filter: entries separated by `;`, case ignored,
//! each a user (`alice`, `alice@corp`) or a directory group (its name or DN, as the directory
//! lists it: LDAP `memberOf`, the users file's `groups`). A user is matched by the identity the
//! directory returned, never by the name typed, so `ALICE` or `ａlice` hold alice's role and
//! nobody gains one by spelling a name differently.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::directory::UserInfo;

/// A session's role. Ordered: each allows at least what the one before allows on tokens it
/// may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A user acting on their own tokens, as `[admin] selfservice` allows.
    #[serde(rename = "selfservice")]
    SelfService,
    /// Views users, tokens and the audit; unlocks, resyncs, enables and disables.
    Helpdesk,
    /// Also enrolls, removes and exports the audit.
    Admin,
}

impl Role {
    /// The name the config, the API and the audit use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SelfService => "selfservice",
            Role::Helpdesk => "helpdesk",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may carry out `action` on any user's tokens. Self-service is
    /// decided per action and on the user's own tokens only ([`SelfServiceAction`]).
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Helpdesk => !matches!(action, Action::Enroll | Action::Remove | Action::Export),
            Role::SelfService => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Find users, see their tokens and the service's state.
    View,
    /// Reset a fail counter and end a back-off.
    Reset,
    /// Resync a HOTP/TOTP token.
    Resync,
    /// Enable or disable a token.
    EnableDisable,
    /// Set a token's description.
    Describe,
    /// Read the audit.
    Audit,
    /// Export the audit as CSV.
    Export,
    /// Enroll a token for a user.
    Enroll,
    /// Remove (unassign) a token.
    Remove,
}

/// What a self-service user may do to their own tokens: LinOTP's `selfservice` scope action
/// names, as `[admin] selfservice` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SelfServiceAction {
    /// Enroll an authenticator app (TOTP), confirmed by its first code.
    #[serde(rename = "enrollTOTP")]
    EnrollTotp,
    /// Enroll a HOTP token, confirmed by its first code.
    #[serde(rename = "enrollHOTP")]
    EnrollHotp,
    /// Disable a token (a lost phone).
    #[serde(rename = "disable")]
    Disable,
    /// Enable a disabled token.
    #[serde(rename = "enable")]
    Enable,
    /// Remove a token.
    #[serde(rename = "delete")]
    Delete,
    /// Reset a token's fail counter.
    #[serde(rename = "reset")]
    Reset,
    /// Resync a HOTP/TOTP token.
    #[serde(rename = "resync")]
    Resync,
    /// Set a token's description.
    #[serde(rename = "setDescription")]
    SetDescription,
    /// Read their own audit rows.
    #[serde(rename = "history")]
    History,
}

impl SelfServiceAction {
    /// Every action, in the order the docs list them.
    pub const ALL: [SelfServiceAction; 9] = [
        SelfServiceAction::EnrollTotp,
        SelfServiceAction::EnrollHotp,
        SelfServiceAction::Disable,
        SelfServiceAction::Enable,
        SelfServiceAction::Delete,
        SelfServiceAction::Reset,
        SelfServiceAction::Resync,
        SelfServiceAction::SetDescription,
        SelfServiceAction::History,
    ];

    /// LinOTP's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SelfServiceAction::EnrollTotp => "enrollTOTP",
            SelfServiceAction::EnrollHotp => "enrollHOTP",
            SelfServiceAction::Disable => "disable",
            SelfServiceAction::Enable => "enable",
            SelfServiceAction::Delete => "delete",
            SelfServiceAction::Reset => "reset",
            SelfServiceAction::Resync => "resync",
            SelfServiceAction::SetDescription => "setDescription",
            SelfServiceAction::History => "history",
        }
    }
}

impl FromStr for SelfServiceAction {
    type Err = String;

    /// LinOTP's name, case ignored.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        SelfServiceAction::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = SelfServiceAction::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown self-service action {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Who holds a role: users and directory groups, lower-cased (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members(Vec<String>);

impl Members {
    /// `alice; helpdesk; CN=Helpdesk,OU=Groups,DC=example,DC=org`: entries separated by `;`,
    /// blanks dropped.
    pub fn parse(text: &str) -> Members {
        Members(
            text.split(';')
                .map(|entry| entry.trim().to_lowercase())
                .filter(|entry| !entry.is_empty())
                .collect(),
        )
    }

    /// Whether nobody is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `user` of `realm` is listed: by identity (`alice`), by identity and realm
    /// (`alice@corp`), or by one of their groups.
    pub fn contains(&self, user: &UserInfo, realm: &str) -> bool {
        let login = user.login.to_lowercase();
        let qualified = format!("{login}@{}", realm.to_lowercase());
        self.0.iter().any(|entry| {
            *entry == login
                || *entry == qualified
                || user
                    .groups
                    .iter()
                    .any(|g| g.trim().to_lowercase() == *entry)
        })
    }
}

/// The role of `user` of `realm`: admin before helpdesk; self-service when it is on and the
/// user holds neither; `None` otherwise.
pub fn role_of(
    admins: &Members,
    helpdesk: &Members,
    selfservice_on: bool,
    user: &UserInfo,
    realm: &str,
) -> Option<Role> {
    if admins.contains(user, realm) {
        Some(Role::Admin)
    } else if helpdesk.contains(user, realm) {
        Some(Role::Helpdesk)
    } else if selfservice_on {
        Some(Role::SelfService)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            login: login.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..UserInfo::default()
        }
    }

    #[test]
    fn members_by_identity_realm_or_group_ignoring_case() {
        let members = Members::parse(" Alice ; cn=Helpdesk,ou=Groups,dc=example,dc=org;;bob@CORP");
        assert!(members.contains(&user("alice", &[]), "local"));
        assert!(members.contains(&user("bob", &[]), "corp"));
        assert!(!members.contains(&user("bob", &[]), "local"));
        assert!(members.contains(
            &user("carol", &["CN=Helpdesk,OU=Groups,DC=example,DC=org"]),
            "corp"
        ));
        assert!(!members.contains(&user("dave", &["cn=other"]), "corp"));
        assert!(Members::parse(" ; ").is_empty());
    }

    #[test]
    fn roles_and_what_they_allow() {
        let admins = Members::parse("root-group");
        let helpdesk = Members::parse("alice");
        let carol = user("carol", &["root-group"]);
        assert_eq!(
            role_of(&admins, &helpdesk, false, &carol, "l"),
            Some(Role::Admin)
        );
        let alice = user("alice", &[]);
        assert_eq!(
            role_of(&admins, &helpdesk, false, &alice, "l"),
            Some(Role::Helpdesk)
        );
        let bob = user("bob", &[]);
        assert_eq!(role_of(&admins, &helpdesk, false, &bob, "l"), None);
        assert_eq!(
            role_of(&admins, &helpdesk, true, &bob, "l"),
            Some(Role::SelfService)
        );
        assert!(Role::Helpdesk.allows(Action::Reset));
        assert!(!Role::Helpdesk.allows(Action::Remove));
        assert!(!Role::Helpdesk.allows(Action::Enroll));
        assert!(!Role::Helpdesk.allows(Action::Export));
        assert!(Role::Admin.allows(Action::Export));
        assert!(!Role::SelfService.allows(Action::View));
    }

    #[test]
    fn selfservice_names_are_linotps() {
        assert_eq!(
            "enrolltotp".parse::<SelfServiceAction>(),
            Ok(SelfServiceAction::EnrollTotp)
        );
        assert!("fly".parse::<SelfServiceAction>().is_err());
        for action in SelfServiceAction::ALL {
            assert_eq!(action.as_str().parse::<SelfServiceAction>(), Ok(action));
        }
    }
}
