//! `tessera serve`: the server's life — start, health checks, reload on SIGHUP, graceful stop.
//!
//! Start: load and check the config (refuse on any problem), open the store, bind the RADIUS
//! sockets (and the metrics and HTTP listeners when configured), then serve. SIGHUP re-reads the config:
//! a good one replaces the engine, the client table and the dictionary, together, for new requests (open challenges live
//! in the store, so they survive); a bad one is logged and the running one stays. SIGTERM or
//! SIGINT stops receiving, lets requests in flight finish within the grace time, and closes the
//! store last.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tessera::auth::backoff::BackoffSchedule;
use tessera::auth::{AuthRequest, Authenticate, Clock, Engine, Outcome, SystemClock};
use tessera::config::Config;
use tessera::delivery::Providers;
use tessera::directory::Realms;
use tessera::http::HttpLive;
use tessera::http::settings::HttpTls;
use tessera::live::Live;
use tessera::metrics::{self, Health};
use tessera::radius::counters::Counters;
use tessera::radius::dictionary::Dictionary;
use tessera::radius::radsec;
use tessera::radius::server;
use tessera::radius::shared::Snapshot;
use tessera::radius::tls::TlsServer;
use tessera::store::Store;

use super::{Failure, load};

/// One configuration's engine, client table and dictionary, to be served (and on reload
/// replaced) together. The engine checks reply attributes against the same dictionary that
/// encodes them.
fn build_snapshot(
    store: &Arc<dyn Store>,
    config: &Config,
    realms: Realms,
    providers: Providers,
    dictionary: Dictionary,
    tls: Option<TlsServer>,
    eap: Option<tessera::eap::EapServer>,
) -> Snapshot<Engine> {
    let dictionary = Arc::new(dictionary);
    let engine = Engine::new(
        store.clone(),
        realms,
        config.policies.clone(),
        providers,
        config.auth.clone(),
        Arc::new(SystemClock),
    )
    .with_reply_check(dictionary.clone())
    .with_retransmit_window(config.server.reply_cache_seconds);
    Snapshot {
        upstreams: Arc::new(config.upstreams.clone()),
        clients: config.clients.clone(),
        auth: engine,
        dictionary,
        tls: tls.map(Arc::new),
        eap: eap.map(Arc::new),
    }
}

/// Logs when the RadSec, HTTP and EAP server certificates expire, and warns within 30 days.
fn check_certificate_expiry(
    tls: Option<&TlsServer>,
    http: Option<&HttpTls>,
    eap: Option<&tessera::eap::EapServer>,
) {
    for (listener, not_after) in [
        ("RadSec", tls.map(|t| t.not_after)),
        ("HTTP", http.map(|t| t.not_after)),
        ("EAP", eap.and_then(|e| e.not_after)),
    ] {
        let Some(not_after) = not_after else { continue };
        let left = not_after - SystemClock.now().as_secs();
        if left < 30 * 86_400 {
            tracing::warn!(
                not_after,
                days_left = left / 86_400,
                "the {listener} server certificate expires within 30 days (replace it and send SIGHUP)"
            );
        } else {
            tracing::info!(
                not_after,
                days_left = left / 86_400,
                "{listener} server certificate"
            );
        }
    }
}

/// No hash of a directory password stays where the policy never checks it.
async fn remove_unused_pins(snapshot: &Snapshot<Engine>) {
    match snapshot.auth.remove_unused_password_pins().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            tokens = n,
            "removed the PIN hashes older versions stored on autoenrolled tokens (otppin is not 0)"
        ),
        Err(error) => tracing::warn!(%error, "could not remove unused PIN hashes"),
    }
}

/// What a reload replaces, each whole: the RADIUS side's snapshot (engine, clients, dictionary,
/// RadSec TLS) and the HTTP listener's allow-list and TLS.
#[derive(Clone)]
struct Swapped {
    served: Arc<Live<Snapshot<Engine>>>,
    http: Arc<Live<HttpLive>>,
}

/// The engine of the configuration in force, for the HTTP front end: read once per request,
/// as the RADIUS server reads its snapshot.
struct CurrentEngine(Arc<Live<Snapshot<Engine>>>);

impl Authenticate for CurrentEngine {
    async fn authenticate(&self, request: AuthRequest) -> Outcome {
        let snapshot = self.0.get();
        snapshot.auth.authenticate(request).await
    }
}

