//! `tessera token …`: list, show, enroll, enable, disable, delete, unlock, resync, assign,
//! unassign, set-pin, identities (in `identities.rs`), import (in `import.rs`). The changes are `tessera::admin`'s operations, the ones the
//! admin API runs, with the OS user as the actor; this file parses and prints.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::json;
use tessera::admin::enroll::EnrollRequest;
use tessera::admin::{self, Actor, Admin, AdminError};
use tessera::config::Config;
use tessera::password_hash;
use tessera::rfc3339;
use tessera::secret::Secret;
use tessera::store::audit::AuditAction;
use tessera::store::{Store, Token, TokenKind};

use super::audit::{audit_change, os_user};
use super::{Failure, print_json, print_table};

/// Token administration.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// List tokens, optionally of one user or realm.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Only tokens of this realm.
        #[arg(long)]
        realm: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one token.
    Show {
        /// The serial.
        serial: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Enroll a token for a user. hotp/totp print an otpauth:// URI and a QR code to scan.
    Enroll(EnrollArgs),
    /// Enable a disabled token.
    Enable {
        /// The serial.
        serial: String,
    },
    /// Disable a token (it is skipped until enabled).
    Disable {
        /// The serial.
        serial: String,
    },
    /// Delete a token and its open challenges.
    Delete {
        /// The serial.
        serial: String,
    },
    /// Reset a token's fail counter, ending a lockout.
    Unlock {
        /// The serial.
        serial: String,
    },
    /// Bring a HOTP or TOTP token that drifted back in step, from two consecutive codes.
    Resync {
        /// The serial.
        serial: String,
        /// A code from the token.
        otp1: String,
        /// The code that follows it.
        otp2: String,
    },
    /// Hand a token nobody holds (an imported fob) to a user, as a helpdesk hands it out.
    Assign {
        /// The serial.
        serial: String,
        /// The user (`user` or `user@realm`), looked up in the directories.
        user: String,
    },
    /// Take a token back from its holder: it stays, unassigned, until assigned again.
    Unassign {
        /// The serial.
        serial: String,
    },
    /// Import hardware tokens from a vendor's seed file: OATH CSV, PSKC (RFC 6030) or the
    /// YubiKey personalization tool's CSV. All of the file or nothing.
    Import(super::import::ImportArgs),
    /// Set the token PIN (used with otppin=0), read from standard input; empty clears it.
    SetPin {
        /// The serial.
        serial: String,
    },
    /// List tokens stored under a spelling of the owner's name that is not the directory's
    /// (made by versions before identities were canonical), with the identity they belong to.
    Identities {
        /// Move each such token to its identity when the identity has no token of its own.
        #[arg(long)]
        fix: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `token enroll` options.
#[derive(Args)]
pub struct EnrollArgs {
    /// hotp, totp, sms, email or yubikey.
    #[arg(long = "type")]
    kind: String,
    /// The owner (`user` or `user@realm`).
    #[arg(long)]
    user: String,
    /// SMS tokens: the phone number (default: the user's mobile in the directory).
    #[arg(long)]
    phone: Option<String>,
    /// E-mail tokens: the address (default: the user's e-mail in the directory).
    #[arg(long)]
    email: Option<String>,
    /// hotp/totp: a file holding an existing seed in hex (e.g. a hardware token's), or `-` to
    /// read it from standard input; default: a new random seed. yubikey: its AES key in hex
    /// (16 octets), required. (Never on the command line, where `ps` and the shell's history
    /// would show it.)
    #[arg(long, value_name = "FILE")]
    seed_file: Option<std::path::PathBuf>,
    /// Refused: the seed on the command line is visible in `ps` and the shell's history.
    #[arg(long, hide = true, num_args = 0..=1, value_name = "HEX")]
    seed: Option<Option<Secret>>,
    /// yubikey: its public id (12 modhex characters, the start of every OTP it types).
    #[arg(long)]
    public_id: Option<String>,
    /// yubikey: its private id in hex (6 octets).
    #[arg(long)]
    private_id: Option<String>,
    /// A description.
    #[arg(long, default_value = "")]
    description: String,
    /// JSON instead of text (includes the otpauth URI).
    #[arg(long)]
    json: bool,
}

fn token_json(t: &Token) -> serde_json::Value {
    json!({
        "serial": t.serial,
        "type": t.kind.as_str(),
        "user": t.user,
        "realm": t.realm,
        "active": t.active,
        "counter": t.counter,
        "digits": t.digits,
        "algorithm": t.algorithm.as_str(),
        "time_step": t.time_step,
        "public_id": t.public_id,
        "fail_count": t.fail_count,
        "max_fail": t.max_fail,
        "locked": t.fail_count >= t.max_fail,
        "has_pin": t.pin_hash.is_some(),
        "phone": t.phone,
        "email": t.email,
        "description": t.description,
        "created": rfc3339::format(t.created_at.as_secs()),
    })
}

async fn existing(store: &dyn Store, serial: &str) -> Result<Token, Failure> {
    store
        .token(serial)
        .await
        .map_err(|e| Failure::Error(e.to_string()))?
        .ok_or_else(|| Failure::No(format!("tessera: no token with serial {serial}")))
}

/// An admin operation's error as the command's: a refusal is "no" (exit 1), anything else
/// "could not run" (exit 2).
fn failure(error: AdminError) -> Failure {
    if error.is_refusal() {
        Failure::No(format!("tessera: {error}"))
    } else {
        Failure::Error(error.to_string())
    }
}

/// Runs a token command. A command that changes something writes an audit row, whether it
/// worked or not (the admin layer's, for the changes the admin API makes too).
pub fn run(config: &Config, command: TokenCommand) -> Result<(), Failure> {
    if let TokenCommand::Enroll(EnrollArgs { seed: Some(_), .. }) = &command {
        return Err(Failure::Error(
            "--seed no longer takes the seed on the command line, where ps and the shell's \
             history show it: put it in a file readable only by you and give --seed-file FILE, \
             or pipe it in with --seed-file -"
                .into(),
        ));
    }
    let runtime = super::runtime()?;
    // Only enrolment and import may make the store; every other command needs one that
    // exists.
    let store = match command {
        TokenCommand::Enroll(_) | TokenCommand::Import(_) => super::store(&runtime, config)?,
        _ => super::existing_store(&runtime, config)?,
    };
    runtime.block_on(async move { execute(config, store.as_ref(), command).await })
}

/// Carries out a token command.
async fn execute(config: &Config, store: &dyn Store, command: TokenCommand) -> Result<(), Failure> {
    let failed = |e: tessera::store::StoreError| Failure::Error(e.to_string());
    let admin = Admin::new(store, &config.auth).with_disconnect(&config.clients);
    let actor = Actor::cli(&os_user());
    match command {
        TokenCommand::List { user, realm, json } => {
            let tokens = store
                .list_tokens(user.as_deref(), realm.as_deref())
                .await
                .map_err(failed)?;
            if json {
                print_json(&serde_json::Value::Array(
                    tokens.iter().map(token_json).collect(),
                ));
            } else {
                print_token_list(&tokens);
            }
        }
        TokenCommand::Show { serial, json } => {
            let t = existing(store, &serial).await?;
            let value = token_json(&t);
            if json {
                print_json(&value);
            } else {
                print_fields(&value);
            }
        }
        TokenCommand::Enroll(args) => enroll(config, &admin, &actor, args).await?,
        TokenCommand::Identities { fix, json } => {
            super::identities::run(config, store, fix, json).await?
        }
        TokenCommand::Enable { serial } => set_active(&admin, &actor, &serial, true).await?,
        TokenCommand::Disable { serial } => set_active(&admin, &actor, &serial, false).await?,
        TokenCommand::Delete { serial } => {
            admin.remove(&actor, &serial).await.map_err(failure)?;
            out!("{serial}: deleted");
        }
        TokenCommand::Assign { serial, user } => {
            assign(config, &admin, &actor, &serial, Some(&user)).await?
        }
        TokenCommand::Unassign { serial } => assign(config, &admin, &actor, &serial, None).await?,
        TokenCommand::Import(args) => super::import::run(config, &admin, &actor, args).await?,
        TokenCommand::Unlock { serial } => {
            admin.reset(&actor, &serial).await.map_err(failure)?;
            out!("{serial}: unlocked");
        }
        TokenCommand::Resync { serial, otp1, otp2 } => {
            admin
                .resync(&actor, &serial, &otp1, &otp2)
                .await
                .map_err(failure)?;
            out!("{serial}: resynced");
        }
        TokenCommand::SetPin { serial } => {
            let before = store.token(&serial).await.ok().flatten();
            let outcome = set_pin(store, &serial).await;
            audit_change(
                store,
                AuditAction::TokenSetPin,
                before.as_ref(),
                Some(serial),
                &outcome,
            )
            .await;
            outcome?;
        }
    }
    Ok(())
}

/// `token enable` and `token disable`.
async fn set_active(
    admin: &Admin<'_>,
    actor: &Actor,
    serial: &str,
    active: bool,
) -> Result<(), Failure> {
    admin
        .set_active(actor, serial, active)
        .await
        .map_err(failure)?;
    out!("{serial}: {}", if active { "enabled" } else { "disabled" });
    Ok(())
}

/// `token assign` (a user given) and `token unassign`.
async fn assign(
    config: &Config,
    admin: &Admin<'_>,
    actor: &Actor,
    serial: &str,
    user: Option<&str>,
) -> Result<(), Failure> {
    let Some(user) = user else {
        admin.unassign(actor, serial).await.map_err(failure)?;
        out!("{serial}: unassigned");
        return Ok(());
    };
    let realms = config
        .open_realms()
        .map_err(|e| Failure::No(e.to_string()))?;
    let token = admin
        .assign(&realms, actor, serial, user)
        .await
        .map_err(failure)?;
    out!("{serial}: assigned to {}@{}", token.user, token.realm);
    Ok(())
}

/// `token set-pin`: the PIN from standard input, hashed; empty clears it.
async fn set_pin(store: &dyn Store, serial: &str) -> Result<(), Failure> {
    existing(store, serial).await?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::Error(format!("reading stdin: {e}")))?;
    let pin = input.trim_end_matches(['\n', '\r']);
    let hash = if pin.is_empty() {
        None
    } else {
        Some(password_hash::hash(&Secret::from(pin)).map_err(|e| Failure::Error(e.to_string()))?)
    };
    let cleared = hash.is_none();
    store
        .set_pin_hash(serial, hash)
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    out!(
        "{serial}: {}",
        if cleared { "PIN cleared" } else { "PIN set" }
    );
    Ok(())
}

/// `token list` as a table.
fn print_token_list(tokens: &[Token]) {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let state = if !t.active {
                "disabled"
            } else if t.fail_count >= t.max_fail {
                "locked"
            } else {
                "active"
            };
            vec![
                t.serial.clone(),
                t.kind.to_string(),
                if t.is_assigned() {
                    format!("{}@{}", t.user, t.realm)
                } else {
                    "-".into()
                },
                state.into(),
                format!("{}/{}", t.fail_count, t.max_fail),
                t.description.clone(),
            ]
        })
        .collect();
    print_table(
        &["SERIAL", "TYPE", "USER", "STATE", "FAILS", "DESCRIPTION"],
        &rows,
    );
}

