//! `tessera user …`: show what the directories say about a user (as the server would resolve
//! them), maintain the local users file (add, passwd, del) and make password hashes. A
//! running server picks up every change to the users file by itself. `del` also ends the
//! removed user's open sessions at their NAS, as disabling a token does.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use tessera::config::Config;
use tessera::password_hash;
use tessera::secret::Secret;

use super::{Failure, config_failure};

/// Users-file commands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Read a password from standard input and print its argon2id hash for the users file.
    Hash,
    /// Add a user to the users file; the password is read from standard input.
    Add {
        /// The login name.
        name: String,
        /// Mobile number, for SMS tokens.
        #[arg(long)]
        mobile: Option<String>,
        /// E-mail address, for e-mail tokens.
        #[arg(long)]
        email: Option<String>,
        /// Other phone number.
        #[arg(long)]
        phone: Option<String>,
        /// Given name.
        #[arg(long)]
        givenname: Option<String>,
        /// Surname.
        #[arg(long)]
        surname: Option<String>,
        /// A group (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        file: UsersFileChoice,
    },
    /// Set a user's password in the users file; the new password is read from standard input.
    Passwd {
        /// The login name.
        name: String,
        #[command(flatten)]
        file: UsersFileChoice,
    },
    /// Remove a user from the users file.
    Del {
        /// The login name.
        name: String,
        #[command(flatten)]
        file: UsersFileChoice,
    },
    /// Show what the directories say about a user (`user` or `user@realm`), phone numbers and
    /// e-mail addresses masked; exit 1 when no directory knows the user.
    Show {
        /// The user, resolved to a realm as the server does.
        name: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which users file `user add|passwd|del` edit. A running server picks the change up by itself.
#[derive(Args)]
pub struct UsersFileChoice {
    /// Edit this file instead of the config's users_file directory.
    #[arg(long, conflicts_with = "directory")]
    file: Option<PathBuf>,
    /// The users_file directory to edit, when the config has several.
    #[arg(long)]
    directory: Option<String>,
}

/// Reads a password from standard input (one trailing newline dropped) and hashes it.
fn read_password_hash() -> Result<String, Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::Error(format!("reading stdin: {e}")))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Failure::No("tessera: the password is empty".into()));
    }
    password_hash::hash(&Secret::from(password)).map_err(|e| Failure::Error(e.to_string()))
}

pub fn user_hash() -> Result<(), Failure> {
    out!("{}", read_password_hash()?);
    Ok(())
}

/// `user add|passwd|del`: edits the users file in place; exit 1 when the user exists (add) or
/// does not (passwd, del).
pub fn run(config: &std::path::Path, command: UserCommand) -> Result<(), Failure> {
    use tessera::directory::users_file::{self, Edit, EditError, UserEntry};
    let (choice, edit, done) = match command {
        UserCommand::Hash => return user_hash(),
        UserCommand::Show { name, json } => return show(config, &name, json),
        UserCommand::Add {
            name,
            mobile,
            email,
            phone,
            givenname,
            surname,
            groups,
            file,
        } => {
            if name.is_empty() {
                return Err(Failure::No("tessera: the user name is empty".into()));
            }
            let entry = UserEntry {
                password: read_password_hash()?,
                name: name.clone(),
                mobile,
                email,
                phone,
                givenname,
                surname,
                groups,
            };
            (file, Edit::Add(entry), format!("user {name:?} added"))
        }
        UserCommand::Passwd { name, file } => {
            let hash = read_password_hash()?;
            let done = format!("password of {name:?} changed");
            (file, Edit::SetPassword { name, hash }, done)
        }
        UserCommand::Del { name, file } => {
            let done = format!("user {name:?} removed");
            (file, Edit::Delete { name }, done)
        }
    };
    let deleted = match &edit {
        Edit::Delete { name } => Some(name.clone()),
        _ => None,
    };
    // With --file the config is only needed for the sessions of a deleted user.
    let (path, loaded) = match choice.file {
        Some(path) => (path, None),
        None => {
            let loaded = Config::load(config).map_err(config_failure)?;
            let path = loaded
                .users_file(choice.directory.as_deref())
                .map_err(|e| Failure::No(format!("tessera: {e}")))?;
            (path, Some(loaded))
        }
    };
    match users_file::edit(&path, edit) {
        Ok(()) => {
            out!("{}: {done}", path.display());
            if let Some(name) = deleted {
                let loaded = loaded.or_else(|| Config::load(config).ok());
                if let Some(loaded) = loaded {
                    disconnect_leaver(&loaded, &path, &name);
                }
            }
            Ok(())
        }
        Err(e @ (EditError::Exists(_) | EditError::NotFound(_))) => {
            Err(Failure::No(format!("tessera: {}: {e}", path.display())))
        }
        Err(e) => Err(Failure::Error(e.to_string())),
    }
}

