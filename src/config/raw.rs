//! The configuration file as serde reads it: one `Raw*` type per section, unknown keys refused.
//! Nothing here is checked beyond its TOML type; the section functions next to this file turn
//! each raw section into its typed part. Values that errors must locate are `Spanned`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::auth::AuthSettings;
use crate::delivery::Channel;
use crate::http::HttpSettings;
use crate::metrics::MetricsSettings;
use crate::radius::clients::ClientConfig;
use crate::radius::settings::ServerSettings;
use crate::radius::upstream::UpstreamConfig;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: ServerSettings,
    pub store: crate::store::config::RawStore,
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    #[serde(default, rename = "directory")]
    pub directories: BTreeMap<String, Spanned<RawDirectory>>,
    #[serde(default, rename = "realm")]
    pub realms: Vec<RawRealm>,
    #[serde(default, rename = "provider")]
    pub providers: RawProviders,
    #[serde(default, rename = "policy")]
    pub policies: Vec<RawPolicy>,
    #[serde(default, rename = "radius_upstream")]
    pub upstreams: BTreeMap<String, Spanned<UpstreamConfig>>,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub admin: crate::http::admin::AdminSettings,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub eap: crate::eap::EapSettings,
}

/// `[directory.NAME]`: a `type` and that type's keys.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawDirectory {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub rest: toml::Table,
}

/// `[provider.sms.NAME]` / `[provider.email.NAME]`: a `class` and that class's keys, given as
/// TOML keys, or as LinOTP's provider JSON verbatim in `config_json`, or both (see
/// `providers::merge_config_json`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawProvider {
    pub class: String,
    #[serde(default)]
    pub default: bool,
    #[serde(flatten)]
    pub rest: toml::Table,
}

/// `[provider.sms.*]` and `[provider.email.*]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProviders {
    #[serde(default)]
    pub sms: BTreeMap<String, Spanned<RawProvider>>,
    #[serde(default)]
    pub email: BTreeMap<String, Spanned<RawProvider>>,
}

impl RawProviders {
    /// The providers of one channel, by name.
    pub fn of(&self, channel: Channel) -> &BTreeMap<String, Spanned<RawProvider>> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
        }
    }
}

/// `[[realm]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealm {
    pub name: Spanned<String>,
    pub directories: Vec<Spanned<String>>,
    #[serde(default)]
    pub default: bool,
}

/// `[[policy]]`, LinOTP's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub name: Spanned<String>,
    pub scope: Spanned<String>,
    #[serde(default = "empty_spanned")]
    pub action: Spanned<String>,
    /// Reply attributes for Access-Accept, `["Class = vpn", "Filter-Id = {groups}"]`.
    #[serde(default)]
    pub reply: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    /// Directory groups (names or DNs) the user must be in.
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    #[serde(default)]
    pub realm: Option<Spanned<String>>,
    #[serde(default)]
    pub client: Option<Spanned<String>>,
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

fn empty_spanned() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    /// A `RUST_LOG`-style filter: `info`, `warn`, `info,tessera::radius=debug`.
    pub level: Option<Spanned<String>>,
}
