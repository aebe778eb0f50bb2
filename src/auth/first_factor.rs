//! The first factor — the password, or the token PIN — and what follows from it: checking it
//! against the directory (with the same work for a name no directory knows, so timing tells
//! nothing), the back-off on failure (`backoff.rs` decides; here its rows are read, counted
//! and cleared, per identity and origin), and the clean-ups that keep a directory's password
//! or an earlier account's token from being used where they should not.

use std::borrow::Cow;

use super::backoff::Refusal;
use super::decision::{Ctx, Decision, MSG_FAILED, MSG_UNAVAILABLE};
use super::engine::Engine;
use super::policy::{OtpPin, PolicyContext};
use super::reason::Reason;
use super::{AuthError, Outcome};
use crate::directory::login_name;
use crate::password_hash;
use crate::secret::Secret;
use crate::store::{Backoffs, Token, decide};

impl Ctx<'_> {
    /// Checks `password` against the user's directory entry. For a name no directory knows,
    /// the work of a check is done all the same and the answer is no, so timing does not tell.
    pub(super) async fn check_directory_password(
        &self,
        password: &Secret,
    ) -> Result<bool, AuthError> {
        if password.is_empty() {
            return Ok(false);
        }
        let known = self
            .answers
            .lock()
            .ok()
            .and_then(|a| a.iter().find(|(p, _)| p == password).map(|(_, ok)| *ok));
        if let Some(answer) = known {
            return Ok(answer);
        }
        let answer = match &self.user {
            Some((user, directory)) => directory.check_password(user, password).await?,
            None => {
                self.realm.check_password_of_unknown(password).await;
                false
            }
        };
        if let Ok(mut answers) = self.answers.lock() {
            answers.push((password.clone(), answer));
        }
        Ok(answer)
    }

    /// The key of a name no directory knows in [`UnknownNames`] (and of any identity in
    /// [`UnderAttack`]).
    ///
    /// [`UnknownNames`]: super::backoff::UnknownNames
    /// [`UnderAttack`]: super::backoff::UnderAttack
    pub(super) fn unknown_name_key(&self) -> String {
        format!("{}@{}", login_name::fold(&self.login), self.realm.name)
    }

    /// Where the attempt comes from, for the back-off: what the front end said, else the
    /// client's address (never empty: the stores keep the identity's own row under the empty
    /// origin).
    pub(super) fn origin(&self) -> Cow<'_, str> {
        if self.req.origin.is_empty() {
            Cow::Owned(self.req.client.to_string())
        } else {
            Cow::Borrowed(&self.req.origin)
        }
    }
}