/// `token show` as a table of fields.
fn print_fields(value: &serde_json::Value) {
    let Some(map) = value.as_object() else {
        return;
    };
    let rows: Vec<Vec<String>> = map
        .iter()
        .map(|(k, v)| {
            vec![
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            ]
        })
        .collect();
    print_table(&["FIELD", "VALUE"], &rows);
}

async fn enroll(
    config: &Config,
    admin: &Admin<'_>,
    actor: &Actor,
    args: EnrollArgs,
) -> Result<(), Failure> {
    let kind: TokenKind = args
        .kind
        .parse()
        .map_err(|e: String| Failure::No(format!("tessera: {e}")))?;
    let mut seed = seed(kind, args.seed_file.as_deref())?;
    if kind == TokenKind::Yubikey {
        seed = Some(yubikey_seed(seed, args.private_id.as_deref())?);
    }
    let realms = config
        .open_realms()
        .map_err(|e| Failure::No(e.to_string()))?;
    let request = EnrollRequest {
        kind,
        user: args.user,
        phone: args.phone,
        email: args.email,
        seed,
        description: if args.description.is_empty() {
            "enrolled by tessera token enroll".into()
        } else {
            args.description
        },
        pending: false,
        public_id: args.public_id.map(|p| p.trim().to_ascii_lowercase()),
    };
    let (token, enrolled) = admin::enroll::enroll(admin, &realms, actor, request)
        .await
        .map_err(failure)?;
    show_enrolled(&token, enrolled.otpauth_uri, args.json);
    Ok(())
}

