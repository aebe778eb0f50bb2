//! Sending challenges: [`Engine::trigger`], and the challenge an autoenrollment
//! (`autoenroll.rs`) starts with its token.
//!
//! Every decision that two requests (or two nodes) could race on is the store's, in one
//! transaction ([`Store::start_challenge`]): enroll unless the identity has a token, return the
//! challenge started within the blocking timeout, refuse at the per-user trigger limit, or
//! allocate one counter per token and store the new challenge as *pending*. Only then is the
//! message rendered and handed to the providers. A delivered challenge is marked so and its
//! State returned; a failed one leaves nothing behind (its rows deleted, a token autoenrolled
//! for it removed again).
//!
//! A request that finds a pending challenge — another request is still sending it — waits for
//! that delivery's outcome, polling the store (which works across processes too): the State
//! once it was delivered, the failure if it failed. Nobody is told "already submitted" for a
//! code that never leaves.
//!
//! [`Store::start_challenge`]: crate::store::Store::start_challenge

use std::time::Duration;

use super::decision::{Ctx, Decision, MSG_FAILED};
use super::engine::{Engine, random_hex};
use super::message::{mask_email, mask_phone, render, render_subject};
use super::policy::{DeliveryFailMode, OtpPin, Template};
use super::reason::Reason;
use super::{AuthError, Outcome};
use crate::delivery::{Channel, DeliveryError, Message};
use crate::failure::LocalFailure;
use crate::otp::hotp;
use crate::secret::Secret;
use crate::store::{
    Challenge, ChallengeRequest, ChallengeStart, ChallengeTarget, StoreError, Token, TokenKind,
};

/// How often a request waiting for another's delivery looks again.
const DELIVERY_POLL: Duration = Duration::from_millis(20);

impl Engine {
    /// Sends a challenge to `tokens` (all challenge-based, unlocked), or returns the open one.
    pub(super) async fn trigger(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
    ) -> Result<Decision, AuthError> {
        // Without a token to enroll, the store never answers "already enrolled".
        Ok(self
            .send_challenge(ctx, tokens, None)
            .await?
            .unwrap_or_else(|| {
                Decision::reject(
                    MSG_FAILED,
                    Reason::Internal("no challenge started".into()),
                    None,
                )
            }))
    }

    /// Starts a challenge for `tokens` (enrolling `enroll` first, when given) and delivers it.
    /// `None`: `enroll` was given and the identity has a token by now.
    pub(super) async fn send_challenge(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
        enroll: Option<Token>,
    ) -> Result<Option<Decision>, AuthError> {
        let enrolled = enroll.as_ref().map(|t| t.serial.clone());
        let ms = |seconds: u64| i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let request = ChallengeRequest {
            user: ctx.login.clone(),
            realm: ctx.realm.name.clone(),
            state: random_hex(16)?,
            targets: tokens
                .iter()
                .map(|t| ChallengeTarget {
                    serial: t.serial.clone(),
                    validity_ms: ms(self
                        .setting(&ctx.policy(), |a| &a.challenge_validity)
                        .copied()
                        .unwrap_or(self.settings.challenge_validity(t.kind))),
                    blocking_ms: ms(self
                        .setting(&ctx.policy(), |a| &a.blocking_timeout)
                        .copied()
                        .unwrap_or(self.settings.blocking_timeout(t.kind))),
                })
                .collect(),
            now: ctx.now,
            trigger_limit: self.settings.trigger_limit,
            trigger_window_ms: ms(self.settings.trigger_window),
            enroll,
            request_digest: ctx.req.request_id,
            retransmit_since: self.retransmit(ctx).map_or(ctx.now, |(_, since)| since),
        };
        let state = request.state.clone();
        let started = match self.store.start_challenge(request).await {
            // Read a moment ago, gone now: another request's delivery failed and took the
            // token it had enrolled away (or an admin deleted it). Nothing was started.
            Err(StoreError::TokenGone(_)) => {
                return Ok(Some(delivery_failed(
                    tokens,
                    Reason::ConcurrentEnrollmentUndone,
                )));
            }
            other => other?,
        };
        let counters = match started {
            ChallengeStart::AlreadyEnrolled => return Ok(None),
            ChallengeStart::Open(rows) => {
                return Ok(Some(self.join_open_challenge(ctx, tokens, rows).await?));
            }
            ChallengeStart::Limited(sent) => {
                let minutes = self.settings.trigger_window.div_ceil(60);
                return Ok(Some(Decision::reject(
                    format!("too many codes requested; try again in {minutes} minutes"),
                    Reason::TriggerLimit {
                        sent,
                        window_seconds: self.settings.trigger_window,
                    },
                    tokens.first().map(|t| t.serial.as_str()),
                )));
            }
            ChallengeStart::Started(counters) => counters,
        };

        let mut delivered: Vec<&Token> = vec![];
        let mut failures: Vec<Undelivered> = vec![];
        for (token, counter) in tokens.iter().zip(counters) {
            match self.deliver(ctx, token, counter).await {
                Ok(()) => delivered.push(token),
                Err(failure) => failures.push(failure),
            }
        }

        let Some(first) = delivered.first() else {
            // Nothing half-done is left behind: the token made for this challenge goes (its
            // challenge rows with it), or the challenge alone.
            match &enrolled {
                Some(serial) => {
                    self.store.delete_token(serial).await?;
                }
                None => self.store.delete_challenge(&state).await?,
            }
            return Ok(Some(self.undelivered(ctx, tokens, &failures)));
        };
        // From here on the challenge can be answered and its State handed to others.
        self.store.mark_delivered(&state).await?;
        Ok(Some(
            self.challenge_sent(ctx, tokens, &delivered, first, state),
        ))
    }

