//! The accounting engine (issue 30): what an accounting record means for the sessions tessera
//! keeps, knowing nothing of RADIUS — as `auth` decides logins without it. The RADIUS front
//! end turns an Accounting-Request into an [`Event`] and answers only when
//! [`Accounting::record`] says the event is committed (RFC 2866 §2: a server must not
//! acknowledge what it has not recorded), so a failing store or a refused session makes the
//! NAS retry instead of losing the record.
//!
//! It owns: the user name's normal form (the one authentication starts from), the bound on open
//! sessions per client entry and its log line, the records' metrics, and the gauge of open
//! sessions ([`refresh_gauge`]), and the identity a session's User-Name resolves to.
//!
//! **Identity.** Tokens are keyed on the directory's identity (login and realm), a NAS sends
//! the User-Name as typed. So that a revoke (`admin::revoke`) finds the sessions of the
//! token's owner, each record's user name is resolved as a login resolves it
//! ([`Authenticate::accounting_user`]: the same realm split and directory lookup) and the
//! session keeps the identity beside the name. Answers are cached for five minutes (a NAS's
//! Interim-Updates do not each ask the directory), failures for 30 seconds, and a lookup is
//! bounded by a timeout (three seconds);
//! when the directory fails or is slow, the record is still kept — without an identity, and
//! then a revoke finds the session by its user name being the login. It runs in the
//! request's own task, never in the receive loop. Resolving at revoke time instead would ask
//! the directory once per open session of the whole site at each revoke.
//!
//! **Passthru.** The same lookup says whether a `passthru` policy sends the user to a
//! legacy server; [`Accounting::record`] returns that server's name and the front end
//! forwards the record there too, so the old server's accounting stays whole during a
//! migration. The policy decides, not whether the user holds a token yet: a session that
//! began under passthru and ends after `passthru_assign` enrolled the token still reaches the
//! old server with its Stop.
//!
//! **Grace.** A Stop ends the re-authentication grace (`grace_seconds`) its login was granted
//! (`grace_of`: the identity, the NAS's address, the Calling-Station-Id).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::{AccountingUser, Authenticate};
use crate::directory::login_name;
use crate::metrics;
use crate::store::{AccountingRecord, AcctStatus, Identity, Recorded, Store, StoreError};
use crate::time::UnixMs;

/// What a NAS told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A record about one session (Start, Interim-Update, Stop); its `user` as the NAS sent it.
    Session(Box<AccountingRecord>),
    /// Accounting-On or Accounting-Off: the NAS (re)started or stops, so none of its sessions
    /// goes on.
    NasRestarted {
        /// The `[[client]]` entry's name.
        client: String,
        /// The NAS behind it.
        nas: String,
        /// When.
        at: UnixMs,
    },
}

/// Why an event was not recorded (and so must not be acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum NotRecorded {
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// The client entry has `max_open_sessions_per_nas` open sessions already.
    #[error("the client entry has {0} open sessions already")]
    LimitReached(u64),
}

/// How long a resolved user name is reused.
const IDENTITY_TTL: Duration = Duration::from_secs(300);

/// How long a failed lookup is not tried again.
const FAILURE_TTL: Duration = Duration::from_secs(30);

/// The most user names whose identity is cached (the cache starts over when full).
const IDENTITY_CACHE: usize = 10_000;

/// How long one identity lookup may hold a record up.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(3);

/// The engine: the store and the bound.
pub struct Accounting {
    store: Arc<dyn Store>,
    max_open: u64,
    /// When a client entry's bound was last logged (once a minute each).
    limit_logged: Mutex<HashMap<String, Instant>>,
    /// NAS address and user name → until when the answer holds, and what authentication
    /// knows of the user.
    identities: Mutex<HashMap<String, (Instant, AccountingUser)>>,
}

