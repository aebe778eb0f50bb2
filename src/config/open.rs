//! The second stage of loading: opening what a checked config names — directories (and the
//! realms over them), providers, the RADIUS dictionary — and the checks that need them (reply
//! attributes against the dictionary). `serve`, `check-config` and a reload all run this stage
//! after [`Config::parse`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Config, ConfigError, ConfigErrors};
use crate::delivery::redact::{Redacting, Redactor};
use crate::delivery::{Provider, Providers};
use crate::directory::users_file::UsersFileConfig;
use crate::directory::{Directory, Realm, Realms};
use crate::radius::dictionary::{Dictionary, DictionaryError};

impl Config {
    /// Problems found while reading files the configuration names (a key and its message),
    /// as errors of the configuration file (no line: the file named is where the problem is).
    fn file_errors<K: Into<String>>(&self, errors: Vec<(K, String)>) -> ConfigErrors {
        ConfigErrors(
            errors
                .into_iter()
                .map(|(key, message)| ConfigError {
                    file: self.path.clone(),
                    line: 0,
                    key: key.into(),
                    message,
                })
                .collect(),
        )
    }

    /// Reads RadSec's certificate files and builds its TLS configuration (none when
    /// `tls_listen` is empty).
    pub fn open_tls(&self) -> Result<Option<crate::radius::tls::TlsServer>, ConfigErrors> {
        crate::radius::tls::open(&self.server, &self.clients)
            .map_err(|errors| self.file_errors(errors))
    }

    /// Reads `[eap]`'s certificate and key; `None` when EAP is off.
    pub fn open_eap(&self) -> Result<Option<crate::eap::EapServer>, ConfigErrors> {
        crate::eap::settings::open(&self.eap).map_err(|errors| self.file_errors(errors))
    }

    /// Reads `[http]`'s certificate and key; `None` when the listener speaks plain HTTP.
    pub fn open_http_tls(&self) -> Result<Option<crate::http::settings::HttpTls>, ConfigErrors> {
        crate::http::settings::open_tls(&self.http).map_err(|errors| self.file_errors(errors))
    }

