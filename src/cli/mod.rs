//! Admin commands that work on the token store next to a running server (SQLite in WAL mode
//! lets both read and write): `tessera token …`, `tessera audit` and `tessera sessions`.
//!
//! Output is aligned text for people and `--json` for scripts. Results go to stdout,
//! diagnostics to stderr; the exit code says "ok" (0), "no" (1) or "could not run" (2).

/// `println!` for results. A closed pipe (`tessera audit | head -1`) ends the command quietly
/// with success, as ripgrep does, instead of a panic and exit 101; any other write error is
/// exit 2.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

pub mod audit;
pub mod identities;
pub mod import;
pub mod login;
pub mod provider;
pub mod serve;
pub mod sessions;
pub mod store;
pub mod token;
pub mod user;

use std::sync::Arc;

use tessera::config::Config;
use tessera::store::Store;
use tessera::time::UnixMs;

/// What went wrong at the top, mapped to an exit code.
pub enum Failure {
    /// The answer is "no" (exit 1): a check failed, a token does not exist.
    No(String),
    /// tessera could not run (exit 2).
    Error(String),
}

/// The layers a config describes, opened.
pub struct Loaded {
    /// The checked config.
    pub config: Config,
    /// Its realms, directories opened.
    pub realms: tessera::directory::Realms,
    /// Its providers, built.
    pub providers: tessera::delivery::Providers,
    /// The RADIUS dictionary.
    pub dictionary: tessera::radius::dictionary::Dictionary,
    /// RadSec's TLS configuration, when `tls_listen` is set.
    pub tls: Option<tessera::radius::tls::TlsServer>,
    /// The HTTP listener's TLS configuration, when `[http]` has a certificate.
    pub http_tls: Option<tessera::http::settings::HttpTls>,
    /// EAP's methods and TLS configuration, when `[eap]` has methods.
    pub eap: Option<tessera::eap::EapServer>,
}

type LogFilterHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The log filter the config may change (absent when `RUST_LOG` rules).
static LOG_FILTER: std::sync::OnceLock<LogFilterHandle> = std::sync::OnceLock::new();

/// Lets `[log] level` change the log filter (called once at start when `RUST_LOG` is unset).
pub fn set_log_filter_handle(handle: LogFilterHandle) {
    let _ = LOG_FILTER.set(handle);
}

/// Applies the config's `[log] level`, unless `RUST_LOG` was given (it wins).
pub fn apply_log_level(level: Option<&str>) {
    let (Some(handle), Some(level)) = (LOG_FILTER.get(), level) else {
        return;
    };
    match tracing_subscriber::EnvFilter::try_new(level) {
        Ok(filter) => {
            if let Err(error) = handle.reload(filter) {
                tracing::warn!(%error, "log level not changed");
            }
        }
        Err(error) => tracing::warn!(%error, level, "log level not changed"),
    }
}

/// Config problems, one `tessera: file:line: key: message` line each (exit 1).
pub fn config_failure(errors: tessera::config::ConfigErrors) -> Failure {
    let lines: Vec<String> = errors.0.iter().map(|e| format!("tessera: {e}")).collect();
    Failure::No(lines.join("\n"))
}

/// Loads and checks the config alone (for admin commands).
pub fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    Config::load(path).map_err(config_failure)
}

/// Loads the config and opens what it names: the same checks for `serve`, `check-config` and
/// a reload.
pub fn load(path: &std::path::Path) -> Result<Loaded, Failure> {
    let config = Config::load(path).map_err(config_failure)?;
    let dictionary = config.open_dictionary().map_err(config_failure)?;
    config
        .check_reply_attributes(&dictionary)
        .map_err(config_failure)?;
    let realms = config.open_realms().map_err(config_failure)?;
    let providers = config.open_providers().map_err(config_failure)?;
    let tls = config.open_tls().map_err(config_failure)?;
    let http_tls = config.open_http_tls().map_err(config_failure)?;
    let eap = config.open_eap().map_err(config_failure)?;
    Ok(Loaded {
        eap,
        config,
        realms,
        providers,
        dictionary,
        tls,
        http_tls,
    })
}

/// Opens the store the config names, on `runtime` (a PostgreSQL pool's connections live on
/// the runtime that opened them, so the command must run on the same one), creating the
/// database and the key file where there are none (see [`existing_store`]).
pub fn store(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<Arc<dyn Store>, Failure> {
    runtime
        .block_on(tessera::store::open(&config.store))
        .map_err(|e| Failure::Error(format!("store {}: {e}", config.store.describe())))
}

/// Opens the store for a command that reads it or changes what it holds (`token list`,
/// `token show`, `token disable`, `audit`, the source of `store copy` …), creating nothing:
/// where there is no store yet — no SQLite file, or no key file — the answer is "no" (exit 1)
/// with what is missing, instead of a new empty database and a new key beside it. Only
/// `serve`, `token enroll` and `store migrate` create them ([`store`]).
pub fn existing_store(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<Arc<dyn Store>, Failure> {
    let missing = |path: &std::path::Path| matches!(path.try_exists(), Ok(false));
    if let Some(path) = config.store.sqlite_path()
        && missing(path)
    {
        return Err(Failure::No(format!(
            "tessera: no database at {} (nothing enrolled yet?)",
            path.display()
        )));
    }
    let key_file = &config.store.key_file;
    if missing(key_file) {
        // A store that holds sealed seeds says its key file is missing (exit 2); one that
        // does not has nothing to read yet.
        runtime
            .block_on(tessera::store::check(&config.store))
            .map_err(|e| Failure::Error(format!("store {}: {e}", config.store.describe())))?;
        return Err(Failure::No(format!(
            "tessera: no key file at {} (nothing enrolled yet?)",
            key_file.display()
        )));
    }
    store(runtime, config)
}

/// Writes one line to stdout for the `out!` macro.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("tessera: cannot write to stdout: {e}");
            std::process::exit(2)
        }
    }
}

/// A single-threaded runtime for a command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))
}

/// Prints rows as columns aligned under their headers. Control characters in cells are
/// escaped (rows written by older versions may hold them raw): one row, one line.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| tessera::log_format::escape_controls(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &serde_json::Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Now.
pub fn now() -> UnixMs {
    UnixMs::now()
}
