//! The audit as the admin layer writes and reads it: the row of every change an actor makes
//! ([`record`]), the filtered view ([`AuditFilter`] → [`AuditRow`]s) and its CSV export
//! ([`csv`]). Times are given as `tessera audit --since` takes them ([`parse_time`]).

use serde::Serialize;

use super::actor::Actor;
use super::error::AdminError;
use crate::store::audit::{AuditAction, AuditQuery, AuditResult};
use crate::store::{AuditEntry, Store, Token};

/// The most rows one audit read returns.
pub const MAX_ROWS: u32 = 5000;

/// Rows returned when no limit is given.
pub const DEFAULT_ROWS: u32 = 100;

/// One change, for its audit row.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// What was asked.
    pub action: AuditAction,
    /// The token concerned (before the change, or the one made), if known.
    pub token: Option<&'a Token>,
    /// Its serial, when the token is not known (a serial that does not exist).
    pub serial: Option<String>,
    /// What changed, e.g. `active: false`, `description: "desk phone"`.
    pub detail: Option<String>,
}

impl<'a> Change<'a> {
    /// A change of `action` to `token`.
    pub fn of(action: AuditAction, token: Option<&'a Token>, serial: Option<String>) -> Self {
        Change {
            action,
            token,
            serial,
            detail: None,
        }
    }

    /// The same, saying what changed.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Writes the audit row of a change: who (`actor`), what, which token and whose, and how it
/// went (`outcome`: the message of a failure). Waits for the commit. A row that cannot be
/// written is returned as the error, for the caller to report (the change itself has
/// happened or not by then).
pub async fn record(
    store: &dyn Store,
    actor: &Actor,
    change: Change<'_>,
    outcome: Result<(), &str>,
    now: i64,
) -> Result<(), AdminError> {
    let Change {
        action,
        token,
        serial,
        detail,
    } = change;
    let who = &actor.name;
    tracing::info!(
        actor = %who,
        client = %actor.client,
        action = action.as_str(),
        serial = serial.as_deref().or(token.map(|t| t.serial.as_str())).unwrap_or("-"),
        result = if outcome.is_ok() { "ok" } else { "failed" },
        "admin change"
    );
    let (result, reason) = match (outcome, detail) {
        (Ok(()), None) => (AuditResult::Ok, format!("by {who}")),
        (Ok(()), Some(detail)) => (AuditResult::Ok, format!("by {who}: {detail}")),
        (Err(message), _) => (AuditResult::Failed, format!("by {who}: {message}")),
    };
    let entry = AuditEntry {
        time: now,
        client: actor.client.clone(),
        user: token.map_or_else(|| "-".into(), |t| t.user.clone()),
        realm: token.map_or_else(|| "-".into(), |t| t.realm.clone()),
        serial: serial.or_else(|| token.map(|t| t.serial.clone())),
        action: action.into(),
        result: result.into(),
        reason,
    };
    Ok(store.audit_committed(entry).await?)
}

/// One audit row as the admin API and the page show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    /// Unix time.
    pub time: i64,
    /// The same, RFC 3339 in UTC.
    pub time_text: String,
    /// The client (NAS name, `http/ADDRESS`, `admin/ADDRESS`, `cli (USER)`).
    pub client: String,
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// The token, if one was involved.
    pub serial: Option<String>,
    /// What was asked.
    pub action: String,
    /// How it went.
    pub result: String,
    /// Why, and for a change: by whom.
    pub reason: String,
}

impl From<AuditEntry> for AuditRow {
    fn from(e: AuditEntry) -> Self {
        AuditRow {
            time_text: crate::rfc3339::format(e.time),
            time: e.time,
            client: e.client,
            user: e.user,
            realm: e.realm,
            serial: e.serial,
            action: e.action,
            result: e.result,
            reason: e.reason,
        }
    }
}

/// The audit filters as typed (query parameters, form fields): every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// The identity, exactly.
    pub user: Option<String>,
    /// `accept`, `reject`, `challenge`, `ok`, `failed`, `forward`.
    pub result: Option<String>,
    /// A part of the client.
    pub client: Option<String>,
    /// A token serial.
    pub serial: Option<String>,
    /// From (see [`parse_time`]).
    pub since: Option<String>,
    /// Until, exclusive (see [`parse_time`]).
    pub until: Option<String>,
    /// At most this many rows ([`DEFAULT_ROWS`], at most [`MAX_ROWS`]).
    pub limit: Option<String>,
}

