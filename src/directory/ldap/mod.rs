//! OpenLDAP and Active Directory as a [`Directory`], over ldap3 and rustls.
//!
//! - **Searches** run on one long-lived service connection, bound as `bind_dn` (or anonymous).
//!   ldap3 multiplexes clones of one `Ldap` handle, so concurrent requests share it, at most
//!   `SEARCHES_IN_FLIGHT` at a time: slapd closes a connection that has more operations
//!   waiting than `conn_max_pending` (100 for an anonymous one), failing every search on it.
//!   When the connection drops (server restarted, idle timeout) the next search reconnects,
//!   and a search that fails on a dead connection is retried once on a fresh one.
//! - **Password checks** bind as the user's DN on connections of their own, never on the
//!   service connection: a bind changes a connection's identity. Those connections are kept
//!   in a small pool and bound again for the next check (a new bind replaces the identity of
//!   the last), so a login costs one bind round trip, not a TCP (and TLS) handshake too. An
//!   empty password is refused before any bind, because AD (and others) treat an empty simple
//!   bind as an anonymous one and say yes.
//! - **Failover**: URIs are tried in order. A URI that failed moves to the back of the line for
//!   30 s (LinOTP blocks it for that long), but is still tried when all others fail too, so a
//!   directory that comes back is used at once.
//! - **Cache**: a found user's attributes are kept `cache_seconds` (default 60), so the second
//!   round of a login searches no more. Misses are not cached: a user just created in the
//!   directory can log in at once.
//! - **Failures**: a directory that cannot be reached or answers with an error gives
//!   [`DirectoryError::Unavailable`]; the engine turns that into an Access-Reject logged and
//!   audited as `directory unavailable`, never as a wrong password. Two entries for one login
//!   give [`DirectoryError::Ambiguous`]: tessera refuses rather than guesses.
//!
//! Every network operation is wrapped in `tokio::time::timeout(timeout)`. Referrals are never
//! chased: a referral could point the user's password at another server.

pub mod config;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchEntry};
use rustls::ClientConfig;

use super::{Directory, DirectoryError, DirectorySettings, DirectoryType, UserInfo};
use crate::backend::{Problem, Resolve, from_table};
use crate::secret::Secret;
pub use config::{LdapConfig, LdapSettings};

/// The registry's row: `type = "ldap"` (LinOTP's `ldapresolver`).
pub static TYPE: DirectoryType = DirectoryType {
    name: "ldap",
    aliases: &["ldapresolver"],
    check,
    spellings: config::spellings,
};

fn check(
    keys: &toml::Table,
    resolve: Resolve<'_>,
) -> Result<Arc<dyn DirectorySettings>, Vec<Problem>> {
    let config: LdapConfig = from_table(keys)?;
    Ok(Arc::new(config.check(resolve)?))
}

impl DirectorySettings for LdapSettings {
    fn open(&self, name: &str) -> Result<Arc<dyn Directory>, String> {
        Ok(Arc::new(LdapDirectory::open(name, self.clone())?))
    }
}

/// How long a failed URI goes to the back of the line (LinOTP's block time).
const URI_PENALTY: Duration = Duration::from_secs(30);
/// Most searches sent on the service connection at once; the rest wait their turn. Below
/// slapd's `conn_max_pending` default for anonymous connections (100), which closes the
/// connection when exceeded.
const SEARCHES_IN_FLIGHT: usize = 50;
/// Most idle password-check connections kept for reuse.
const BIND_POOL_SIZE: usize = 32;
/// Most users kept in the attribute cache; beyond it, expired entries are swept, then the
/// oldest half dropped.
const CACHE_CAPACITY: usize = 10_000;

/// LDAP result codes tessera reacts to (RFC 4511 §4.1.9).
mod rc {
    pub const SUCCESS: u32 = 0;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_CREDENTIALS: u32 = 49;
}

/// Why one attempt failed; only the first kind is worth trying again elsewhere.
enum Failure {
    /// The server could not be reached, or the connection broke or timed out.
    Connection(String),
    /// The server answered, with an error.
    Answer(String),
}

