//! `tessera token identities [--fix]`: tokens whose owner name is not the directory's spelling.
//!
//! Before identities were canonical, a login's spelling was a new user: `ALICE` next to
//! `alice` could each hold a token. The engine now keys everything on the directory's spelling,
//! so such tokens are simply never used. This command finds them (owner name normalised and
//! looked up in the token's realm; the entry found spells it differently), and with `--fix`
//! moves each to its identity when that identity has no token yet. The others are listed for
//! an admin to delete: two tokens of one person are never merged silently.

use serde_json::json;
use tessera::config::Config;
use tessera::directory::login_name;
use tessera::store::audit::AuditAction;
use tessera::store::{Store, Token};

use super::{Failure, print_json, print_table};

/// What to do with one variant token.
enum Verdict {
    /// Listed only (no `--fix`).
    Found,
    /// Moved to its identity.
    Moved,
    /// Kept: the identity has a token of its own.
    Kept,
}

impl Verdict {
    fn as_str(&self) -> &'static str {
        match self {
            Verdict::Found => "variant",
            Verdict::Moved => "moved",
            Verdict::Kept => "kept: the identity has a token; delete this one",
        }
    }
}

/// Runs the command.
pub async fn run(config: &Config, store: &dyn Store, fix: bool, json: bool) -> Result<(), Failure> {
    let realms = config.open_realms().map_err(super::config_failure)?;
    let failed = |e: tessera::store::StoreError| Failure::Error(e.to_string());
    let mut rows: Vec<(Token, String, Verdict)> = vec![];
    for token in store.list_tokens(None, None).await.map_err(failed)? {
        let Some(realm) = realms.get(&token.realm) else {
            continue;
        };
        let Ok(normalized) = login_name::normalize(&token.user) else {
            continue;
        };
        let found = realm
            .lookup(&normalized)
            .await
            .map_err(|e| Failure::Error(format!("realm {}: {e}", realm.name)))?;
        let Some((user, _)) = found else {
            continue; // no directory knows the name: it is its own identity
        };
        if user.login == token.user {
            continue;
        }
        let verdict = if !fix {
            Verdict::Found
        } else if store
            .tokens_of_user(&user.login, &token.realm)
            .await
            .map_err(failed)?
            .is_empty()
        {
            store
                .set_token_owner(&token.serial, &user.login)
                .await
                .map_err(failed)?;
            let moved = Token {
                user: user.login.clone(),
                ..token.clone()
            };
            super::audit::audit_change(
                store,
                AuditAction::TokenIdentitiesFix,
                Some(&moved),
                None,
                &Ok(()),
            )
            .await;
            Verdict::Moved
        } else {
            Verdict::Kept
        };
        rows.push((token, user.login, verdict));
    }
    print_rows(&rows, json);
    Ok(())
}

/// The tokens found (and what became of them) as JSON or a table.
fn print_rows(rows: &[(Token, String, Verdict)], json: bool) {
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(t, identity, verdict)| {
                json!({
                    "serial": t.serial,
                    "stored_as": t.user,
                    "realm": t.realm,
                    "identity": identity,
                    "status": verdict.as_str(),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
    } else if rows.is_empty() {
        out!("every token is stored under its owner's identity");
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(t, identity, verdict)| {
                vec![
                    t.serial.clone(),
                    format!("{:?}", t.user),
                    t.realm.clone(),
                    identity.clone(),
                    verdict.as_str().to_string(),
                ]
            })
            .collect();
        print_table(
            &["SERIAL", "STORED AS", "REALM", "IDENTITY", "STATUS"],
            &table,
        );
    }
}
