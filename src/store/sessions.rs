//! Accounting sessions in the store (issue 30): what an accounting record says
//! ([`AccountingRecord`]), the row it keeps per session ([`Session`]), which rows to read
//! ([`SessionQuery`]), and [`merge`], the one rule both backends apply to turn a session's row
//! and a new record into the row to write — so SQLite and PostgreSQL decide nothing twice.
//!
//! A session is one `(client, nas, session_id)`: the `[[client]]` entry the record came from,
//! the NAS behind it (its NAS-Identifier, NAS-IP-Address or source address) and the NAS's
//! Acct-Session-Id. Keying on the client entry too means a NAS can only ever touch the sessions
//! of its own entry, whatever NAS-Identifier it claims.
//!
//! A session also keeps the directory identity its User-Name resolves to ([`Identity`]: the
//! login and realm tokens are keyed on), when the directory answered as the record came in,
//! and the address its records came from: a revoke finds the open sessions of an identity
//! ([`SessionQuery::identity`]) and sends each NAS a Disconnect-Request there.

use crate::time::UnixMs;

/// Acct-Status-Type of a record about one session (RFC 2866 §5.1). Accounting-On and -Off are
/// about a whole NAS: [`Store::close_nas_sessions`](super::Store::close_nas_sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcctStatus {
    /// The session started.
    Start,
    /// The session goes on (Interim-Update): new counters.
    Interim,
    /// The session ended.
    Stop,
}

impl AcctStatus {
    /// A stable name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AcctStatus::Start => "start",
            AcctStatus::Interim => "interim",
            AcctStatus::Stop => "stop",
        }
    }
}

/// What a session has used so far, as the NAS counts it (cumulative; octets with their
/// Gigawords already added).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Octets received from the user (Acct-Input-Octets + 2³² × Acct-Input-Gigawords).
    pub input_octets: u64,
    /// Octets sent to the user (Acct-Output-Octets + 2³² × Acct-Output-Gigawords).
    pub output_octets: u64,
    /// Packets received from the user.
    pub input_packets: u64,
    /// Packets sent to the user.
    pub output_packets: u64,
}

/// The directory identity behind a session's User-Name: the login the directory returned and
/// its realm, as tokens are keyed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The login (the directory's spelling).
    pub user: String,
    /// The realm's name.
    pub realm: String,
}

/// One accounting record about one session, as the accounting layer hands it to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingRecord {
    /// The `[[client]]` entry's name.
    pub client: String,
    /// The NAS: NAS-Identifier, else NAS-IP-Address / NAS-IPv6-Address, else the source
    /// address.
    pub nas: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// Start, Interim-Update or Stop.
    pub status: AcctStatus,
    /// The user name, normalized as authentication normalizes it (empty when absent).
    pub user: String,
    /// Calling-Station-Id (the user's MAC address or phone number).
    pub calling_station: Option<String>,
    /// Framed-IP-Address (or Framed-IPv6-Address), as text.
    pub framed_ip: Option<String>,
    /// The counters, when the record carries any.
    pub usage: Option<Usage>,
    /// Acct-Session-Time in seconds, when given: a session first seen at its Interim or
    /// Stop started that long before.
    pub session_seconds: Option<u32>,
    /// Acct-Terminate-Cause's name (Stop).
    pub cause: Option<String>,
    /// When the NAS sent it: receipt time less Acct-Delay-Time.
    pub at: UnixMs,
    /// The directory identity `user` resolves to, when the directory answered.
    pub identity: Option<Identity>,
    /// The address the record came from (the NAS's, for a Disconnect-Request).
    pub nas_address: Option<String>,
}

/// One session's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The `[[client]]` entry's name.
    pub client: String,
    /// The NAS behind it.
    pub nas: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The user name (normalized).
    pub user: String,
    /// Calling-Station-Id.
    pub calling_station: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<String>,
    /// When it started: its Start, or derived from Acct-Session-Time; unknown otherwise.
    pub started: Option<UnixMs>,
    /// Its last Interim-Update.
    pub interim: Option<UnixMs>,
    /// When it stopped (Stop, or its NAS's Accounting-On/Off); `None` while open.
    pub stopped: Option<UnixMs>,
    /// Why it stopped: Acct-Terminate-Cause's name, or `nas-reboot` for Accounting-On/Off.
    pub cause: Option<String>,
    /// The latest counters.
    pub usage: Usage,
    /// The last record's time: retention counts from it.
    pub updated: UnixMs,
    /// The directory identity of `user`, when it was resolved as the records came in.
    pub identity: Option<Identity>,
    /// The address the session's last record came from.
    pub nas_address: Option<String>,
}

impl Session {
    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        self.stopped.is_none()
    }
}

/// What [`Store::record_accounting`](super::Store::record_accounting) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The row was written (created or updated).
    Stored,
    /// Nothing to change: a duplicate, or a record about a session already stopped.
    Unchanged,
    /// A new open session, refused: its client entry has `max_open` open sessions already.
    LimitReached,
}

