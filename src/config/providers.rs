//! `[provider.CHANNEL.NAME]`: each provider's keys checked by its class (found in
//! `delivery::registry`), the default of each channel, and `config_json` — LinOTP's provider
//! JSON pasted verbatim, merged into the table's TOML keys so every class accepts it.

use toml::Spanned;

use super::locate::Errors;
use super::raw::{RawProvider, RawProviders};
use super::{ProviderConfig, ProviderTable, line_col};
use crate::backend::{Resolve, spelt_as_named};
use crate::delivery::{Channel, registry};

/// Every `[provider.CHANNEL.NAME]`, checked, by channel and name.
pub(super) fn providers(
    raw: &RawProviders,
    resolve: Resolve<'_>,
    errors: &mut Errors<'_>,
) -> ProviderTable {
    let mut providers = ProviderTable::new();
    for channel in [Channel::Sms, Channel::Email] {
        let table = raw.of(channel);
        // Without `default = true`, the first provider in the file is the default (the table
        // is sorted by name, so find it by position).
        let first_in_file = table
            .iter()
            .min_by_key(|(_, spanned)| spanned.span().start)
            .map(|(name, _)| name.as_str());
        let any_marked = table.values().any(|p| p.get_ref().default);
        let mut defaults = 0;
        for (name, spanned) in table {
            if spanned.get_ref().default {
                defaults += 1;
                if defaults > 1 {
                    errors.at(
                        spanned.span(),
                        format!("provider.{channel}.{name}.default"),
                        format!("only one {channel} provider can be the default"),
                    );
                }
            }
            if let Some(config) = provider(channel, name, spanned, resolve, errors) {
                let default =
                    spanned.get_ref().default || (!any_marked && first_in_file == Some(name));
                providers
                    .entry(channel)
                    .or_default()
                    .insert(name.clone(), (config, default));
            }
        }
    }
    providers
}

/// One provider: `config_json` merged into its keys, the keys checked by its class.
fn provider(
    channel: Channel,
    name: &str,
    spanned: &Spanned<RawProvider>,
    resolve: Resolve<'_>,
    errors: &mut Errors<'_>,
) -> Option<ProviderConfig> {
    let key = format!("provider.{channel}.{name}");
    let provider = spanned.get_ref();
    let mut keys = provider.rest.clone();
    if let Err((line, message)) = merge_config_json(errors.text(), spanned.span(), &mut keys) {
        errors.at_line(line, format!("{key}.config_json"), message);
        return None;
    }
    let class = match registry::find(channel, &provider.class) {
        Ok(class) => class,
        Err(message) => {
            errors.at(spanned.span(), key, message);
            return None;
        }
    };
    match (class.check)(&keys, resolve) {
        Ok(settings) => Some(settings),
        Err(problems) => {
            let table = ["provider", channel.as_str(), name];
            errors.backend(&table, spanned.span(), spelt_as_named, problems);
            None
        }
    }
}

/// Moves the keys of `config_json` (LinOTP's provider JSON, pasted verbatim) into `keys`.
///
/// A key given both in the JSON and as a TOML key is an error rather than a silent choice.
/// JSON `null`s are dropped (TOML has none; LinOTP treats them as absent). On error, returns
/// the file line of the problem (found by locating `config_json` after the provider's header
/// and adding the JSON's own line number) and a message with the JSON line and column.
fn merge_config_json(
    text: &str,
    span: std::ops::Range<usize>,
    keys: &mut toml::Table,
) -> Result<(), (usize, String)> {
    let Some(value) = keys.remove("config_json") else {
        return Ok(());
    };
    let header_line = line_col(text, span.start).0;
    let Some(json) = value.as_str() else {
        return Err((
            header_line,
            "must be a string: config_json = '''{ ... }'''".into(),
        ));
    };
    let parsed: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        let json_start = json_start_line(text, span.start).unwrap_or(header_line);
        let line = json_start + e.line().saturating_sub(1);
        let hint = if json.contains('\'') {
            " (JSON needs double quotes, not single quotes)"
        } else {
            ""
        };
        (
            line,
            format!(
                "invalid JSON at line {}, column {} of the JSON: {}{hint}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ),
        )
    })?;
    let serde_json::Value::Object(map) = parsed else {
        return Err((header_line, "must hold a JSON object { ... }".into()));
    };
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        if keys.contains_key(&k) {
            return Err((
                header_line,
                format!("{k:?} is given both in config_json and as a TOML key"),
            ));
        }
        let v = toml::Value::try_from(&v).map_err(|e| (header_line, format!("{k:?}: {e}")))?;
        keys.insert(k, v);
    }
    Ok(())
}

/// The file line where the JSON text of the first `config_json` after `from` begins.
fn json_start_line(text: &str, from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    let at = from + rest.find("config_json")?;
    let after_key = text.get(at..)?;
    let eq = at + after_key.find('=')?;
    let value = text.get(eq + 1..)?;
    let skipped = value.len() - value.trim_start_matches([' ', '\t']).len();
    let mut start = eq + 1 + skipped;
    let value = text.get(start..)?;
    for quotes in ["'''", "\"\"\""] {
        if let Some(inner) = value.strip_prefix(quotes) {
            start += quotes.len();
            // TOML trims a newline right after the opening quotes of a multi-line string.
            if inner.starts_with('\n') {
                start += 1;
            } else if inner.starts_with("\r\n") {
                start += 2;
            }
            break;
        }
    }
    Some(line_col(text, start).0)
}

/// serde_json's message without its trailing " at line L column C" (we say it ourselves).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_string(),
        None => message.to_string(),
    }
}
