//! New tokens: an operator enrolls one for a user, or a self-service user for themselves
//! ([`enroll`]); an authenticator app's token comes back with its secret, otpauth URI and QR
//! code ([`Enrolled`]), shown once. A self-service token starts disabled and becomes active
//! when its first code is confirmed ([`confirm`]), so a QR code scanned wrongly never locks
//! its owner out of the token they had.

use serde::Serialize;

use super::actor::Actor;
use super::audit::{Change, record};
use super::error::AdminError;
use super::tokens::{Admin, TokenView};
use crate::auth::enrollment::{TokenSpec, create_token};
use crate::directory::{Realms, UserInfo};
use crate::otp::hotp::hotp_with;
use crate::otp::otpauth::{OtpAuth, base32};
use crate::otp::totp_step;
use crate::otp::yubico;
use crate::secret::Secret;
use crate::store::audit::AuditAction;
use crate::store::{Token, TokenKind};

/// What to enroll.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// The type.
    pub kind: TokenKind,
    /// The owner as typed (`carol`, `carol@corp`); resolved through the directories.
    pub user: String,
    /// SMS: the number (default: the directory's mobile).
    pub phone: Option<String>,
    /// E-mail: the address (default: the directory's).
    pub email: Option<String>,
    /// HOTP/TOTP: an existing seed (a hardware token's); default: a new random one.
    pub seed: Option<Secret>,
    /// A description; empty: `enrolled by …`.
    pub description: String,
    /// Self-service: the token stays disabled until its first code is confirmed.
    pub pending: bool,
    /// A YubiKey: its public id (modhex, 12 characters); its seed is then its AES key
    /// followed by its private id (22 octets).
    pub public_id: Option<String>,
}

