//! The `tessera` command line: parses flags, sets up logging and hands over to the command.
//! The commands live in `cli/`; everything else lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[macro_use]
mod cli;

use cli::Failure;

/// mimalloc instead of glibc's malloc: every request allocates a task and a few buffers, and
/// glibc spends much of that time consolidating free chunks and aligning task cells.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A RADIUS server with built-in OTP challenge-response (SMS, e-mail, HOTP, TOTP).
///
/// Exit codes: 0 success; 1 the answer is "no" (check-config found problems, a token or user
/// does not exist); 2 tessera could not run (unreadable files, ports in use, database errors).
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
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap definitions"
)]
enum Command {
    /// Run the RADIUS server.
    Serve,
    /// Check the configuration (and the files it names) and print every problem.
    CheckConfig,
    /// Maintain the local users file.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Token administration (works while the server runs).
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Show the audit trail, newest first.
    Audit(cli::audit::AuditArgs),
    /// Show the accounting sessions NASes reported, newest first.
    Sessions(cli::sessions::SessionsArgs),
    /// Provider helpers.
    #[command(subcommand)]
    Provider(cli::provider::ProviderCommand),
    /// Store maintenance: copy between backends, apply migrations.
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
    /// Log a user in through a RADIUS server, answering its challenge (UDP or RadSec).
    /// Exit 0 on Access-Accept, 1 on Access-Reject, 2 on no answer.
    Login(cli::login::LoginArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    tessera::tls::install_crypto_provider();
    let result = match cli.command {
        Command::Serve => cli::serve::run(&cli.config),
        Command::CheckConfig => check_config(&cli.config),
        Command::User(command) => cli::user::run(&cli.config, command),
        Command::Provider(command) => cli::provider::run(&cli.config, command),
        Command::Store(command) => cli::store::run(&cli.config, command),
        Command::Token(command) => {
            cli::load_config(&cli.config).and_then(|c| cli::token::run(&c, command))
        }
        Command::Login(args) => cli::login::run(args),
        Command::Audit(args) => {
            cli::load_config(&cli.config).and_then(|c| cli::audit::run(&c, args))
        }
        Command::Sessions(args) => {
            cli::load_config(&cli.config).and_then(|c| cli::sessions::run(&c, args))
        }
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

/// Logs to stderr; levels from `RUST_LOG`, else `info` until the config's `[log] level` (set
/// by `serve`, and again on every reload) takes over.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt, reload};
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        // Every value escaped: a User-Name with a newline must not write a second line.
        LogFormat::Human => fmt::layer()
            .fmt_fields(tessera::log_format::HumanFields)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    if !from_env {
        cli::set_log_filter_handle(handle);
    }
}

fn check_config(path: &std::path::Path) -> Result<(), Failure> {
    let config = cli::load(path)?.config;
    // What `serve` checks when it opens the store: the key file's mode, and that it is the
    // key that sealed the store's seeds. Nothing is created.
    cli::runtime()?
        .block_on(tessera::store::check(&config.store))
        .map_err(|e| Failure::No(format!("tessera: {}: store: {e}", path.display())))?;
    out!(
        "{}: ok ({} listen address(es), {} RadSec, {} client(s), {} realm(s), {} policies)",
        path.display(),
        config.listen.len(),
        config.tls_listen.len(),
        config.clients.len(),
        config.realms.len(),
        config.policies.iter().count()
    );
    Ok(())
}