/// What the HTTP listener takes of a configuration: the allow-list, TLS, and `[admin]` with
/// the realms and `[auth]` of the engine being served.
fn http_live(config: &Config, served: &Live<Snapshot<Engine>>, tls: Option<HttpTls>) -> HttpLive {
    let admin = config.admin.enabled.then(|| {
        Arc::new(tessera::http::admin::AdminLive {
            config: config.admin.clone(),
            realms: served.get().auth.realms().clone(),
            auth: config.auth.clone(),
            clients: config.clients.clone(),
        })
    });
    HttpLive {
        allow: config.http.allow.clone(),
        tls: tls.map(|t| t.config),
        admin,
    }
}

/// Binds `[http] listen` and starts serving it; `None` when the section has no address.
async fn start_http(
    config: &Config,
    store: &Arc<dyn Store>,
    swapped: &Swapped,
    health: &Arc<Health>,
    shutdown: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, Failure> {
    if config.http.listen.is_empty() {
        return Ok(None);
    }
    let listeners = tessera::http::server::bind(&config.http.listen)
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    let auth = Arc::new(CurrentEngine(swapped.served.clone()));
    let admin = Arc::new(tessera::http::admin::AdminShared::new(
        auth.clone(),
        store.clone(),
        swapped.http.clone(),
    ));
    let shared = Arc::new(tessera::http::routes::Shared {
        auth,
        health: health.clone(),
        live: swapped.http.clone(),
        admin: Some(admin),
    });
    Ok(Some(tokio::spawn(tessera::http::server::run(
        listeners,
        tessera::http::routes::router(shared),
        swapped.http.clone(),
        tessera::admission::AdmissionLimits {
            max_connections: config.http.max_connections,
            max_per_source: config.http.max_connections_per_source,
            handshake_timeout: tessera::http::server::HEAD_TIMEOUT,
            descriptor_reserve: config.server.descriptor_reserve,
        },
        Duration::from_secs(config.server.shutdown_grace_seconds),
        shutdown.clone(),
    ))))
}

/// The listener of `/metrics` and `/healthz`.
async fn bind_metrics(address: std::net::SocketAddr) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| Failure::Error(format!("cannot serve metrics on {address}: {e}")))?;
    tracing::info!(
        "metrics on http://{}/metrics",
        listener.local_addr().unwrap_or(address)
    );
    Ok(listener)
}