impl Accounting {
    /// An engine recording into `store`, refusing new sessions beyond `max_open` open ones
    /// per client entry.
    pub fn new(store: Arc<dyn Store>, max_open: u64) -> Accounting {
        Accounting {
            store,
            max_open,
            limit_logged: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event, a session's user name resolved by `directory` (its identity, and
    /// whether a passthru policy sends the user to a legacy server); `Ok` once it is
    /// committed, with that legacy server's name, for the front end to forward the record to
    /// (`None`: nowhere). A store failure is logged once a minute (the health probe reports
    /// the store too).
    pub async fn record(
        &self,
        mut event: Event,
        directory: &impl Authenticate,
    ) -> Result<Option<String>, NotRecorded> {
        let mut passthru = None;
        if let Event::Session(record) = &mut event {
            record.user = normal_user(&record.user);
            if !record.user.is_empty() {
                let client = record
                    .nas_address
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(IpAddr::from([0u8; 4]));
                let known = self.user_of(&record.user, client, directory).await;
                if record.identity.is_none() {
                    record.identity = known.identity;
                }
                passthru = known.passthru;
            }
        }
        let recorded = self.record_event(event).await;
        if let Err(NotRecorded::Store(error)) = &recorded
            && self.first_in_a_minute("")
        {
            tracing::error!(%error, "accounting record not committed: not answered, the NAS will resend it (logged once a minute)");
        }
        recorded.map(|()| passthru)
    }

    async fn record_event(&self, event: Event) -> Result<(), NotRecorded> {
        match event {
            Event::NasRestarted { client, nas, at } => {
                let closed = self.store.close_nas_sessions(&client, &nas, at).await;
                let result = if closed.is_ok() { "stored" } else { "failed" };
                metrics::inc(
                    "tessera_accounting_records_total",
                    &[("status", "nas-restarted"), ("result", result)],
                );
                let closed = closed?;
                tracing::info!(
                    client,
                    nas,
                    sessions = closed,
                    "NAS restarted: its open sessions closed"
                );
                Ok(())
            }
            Event::Session(record) => {
                let status = record.status.as_str();
                let client = record.client.clone();
                let grace = grace_of(&record);
                let recorded = self.store.record_accounting(*record, self.max_open).await;
                let result = match &recorded {
                    Ok(Recorded::Stored) => "stored",
                    Ok(Recorded::Unchanged) => "unchanged",
                    Ok(Recorded::LimitReached) => "limit",
                    Err(_) => "failed",
                };
                metrics::inc(
                    "tessera_accounting_records_total",
                    &[("status", status), ("result", result)],
                );
                match recorded? {
                    Recorded::Stored => {
                        if let Some(grace) = grace {
                            self.end_grace(grace).await;
                        }
                        Ok(())
                    }
                    Recorded::Unchanged => Ok(()),
                    Recorded::LimitReached => {
                        if self.first_in_a_minute(&client) {
                            tracing::warn!(
                                client,
                                max_open_sessions_per_nas = self.max_open,
                                "accounting Start not recorded and not answered: the client has max_open_sessions_per_nas open sessions (logged once a minute)"
                            );
                        }
                        Err(NotRecorded::LimitReached(self.max_open))
                    }
                }
            }
        }
    }

    /// Ends the re-authentication grace of a stopped session (see [`grace_of`]); a failure
    /// is logged: the grace still ends at its time.
    async fn end_grace(&self, g: GraceKey) {
        match self
            .store
            .end_grace(&g.identity.user, &g.identity.realm, &g.client, &g.station)
            .await
        {
            Ok(true) => {
                tracing::info!(user = %g.identity.user, realm = %g.identity.realm, client = %g.client, station = %g.station, "re-authentication grace ended by the session's Stop")
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "the grace of a stopped session not ended"),
        }
    }

    /// What the authentication side knows of a (normalized) user name reported from
    /// `client`: cached, else looked up within [`IDENTITY_TIMEOUT`]. A failed lookup gives
    /// nothing, remembered for [`FAILURE_TTL`] only: while the directory is down, records are
    /// not each held up by its timeout, and the next try soon resolves them again.
    async fn user_of(
        &self,
        user: &str,
        client: IpAddr,
        directory: &impl Authenticate,
    ) -> AccountingUser {
        let key = format!("{client} {user}");
        if let Ok(cache) = self.identities.lock()
            && let Some((until, known)) = cache.get(&key)
            && Instant::now() < *until
        {
            return known.clone();
        }
        let lookup = directory.accounting_user(user, client);
        let (known, ttl) = match tokio::time::timeout(IDENTITY_TIMEOUT, lookup).await {
            Ok(Ok(known)) => (known, IDENTITY_TTL),
            Ok(Err(error)) => {
                tracing::info!(user, %error, "accounting: the user's identity not resolved, the session is kept under its name");
                (AccountingUser::default(), FAILURE_TTL)
            }
            Err(_) => {
                tracing::info!(
                    user,
                    "accounting: the directory did not answer in time, the session is kept under its name"
                );
                (AccountingUser::default(), FAILURE_TTL)
            }
        };
        if let Ok(mut cache) = self.identities.lock() {
            if cache.len() >= IDENTITY_CACHE {
                cache.clear();
            }
            cache.insert(key, (Instant::now() + ttl, known.clone()));
        }
        known
    }

    /// Whether `client`'s limit (or, for `""`, a store failure) was not logged in the last
    /// minute; notes it as logged now.
    fn first_in_a_minute(&self, client: &str) -> bool {
        let Ok(mut logged) = self.limit_logged.lock() else {
            return false;
        };
        let now = Instant::now();
        match logged.get(client) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                logged.insert(client.to_string(), now);
                true
            }
        }
    }
}

