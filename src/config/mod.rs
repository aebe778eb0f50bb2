//! The configuration file (`conf/tessera.toml`): schema, validation and assembly.
//!
//! Loading has two stages. [`Config::load`] parses the TOML (unknown keys are errors) and checks
//! everything that can be checked without touching the outside world: addresses, policies,
//! cross-references between sections. Every problem is reported, each as
//! `file:line: key: what is wrong`. The second stage, in `open.rs` ([`Config::open_realms`],
//! [`Config::open_providers`], [`Config::open_dictionary`]), builds what the config names;
//! `check-config` runs both stages, exactly as `serve` does before it binds. `providers.rs`
//! dispatches provider classes and merges LinOTP's `config_json`; `tests.rs` pins the errors.
//!
//! Each backend owns its config struct (`UsersFileConfig` in `directory/users_file.rs`,
//! `FileProviderConfig` in `delivery/file.rs`); this module only assembles them. Relative paths
//! are relative to the directory holding the config file.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::auth::AuthSettings;
use crate::auth::policy::{Policy, PolicyField, PolicySet, PolicyText};
use crate::delivery::Channel;
use crate::delivery::device_sms::DeviceSmsConfig;
use crate::delivery::file::FileProviderConfig;
use crate::delivery::http_sms::HttpSmsConfig;
use crate::delivery::smpp_sms::SmppSmsConfig;
use crate::delivery::smtp_email::SmtpEmailConfig;
use crate::delivery::smtp_sms::SmtpSmsConfig;
use crate::directory::ldap::{LdapConfig, LdapSettings};
use crate::directory::users_file::UsersFileConfig;
use crate::metrics::MetricsSettings;
use crate::radius::clients::{self, Client, ClientConfig, ClientTable, TlsIdentity};
use crate::radius::server::ServerSettings;
use crate::radius::upstream::{UpstreamConfig, Upstreams};
use crate::secret::Secret;
use providers::{merge_config_json, provider_config};

mod open;
mod providers;

/// One problem in the configuration, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// The key or section the problem is about.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.key,
                self.message
            )
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// All problems found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub use crate::source_location::line_col;

pub use crate::store::config::StoreConfig;

/// `[directory.NAME]`: a `type` and that type's keys.
#[derive(Debug, Clone, Deserialize)]
struct RawDirectory {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    rest: toml::Table,
}

/// `[provider.sms.NAME]` / `[provider.email.NAME]`: a `class` and that class's keys, given as
/// TOML keys, or as LinOTP's provider JSON verbatim in `config_json`, or both (see
/// [`merge_config_json`]).
#[derive(Debug, Clone, Deserialize)]
struct RawProvider {
    class: String,
    #[serde(default)]
    default: bool,
    #[serde(flatten)]
    rest: toml::Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviders {
    #[serde(default)]
    sms: BTreeMap<String, Spanned<RawProvider>>,
    #[serde(default)]
    email: BTreeMap<String, Spanned<RawProvider>>,
}

/// `[[realm]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    name: Spanned<String>,
    directories: Vec<Spanned<String>>,
    #[serde(default)]
    default: bool,
}

/// `[[policy]]`, LinOTP's fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    scope: Spanned<String>,
    #[serde(default = "empty_spanned")]
    action: Spanned<String>,
    /// Reply attributes for Access-Accept, `["Class = vpn", "Filter-Id = {groups}"]`.
    #[serde(default)]
    reply: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    /// Directory groups (names or DNs) the user must be in.
    #[serde(default)]
    group: Option<Spanned<String>>,
    #[serde(default)]
    realm: Option<Spanned<String>>,
    #[serde(default)]
    client: Option<Spanned<String>>,
    #[serde(default = "default_true")]
    active: bool,
}

fn default_true() -> bool {
    true
}