/// The tasks beside the request loops: signals, reload on SIGHUP, health checks, purges and
/// the metrics endpoint. Each ends with `shutdown`.
fn spawn_background(
    path: &Path,
    config: &Config,
    store: &Arc<dyn Store>,
    swapped: &Swapped,
    health: &Arc<Health>,
    metrics_listener: Option<TcpListener>,
    shutdown: &CancellationToken,
) {
    tokio::spawn(watch_signals(shutdown.clone()));
    tokio::spawn(reload_on_hangup(
        path.to_path_buf(),
        config.clone(),
        store.clone(),
        swapped.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(health_checks(
        store.clone(),
        swapped.served.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(purge_challenges(
        store.clone(),
        BackoffSchedule::from_settings(&config.auth).forget_ms,
        shutdown.clone(),
    ));
    tokio::spawn(purge_audit(
        store.clone(),
        config.store.audit_days,
        shutdown.clone(),
    ));
    if !config.accounting_listen.is_empty() || !config.tls_listen.is_empty() {
        tokio::spawn(tessera::accounting::maintain(
            store.clone(),
            config.store.accounting_days,
            shutdown.clone(),
        ));
    }
    if let Some(listener) = metrics_listener {
        tokio::spawn(metrics::serve_http(
            listener,
            health.clone(),
            shutdown.clone(),
        ));
    }
}

/// The gauges read from the configuration in force.
fn register_gauges(served: &Arc<Live<Snapshot<Engine>>>) {
    // Weak: the registry must not keep the engine (and the store) alive past shutdown.
    let watched = Arc::downgrade(served);
    metrics::register_gauge("tessera_tls_certificate_expiry_seconds", move || {
        watched
            .upgrade()
            .and_then(|s| s.get().tls.as_ref().map(|t| t.not_after))
            .map_or(0, |t| usize::try_from(t).unwrap_or(0))
    });
    let watched = Arc::downgrade(served);
    metrics::register_gauge("tessera_backoff_identities_under_attack", move || {
        watched
            .upgrade()
            .map_or(0, |s| s.get().auth.identities_under_attack())
    });
}

/// Binds the RADIUS sockets: authentication, accounting and RadSec.
async fn bind_listeners(config: &Config) -> Result<server::Listeners, Failure> {
    let failed = |e: std::io::Error| Failure::Error(e.to_string());
    Ok(server::Listeners {
        udp: server::bind(&config.listen).await.map_err(failed)?,
        accounting: server::bind_accounting(&config.accounting_listen)
            .await
            .map_err(failed)?,
        tls: radsec::bind(&config.tls_listen).await.map_err(failed)?,
    })
}

/// The accounting engine, where a port takes accounting: its UDP port, or RadSec beside
/// logins.
fn accounting_engine(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Option<Arc<tessera::accounting::Accounting>> {
    (!config.accounting_listen.is_empty() || !config.tls_listen.is_empty()).then(|| {
        Arc::new(tessera::accounting::Accounting::new(
            store.clone(),
            config.store.max_open_sessions_per_nas,
        ))
    })
}

/// Runs the server until a signal stops it.
pub fn run(path: &Path) -> Result<(), Failure> {
    let super::Loaded {
        config,
        realms,
        providers,
        dictionary,
        tls,
        http_tls,
        eap,
    } = load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server.worker_threads())
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    super::apply_log_level(config.log_level.as_deref());
    tessera::descriptors::report_at_start();
    runtime.block_on(async move {
        let store = tessera::store::open(&config.store)
            .await
            .map_err(|e| Failure::Error(format!("store {}: {e}", config.store.describe())))?;
        check_certificate_expiry(tls.as_ref(), http_tls.as_ref(), eap.as_ref());
        let snapshot = build_snapshot(&store, &config, realms, providers, dictionary, tls, eap);
        remove_unused_pins(&snapshot).await;
        let served = Arc::new(Live::new(snapshot));
        register_gauges(&served);
        let health = Arc::new(Health::default());
        let listeners = bind_listeners(&config).await?;
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(bind_metrics(address).await?),
            None => None,
        };

        let swapped = Swapped {
            http: Arc::new(Live::new(http_live(&config, &served, http_tls))),
            served,
        };
        let shutdown = CancellationToken::new();
        let http = start_http(&config, &store, &swapped, &health, &shutdown).await?;
        spawn_background(
            path,
            &config,
            &store,
            &swapped,
            &health,
            metrics_listener,
            &shutdown,
        );
        tracing::info!(config = %config.path.display(), "tessera ready");
        let counters = Arc::new(Counters::default());
        let context = server::Context {
            config: swapped.served,
            health,
            counters,
            accounting: accounting_engine(&config, &store),
        };
        server::run(listeners, context, &config.server, shutdown)
            .await
            .map_err(|e| Failure::Error(e.to_string()))?;
        if let Some(http) = http {
            let _ = http.await;
        }
        // Every request has finished or timed out. Checkpoint the WAL into the database, so a
        // clean stop leaves one file (the store thread ends when the last handle goes).
        match store.checkpoint().await {
            Ok(()) => tracing::debug!("store checkpointed"),
            Err(error) => tracing::warn!(%error, "store not checkpointed on stop"),
        }
        tracing::info!("tessera stopped");
        Ok(())
    })
}

/// SIGTERM or SIGINT: stop receiving, let requests in flight finish, exit.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    shutdown.cancel();
}

/// SIGHUP: re-read the config; swap in a good one, keep the running one on any problem.
async fn reload_on_hangup(
    path: PathBuf,
    mut current: Config,
    store: Arc<dyn Store>,
    swapped: Swapped,
    shutdown: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Swapped { served, http } = swapped;
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload is off");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hangup.recv() => {}
        }
        tracing::info!(config = %path.display(), "SIGHUP received, reloading the configuration");
        let reading = path.clone();
        let loaded = match tokio::task::spawn_blocking(move || load(&reading)).await {
            Ok(loaded) => loaded,
            Err(e) => Err(Failure::Error(e.to_string())),
        };
        let super::Loaded {
            config,
            realms,
            providers,
            dictionary: new_dictionary,
            tls,
            http_tls,
            eap,
        } = match loaded {
            Ok(loaded) => loaded,
            Err(Failure::No(problems) | Failure::Error(problems)) => {
                for line in problems.lines() {
                    tracing::error!("{}", line.trim_start_matches("tessera: "));
                }
                tracing::error!(
                    "configuration not reloaded; the running configuration stays in force"
                );
                continue;
            }
        };
        warn_restart_needed(&config, &current);
        super::apply_log_level(config.log_level.as_deref());
        // Engine, clients, dictionary and TLS certificates in one swap: no request sees a mix.
        check_certificate_expiry(tls.as_ref(), http_tls.as_ref(), eap.as_ref());
        let mut snapshot =
            build_snapshot(&store, &config, realms, providers, new_dictionary, tls, eap);
        snapshot.auth = snapshot.auth.with_unknown_names_of(&served.get().auth);
        served.replace(snapshot);
        http.replace(http_live(&config, &served, http_tls));
        tracing::info!(
            clients = config.clients.len(),
            realms = config.realms.len(),
            "configuration reloaded"
        );
        current = config;
    }
}

