//! `tessera token import FILE`: a vendor's seed file (OATH CSV, PSKC, the YubiKey
//! personalization tool's CSV) through `tessera::admin::import`, the operation the admin
//! API's upload runs, with the OS user as the actor. The pre-shared key and the password come
//! from files (never the command line, where `ps` shows them); no seed is ever printed.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tessera::admin::import::{ImportFormat, ImportKeys, ImportRequest, import};
use tessera::admin::{Actor, Admin};
use tessera::config::Config;
use tessera::secret::Secret;

use super::Failure;
use super::print_json;

/// The largest seed file read (a PSKC file of thousands of fobs is a few megabytes).
const FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// `token import` options.
#[derive(Args)]
pub struct ImportArgs {
    /// The seed file, or `-` for standard input.
    file: PathBuf,
    /// csv (OATH CSV), pskc or yubikey (the personalization tool's CSV); default: pskc when
    /// the file is XML, else csv.
    #[arg(long)]
    format: Option<String>,
    /// PSKC: a file holding the pre-shared AES-128 key in hex (32 hex digits).
    #[arg(long, value_name = "FILE")]
    psk_file: Option<PathBuf>,
    /// PSKC: a file holding the password the key is derived from (PBKDF2); its first line.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Replace tokens whose serial exists (else such a file imports nothing).
    #[arg(long, alias = "overwrite")]
    force: bool,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Reads at most `limit` octets of `path` (`-`: standard input).
fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    let mut bytes = vec![];
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| Failure::Error(format!("{what} {}: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::No(format!(
            "tessera: {what} {}: larger than {limit} octets",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The keys the options name: the PSK's hex decoded, the password's first line.
fn keys(args: &ImportArgs) -> Result<ImportKeys, Failure> {
    let psk = match &args.psk_file {
        None => None,
        Some(path) => {
            let text = Secret::new(read(path, 4096, "--psk-file")?);
            let key = text
                .expose_str()
                .and_then(|t| tessera::hex::decode(t.trim()))
                .filter(|k| k.len() == 16);
            Some(Secret::new(key.ok_or_else(|| {
                Failure::No(format!(
                    "tessera: --psk-file {}: expected 32 hex digits (an AES-128 key)",
                    path.display()
                ))
            })?))
        }
    };
    let password = match &args.password_file {
        None => None,
        Some(path) => {
            let text = Secret::new(read(path, 4096, "--password-file")?);
            let line = text
                .expose()
                .split(|b| *b == b'\n')
                .next()
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .unwrap_or_default();
            Some(Secret::new(line))
        }
    };
    Ok(ImportKeys { psk, password })
}

/// Runs `token import`.
pub async fn run(
    config: &Config,
    admin: &Admin<'_>,
    actor: &Actor,
    args: ImportArgs,
) -> Result<(), Failure> {
    let file = read(&args.file, FILE_LIMIT, "file")?;
    let format = match &args.format {
        Some(f) => f
            .parse::<ImportFormat>()
            .map_err(|e| Failure::No(format!("tessera: --format: {e}")))?,
        None => ImportFormat::detect(&file),
    };
    let keys = keys(&args)?;
    let realms = config
        .open_realms()
        .map_err(|e| Failure::No(e.to_string()))?;
    let request = ImportRequest {
        file_name: args.file.display().to_string(),
        format,
        file,
        keys,
        overwrite: args.force,
    };
    let imported = import(admin, &realms, actor, request).await.map_err(|e| {
        if e.is_refusal() {
            Failure::No(format!("tessera: {e}"))
        } else {
            Failure::Error(e.to_string())
        }
    })?;
    if args.json {
        print_json(&json!(imported));
    } else {
        out!(
            "{} tokens imported from {} ({} assigned)",
            imported.serials.len(),
            args.file.display(),
            imported.assigned
        );
        for serial in &imported.serials {
            out!("{serial}");
        }
    }
    Ok(())
}