fn empty_spanned() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: ServerSettings,
    store: crate::store::config::RawStore,
    #[serde(default, rename = "client")]
    clients: Vec<ClientConfig>,
    #[serde(default, rename = "directory")]
    directories: BTreeMap<String, Spanned<RawDirectory>>,
    #[serde(default, rename = "realm")]
    realms: Vec<RawRealm>,
    #[serde(default, rename = "provider")]
    providers: RawProviders,
    #[serde(default, rename = "policy")]
    policies: Vec<RawPolicy>,
    #[serde(default, rename = "radius_upstream")]
    upstreams: BTreeMap<String, Spanned<UpstreamConfig>>,
    #[serde(default)]
    auth: AuthSettings,
    #[serde(default)]
    metrics: MetricsSettings,
    #[serde(default)]
    log: LogSettings,
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSettings {
    /// A `RUST_LOG`-style filter: `info`, `warn`, `info,tessera::radius=debug`.
    level: Option<Spanned<String>>,
}

/// A directory definition, checked.
#[derive(Debug, Clone)]
pub enum DirectoryConfig {
    /// `type = "users_file"`.
    UsersFile(UsersFileConfig),
    /// `type = "ldap"` (or LinOTP's `ldapresolver`).
    Ldap(Box<LdapSettings>),
}

/// A provider definition, checked.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    /// `class = "file"`.
    File(FileProviderConfig),
    /// `class = "SMPPSMSProvider"`.
    SmppSms(SmppSmsConfig),
    /// `class = "DeviceSMSProvider"`.
    DeviceSms(DeviceSmsConfig),
    /// `class = "HttpSMSProvider"`.
    HttpSms(HttpSmsConfig),
    /// `class = "SmtpSMSProvider"`.
    SmtpSms(SmtpSmsConfig),
    /// `class = "SMTPEmailProvider"`.
    SmtpEmail(SmtpEmailConfig),
}

impl ProviderConfig {
    /// The configured values the provider's peer must not get into a log, an error or the
    /// audit (see `delivery::redact`).
    pub fn secret_values(&self) -> Vec<String> {
        match self {
            ProviderConfig::File(_) => vec![],
            ProviderConfig::SmppSms(c) => c.secret_values(),
            ProviderConfig::DeviceSms(c) => c.secret_values(),
            ProviderConfig::HttpSms(c) => c.secret_values(),
            ProviderConfig::SmtpSms(c) => c.secret_values(),
            ProviderConfig::SmtpEmail(c) => c.secret_values(),
        }
    }
}

/// A realm definition, checked.
#[derive(Debug, Clone)]
pub struct RealmConfig {
    /// Lower-cased name.
    pub name: String,
    /// Directory names in order.
    pub directories: Vec<String>,
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub path: PathBuf,
    /// `[server]`.
    pub server: ServerSettings,
    /// The parsed listen addresses.
    pub listen: Vec<SocketAddr>,
    /// The parsed RadSec listen addresses.
    pub tls_listen: Vec<SocketAddr>,
    /// `[store]`, paths resolved.
    pub store: StoreConfig,
    /// The client table.
    pub clients: ClientTable,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// The policies.
    pub policies: PolicySet,
    /// Directories by name, paths resolved.
    pub directories: BTreeMap<String, DirectoryConfig>,
    /// Realms in config order.
    pub realms: Vec<RealmConfig>,
    /// Index of the default realm in `realms`.
    pub default_realm: usize,
    /// Providers by channel and name: (config, is default).
    pub providers: BTreeMap<Channel, BTreeMap<String, (ProviderConfig, bool)>>,
    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// `[log] level`: the log filter when `RUST_LOG` is not set.
    pub log_level: Option<String>,
    /// `[radius_upstream.NAME]`: legacy RADIUS servers for passthru.
    pub upstreams: Upstreams,
}