    /// The Access-Challenge once codes went out to `delivered` (`first` among them): the
    /// longest validity of theirs as its timeout, the policy's text or the channel's words.
    fn challenge_sent(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
        delivered: &[&Token],
        first: &Token,
        state: String,
    ) -> Decision {
        let timeout = tokens
            .iter()
            .filter(|t| delivered.iter().any(|d| d.serial == t.serial))
            .map(|t| {
                self.setting(&ctx.policy(), |a| &a.challenge_validity)
                    .copied()
                    .unwrap_or(self.settings.challenge_validity(t.kind))
            })
            .max()
            .unwrap_or(0);
        let message = match self.challenge_text(ctx, first) {
            Some(text) => text,
            None if delivered.len() == 1 => format!(
                "{} submitted{}",
                channel_words(first.kind).0,
                recipient_suffix(first)
            ),
            None => "Multiple challenges submitted.".to_string(),
        };
        Decision {
            outcome: Outcome::Challenge {
                state: state.into_bytes(),
                message,
                timeout: u32::try_from(timeout).unwrap_or(u32::MAX),
                tokens: delivered.iter().map(|t| challenged(t)).collect(),
            },
            reason: Reason::OtpSent(delivered.len()),
            serial: Some(first.serial.clone()),
        }
    }

    /// Renders the code for `counter` and hands it to the token's providers; `Err` says why
    /// it did not go out.
    async fn deliver(&self, ctx: &Ctx<'_>, token: &Token, counter: u64) -> Result<(), Undelivered> {
        let otp = hotp(token.seed.expose(), counter, token.digits);
        let policy = ctx.policy();
        let text = |set: Option<&Template>| set.map(|t| t.0.clone());
        let (channel, recipient, template, subject, providers) = match token.kind.channel() {
            Some(Channel::Email) => (
                Channel::Email,
                token.email.clone(),
                text(self.setting(&policy, |a| &a.emailtext)),
                text(self.setting(&policy, |a| &a.emailsubject)),
                self.setting(&policy, |a| &a.email_provider)
                    .cloned()
                    .into_iter()
                    .collect::<Vec<_>>(),
            ),
            Some(Channel::Sms) => (
                Channel::Sms,
                token.phone.clone(),
                text(self.setting(&policy, |a| &a.smstext)),
                None,
                self.setting(&policy, |a| &a.sms_provider)
                    .cloned()
                    .unwrap_or_default(),
            ),
            None => {
                return Err(Undelivered::Unsendable(format!(
                    "a {} token has no challenge",
                    token.kind
                )));
            }
        };
        let Some(recipient) = recipient else {
            return Err(Undelivered::Unsendable(format!(
                "token {} has no {channel} address",
                token.serial
            )));
        };
        let message = Message {
            channel,
            recipient,
            subject: subject.map(|s| render_subject(&s, &otp, &token.serial, &ctx.login)),
            text: Secret::from(render(
                template.as_deref().unwrap_or("<otp>"),
                channel,
                &otp,
                &token.serial,
                &ctx.login,
            )),
            serial: token.serial.clone(),
            user: ctx.login.clone(),
        };
        let limit = Duration::from_secs(self.settings.delivery_timeout);
        match tokio::time::timeout(limit, self.providers.send(&providers, &message)).await {
            Ok(Ok(receipt)) => {
                tracing::debug!(serial = %token.serial, provider = %receipt.provider, detail = %receipt.detail, "otp delivered");
                Ok(())
            }
            Ok(Err(error)) => {
                tracing::warn!(serial = %token.serial, %error, "otp delivery failed");
                Err(Undelivered::Failed(error))
            }
            Err(_) => {
                tracing::warn!(serial = %token.serial, "otp delivery timed out");
                Err(Undelivered::TimedOut(limit))
            }
        }
    }

