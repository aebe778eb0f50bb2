//! `tessera store copy --from OLD.toml --to NEW.toml`: moves tokens (seeds as sealed), challenges
//! and the audit trail between two configured stores — SQLite to PostgreSQL when a second
//! node joins, and back. Nothing is re-sealed, so both configs must name the same key (the
//! same key file, or a copy of it); the target must be empty unless `--force`.
//! `tessera store migrate`: opens the configured store, which applies pending migrations.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tessera::store::seal::SealKey;

use super::{Failure, existing_store, load_config, runtime, store};

/// Store commands.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy tokens, challenges and audit from one configured store to another (e.g. SQLite to
    /// PostgreSQL); seeds are copied sealed, so both configs must use the same key.
    Copy {
        /// The config whose `[store]` is read.
        #[arg(long)]
        from: PathBuf,
        /// The config whose `[store]` is written.
        #[arg(long)]
        to: PathBuf,
        /// Replace what the target holds instead of refusing a non-empty target.
        #[arg(long)]
        force: bool,
    },
    /// Apply pending schema migrations to the configured store (`serve` does this at start).
    Migrate,
}

/// Runs a store command.
pub fn run(config: &Path, command: StoreCommand) -> Result<(), Failure> {
    match command {
        StoreCommand::Migrate => {
            let config = load_config(config)?;
            let runtime = runtime()?;
            store(&runtime, &config)?;
            out!("{}: schema up to date", config.store.describe());
            Ok(())
        }
        StoreCommand::Copy { from, to, force } => copy(&from, &to, force),
    }
}

fn copy(from: &Path, to: &Path, force: bool) -> Result<(), Failure> {
    let source = load_config(from)?;
    let target = load_config(to)?;
    if source.store.backend == target.store.backend {
        return Err(Failure::No(format!(
            "tessera: {} and {} name the same store",
            from.display(),
            to.display()
        )));
    }
    // Seeds travel sealed: the target must open them with its own key file, so it must be
    // the same key — and it must exist before the target store is opened, which would
    // otherwise make a new one.
    let load = |path: &Path| match SealKey::load(path) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(Failure::Error(format!(
            "key file {} does not exist: both stores need the key of {} (seeds are copied sealed)",
            path.display(),
            source.store.key_file.display()
        ))),
        Err(e) => Err(Failure::Error(e.to_string())),
    };
    let source_key = load(&source.store.key_file)?;
    let target_key = load(&target.store.key_file)?;
    if source_key.fingerprint() != target_key.fingerprint() {
        return Err(Failure::Error(format!(
            "key files {} and {} differ: copy {} to {} (seeds are copied sealed)",
            source.store.key_file.display(),
            target.store.key_file.display(),
            source.store.key_file.display(),
            target.store.key_file.display()
        )));
    }
    let runtime = runtime()?;
    let from_store = existing_store(&runtime, &source)?;
    let to_store = store(&runtime, &target)?;
    let dump = runtime
        .block_on(from_store.export())
        .map_err(|e| Failure::Error(format!("reading {}: {e}", source.store.describe())))?;
    let counts = (
        dump.tokens.len(),
        dump.challenges.len(),
        dump.backoff.len(),
        dump.grace.len(),
        dump.audit.len(),
    );
    runtime
        .block_on(to_store.import(dump, force))
        .map_err(|e| match e {
            tessera::store::StoreError::NotEmpty(_) => {
                Failure::No(format!("tessera: {}: {e}", target.store.describe()))
            }
            e => Failure::Error(format!("writing {}: {e}", target.store.describe())),
        })?;
    out!(
        "copied {} tokens, {} challenge rows, {} back-off rows, {} grace rows and {} audit rows \
         from {} to {}",
        counts.0,
        counts.1,
        counts.2,
        counts.3,
        counts.4,
        source.store.describe(),
        target.store.describe()
    );
    Ok(())
}
