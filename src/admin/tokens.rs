//! A user's tokens as the helpdesk sees them ([`TokenView`], [`UserTokens`]: never a seed,
//! never a full phone number) and each change to one token ([`Admin`]'s methods), each
//! written to the audit with its actor.
//!
//! A token's last use is its newest `accept` in the audit (so it is as old as the audit keeps:
//! `[store] audit_days`); the back-off is the owner's (per origin, and over all origins), read
//! from the store and judged by the engine's own schedule ([`BackoffSchedule`]).

use serde::Serialize;

use super::actor::Actor;
use super::audit::{Change, record};
use super::error::AdminError;
use crate::auth::backoff::BackoffSchedule;
use crate::auth::message::{mask_email, mask_phone};
use crate::auth::{AuthSettings, Clock, SystemClock};
use crate::otp::otpauth::find_consecutive;
use crate::otp::totp_step;
use crate::radius::clients::ClientTable;
use crate::store::audit::AuditAction;
use crate::store::{Backoff, Identity, Store, Token, TokenKind};
use crate::time::UnixMs;

/// One token as shown: what it is and how it stands.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenView {
    /// The serial.
    pub serial: String,
    /// `sms`, `email`, `hotp`, `totp`, `yubikey`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The owner (identity).
    pub user: String,
    /// The owner's realm.
    pub realm: String,
    /// Enabled.
    pub active: bool,
    /// Waits for its first code (self-service enrolment, inactive until confirmed).
    pub pending: bool,
    /// Wrong codes in a row.
    pub fail_count: u32,
    /// Wrong codes at which it locks.
    pub max_fail: u32,
    /// `fail_count` reached `max_fail`.
    pub locked: bool,
    /// Its last login: its counter consumed or its challenge answered (Unix time in seconds).
    pub last_use: Option<i64>,
    /// The same, RFC 3339.
    pub last_use_text: Option<String>,
    /// SMS destination, masked (`+49********678`).
    pub phone: Option<String>,
    /// E-mail destination, masked (`a****@example.org`).
    pub email: Option<String>,
    /// Free text.
    pub description: String,
    /// Created (Unix time in seconds).
    pub created: i64,
    /// Made by autoenrollment.
    pub autoenrolled: bool,
    /// Has a token PIN.
    pub has_pin: bool,
}

impl TokenView {
    /// The view of `token`.
    pub fn of(token: &Token) -> Self {
        let last_use = token.last_used.map(UnixMs::as_secs);
        TokenView {
            serial: token.serial.clone(),
            kind: token.kind.as_str(),
            user: token.user.clone(),
            realm: token.realm.clone(),
            active: token.active,
            pending: token.pending,
            fail_count: token.fail_count,
            max_fail: token.max_fail,
            locked: token.fail_count >= token.max_fail,
            last_use,
            last_use_text: last_use.map(crate::rfc3339::format),
            phone: token.phone.as_deref().map(mask_phone),
            email: token.email.as_deref().map(mask_email),
            description: token.description.clone(),
            created: token.created_at.as_secs(),
            autoenrolled: token.autoenrolled,
            has_pin: token.pin_hash.is_some(),
        }
    }
}

/// One back-off row of a user.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackoffView {
    /// Where the failures came from (a NAS address, a Calling-Station-Id, an HTTP caller);
    /// `None`: the count over all origins.
    pub origin: Option<String>,
    /// Failed passwords in a row.
    pub failures: u32,
    /// The last one (Unix time in seconds).
    pub last_failure: i64,
    /// Seconds until an attempt from there is checked again; 0: not backing off.
    pub waiting_seconds: u64,
}

/// A user's tokens and back-off.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserTokens {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// Its tokens.
    pub tokens: Vec<TokenView>,
    /// Its back-off rows not yet forgotten.
    pub backoff: Vec<BackoffView>,
    /// Whether some origin (or every origin) is refused unchecked right now.
    pub backing_off: bool,
}