impl Engine {
    /// Removes the PIN hashes that versions before 0.2 stored on autoenrolled tokens (a hash of
    /// the user's directory password) where the `otppin` now in force for the token's user and
    /// realm (evaluated without a client) does not check them. Returns how many.
    pub async fn remove_unused_password_pins(&self) -> Result<usize, AuthError> {
        let mut removed = 0;
        for (serial, user, realm) in self.store.autoenrolled_with_pin().await? {
            let context = PolicyContext {
                user: &user,
                realm: &realm,
                client: std::net::IpAddr::from([0, 0, 0, 0]),
                groups: &[],
            };
            let mode = self
                .setting(&context, |a| &a.otppin)
                .copied()
                .unwrap_or_default();
            if mode != OtpPin::TokenPin && self.store.set_pin_hash(&serial, None).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether `pin` is the right PIN for `token` under `mode`.
    pub(super) async fn pin_matches(
        &self,
        ctx: &Ctx<'_>,
        mode: OtpPin,
        token: &Token,
        pin: &Secret,
    ) -> Result<bool, AuthError> {
        match mode {
            OtpPin::OnlyOtp => Ok(pin.is_empty()),
            OtpPin::TokenPin => match &token.pin_hash {
                None => Ok(pin.is_empty()),
                Some(hash) => Ok(password_hash::verify_on_hash_thread(pin, hash).await?),
            },
            OtpPin::Password => ctx.check_directory_password(pin).await,
        }
    }

    /// The identity's back-off counts (over all origins, and from this request's), those not
    /// yet forgotten: from the store for a name the directory knows, from memory for one it
    /// does not. Nothing with the back-off off.
    pub(super) fn backoff_of(&self, ctx: &Ctx<'_>, stored: Backoffs) -> Backoffs {
        if !self.backoff.is_on() {
            return Backoffs::default();
        }
        let rows = if ctx.user.is_some() {
            stored
        } else {
            self.unknown_names
                .get(&ctx.unknown_name_key(), &ctx.origin())
        };
        let rows = self.backoff.fresh_rows(rows, ctx.now);
        // Only past the ceiling: the usual request neither builds the key nor takes the lock.
        if self.backoff.over_ceiling(rows.identity, ctx.now) {
            let key = ctx.unknown_name_key();
            self.under_attack
                .note(&self.backoff, &key, rows.identity, ctx.now);
        }
        rows
    }

    /// Refused without a check, whoever the name belongs to, when the back-off says so: the
    /// answer and its timing are those of any failure.
    pub(super) fn refused_unchecked(&self, ctx: &Ctx<'_>, backoff: Backoffs) -> Option<Decision> {
        let reason = match self.backoff.refusing(backoff, ctx.now)? {
            Refusal::Origin { failures, left_ms } => Reason::BackOff { failures, left_ms },
            Refusal::Identity { failures, left_ms } => Reason::BackOffCeiling { failures, left_ms },
        };
        Some(Decision::reject(MSG_FAILED, reason, None))
    }

    /// Issue 23: while the store cannot record a failure (a write has failed and none has
    /// succeeded since), every first factor is refused before it is checked — for every name,
    /// known or not, so neither the answer nor its timing says anything about the password or
    /// the name. The whole service, not the identity: a store that does not commit fails every
    /// login that needs a write anyway, and the first failed write is usually an audit row,
    /// before any identity's failure was lost. Clears by itself: each refused request still
    /// queues its audit row, which tries the store again.
    pub(super) fn failures_unrecorded(&self) -> Option<Decision> {
        (self.backoff.is_on() && self.store.writes_failing())
            .then(|| Decision::reject(MSG_UNAVAILABLE, Reason::FailuresUnrecorded, None))
    }

    /// A wrong password or PIN: counted on the back-off of the identity and the request's
    /// origin (unless it is off), never on a token, and answered like every other failure.
    pub(super) async fn first_factor_failed(
        &self,
        ctx: &Ctx<'_>,
        reason: Reason,
    ) -> Result<Decision, AuthError> {
        if !self.backoff.is_on() {
            // Off: nothing counted, nothing written (issue 23).
        } else if ctx.user.is_some() {
            self.store
                .record_login_failure(
                    &ctx.login,
                    &ctx.realm.name,
                    &ctx.origin(),
                    ctx.now,
                    self.backoff.forget_ms,
                )
                .await;
        } else {
            self.unknown_names.record_failure(
                &self.backoff,
                &ctx.unknown_name_key(),
                &ctx.origin(),
                ctx.now,
            );
        }
        if ctx.user.is_some()
            && self
                .setting(&ctx.policy(), |a| &a.grace_seconds)
                .copied()
                .unwrap_or(0)
                > 0
        {
            // Not waited for, like the back-off count: a wrong password must not take longer
            // to refuse for a known name than for an unknown one.
            let (store, user, realm) = (
                self.store.clone(),
                ctx.login.clone(),
                ctx.realm.name.clone(),
            );
            tokio::spawn(async move {
                if let Err(error) = store.revoke_grace(&user, &realm).await {
                    tracing::error!(%user, %error, "re-authentication grace not revoked");
                }
            });
        }
        Ok(Decision::reject(MSG_FAILED, reason, None))
    }

    /// A right password or PIN ends the back-off of its origin (the identity's count over all
    /// origins runs out by itself: clearing it would hand a guesser elsewhere a fresh
    /// allowance).
    pub(super) async fn first_factor_passed(
        &self,
        ctx: &Ctx<'_>,
        backoff: Backoffs,
    ) -> Result<(), AuthError> {
        if backoff.origin.is_none() {
            return Ok(());
        }
        if ctx.user.is_some() {
            self.store
                .clear_login_failures(&ctx.login, &ctx.realm.name, &ctx.origin())
                .await?;
        } else {
            self.unknown_names
                .clear(&ctx.unknown_name_key(), &ctx.origin());
        }
        Ok(())
    }

    /// Takes out of `tokens` those autoenrolled for another directory entry of the same name
    /// (the account was deleted and created again: its owner id changed). Returns their
    /// serials when that leaves the user with none of their own.
    pub(super) fn tokens_of_an_earlier_account(
        &self,
        ctx: &Ctx<'_>,
        tokens: &mut Vec<Token>,
    ) -> Option<Vec<String>> {
        let current = ctx.user.as_ref()?.0.stable_id.as_deref()?;
        let (earlier, own): (Vec<Token>, Vec<Token>) = std::mem::take(tokens)
            .into_iter()
            .partition(|t| t.owner_id.as_deref().is_some_and(|o| o != current));
        *tokens = own;
        if earlier.is_empty() {
            return None;
        }
        let serials: Vec<String> = earlier.into_iter().map(|t| t.serial).collect();
        tracing::warn!(user = %ctx.login, realm = %ctx.realm.name, serials = %serials.join(" "), "tokens of an earlier account with this name are ignored (the directory entry's id changed); delete them with `tessera token delete`");
        tokens.is_empty().then_some(serials)
    }

    /// The user's only tokens belong to an earlier account of the same name: refused (after
    /// the password, so the answer tells a stranger nothing) until an admin deletes them.
    pub(super) async fn refuse_earlier_account(
        &self,
        ctx: &Ctx<'_>,
        backoff: Backoffs,
        serials: Vec<String>,
    ) -> Result<Decision, AuthError> {
        if !ctx.check_directory_password(ctx.password()).await? {
            return self.first_factor_failed(ctx, Reason::WrongPassword).await;
        }
        self.first_factor_passed(ctx, backoff).await?;
        Ok(Decision::reject(
            MSG_FAILED,
            Reason::EarlierAccount(serials.clone()),
            serials.first().map(String::as_str),
        ))
    }

    /// `mfa=password_only`: the directory password alone decides, for break-glass and service
    /// accounts. Logged as a warning and audited as `password only` on every use.
    pub(super) async fn password_only(
        &self,
        ctx: &Ctx<'_>,
        backoff: Backoffs,
    ) -> Result<Decision, AuthError> {
        if !ctx.check_directory_password(ctx.password()).await? {
            return self.first_factor_failed(ctx, ctx.refused_password()).await;
        }
        self.first_factor_passed(ctx, backoff).await?;
        tracing::warn!(user = %ctx.login, realm = %ctx.realm.name, "accepted without a second factor (mfa=password_only)");
        Ok(Decision {
            outcome: Outcome::Accept {
                message: None,
                reply: vec![],
            },
            reason: Reason::PasswordOnly,
            serial: None,
        })
    }

    /// After a complete two-factor login, opens the re-authentication grace for this user, NAS
    /// and Calling-Station-Id (when a policy sets `grace_seconds` and the NAS sent one).
    pub(super) async fn grant_grace(&self, ctx: &Ctx<'_>) -> Result<(), AuthError> {
        let seconds = self
            .setting(&ctx.policy(), |a| &a.grace_seconds)
            .copied()
            .unwrap_or(0);
        let Some(station) = ctx.req.calling_station.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        if seconds == 0 {
            return Ok(());
        }
        let until = ctx
            .now
            .plus_ms(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX));
        let client = ctx.req.client.to_string();
        self.store
            .grant_grace(&ctx.login, &ctx.realm.name, &client, station, until)
            .await?;
        Ok(())
    }

    /// `grace_seconds`: within the grace, the same user from the same NAS and station logs in
    /// with the right directory password alone — never with an empty one, never while the user
    /// has no active, unlocked token (a lock or a disable ends it), and a failed password ends
    /// it (see [`Engine::first_factor_failed`]). `None`: no grace applies; decide as usual.
    pub(super) async fn within_grace(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
        backoff: Backoffs,
    ) -> Result<Option<Decision>, AuthError> {
        let Some(station) = ctx.req.calling_station.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if self
            .setting(&ctx.policy(), |a| &a.grace_seconds)
            .copied()
            .unwrap_or(0)
            == 0
            || ctx.password().is_empty()
            || !tokens.iter().any(|t| t.active && t.fail_count < t.max_fail)
        {
            return Ok(None);
        }
        let client = ctx.req.client.to_string();
        let until = self
            .store
            .grace_until(&ctx.login, &ctx.realm.name, &client, station)
            .await?;
        if !decide::grace_lasts(until, ctx.now)
            || !ctx.check_directory_password(ctx.password()).await?
        {
            // A password and code in one field, or a wrong password: decided as usual.
            return Ok(None);
        }
        self.first_factor_passed(ctx, backoff).await?;
        Ok(Some(Decision {
            outcome: Outcome::Accept {
                message: None,
                reply: vec![],
            },
            reason: Reason::Grace,
            serial: None,
        }))
    }
}
