//! What a policy can set: the actions (`otppin=1, smstext=…`), parsed from LinOTP's action
//! string when the config loads, with each action's value syntax, and the reply attributes.

use super::Scope;

/// Where the token PIN comes from (LinOTP `otppin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpPin {
    /// 0 / `token_pin`: the PIN stored with the token (LinOTP's default).
    TokenPin,
    /// 1 / `password`: the user's directory password.
    Password,
    /// 2 / `only_otp`: no PIN; the password field holds the OTP alone.
    OnlyOtp,
}

/// Who needs a second factor (`mfa=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mfa {
    /// A code is required (the default).
    Required,
    /// The directory password alone is enough: break-glass and service accounts. Every such
    /// Accept is logged, audited and counted as `password only`.
    PasswordOnly,
}

/// What happens when no code could be delivered (`delivery_failmode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFailMode {
    /// Reject (the default).
    Closed,
    /// Accept on the password (or PIN) just checked, loudly.
    PasswordOnly,
}

/// How a NAS's users give their code (`login_mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    /// Access-Challenge with a State (the default).
    Challenge,
    /// For a NAS that cannot show a challenge: the password alone (or `password,sms` /
    /// `password,email`) sends the code and is answered with Access-Reject telling the user to
    /// log in again with password and code in the one field.
    Append,
}

/// A token type autoenrollment may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollType {
    /// An SMS token (needs a mobile number).
    Sms,
    /// An e-mail token (needs an e-mail address).
    Email,
}

/// The actions a policy can set, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    /// `autoenrollment=sms email`: candidate types in order of preference.
    pub autoenrollment: Option<Vec<EnrollType>>,
    /// `otppin=0|1|2`.
    pub otppin: Option<OtpPin>,
    /// `sms_provider=a b`: failover order.
    pub sms_provider: Option<Vec<String>>,
    /// `email_provider=name`.
    pub email_provider: Option<String>,
    /// `smstext=…` with `<otp>`, `<serial>`, `<user>`.
    pub smstext: Option<String>,
    /// `emailtext=…`.
    pub emailtext: Option<String>,
    /// `emailsubject=…`.
    pub emailsubject: Option<String>,
    /// `challenge_validity=SECONDS`.
    pub challenge_validity: Option<u64>,
    /// `blocking_timeout=SECONDS`.
    pub blocking_timeout: Option<u64>,
    /// `max_fail=N`.
    pub max_fail: Option<u32>,
    /// `lockout_duration=SECONDS` (0: until an admin unlocks).
    pub lockout_duration: Option<u64>,
    /// Attributes added to Access-Accept (the policy's `reply` list, not its action string).
    pub reply: Option<Vec<ReplyTemplate>>,
    /// `mfa=required|password_only`.
    pub mfa: Option<Mfa>,
    /// `delivery_failmode=closed|password_only`.
    pub delivery_failmode: Option<DeliveryFailMode>,
    /// `login_mode=challenge|append`.
    pub login_mode: Option<LoginMode>,
    /// `sms_keyword=…` (default `sms`): `password,KEYWORD` asks for the SMS token in append
    /// mode.
    pub sms_keyword: Option<String>,
    /// `email_keyword=…` (default `email`): the same for the e-mail token.
    pub email_keyword: Option<String>,
    /// `challenge_text=…`: the Reply-Message of a challenge, with `<user>`, `<serial>` and
    /// `<recipient>` (the masked number or address).
    pub challenge_text: Option<String>,
    /// `reject_text=…`: the Reply-Message of an "authentication failed" Reject.
    pub reject_text: Option<String>,
    /// `grace_seconds=N`: after a two-factor login, the password alone logs the same user in
    /// again from the same NAS and Calling-Station-Id for this long.
    pub grace_seconds: Option<u64>,
    /// `passthru=NAME`: users without a token are handed to the legacy RADIUS server
    /// `[radius_upstream.NAME]`.
    pub passthru: Option<String>,
    /// `passthru_assign=sms|email`: once the legacy server accepted, enroll this token type, so
    /// the next login is tessera's.
    pub passthru_assign: Option<EnrollType>,
}

