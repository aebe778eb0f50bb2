//! `[admin]`: the admin API's and the helpdesk page's keys as written ([`AdminSettings`]) and
//! checked ([`AdminConfig`]). Off unless `enabled`; reloaded with the rest of the config.
//!
//! `allow` is its own list, not `[http] allow`: the helpdesk's laptops are not callers of
//! `/validate/*`, and a VPN gateway allowed to validate has no business reaching the admin
//! API. Its default is the loopback addresses only, so turning the API on exposes nothing
//! until the operator names the helpdesk's networks.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::super::settings::AllowList;
use crate::admin::{Members, SelfServiceAction};

/// `[admin]` as the file has it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Serve the admin API and the page on the `[http]` listener (default `false`).
    pub enabled: bool,
    /// Networks (CIDRs or addresses) whose callers may reach the API and the page; anyone else
    /// gets 403. Default: the loopback addresses.
    pub allow: Vec<Spanned<String>>,
    /// Who holds the `admin` role: users and directory groups, `;`-separated, case ignored.
    pub admin: Spanned<String>,
    /// Who holds the `helpdesk` role, written the same way.
    pub helpdesk: Spanned<String>,
    /// Seconds a session lives without a request (900).
    pub session_idle_timeout: Spanned<u64>,
    /// Seconds a session lives at most, however busy (28800: a working day).
    pub session_lifetime: Spanned<u64>,
    /// Most sessions (and logins waiting for their code) held at once (1000).
    pub max_sessions: Spanned<usize>,
    /// What users without a role may do to their own tokens, by LinOTP's `selfservice` action
    /// names (`enrollTOTP`, `disable` …); empty (the default): no self-service.
    pub selfservice: Vec<Spanned<String>>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        let unplaced = |v| Spanned::new(0..0, v);
        AdminSettings {
            enabled: false,
            allow: ["127.0.0.1/32", "::1/128"]
                .into_iter()
                .map(|a| Spanned::new(0..0, a.to_string()))
                .collect(),
            admin: unplaced(String::new()),
            helpdesk: unplaced(String::new()),
            session_idle_timeout: Spanned::new(0..0, 900),
            session_lifetime: Spanned::new(0..0, 28_800),
            max_sessions: Spanned::new(0..0, 1000),
            selfservice: vec![],
        }
    }
}

/// `[admin]` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Whether the admin API and the page answer at all.
    pub enabled: bool,
    /// Who may reach them.
    pub allow: AllowList,
    /// The `admin` role's members.
    pub admins: Members,
    /// The `helpdesk` role's members.
    pub helpdesk: Members,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// A session ends this long after its login.
    pub lifetime: Duration,
    /// Most sessions and pending logins at once.
    pub max_sessions: usize,
    /// The self-service actions; empty: self-service is off.
    pub selfservice: Vec<SelfServiceAction>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminSettings::default()
            .check()
            .unwrap_or_else(|_| AdminConfig {
                enabled: false,
                allow: AllowList::new(vec![]),
                admins: Members::default(),
                helpdesk: Members::default(),
                idle_timeout: Duration::from_secs(900),
                lifetime: Duration::from_secs(28_800),
                max_sessions: 1000,
                selfservice: vec![],
            })
    }
}

/// A problem with one key: (span, key, message).
pub type Problem = (Range<usize>, &'static str, String);

impl AdminSettings {
    /// Checks every key; all problems at once.
    pub fn check(&self) -> Result<AdminConfig, Vec<Problem>> {
        let mut problems = vec![];
        let mut allow = vec![];
        for network in &self.allow {
            match AllowList::parse_one(network.get_ref()) {
                Some(n) => allow.push(n),
                None => problems.push((
                    network.span(),
                    "admin.allow",
                    format!(
                        "{:?} is not a network (\"10.0.0.0/8\", \"::1/128\") or an address",
                        network.get_ref()
                    ),
                )),
            }
        }
        let mut selfservice = vec![];
        for action in &self.selfservice {
            match action.get_ref().parse::<SelfServiceAction>() {
                Ok(a) if !selfservice.contains(&a) => selfservice.push(a),
                Ok(_) => {}
                Err(e) => problems.push((action.span(), "admin.selfservice", e)),
            }
        }
        let admins = Members::parse(self.admin.get_ref());
        let helpdesk = Members::parse(self.helpdesk.get_ref());
        let idle = *self.session_idle_timeout.get_ref();
        let lifetime = *self.session_lifetime.get_ref();
        if idle == 0 {
            problems.push((
                self.session_idle_timeout.span(),
                "admin.session_idle_timeout",
                "must be at least 1 (seconds)".into(),
            ));
        }
        if lifetime < idle {
            problems.push((
                self.session_lifetime.span(),
                "admin.session_lifetime",
                format!("{lifetime} is shorter than session_idle_timeout ({idle})"),
            ));
        }
        if *self.max_sessions.get_ref() == 0 {
            problems.push((
                self.max_sessions.span(),
                "admin.max_sessions",
                "must be at least 1".into(),
            ));
        }
        if self.enabled && admins.is_empty() && helpdesk.is_empty() && selfservice.is_empty() {
            problems.push((
                0..0,
                "admin.enabled",
                "nobody could log in: name admin or helpdesk members, or selfservice actions"
                    .into(),
            ));
        }
        if self.enabled && self.allow.is_empty() {
            problems.push((
                0..0,
                "admin.allow",
                "empty: nobody could reach the admin API; list the helpdesk's networks".into(),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AdminConfig {
            enabled: self.enabled,
            allow: AllowList::new(allow),
            admins,
            helpdesk,
            idle_timeout: Duration::from_secs(idle),
            lifetime: Duration::from_secs(lifetime),
            max_sessions: *self.max_sessions.get_ref(),
            selfservice,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> AdminSettings {
        #[derive(Deserialize)]
        struct File {
            admin: AdminSettings,
        }
        toml::from_str::<File>(text).map(|f| f.admin).expect("toml")
    }

    #[test]
    fn off_by_default_loopback_only_no_selfservice() {
        let config = AdminConfig::default();
        assert!(!config.enabled);
        assert!(config.allow.allows("127.0.0.1".parse().unwrap()));
        assert!(!config.allow.allows("10.0.0.1".parse().unwrap()));
        assert!(config.selfservice.is_empty());
        assert_eq!(config.idle_timeout, Duration::from_secs(900));
        assert_eq!(config.lifetime, Duration::from_secs(28_800));
    }

    #[test]
    fn keys_are_read_and_checked() {
        let config = settings(
            "[admin]\nenabled = true\nallow = [\"10.1.0.0/16\"]\nhelpdesk = \"helpdesk; alice\"\n\
             selfservice = [\"enrollTOTP\", \"disable\"]\nsession_idle_timeout = 60\n",
        )
        .check()
        .unwrap();
        assert!(config.allow.allows("10.1.2.3".parse().unwrap()));
        assert_eq!(
            config.selfservice,
            [SelfServiceAction::EnrollTotp, SelfServiceAction::Disable]
        );
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        let problems = settings(
            "[admin]\nenabled = true\nallow = [\"10.0.0.0/33\"]\nselfservice = [\"fly\"]\n\
             session_idle_timeout = 0\nmax_sessions = 0\n",
        )
        .check()
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.1).collect();
        assert_eq!(
            keys,
            [
                "admin.allow",
                "admin.selfservice",
                "admin.session_idle_timeout",
                "admin.max_sessions",
                "admin.enabled"
            ]
        );
        assert!(
            problems
                .iter()
                .all(|p| p.0 != (0..0) || p.1 == "admin.enabled")
        );
    }
}
