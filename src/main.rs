//! The `tessera` command line: parses flags, sets up logging, loads the config, builds the
//! layers and hands over to the RADIUS server. Everything else lives in the library.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use tessera::auth::{Engine, SystemClock};
use tessera::config::Config;
use tessera::radius::counters::Counters;
use tessera::radius::dictionary::Dictionary;
use tessera::radius::server;
use tessera::secret::Secret;
use tessera::store::sqlite::open_store;
use tessera::{password_hash, store::Store};

/// A RADIUS server with built-in OTP challenge-response (SMS, e-mail, HOTP, TOTP).
///
/// Exit codes: 0 success; 1 the answer is "no" (check-config found problems); 2 tessera could
/// not run (unreadable files, ports in use, database errors).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, default_value = "conf/tessera.toml")]
    config: PathBuf,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the RADIUS server.
    Serve,
    /// Check the configuration (and the files it names) and print every problem.
    CheckConfig,
    /// Users-file helpers.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Read a password from standard input and print its argon2id hash for the users file.
    Hash,
}

/// What went wrong at the top, mapped to an exit code.
enum Failure {
    /// The answer is "no" (exit 1).
    No(String),
    /// tessera could not run (exit 2).
    Error(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve => serve(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
        Command::User(UserCommand::Hash) => user_hash(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::No(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
        Err(Failure::Error(message)) => {
            eprintln!("tessera: {message}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the config and opens what it names: the same checks for `serve` and `check-config`.
fn load(
    path: &std::path::Path,
) -> Result<
    (
        Config,
        tessera::directory::Realms,
        tessera::delivery::Providers,
        Dictionary,
    ),
    Failure,
> {
    let prefix = |errors: tessera::config::ConfigErrors| {
        Failure::No(
            errors
                .0
                .iter()
                .map(|e| format!("tessera: {e}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    let config = Config::load(path).map_err(prefix)?;
    let realms = config.open_realms().map_err(prefix)?;
    let providers = config.open_providers().map_err(prefix)?;
    let dictionary = config.open_dictionary().map_err(prefix)?;
    Ok((config, realms, providers, dictionary))
}

fn check_config(path: &std::path::Path) -> Result<(), Failure> {
    let (config, _, _, _) = load(path)?;
    println!(
        "{}: ok ({} listen address(es), {} client(s), {} realm(s), {} policies)",
        path.display(),
        config.listen.len(),
        config.clients.len(),
        config.realms.len(),
        config.policies.iter().count()
    );
    Ok(())
}

fn user_hash() -> Result<(), Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::Error(format!("reading stdin: {e}")))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Failure::No("tessera: the password is empty".into()));
    }
    let hash =
        password_hash::hash(&Secret::from(password)).map_err(|e| Failure::Error(e.to_string()))?;
    println!("{hash}");
    Ok(())
}

fn serve(path: &std::path::Path) -> Result<(), Failure> {
    let (config, realms, providers, dictionary) = load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let store = open_store(&config.store.path, &config.store.key_file)
            .map_err(|e| Failure::Error(format!("store {}: {e}", config.store.path.display())))?;
        let engine = Arc::new(Engine::new(
            store.clone(),
            realms,
            config.policies.clone(),
            providers,
            config.auth.clone(),
            Arc::new(SystemClock),
        ));
        let sockets = server::bind(&config.listen)
            .await
            .map_err(|e| Failure::Error(e.to_string()))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        tokio::spawn(purge_challenges(store, shutdown.clone()));
        tracing::info!(config = %config.path.display(), "tessera ready");
        let counters = Arc::new(Counters::default());
        server::run(
            sockets,
            Arc::new(config.clients.clone()),
            engine,
            Arc::new(dictionary),
            &config.server,
            counters,
            shutdown,
        )
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
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

/// Deletes long-expired challenge rows every ten minutes. Rows stay an hour past expiry so the
/// per-user trigger limit can count them.
async fn purge_challenges(store: Arc<dyn Store>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = SystemClock.now_secs();
        match store.purge_challenges(now - 3600).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "expired challenges purged"),
            Err(error) => tracing::warn!(%error, "purging expired challenges failed"),
        }
    }
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for SystemClock {
    fn now_secs(&self) -> i64 {
        tessera::auth::Clock::now(self)
    }
}