/// The longest seed file read (a hex seed is a few dozen octets).
const SEED_FILE_LIMIT: u64 = 4096;

/// `--seed-file`: hex, at least 10 octets, for HOTP and TOTP only, from a file or (`-`)
/// standard input. The seed itself appears in no message.
fn seed(kind: TokenKind, file: Option<&std::path::Path>) -> Result<Option<Secret>, Failure> {
    let Some(file) = file else {
        return Ok(None);
    };
    if !matches!(kind, TokenKind::Hotp | TokenKind::Totp | TokenKind::Yubikey) {
        return Err(Failure::No(
            "tessera: --seed-file is for hotp, totp and yubikey tokens".into(),
        ));
    }
    let (shown, read) = if file.as_os_str() == "-" {
        let mut text = String::new();
        let read = std::io::stdin()
            .take(SEED_FILE_LIMIT)
            .read_to_string(&mut text)
            .map(|_| text);
        ("standard input".to_string(), read)
    } else {
        let read = std::fs::File::open(file).and_then(|f| {
            let mut text = String::new();
            f.take(SEED_FILE_LIMIT).read_to_string(&mut text)?;
            Ok(text)
        });
        (file.display().to_string(), read)
    };
    let text = Secret::from(read.map_err(|e| Failure::Error(format!("--seed-file {shown}: {e}")))?);
    let bytes = text
        .expose_str()
        .and_then(|t| tessera::hex::decode(t.trim()))
        .filter(|b| b.len() >= 10);
    let bytes = bytes.ok_or_else(|| {
        Failure::No(format!(
            "tessera: --seed-file {shown}: expected a seed of at least 10 octets in hex"
        ))
    })?;
    Ok(Some(Secret::new(bytes)))
}

