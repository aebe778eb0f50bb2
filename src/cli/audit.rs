//! `tessera audit`: the audit trail, newest first — one row per decision, never a password or
//! a code. Also the row an admin change writes (`audit_change`, for `tessera token …` and
//! `token identities --fix`), with who ran it.

use clap::Args;
use serde_json::json;
use tessera::config::Config;
use tessera::rfc3339;
use tessera::store::audit::{AuditAction, AuditResult};
use tessera::store::{AuditEntry, Store, Token};
use tessera::time::UnixMs;

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

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `--since` into Unix seconds.
pub fn parse_since(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    if !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && unit.bytes().all(|b| b.is_ascii_alphabetic())
    {
        let n: i64 = number.parse().ok()?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        return Some(now - n.checked_mul(seconds)?);
    }
    if let Ok(unix) = text.parse::<i64>() {
        return Some(unix);
    }
    let (date, time) = text
        .trim_end_matches('Z')
        .split_once('T')
        .unwrap_or((text, "00:00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match (d.as_slice(), t.as_slice()) {
        ([y, mo, da], [h, mi, s]) if (1..=12).contains(mo) && (1..=31).contains(da) => {
            Some(days_from_civil(*y, *mo, *da) * 86_400 + h * 3600 + mi * 60 + s)
        }
        _ => None,
    }
}

/// Runs `tessera audit`.
pub fn run(config: &Config, args: AuditArgs) -> Result<(), Failure> {
    let since = match &args.since {
        Some(text) => Some(parse_since(text, now().as_secs()).map(UnixMs::from_secs).ok_or_else(|| {
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
                    json!({"time": rfc3339::format(r.time.as_secs()), "client": r.client, "user": r.user, "realm": r.realm,
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
                rfc3339::format(r.time.as_secs()),
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
fn os_user() -> String {
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

/// Writes the audit row of an admin change: who ran it (the OS user), what, which serial and
/// whose token, and how it went. Waits for the commit: the command exits right after.
pub(super) async fn audit_change(
    store: &dyn Store,
    action: AuditAction,
    token: Option<&Token>,
    serial: Option<String>,
    outcome: &Result<(), Failure>,
) {
    let who = os_user();
    let (result, reason) = match outcome {
        Ok(()) => (AuditResult::Ok, format!("by {who}")),
        Err(Failure::No(m) | Failure::Error(m)) => (
            AuditResult::Failed,
            format!("by {who}: {}", m.trim_start_matches("tessera: ")),
        ),
    };
    let entry = AuditEntry {
        time: now(),
        client: format!("cli ({who})"),
        user: token.map_or_else(|| "-".into(), |t| t.user.clone()),
        realm: token.map_or_else(|| "-".into(), |t| t.realm.clone()),
        serial: serial.or_else(|| token.map(|t| t.serial.clone())),
        action: action.into(),
        result: result.into(),
        reason,
    };
    if let Err(error) = store.audit_committed(entry).await {
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