/// A token just enrolled: its view and, for HOTP/TOTP, what the app needs, shown once.
/// `Debug` prints no secret.
#[derive(Clone, Serialize)]
pub struct Enrolled {
    /// The token.
    pub token: TokenView,
    /// HOTP/TOTP: the seed in base32 (to type into an app).
    pub secret: Option<String>,
    /// HOTP/TOTP: the otpauth:// URI.
    pub otpauth_uri: Option<String>,
    /// HOTP/TOTP: the URI as a QR code, an SVG document.
    pub qr_svg: Option<String>,
    /// Whether the token waits for its first code ([`confirm`]).
    pub pending: bool,
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("token", &self.token)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// The otpauth URI of a HOTP/TOTP token (`None` for SMS and e-mail).
pub fn otpauth_uri(token: &Token, totp_step: u64) -> Option<String> {
    let account = format!("{}@{}", token.user, token.realm);
    matches!(token.kind, TokenKind::Hotp | TokenKind::Totp).then(|| {
        OtpAuth {
            kind: token.kind.as_str(),
            issuer: "tessera",
            account: &account,
            seed: token.seed.expose(),
            digits: token.digits,
            counter: token.counter,
            period: token.time_step.map_or(totp_step, u64::from),
            algorithm: token.algorithm,
        }
        .uri()
    })
}

/// `text` as a QR code in an SVG document.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The phone or e-mail address an SMS or e-mail token sends to: the one given, else the
/// directory's.
fn addresses(
    kind: TokenKind,
    user: &UserInfo,
    phone: Option<String>,
    email: Option<String>,
) -> Result<(Option<String>, Option<String>), AdminError> {
    let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(match kind {
        TokenKind::Sms => {
            let phone = given(phone).or(user.mobile.clone());
            if phone.is_none() {
                return Err(AdminError::BadInput(format!(
                    "{} has no mobile number on record; give a phone number",
                    user.login
                )));
            }
            (phone, None)
        }
        TokenKind::Email => {
            let email = given(email).or(user.email.clone());
            if email.is_none() {
                return Err(AdminError::BadInput(format!(
                    "{} has no e-mail address on record; give an e-mail address",
                    user.login
                )));
            }
            (None, email)
        }
        TokenKind::Hotp | TokenKind::Totp | TokenKind::Yubikey => (None, None),
    })
}

/// Enrolls a token for the user `request` names (looked up in the directories: the token is
/// the identity's) and writes the audit row either way. Returns the token made and what to
/// show of it.
pub async fn enroll(
    admin: &Admin<'_>,
    realms: &Realms,
    actor: &Actor,
    request: EnrollRequest,
) -> Result<(Token, Enrolled), AdminError> {
    let made = make(admin, realms, actor, request).await;
    let (token, message) = match &made {
        Ok((token, _)) => (Some(token), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let detail = token.map(|t| format!("{} token for {}@{}", t.kind, t.user, t.realm));
    let mut change = Change::of(AuditAction::TokenEnroll, token, None);
    change.detail = detail;
    record(
        admin.store,
        actor,
        change,
        message.as_deref().map_or(Ok(()), Err),
        admin.clock.now(),
    )
    .await?;
    made
}

async fn make(
    admin: &Admin<'_>,
    realms: &Realms,
    actor: &Actor,
    request: EnrollRequest,
) -> Result<(Token, Enrolled), AdminError> {
    let kind = request.kind;
    if request.seed.is_some()
        && !matches!(kind, TokenKind::Hotp | TokenKind::Totp | TokenKind::Yubikey)
    {
        return Err(AdminError::BadInput(
            "a seed is for hotp, totp and yubikey tokens".into(),
        ));
    }
    if kind == TokenKind::Yubikey {
        check_yubikey(&request)?;
    } else if request.public_id.is_some() {
        return Err(AdminError::BadInput(
            "a public id is for yubikey tokens".into(),
        ));
    }
    if let Some(seed) = &request.seed
        && seed.len() < 10
    {
        return Err(AdminError::BadInput(
            "a seed needs at least 10 octets".into(),
        ));
    }
    let (user, realm) = super::users::resolve(realms, &request.user).await?;
    let (phone, email) = addresses(kind, &user, request.phone, request.email)?;
    let description = if request.description.trim().is_empty() {
        format!("enrolled by {}", actor.name)
    } else {
        request.description
    };
    let spec = TokenSpec {
        kind,
        // The identity, as the directory spells it: what the engine will look for.
        user: user.login.clone(),
        realm,
        seed: request.seed,
        digits: if kind == TokenKind::Yubikey {
            44
        } else {
            admin.auth.otp_digits
        },
        max_fail: admin.auth.max_fail,
        pin_hash: None,
        phone,
        email,
        description,
        now: admin.clock.now(),
        // Made inactive and pending in the one insert: never briefly active.
        pending: request.pending,
        public_id: request.public_id,
    };
    let token = create_token(admin.store, spec).await?;
    let uri = otpauth_uri(&token, admin.auth.totp_step);
    let enrolled = Enrolled {
        token: TokenView::of(&token),
        secret: uri.as_ref().map(|_| base32(token.seed.expose())),
        qr_svg: uri.as_deref().and_then(qr_svg),
        otpauth_uri: uri,
        pending: token.pending,
    };
    Ok((token, enrolled))
}

/// A YubiKey's enrolment names its public id (12 modhex characters) and brings its AES key
/// and private id as the seed (22 octets): it has no seed tessera could make.
fn check_yubikey(request: &EnrollRequest) -> Result<(), AdminError> {
    let shaped = request
        .public_id
        .as_deref()
        .is_some_and(|p| p.len() == yubico::PUBLIC_ID_LEN && yubico::is_modhex(p.as_bytes()));
    if !shaped {
        return Err(AdminError::BadInput(
            "a yubikey needs its public id: 12 modhex characters (cbdefghijklnrtuv)".into(),
        ));
    }
    if request.seed.as_ref().map(Secret::len) != Some(yubico::SEED_LEN) {
        return Err(AdminError::BadInput(
            "a yubikey needs its AES key (16 octets) and private id (6 octets)".into(),
        ));
    }
    Ok(())
}

/// Confirms a token waiting for its first code (self-service enrolment): a right code of a
/// HOTP token within the look-ahead window, or of a TOTP token within one step of now, moves
/// its counter past the code and enables it. Any other token — one an operator enrolled,
/// enabled or disabled — is refused: confirming is not enabling.
pub async fn confirm(
    admin: &Admin<'_>,
    actor: &Actor,
    token: &Token,
    code: &str,
) -> Result<Token, AdminError> {
    let checked = check_first_code(admin, token, code).await;
    let message = checked.as_ref().err().map(ToString::to_string);
    record(
        admin.store,
        actor,
        Change::of(AuditAction::TokenConfirm, Some(token), None),
        message.as_deref().map_or(Ok(()), Err),
        admin.clock.now(),
    )
    .await?;
    checked?;
    admin.token(&token.serial).await
}

async fn check_first_code(admin: &Admin<'_>, token: &Token, code: &str) -> Result<(), AdminError> {
    // Only a token enrolled in self-service and not yet confirmed: a disabled token is not
    // one waiting for its code (an operator's "disabled" must hold), and an operator's enable
    // or disable ends the waiting.
    if !token.pending {
        return Err(AdminError::BadInput(format!(
            "{} is not waiting for its first code: nothing to confirm",
            token.serial
        )));
    }
    let code = code.trim();
    let candidates: Vec<u64> = match token.kind {
        TokenKind::Hotp => (token.counter..token.counter + admin.auth.hotp_window.max(1)).collect(),
        TokenKind::Totp => {
            let step = token.time_step.map_or(admin.auth.totp_step, u64::from);
            let now = totp_step(admin.clock.now().as_secs(), step);
            (now.saturating_sub(1)..=now + 1)
                .filter(|s| *s >= token.counter)
                .collect()
        }
        TokenKind::Sms | TokenKind::Email | TokenKind::Yubikey => {
            return Err(AdminError::BadInput(
                "only hotp and totp tokens are confirmed by a code".into(),
            ));
        }
    };
    let seed = token.seed.expose();
    let Some(used) = candidates.into_iter().find(|c| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            hotp_with(token.algorithm, seed, *c, token.digits).as_bytes(),
            code.as_bytes(),
        ))
    }) else {
        return Err(AdminError::BadInput(
            "that code is not the token's current code; check the app's clock and try the next one"
                .into(),
        ));
    };
    // One statement: the counter moves past the code and the token becomes active only if it
    // is still pending (an operator may have decided meanwhile). The first code confirms the
    // enrolment: not a login, no last use.
    if !admin.store.confirm_token(&token.serial, used + 1).await? {
        return Err(AdminError::BadInput(format!(
            "{} is not waiting for its first code (any more): nothing to confirm",
            token.serial
        )));
    }
    Ok(())
}
