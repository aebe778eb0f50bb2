//! [`Engine`]: decides one [`AuthRequest`].
//!
//! First the identity: the typed name is normalised (NFKC, trimmed, no control characters),
//! split at `@` into login and realm, and looked up; the directory's spelling of the login is
//! the identity every key, policy, limit and audit row uses from then on (see
//! `directory::login_name`). A name no directory knows keeps its normalised spelling.
//!
//! The way through, for a request without State:
//! 0. An identity in back-off (`backoff.rs`) is refused before any password check.
//! 1. The user has no token → autoenrollment, if a policy allows it: the password is checked
//!    against the directory *first*, then the mobile/e-mail attribute picks the token type, and
//!    the token and its first challenge are stored in one transaction unless another request
//!    enrolled one first. A failed delivery deletes the new token again.
//! 2. The password ends with an OTP that answers one of the user's open challenges (SMS,
//!    e-mail) or falls in a HOTP/TOTP window → the PIN part is checked (per `otppin`) and the
//!    OTP is consumed atomically: Accept.
//! 3. The whole password is the PIN → a challenge is sent to the user's SMS/e-mail tokens,
//!    unless one was sent within the blocking timeout (then that one's State comes back) or the
//!    per-user trigger limit is reached.
//! 4. Otherwise: a right PIN with a wrong OTP counts on the tokens' fail counters; a wrong
//!    PIN or password counts on the identity's back-off, never on a token, so a stranger
//!    cannot lock anyone out. Reject either way.
//!
//! Autoenrollment (step 1) lives in `autoenroll.rs`, sending challenges (steps 1 and 3) in
//! `challenge.rs`, the first factor and the back-off in `first_factor.rs`, finding, consuming
//! and failing an OTP (step 2, and a State's answer) in `otp_check.rs`, an Accept's reply
//! attributes in `reply.rs`; what they all share (the request's facts, the decision, the texts
//! users see) in `decision.rs`, reading the password field in `password.rs`.
//!
//! With a State, the password must answer that challenge: the OTP alone, or PIN+OTP.
//! Only an open, unexpired challenge can be answered, and closing it is a compare-and-set in
//! the store, so an OTP is accepted at most once.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::backoff::{BackoffSchedule, UnderAttack, UnknownNames};
use super::decision::{
    Ctx, Decision, Identity, MSG_APPEND, MSG_FAILED, MSG_INTERNAL, MSG_LOCKED, MSG_UNAVAILABLE,
};
use super::password::{split_channel_keyword, split_pin_otp};
use super::policy::{Actions, Keyword, LoginMode, Mfa, OtpPin, PolicyContext, PolicySet, Scope};
use super::reason::Reason;
use super::{AuthError, AuthRequest, AuthSettings, Authenticate, Clock, Outcome, ReplyCheck};
use crate::delivery::Providers;
use crate::directory::{Realms, login_name};
use crate::store::audit::AuditAction;
use crate::store::{AuditEntry, Backoffs, Store, Token, TokenKind};

/// The engine and everything it needs. Cheap to share behind an `Arc`.
pub struct Engine {
    pub(super) store: Arc<dyn Store>,
    pub(super) realms: Realms,
    pub(super) policies: PolicySet,
    pub(super) providers: Providers,
    pub(super) settings: AuthSettings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) backoff: BackoffSchedule,
    /// Back-off counts of names no directory knows (the store keeps the others'); shared with
    /// the engine a reload replaces this one with, so a reload forgives nobody.
    pub(super) unknown_names: Arc<UnknownNames>,
    /// The identities seen past the back-off's ceiling (the gauge), shared alike.
    pub(super) under_attack: Arc<UnderAttack>,
    /// Checks reply attributes before an Accept; see [`Engine::with_reply_check`].
    pub(super) reply_check: Option<Arc<dyn ReplyCheck>>,
    /// How long after an Accept the same request counts as its retransmit (ms); see
    /// [`Engine::with_retransmit_window`].
    pub(super) retransmit_window_ms: i64,
}

pub(super) fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(crate::hex::encode(&buf))
}

impl Engine {
    /// Assembles an engine.
    pub fn new(
        store: Arc<dyn Store>,
        realms: Realms,
        policies: PolicySet,
        providers: Providers,
        settings: AuthSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Engine {
            store,
            realms,
            policies,
            providers,
            backoff: BackoffSchedule::from_settings(&settings),
            settings,
            clock,
            unknown_names: Arc::new(UnknownNames::default()),
            under_attack: Arc::new(UnderAttack::default()),
            reply_check: None,
            retransmit_window_ms: 30_000,
        }
    }

