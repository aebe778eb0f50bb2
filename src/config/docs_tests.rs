//! The docs name every key of the configuration with the default the code uses.
//!
//! The keys come from the code: the sections' serde types list them in their "unknown field"
//! error (every section refuses unknown keys), the policy actions from their table, the
//! directory types and provider classes from their registries. The defaults come from the
//! code too: the sections with a `Default` ([server], [auth], [http], [admin]) are serialized
//! and each value compared with the docs table's default column, written as TOML (`30`,
//! `true`, `"sqlite"`, `["127.0.0.1:1812"]`); a value the code leaves unset (a path, a limit
//! decided at start) may be described in words. Tables follow the docs' form: `| key | default | … |`,
//! several keys of one row as `` `a` / `b` `` with defaults `` `1` / `2` ``, or `` `a`, `b` ``
//! sharing one default.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::raw::{RawConfig, RawLog, RawPolicy, RawRealm};
use crate::auth::AuthSettings;
use crate::auth::policy::{
    ActionValue, DeliveryFailMode, LoginMode, Mfa, OtpPin, Scope, action_scopes,
};
use crate::http::HttpSettings;
use crate::http::admin::AdminSettings;
use crate::metrics::MetricsSettings;
use crate::radius::clients::ClientConfig;
use crate::radius::settings::ServerSettings;
use crate::radius::upstream::UpstreamConfig;
use crate::store::config::{
    DEFAULT_ACCOUNTING_DAYS, DEFAULT_AUDIT_DAYS, DEFAULT_MAX_OPEN_SESSIONS, DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_TIMEOUT, RawStore,
};

/// A docs page's text.
fn page(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/src")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A table row of the docs: the keys it documents, each with its default cell's text.
#[derive(Debug)]
struct Row {
    key: String,
    default: String,
}

/// Splits a table line into cells at the `|` outside code spans.
fn cells(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cell = String::new();
    let mut in_code = false;
    for c in line
        .trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .chars()
    {
        match c {
            '`' => {
                in_code = !in_code;
                cell.push(c);
            }
            '|' if !in_code => out.push(std::mem::take(&mut cell).trim().to_string()),
            _ => cell.push(c),
        }
    }
    out.push(cell.trim().to_string());
    out
}

/// The code spans of a text, in order.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The part of `page` under the first heading that contains `heading`, down to the next
/// heading of its level or above.
fn section(page: &str, heading: &str) -> Option<String> {
    let level = |line: &str| line.chars().take_while(|c| *c == '#').count();
    let mut lines = page.lines();
    let start = lines.find(|l| level(l) > 0 && l.contains(heading))?;
    let depth = level(start);
    let body: Vec<&str> = lines
        .take_while(|l| !(level(l) > 0 && level(l) <= depth && l.starts_with("#")))
        .collect();
    Some(body.join("\n"))
}

/// The rows of every `| key | … default … |` table of a section. A row's keys are the code
/// spans of its key columns (`key` or `action`, and LinOTP's spelling in a `LinOTP key` column).
fn rows(section: &str) -> Vec<Row> {
    let lines: Vec<&str> = section.lines().collect();
    let mut out = vec![];
    let mut columns: Option<(usize, Vec<usize>)> = None;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        if lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with("|---"))
        {
            let header = cells(line);
            let keys = (0..header.len())
                .filter(|n| header[*n].ends_with("key") || header[*n] == "action")
                .collect();
            columns = header
                .iter()
                .position(|c| c == "default")
                .map(|d| (d, keys));
            continue;
        }
        let (Some((default_column, key_columns)), false) = (&columns, line.starts_with("|---"))
        else {
            continue;
        };
        let row = cells(line);
        let Some(default) = row.get(*default_column) else {
            continue;
        };
        // `a` / `b` with defaults `1` / `2`: one default each.
        let first = code_spans(row.first().map_or("", String::as_str));
        let defaults: Vec<&str> = default.split(" / ").collect();
        let paired =
            row.first().is_some_and(|k| k.contains(" / ")) && defaults.len() == first.len();
        for column in key_columns {
            for (n, key) in code_spans(row.get(*column).map_or("", String::as_str))
                .into_iter()
                .enumerate()
            {
                let default = if paired && *column == 0 {
                    defaults[n]
                } else {
                    default.as_str()
                };
                out.push(Row {
                    key,
                    default: default.trim().to_string(),
                });
            }
        }
    }
    out
}

