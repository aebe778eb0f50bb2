//! Provider tables: which class a `[provider.CHANNEL.NAME]` names, its keys checked by that
//! class's config struct, and `config_json` — LinOTP's provider JSON pasted verbatim, merged
//! into the table's TOML keys so every class accepts it.
//!
//! Each class owns its config struct in `delivery/`; this file only dispatches on the class
//! name and reports problems as strings for `super` to locate.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::locate::Errors;
use super::raw::{RawProvider, RawProviders};
use super::{ProviderConfig, ProviderTable, from_table, line_col};
use crate::delivery::Channel;
use crate::delivery::device_sms::DeviceSmsConfig;
use crate::delivery::file::FileProviderConfig;
use crate::delivery::http_sms::HttpSmsConfig;
use crate::delivery::smpp_sms::SmppSmsConfig;
use crate::delivery::smtp_email::SmtpEmailConfig;
use crate::delivery::smtp_sms::SmtpSmsConfig;

/// The provider classes tessera knows, by channel, for error messages.
const SMS_CLASSES: &str =
    "file, HttpSMSProvider, SmtpSMSProvider, SMPPSMSProvider, DeviceSMSProvider";
const EMAIL_CLASSES: &str = "file, SMTPEmailProvider";

/// Every `[provider.CHANNEL.NAME]`, checked, by channel and name.
pub(super) fn providers(
    raw: &RawProviders,
    resolve: &dyn Fn(&Path) -> PathBuf,
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
            let key = format!("provider.{channel}.{name}");
            if spanned.get_ref().default {
                defaults += 1;
                if defaults > 1 {
                    errors.at(
                        spanned.span(),
                        format!("{key}.default"),
                        format!("only one {channel} provider can be the default"),
                    );
                }
            }
            if let Some(config) = provider(channel, &key, spanned, resolve, errors) {
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
    key: &str,
    spanned: &Spanned<RawProvider>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    errors: &mut Errors<'_>,
) -> Option<ProviderConfig> {
    let provider = spanned.get_ref();
    let mut keys = provider.rest.clone();
    if let Err((line, message)) = merge_config_json(errors.text(), spanned.span(), &mut keys) {
        errors.at_line(line, format!("{key}.config_json"), message);
        return None;
    }
    match provider_config(channel, &provider.class, &keys, resolve) {
        Ok(c) => Some(c),
        Err(message) => {
            errors.at(spanned.span(), key, message);
            None
        }
    }
}

/// Checks one provider's keys for its class. LinOTP's dotted class paths
/// (`smsprovider.HttpSMSProvider.HttpSMSProvider`, `linotp.lib.emailprovider.SMTPEmailProvider`)
/// name the same class as their last part.
fn provider_config(
    channel: Channel,
    class: &str,
    keys: &toml::Table,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ProviderConfig, String> {
    let short = class.rsplit('.').next().unwrap_or(class);
    match (channel, short) {
        (_, "file" | "FileSMSProvider") => from_table::<FileProviderConfig>(keys).map(|mut c| {
            c.path = resolve(&c.path);
            ProviderConfig::File(c)
        }),
        (Channel::Sms, "HttpSMSProvider") => {
            let mut c = from_table::<HttpSmsConfig>(keys)?;
            c.check()?;
            c.resolve_paths(resolve);
            Ok(ProviderConfig::HttpSms(c))
        }
        (Channel::Sms, "SmtpSMSProvider") => {
            let mut c = from_table::<SmtpSmsConfig>(keys)?;
            c.endpoint()?;
            c.ca_file = c.ca_file.as_deref().map(resolve);
            Ok(ProviderConfig::SmtpSms(c))
        }
        (Channel::Sms, "SMPPSMSProvider") => {
            let c = from_table::<SmppSmsConfig>(keys)?;
            c.check()?;
            Ok(ProviderConfig::SmppSms(c))
        }
        (Channel::Sms, "DeviceSMSProvider") => {
            let mut c = from_table::<DeviceSmsConfig>(keys)?;
            c.check()?;
            c.device = c.device.as_deref().map(resolve);
            c.config_file = c.config_file.as_deref().map(resolve);
            Ok(ProviderConfig::DeviceSms(c))
        }
        (Channel::Email, "SMTPEmailProvider") => {
            let mut c = from_table::<SmtpEmailConfig>(keys)?;
            c.endpoint()?;
            c.resolve_paths(resolve);
            Ok(ProviderConfig::SmtpEmail(c))
        }
        (
            Channel::Email,
            "HttpSMSProvider" | "SmtpSMSProvider" | "SMPPSMSProvider" | "DeviceSMSProvider",
        ) => Err(format!(
            "{class:?} is an SMS provider class: define it as [provider.sms.NAME]"
        )),
        (Channel::Sms, "SMTPEmailProvider") => Err(format!(
            "{class:?} is an e-mail provider class: define it as [provider.email.NAME]"
        )),
        (Channel::Sms, _) => Err(format!(
            "unknown provider class {class:?} (known: {SMS_CLASSES})"
        )),
        (Channel::Email, _) => Err(format!(
            "unknown provider class {class:?} (known: {EMAIL_CLASSES})"
        )),
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