/// One reply attribute of a policy: `Class = vpn-{groups}`. The value may use `{user}`,
/// `{realm}`, `{mobile}`, `{email}`, `{phone}`, `{givenname}`, `{surname}` and `{groups}`;
/// with `{groups}` the attribute is repeated once per group of the user (none without groups).
/// The value is parsed into its parts when the config loads, so a request fills them in one
/// pass — and a value that comes from the directory is never read for placeholders itself (a
/// `givenName` of `{groups}` stays that text). The attribute name is checked against the
/// dictionaries when the config loads; the front end encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate {
    /// The attribute name as the dictionaries spell it (`Class`, `Fortinet-Group-Name`).
    pub attribute: String,
    /// The value as written.
    pub value: String,
    /// The value in parts.
    pub parts: Vec<ReplyPart>,
}

/// A piece of a reply value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyPart {
    /// Text as written.
    Text(String),
    /// A placeholder, filled in per request.
    Field(ReplyField),
}

/// What a reply value's placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyField {
    /// `{user}`: the identity.
    User,
    /// `{realm}`
    Realm,
    /// `{mobile}`
    Mobile,
    /// `{email}`
    Email,
    /// `{phone}`
    Phone,
    /// `{givenname}`
    GivenName,
    /// `{surname}`
    Surname,
    /// `{groups}`: one attribute per group.
    Groups,
}

impl ReplyField {
    /// Every placeholder with its spelling: the one list of them.
    pub const ALL: [(&'static str, ReplyField); 8] = [
        ("{user}", ReplyField::User),
        ("{realm}", ReplyField::Realm),
        ("{mobile}", ReplyField::Mobile),
        ("{email}", ReplyField::Email),
        ("{phone}", ReplyField::Phone),
        ("{givenname}", ReplyField::GivenName),
        ("{surname}", ReplyField::Surname),
        ("{groups}", ReplyField::Groups),
    ];
}

impl ReplyTemplate {
    /// Parses `Name = value`.
    pub fn parse(text: &str) -> Result<ReplyTemplate, String> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("reply attribute {text:?}: expected `Name = value`"))?;
        let (attribute, value) = (name.trim(), value.trim().trim_matches('"'));
        if attribute.is_empty() || attribute.contains(char::is_whitespace) {
            return Err(format!(
                "reply attribute {text:?}: {attribute:?} is not an attribute name"
            ));
        }
        let mut parts = vec![];
        let mut rest = value;
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .map(|e| start + e + 1)
                .unwrap_or(rest.len());
            let placeholder = &rest[start..end];
            let Some((_, field)) = ReplyField::ALL.iter().find(|(p, _)| *p == placeholder) else {
                let known: Vec<&str> = ReplyField::ALL.iter().map(|(p, _)| *p).collect();
                return Err(format!(
                    "reply attribute {text:?}: unknown placeholder {placeholder:?} (known: {})",
                    known.join(", ")
                ));
            };
            if start > 0 {
                parts.push(ReplyPart::Text(rest[..start].to_string()));
            }
            parts.push(ReplyPart::Field(*field));
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            parts.push(ReplyPart::Text(rest.to_string()));
        }
        Ok(ReplyTemplate {
            attribute: attribute.to_string(),
            value: value.to_string(),
            parts,
        })
    }

    /// The value when it has no placeholder (checked against the dictionary at load).
    pub fn constant(&self) -> Option<&str> {
        (!self.parts.iter().any(|p| matches!(p, ReplyPart::Field(_)))).then_some(&self.value)
    }

    /// Whether the attribute is repeated once per group.
    pub fn per_group(&self) -> bool {
        self.parts.contains(&ReplyPart::Field(ReplyField::Groups))
    }

    /// The value with its placeholders filled by `fill` (`{groups}` by `group`).
    pub fn render(&self, fill: impl Fn(ReplyField) -> String, group: Option<&str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                ReplyPart::Text(text) => out.push_str(text),
                ReplyPart::Field(ReplyField::Groups) => out.push_str(group.unwrap_or_default()),
                ReplyPart::Field(field) => out.push_str(&fill(*field)),
            }
        }
        out
    }
}