/// The admin operations on tokens, on one store with the engine's settings.
pub struct Admin<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// The engine's settings (TOTP step, digits, max_fail, the back-off schedule).
    pub auth: &'a AuthSettings,
    /// Where now comes from.
    pub clock: &'a dyn Clock,
    /// The client entries, for their `das_port`: when given, disabling or deleting a token
    /// ends its owner's open sessions at their NAS ([`super::revoke`]).
    pub clients: Option<&'a ClientTable>,
}

impl<'a> Admin<'a> {
    /// The operations on `store`, with the system clock.
    pub fn new(store: &'a dyn Store, auth: &'a AuthSettings) -> Self {
        Admin {
            store,
            auth,
            clock: &SystemClock,
            clients: None,
        }
    }

    /// The same, ending the owner's open sessions when a token is disabled or deleted.
    pub fn with_disconnect(mut self, clients: &'a ClientTable) -> Self {
        self.clients = Some(clients);
        self
    }

    /// Ends the open sessions of `token`'s owner at their NAS, when configured.
    async fn disconnect(&self, actor: &Actor, token: &Token) {
        let Some(clients) = self.clients else { return };
        let identity = Identity {
            user: token.user.clone(),
            realm: token.realm.clone(),
        };
        super::revoke::disconnect_sessions(
            self.store,
            clients,
            actor,
            &identity,
            Some(&token.serial),
        )
        .await;
    }

    /// One token, or [`AdminError::NoToken`].
    pub async fn token(&self, serial: &str) -> Result<Token, AdminError> {
        self.store
            .token(serial)
            .await?
            .ok_or_else(|| AdminError::NoToken(serial.to_string()))
    }

    /// A token, if it belongs to `user` of `realm` (self-service); else, whether it exists
    /// or not, [`AdminError::NoToken`], so nobody learns about others' serials.
    pub async fn owned(&self, serial: &str, user: &str, realm: &str) -> Result<Token, AdminError> {
        match self.store.token(serial).await? {
            Some(t) if t.user == user && t.realm == realm => Ok(t),
            _ => Err(AdminError::NoToken(serial.to_string())),
        }
    }

    /// When the token last logged someone in (kept in the token row by the login that
    /// consumed its counter or answered its challenge), or [`AdminError::NoToken`].
    pub async fn last_use(&self, serial: &str) -> Result<Option<UnixMs>, AdminError> {
        Ok(self.token(serial).await?.last_used)
    }

    /// A user's tokens (by identity) and back-off rows.
    pub async fn user_tokens(&self, user: &str, realm: &str) -> Result<UserTokens, AdminError> {
        let mut tokens = vec![];
        for token in self.store.tokens_of_user(user, realm).await? {
            tokens.push(TokenView::of(&token));
        }
        let schedule = BackoffSchedule::from_settings(self.auth);
        let now = self.clock.now();
        let backoff: Vec<BackoffView> = self
            .store
            .backoff_rows(user, realm)
            .await?
            .into_iter()
            .filter_map(|(origin, row)| backoff_view(&schedule, origin, row, now))
            .collect();
        Ok(UserTokens {
            user: user.to_string(),
            realm: realm.to_string(),
            backing_off: backoff.iter().any(|b| b.waiting_seconds > 0),
            tokens,
            backoff,
        })
    }