    /// A challenge started within the blocking timeout: its State once it is delivered (now or
    /// after waiting for the request that sends it), or that request's failure.
    async fn join_open_challenge(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
        mut rows: Vec<Challenge>,
    ) -> Result<Decision, AuthError> {
        let state = rows.first().map(|r| r.state.clone()).unwrap_or_default();
        // The sender gives up after `delivery_timeout`; wait a little longer than that.
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(self.settings.delivery_timeout)
            + Duration::from_secs(1);
        loop {
            if rows.is_empty() {
                return Ok(delivery_failed(tokens, Reason::ConcurrentDeliveryFailed));
            }
            if let Some(row) = rows.iter().find(|r| r.status.was_delivered()) {
                let token = tokens.iter().find(|t| t.serial == row.serial);
                let kind = token.map_or(TokenKind::Sms, |t| t.kind);
                let left_ms = row.expires_at.ms_since(ctx.now).max(0);
                return Ok(Decision {
                    outcome: Outcome::Challenge {
                        state: row.state.clone().into_bytes(),
                        message: token
                            .and_then(|t| self.challenge_text(ctx, t))
                            .unwrap_or_else(|| {
                                format!(
                                    "{} with otp already submitted{}",
                                    channel_words(kind).0,
                                    token.map(recipient_suffix).unwrap_or_default()
                                )
                            }),
                        timeout: u32::try_from(left_ms / 1000).unwrap_or(0),
                        tokens: rows
                            .iter()
                            .filter(|r| r.status.was_delivered())
                            .filter_map(|r| tokens.iter().find(|t| t.serial == r.serial))
                            .map(challenged)
                            .collect(),
                    },
                    reason: Reason::AlreadySubmitted,
                    serial: Some(row.serial.clone()),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(delivery_failed(
                    tokens,
                    Reason::ConcurrentDeliveryUnfinished,
                ));
            }
            tokio::time::sleep(DELIVERY_POLL).await;
            rows = self.store.challenge(&state).await?;
        }
    }
}

impl Engine {
    /// `challenge_text=`: this NAS's words for a challenge, `<user>`, `<serial>` and
    /// `<recipient>` (masked) filled in.
    fn challenge_text(&self, ctx: &Ctx<'_>, token: &Token) -> Option<String> {
        let text = self.setting(&ctx.policy(), |a| &a.challenge_text)?;
        let recipient = match (token.kind, &token.phone, &token.email) {
            (TokenKind::Email, _, Some(email)) => mask_email(email),
            (_, Some(phone), _) => mask_phone(phone),
            _ => String::new(),
        };
        Some(
            text.replace("<user>", &ctx.login)
                .replace("<serial>", &token.serial)
                .replace("<recipient>", &recipient),
        )
    }

    /// No code went out. A failure of tessera's own (no descriptor, no memory …) is refused
    /// with its own words, whatever `delivery_failmode` says: the fail mode is for a provider
    /// that failed, not for a server a stranger has starved. Otherwise the providers failed,
    /// and [`Engine::when_delivery_failed`] applies the fail mode.
    fn undelivered(&self, ctx: &Ctx<'_>, tokens: &[Token], failures: &[Undelivered]) -> Decision {
        let text = failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let Some(local) = failures.iter().find_map(Undelivered::local) else {
            return self
                .when_delivery_failed(ctx, delivery_failed(tokens, Reason::DeliveryFailed(text)));
        };
        let resource = local.resource;
        crate::metrics::inc(
            "tessera_local_failures_total",
            &[("resource", resource.as_str())],
        );
        tracing::error!(user = %ctx.login, realm = %ctx.realm.name, %resource, error = %local.chain(), "no code delivered because of tessera's own failure, not the provider's: refused (no delivery_failmode applies)");
        let kind = tokens.first().map_or(TokenKind::Sms, |t| t.kind);
        Decision::reject(
            format!(
                "sending the OTP by {} failed (a problem on this server); try again later",
                channel_words(kind).1
            ),
            Reason::DeliveryFailedLocally {
                resource,
                failures: text,
            },
            tokens.first().map(|t| t.serial.as_str()),
        )
    }

    /// `delivery_failmode=password_only`: a failed delivery lets the user in on the password
    /// (or PIN) this request checked — loudly. Never under otppin=2, where nothing was checked,
    /// and only where this request saw the providers fail: a request that joined another's
    /// delivery does not know whose failure ended it, and is refused.
    fn when_delivery_failed(&self, ctx: &Ctx<'_>, failed: Decision) -> Decision {
        if self.setting(&ctx.policy(), |a| &a.delivery_failmode)
            != Some(&DeliveryFailMode::PasswordOnly)
            || ctx.password().is_empty()
            || self
                .setting(&ctx.policy(), |a| &a.otppin)
                .copied()
                .unwrap_or_default()
                == OtpPin::OnlyOtp
        {
            return failed;
        }
        tracing::warn!(user = %ctx.login, realm = %ctx.realm.name, reason = %failed.reason, "no code delivered: accepted on the password alone (delivery_failmode=password_only)");
        Decision {
            outcome: Outcome::Accept {
                message: None,
                reply: vec![],
            },
            reason: Reason::DeliveryFailedPasswordOnly(Box::new(failed.reason)),
            serial: failed.serial,
        }
    }
}

/// Why one token's code did not go out; the error kept whole until the reason is chosen.
#[derive(Debug)]
enum Undelivered {
    /// The token cannot be sent to (no address, no challenge).
    Unsendable(String),
    /// The providers failed, or tessera did ([`DeliveryError::Local`]).
    Failed(DeliveryError),
    /// No provider finished within `delivery_timeout`: the providers' failure.
    TimedOut(Duration),
}

impl Undelivered {
    /// The failure of tessera's own behind this, if it is one.
    fn local(&self) -> Option<&LocalFailure> {
        match self {
            Undelivered::Failed(error) => error.local_failure(),
            Undelivered::Unsendable(_) | Undelivered::TimedOut(_) => None,
        }
    }
}

impl std::fmt::Display for Undelivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undelivered::Unsendable(why) => f.write_str(why),
            Undelivered::Failed(DeliveryError::Local { provider, failure }) => {
                write!(f, "provider {provider} not tried: {}", failure.chain())
            }
            Undelivered::Failed(error) => write!(f, "{error}"),
            Undelivered::TimedOut(limit) => {
                write!(f, "delivery timed out after {}s", limit.as_secs())
            }
        }
    }
}