/// Which sessions to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionQuery {
    /// Only this user's (normalized name).
    pub user: Option<String>,
    /// Only this identity's: sessions resolved to it, and sessions never resolved whose
    /// user name is its login (recorded while the directory did not answer, or before
    /// identities were kept).
    pub identity: Option<Identity>,
    /// Only open ones.
    pub open_only: bool,
    /// At most this many.
    pub limit: u32,
}

/// The row to write after `record`, given the session's row as it is (`None`: no row yet);
/// `None` when nothing changes. The rules:
/// - a Start opens the session; a Start of a session already known is a duplicate;
/// - an Interim-Update updates an open session, or opens one first seen now;
/// - a Stop closes it, or records a closed row for a session never seen started;
/// - a stopped session stays stopped: nothing reopens or changes it.
///
/// Fields a record leaves out keep what the row had.
pub fn merge(existing: Option<&Session>, record: &AccountingRecord) -> Option<Session> {
    if existing.is_some_and(|s| !s.is_open()) {
        return None;
    }
    if record.status == AcctStatus::Start && existing.is_some() {
        return None;
    }
    let derived_start = record
        .session_seconds
        .map(|s| record.at.minus_ms(i64::from(s).saturating_mul(1000)));
    let mut row = existing.cloned().unwrap_or_else(|| Session {
        client: record.client.clone(),
        nas: record.nas.clone(),
        session_id: record.session_id.clone(),
        user: String::new(),
        calling_station: None,
        framed_ip: None,
        started: match record.status {
            AcctStatus::Start => Some(record.at),
            AcctStatus::Interim | AcctStatus::Stop => derived_start,
        },
        interim: None,
        stopped: None,
        cause: None,
        usage: Usage::default(),
        updated: record.at,
        identity: None,
        nas_address: None,
    });
    if !record.user.is_empty() {
        row.user.clone_from(&record.user);
    }
    if record.identity.is_some() {
        row.identity.clone_from(&record.identity);
    }
    if record.nas_address.is_some() {
        row.nas_address.clone_from(&record.nas_address);
    }
    if record.calling_station.is_some() {
        row.calling_station.clone_from(&record.calling_station);
    }
    if record.framed_ip.is_some() {
        row.framed_ip.clone_from(&record.framed_ip);
    }
    if row.started.is_none() {
        row.started = derived_start;
    }
    if let Some(usage) = record.usage {
        row.usage = usage;
    }
    match record.status {
        AcctStatus::Start => {}
        AcctStatus::Interim => row.interim = Some(record.at),
        AcctStatus::Stop => {
            row.stopped = Some(record.at);
            row.cause.clone_from(&record.cause);
        }
    }
    row.updated = row.updated.max(record.at);
    (existing != Some(&row)).then_some(row)
}

/// Whether writing `row` over `existing` opens a session, and so counts against the bound.
pub fn opens(existing: Option<&Session>, row: &Session) -> bool {
    existing.is_none() && row.is_open()
}

/// The cause recorded on the sessions Accounting-On/Off closes (RFC 2866's NAS-Reboot).
pub const CAUSE_NAS_RESTARTED: &str = "NAS-Reboot";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(status: AcctStatus, at: i64) -> AccountingRecord {
        AccountingRecord {
            client: "nas".into(),
            nas: "gw1".into(),
            session_id: "s1".into(),
            status,
            user: "alice".into(),
            calling_station: None,
            framed_ip: None,
            usage: None,
            session_seconds: None,
            cause: None,
            at: UnixMs::from_secs(at),
            identity: None,
            nas_address: None,
        }
    }

    #[test]
    fn start_interim_stop_then_nothing_reopens() {
        let start = merge(None, &record(AcctStatus::Start, 100)).unwrap();
        assert_eq!(start.started, Some(UnixMs::from_secs(100)));
        assert!(opens(None, &start));
        assert_eq!(merge(Some(&start), &record(AcctStatus::Start, 100)), None);
        let mut interim = record(AcctStatus::Interim, 160);
        interim.usage = Some(Usage {
            input_octets: 5,
            ..Usage::default()
        });
        let after = merge(Some(&start), &interim).unwrap();
        assert_eq!(after.interim, Some(UnixMs::from_secs(160)));
        assert_eq!(after.usage.input_octets, 5);
        assert_eq!(merge(Some(&after), &interim), None, "a duplicate");
        let mut stop = record(AcctStatus::Stop, 200);
        stop.cause = Some("User-Request".into());
        let stopped = merge(Some(&after), &stop).unwrap();
        assert_eq!(stopped.stopped, Some(UnixMs::from_secs(200)));
        assert_eq!(merge(Some(&stopped), &interim), None);
        assert_eq!(merge(Some(&stopped), &record(AcctStatus::Start, 300)), None);
    }

    #[test]
    fn stop_without_start_is_a_closed_row() {
        let mut stop = record(AcctStatus::Stop, 1000);
        stop.session_seconds = Some(600);
        let row = merge(None, &stop).unwrap();
        assert_eq!(row.started, Some(UnixMs::from_secs(400)));
        assert!(!row.is_open());
        assert!(!opens(None, &row));
    }
}
