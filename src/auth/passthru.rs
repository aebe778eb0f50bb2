//! Passthru's two decisions of the engine's own (the forward itself is the front end's).
//!
//! Before a request is forwarded (`passthru=NAME`): whom the legacy server would take the
//! name for. tessera keys a user on the directory's identity, but an old server may map more
//! spellings to one account than tessera does — NPS with Active Directory takes `CORP\alice`
//! and `alice@corp.example` for `alice`. So a name with such a domain is also looked up without
//! it ([`login_name::without_domain`]) in every realm, and the request is not forwarded when
//! that identity holds a token (the old server would let a token holder in on the password
//! alone) or when the passthru policies, asked for that identity, do not send it to the same
//! server (`user = "*, -alice"` excludes alice under any spelling). A directory that cannot
//! answer refuses the forward too. Names that are no other user's spelling go on as before.
//!
//! After the legacy server accepted a user tessera forwarded:
//! `passthru_assign=sms|email` enrolls the user's token there and then, without sending
//! anything, so the user's next login is tessera's own. The token is made as autoenrollment
//! makes it (identity, stable id, PIN only under otppin=0) and the schema's "one autoenrolled
//! token per user" keeps two concurrent accepts from making two.

use super::decision::{Ctx, Decision, Identity, MSG_FAILED};
use super::engine::Engine;
use super::enrollment::{TokenSpec, new_token};
use super::policy::{EnrollType, OtpPin, PolicyContext};
use super::reason::Reason;
use super::{AuthError, AuthRequest};
use crate::directory::login_name;
use crate::password_hash;
use crate::store::audit::{AuditAction, AuditResult};
use crate::store::{AuditEntry, StoreError, TokenKind};

impl Engine {
    /// Why this request, for a name without a token, must not go to `upstream` (see the
    /// module documentation); `None`: forward it.
    pub(super) async fn passthru_refused(
        &self,
        ctx: &Ctx<'_>,
        upstream: &str,
    ) -> Result<Option<Decision>, AuthError> {
        let Ok(normalized) = login_name::normalize(&ctx.req.user_name) else {
            return Ok(None);
        };
        let (typed, _) = self.realms.resolve(&normalized);
        let Some(stripped) = login_name::without_domain(typed.trim()) else {
            return Ok(None);
        };
        for realm in self.realms.all() {
            let found = realm.lookup(stripped).await?;
            let (identity, groups) = match &found {
                Some((user, _)) => (user.login.clone(), user.groups.clone()),
                None => (stripped.to_string(), vec![]),
            };
            if identity == ctx.login && realm.name == ctx.realm.name {
                continue;
            }
            let holds_token = !self
                .store
                .tokens_of_user(&identity, &realm.name)
                .await?
                .is_empty();
            let policy = PolicyContext {
                user: &identity,
                realm: &realm.name,
                client: ctx.req.client,
                groups: &groups,
            };
            // Asked for a name no directory knows too: `-alice` excludes every spelling.
            let passed_through = self
                .setting(&policy, |a| &a.passthru)
                .is_some_and(|to| to == upstream);
            if holds_token || !passed_through {
                let reason = Reason::PassthruRefused {
                    upstream: upstream.to_string(),
                    identity: format!("{identity}@{}", realm.name),
                    holds_token,
                };
                return Ok(Some(Decision::reject(MSG_FAILED, reason, None)));
            }
        }
        Ok(None)
    }

    /// See the module documentation. Failures are logged and audited; the user is in either way.
    pub(super) async fn assign_after_passthru(&self, request: AuthRequest) {
        let Identity {
            login,
            realm,
            user,
            refused,
        } = self.identify(&request).await;
        let (Some((user, _)), None) = (user, refused) else {
            return;
        };
        let policy = PolicyContext {
            user: &login,
            realm: &realm.name,
            client: request.client,
            groups: &user.groups,
        };
        let Some(kind) = self.setting(&policy, |a| &a.passthru_assign).copied() else {
            return;
        };
        let (kind, address) = match kind {
            EnrollType::Sms => (TokenKind::Sms, user.mobile.clone()),
            EnrollType::Email => (TokenKind::Email, user.email.clone()),
        };
        let outcome = match address {
            None => Err(format!("no {kind} address on record")),
            Some(address) => {
                let otppin = self
                    .setting(&policy, |a| &a.otppin)
                    .copied()
                    .unwrap_or_default();
                self.enroll_for_passthru(
                    &request,
                    &login,
                    &realm.name,
                    &user,
                    kind,
                    address,
                    otppin,
                )
                .await
            }
        };
        let (result, reason) = match &outcome {
            Ok(serial) => (
                AuditResult::Ok,
                format!("token {serial} assigned after the legacy server accepted"),
            ),
            Err(why) => (AuditResult::Failed, format!("no token assigned: {why}")),
        };
        tracing::info!(user = %login, realm = %realm.name, result = result.as_str(), reason = %reason, "passthru assign");
        self.store
            .audit(AuditEntry {
                time: self.clock.now(),
                client: request.client_name.clone(),
                user: login.clone(),
                realm: realm.name.clone(),
                serial: outcome.ok(),
                action: AuditAction::PassthruAssign.into(),
                result: result.into(),
                reason,
            })
            .await;
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the facts of one enrollment, all from the caller's locals"
    )]
    async fn enroll_for_passthru(
        &self,
        request: &AuthRequest,
        login: &str,
        realm: &str,
        user: &crate::directory::UserInfo,
        kind: TokenKind,
        address: String,
        otppin: OtpPin,
    ) -> Result<String, String> {
        let pin_hash = match otppin {
            OtpPin::TokenPin => Some(
                password_hash::hash_on_hash_thread(&request.password)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            OtpPin::Password | OtpPin::OnlyOtp => None,
        };
        let spec = TokenSpec {
            kind,
            user: login.to_string(),
            realm: realm.to_string(),
            seed: None,
            digits: self.settings.otp_digits,
            max_fail: self.settings.max_fail,
            pin_hash,
            phone: (kind == TokenKind::Sms).then(|| address.clone()),
            email: (kind == TokenKind::Email).then_some(address),
            description: format!("assigned after passthru for {login}@{realm}"),
            now: self.clock.now(),
            pending: false,
            public_id: None,
        };
        let mut token = new_token(&spec).map_err(|e| e.to_string())?;
        token.owner_id = user.stable_id.clone();
        token.autoenrolled = true;
        let serial = token.serial.clone();
        match self.store.insert_token(token).await {
            Ok(()) => Ok(serial),
            Err(StoreError::Duplicate(_)) => Err("the user has a token already".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}
