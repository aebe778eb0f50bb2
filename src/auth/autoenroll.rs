//! Autoenrollment: a user without a token gets one on first login, when an enrollment policy
//! says so. The password is checked against the directory first, then the policy's token
//! types and the user's addresses pick the type; the token and its first challenge are stored
//! in one transaction (`challenge.rs` sends it) unless another request enrolled one first.

use super::challenge::delivery_failed_by;
use super::decision::{Ctx, Decision, MSG_FAILED};
use super::engine::Engine;
use super::enrollment::{TokenSpec, new_token};
use super::policy::{EnrollType, OtpPin, Scope};
use super::reason::Reason;
use super::{AuthError, Outcome};
use crate::directory::UserInfo;
use crate::password_hash;
use crate::store::{Backoffs, StoreError, Token, TokenKind};

impl Engine {
    /// Creates a token for a user who has none, when an enrollment policy says so.
    pub(super) async fn autoenroll(
        &self,
        ctx: &Ctx<'_>,
        backoff: Backoffs,
    ) -> Result<Decision, AuthError> {
        let Some(types) = self.policies.action(Scope::Enrollment, &ctx.policy(), |a| {
            a.autoenrollment.as_ref()
        }) else {
            return Ok(Decision::reject(
                MSG_FAILED,
                Reason::NoAutoenrollmentPolicy,
                None,
            ));
        };
        // The password first: nothing about the account is revealed to someone who lacks it.
        // An unknown name costs the same check (and answers no).
        let password_ok = ctx.check_directory_password(ctx.password()).await?;
        let Some((user, _)) = ctx.user.as_ref().filter(|_| password_ok) else {
            return self.first_factor_failed(ctx, ctx.refused_password()).await;
        };
        self.first_factor_passed(ctx, backoff).await?;
        let Some((kind, address)) = enroll_choice(types, ctx.channel, user) else {
            return Ok(missing_address(types));
        };
        // LinOTP sets the new token's PIN to the password just given; tessera does so only
        // where that PIN is what will be checked (otppin=0), so no directory password is kept
        // at rest otherwise.
        let pin_hash = match self
            .setting(&ctx.policy(), |a| &a.otppin)
            .copied()
            .unwrap_or_default()
        {
            OtpPin::TokenPin => Some(password_hash::hash_on_hash_thread(ctx.password()).await?),
            OtpPin::Password | OtpPin::OnlyOtp => None,
        };
        let spec = TokenSpec {
            kind,
            user: ctx.login.clone(),
            realm: ctx.realm.name.clone(),
            seed: None,
            digits: self.settings.otp_digits,
            max_fail: self
                .setting(&ctx.policy(), |a| &a.max_fail)
                .copied()
                .unwrap_or(self.settings.max_fail),
            pin_hash,
            phone: (kind == TokenKind::Sms).then(|| address.clone()),
            email: (kind == TokenKind::Email).then_some(address),
            description: format!("auto enrolled for {}@{}", user.login, ctx.realm.name),
            now: ctx.now,
            pending: false,
            public_id: None,
        };
        // A serial that exists already (2^-32 odds) is drawn again.
        for _ in 0..5 {
            let mut token = new_token(&spec)?;
            token.owner_id = user.stable_id.clone();
            token.autoenrolled = true;
            match self
                .send_challenge(ctx, std::slice::from_ref(&token), Some(token.clone()))
                .await
            {
                Ok(Some(mut decision)) => {
                    let then = Box::new(decision.reason);
                    decision.reason = match decision.outcome {
                        Outcome::Challenge { .. } => Reason::Enrolled(then),
                        Outcome::Reject { .. } => Reason::EnrollmentUndone(then),
                        // delivery_failmode=password_only: the reason says so already.
                        Outcome::Accept { .. } | Outcome::Forward { .. } => *then,
                    };
                    return Ok(decision);
                }
                Ok(None) => return self.enrolled_meanwhile(ctx, kind).await,
                Err(AuthError::Store(StoreError::Duplicate(_))) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(AuthError::Store(StoreError::Duplicate(spec.user)))
    }

    /// Another request enrolled this user between our read and our enrollment: the password
    /// was right, so this request joins that enrollment's challenge (waiting for its delivery).
    async fn enrolled_meanwhile(
        &self,
        ctx: &Ctx<'_>,
        kind: TokenKind,
    ) -> Result<Decision, AuthError> {
        let tokens: Vec<Token> = self
            .store
            .tokens_of_user(&ctx.login, &ctx.realm.name)
            .await?
            .into_iter()
            .filter(|t| t.active && t.kind.is_challenge_based() && t.fail_count < t.max_fail)
            .collect();
        if tokens.is_empty() {
            // The other request's delivery failed and took its token away again. Whose failure
            // that was is not known here, so no fail mode applies (see `when_delivery_failed`).
            return Ok(delivery_failed_by(
                kind,
                None,
                Reason::ConcurrentEnrollmentUndone,
            ));
        }
        self.trigger(ctx, &tokens).await
    }
}

/// What to enroll: the first token type the policy allows, the request's channel admits and the
/// user has an address for.
fn enroll_choice(
    types: &[EnrollType],
    channel: Option<TokenKind>,
    user: &UserInfo,
) -> Option<(TokenKind, String)> {
    types
        .iter()
        .filter(|t| match channel {
            Some(TokenKind::Sms) => **t == EnrollType::Sms,
            Some(TokenKind::Email) => **t == EnrollType::Email,
            _ => true,
        })
        .find_map(|t| match t {
            EnrollType::Sms => user.mobile.clone().map(|m| (TokenKind::Sms, m)),
            EnrollType::Email => user.email.clone().map(|e| (TokenKind::Email, e)),
        })
}

/// The rejection when the user has no address for any type the policy enrolls.
fn missing_address(types: &[EnrollType]) -> Decision {
    let what = match types {
        [EnrollType::Sms] => "mobile number",
        [EnrollType::Email] => "e-mail address",
        _ => "mobile number or e-mail address",
    };
    Decision::reject(
        format!("no {what} is on record for you; ask your administrator"),
        Reason::MissingAddress(what),
        None,
    )
}