    /// Takes over the back-off counts of names no directory knows (and the identities seen
    /// under attack) from the engine this one replaces on reload.
    pub fn with_unknown_names_of(mut self, previous: &Engine) -> Self {
        self.unknown_names = previous.unknown_names.clone();
        self.under_attack = previous.under_attack.clone();
        self
    }

    /// How many identities this node has seen past the back-off's ceiling — failures from all
    /// origins at `backoff_identity_after` or more — and not yet forgotten: the gauge
    /// `tessera_backoff_identities_under_attack`.
    pub fn identities_under_attack(&self) -> usize {
        self.under_attack.count(&self.backoff, self.clock.now())
    }

    /// How long (the front end's reply-cache time) the same request, resent to another node
    /// sharing the store after this one accepted it, is answered Accept again (default 30 s).
    pub fn with_retransmit_window(mut self, seconds: u64) -> Self {
        self.retransmit_window_ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        self
    }

    /// Checks every reply attribute with `check` before accepting (the front end's dictionary
    /// of the same configuration); an attribute that cannot be sent rejects the request.
    pub fn with_reply_check(mut self, check: Arc<dyn ReplyCheck>) -> Self {
        self.reply_check = Some(check);
        self
    }

    /// The realms this engine serves (health checks use them).
    pub fn realms(&self) -> &Realms {
        &self.realms
    }