/// Warns of the settings a reload cannot apply.
fn warn_restart_needed(config: &Config, current: &Config) {
    for (changed, what) in [
        (config.listen != current.listen, "server.listen"),
        (config.tls_listen != current.tls_listen, "server.tls_listen"),
        (
            config.accounting_listen != current.accounting_listen,
            "server.accounting_listen",
        ),
        (
            config.store.accounting_days != current.store.accounting_days
                || config.store.max_open_sessions_per_nas
                    != current.store.max_open_sessions_per_nas,
            "store.accounting_days or store.max_open_sessions_per_nas",
        ),
        (
            config.store.backend != current.store.backend
                || config.store.key_file != current.store.key_file,
            "store",
        ),
        (
            config.metrics_listen != current.metrics_listen,
            "metrics.listen",
        ),
        (
            config.http.listen != current.http.listen
                || config.http.max_connections != current.http.max_connections
                || config.http.max_connections_per_source
                    != current.http.max_connections_per_source,
            "http.listen or its connection limits",
        ),
    ] {
        if changed {
            tracing::warn!(
                "{what} changed: restart tessera to apply it; everything else is reloaded"
            );
        }
    }
}

/// Every five seconds: can the store commit a write (a probe, as a login's counter update
/// would), and does at least one directory answer? Feeds `/healthz`, `tessera_up` and
/// Status-Server, so a NAS fails over when logins could only be rejected.
async fn health_checks(
    store: Arc<dyn Store>,
    served: Arc<Live<Snapshot<Engine>>>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let probe = match tokio::time::timeout(Duration::from_secs(2), store.ping()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within 2 s".to_string()),
        };
        if let Err(error) = &probe
            && health.is_up()
        {
            tracing::error!(%error, "store health probe failed: a write could not be committed");
        }
        let store_ok = probe.is_ok();
        let current = served.get();
        let directory_ok =
            tokio::time::timeout(Duration::from_secs(5), current.auth.realms().any_answers())
                .await
                .unwrap_or(false);
        health.set(store_ok && directory_ok);
    }
}

/// Deletes long-expired challenge rows every ten minutes (rows stay an hour past expiry so the
/// per-user trigger limit can count them), and back-off rows whose failures are forgotten.
async fn purge_challenges(
    store: Arc<dyn Store>,
    backoff_forget_ms: i64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = SystemClock.now();
        match store.purge_challenges(now.minus_ms(3_600_000)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "expired challenges purged"),
            Err(error) => tracing::warn!(%error, "purging expired challenges failed"),
        }
        match store
            .purge_login_failures(now.minus_ms(backoff_forget_ms))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "forgotten back-off rows purged"),
            Err(error) => tracing::warn!(%error, "purging back-off rows failed"),
        }
    }
}

/// Deletes audit rows older than `[store] audit_days` (0: never) at start and then hourly,
/// a few thousand rows per store job so requests are never held up behind one big delete.
async fn purge_audit(store: Arc<dyn Store>, days: u32, shutdown: CancellationToken) {
    if days == 0 {
        return;
    }
    const ROWS_PER_JOB: u32 = 5000;
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = SystemClock.now().minus_ms(i64::from(days) * 86_400_000);
        let mut purged = 0;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match store.purge_audit(before, ROWS_PER_JOB).await {
                Ok(n) => {
                    purged += n;
                    if n < ROWS_PER_JOB as usize {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "purging old audit rows failed");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(
                rows = purged,
                days,
                "audit rows older than audit_days purged"
            );
        }
    }
}