/// The actions a policy may set: the one list of their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKey {
    /// `autoenrollment`
    Autoenrollment,
    /// `otppin`
    Otppin,
    /// `sms_provider`
    SmsProvider,
    /// `email_provider`
    EmailProvider,
    /// `smstext`
    Smstext,
    /// `emailtext`
    Emailtext,
    /// `emailsubject`
    Emailsubject,
    /// `challenge_validity`
    ChallengeValidity,
    /// `blocking_timeout`
    BlockingTimeout,
    /// `max_fail`
    MaxFail,
    /// `lockout_duration`
    LockoutDuration,
    /// `mfa`
    Mfa,
    /// `delivery_failmode`
    DeliveryFailmode,
    /// `login_mode`
    LoginMode,
    /// `challenge_text`
    ChallengeText,
    /// `reject_text`
    RejectText,
    /// `grace_seconds`
    GraceSeconds,
    /// `passthru`
    Passthru,
    /// `passthru_assign`
    PassthruAssign,
    /// `sms_keyword`
    SmsKeyword,
    /// `email_keyword`
    EmailKeyword,
}

impl ActionKey {
    /// Every action with its name, in the order the README lists them.
    pub const ALL: [(&'static str, ActionKey); 21] = [
        ("autoenrollment", ActionKey::Autoenrollment),
        ("otppin", ActionKey::Otppin),
        ("sms_provider", ActionKey::SmsProvider),
        ("email_provider", ActionKey::EmailProvider),
        ("smstext", ActionKey::Smstext),
        ("emailtext", ActionKey::Emailtext),
        ("emailsubject", ActionKey::Emailsubject),
        ("challenge_validity", ActionKey::ChallengeValidity),
        ("blocking_timeout", ActionKey::BlockingTimeout),
        ("max_fail", ActionKey::MaxFail),
        ("lockout_duration", ActionKey::LockoutDuration),
        ("mfa", ActionKey::Mfa),
        ("delivery_failmode", ActionKey::DeliveryFailmode),
        ("login_mode", ActionKey::LoginMode),
        ("challenge_text", ActionKey::ChallengeText),
        ("reject_text", ActionKey::RejectText),
        ("grace_seconds", ActionKey::GraceSeconds),
        ("passthru", ActionKey::Passthru),
        ("passthru_assign", ActionKey::PassthruAssign),
        ("sms_keyword", ActionKey::SmsKeyword),
        ("email_keyword", ActionKey::EmailKeyword),
    ];

    /// The action called `name`.
    pub fn from_name(name: &str) -> Option<ActionKey> {
        ActionKey::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, key)| *key)
    }

    /// Its name in an action string.
    pub fn name(self) -> &'static str {
        ActionKey::ALL
            .iter()
            .find(|(_, key)| *key == self)
            .map_or("", |(n, _)| *n)
    }

    /// The scope it belongs in.
    pub fn scope(self) -> Scope {
        match self {
            ActionKey::Autoenrollment => Scope::Enrollment,
            _ => Scope::Authentication,
        }
    }
}

/// Splits an action string on commas outside quotes.
fn split_actions(action: &str) -> Result<Vec<String>, String> {
    let mut items = vec![];
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in action.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ',') => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated quote {q} in action"));
    }
    items.push(current);
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn parse_seconds(key: &str, value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{key}={value:?}: expected a number of seconds"))
}

pub(super) fn parse_actions(scope: Scope, action: &str) -> Result<Actions, String> {
    let mut actions = Actions::default();
    let mut seen = std::collections::HashSet::new();
    for item in split_actions(action)? {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (item.trim().to_string(), String::new()),
        };
        if !seen.insert(key.clone()) {
            return Err(format!("action {key:?} is set twice"));
        }
        let Some(action) = ActionKey::from_name(&key) else {
            let known: Vec<&str> = ActionKey::ALL.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown action {key:?} (known: {})",
                known.join(", ")
            ));
        };
        if scope != action.scope() {
            return Err(format!(
                "action {key:?} belongs in scope {}",
                if action.scope() == Scope::Enrollment {
                    "enrollment"
                } else {
                    "authentication"
                }
            ));
        }
        set_action(&mut actions, action, &key, value)?;
    }
    Ok(actions)
}