    /// Resolves the identity behind a request's User-Name (see the module documentation);
    /// `refused` says why there is none to decide for.
    pub(super) async fn identify(&self, req: &AuthRequest) -> Identity<'_> {
        let normalized = login_name::normalize(&req.user_name);
        let (typed, realm) = self.realms.resolve(normalized.as_deref().unwrap_or(""));
        // `alice @corp`: the login part is trimmed again after the split.
        let typed = typed.trim().to_string();
        let found = match &normalized {
            Err(error) => Err(Decision::reject(
                MSG_FAILED,
                Reason::RefusedUserName(error.to_string()),
                None,
            )),
            Ok(_) if typed.is_empty() => {
                Err(Decision::reject(MSG_FAILED, Reason::EmptyUserName, None))
            }
            Ok(_) => realm.lookup(&typed).await.map_err(|error| {
                tracing::error!(user = %typed, realm = %realm.name, %error, "authentication failed on an internal error");
                Decision::reject(MSG_UNAVAILABLE, Reason::Internal(error.to_string()), None)
            }),
        };
        let (user, refused) = match found {
            Ok(user) => (user, None),
            Err(decision) => (None, Some(decision)),
        };
        let login = match (&user, &normalized) {
            (Some((entry, _)), _) => entry.login.clone(),
            // A refused name is no identity: it reaches only the log and the audit (escaped
            // there), as typed, so an admin sees what was tried.
            (None, Err(_)) => req.user_name.clone(),
            (None, Ok(_)) => typed,
        };
        Identity {
            login,
            realm,
            user,
            refused,
        }
    }

    /// Decides a request, logs one line and writes one audit row.
    pub async fn decide(&self, req: AuthRequest) -> Outcome {
        let started = Instant::now();
        let now = self.clock.now();
        let Identity {
            login,
            realm,
            user,
            refused,
        } = self.identify(&req).await;
        let mut ctx = Ctx {
            req: &req,
            login,
            realm,
            user,
            now,
            appended_keyword_removed: None,
            channel: None,
            answers: Mutex::new(vec![]),
        };
        let append = self.setting(&ctx.policy(), |a| &a.login_mode) == Some(&LoginMode::Append);
        if append && req.state.is_none() {
            self.take_channel_keyword(&mut ctx);
        }
        let result = if let Some(decision) = refused {
            Ok(decision)
        } else {
            // Either way the retransmit check (see `retransmit`) rides on the first read.
            match &req.state {
                None => self.authenticate_without_state(&ctx).await,
                Some(state) => self.answer_challenge(&ctx, state).await,
            }
        };
        let result = match result {
            Ok(decision) if append => Ok(self.in_append_mode(decision)),
            other => other,
        };
        let result = match result {
            Ok(decision) => self.add_reply_attributes(&ctx, decision),
            Err(error) => Err(error),
        };
        let decision = result.unwrap_or_else(|error| {
            let message = match error {
                AuthError::Directory(_)
                | AuthError::Store(crate::store::StoreError::Unavailable(_)) => MSG_UNAVAILABLE,
                _ => MSG_INTERNAL,
            };
            tracing::error!(user = %ctx.login, realm = %realm.name, %error, "authentication failed on an internal error");
            Decision::reject(message, Reason::Internal(error.to_string()), None)
        });
        let decision = self.with_reject_text(&ctx, decision);
        self.record(&ctx, &decision, started).await;
        decision.outcome
    }

    /// Login mode "append": a channel keyword after the password ("secret sms") picks the
    /// channel and is removed from the password.
    fn take_channel_keyword(&self, ctx: &mut Ctx<'_>) {
        let policy = ctx.policy();
        let keyword = |set: Option<&Keyword>, default: &str| set.map_or(default, |k| k).to_string();
        let keywords = [
            (
                keyword(self.setting(&policy, |a| &a.sms_keyword), "sms"),
                TokenKind::Sms,
            ),
            (
                keyword(self.setting(&policy, |a| &a.email_keyword), "email"),
                TokenKind::Email,
            ),
        ];
        if let Some((password, kind)) = split_channel_keyword(&ctx.req.password, &keywords) {
            ctx.appended_keyword_removed = Some(password);
            ctx.channel = Some(kind);
        }
    }

    /// The decision's log line, metric and audit row.
    async fn record(&self, ctx: &Ctx<'_>, decision: &Decision, started: Instant) {
        // The name as typed, when it is not the identity (another spelling, a refused name).
        let typed = if ctx.req.user_name == ctx.login {
            "-"
        } else {
            ctx.req.user_name.as_str()
        };
        tracing::info!(
            client = %ctx.req.client_name,
            user = %ctx.login,
            realm = %ctx.realm.name,
            result = decision.result().as_str(),
            reason = %decision.reason,
            serial = decision.serial.as_deref().unwrap_or("-"),
            duration_ms = started.elapsed().as_millis() as u64,
            typed,
            "authentication"
        );
        crate::metrics::inc(
            "tessera_auth_decisions_total",
            &[
                ("result", decision.result().as_str()),
                ("reason", decision.reason.label()),
            ],
        );
        let entry = AuditEntry {
            time: ctx.now,
            client: ctx.req.client_name.clone(),
            user: ctx.login.clone(),
            realm: ctx.realm.name.clone(),
            serial: decision.serial.clone(),
            action: if ctx.req.state.is_some() {
                AuditAction::AnswerChallenge
            } else {
                AuditAction::Authenticate
            }
            .into(),
            result: decision.result().into(),
            reason: decision.reason.to_string(),
        };
        // Queued, not awaited: the audit row never delays the answer.
        self.store.audit(entry).await;
    }

    /// What an authentication policy sets for this request (the most specific policy that
    /// matches its identity, realm, groups and client; see [`PolicySet::action`]): the one
    /// lookup of a policy action, `self.setting(&ctx.policy(), |a| &a.otppin)`. The caller
    /// supplies the default where no policy sets it.
    pub(super) fn setting<'a, T>(
        &'a self,
        policy: &PolicyContext<'_>,
        action: impl Fn(&'a Actions) -> &'a Option<T>,
    ) -> Option<&'a T> {
        self.policies
            .action(Scope::Authentication, policy, |a| action(a).as_ref())
    }

    /// `login_mode=append`: a NAS that cannot show a challenge gets a Reject that tells the
    /// user where the code went and to log in again with password and code in one field; the
    /// challenge stays open for that.
    fn in_append_mode(&self, mut decision: Decision) -> Decision {
        if let Outcome::Challenge { message, .. } = &decision.outcome {
            decision.outcome = Outcome::Reject {
                message: format!("{message}; {MSG_APPEND}"),
            };
        }
        decision
    }

    /// `reject_text=`: this NAS's words for "authentication failed".
    fn with_reject_text(&self, ctx: &Ctx<'_>, mut decision: Decision) -> Decision {
        if let Outcome::Reject { message } = &mut decision.outcome
            && message == MSG_FAILED
            && let Some(text) = self.setting(&ctx.policy(), |a| &a.reject_text)
        {
            message.clone_from(text);
        }
        decision
    }

    async fn authenticate_without_state(&self, ctx: &Ctx<'_>) -> Result<Decision, AuthError> {
        if let Some(decision) = self.failures_unrecorded() {
            return Ok(decision);
        }
        // The back-off rows live in the store only for names the directory knows.
        let origin = ctx.origin();
        let backoff_origin =
            (ctx.user.is_some() && self.backoff.is_on()).then_some(origin.as_ref());
        let (state, retransmitted) = self
            .store
            .user_state_of_request(
                &ctx.login,
                &ctx.realm.name,
                backoff_origin,
                self.retransmit(ctx),
            )
            .await?;
        if let Some(serial) = retransmitted {
            return Ok(Decision::accept(Reason::Retransmit, &serial));
        }
        let backoff = self.backoff_of(ctx, state.backoff);
        if let Some(decision) = self.refused_unchecked(ctx, backoff) {
            return Ok(decision);
        }
        if self.setting(&ctx.policy(), |a| &a.mfa) == Some(&Mfa::PasswordOnly) {
            return Box::pin(self.password_only(ctx, backoff)).await;
        }
        let mut tokens = state.tokens;
        if let Some(stale) = self.tokens_of_an_earlier_account(ctx, &mut tokens) {
            return Box::pin(self.refuse_earlier_account(ctx, backoff, stale)).await;
        }
        // After the earlier account's tokens are out: its grace is not this account's.
        if let Some(decision) = Box::pin(self.within_grace(ctx, &tokens, backoff)).await? {
            return Ok(decision);
        }
        if tokens.is_empty()
            && let Some(upstream) = self.setting(&ctx.policy(), |a| &a.passthru).cloned()
        {
            if let Some(refused) = self.passthru_refused(ctx, &upstream).await? {
                return Ok(refused);
            }
            return Ok(Decision {
                outcome: Outcome::Forward {
                    upstream: upstream.clone(),
                    request: Box::new(ctx.req.clone()),
                },
                reason: Reason::Passthru(upstream),
                serial: None,
            });
        }
        if tokens.is_empty() {
            // Boxed, like `trigger` below: these rarer paths (a directory bind, a hash, a
            // delivery) make large futures, and every request's task would carry their size.
            return Box::pin(self.autoenroll(ctx, backoff)).await;
        }
        self.release_expired_locks(ctx, &mut tokens).await?;
        let active: Vec<&Token> = tokens.iter().filter(|t| t.active).collect();
        if active.is_empty() {
            // Checked all the same, so the answer takes as long as anyone else's and a
            // guesser meets the back-off here too.
            if !ctx.check_directory_password(ctx.password()).await? {
                return self.first_factor_failed(ctx, Reason::WrongPassword).await;
            }
            self.first_factor_passed(ctx, backoff).await?;
            return Ok(Decision::reject(
                MSG_FAILED,
                Reason::AllTokensDisabled,
                None,
            ));
        }
        self.check_active_tokens(ctx, &active, backoff).await
    }

    /// The password against the user's active tokens: PIN+OTP (or the OTP alone), the PIN
    /// alone (a challenge), or a failure counted where it belongs.
    async fn check_active_tokens(
        &self,
        ctx: &Ctx<'_>,
        active: &[&Token],
        backoff: Backoffs,
    ) -> Result<Decision, AuthError> {
        let mode = self
            .setting(&ctx.policy(), |a| &a.otppin)
            .copied()
            .unwrap_or_default();
        let password = ctx.password();
        // Only SMS/e-mail tokens have challenges; spare the store the query otherwise.
        let open = if active.iter().any(|t| t.kind.is_challenge_based()) {
            self.store
                .open_challenges_of_user(&ctx.login, &ctx.realm.name, ctx.now)
                .await?
        } else {
            vec![]
        };

        // PIN+OTP (or the OTP alone under otppin=2). The OTP is checked before the PIN, so a
        // garbage password never costs a directory bind.
        for token in active {
            let Some((pin, otp)) = split_pin_otp(password, token) else {
                continue;
            };
            let Some(found) = self.find_otp(token, otp, &open, ctx.now) else {
                continue;
            };
            if !self.pin_matches(ctx, mode, token, &pin).await? {
                return self
                    .first_factor_failed(ctx, Reason::WrongPinWithValidOtp)
                    .await;
            }
            self.first_factor_passed(ctx, backoff).await?;
            return self.commit(ctx, token, found).await;
        }

        // The PIN alone: trigger a challenge.
        let mut pin_ok = vec![];
        for token in active {
            if self.pin_matches(ctx, mode, token, password).await? {
                pin_ok.push(*token);
            }
        }
        if !pin_ok.is_empty() {
            return self.pin_alone(ctx, &pin_ok, backoff).await;
        }

        // A right PIN with a wrong OTP counts on the tokens (LinOTP's fail counter). Under
        // otppin=2 the empty PIN is the right one: the OTP is the only factor, and wrong ones
        // lock the token as in LinOTP — a back-off alone would let a 6-digit code be guessed.
        let mut wrong_otp = vec![];
        for token in active {
            if let Some((pin, _)) = split_pin_otp(password, token)
                && self.pin_matches(ctx, mode, token, &pin).await?
            {
                wrong_otp.push(*token);
            }
        }
        if !wrong_otp.is_empty() {
            self.first_factor_passed(ctx, backoff).await?;
            return self
                .fail(ctx, &wrong_otp, Reason::WrongOtp, MSG_FAILED)
                .await;
        }
        let reason = match mode {
            OtpPin::Password => Reason::WrongPassword,
            OtpPin::TokenPin => Reason::WrongPin,
            OtpPin::OnlyOtp => Reason::WrongOtp,
        };
        self.first_factor_failed(ctx, reason).await
    }

    /// A right PIN (password) alone: a challenge on the tokens that can send one, unless every
    /// such token is locked.
    async fn pin_alone(
        &self,
        ctx: &Ctx<'_>,
        pin_ok: &[&Token],
        backoff: Backoffs,
    ) -> Result<Decision, AuthError> {
        self.first_factor_passed(ctx, backoff).await?;
        let unlocked: Vec<Token> = pin_ok
            .iter()
            .filter(|t| !self.is_locked(t))
            .map(|t| (*t).clone())
            .collect();
        if unlocked.is_empty() {
            // Only after a right password: a stranger learns nothing from it.
            return Ok(Decision::reject(
                MSG_LOCKED,
                Reason::TokenLocked,
                pin_ok.first().map(|t| t.serial.as_str()),
            ));
        }
        let challengeable: Vec<Token> = unlocked
            .iter()
            .filter(|t| t.kind.is_challenge_based())
            .filter(|t| ctx.channel.is_none_or(|kind| t.kind == kind))
            .cloned()
            .collect();
        if challengeable.is_empty() {
            return Ok(Decision::reject(
                "enter your password followed by the code from your authenticator",
                Reason::PinWithoutOtp,
                unlocked.first().map(|t| t.serial.as_str()),
            ));
        }
        return Box::pin(self.trigger(ctx, &challengeable)).await;
    }
}