/// The keys a serde type accepts, from the error it gives for one it does not.
fn keys_of<T: DeserializeOwned>() -> Vec<String> {
    let message = match toml::from_str::<T>("zz_no_such_key = 0") {
        Ok(_) => String::new(),
        Err(e) => e.message().to_string(),
    };
    let list = message.split_once("expected").map_or("", |(_, list)| list);
    let keys = code_spans(list);
    assert!(!keys.is_empty(), "no key list in {message:?}");
    keys
}

/// A default as the docs write it: as TOML, arrays with `", "` between items, whole seconds
/// without a fraction.
fn as_toml(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Number(n)
            if n.as_f64().is_some_and(|f| f.fract() == 0.0) && n.is_f64() =>
        {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(as_toml).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// What is wrong with the docs of one section: each key of `keys` must have a row, and where
/// `defaults` has a value for it, the row's default must be that value.
struct Check {
    problems: Vec<String>,
}

impl Check {
    fn keys(&mut self, page_name: &str, heading: &str, keys: &[String]) -> Vec<Row> {
        let Some(text) = section(&page(page_name), heading) else {
            self.problems
                .push(format!("{page_name}: no heading with {heading:?}"));
            return vec![];
        };
        let rows = rows(&text);
        for key in keys {
            if !rows.iter().any(|r| &r.key == key) {
                self.problems.push(format!(
                    "{page_name} {heading}: key `{key}` is not in the table"
                ));
            }
        }
        rows
    }

    fn defaults<T: Serialize + DeserializeOwned>(
        &mut self,
        page_name: &str,
        heading: &str,
        defaults: &T,
    ) {
        let rows = self.keys(page_name, heading, &keys_of::<T>());
        let serde_json::Value::Object(values) = serde_json::to_value(defaults).unwrap_or_default()
        else {
            panic!("{heading}: the defaults do not serialize to a table");
        };
        for (key, value) in &values {
            self.default(page_name, heading, &rows, key, value);
        }
    }

    fn default(
        &mut self,
        page_name: &str,
        heading: &str,
        rows: &[Row],
        key: &str,
        value: &serde_json::Value,
    ) {
        if value.is_null() {
            return;
        }
        let Some(row) = rows.iter().find(|r| r.key == key) else {
            return; // reported by `keys`
        };
        let expected = as_toml(value);
        let written = code_spans(&row.default)
            .into_iter()
            .next()
            .unwrap_or_else(|| row.default.clone());
        if written != expected {
            self.problems.push(format!(
                "{page_name} {heading}: `{key}` defaults to `{expected}` in the code, the docs say {:?}",
                row.default
            ));
        }
    }

    /// A section without a `Default`: the values serde fills in for the keys `required` (TOML)
    /// leaves out, serialized, each compared with the docs' default.
    fn serde_defaults<T: Serialize + DeserializeOwned>(
        &mut self,
        page_name: &str,
        heading: &str,
        required: &str,
    ) {
        let given: toml::Table = toml::from_str(required).unwrap_or_default();
        let section: T = toml::from_str(required)
            .unwrap_or_else(|e| panic!("{heading}: {required:?} does not load: {e}"));
        let rows = self.keys(page_name, heading, &keys_of::<T>());
        let serde_json::Value::Object(values) = serde_json::to_value(&section).unwrap_or_default()
        else {
            panic!("{heading}: the section does not serialize to a table");
        };
        for (key, value) in values.iter().filter(|(key, _)| !given.contains_key(*key)) {
            self.default(page_name, heading, &rows, key, value);
        }
    }

    /// Keys documented in prose: each must be written as `` `key` ``.
    fn mentioned(&mut self, page_name: &str, what: &str, keys: &[String]) {
        let text = page(page_name);
        for key in keys {
            if !text.contains(&format!("`{key}`")) {
                self.problems
                    .push(format!("{page_name}: {what} key `{key}` is not mentioned"));
            }
        }
    }
}

impl Check {
    fn new() -> Check {
        Check { problems: vec![] }
    }

    fn assert_none(self) {
        assert!(
            self.problems.is_empty(),
            "the docs and the code disagree:\n{}",
            self.problems.join("\n")
        );
    }
}

#[test]
fn the_docs_name_every_section_s_keys_with_the_code_s_defaults() {
    let mut check = Check::new();
    let config = "configuration.md";

    // Every section has a heading of its own.
    let headings = page(config);
    for section in keys_of::<RawConfig>() {
        let named = [
            format!("`[{section}]`"),
            format!("`[[{section}]]`"),
            format!("`[{section}."),
        ];
        if !headings
            .lines()
            .any(|l| l.starts_with('#') && named.iter().any(|n| l.contains(n.as_str())))
        {
            check
                .problems
                .push(format!("{config}: no heading for the section [{section}]"));
        }
    }

    check.defaults(config, "`[server]`", &ServerSettings::default());
    check.defaults(config, "`[auth]`", &AuthSettings::default());
    check.defaults(config, "`[http]`", &HttpSettings::default());
    check.defaults("http.md", "The listener", &HttpSettings::default());
    check.defaults(config, "`[admin]`", &AdminSettings::default());
    check.defaults(config, "`[eap]`", &crate::eap::EapSettings::default());
    check.keys(config, "`[metrics]`", &keys_of::<MetricsSettings>());
    check.keys(config, "`[log]`", &keys_of::<RawLog>());
    check.serde_defaults::<ClientConfig>(config, "`[[client]]`", "address = \"192.0.2.1\"");
    check.serde_defaults::<UpstreamConfig>(
        config,
        "`[radius_upstream.NAME]`",
        "address = \"192.0.2.2\"\nsecret = \"s\"",
    );
    let store = check.keys(config, "`[store]`", &keys_of::<RawStore>());
    for (key, value) in [
        ("audit_days", serde_json::json!(DEFAULT_AUDIT_DAYS)),
        (
            "accounting_days",
            serde_json::json!(DEFAULT_ACCOUNTING_DAYS),
        ),
        (
            "max_open_sessions_per_nas",
            serde_json::json!(DEFAULT_MAX_OPEN_SESSIONS),
        ),
        ("pool_size", serde_json::json!(DEFAULT_POOL_SIZE)),
        (
            "statement_timeout",
            serde_json::json!(DEFAULT_STATEMENT_TIMEOUT),
        ),
    ] {
        check.default(config, "`[store]`", &store, key, &value);
    }
    check.keys("directories.md", "# Directories", &keys_of::<RawRealm>());
    check.mentioned("policies.md", "[[policy]]", &keys_of::<RawPolicy>());
    check.assert_none();
}

/// Each directory type and provider class: its keys, under its heading.
#[test]
fn the_docs_name_every_directory_type_s_and_provider_class_s_keys() {
    let mut check = Check::new();
    let resolve = |path: &Path| path.to_path_buf();
    let unknown: toml::Table = toml::from_str("zz_no_such_key = 0").unwrap_or_default();
    let keys_in = |problems: Vec<crate::backend::Problem>| -> Vec<String> {
        let message: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        let keys = code_spans(
            message
                .join(" ")
                .split_once("expected")
                .map_or("", |(_, l)| l),
        );
        assert!(!keys.is_empty(), "no key list in {message:?}");
        keys
    };
    for kind in crate::directory::registry::TYPES {
        let Err(problems) = (kind.check)(&unknown, &resolve) else {
            panic!("directory type {} took an unknown key", kind.name);
        };
        let heading = format!("`type = \"{}\"`", kind.name);
        check.keys("directories.md", &heading, &keys_in(problems));
    }
    for class in crate::delivery::registry::CLASSES {
        let Err(problems) = (class.check)(&unknown, &resolve) else {
            panic!("provider class {} took an unknown key", class.name);
        };
        check.keys("providers.md", class.name, &keys_in(problems));
    }
    check.assert_none();
}

/// Policy actions: each with its scope, and the defaults the engine falls back on.
#[test]
fn the_docs_list_every_policy_action_with_its_scope_and_default() {
    let mut check = Check::new();
    let actions = check.keys(
        "policies.md",
        "# Policies",
        &action_scopes()
            .map(|(name, _)| name.to_string())
            .collect::<Vec<_>>(),
    );
    let policies = section(&page("policies.md"), "# Policies").unwrap_or_default();
    for (name, scope) in action_scopes() {
        let scope = if scope == Scope::Enrollment {
            "enrollment"
        } else {
            "authentication"
        };
        let documented = policies.lines().any(|line| {
            let row = cells(line);
            row.first().is_some_and(|k| k == &format!("`{name}`"))
                && row.get(1).is_some_and(|s| s == scope)
        });
        if !documented {
            check.problems.push(format!(
                "policies.md: action `{name}` is not listed with scope {scope}"
            ));
        }
    }
    check.action_default::<OtpPin>(&actions, "otppin");
    check.action_default::<Mfa>(&actions, "mfa");
    check.action_default::<DeliveryFailMode>(&actions, "delivery_failmode");
    check.action_default::<LoginMode>(&actions, "login_mode");
    let auth = AuthSettings::default();
    for (action, default) in [
        ("max_fail", u64::from(auth.max_fail)),
        ("lockout_duration", auth.lockout_duration),
    ] {
        let row = actions.iter().find(|r| r.key == action);
        if !row.is_some_and(|r| r.default.contains(&format!("({default})"))) {
            check.problems.push(format!(
                "policies.md: action `{action}` falls back on [auth] {action} ({default})"
            ));
        }
    }
    check.assert_none();
}

impl Check {
    /// An action's default in the docs, read by the action's own syntax, is the value the
    /// engine takes when no policy sets it.
    fn action_default<T: ActionValue + Default + PartialEq + std::fmt::Debug>(
        &mut self,
        rows: &[Row],
        action: &str,
    ) {
        let written = rows
            .iter()
            .find(|r| r.key == action)
            .and_then(|r| code_spans(&r.default).into_iter().next());
        let parsed = written.as_deref().map(T::parse_action);
        if parsed != Some(Ok(T::default())) {
            self.problems.push(format!(
                "policies.md: action `{action}` defaults to {:?} in the code, the docs say {written:?}",
                T::default()
            ));
        }
    }
}

/// `conf/tessera.toml` restates some defaults so a reader sees them; each must be the code's.
#[test]
fn the_shipped_config_restates_the_code_s_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/tessera.toml");
    let shipped: toml::Table = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| toml::from_str(&text).ok())
        .unwrap_or_else(|| panic!("{} does not parse", path.display()));
    let defaults = [
        ("server", serde_json::to_value(ServerSettings::default())),
        ("auth", serde_json::to_value(AuthSettings::default())),
        ("http", serde_json::to_value(HttpSettings::default())),
        ("admin", serde_json::to_value(AdminSettings::default())),
    ];
    let mut problems = vec![];
    for (section, defaults) in defaults {
        let defaults = defaults.unwrap_or_default();
        let Some(toml::Value::Table(keys)) = shipped.get(section) else {
            continue;
        };
        for (key, value) in keys {
            let default = &defaults[key.as_str()];
            let value = serde_json::to_value(value).unwrap_or_default();
            if !default.is_null() && *default != value {
                problems.push(format!(
                    "[{section}] {key} = {value} in conf/tessera.toml, the code's default is {default}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_table_row_names_its_keys_and_their_defaults() {
    let rows = rows(
        "| key | default | meaning |\n|---|---|---|\n\
         | `a` / `b` | `1` / `2` | x |\n| `c`, `d` | none | y |\n| `e` (or `E`) | `\"x|y\"` (off) | z |",
    );
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.key.as_str(), r.default.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", "`1`"),
            ("b", "`2`"),
            ("c", "none"),
            ("d", "none"),
            ("e", "`\"x|y\"` (off)"),
            ("E", "`\"x|y\"` (off)"),
        ]
    );
}
