//! The small sections: `[auth]`, `[metrics]`, `[http]`, `[admin]`, `[log]` and `[store]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::locate::Errors;
use super::raw::RawLog;
use crate::auth::AuthSettings;
use crate::metrics::MetricsSettings;
use crate::store::config::{RawStore, StoreConfig};

/// `[auth]`: the engine's defaults within their ranges.
pub(super) fn auth(auth: &AuthSettings, errors: &mut Errors<'_>) {
    if !(6..=9).contains(&auth.otp_digits) {
        errors.at(0..0, "auth.otp_digits", "must be between 6 and 9");
    }
    if auth.max_fail == 0 {
        errors.at(0..0, "auth.max_fail", "must be at least 1");
    }
    let window_max = crate::auth::backoff::IDENTITY_WINDOW_MAX;
    if !(1..=window_max).contains(&auth.backoff_identity_window) {
        errors.at(
            0..0,
            "auth.backoff_identity_window",
            format!("must be between 1 and {window_max} (seconds: it slows, it must not lock)"),
        );
    }
}

/// `[metrics] listen`, parsed.
pub(super) fn metrics(metrics: &MetricsSettings, errors: &mut Errors<'_>) -> Option<SocketAddr> {
    let listen = metrics.listen.as_ref()?;
    match listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.at(
                listen.span(),
                "metrics.listen",
                format!(
                    "{:?} is not an address:port, e.g. \"127.0.0.1:9812\"",
                    listen.get_ref()
                ),
            );
            None
        }
    }
}

/// `[http]`, checked by its own settings type, paths resolved; the default (off) on problems.
pub(super) fn http(
    http: &crate::http::HttpSettings,
    resolve: &dyn Fn(&Path) -> PathBuf,
    errors: &mut Errors<'_>,
) -> crate::http::HttpConfig {
    http.check(resolve).unwrap_or_else(|problems| {
        for (span, key, message) in problems {
            errors.at(span, key, message);
        }
        crate::http::HttpConfig::default()
    })
}

/// `[eap]`, checked by its own settings type, paths resolved; the default (off) on problems.
pub(super) fn eap(
    eap: &crate::eap::EapSettings,
    resolve: &dyn Fn(&Path) -> PathBuf,
    errors: &mut Errors<'_>,
) -> crate::eap::EapConfig {
    eap.check(resolve).unwrap_or_else(|problems| {
        for (span, key, message) in problems {
            errors.at(span, key, message);
        }
        crate::eap::EapConfig::default()
    })
}

/// `[admin]`, checked by its own settings type; the default (off) on problems.
pub(super) fn admin(
    admin: &crate::http::admin::AdminSettings,
    errors: &mut Errors<'_>,
) -> crate::http::admin::AdminConfig {
    admin.check().unwrap_or_else(|problems| {
        for (span, key, message) in problems {
            errors.at(span, key, message);
        }
        crate::http::admin::AdminConfig::default()
    })
}

/// `[log] level`, when it is a filter.
pub(super) fn log(log: RawLog, errors: &mut Errors<'_>) -> Option<String> {
    let level = log.level?;
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(level.get_ref()) {
        errors.at(
            level.span(),
            "log.level",
            format!("{:?} is not a log filter: {e}", level.get_ref()),
        );
    }
    Some(level.into_inner())
}

/// `[store]`, checked by the store's own config type, paths resolved.
pub(super) fn store(
    store: &RawStore,
    resolve: &dyn Fn(&Path) -> PathBuf,
    errors: &mut Errors<'_>,
) -> Option<StoreConfig> {
    match store.check(resolve) {
        Ok(store) => Some(store),
        Err(problems) => {
            for (span, key, message) in problems {
                errors.at(span, key, message);
            }
            None
        }
    }
}