    /// Carries out `change` on the token `serial` and writes its audit row either way.
    async fn audited<F, Fut>(
        &self,
        actor: &Actor,
        action: AuditAction,
        serial: &str,
        detail: Option<String>,
        change: F,
    ) -> Result<Token, AdminError>
    where
        F: FnOnce(Token) -> Fut,
        Fut: Future<Output = Result<(), AdminError>>,
    {
        let before = match self.store.token(serial).await {
            Ok(before) => before,
            Err(error) => {
                let error = AdminError::from(error);
                let change = Change::of(action, None, Some(serial.to_string()));
                let message = error.to_string();
                // The store failed: its audit row may fail too; the store's error is the answer.
                let _ = record(self.store, actor, change, Err(&message), self.clock.now()).await;
                return Err(error);
            }
        };
        let outcome = match &before {
            Some(token) => change(token.clone()).await,
            None => Err(AdminError::NoToken(serial.to_string())),
        };
        let mut entry = Change::of(action, before.as_ref(), Some(serial.to_string()));
        entry.detail = detail;
        let message = outcome.as_ref().err().map(ToString::to_string);
        let written = record(
            self.store,
            actor,
            entry,
            message.as_deref().map_or(Ok(()), Err),
            self.clock.now(),
        )
        .await;
        outcome?;
        written?;
        // The token as it is now.
        self.token(serial).await
    }

    /// Enables or disables a token.
    pub async fn set_active(
        &self,
        actor: &Actor,
        serial: &str,
        active: bool,
    ) -> Result<Token, AdminError> {
        let action = if active {
            AuditAction::TokenEnable
        } else {
            AuditAction::TokenDisable
        };
        let token = self
            .audited(actor, action, serial, None, |t| async move {
                found(self.store.set_active(&t.serial, active).await?, &t.serial)
            })
            .await?;
        if !active {
            self.disconnect(actor, &token).await;
        }
        Ok(token)
    }

    /// Resets a token's fail counter and ends its owner's back-off, from every origin.
    pub async fn reset(&self, actor: &Actor, serial: &str) -> Result<Token, AdminError> {
        let detail = Some("fail counter reset, back-off ended".to_string());
        self.audited(
            actor,
            AuditAction::TokenUnlock,
            serial,
            detail,
            |t| async move {
                found(self.store.reset_failures(&t.serial).await?, &t.serial)?;
                self.end_backoff(&t.user, &t.realm).await
            },
        )
        .await
    }

    /// Forgets an identity's failed passwords from every origin (and over all).
    pub async fn end_backoff(&self, user: &str, realm: &str) -> Result<(), AdminError> {
        for (origin, _) in self.store.backoff_rows(user, realm).await? {
            self.store
                .clear_login_failures(user, realm, &origin)
                .await?;
        }
        Ok(())
    }

    /// Brings a HOTP or TOTP token back in step from two consecutive codes.
    pub async fn resync(
        &self,
        actor: &Actor,
        serial: &str,
        otp1: &str,
        otp2: &str,
    ) -> Result<Token, AdminError> {
        self.audited(
            actor,
            AuditAction::TokenResync,
            serial,
            None,
            |t| async move {
                let next = match t.kind {
                    TokenKind::Hotp => find_consecutive(
                        t.algorithm,
                        t.seed.expose(),
                        t.digits,
                        t.counter,
                        1000,
                        otp1,
                        otp2,
                    ),
                    TokenKind::Totp => {
                        // Steps within about eight hours either way of now.
                        let step_secs = t.time_step.map_or(self.auth.totp_step, u64::from);
                        let step = totp_step(self.clock.now().as_secs(), step_secs);
                        let start = step.saturating_sub(1000).max(t.counter);
                        find_consecutive(
                            t.algorithm,
                            t.seed.expose(),
                            t.digits,
                            start,
                            2000,
                            otp1,
                            otp2,
                        )
                    }
                    TokenKind::Sms | TokenKind::Email | TokenKind::Yubikey => {
                        return Err(AdminError::BadInput(
                            "only hotp and totp tokens can be resynced".into(),
                        ));
                    }
                };
                let Some(found_at) = next else {
                    return Err(AdminError::BadInput(format!(
                        "{}: the two codes are not consecutive codes of this token",
                        t.serial
                    )));
                };
                found(
                    self.store.set_counter(&t.serial, found_at + 2).await?,
                    &t.serial,
                )
            },
        )
        .await
    }

