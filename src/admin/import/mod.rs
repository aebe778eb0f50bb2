//! Importing hardware tokens from a vendor's seed file: OATH CSV ([`oath_csv`]), PSKC 1.0
//! (RFC 6030, [`pskc`]) and the YubiKey personalization tool's CSV ([`yubikey_csv`]), shared
//! by `tessera token import` and the admin API's upload.
//!
//! Each format's parser turns the file into [`Entry`]s or one [`EntryError`] naming the line
//! or KeyPackage and why; [`import`] then resolves the users a file names, refuses serials
//! that exist (unless asked to replace them) and stores every token in one transaction — one
//! bad entry imports nothing. Seeds stay in [`Secret`]s: no message, log line or audit row
//! here holds one (the audit says who imported how many tokens from which file).

pub mod oath_csv;
pub mod pskc;
pub mod yubikey_csv;

use std::fmt;
use std::str::FromStr;

use super::actor::Actor;
use super::audit::{Change, record};
use super::error::AdminError;
use super::tokens::Admin;
use crate::directory::Realms;
use crate::secret::Secret;
use crate::store::audit::AuditAction;
use crate::store::{HashAlgorithm, StoreError, Token, TokenKind};

/// The formats a seed file comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `serial, key, type, digits, counter|step[, hash][, user]` (LinOTP's and privacyIDEA's).
    OathCsv,
    /// PSKC 1.0 (RFC 6030), keys plain or AES-128-CBC encrypted.
    Pskc,
    /// The YubiKey personalization tool's log: public id, private id, AES key.
    YubikeyCsv,
}

impl FromStr for ImportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "oathcsv" | "csv" | "oath" => Ok(ImportFormat::OathCsv),
            "pskc" => Ok(ImportFormat::Pskc),
            "yubikey" | "yubikeycsv" | "yubico" => Ok(ImportFormat::YubikeyCsv),
            other => Err(format!(
                "unknown import format {other:?} (expected csv, pskc or yubikey)"
            )),
        }
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImportFormat::OathCsv => "oath csv",
            ImportFormat::Pskc => "pskc",
            ImportFormat::YubikeyCsv => "yubikey csv",
        })
    }
}

impl ImportFormat {
    /// The format of `file` when none is given: PSKC when it is XML, else OATH CSV.
    pub fn detect(file: &[u8]) -> Self {
        let text = file.strip_prefix(b"\xef\xbb\xbf").unwrap_or(file);
        match text.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => ImportFormat::Pskc,
            _ => ImportFormat::OathCsv,
        }
    }
}

/// What decrypts a PSKC file's keys: a pre-shared AES key or a password (PBKDF2).
#[derive(Debug, Clone, Default)]
pub struct ImportKeys {
    /// The pre-shared key (16 octets).
    pub psk: Option<Secret>,
    /// The password the key is derived from.
    pub password: Option<Secret>,
}

/// One token a file describes. `Debug` prints no seed ([`Secret`]'s).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where in the file: `line 3`, `KeyPackage 2`.
    pub at: String,
    /// The serial.
    pub serial: String,
    /// HOTP, TOTP or YubiKey.
    pub kind: TokenKind,
    /// The HMAC key, or a YubiKey's AES key and private id.
    pub seed: Secret,
    /// OTP length (44 for a YubiKey).
    pub digits: u32,
    /// HOTP: the next counter.
    pub counter: u64,
    /// HOTP/TOTP: the hash.
    pub algorithm: HashAlgorithm,
    /// TOTP: the time step in seconds.
    pub time_step: Option<u32>,
    /// YubiKey: the public id.
    pub public_id: Option<String>,
    /// The user the file assigns it to, as written.
    pub user: Option<String>,
}

/// Why an entry (or the file) cannot be imported: where, and why. Never holds a seed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {why}")]
pub struct EntryError {
    /// `line 3`, `KeyPackage 2`, or `file` for the file as a whole.
    pub at: String,
    /// Why.
    pub why: String,
}

impl EntryError {
    /// An error at `at`.
    pub fn new(at: impl Into<String>, why: impl Into<String>) -> Self {
        EntryError {
            at: at.into(),
            why: why.into(),
        }
    }
}

/// [`parse`] on a blocking thread: a file of up to 8 MiB of XML, and PBKDF2 with up to ten
/// million rounds, are seconds of CPU that must not hold one of the runtime's threads (the
/// RADIUS and HTTP requests run there).
pub async fn parse_off_runtime(
    format: ImportFormat,
    file: Vec<u8>,
    keys: ImportKeys,
) -> Result<Vec<Entry>, EntryError> {
    tokio::task::spawn_blocking(move || parse(format, &file, &keys))
        .await
        .unwrap_or_else(|e| Err(EntryError::new("file", format!("the parser stopped: {e}"))))
}

/// The entries of `file` in `format`.
pub fn parse(
    format: ImportFormat,
    file: &[u8],
    keys: &ImportKeys,
) -> Result<Vec<Entry>, EntryError> {
    let entries = match format {
        ImportFormat::OathCsv => oath_csv::parse(text(file)?)?,
        ImportFormat::Pskc => pskc::parse(text(file)?, keys)?,
        ImportFormat::YubikeyCsv => yubikey_csv::parse(text(file)?)?,
    };
    if entries.is_empty() {
        return Err(EntryError::new("file", "holds no token"));
    }
    for (i, entry) in entries.iter().enumerate() {
        if let Some(first) = entries
            .iter()
            .take(i)
            .find(|e| e.serial.eq_ignore_ascii_case(&entry.serial))
        {
            return Err(EntryError::new(
                &entry.at,
                format!("serial {} is also at {}", entry.serial, first.at),
            ));
        }
    }
    Ok(entries)
}