/// Which re-authentication grace a record ends: a Stop ends the grace granted to its user
/// (identity) from its NAS (the address its records come from, as a login's client) and
/// station (Calling-Station-Id), as `grace_seconds` grants it. The session is over, so
/// reconnecting is a new login with both factors; a NAS that sends no Stop leaves the grace
/// to end at its time.
fn grace_of(record: &AccountingRecord) -> Option<GraceKey> {
    if record.status != AcctStatus::Stop {
        return None;
    }
    Some(GraceKey {
        identity: record.identity.clone()?,
        client: record.nas_address.clone()?,
        station: record.calling_station.clone().filter(|s| !s.is_empty())?,
    })
}

/// A grace as the store keys it.
#[derive(Debug)]
struct GraceKey {
    identity: Identity,
    client: String,
    station: String,
}

/// The user name as authentication starts from it ([`login_name::normalize`]: NFKC, trimmed).
/// The directory's spelling would need a lookup per record; sessions keep this form, which
/// is what `tessera sessions --user` is compared with. A name with control characters keeps
/// them replaced by `?`.
pub fn normal_user(typed: &str) -> String {
    login_name::normalize(typed).unwrap_or_else(|_| {
        typed
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    })
}

/// Sets `tessera_sessions_open{client}` from the store; client entries that had open sessions
/// before and have none now are set to 0. Returns the entries seen, for the next call.
pub async fn refresh_gauge(store: &dyn Store, before: Vec<String>) -> Vec<String> {
    let Ok(open) = store.open_sessions().await else {
        return before;
    };
    for client in &before {
        if !open.iter().any(|(c, _)| c == client) {
            metrics::set("tessera_sessions_open", &[("client", client)], 0);
        }
    }
    for (client, n) in &open {
        metrics::set("tessera_sessions_open", &[("client", client)], *n);
    }
    open.into_iter().map(|(c, _)| c).collect()
}

