//! Checking and consuming a one-time password: finding it at the end of the password (or as
//! the whole password, answering a challenge), a token's lockout and its release, consuming the
//! OTP in one compare-and-set of the store (so it is accepted at most once, on any node), and
//! counting a wrong one on the tokens it was meant for.

use subtle::ConstantTimeEq;

use super::AuthError;
use super::decision::{Ctx, Decision, MSG_EXPIRED, MSG_FAILED, MSG_LOCKED};
use super::engine::Engine;
use super::password::split_pin_otp;
use super::reason::Reason;
use crate::otp::{hotp, hotp_with, totp_step, yubico};
use crate::store::{Challenge, ChallengeStatus, RequestMark, Token, TokenKind};
use crate::time::UnixMs;

/// Where an OTP matched.
pub(super) enum OtpMatch {
    /// It answers this open challenge.
    Challenge(String),
    /// It is this HOTP counter / TOTP step.
    Counter(u64),
}

pub(super) fn otp_equals(expected: &str, given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given))
}

impl Engine {
    pub(super) fn is_locked(&self, token: &Token) -> bool {
        token.fail_count >= token.max_fail
    }

    /// Clears locks whose `lockout_duration` has passed, so a lockout can end by itself.
    pub(super) async fn release_expired_locks(
        &self,
        ctx: &Ctx<'_>,
        tokens: &mut [Token],
    ) -> Result<(), AuthError> {
        let duration = self
            .setting(&ctx.policy(), |a| &a.lockout_duration)
            .copied()
            .unwrap_or(self.settings.lockout_duration);
        if duration == 0 {
            return Ok(());
        }
        for token in tokens.iter_mut().filter(|t| self.is_locked(t)) {
            let since = token.last_fail_at.unwrap_or(UnixMs::EPOCH).as_secs();
            let duration = i64::try_from(duration).unwrap_or(i64::MAX);
            if ctx.now.as_secs() >= since.saturating_add(duration) {
                self.store.reset_failures(&token.serial).await?;
                token.fail_count = 0;
                tracing::info!(serial = %token.serial, "lockout expired, token unlocked");
            }
        }
        Ok(())
    }

    /// Finds where `otp` matches for `token`.
    pub(super) fn find_otp(
        &self,
        token: &Token,
        otp: &[u8],
        open: &[Challenge],
        now: UnixMs,
    ) -> Option<OtpMatch> {
        let seed = token.seed.expose();
        match token.kind {
            TokenKind::Sms | TokenKind::Email => open
                .iter()
                .filter(|c| c.serial == token.serial)
                .find(|c| otp_equals(&hotp(seed, c.counter, token.digits), otp))
                .map(|c| OtpMatch::Challenge(c.state.clone())),
            TokenKind::Hotp => (token.counter
                ..token.counter.saturating_add(self.settings.hotp_window))
                .find(|c| otp_equals(&hotp_with(token.algorithm, seed, *c, token.digits), otp))
                .map(OtpMatch::Counter),
            TokenKind::Totp => {
                let step_secs = token.time_step.map_or(self.settings.totp_step, u64::from);
                let step = totp_step(now.as_secs(), step_secs);
                // ±1 step for clock drift; never a step at or before the last one used.
                (step.saturating_sub(1)..=step.saturating_add(1))
                    .filter(|s| *s >= token.counter)
                    .find(|s| otp_equals(&hotp_with(token.algorithm, seed, *s, token.digits), otp))
                    .map(OtpMatch::Counter)
            }
            // Its public id bound to the token, its private id and CRC checked, and its
            // counter past the last one accepted (consumed below like a HOTP counter).
            TokenKind::Yubikey => {
                let public_id = token.public_id.as_deref()?;
                yubico::check(otp, seed, public_id)
                    .filter(|c| *c >= token.counter)
                    .map(OtpMatch::Counter)
            }
        }
    }

