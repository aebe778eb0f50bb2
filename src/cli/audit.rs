//! `tessera audit`: the audit trail, newest first — one row per decision, never a password or
//! a code. Also the row an admin change writes (`audit_change`, for `tessera token …` and
//! `token identities --fix`), with who ran it.

use clap::Args;
use serde_json::json;
use tessera::admin::Actor;
use tessera::admin::audit::{Change, record};
use tessera::config::Config;
use tessera::rfc3339;
use tessera::store::audit::AuditAction;
use tessera::store::{Store, Token};

use super::{Failure, now, print_json, print_table};

/// `audit` options.
#[derive(Args)]
pub struct AuditArgs {
    /// Only this user's rows.
    #[arg(long)]
    user: Option<String>,
    /// Only rows since: a duration back from now (`90s`, `15m`, `2h`, `7d`), a date
    /// (`2026-11-23`), a UTC time (`2026-11-23T10:00:00Z`) or Unix seconds.
    #[arg(long)]
    since: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parses `--since` into Unix seconds (the admin layer's time forms).
pub fn parse_since(text: &str, now: i64) -> Option<i64> {
    tessera::admin::audit::parse_time(text, now)
}

/// Runs `tessera audit`.
pub fn run(config: &Config, args: AuditArgs) -> Result<(), Failure> {
    let since = match &args.since {
        Some(text) => Some(parse_since(text, now()).ok_or_else(|| {
            Failure::No(format!("tessera: --since {text:?}: expected e.g. 15m, 2h, 7d, 2026-11-23 or 2026-11-23T10:00:00Z"))
        })?),
        None => None,
    };
    let runtime = super::runtime()?;
    let store = super::existing_store(&runtime, config)?;
    let rows = runtime
        .block_on(async {
            store
                .audit_rows(args.user.as_deref(), since, args.limit)
                .await
        })
        .map_err(|e| Failure::Error(e.to_string()))?;
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter()
                .map(|r| {
                    json!({"time": rfc3339::format(r.time), "client": r.client, "user": r.user, "realm": r.realm,
                           "serial": r.serial, "action": r.action, "result": r.result, "reason": r.reason})
                })
                .collect(),
        ));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                rfc3339::format(r.time),
                r.client.clone(),
                format!("{}@{}", r.user, r.realm),
                r.serial.clone().unwrap_or_else(|| "-".into()),
                r.action.clone(),
                r.result.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "TIME", "CLIENT", "USER", "SERIAL", "ACTION", "RESULT", "REASON",
        ],
        &table,
    );
    Ok(())
}

/// Who runs this command, for the audit: the OS user (by uid, named from /etc/passwd), and
/// who became it with sudo.
pub(super) fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
    });
    let mut who = match (name, uid) {
        (Some(name), _) => name,
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "unknown user".into(),
    };
    if let Ok(sudo) = std::env::var("SUDO_USER") {
        who.push_str(&format!(" (sudo by {sudo})"));
    }
    who
}

/// Writes the audit row of an admin change the command line makes outside the admin layer
/// (`set-pin`, `identities --fix`): who ran it (the OS user), what, which serial and whose
/// token, and how it went. Waits for the commit: the command exits right after.
pub(super) async fn audit_change(
    store: &dyn Store,
    action: AuditAction,
    token: Option<&Token>,
    serial: Option<String>,
    outcome: &Result<(), Failure>,
) {
    let actor = Actor::cli(&os_user());
    let message = match outcome {
        Ok(()) => None,
        Err(Failure::No(m) | Failure::Error(m)) => Some(m.trim_start_matches("tessera: ")),
    };
    let change = Change::of(action, token, serial);
    if let Err(error) = record(store, &actor, change, message.map_or(Ok(()), Err), now()).await {
        eprintln!("tessera: the audit row of this change was not written: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("15m", 10_000), Some(10_000 - 900));
        assert_eq!(parse_since("2d", 200_000), Some(200_000 - 172_800));
        assert_eq!(parse_since("1795400000", 0), Some(1_795_400_000));
        assert_eq!(parse_since("2026-11-23T02:13:20Z", 0), Some(1_795_400_000));
        assert_eq!(parse_since("1970-01-02", 0), Some(86_400));
        assert_eq!(parse_since("yesterday", 0), None);
        assert_eq!(parse_since("5w", 0), None);
    }
}
