//! Disconnect on revoke (issue 30, RFC 5176): when an admin disables or deletes a token, the
//! open sessions of its owner are ended at their NAS at once, instead of lasting until the
//! next re-authentication. The admin layer does it, not the server: `tessera token disable`
//! is another process, and it has the configuration (which client entries have a
//! `das_port`) and the store (which sessions are open) as the admin API has.
//!
//! Which sessions: those the store keeps as open for the token's identity (its login and
//! realm). A session knows its identity because the accounting engine resolved the
//! accounting User-Name through the directories when the record came in, as a login does
//! (`accounting::Accounting::record`); a session recorded while the directory did not answer
//! has no identity and is found by its user name being the login. Each goes to the
//! `das_port` of the client entry its records came from, at the address they came from; a
//! client entry without `das_port` is skipped (logged). The requests go out together, each
//! resent on silence ([`disconnect::send`]), and each answer becomes one audit row
//! (`session disconnect`): `ok` for a Disconnect-ACK, `failed` with the NAK's Error-Cause or
//! "no answer". The token change is done and audited before; a NAS that does not answer does
//! not undo it.

use std::net::{IpAddr, SocketAddr};

use super::actor::Actor;
use crate::radius::clients::ClientTable;
use crate::radius::disconnect::{self, Answer, Disconnect};
use crate::store::audit::{AuditAction, AuditResult};
use crate::store::{AuditEntry, Identity, Session, SessionQuery, Store};
use crate::time::UnixMs;

/// The most sessions of one identity one revoke ends.
pub const MAX_SESSIONS: u32 = 1000;

/// One session's Disconnect-Request and what came of it.
#[derive(Debug, Clone)]
pub struct Disconnected {
    /// The session.
    pub session: Session,
    /// The NAS's answer.
    pub answer: Answer,
}

/// Ends the open sessions of `identity` at their NASes (those with a `das_port`) and audits
/// each answer; `serial` is the token whose change caused it. Errors of the store are logged:
/// the change that caused this has happened already.
pub async fn disconnect_sessions(
    store: &dyn Store,
    clients: &ClientTable,
    actor: &Actor,
    identity: &Identity,
    serial: Option<&str>,
) -> Vec<Disconnected> {
    let query = SessionQuery {
        identity: Some(identity.clone()),
        open_only: true,
        limit: MAX_SESSIONS,
        ..SessionQuery::default()
    };
    let sessions = match store.sessions(&query).await {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(user = %identity.user, realm = %identity.realm, %error, "open sessions not read: none disconnected");
            return vec![];
        }
    };
    let now = UnixMs::now();
    let mut sent = tokio::task::JoinSet::new();
    for session in sessions {
        let Some(das) = clients.das_of(&session.client) else {
            tracing::debug!(client = %session.client, session = %session.session_id, "no das_port: session not disconnected");
            continue;
        };
        let Some(address) = session
            .nas_address
            .as_deref()
            .and_then(|a| a.parse::<IpAddr>().ok())
        else {
            tracing::info!(client = %session.client, session = %session.session_id, "the NAS's address is unknown: session not disconnected");
            continue;
        };
        let request = Disconnect {
            to: SocketAddr::new(address, das.port),
            secret: das.secret.clone(),
            user_name: session.user.clone(),
            session_id: session.session_id.clone(),
            nas: session.nas.clone(),
            at: now,
        };
        sent.spawn(async move {
            let answer = disconnect::send(&request).await;
            Disconnected { session, answer }
        });
    }
    let mut done = vec![];
    while let Some(joined) = sent.join_next().await {
        let Ok(disconnected) = joined else { continue };
        audit(store, actor, identity, serial, &disconnected).await;
        done.push(disconnected);
    }
    done
}

/// The audit row of one Disconnect-Request.
async fn audit(
    store: &dyn Store,
    actor: &Actor,
    identity: &Identity,
    serial: Option<&str>,
    done: &Disconnected,
) {
    let s = &done.session;
    let answer = done.answer.describe();
    let result = if done.answer == Answer::Ack {
        AuditResult::Ok
    } else {
        AuditResult::Failed
    };
    tracing::info!(
        user = %identity.user,
        client = %s.client,
        nas = %s.nas,
        session = %s.session_id,
        answer,
        "session disconnect"
    );
    let entry = AuditEntry {
        time: UnixMs::now(),
        client: actor.client.clone(),
        user: identity.user.clone(),
        realm: identity.realm.clone(),
        serial: serial.map(str::to_string),
        action: AuditAction::SessionDisconnect.into(),
        result: result.into(),
        reason: format!(
            "by {}: {answer} from client {} NAS {} for session {}",
            actor.name, s.client, s.nas, s.session_id
        ),
    };
    if let Err(error) = store.audit_committed(entry).await {
        tracing::warn!(%error, "the audit row of a session disconnect was not written");
    }
}
