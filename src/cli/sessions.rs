//! `tessera sessions`: the accounting sessions the NASes reported (issue 30), newest first —
//! who is connected, since when, from where. Read-only.

use clap::Args;
use tessera::admin::sessions::SessionView;
use tessera::config::Config;
use tessera::rfc3339;
use tessera::store::{Session, SessionQuery};
use tessera::time::UnixMs;

use super::{Failure, print_json, print_table};

/// `sessions` options.
#[derive(Args)]
pub struct SessionsArgs {
    /// Only this user's sessions (the name as the NAS sent it, normalized as logins are).
    #[arg(long)]
    user: Option<String>,
    /// Only sessions still open.
    #[arg(long)]
    open: bool,
    /// At most this many sessions.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A time as RFC 3339 (seconds), or `-`.
fn time(t: Option<UnixMs>) -> String {
    t.map_or_else(|| "-".into(), |t| rfc3339::format(t.as_secs()))
}

fn as_json(s: &Session) -> serde_json::Value {
    serde_json::to_value(SessionView::of(s)).unwrap_or_default()
}

/// Runs `tessera sessions`.
pub fn run(config: &Config, args: SessionsArgs) -> Result<(), Failure> {
    let user = args.user.as_deref().map(tessera::accounting::normal_user);
    let query = SessionQuery {
        user,
        open_only: args.open,
        limit: args.limit,
        ..SessionQuery::default()
    };
    let runtime = super::runtime()?;
    let store = super::existing_store(&runtime, config)?;
    let rows = runtime
        .block_on(async { store.sessions(&query).await })
        .map_err(|e| Failure::Error(e.to_string()))?;
    if args.json {
        print_json(&serde_json::Value::Array(
            rows.iter().map(as_json).collect(),
        ));
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.user.clone(),
                format!("{}/{}", s.client, s.nas),
                s.session_id.clone(),
                s.calling_station.clone().unwrap_or_else(|| "-".into()),
                s.framed_ip.clone().unwrap_or_else(|| "-".into()),
                time(s.started),
                time(s.stopped),
                s.cause.clone().unwrap_or_else(|| "-".into()),
                s.usage.input_octets.to_string(),
                s.usage.output_octets.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "USER",
            "CLIENT/NAS",
            "SESSION",
            "STATION",
            "ADDRESS",
            "STARTED",
            "STOPPED",
            "CAUSE",
            "IN",
            "OUT",
        ],
        &table,
    );
    Ok(())
}