/// After `user del`: ends the removed user's open sessions at their NAS, in every realm the
/// users file serves, as disabling a token does ([`tessera::admin::revoke`]), each answer
/// audited (`session disconnect`). The user is gone already: a store that cannot be opened
/// is said on stderr, and no store means no sessions.
fn disconnect_leaver(config: &Config, path: &std::path::Path, name: &str) {
    use tessera::admin::{Actor, revoke};
    use tessera::store::Identity;
    let realms = config.realms_of_users_file(path);
    if realms.is_empty() {
        return;
    }
    let Ok(runtime) = super::runtime() else {
        return;
    };
    let store = match super::existing_store(&runtime, config) {
        Ok(store) => store,
        Err(Failure::No(_)) => return,
        Err(Failure::Error(e)) => {
            eprintln!("tessera: {name:?}'s sessions not disconnected: {e}");
            return;
        }
    };
    let actor = Actor::cli(&super::audit::os_user());
    for realm in realms {
        let identity = Identity {
            user: name.to_string(),
            realm,
        };
        let done = runtime.block_on(revoke::disconnect_sessions(
            store.as_ref(),
            &config.clients,
            &actor,
            &identity,
            None,
        ));
        for d in done {
            out!(
                "session {} at NAS {}: {}",
                d.session.session_id,
                d.session.nas,
                d.answer.describe()
            );
        }
    }
}

/// `user show`: the realm's directories, in order, asked as the server asks them.
fn show(config: &std::path::Path, name: &str, json: bool) -> Result<(), Failure> {
    use tessera::auth::message::{mask_email, mask_phone};
    let config = super::load_config(config)?;
    let realms = config.open_realms().map_err(config_failure)?;
    let (login, realm) = realms.resolve(name);
    let found = super::runtime()?
        .block_on(realm.lookup(&login))
        .map_err(|e| Failure::Error(e.to_string()))?;
    let Some((user, directory)) = found else {
        return Err(Failure::No(format!(
            "tessera: no directory of realm {:?} knows {login:?}",
            realm.name
        )));
    };
    let mut fields: Vec<(String, String)> = vec![
        ("user".into(), user.login.clone()),
        ("realm".into(), realm.name.clone()),
        ("directory".into(), directory.name().to_string()),
        (
            "mobile".into(),
            user.mobile.as_deref().map(mask_phone).unwrap_or_default(),
        ),
        (
            "email".into(),
            user.email.as_deref().map(mask_email).unwrap_or_default(),
        ),
        ("groups".into(), user.groups.join(", ")),
    ];
    for (key, value) in &user.attributes {
        let shown = if key == "phone" {
            mask_phone(value)
        } else {
            value.clone()
        };
        fields.push((key.clone(), shown));
    }
    if json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        super::print_json(&serde_json::Value::Object(map));
    } else {
        let rows: Vec<Vec<String>> = fields.into_iter().map(|(k, v)| vec![k, v]).collect();
        super::print_table(&["FIELD", "VALUE"], &rows);
    }
    Ok(())
}
