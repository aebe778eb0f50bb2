//! Sending challenges: autoenrollment of a user without a token, and [`Engine::trigger`], which
//! returns the open challenge within the blocking timeout, enforces the per-user trigger limit,
//! allocates one counter per token, renders the message from the policy templates and hands it
//! to the providers. A failed delivery leaves nothing behind: the challenge rows are deleted,
//! and a token autoenrolled for this request is removed again.

use super::engine::{Ctx, Decision, Engine, MSG_FAILED, random_hex};
use super::enrollment::{TokenSpec, create_token};
use super::message::{mask_email, mask_phone, render, render_subject};
use super::policy::{EnrollType, Scope};
use super::{AuthError, Outcome};
use crate::delivery::{Channel, Message};
use crate::directory::UserInfo;
use crate::otp::hotp;
use crate::password_hash;
use crate::secret::Secret;
use crate::store::{Token, TokenKind};

impl Engine {
    /// Creates a token for a user who has none, when an enrollment policy says so.
    pub(super) async fn autoenroll(&self, ctx: &Ctx<'_>) -> Result<Decision, AuthError> {
        let Some(types) = self.policies.action(Scope::Enrollment, &ctx.policy(), |a| {
            a.autoenrollment.as_ref()
        }) else {
            return Ok(Decision::reject(
                MSG_FAILED,
                "user has no token and no autoenrollment policy applies",
                None,
            ));
        };
        // The password first: nothing about the account is revealed to someone who lacks it.
        let Some((user, directory)) = ctx.realm.lookup(&ctx.login).await? else {
            return Ok(Decision::reject(MSG_FAILED, "unknown user", None));
        };
        if !directory.check_password(&user, &ctx.req.password).await? {
            return Ok(Decision::reject(MSG_FAILED, "wrong password", None));
        }
        let choice = types.iter().find_map(|t| match t {
            EnrollType::Sms => user.mobile.clone().map(|m| (TokenKind::Sms, m)),
            EnrollType::Email => user.email.clone().map(|e| (TokenKind::Email, e)),
        });
        let Some((kind, address)) = choice else {
            let what = match types.as_slice() {
                [EnrollType::Sms] => "mobile number",
                [EnrollType::Email] => "e-mail address",
                _ => "mobile number or e-mail address",
            };
            return Ok(Decision::reject(
                format!("no {what} is on record for you; ask your administrator"),
                format!("autoenrollment failed: missing {what}"),
                None,
            ));
        };
        let token = self.new_token(ctx, kind, address, &user).await?;
        let serial = token.serial.clone();
        let mut decision = self.trigger(ctx, std::slice::from_ref(&token)).await?;
        if matches!(decision.outcome, Outcome::Challenge { .. }) {
            decision.reason = format!("token enrolled; {}", decision.reason);
        } else {
            // Nothing half-enrolled is left behind.
            self.store.delete_token(&serial).await?;
            decision.reason = format!("autoenrollment undone: {}", decision.reason);
        }
        Ok(decision)
    }

    async fn new_token(
        &self,
        ctx: &Ctx<'_>,
        kind: TokenKind,
        address: String,
        user: &UserInfo,
    ) -> Result<Token, AuthError> {
        // LinOTP sets the new token's PIN to the password just given (used under otppin=0).
        let pin_hash = password_hash::hash_on_hash_thread(&ctx.req.password).await?;
        let spec = TokenSpec {
            kind,
            user: ctx.login.clone(),
            realm: ctx.realm.name.clone(),
            seed: None,
            digits: self.settings.otp_digits,
            max_fail: self.max_fail(ctx),
            pin_hash: Some(pin_hash),
            phone: (kind == TokenKind::Sms).then(|| address.clone()),
            email: (kind == TokenKind::Email).then_some(address),
            description: format!("auto enrolled for {}@{}", user.login, ctx.realm.name),
            now: ctx.now,
        };
        Ok(create_token(self.store.as_ref(), spec).await?)
    }