/// The service connection and the outcome of the last attempt to open it.
#[derive(Default)]
struct ServiceSlot {
    /// `None` until first use or after it broke.
    ldap: Option<Ldap>,
    /// When the last reconnect failed, and why. Requests that queued behind that attempt
    /// share its answer instead of each waiting out the timeouts again.
    failure: Option<(Instant, String)>,
}

/// An LDAP or AD directory.
pub struct LdapDirectory {
    name: String,
    settings: LdapSettings,
    tls: Option<Arc<ClientConfig>>,
    /// The service connection. An async mutex: it is held across the reconnect so that one
    /// request reconnects and the others wait for its result instead of all dialling at once.
    service: tokio::sync::Mutex<ServiceSlot>,
    /// Bounds the searches in flight on the service connection.
    searches: tokio::sync::Semaphore,
    /// Idle password-check connections: (URI index, connection).
    bind_pool: Mutex<Vec<(usize, Ldap)>>,
    /// URI index → until when it stays at the back of the line.
    penalties: Mutex<HashMap<usize, Instant>>,
    /// Login → (found at, attributes).
    cache: Mutex<HashMap<String, (Instant, UserInfo)>>,
}

impl LdapDirectory {
    /// Prepares the directory: reads the CA file and builds the TLS configuration. Does not
    /// connect; a directory that is down at startup must not stop tessera from serving the
    /// other realms.
    pub fn open(name: &str, settings: LdapSettings) -> Result<Self, String> {
        let tls = if settings.uses_tls() {
            Some(tls::client_config(
                settings.ca.as_ref(),
                settings.tls_verify,
            )?)
        } else {
            None
        };
        if !settings.tls_verify {
            tracing::warn!(directory = %name, "tls_verify is off: any server certificate is accepted");
        }
        if settings.bind.is_some() && !settings.uses_tls() {
            tracing::warn!(directory = %name, "the service account and user passwords travel unencrypted: use ldaps:// or starttls");
        }
        Ok(LdapDirectory {
            name: name.to_string(),
            settings,
            tls,
            service: tokio::sync::Mutex::new(ServiceSlot::default()),
            searches: tokio::sync::Semaphore::new(SEARCHES_IN_FLIGHT),
            bind_pool: Mutex::new(Vec::new()),
            penalties: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn unavailable(&self, reason: impl Into<String>) -> DirectoryError {
        DirectoryError::Unavailable {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// URI indices in the order to try them: healthy ones first, in configured order.
    fn uri_order(&self) -> Vec<usize> {
        let now = Instant::now();
        let penalised = |i: &usize| {
            self.penalties
                .lock()
                .map(|p| p.get(i).is_some_and(|until| *until > now))
                .unwrap_or(false)
        };
        let (mut order, last): (Vec<usize>, Vec<usize>) =
            (0..self.settings.uris.len()).partition(|i| !penalised(i));
        order.extend(last);
        order
    }

    fn penalise(&self, index: usize, reason: &str) {
        let uri = self.settings.uris.get(index).map_or("", String::as_str);
        tracing::warn!(directory = %self.name, %uri, %reason, "LDAP server failed, trying the next one");
        if let Ok(mut p) = self.penalties.lock() {
            p.insert(index, Instant::now() + URI_PENALTY);
        }
    }

    fn forgive(&self, index: usize) {
        if let Ok(mut p) = self.penalties.lock() {
            p.remove(&index);
        }
    }

    /// Opens a connection to one URI (TCP, then TLS or StartTLS as configured) and starts the
    /// task that drives it. The caller bounds the time.
    async fn connect(&self, uri: &str) -> Result<Ldap, Failure> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls && uri.starts_with("ldap://"));
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (connection, ldap) = LdapConnAsync::with_settings(settings, uri)
            .await
            .map_err(|e| Failure::Connection(e.to_string()))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.drive().await {
                tracing::debug!(directory = %name, %error, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    /// Connects and binds the service account (nothing to bind for anonymous access).
    async fn connect_service(&self, uri: &str) -> Result<Ldap, Failure> {
        let timeout = self.settings.timeout;
        let attempt = async {
            let mut ldap = self.connect(uri).await?;
            if let Some((dn, password)) = &self.settings.bind {
                let password = password.expose_str().unwrap_or_default();
                let result = ldap
                    .with_timeout(timeout)
                    .simple_bind(dn, password)
                    .await
                    .map_err(|e| Failure::Connection(e.to_string()))?;
                if result.rc != rc::SUCCESS {
                    return Err(Failure::Answer(format!(
                        "service account bind refused (rc {}: {})",
                        result.rc,
                        describe(result.rc)
                    )));
                }
            }
            Ok(ldap)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Connection(format!("no answer within {timeout:?}"))),
        }
    }

    /// The service connection, (re)connecting through the URIs in order when needed.
    async fn service(&self) -> Result<Ldap, DirectoryError> {
        let queued = Instant::now();
        let mut slot = self.service.lock().await;
        if let Some(ldap) = slot.ldap.as_mut()
            && !ldap.is_closed()
        {
            return Ok(ldap.clone());
        }
        slot.ldap = None;
        if let Some((failed, reason)) = &slot.failure
            && *failed >= queued
        {
            return Err(self.unavailable(reason.clone()));
        }
        let mut reasons = vec![];
        for index in self.uri_order() {
            let uri = self.settings.uris.get(index).map_or("", String::as_str);
            match self.connect_service(uri).await {
                Ok(ldap) => {
                    self.forgive(index);
                    slot.ldap = Some(ldap.clone());
                    slot.failure = None;
                    tracing::info!(directory = %self.name, %uri, "LDAP service connection open");
                    return Ok(ldap);
                }
                Err(Failure::Connection(reason) | Failure::Answer(reason)) => {
                    self.penalise(index, &reason);
                    reasons.push(format!("{uri}: {reason}"));
                }
            }
        }
        let reason = reasons.join("; ");
        slot.failure = Some((Instant::now(), reason.clone()));
        Err(self.unavailable(reason))
    }

    /// Forgets the service connection, so the next use reconnects.
    async fn drop_service(&self) {
        self.service.lock().await.ldap = None;
    }

    /// Searches for the login: one entry or none; more is ambiguous.
    async fn search(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError> {
        let filter = self.settings.filter_for(login);
        let (entries, code) = self.run_search(&filter, self.settings.size_limit).await?;
        match code {
            rc::SUCCESS | rc::SIZE_LIMIT_EXCEEDED
                if entries.len() > 1 || code == rc::SIZE_LIMIT_EXCEEDED =>
            {
                Err(DirectoryError::Ambiguous {
                    name: self.name.clone(),
                    login: login.to_string(),
                    count: entries.len(),
                })
            }
            rc::SUCCESS => match entries.into_iter().next() {
                None => Ok(None),
                Some(entry) => self.user_info(login, entry).map(Some),
            },
            code => Err(self.search_failed(code)),
        }
    }

    /// The error of a search that ended with `code`.
    fn search_failed(&self, code: u32) -> DirectoryError {
        if code == rc::NO_SUCH_OBJECT {
            self.unavailable(format!(
                "base_dn {:?} does not exist on the server",
                self.settings.base_dn
            ))
        } else {
            self.unavailable(format!("search failed (rc {code}: {})", describe(code)))
        }
    }

    /// Runs `filter` under the base DN, at most `size_limit` entries: the entries (search
    /// references dropped) and the result code. Retried once on a fresh connection if the
    /// shared one was dead.
    async fn run_search(
        &self,
        filter: &str,
        size_limit: i32,
    ) -> Result<(Vec<ResultEntry>, u32), DirectoryError> {
        let attributes = self.settings.requested_attributes();
        let timeout = self.settings.timeout;
        let _turn = self
            .searches
            .acquire()
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        let mut last = String::new();
        for _ in 0..2 {
            let mut ldap = self.service().await?;
            let search = ldap
                .with_timeout(timeout)
                .with_search_options(ldap3::SearchOptions::new().sizelimit(size_limit))
                .search(
                    &self.settings.base_dn,
                    Scope::Subtree,
                    filter,
                    attributes.clone(),
                );
            let result = match tokio::time::timeout(timeout, search).await {
                Ok(Ok(result)) => result,
                Ok(Err(error)) => {
                    last = error.to_string();
                    self.drop_service().await;
                    continue;
                }
                Err(_) => {
                    last = format!("search: no answer within {timeout:?}");
                    self.drop_service().await;
                    continue;
                }
            };
            let ldap3::SearchResult(entries, outcome) = result;
            // Search references (referrals) are skipped: they are never chased.
            let entries: Vec<ResultEntry> = entries.into_iter().filter(|e| !e.is_ref()).collect();
            return Ok((entries, outcome.rc));
        }
        Err(self.unavailable(last))
    }

    /// Maps an entry to [`UserInfo`] through the attribute mapping (first value of each).
    fn user_info(&self, login: &str, entry: ResultEntry) -> Result<UserInfo, DirectoryError> {
        // ldap3 panics on an entry whose BER structure is not an entry; the server is trusted
        // but a panic must not take the request task down with it.
        let entry = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            SearchEntry::construct(entry)
        }))
        .map_err(|_| self.unavailable("the server sent a malformed search entry"))?;
        // Attribute names are case-insensitive (RFC 4512 §2.5); servers answer in their spelling.
        let attrs: HashMap<String, Vec<String>> = entry
            .attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let values = |key: &str| -> Vec<String> {
            self.settings
                .attributes
                .get(key)
                .and_then(|a| attrs.get(&a.to_ascii_lowercase()))
                .cloned()
                .unwrap_or_default()
        };
        let first = |key: &str| values(key).into_iter().find(|v| !v.trim().is_empty());
        let mut attributes = BTreeMap::new();
        for key in ["phone", "givenname", "surname"] {
            if let Some(value) = first(key) {
                attributes.insert(key.to_string(), value);
            }
        }
        // The identity: the login as the entry spells it (its first value), never as typed —
        // the server matched the typed name ignoring case and spaces.
        let login = attrs
            .get(&self.settings.login_attribute.to_ascii_lowercase())
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_else(|| login.to_string());
        let stable_id = if self.settings.stable_id.is_empty() {
            Some(entry.dn.clone())
        } else {
            self.settings.stable_id.iter().find_map(|name| {
                let name = name.to_ascii_lowercase();
                attrs
                    .get(&name)
                    .and_then(|v| v.first().cloned())
                    .or_else(|| {
                        // objectGUID is binary: ldap3 puts it with the non-UTF-8 values.
                        entry
                            .bin_attrs
                            .iter()
                            .find(|(k, _)| k.to_ascii_lowercase() == name)
                            .and_then(|(_, v)| v.first())
                            .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
                    })
            })
        };
        Ok(UserInfo {
            login,
            stable_id,
            id: entry.dn,
            mobile: first("mobile"),
            email: first("email"),
            groups: values("groups"),
            attributes,
        })
    }

    fn cached(&self, login: &str) -> Option<UserInfo> {
        let cache = self.cache.lock().ok()?;
        let (found, user) = cache.get(login)?;
        (found.elapsed() < self.settings.cache_ttl).then(|| user.clone())
    }

    fn remember(&self, login: &str, user: &UserInfo) {
        if self.settings.cache_ttl.is_zero() {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_CAPACITY {
            let ttl = self.settings.cache_ttl;
            cache.retain(|_, (found, _)| found.elapsed() < ttl);
            if cache.len() >= CACHE_CAPACITY {
                let mut ages: Vec<Instant> = cache.values().map(|(found, _)| *found).collect();
                ages.sort();
                let cut = ages.get(ages.len() / 2).copied();
                cache.retain(|_, (found, _)| Some(*found) > cut);
            }
        }
        cache.insert(login.to_string(), (Instant::now(), user.clone()));
    }

    /// One user bind to URI `index` (`uri`), on a pooled connection when one is idle, else on a
    /// fresh one.
    async fn bind_as(
        &self,
        index: usize,
        uri: &str,
        dn: &str,
        password: &str,
    ) -> Result<u32, Failure> {
        let timeout = self.settings.timeout;
        let attempt = async {
            // A pooled connection the server has closed since (idle timeout, restart) fails
            // at once; then a fresh one is dialled.
            if let Some(ldap) = self.pooled_bind_connection(index)
                && let Ok(code) = self.bind_on(index, ldap, dn, password).await
            {
                return Ok(code);
            }
            let ldap = self.connect(uri).await?;
            self.bind_on(index, ldap, dn, password).await
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Connection(format!("no answer within {timeout:?}"))),
        }
    }

    /// Binds on `ldap` and, when the server answered (whatever it said), keeps the connection
    /// for the next password check.
    async fn bind_on(
        &self,
        index: usize,
        mut ldap: Ldap,
        dn: &str,
        password: &str,
    ) -> Result<u32, Failure> {
        let result = ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(dn, password)
            .await
            .map_err(|e| Failure::Connection(e.to_string()))?;
        if let Ok(mut pool) = self.bind_pool.lock()
            && pool.len() < BIND_POOL_SIZE
        {
            pool.push((index, ldap));
        }
        Ok(result.rc)
    }

    /// An idle password-check connection to URI `index` that is still open, if there is one.
    fn pooled_bind_connection(&self, index: usize) -> Option<Ldap> {
        let mut pool = self.bind_pool.lock().ok()?;
        pool.retain_mut(|(_, ldap)| !ldap.is_closed());
        let at = pool.iter().rposition(|(i, _)| *i == index)?;
        Some(pool.swap_remove(at).1)
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    async fn lookup(&self, login: &str) -> Result<Option<UserInfo>, DirectoryError> {
        if let Some(user) = self.cached(login) {
            return Ok(Some(user));
        }
        let user = self.search(login).await?;
        if let Some(user) = &user {
            self.remember(login, user);
        }
        Ok(user)
    }

    async fn check_password(
        &self,
        user: &UserInfo,
        password: &Secret,
    ) -> Result<bool, DirectoryError> {
        // Before any bind: an empty simple bind is an anonymous bind, and AD says yes to it.
        if password.is_empty() || user.id.is_empty() {
            return Ok(false);
        }
        let Some(password) = password.expose_str() else {
            return Ok(false); // LDAP simple bind passwords are UTF-8 octet strings
        };
        let mut reasons = vec![];
        for index in self.uri_order() {
            let uri = self.settings.uris.get(index).map_or("", String::as_str);
            match self.bind_as(index, uri, &user.id, password).await {
                Ok(code) => {
                    self.forgive(index);
                    if code == rc::SUCCESS {
                        return Ok(true);
                    }
                    if code != rc::INVALID_CREDENTIALS {
                        tracing::info!(directory = %self.name, user = %user.login, rc = code, answer = describe(code), "user bind refused");
                    }
                    return Ok(false);
                }
                Err(Failure::Connection(reason) | Failure::Answer(reason)) => {
                    self.penalise(index, &reason);
                    reasons.push(format!("{uri}: {reason}"));
                }
            }
        }
        Err(self.unavailable(reasons.join("; ")))
    }

    async fn find_users(&self, part: &str, limit: usize) -> Result<Vec<UserInfo>, DirectoryError> {
        // The user filter with `*part*` for the login (the part RFC 4515-escaped, so a `*` or
        // `(` typed is matched as itself); a size limit of `limit` bounds the answer.
        let filter = self
            .settings
            .filter
            .replace("%s", &format!("*{}*", ldap3::ldap_escape(part)));
        let size_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (entries, code) = self.run_search(&filter, size_limit).await?;
        if code != rc::SUCCESS && code != rc::SIZE_LIMIT_EXCEEDED {
            return Err(self.search_failed(code));
        }
        let mut found = entries
            .into_iter()
            .take(limit)
            .map(|entry| self.user_info("", entry))
            .collect::<Result<Vec<_>, _>>()?;
        found.retain(|user| !user.login.is_empty());
        found.sort_by(|a, b| a.login.cmp(&b.login));
        Ok(found)
    }
}

/// RFC 4511 names of the result codes an operator is likely to meet.
fn describe(code: u32) -> &'static str {
    match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "see RFC 4511 §4.1.9",
    }
}