    /// Consumes a matched OTP — unless the token is locked, where even a right code fails and
    /// counts (LinOTP). `false` from the store means someone else consumed it first.
    pub(super) async fn commit(
        &self,
        ctx: &Ctx<'_>,
        token: &Token,
        found: OtpMatch,
    ) -> Result<Decision, AuthError> {
        if self.is_locked(token) {
            return self
                .fail(ctx, &[token], Reason::TokenLocked, MSG_LOCKED)
                .await;
        }
        let by = ctx.req.request_id.map(|digest| RequestMark {
            digest,
            now: ctx.now,
        });
        let consumed = match &found {
            OtpMatch::Challenge(state) => {
                self.store
                    .close_challenge(state, &token.serial, ctx.now, by)
                    .await?
            }
            OtpMatch::Counter(counter) => {
                self.store
                    .consume_counter(&token.serial, *counter, Some(ctx.now), by)
                    .await?
            }
        };
        Ok(if consumed {
            self.grant_grace(ctx).await?;
            Decision::accept(Reason::OtpValid, &token.serial)
        } else {
            Decision::reject(MSG_FAILED, Reason::Replay, Some(&token.serial))
        })
    }

    /// What to look for in the store so that a request that consumed an OTP within the
    /// retransmit window — on another node, whose reply was lost before the NAS failed over to
    /// this one — is answered Accept again, nothing checked or consumed twice: its digest and
    /// the window's start. (This node's own retransmits never get here: the reply cache answers
    /// them.) The stores carry the check in their first read of the request.
    pub(super) fn retransmit<'a>(&self, ctx: &'a Ctx<'_>) -> Option<(&'a [u8; 16], UnixMs)> {
        let since = ctx.now.minus_ms(self.retransmit_window_ms);
        ctx.req.request_id.as_ref().map(|id| (id, since))
    }

    pub(super) async fn fail(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[&Token],
        reason: Reason,
        message: &str,
    ) -> Result<Decision, AuthError> {
        let serials: Vec<String> = tokens.iter().map(|t| t.serial.clone()).collect();
        self.store.record_failure(&serials, ctx.now).await?;
        let now_locked = tokens.iter().any(|t| t.fail_count + 1 >= t.max_fail);
        let message = if now_locked { MSG_LOCKED } else { message };
        Ok(Decision::reject(
            message,
            reason,
            tokens.first().map(|t| t.serial.as_str()),
        ))
    }

    pub(super) async fn answer_challenge(
        &self,
        ctx: &Ctx<'_>,
        state: &[u8],
    ) -> Result<Decision, AuthError> {
        let rows = match std::str::from_utf8(state) {
            Ok(state) => {
                let (rows, retransmitted) = self
                    .store
                    .challenge_of_request(state, self.retransmit(ctx))
                    .await?;
                if let Some(serial) = retransmitted {
                    return Ok(Decision::accept(Reason::Retransmit, &serial));
                }
                rows
            }
            Err(_) => vec![],
        };
        let rows: Vec<Challenge> = rows
            .into_iter()
            .filter(|c| {
                c.status == ChallengeStatus::Delivered
                    && c.expires_at >= ctx.now
                    && c.user == ctx.login
                    && c.realm == ctx.realm.name
            })
            .collect();
        if rows.is_empty() {
            return Ok(Decision::reject(MSG_EXPIRED, Reason::ChallengeGone, None));
        }
        let mut tokens = vec![];
        for row in &rows {
            if let Some(token) = self.store.token(&row.serial).await?.filter(|t| t.active) {
                tokens.push((row, token));
            }
        }
        let mode = self
            .setting(&ctx.policy(), |a| &a.otppin)
            .copied()
            .unwrap_or_default();
        let password = ctx.password();
        for (row, token) in &tokens {
            let expected = hotp(token.seed.expose(), row.counter, token.digits);
            // With a State, the OTP alone answers; PIN+OTP does too (LinOTP).
            let matched = if otp_equals(&expected, password.expose()) {
                true
            } else {
                match split_pin_otp(password, token) {
                    Some((pin, otp)) if otp_equals(&expected, otp) => {
                        self.pin_matches(ctx, mode, token, &pin).await?
                    }
                    _ => false,
                }
            };
            if !matched {
                continue;
            }
            return self
                .commit(ctx, token, OtpMatch::Challenge(row.state.clone()))
                .await;
        }
        let all: Vec<&Token> = tokens.iter().map(|(_, t)| t).collect();
        if all.is_empty() {
            return Ok(Decision::reject(
                MSG_EXPIRED,
                Reason::ChallengeTokenGone,
                None,
            ));
        }
        self.fail(
            ctx,
            &all,
            Reason::WrongOtpForChallenge,
            "wrong code, try again",
        )
        .await
    }
}