    /// Sends a challenge to `tokens` (all challenge-based, unlocked), or returns the open one.
    pub(super) async fn trigger(
        &self,
        ctx: &Ctx<'_>,
        tokens: &[Token],
    ) -> Result<Decision, AuthError> {
        let open = self
            .store
            .open_challenges_of_user(&ctx.login, &ctx.realm.name, ctx.now)
            .await?;
        for challenge in &open {
            let Some(token) = tokens.iter().find(|t| t.serial == challenge.serial) else {
                continue;
            };
            let blocking =
                i64::try_from(self.blocking_timeout(ctx, token.kind)).unwrap_or(i64::MAX);
            if ctx.now <= challenge.created_at.saturating_add(blocking) {
                let (word, _) = channel_words(token.kind);
                return Ok(Decision {
                    outcome: Outcome::Challenge {
                        state: challenge.state.clone().into_bytes(),
                        message: format!(
                            "{word} with otp already submitted{}",
                            recipient_suffix(token)
                        ),
                        timeout: u32::try_from(challenge.expires_at - ctx.now).unwrap_or(0),
                    },
                    reason: "otp already submitted (blocking timeout), nothing sent".into(),
                    serial: Some(token.serial.clone()),
                });
            }
        }

        let window = i64::try_from(self.settings.trigger_window).unwrap_or(i64::MAX);
        let sent = self
            .store
            .count_challenges_since(&ctx.login, &ctx.realm.name, ctx.now.saturating_sub(window))
            .await?;
        if sent >= self.settings.trigger_limit {
            let minutes = self.settings.trigger_window.div_ceil(60);
            return Ok(Decision::reject(
                format!("too many codes requested; try again in {minutes} minutes"),
                format!(
                    "trigger limit reached ({sent} codes in {}s)",
                    self.settings.trigger_window
                ),
                tokens.first().map(|t| t.serial.as_str()),
            ));
        }

        let state = random_hex(16)?;
        let policy = ctx.policy();
        let actions = |f: fn(&super::policy::Actions) -> Option<&String>| {
            self.policies
                .action(Scope::Authentication, &policy, f)
                .cloned()
        };
        let mut delivered: Vec<(&Token, u64)> = vec![];
        let mut failures: Vec<String> = vec![];
        for token in tokens {
            let validity = self.challenge_validity(ctx, token.kind);
            let expires = ctx
                .now
                .saturating_add(i64::try_from(validity).unwrap_or(i64::MAX));
            let counter = self
                .store
                .create_challenge(&state, &token.serial, ctx.now, expires)
                .await?;
            let otp = hotp(token.seed.expose(), counter, token.digits);
            let (channel, recipient, template, subject, providers) = match token.kind {
                TokenKind::Email => (
                    Channel::Email,
                    token.email.clone(),
                    actions(|a| a.emailtext.as_ref()),
                    actions(|a| a.emailsubject.as_ref()),
                    actions(|a| a.email_provider.as_ref())
                        .into_iter()
                        .collect::<Vec<_>>(),
                ),
                _ => (
                    Channel::Sms,
                    token.phone.clone(),
                    actions(|a| a.smstext.as_ref()),
                    None,
                    self.policies
                        .action(Scope::Authentication, &policy, |a| a.sms_provider.as_ref())
                        .cloned()
                        .unwrap_or_default(),
                ),
            };
            let Some(recipient) = recipient else {
                failures.push(format!("token {} has no {channel} address", token.serial));
                continue;
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
            let limit = std::time::Duration::from_secs(self.settings.delivery_timeout);
            match tokio::time::timeout(limit, self.providers.send(&providers, &message)).await {
                Ok(Ok(receipt)) => {
                    tracing::debug!(serial = %token.serial, provider = %receipt.provider, detail = %receipt.detail, "otp delivered");
                    delivered.push((token, validity));
                }
                Ok(Err(error)) => {
                    tracing::warn!(serial = %token.serial, %error, "otp delivery failed");
                    failures.push(error.to_string());
                }
                Err(_) => {
                    tracing::warn!(serial = %token.serial, "otp delivery timed out");
                    failures.push(format!("delivery timed out after {}s", limit.as_secs()));
                }
            }
        }

        let Some((first, _)) = delivered.first() else {
            self.store.delete_challenge(&state).await?;
            let kind = tokens.first().map(|t| t.kind).unwrap_or(TokenKind::Sms);
            return Ok(Decision::reject(
                format!("sending the OTP by {} failed", channel_words(kind).1),
                format!("delivery failed: {}", failures.join("; ")),
                tokens.first().map(|t| t.serial.as_str()),
            ));
        };
        let timeout = delivered.iter().map(|(_, v)| *v).max().unwrap_or(0);
        let message = if delivered.len() == 1 {
            format!(
                "{} submitted{}",
                channel_words(first.kind).0,
                recipient_suffix(first)
            )
        } else {
            "Multiple challenges submitted.".to_string()
        };
        Ok(Decision {
            outcome: Outcome::Challenge {
                state: state.into_bytes(),
                message,
                timeout: u32::try_from(timeout).unwrap_or(u32::MAX),
            },
            reason: format!("otp sent to {} token(s)", delivered.len()),
            serial: Some(first.serial.clone()),
        })
    }
}

fn channel_words(kind: TokenKind) -> (&'static str, &'static str) {
    // (as in LinOTP's messages, for the Reply-Message) ; (for "sending the OTP by … failed")
    match kind {
        TokenKind::Email => ("e-mail", "e-mail"),
        _ => ("sms", "SMS"),
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
