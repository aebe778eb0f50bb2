//! Policies, with LinOTP's fields, action syntax and precedence.
//!
//! A policy has a `scope` (`authentication` or `enrollment`), an `action` string
//! (`key=value, key2=value2`, values may be quoted), and filters on `user`, `realm` and
//! `client`. A filter is a comma-separated list of entries: `*`, an exact name, a pattern with
//! `*` (`adm*`, `*-svc`), or a negation (`-name`, `!name`) that excludes. Clients are IP
//! addresses or CIDR networks.
//!
//! To find an action's value for a request, take the active policies of the scope that set that
//! action and match the request; then narrow as LinOTP does — exact user over pattern over `*`,
//! then exact realm over `*`, then a client address over `*` — and take the first left in
//! config order. Action values are parsed when the config loads, so a value tessera does not
//! understand is a config error, not a silent default.

use std::net::IpAddr;

mod actions;
mod filters;

use actions::parse_actions;
pub use actions::{
    ActionValue, Actions, ChallengeText, DeliveryFailMode, EnrollType, Keyword, LoginMode, Mfa,
    OtpPin, ReplyField, ReplyPart, ReplyTemplate, Template, action_scopes,
};
use filters::{ClientFilter, NameFilter, Rank, Specificity};

/// Policy scopes tessera acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// How users authenticate (otppin, providers, texts, timeouts).
    Authentication,
    /// What happens for users without a token (autoenrollment).
    Enrollment,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "authentication" => Ok(Scope::Authentication),
            "enrollment" => Ok(Scope::Enrollment),
            other => Err(format!(
                "unknown scope {other:?} (expected authentication or enrollment)"
            )),
        }
    }
}

/// One policy, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Name, for logs.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Parsed actions.
    pub actions: Actions,
    users: NameFilter,
    /// Directory groups (names or DNs); `None`: any user, with or without groups.
    groups: Option<NameFilter>,
    realms: NameFilter,
    clients: ClientFilter,
    /// Inactive policies never match.
    pub active: bool,
}

/// Which field of a policy definition an error is about (for config error locations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyField {
    /// `scope`
    Scope,
    /// `action`
    Action,
    /// `user`
    User,
    /// `group`
    Group,
    /// `realm`
    Realm,
    /// `client`
    Client,
    /// `reply`
    Reply,
}

/// A policy definition that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The offending field.
    pub field: PolicyField,
    /// What is wrong.
    pub message: String,
}

/// A policy as written in the config: each field's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyText<'a> {
    /// `name`
    pub name: &'a str,
    /// `scope`
    pub scope: &'a str,
    /// `action`
    pub action: &'a str,
    /// `reply = ["Class = x", …]`
    pub reply: &'a [String],
    /// `user` filter.
    pub user: &'a str,
    /// `group` filter: directory groups by name or DN, separated by `;` (DNs hold commas);
    /// empty: no filter.
    pub group: &'a str,
    /// `realm` filter.
    pub realm: &'a str,
    /// `client` filter.
    pub client: &'a str,
    /// `active`
    pub active: bool,
}

impl Policy {
    /// Parses a policy from its text fields (tests and benchmarks; the config uses
    /// [`Policy::from_text`]).
    pub fn parse(
        name: &str,
        scope: &str,
        action: &str,
        user: &str,
        realm: &str,
        client: &str,
        active: bool,
    ) -> Result<Policy, PolicyError> {
        Policy::from_text(&PolicyText {
            name,
            scope,
            action,
            user,
            realm,
            client,
            active,
            ..PolicyText::default()
        })
    }

    /// Parses a policy as written in the config.
    pub fn from_text(text: &PolicyText<'_>) -> Result<Policy, PolicyError> {
        let err = |field| move |message| PolicyError { field, message };
        let scope: Scope = text.scope.parse().map_err(err(PolicyField::Scope))?;
        if text.action.trim().is_empty() && text.reply.is_empty() {
            return Err(PolicyError {
                field: PolicyField::Action,
                message: "the policy sets no action".into(),
            });
        }
        let mut actions = parse_actions(scope, text.action).map_err(err(PolicyField::Action))?;
        if !text.reply.is_empty() {
            if scope != Scope::Authentication {
                return Err(PolicyError {
                    field: PolicyField::Reply,
                    message: "reply attributes belong in scope authentication".into(),
                });
            }
            let templates: Result<Vec<ReplyTemplate>, String> =
                text.reply.iter().map(|r| ReplyTemplate::parse(r)).collect();
            actions.reply = Some(templates.map_err(err(PolicyField::Reply))?);
        }
        let groups = if text.group.trim().is_empty() {
            None
        } else {
            Some(
                NameFilter::parse_separated(text.group, ';', true)
                    .map_err(err(PolicyField::Group))?,
            )
        };
        Ok(Policy {
            name: text.name.to_string(),
            actions,
            scope,
            // Identities are the directory's spelling; names in a policy match them ignoring
            // case, as the directory itself does.
            users: NameFilter::parse(text.user, true).map_err(err(PolicyField::User))?,
            groups,
            realms: NameFilter::parse(text.realm, true).map_err(err(PolicyField::Realm))?,
            clients: ClientFilter::parse(text.client).map_err(err(PolicyField::Client))?,
            active: text.active,
        })
    }

    fn specificity(&self, ctx: &PolicyContext<'_>) -> Option<Rank> {
        let group = match &self.groups {
            None => Specificity::Any,
            Some(filter) => ctx.groups.iter().filter_map(|g| filter.matches(g)).max()?,
        };
        Some((
            self.users.matches(ctx.user)?,
            group,
            self.realms.matches(ctx.realm)?,
            self.clients.matches(ctx.client)?,
        ))
    }
}

/// Who is asking: the facts policies match on.
#[derive(Debug, Clone, Copy)]
pub struct PolicyContext<'a> {
    /// Login (without realm).
    pub user: &'a str,
    /// Realm name.
    pub realm: &'a str,
    /// The NAS address.
    pub client: IpAddr,
    /// The user's directory groups (names or DNs, as the directory gives them).
    pub groups: &'a [String],
}

/// All policies, in config order.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// A set from parsed policies.
    pub fn new(policies: Vec<Policy>) -> Self {
        PolicySet { policies }
    }

    /// The value of one action for a request: among the active policies of `scope` that set
    /// it and match, the most specific (user, then realm, then client), first in config order.
    pub fn action<'a, T: ?Sized>(
        &'a self,
        scope: Scope,
        ctx: &PolicyContext<'_>,
        get: impl Fn(&'a Actions) -> Option<&'a T>,
    ) -> Option<&'a T> {
        let mut best: Option<(Rank, &'a T)> = None;
        for policy in self
            .policies
            .iter()
            .filter(|p| p.active && p.scope == scope)
        {
            let Some(value) = get(&policy.actions) else {
                continue;
            };
            let Some(spec) = policy.specificity(ctx) else {
                continue;
            };
            // Strictly greater: the first policy in config order wins among equals.
            if best.as_ref().is_none_or(|(b, _)| spec > *b) {
                best = Some((spec, value));
            }
        }
        best.map(|(_, v)| v)
    }

    /// The policies, for listing.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }
}

#[cfg(test)]
mod tests;
