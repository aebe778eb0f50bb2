//! The configuration file (`conf/tessera.toml`): schema, validation and assembly.
//!
//! Loading has two stages. [`Config::load`] parses the TOML (unknown keys are errors) and checks
//! everything that can be checked without touching the outside world: addresses, policies,
//! cross-references between sections. Every problem is reported, each as
//! `file:line: key: what is wrong`. The second stage, in `open.rs` ([`Config::open_realms`],
//! [`Config::open_providers`], [`Config::open_dictionary`]), builds what the config names;
//! `check-config` runs both stages, exactly as `serve` does before it binds.
//!
//! The first stage is a pipeline: `raw.rs` holds the serde types, one function per section
//! (`server.rs`, `directories.rs`, `providers.rs`, `policies.rs`, `settings.rs`) turns its raw
//! section into its typed part and reports to one collector (`locate.rs`), which finds every
//! key's line from the TOML parser's spans and makes [`ConfigError`]s (`error.rs`). `tests.rs`
//! pins the errors. Each directory type and provider class checks its own keys (see
//! `directory::registry`, `delivery::registry`); relative paths are relative to the directory
//! holding the config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::AuthSettings;
use crate::auth::policy::PolicySet;
use crate::delivery::Channel;
use crate::delivery::class::ProviderSettings;
use crate::directory::DirectorySettings;
use crate::radius::clients::ClientTable;
use crate::radius::settings::ServerSettings;
use crate::radius::upstream::Upstreams;
use locate::Errors;

mod directories;
mod error;
mod locate;
mod open;
mod policies;
mod providers;
mod raw;
mod server;
mod settings;

pub use crate::source_location::line_col;
pub use crate::store::config::StoreConfig;
pub use error::{ConfigError, ConfigErrors};

/// Providers by channel and name: (config, is default).
pub type ProviderTable = BTreeMap<Channel, BTreeMap<String, (ProviderConfig, bool)>>;

/// A directory definition, checked by its type (see `directory::registry`).
pub type DirectoryConfig = Arc<dyn DirectorySettings>;

/// A provider definition, checked by its class (see `delivery::registry`).
pub type ProviderConfig = Arc<dyn ProviderSettings>;

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
    /// The accounting addresses (`accounting_listen`, or its default from `listen`).
    pub accounting_listen: Vec<SocketAddr>,
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
    pub providers: ProviderTable,
    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// `[http]`: the LinOTP/privacyIDEA-compatible HTTP listener (off without `listen`).
    pub http: crate::http::HttpConfig,
    /// `[admin]`: the admin API and helpdesk page on the `[http]` listener (off by default).
    pub admin: crate::http::admin::AdminConfig,
    /// `[log] level`: the log filter when `RUST_LOG` is not set.
    pub log_level: Option<String>,
    /// `[radius_upstream.NAME]`: legacy RADIUS servers for passthru.
    pub upstreams: Upstreams,
    /// `[eap]`: EAP methods and their certificate (off without methods).
    pub eap: crate::eap::EapConfig,
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

    /// Checks config text as if read from `path`: each section in turn, every problem
    /// collected, none of the outside world touched.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Errors::new(path, text);
        let raw: raw::RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                errors.toml(e.span(), e.message());
                return Err(ConfigErrors(errors.list));
            }
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| base.join(p); // an absolute `p` replaces `base`
        let (listen, tls_listen) = server::listen(&raw.server, &mut errors);
        let accounting_listen = server::accounting_listen(&raw.server, &listen, &mut errors);
        let clients = server::clients(&raw.clients, &raw.server, &mut errors);
        let directories = directories::directories(&raw.directories, &resolve, &mut errors);
        let (realms, default_realm) =
            directories::realms(&raw.realms, &raw.directories, &mut errors);
        let providers = providers::providers(&raw.providers, &resolve, &mut errors);
        let upstreams = policies::upstreams(&raw.upstreams, &mut errors);
        let named = policies::Named {
            providers: &raw.providers,
            upstreams: &raw.upstreams,
        };
        let policies = policies::policies(&raw.policies, &named, &mut errors);
        let metrics_listen = settings::metrics(&raw.metrics, &mut errors);
        let http = settings::http(&raw.http, &resolve, &mut errors);
        let admin = settings::admin(&raw.admin, &mut errors);
        let eap = settings::eap(&raw.eap, &resolve, &mut errors);
        if admin.enabled && http.listen.is_empty() {
            errors.at(
                0..0,
                "admin.enabled",
                "the admin API is served on the [http] listener: set [http] listen",
            );
        }
        let log_level = settings::log(raw.log, &mut errors);
        settings::auth(&raw.auth, &mut errors);
        let store = settings::store(&raw.store, &resolve, &mut errors);
        let (Some(store), true) = (store, errors.list.is_empty()) else {
            return Err(ConfigErrors(errors.list));
        };
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            tls_listen,
            accounting_listen,
            server: server::resolved(raw.server, &resolve),
            store,
            clients,
            auth: raw.auth,
            policies,
            directories,
            realms,
            default_realm,
            providers,
            metrics_listen,
            http,
            admin,
            log_level,
            upstreams,
            eap,
        })
    }
}

#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod tests;