/// A YubiKey's seed: its AES key (`--seed-file`, 16 octets) followed by its private id.
fn yubikey_seed(key: Option<Secret>, private_id: Option<&str>) -> Result<Secret, Failure> {
    let key = key.filter(|k| k.len() == 16).ok_or_else(|| {
        Failure::No("tessera: a yubikey needs --seed-file with its 16-octet AES key in hex".into())
    })?;
    let private = private_id
        .and_then(|p| tessera::hex::decode(p.trim()))
        .filter(|p| p.len() == 6)
        .ok_or_else(|| {
            Failure::No("tessera: a yubikey needs --private-id: 6 octets in hex".into())
        })?;
    let mut seed = key.expose().to_vec();
    seed.extend(private);
    Ok(Secret::new(seed))
}

/// Tells the administrator what was enrolled: JSON, or the serial, the otpauth URI and its QR
/// code.
fn show_enrolled(token: &Token, uri: Option<String>, json: bool) {
    let account = format!("{}@{}", token.user, token.realm);
    if json {
        let mut value = token_json(token);
        if let (Some(map), Some(uri)) = (value.as_object_mut(), &uri) {
            map.insert("otpauth_uri".into(), json!(uri));
        }
        print_json(&value);
        return;
    }
    out!(
        "{}: {} token enrolled for {account}",
        token.serial,
        token.kind
    );
    if let Some(uri) = uri {
        out!("{uri}");
        match qrcode::QrCode::new(uri.as_bytes()) {
            Ok(code) => out!(
                "{}",
                code.render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build()
            ),
            Err(e) => eprintln!("tessera: no QR code: {e}"),
        }
    }
}