/// Sets one action from its value: one arm per [`ActionKey`], each with its own value syntax.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per action key, each a few lines: a table reads best whole"
)]
fn set_action(
    actions: &mut Actions,
    action: ActionKey,
    key: &str,
    value: String,
) -> Result<(), String> {
    let needs_value = |v: &str| {
        if v.is_empty() {
            Err(format!("action {key:?} needs a value ({key}=…)"))
        } else {
            Ok(())
        }
    };
    match action {
        ActionKey::Autoenrollment => {
            needs_value(&value)?;
            let mut types = vec![];
            for word in value.split_whitespace() {
                let add: &[EnrollType] = match word.to_ascii_lowercase().as_str() {
                    "sms" => &[EnrollType::Sms],
                    "email" => &[EnrollType::Email],
                    "*" => &[EnrollType::Sms, EnrollType::Email],
                    other => {
                        return Err(format!(
                            "autoenrollment: unknown token type {other:?} (expected sms, email or *)"
                        ));
                    }
                };
                for t in add {
                    if !types.contains(t) {
                        types.push(*t);
                    }
                }
            }
            actions.autoenrollment = Some(types);
        }
        ActionKey::Otppin => {
            actions.otppin = Some(match value.to_ascii_lowercase().as_str() {
                "0" | "token_pin" => OtpPin::TokenPin,
                "1" | "password" => OtpPin::Password,
                "2" | "only_otp" => OtpPin::OnlyOtp,
                other => {
                    return Err(format!(
                        "otppin: {other:?} is not 0/token_pin, 1/password or 2/only_otp"
                    ));
                }
            });
        }
        ActionKey::SmsProvider => {
            let names: Vec<String> = value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if names.is_empty() {
                return Err("sms_provider needs at least one provider name".into());
            }
            actions.sms_provider = Some(names);
        }
        ActionKey::EmailProvider => {
            needs_value(&value)?;
            actions.email_provider = Some(value);
        }
        ActionKey::Smstext => actions.smstext = Some(value),
        ActionKey::Emailtext => actions.emailtext = Some(value),
        ActionKey::Emailsubject => actions.emailsubject = Some(value),
        ActionKey::ChallengeValidity => {
            actions.challenge_validity = Some(parse_seconds(key, &value)?)
        }
        ActionKey::BlockingTimeout => actions.blocking_timeout = Some(parse_seconds(key, &value)?),
        ActionKey::LockoutDuration => actions.lockout_duration = Some(parse_seconds(key, &value)?),
        ActionKey::GraceSeconds => actions.grace_seconds = Some(parse_seconds(key, &value)?),
        ActionKey::Passthru => {
            needs_value(&value)?;
            actions.passthru = Some(value);
        }
        ActionKey::PassthruAssign => {
            actions.passthru_assign = Some(match value.to_ascii_lowercase().as_str() {
                "sms" => EnrollType::Sms,
                "email" => EnrollType::Email,
                other => {
                    return Err(format!("passthru_assign: {other:?} is not sms or email"));
                }
            });
        }
        ActionKey::Mfa => {
            actions.mfa = Some(match value.to_ascii_lowercase().as_str() {
                "required" => Mfa::Required,
                "password_only" => Mfa::PasswordOnly,
                other => {
                    return Err(format!("mfa: {other:?} is not required or password_only"));
                }
            });
        }
        ActionKey::DeliveryFailmode => {
            actions.delivery_failmode = Some(match value.to_ascii_lowercase().as_str() {
                "closed" => DeliveryFailMode::Closed,
                "password_only" => DeliveryFailMode::PasswordOnly,
                other => {
                    return Err(format!(
                        "delivery_failmode: {other:?} is not closed or password_only"
                    ));
                }
            });
        }
        ActionKey::LoginMode => {
            actions.login_mode = Some(match value.to_ascii_lowercase().as_str() {
                "challenge" => LoginMode::Challenge,
                "append" => LoginMode::Append,
                other => {
                    return Err(format!("login_mode: {other:?} is not challenge or append"));
                }
            });
        }
        ActionKey::SmsKeyword | ActionKey::EmailKeyword => {
            needs_value(&value)?;
            if value.contains(',') || value.contains(char::is_whitespace) {
                return Err(format!("{key}: {value:?} must be one word"));
            }
            if action == ActionKey::SmsKeyword {
                actions.sms_keyword = Some(value);
            } else {
                actions.email_keyword = Some(value);
            }
        }
        ActionKey::ChallengeText => {
            needs_value(&value)?;
            if value.contains("<otp>") {
                return Err("challenge_text: <otp> would show the code to the NAS; \
                            placeholders are <user>, <serial> and <recipient>"
                    .into());
            }
            actions.challenge_text = Some(value);
        }
        ActionKey::RejectText => {
            needs_value(&value)?;
            actions.reject_text = Some(value);
        }
        ActionKey::MaxFail => {
            let n = value.parse::<u32>().ok().filter(|n| *n > 0);
            actions.max_fail =
                Some(n.ok_or_else(|| format!("max_fail={value:?}: expected a number above 0"))?);
        }
    }
    Ok(())
}