    /// Removes (unassigns) a token and its open challenges; returns it as it was.
    pub async fn remove(&self, actor: &Actor, serial: &str) -> Result<Token, AdminError> {
        let token = self.token(serial).await;
        let removed = self
            .audited(
                actor,
                AuditAction::TokenDelete,
                serial,
                None,
                |t| async move { found(self.store.delete_token(&t.serial).await?, &t.serial) },
            )
            .await;
        let token = match removed {
            // Gone now, as asked.
            Err(AdminError::NoToken(_)) if token.is_ok() => token,
            Ok(_) => token,
            Err(e) => Err(e),
        }?;
        self.disconnect(actor, &token).await;
        Ok(token)
    }

    /// Hands a token nobody holds (an imported fob) to the user `typed` names, looked up in
    /// the directories (the token is the identity's). A token someone holds is refused:
    /// unassign it first.
    pub async fn assign(
        &self,
        realms: &crate::directory::Realms,
        actor: &Actor,
        serial: &str,
        typed: &str,
    ) -> Result<Token, AdminError> {
        let owner = super::users::resolve(realms, typed).await;
        let detail = owner
            .as_ref()
            .ok()
            .map(|(user, realm)| format!("to {}@{realm}", user.login));
        self.audited(
            actor,
            AuditAction::TokenAssign,
            serial,
            detail,
            |t| async move {
                let (user, realm) = owner?;
                if t.is_assigned() {
                    return Err(AdminError::BadInput(format!(
                        "{} belongs to {}@{}: unassign it first",
                        t.serial, t.user, t.realm
                    )));
                }
                found(
                    self.store
                        .assign_token(&t.serial, &user.login, &realm)
                        .await?,
                    &t.serial,
                )
            },
        )
        .await
    }

    /// Takes a token back from its holder: it stays, unassigned, until handed out again.
    pub async fn unassign(&self, actor: &Actor, serial: &str) -> Result<Token, AdminError> {
        self.audited(
            actor,
            AuditAction::TokenUnassign,
            serial,
            None,
            |t| async move {
                if t.autoenrolled {
                    return Err(AdminError::BadInput(format!(
                        "{} was autoenrolled for its owner: delete it instead",
                        t.serial
                    )));
                }
                found(self.store.assign_token(&t.serial, "", "").await?, &t.serial)
            },
        )
        .await
    }

    /// Sets a token's description.
    pub async fn describe(
        &self,
        actor: &Actor,
        serial: &str,
        description: &str,
    ) -> Result<Token, AdminError> {
        let kept = crate::store::decide::description(description);
        let detail = Some(format!("description: {kept:?}"));
        self.audited(
            actor,
            AuditAction::TokenDescribe,
            serial,
            detail,
            |t| async move {
                found(
                    self.store.set_description(&t.serial, &kept).await?,
                    &t.serial,
                )
            },
        )
        .await
    }
}

/// `Ok` when a store call found its token.
fn found(existed: bool, serial: &str) -> Result<(), AdminError> {
    if existed {
        Ok(())
    } else {
        Err(AdminError::NoToken(serial.to_string()))
    }
}

/// One back-off row as shown; `None` when it is forgotten.
fn backoff_view(
    schedule: &BackoffSchedule,
    origin: String,
    row: Backoff,
    now: UnixMs,
) -> Option<BackoffView> {
    let row = schedule.fresh(Some(row), now)?;
    let window = if origin.is_empty() {
        schedule.identity_window(row.failures)
    } else {
        schedule.window_ms(row.failures)
    };
    let left_ms = row.last_failure.plus_ms(window).ms_since(now);
    Some(BackoffView {
        origin: (!origin.is_empty()).then_some(origin),
        failures: row.failures,
        last_failure: row.last_failure.as_secs(),
        waiting_seconds: u64::try_from(left_ms.max(0)).unwrap_or(0).div_ceil(1000),
    })
}