/// Collects located errors for one file.
struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(
        &mut self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = if span.is_empty() && span.start == 0 {
            0
        } else {
            line_col(self.text, span.start).0
        };
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                key: "file".into(),
                message: e.to_string(),
            }])
        })?;
        Config::parse(path, &text)
    }

    /// Checks config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Errors {
            file: path,
            text,
            list: vec![],
        };
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().trim().to_string();
                let key = key_at(text, span.start);
                errors.at(span, key, message);
                return Err(ConfigErrors(errors.list));
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        // [server]
        let mut listen = vec![];
        if raw.server.listen.is_empty() && raw.server.tls_listen.is_empty() {
            errors.at(
                0..0,
                "server.listen",
                "at least one address is needed (listen or tls_listen)",
            );
        }
        for address in &raw.server.listen {
            match address.get_ref().parse::<SocketAddr>() {
                Ok(a) => listen.push(a),
                Err(_) => errors.at(
                    address.span(),
                    "server.listen",
                    format!(
                        "{:?} is not an address:port (IPv6 as \"[::]:1812\")",
                        address.get_ref()
                    ),
                ),
            }
        }

        let tls_listen =
            crate::radius::tls::check_settings(&raw.server, &mut |span, key, message| {
                errors.at(span, key, message)
            });

        // [[client]]
        let (client_list, tls_clients) = check_clients(&raw, &mut errors);
        if client_list.is_empty() && tls_clients.is_empty() && errors.list.is_empty() {
            errors.at(
                0..0,
                "client",
                "no [[client]] is configured, so every request would be dropped",
            );
        }
        if !tls_clients.is_empty() && raw.server.tls_listen.is_empty() {
            errors.at(
                0..0,
                "client.tls_identity",
                "clients have a tls_identity but [server] has no tls_listen",
            );
        }

        // [directory.NAME]
        let mut directories = BTreeMap::new();
        for (name, spanned) in &raw.directories {
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
                                let names = crate::directory::ldap::config::spellings(&k);
                                let span = key_span(text, spanned.span(), &names);
                                errors.at(span, format!("{key}.{k}"), message);
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

        // [[realm]]
        let mut realms = vec![];
        let mut default_realm = None;
        for realm in &raw.realms {
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
                if !raw.directories.contains_key(directory.get_ref()) {
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

        // [provider.CHANNEL.NAME]
        let mut providers: BTreeMap<Channel, BTreeMap<String, (ProviderConfig, bool)>> =
            BTreeMap::new();
        for (channel, table) in [
            (Channel::Sms, &raw.providers.sms),
            (Channel::Email, &raw.providers.email),
        ] {
            let mut defaults = 0;
            // Without `default = true`, the first provider in the file is the default (the
            // table is sorted by name, so find it by position).
            let first_in_file = table
                .iter()
                .min_by_key(|(_, spanned)| spanned.span().start)
                .map(|(name, _)| name.clone());
            let any_marked = table.values().any(|p| p.get_ref().default);
            for (name, spanned) in table {
                let key = format!("provider.{channel}.{name}");
                let provider = spanned.get_ref();
                if provider.default {
                    defaults += 1;
                    if defaults > 1 {
                        errors.at(
                            spanned.span(),
                            format!("{key}.default"),
                            format!("only one {channel} provider can be the default"),
                        );
                    }
                }
                let mut keys = provider.rest.clone();
                if let Err((line, message)) = merge_config_json(text, spanned.span(), &mut keys) {
                    errors.list.push(ConfigError {
                        file: path.to_path_buf(),
                        line,
                        key: format!("{key}.config_json"),
                        message,
                    });
                    continue;
                }
                let config = provider_config(channel, &provider.class, &keys, &resolve);
                match config {
                    Ok(c) => {
                        let default = provider.default
                            || (!any_marked && first_in_file.as_ref() == Some(name));
                        providers
                            .entry(channel)
                            .or_default()
                            .insert(name.clone(), (c, default));
                    }
                    Err(message) => errors.at(spanned.span(), key, message),
                }
            }
        }

        // [radius_upstream.NAME]
        let mut upstreams = Upstreams::default();
        for (name, upstream) in &raw.upstreams {
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

        // [[policy]]
        let mut policies = vec![];
        for policy in &raw.policies {
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
                    // Providers named by a policy must exist.
                    let mut named: Vec<(Channel, &String)> = vec![];
                    if let Some(list) = &p.actions.sms_provider {
                        named.extend(list.iter().map(|n| (Channel::Sms, n)));
                    }
                    if let Some(n) = &p.actions.email_provider {
                        named.push((Channel::Email, n));
                    }
                    for (channel, name) in named {
                        if !raw.providers_named(channel, name) {
                            errors.at(
                                policy.action.span(),
                                "policy.action",
                                format!("policy {:?} names {channel} provider {name:?}, but no [provider.{channel}.{name}] exists", p.name),
                            );
                        }
                    }
                    if let Some(name) = &p.actions.passthru
                        && !raw.upstreams.contains_key(name)
                    {
                        errors.at(
                            policy.action.span(),
                            "policy.action",
                            format!("policy {:?}: passthru={name}, but no [radius_upstream.{name}] exists", p.name),
                        );
                    }
                    policies.push(p);
                }
                Err(e) => {
                    let (span, key) = match e.field {
                        PolicyField::Scope => (policy.scope.span(), "policy.scope"),
                        PolicyField::Action => (policy.action.span(), "policy.action"),
                        PolicyField::Reply => (
                            policy
                                .reply
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or(policy.name.span()),
                            "policy.reply",
                        ),
                        PolicyField::User => (
                            policy
                                .user
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or(policy.name.span()),
                            "policy.user",
                        ),
                        PolicyField::Group => (
                            policy
                                .group
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or(policy.name.span()),
                            "policy.group",
                        ),
                        PolicyField::Realm => (
                            policy
                                .realm
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or(policy.name.span()),
                            "policy.realm",
                        ),
                        PolicyField::Client => (
                            policy
                                .client
                                .as_ref()
                                .map(|s| s.span())
                                .unwrap_or(policy.name.span()),
                            "policy.client",
                        ),
                    };
                    errors.at(
                        span,
                        key,
                        format!("policy {:?}: {}", policy.name.get_ref(), e.message),
                    );
                }
            }
        }

        // [metrics]
        let mut metrics_listen = None;
        if let Some(listen) = &raw.metrics.listen {
            match listen.get_ref().parse::<SocketAddr>() {
                Ok(a) => metrics_listen = Some(a),
                Err(_) => errors.at(
                    listen.span(),
                    "metrics.listen",
                    format!(
                        "{:?} is not an address:port, e.g. \"127.0.0.1:9812\"",
                        listen.get_ref()
                    ),
                ),
            }
        }

        // [log]
        if let Some(level) = &raw.log.level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref())
        {
            errors.at(
                level.span(),
                "log.level",
                format!("{:?} is not a log filter: {e}", level.get_ref()),
            );
        }

        // [auth]
        if !(6..=9).contains(&raw.auth.otp_digits) {
            errors.at(0..0, "auth.otp_digits", "must be between 6 and 9");
        }
        if raw.auth.max_fail == 0 {
            errors.at(0..0, "auth.max_fail", "must be at least 1");
        }

        // [store]
        let store = match raw.store.check(resolve) {
            Ok(store) => Some(store),
            Err(problems) => {
                for (span, key, message) in problems {
                    errors.at(span, key, message);
                }
                None
            }
        };

        if !errors.list.is_empty() {
            return Err(ConfigErrors(errors.list));
        }
        let Some(store) = store else {
            return Err(ConfigErrors(errors.list));
        };
        let mut server = raw.server;
        server.dictionary = server.dictionary.map(|p| resolve(&p));
        for path in [
            &mut server.tls_certificate,
            &mut server.tls_key,
            &mut server.tls_client_ca,
        ]
        .into_iter()
        .flatten()
        {
            *path = Spanned::new(path.span(), resolve(path.get_ref()));
        }
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            tls_listen,
            server,
            store,
            clients: ClientTable::with_tls(client_list, tls_clients),
            auth: raw.auth,
            policies: PolicySet::new(policies),
            directories,
            realms,
            default_realm: default_realm.unwrap_or(0),
            providers,
            metrics_listen,
            log_level: raw.log.level.map(|l| l.into_inner()),
            upstreams,
        })
    }
}

