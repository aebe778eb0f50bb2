//! Accounting sessions as the helpdesk sees them (issue 30): one view of a session
//! ([`SessionView`]: the fields of `tessera sessions --json`, the admin API and the page show
//! the same), a user's sessions with the open ones first ([`of_identity`]), and every open
//! session ([`open`]). Read-only: sessions change only by what the NASes report, and end by
//! a revoke (`revoke.rs`).

use serde::Serialize;

use super::error::AdminError;
use crate::rfc3339;
use crate::store::{Identity, Session, SessionQuery, Store};
use crate::time::UnixMs;

/// Sessions returned when no limit is given.
pub const DEFAULT_ROWS: u32 = 100;

/// The most sessions one read returns.
pub const MAX_ROWS: u32 = 5000;

/// One session as shown; times as RFC 3339.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionView {
    /// The `[[client]]` entry its records came from.
    pub client: String,
    /// The NAS behind it.
    pub nas: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The user name the NAS sent (normalized).
    pub user: String,
    /// The directory identity it resolved to, if it did.
    pub identity: Option<String>,
    /// Its realm.
    pub realm: Option<String>,
    /// Where the records came from.
    pub nas_address: Option<String>,
    /// Calling-Station-Id.
    pub calling_station: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<String>,
    /// Not stopped yet.
    pub open: bool,
    /// When it started.
    pub started: Option<String>,
    /// Its last Interim-Update.
    pub last_interim: Option<String>,
    /// When it stopped.
    pub stopped: Option<String>,
    /// Why it stopped.
    pub cause: Option<String>,
    /// Octets from the user.
    pub input_octets: u64,
    /// Octets to the user.
    pub output_octets: u64,
    /// Packets from the user.
    pub input_packets: u64,
    /// Packets to the user.
    pub output_packets: u64,
    /// The last record's time.
    pub updated: String,
}

impl SessionView {
    /// The view of `s`.
    pub fn of(s: &Session) -> Self {
        let t = |t: Option<UnixMs>| t.map(|t| rfc3339::format(t.as_secs()));
        SessionView {
            client: s.client.clone(),
            nas: s.nas.clone(),
            session_id: s.session_id.clone(),
            user: s.user.clone(),
            identity: s.identity.as_ref().map(|i| i.user.clone()),
            realm: s.identity.as_ref().map(|i| i.realm.clone()),
            nas_address: s.nas_address.clone(),
            calling_station: s.calling_station.clone(),
            framed_ip: s.framed_ip.clone(),
            open: s.is_open(),
            started: t(s.started),
            last_interim: t(s.interim),
            stopped: t(s.stopped),
            cause: s.cause.clone(),
            input_octets: s.usage.input_octets,
            output_octets: s.usage.output_octets,
            input_packets: s.usage.input_packets,
            output_packets: s.usage.output_packets,
            updated: rfc3339::format(s.updated.as_secs()),
        }
    }
}

/// The limit asked for, bounded: [`DEFAULT_ROWS`] when none, at most [`MAX_ROWS`].
pub fn limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS)
}

/// The sessions of `identity` (those resolved to it, and unresolved ones under its login),
/// the open ones first, then the newest; at most `limit`.
pub async fn of_identity(
    store: &dyn Store,
    identity: &Identity,
    limit: u32,
) -> Result<Vec<SessionView>, AdminError> {
    let query = SessionQuery {
        identity: Some(identity.clone()),
        open_only: true,
        limit,
        ..SessionQuery::default()
    };
    let mut rows = store.sessions(&query).await?;
    let all = store
        .sessions(&SessionQuery {
            open_only: false,
            ..query
        })
        .await?;
    rows.extend(all.into_iter().filter(|s| !s.is_open()));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(rows.iter().map(SessionView::of).collect())
}

/// Every open session, newest first; at most `limit`.
pub async fn open(store: &dyn Store, limit: u32) -> Result<Vec<SessionView>, AdminError> {
    let query = SessionQuery {
        open_only: true,
        limit,
        ..SessionQuery::default()
    };
    Ok(store
        .sessions(&query)
        .await?
        .iter()
        .map(SessionView::of)
        .collect())
}