/// The accounting's background work until `shutdown`: every minute the gauge of open
/// sessions; at start and then hourly, sessions whose last record is older than `days` (0:
/// never) deleted, a few thousand per store job so records are never held up behind one big
/// delete.
pub async fn maintain(
    store: Arc<dyn Store>,
    days: u32,
    shutdown: tokio_util::sync::CancellationToken,
) {
    const ROWS_PER_JOB: u32 = 5000;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut seen = vec![];
    let mut last_purge: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        seen = refresh_gauge(store.as_ref(), seen).await;
        if days == 0 || last_purge.is_some_and(|t| t.elapsed() < Duration::from_secs(3600)) {
            continue;
        }
        last_purge = Some(Instant::now());
        let before = UnixMs::now().minus_ms(i64::from(days).saturating_mul(86_400_000));
        let mut purged = 0;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match store.purge_sessions(before, ROWS_PER_JOB).await {
                Ok(n) => {
                    purged += n;
                    if n < ROWS_PER_JOB as usize {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "purging old accounting sessions failed");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(
                sessions = purged,
                days,
                "sessions older than accounting_days purged"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::auth::{AuthRequest, Outcome};
    use crate::store::SessionQuery;

    /// An authenticator that knows nobody (the default `accounting_user`).
    struct NoDirectory;

    impl Authenticate for NoDirectory {
        async fn authenticate(&self, _request: AuthRequest) -> Outcome {
            unreachable!("accounting never authenticates")
        }
    }

    fn start(id: &str, status: AcctStatus, user: &str) -> Event {
        Event::Session(Box::new(AccountingRecord {
            client: "gauge-test".into(),
            nas: "gw1".into(),
            session_id: id.into(),
            status,
            user: user.into(),
            calling_station: None,
            framed_ip: None,
            usage: None,
            session_seconds: None,
            cause: None,
            at: UnixMs::from_secs(100),
            identity: None,
            nas_address: None,
        }))
    }

    /// The engine normalizes the user, refuses beyond the bound, and the gauge follows the
    /// open sessions per client entry, back to 0 when none is left.
    #[tokio::test]
    async fn the_bound_and_the_gauge() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::sqlite::open_store(&dir.path().join("t.db"), &dir.path().join("t.key"))
                .unwrap();
        let engine = Accounting::new(store.clone(), 1);
        engine
            .record(start("a", AcctStatus::Start, " ａlice"), &NoDirectory)
            .await
            .unwrap();
        assert!(matches!(
            engine
                .record(start("b", AcctStatus::Start, "bob"), &NoDirectory)
                .await,
            Err(NotRecorded::LimitReached(1))
        ));
        let rows = store
            .sessions(&SessionQuery {
                user: Some("alice".into()),
                open_only: true,
                limit: 10,
                ..SessionQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "kept under the normal form");
        let gauge = || metrics::counter("tessera_sessions_open", &[("client", "gauge-test")]);
        let seen = refresh_gauge(store.as_ref(), vec![]).await;
        assert_eq!(gauge(), 1);
        engine
            .record(start("a", AcctStatus::Stop, "alice"), &NoDirectory)
            .await
            .unwrap();
        refresh_gauge(store.as_ref(), seen).await;
        assert_eq!(gauge(), 0);
    }

    /// A directory that fails, counting its lookups.
    #[derive(Default)]
    struct DownDirectory(std::sync::atomic::AtomicU32);

    impl Authenticate for DownDirectory {
        async fn authenticate(&self, _request: AuthRequest) -> Outcome {
            unreachable!("accounting never authenticates")
        }

        async fn accounting_user(
            &self,
            _user_name: &str,
            _client: IpAddr,
        ) -> Result<AccountingUser, String> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err("the directory is down".into())
        }
    }

    /// With the directory down, records are still kept (without an identity), and a failed
    /// lookup is not repeated for every record.
    #[tokio::test]
    async fn a_directory_down_holds_no_record_up() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::sqlite::open_store(&dir.path().join("t.db"), &dir.path().join("t.key"))
                .unwrap();
        let engine = Accounting::new(store.clone(), 10);
        let down = DownDirectory::default();
        for status in [AcctStatus::Start, AcctStatus::Interim] {
            let mut event = start("a", status, "alice");
            if let Event::Session(record) = &mut event {
                record.nas_address = Some("192.0.2.1".into());
            }
            assert_eq!(engine.record(event, &down).await.unwrap(), None);
        }
        assert_eq!(down.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        let all = SessionQuery {
            limit: 10,
            ..SessionQuery::default()
        };
        let rows = store.sessions(&all).await.unwrap();
        assert_eq!((rows.len(), &rows[0].identity), (1, &None));
    }

    #[test]
    fn user_names_normalize_as_logins_do() {
        assert_eq!(normal_user(" ａlice "), "alice");
        assert_eq!(normal_user("bob\n"), "bob?");
    }
}
