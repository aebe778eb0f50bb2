//! `[[policy]]` and `[radius_upstream.NAME]`: policies parsed by `auth::policy`, and the
//! providers and upstreams they name checked against the file.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::locate::Errors;
use super::raw::{RawPolicy, RawProviders};
use crate::auth::policy::{Policy, PolicyField, PolicySet, PolicyText};
use crate::delivery::Channel;
use crate::radius::upstream::{UpstreamConfig, Upstreams};

/// Every `[radius_upstream.NAME]`, checked.
pub(super) fn upstreams(
    raw: &BTreeMap<String, Spanned<UpstreamConfig>>,
    errors: &mut Errors<'_>,
) -> Upstreams {
    let mut upstreams = Upstreams::default();
    for (name, upstream) in raw {
        match upstream.get_ref().check(name) {
            Ok(checked) => {
                upstreams.0.insert(name.clone(), checked);
            }
            Err(message) => errors.at(
                upstream.get_ref().address.span(),
                format!("radius_upstream.{name}.address"),
                message,
            ),
        }
    }
    upstreams
}

/// What a policy may name: the providers and upstreams the file defines.
pub(super) struct Named<'a> {
    pub providers: &'a RawProviders,
    pub upstreams: &'a BTreeMap<String, Spanned<UpstreamConfig>>,
}

/// Every `[[policy]]`, parsed, in file order.
pub(super) fn policies(raw: &[RawPolicy], named: &Named<'_>, errors: &mut Errors<'_>) -> PolicySet {
    let mut policies = vec![];
    for policy in raw {
        let field = |f: &Option<Spanned<String>>| {
            f.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default()
        };
        let reply = policy
            .reply
            .as_ref()
            .map(|r| r.get_ref().clone())
            .unwrap_or_default();
        let parsed = Policy::from_text(&PolicyText {
            name: policy.name.get_ref(),
            scope: policy.scope.get_ref(),
            action: policy.action.get_ref(),
            reply: &reply,
            user: &field(&policy.user),
            group: &field(&policy.group),
            realm: &field(&policy.realm),
            client: &field(&policy.client),
            active: policy.active,
        });
        match parsed {
            Ok(p) => {
                check_names(&p, policy.action.span(), named, errors);
                policies.push(p);
            }
            Err(e) => {
                let (span, key) = field_span(policy, e.field);
                errors.at(
                    span,
                    key,
                    format!("policy {:?}: {}", policy.name.get_ref(), e.message),
                );
            }
        }
    }
    PolicySet::new(policies)
}

/// The providers and the upstream a policy's actions name must exist.
fn check_names(policy: &Policy, action: Range<usize>, named: &Named<'_>, errors: &mut Errors<'_>) {
    let mut providers: Vec<(Channel, &String)> = vec![];
    if let Some(list) = &policy.actions.sms_provider {
        providers.extend(list.iter().map(|n| (Channel::Sms, n)));
    }
    if let Some(n) = &policy.actions.email_provider {
        providers.push((Channel::Email, n));
    }
    for (channel, name) in providers {
        if !named.providers.of(channel).contains_key(name) {
            errors.at(
                action.clone(),
                "policy.action",
                format!(
                    "policy {:?} names {channel} provider {name:?}, but no [provider.{channel}.{name}] exists",
                    policy.name
                ),
            );
        }
    }
    if let Some(name) = &policy.actions.passthru
        && !named.upstreams.contains_key(name)
    {
        errors.at(
            action,
            "policy.action",
            format!(
                "policy {:?}: passthru={name}, but no [radius_upstream.{name}] exists",
                policy.name
            ),
        );
    }
}

/// Where a policy's field stands and its key, for an error about it (the policy's name when
/// the field is absent).
fn field_span(policy: &RawPolicy, field: PolicyField) -> (Range<usize>, &'static str) {
    let or_name =
        |f: &Option<Spanned<String>>| f.as_ref().map_or(policy.name.span(), Spanned::span);
    match field {
        PolicyField::Scope => (policy.scope.span(), "policy.scope"),
        PolicyField::Action => (policy.action.span(), "policy.action"),
        PolicyField::Reply => (
            policy
                .reply
                .as_ref()
                .map_or(policy.name.span(), Spanned::span),
            "policy.reply",
        ),
        PolicyField::User => (or_name(&policy.user), "policy.user"),
        PolicyField::Group => (or_name(&policy.group), "policy.group"),
        PolicyField::Realm => (or_name(&policy.realm), "policy.realm"),
        PolicyField::Client => (or_name(&policy.client), "policy.client"),
    }
}