    /// Opens every directory and builds the realms.
    pub fn open_realms(&self) -> Result<Realms, ConfigErrors> {
        let mut opened: BTreeMap<&str, Arc<dyn Directory>> = BTreeMap::new();
        let mut errors = vec![];
        for (name, config) in &self.directories {
            match config.open(name) {
                Ok(d) => {
                    opened.insert(name, Arc::new(crate::directory::Metered(d)));
                }
                Err(message) => errors.push(ConfigError {
                    file: self.path.clone(),
                    line: 0,
                    key: format!("directory.{name}"),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let realms = self
            .realms
            .iter()
            .map(|r| Realm {
                name: r.name.clone(),
                directories: r
                    .directories
                    .iter()
                    .filter_map(|d| opened.get(d.as_str()).cloned())
                    .collect(),
            })
            .collect();
        Ok(Realms::new(
            realms,
            self.default_realm,
            self.auth.split_at_sign,
        ))
    }

    /// The path of the users_file directory `name`, or of the only one when `name` is `None`
    /// (for `tessera user add|passwd|del`).
    pub fn users_file(&self, name: Option<&str>) -> Result<PathBuf, String> {
        let files: Vec<(&String, &UsersFileConfig)> = self
            .directories
            .iter()
            .filter_map(|(n, d)| Some((n, d.downcast_ref::<UsersFileConfig>()?)))
            .collect();
        let names = || {
            files
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (name, files.as_slice()) {
            (Some(name), _) => files
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, c)| c.path.clone())
                .ok_or_else(|| {
                    format!(
                        "{}: no users_file directory {name:?} (there are: {})",
                        self.path.display(),
                        names()
                    )
                }),
            (None, [(_, c)]) => Ok(c.path.clone()),
            (None, []) => Err(format!(
                "{}: no users_file directory is configured; name the file with --file",
                self.path.display()
            )),
            (None, _) => Err(format!(
                "{}: several users_file directories ({}); pick one with --directory",
                self.path.display(),
                names()
            )),
        }
    }

    /// The realms (lower-cased names, config order) whose directories include a users_file
    /// directory reading `path`: whose users `tessera user del` removes from that file
    /// (paths compared as given, then canonicalised when both exist).
    pub fn realms_of_users_file(&self, path: &Path) -> Vec<String> {
        let same = |other: &Path| {
            other == path
                || matches!(
                    (other.canonicalize(), path.canonicalize()),
                    (Ok(a), Ok(b)) if a == b
                )
        };
        let served: Vec<&String> = self
            .directories
            .iter()
            .filter(|(_, d)| {
                d.downcast_ref::<UsersFileConfig>()
                    .is_some_and(|c| same(&c.path))
            })
            .map(|(n, _)| n)
            .collect();
        self.realms
            .iter()
            .filter(|r| r.directories.iter().any(|d| served.contains(&d)))
            .map(|r| r.name.clone())
            .collect()
    }

    /// Loads the RADIUS dictionary named by `[server] dictionary`, or the built-in copy of
    /// `dictionaries/` when the key is absent. Each bad line is one error at its file:line.
    pub fn open_dictionary(&self) -> Result<Dictionary, ConfigErrors> {
        let loaded = match &self.server.dictionary {
            Some(path) => Dictionary::load(path),
            None => Dictionary::builtin(),
        };
        loaded.map_err(|errors| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|e| match e {
                        DictionaryError::Line {
                            file,
                            line,
                            problem,
                        } => ConfigError {
                            file,
                            line,
                            key: "dictionary".into(),
                            message: problem.to_string(),
                        },
                        DictionaryError::Read { file, source } => ConfigError {
                            file: self.path.clone(),
                            line: 0,
                            key: "server.dictionary".into(),
                            message: format!("cannot read {}: {source}", file.display()),
                        },
                        other => ConfigError {
                            file: self.path.clone(),
                            line: 0,
                            key: "server.dictionary".into(),
                            message: other.to_string(),
                        },
                    })
                    .collect(),
            )
        })
    }

    /// Checks the policies' reply attributes against the dictionary: every name must exist,
    /// and a value without placeholders must encode as the attribute's type.
    pub fn check_reply_attributes(&self, dictionary: &Dictionary) -> Result<(), ConfigErrors> {
        let mut errors = vec![];
        for policy in self.policies.iter() {
            for template in policy.actions.reply.iter().flatten() {
                let problem = if dictionary.attribute(&template.attribute).is_none() {
                    Some(format!(
                        "no dictionary defines attribute {:?}",
                        template.attribute
                    ))
                } else if let Some(value) = template.constant() {
                    dictionary
                        .encode(&template.attribute, value)
                        .err()
                        .map(|e| e.to_string())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    errors.push(ConfigError {
                        file: self.path.clone(),
                        line: 0,
                        key: "policy.reply".into(),
                        message: format!("policy {:?}: {problem}", policy.name),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Builds every provider (reads CA files, sets up HTTP and SMTP clients).
    pub fn open_providers(&self) -> Result<Providers, ConfigErrors> {
        let mut providers = Providers::default();
        let mut errors = vec![];
        for (channel, named) in &self.providers {
            for (name, (config, default)) in named {
                // Everything the peer says passes the provider's secrets' redaction.
                let provider = config.open(name).map(|p| {
                    let redactor = Redactor::new(config.secret_values());
                    Arc::new(Redacting::new(p, redactor)) as Arc<dyn Provider>
                });
                match provider {
                    Ok(p) => providers.insert(*channel, p, *default),
                    Err(message) => errors.push(ConfigError {
                        file: self.path.clone(),
                        line: 0,
                        key: format!("provider.{channel}.{name}"),
                        message,
                    }),
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(providers)
    }
}