/// `[[client]]` entries: UDP clients by address, RadSec clients by certificate identity. A
/// client with both gets two entries of the same name: the UDP one with its secret, the TLS one
/// with `radsec` (RFC 6614 §2.3).
fn check_clients(
    raw: &RawConfig,
    errors: &mut Errors<'_>,
) -> (Vec<Client>, Vec<(TlsIdentity, Client)>) {
    let mut client_list = vec![];
    let mut tls_clients = vec![];
    let mut seen_networks = HashSet::new();
    let mut seen_identities = HashSet::new();
    for client in &raw.clients {
        let (span, fallback_name) = match (&client.address, &client.tls_identity) {
            (Some(a), _) => (a.span(), a.get_ref().clone()),
            (None, Some(t)) => (t.span(), t.get_ref().clone()),
            (None, None) => {
                errors.at(
                    0..0,
                    "client.address",
                    format!(
                        "client {:?} has neither an address (UDP) nor a tls_identity (RadSec)",
                        client.name.as_deref().unwrap_or("")
                    ),
                );
                continue;
            }
        };
        let name = client.name.clone().unwrap_or(fallback_name);
        let resolved = |network, secret| Client {
            network,
            secret,
            name: name.clone(),
            require_message_authenticator: client.require_message_authenticator,
            limit_proxy_state: client.limit_proxy_state,
            tls_only: client.tls_only,
        };
        if client.tls_only && client.tls_identity.is_none() {
            errors.at(
                span.clone(),
                "client.tls_only",
                "tls_only needs a tls_identity",
            );
        }
        if let Some(identity) = &client.tls_identity {
            match TlsIdentity::parse(identity.get_ref()) {
                Ok(parsed) => {
                    if !seen_identities.insert(format!("{parsed:?}").to_ascii_lowercase()) {
                        errors.at(
                            identity.span(),
                            "client.tls_identity",
                            format!("{:?} is listed twice", identity.get_ref()),
                        );
                    }
                    tls_clients.push((parsed, resolved(None, Secret::from("radsec"))));
                }
                Err(message) => errors.at(identity.span(), "client.tls_identity", message),
            }
        }
        let Some(address) = &client.address else {
            if client.secret.is_some() {
                errors.at(
                    span,
                    "client.secret",
                    "a secret is only used with an address",
                );
            }
            continue;
        };
        match clients::parse_address(address.get_ref()) {
            Ok(network) => {
                if !seen_networks.insert(network) {
                    errors.at(
                        address.span(),
                        "client.address",
                        format!("{network} is listed twice"),
                    );
                }
                let secret = client.secret.clone().unwrap_or_default();
                if secret.is_empty() {
                    errors.at(
                        address.span(),
                        "client.secret",
                        "the shared secret is empty",
                    );
                }
                client_list.push(resolved(Some(network), secret));
            }
            Err(message) => errors.at(address.span(), "client.address", message),
        }
    }
    (client_list, tls_clients)
}