/// "sending the OTP by SMS failed", for `tokens`' channel.
fn delivery_failed(tokens: &[Token], reason: Reason) -> Decision {
    let kind = tokens.first().map_or(TokenKind::Sms, |t| t.kind);
    delivery_failed_by(kind, tokens.first().map(|t| t.serial.as_str()), reason)
}

/// "sending the OTP by SMS failed" (or e-mail).
pub(super) fn delivery_failed_by(
    kind: TokenKind,
    serial: Option<&str>,
    reason: Reason,
) -> Decision {
    Decision::reject(
        format!("sending the OTP by {} failed", channel_words(kind).1),
        reason,
        serial,
    )
}

fn channel_words(kind: TokenKind) -> (&'static str, &'static str) {
    // (as in LinOTP's messages, for the Reply-Message) ; (for "sending the OTP by … failed")
    match kind.channel() {
        Some(Channel::Email) => ("e-mail", "e-mail"),
        // HOTP/TOTP tokens are never challenged; their words would be SMS's.
        Some(Channel::Sms) | None => ("sms", "SMS"),
    }
}

/// ` to +49********678` or ` to a****@example.org`.
fn recipient_suffix(token: &Token) -> String {
    match (token.kind, &token.phone, &token.email) {
        (TokenKind::Email, _, Some(email)) => format!(" to {}", mask_email(email)),
        (_, Some(phone), _) => format!(" to {}", mask_phone(phone)),
        _ => String::new(),
    }
}

/// What the front end may say about a token a code went out for.
fn challenged(token: &Token) -> super::Challenged {
    super::Challenged {
        serial: token.serial.clone(),
        kind: token.kind,
    }
}