fn text(file: &[u8]) -> Result<&str, EntryError> {
    let file = file.strip_prefix(b"\xef\xbb\xbf").unwrap_or(file);
    std::str::from_utf8(file).map_err(|e| EntryError::new("file", format!("not UTF-8: {e}")))
}

/// A hash algorithm for a key of `len` octets when the file names none (privacyIDEA and
/// LinOTP: 32 octets are SHA-256, 64 SHA-512).
pub fn algorithm_for_key(len: usize) -> HashAlgorithm {
    match len {
        32 => HashAlgorithm::Sha256,
        64 => HashAlgorithm::Sha512,
        _ => HashAlgorithm::Sha1,
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The file's name, for messages and the audit.
    pub file_name: String,
    /// Its format.
    pub format: ImportFormat,
    /// Its content.
    pub file: Vec<u8>,
    /// What decrypts a PSKC file.
    pub keys: ImportKeys,
    /// Replace tokens whose serial exists (else such a file imports nothing).
    pub overwrite: bool,
}

/// What an import stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// The serials, in the file's order.
    pub serials: Vec<String>,
    /// How many were assigned to a user.
    pub assigned: usize,
}

/// Imports the tokens of a file, all or none, and writes the audit row either way.
pub async fn import(
    admin: &Admin<'_>,
    realms: &Realms,
    actor: &Actor,
    request: ImportRequest,
) -> Result<Imported, AdminError> {
    let name = request.file_name.clone();
    let format = request.format;
    let outcome = store_all(admin, realms, request).await;
    let detail = match &outcome {
        Ok(done) => format!(
            "{} tokens ({} assigned) from {name} ({format})",
            done.serials.len(),
            done.assigned
        ),
        Err(_) => format!("nothing from {name} ({format})"),
    };
    let message = outcome.as_ref().err().map(ToString::to_string);
    record(
        admin.store,
        actor,
        Change::of(AuditAction::TokenImport, None, None).detail(detail),
        message.as_deref().map_or(Ok(()), Err),
        admin.clock.now(),
    )
    .await?;
    outcome
}

async fn store_all(
    admin: &Admin<'_>,
    realms: &Realms,
    request: ImportRequest,
) -> Result<Imported, AdminError> {
    let name = &request.file_name;
    let bad = |e: EntryError| AdminError::BadInput(format!("{name}: {e}; nothing imported"));
    let entries = parse_off_runtime(request.format, request.file, request.keys)
        .await
        .map_err(bad)?;
    let now = admin.clock.now();
    let mut tokens = Vec::with_capacity(entries.len());
    let mut assigned = 0;
    for entry in entries {
        let (user, realm) = match &entry.user {
            Some(typed) => {
                let (user, realm) = super::users::resolve(realms, typed)
                    .await
                    .map_err(|e| bad(EntryError::new(&entry.at, e.to_string())))?;
                assigned += 1;
                (user.login, realm)
            }
            None => (String::new(), String::new()),
        };
        if !request.overwrite && admin.store.token(&entry.serial).await?.is_some() {
            return Err(bad(EntryError::new(
                &entry.at,
                format!(
                    "a token with serial {} exists (--force replaces it)",
                    entry.serial
                ),
            )));
        }
        tokens.push(Token {
            serial: entry.serial,
            kind: entry.kind,
            user,
            realm,
            seed: entry.seed,
            counter: entry.counter,
            digits: entry.digits,
            pin_hash: None,
            phone: None,
            email: None,
            active: true,
            fail_count: 0,
            max_fail: admin.auth.max_fail,
            last_fail_at: None,
            description: crate::store::decide::description(&format!("imported from {name}")),
            created_at: now,
            owner_id: None,
            autoenrolled: false,
            last_used: None,
            pending: false,
            algorithm: entry.algorithm,
            time_step: entry.time_step,
            public_id: entry.public_id,
        });
    }
    let serials: Vec<String> = tokens.iter().map(|t| t.serial.clone()).collect();
    let stored = if request.overwrite {
        admin.store.replace_tokens(tokens).await
    } else {
        admin.store.insert_tokens(tokens).await
    };
    match stored {
        Ok(()) => Ok(Imported { serials, assigned }),
        // Another import (or a YubiKey's public id already held) won: still all or nothing.
        Err(StoreError::Duplicate(serial)) => Err(AdminError::BadInput(format!(
            "{name}: token {serial} collides with a stored token (its serial, or its \
             YubiKey public id); nothing imported"
        ))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// On a runtime of one thread, another task runs while a file is parsed only when the
    /// parse is off the runtime's thread.
    #[tokio::test(flavor = "current_thread")]
    async fn a_file_is_parsed_off_the_runtimes_threads() {
        let ran = Arc::new(AtomicBool::new(false));
        tokio::spawn({
            let ran = ran.clone();
            async move { ran.store(true, Ordering::SeqCst) }
        });
        let file = b"tok1, 3132333435363738393031323334353637383930, hotp, 6\n".to_vec();
        let keys = ImportKeys {
            psk: None,
            password: None,
        };
        let entries = parse_off_runtime(ImportFormat::OathCsv, file, keys).await;
        assert_eq!(entries.map(|e| e.len()), Ok(1));
        assert!(
            ran.load(Ordering::SeqCst),
            "the parse held the runtime's thread"
        );
    }
}