impl RawConfig {
    fn providers_named(&self, channel: Channel, name: &str) -> bool {
        match channel {
            Channel::Sms => self.providers.sms.contains_key(name),
            Channel::Email => self.providers.email.contains_key(name),
        }
    }
}

/// Deserializes a class's keys from the rest of its table.
pub(crate) fn from_table<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into::<T>()
        .map_err(|e| e.message().trim().to_string())
}

/// The span of the first line inside the table at `table` (its sub-tables included) that sets
/// one of `names`; the table's own span when none does.
fn key_span(text: &str, table: std::ops::Range<usize>, names: &[String]) -> std::ops::Range<usize> {
    let start = text
        .get(..table.start.min(text.len()))
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let header = text
        .get(start..)
        .and_then(|t| t.lines().next())
        .map(|l| l.trim().trim_matches(|c| c == '[' || c == ']').to_string())
        .unwrap_or_default();
    let mut offset = start;
    for (i, line) in text
        .get(start..)
        .unwrap_or("")
        .split_inclusive('\n')
        .enumerate()
    {
        let trimmed = line.trim_start();
        if i > 0 && trimmed.starts_with('[') {
            let inner = trimmed.trim_start_matches('[');
            if header.is_empty() || !inner.starts_with(&format!("{header}.")) {
                break;
            }
        }
        let key = trimmed
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if trimmed.contains('=') && names.iter().any(|n| n.as_str() == key) {
            return offset..offset + line.len();
        }
        offset += line.len();
    }
    table
}

/// The dotted key path (best effort) of the line at `offset`, for parse errors.
fn key_at(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let line = text.get(offset.min(text.len())..).unwrap_or("");
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let current = text
        .get(line_start..)
        .and_then(|t| t.lines().next())
        .unwrap_or(line);
    let key = current
        .split('=')
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match (section, key) {
        (Some(s), Some(k)) => format!("{s}.{k}"),
        (Some(s), None) => s,
        (None, Some(k)) => k.to_string(),
        (None, None) => "config".into(),
    }
}

#[cfg(test)]
mod tests;