impl AuditFilter {
    /// The store's query, times read relative to `now`; a bad value says which.
    pub fn to_query(&self, now: i64) -> Result<AuditQuery, AdminError> {
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, AdminError> {
            match text(v) {
                None => Ok(None),
                Some(t) => parse_time(&t, now).map(Some).ok_or_else(|| {
                    AdminError::BadInput(format!(
                        "{name} {t:?}: expected e.g. 15m, 2h, 7d, 2026-11-23 or 2026-11-23T10:00:00Z"
                    ))
                }),
            }
        };
        let result = text(&self.result).map(|r| r.to_lowercase());
        let known = [
            AuditResult::Accept,
            AuditResult::Challenge,
            AuditResult::Reject,
            AuditResult::Forward,
            AuditResult::Ok,
            AuditResult::Failed,
        ];
        if let Some(r) = &result
            && !known.iter().any(|k| k.as_str() == r)
        {
            return Err(AdminError::BadInput(format!(
                "result {r:?}: expected accept, challenge, reject, forward, ok or failed"
            )));
        }
        let limit = match text(&self.limit) {
            None => DEFAULT_ROWS,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| *l >= 1)
                .ok_or_else(|| AdminError::BadInput(format!("limit {l:?}: expected a number")))?
                .min(MAX_ROWS),
        };
        Ok(AuditQuery {
            user: text(&self.user),
            realm: None,
            serial: text(&self.serial),
            result,
            client: text(&self.client),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            limit,
        })
    }
}

/// Reads the audit.
pub async fn rows(store: &dyn Store, query: &AuditQuery) -> Result<Vec<AuditRow>, AdminError> {
    Ok(store
        .audit_query(query)
        .await?
        .into_iter()
        .map(AuditRow::from)
        .collect())
}

/// The rows as CSV (RFC 4180: a header line, fields quoted where needed, CRLF). A field that
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
pub fn csv(rows: &[AuditRow]) -> String {
    fn field(text: &str) -> String {
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) && text != "-" {
            format!("'{text}")
        } else {
            text.to_string()
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    }
    let mut out = String::from("time,client,user,realm,serial,action,result,reason\r\n");
    for r in rows {
        let fields = [
            r.time_text.as_str(),
            &r.client,
            &r.user,
            &r.realm,
            r.serial.as_deref().unwrap_or(""),
            &r.action,
            &r.result,
            &r.reason,
        ];
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
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

/// A time as Unix seconds: a duration back from `now` (`90s`, `15m`, `2h`, `7d`), a date
/// (`2026-11-23`), a UTC time (`2026-11-23T10:00:00Z`) or Unix seconds.
pub fn parse_time(text: &str, now: i64) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_forms() {
        assert_eq!(parse_time("15m", 10_000), Some(10_000 - 900));
        assert_eq!(parse_time("2d", 200_000), Some(200_000 - 172_800));
        assert_eq!(parse_time("1795400000", 0), Some(1_795_400_000));
        assert_eq!(parse_time("2026-11-23T02:13:20Z", 0), Some(1_795_400_000));
        assert_eq!(parse_time("1970-01-02", 0), Some(86_400));
        assert_eq!(parse_time("yesterday", 0), None);
        assert_eq!(parse_time("5w", 0), None);
    }

    #[test]
    fn filters_are_checked_and_bounded() {
        let filter = AuditFilter {
            user: Some(" alice ".into()),
            result: Some("REJECT".into()),
            since: Some("1h".into()),
            limit: Some("100000".into()),
            client: Some(String::new()),
            ..AuditFilter::default()
        };
        let q = filter.to_query(10_000).unwrap();
        assert_eq!(q.user.as_deref(), Some("alice"));
        assert_eq!(q.result.as_deref(), Some("reject"));
        assert_eq!((q.since, q.until, q.limit), (Some(6_400), None, MAX_ROWS));
        assert_eq!(q.client, None);
        let bad = AuditFilter {
            result: Some("maybe".into()),
            ..AuditFilter::default()
        };
        assert!(matches!(bad.to_query(0), Err(AdminError::BadInput(_))));
        let bad = AuditFilter {
            until: Some("soon".into()),
            ..AuditFilter::default()
        };
        assert!(
            bad.to_query(0)
                .unwrap_err()
                .to_string()
                .starts_with("until")
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = AuditRow {
            time: 0,
            time_text: "1970-01-01T00:00:00Z".into(),
            client: "nas,1".into(),
            user: "=cmd".into(),
            realm: "local".into(),
            serial: None,
            action: "authenticate".into(),
            result: "reject".into(),
            reason: "said \"no\"".into(),
        };
        assert_eq!(
            csv(&[row]),
            "time,client,user,realm,serial,action,result,reason\r\n\
             1970-01-01T00:00:00Z,\"nas,1\",'=cmd,local,,authenticate,reject,\"said \"\"no\"\"\"\r\n"
        );
    }
}