impl Authenticate for Engine {
    async fn authenticate(&self, request: AuthRequest) -> Outcome {
        self.decide(request).await
    }

    async fn passthru_accepted(&self, request: AuthRequest) {
        self.assign_after_passthru(request).await
    }

    async fn accounting_user(
        &self,
        user_name: &str,
        client: std::net::IpAddr,
    ) -> Result<super::AccountingUser, String> {
        let Ok(normalized) = login_name::normalize(user_name) else {
            return Ok(super::AccountingUser::default());
        };
        let (typed, realm) = self.realms.resolve(&normalized);
        let typed = typed.trim();
        if typed.is_empty() {
            return Ok(super::AccountingUser::default());
        }
        let found = realm.lookup(typed).await.map_err(|e| e.to_string())?;
        let (login, groups) = match &found {
            Some((entry, _)) => (entry.login.as_str(), entry.groups.as_slice()),
            None => (typed, &[][..]),
        };
        let policy = PolicyContext {
            user: login,
            realm: &realm.name,
            client,
            groups,
        };
        Ok(super::AccountingUser {
            passthru: self.setting(&policy, |a| &a.passthru).cloned(),
            identity: found.as_ref().map(|(entry, _)| crate::store::Identity {
                user: entry.login.clone(),
                realm: realm.name.clone(),
            }),
        })
    }
}

impl<T: Authenticate> Authenticate for Arc<T> {
    async fn authenticate(&self, request: AuthRequest) -> Outcome {
        (**self).authenticate(request).await
    }

    async fn passthru_accepted(&self, request: AuthRequest) {
        (**self).passthru_accepted(request).await
    }

    async fn accounting_user(
        &self,
        user_name: &str,
        client: std::net::IpAddr,
    ) -> Result<super::AccountingUser, String> {
        (**self).accounting_user(user_name, client).await
    }
}
