//! What a policy can set: the actions (`otppin=1, smstext=…`), parsed from LinOTP's action
//! string when the config loads, and the reply attributes. Each action is a field of
//! [`Actions`] and one row of the table `ACTIONS` (its name and scope); its value's syntax
//! belongs to the value's type ([`ActionValue`]), so the table says nothing about syntax.

use super::Scope;

/// Where the token PIN comes from (LinOTP `otppin`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OtpPin {
    /// 0 / `token_pin`: the PIN stored with the token (LinOTP's default).
    #[default]
    TokenPin,
    /// 1 / `password`: the user's directory password.
    Password,
    /// 2 / `only_otp`: no PIN; the password field holds the OTP alone.
    OnlyOtp,
}

/// Who needs a second factor (`mfa=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mfa {
    /// A code is required (the default).
    #[default]
    Required,
    /// The directory password alone is enough: break-glass and service accounts. Every such
    /// Accept is logged, audited and counted as `password only`.
    PasswordOnly,
}

/// What happens when no code could be delivered (`delivery_failmode=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeliveryFailMode {
    /// Reject (the default).
    #[default]
    Closed,
    /// Accept on the password (or PIN) just checked, loudly.
    PasswordOnly,
}

/// How a NAS's users give their code (`login_mode=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoginMode {
    /// Access-Challenge with a State (the default).
    #[default]
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

/// A policy action's value, read from the text after `key=` (trimmed, quotes removed): each
/// type knows its own syntax. The error says what is wrong with the value; the caller names
/// the action.
pub trait ActionValue: Sized {
    /// The value written as `text`.
    fn parse_action(text: &str) -> Result<Self, String>;
}

fn needs_value(text: &str) -> Result<&str, String> {
    if text.is_empty() {
        Err("needs a value".into())
    } else {
        Ok(text)
    }
}

/// One word or name that must be there (`email_provider`, `passthru`, `reject_text`).
impl ActionValue for String {
    fn parse_action(text: &str) -> Result<Self, String> {
        needs_value(text).map(String::from)
    }
}

/// A number of seconds (`challenge_validity`, `blocking_timeout`, `lockout_duration`,
/// `grace_seconds`).
impl ActionValue for u64 {
    fn parse_action(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("{text:?}: expected a number of seconds"))
    }
}

/// A count above 0 (`max_fail`).
impl ActionValue for u32 {
    fn parse_action(text: &str) -> Result<Self, String> {
        text.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{text:?}: expected a number above 0"))
    }
}

/// Provider names in failover order, separated by spaces or commas (`sms_provider`).
impl ActionValue for Vec<String> {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if names.is_empty() {
            return Err("needs at least one provider name".into());
        }
        Ok(names)
    }
}

/// Token types in order of preference, `*` for both (`autoenrollment`).
impl ActionValue for Vec<EnrollType> {
    fn parse_action(text: &str) -> Result<Self, String> {
        let mut types = vec![];
        for word in needs_value(text)?.split_whitespace() {
            let add: &[EnrollType] = match word.to_ascii_lowercase().as_str() {
                "sms" => &[EnrollType::Sms],
                "email" => &[EnrollType::Email],
                "*" => &[EnrollType::Sms, EnrollType::Email],
                other => {
                    return Err(format!(
                        "unknown token type {other:?} (expected sms, email or *)"
                    ));
                }
            };
            for t in add {
                if !types.contains(t) {
                    types.push(*t);
                }
            }
        }
        Ok(types)
    }
}

/// Reads one of `names` (ignoring case) as its value; otherwise says which are allowed.
fn one_of<T: Copy>(text: &str, names: &[(&str, T)], allowed: &str) -> Result<T, String> {
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .find(|(name, _)| *name == lower)
        .map(|(_, value)| *value)
        .ok_or_else(|| format!("{lower:?} is not {allowed}"))
}

impl ActionValue for OtpPin {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names = [
            ("0", OtpPin::TokenPin),
            ("token_pin", OtpPin::TokenPin),
            ("1", OtpPin::Password),
            ("password", OtpPin::Password),
            ("2", OtpPin::OnlyOtp),
            ("only_otp", OtpPin::OnlyOtp),
        ];
        one_of(text, &names, "0/token_pin, 1/password or 2/only_otp")
    }
}

impl ActionValue for Mfa {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names = [
            ("required", Mfa::Required),
            ("password_only", Mfa::PasswordOnly),
        ];
        one_of(text, &names, "required or password_only")
    }
}

impl ActionValue for DeliveryFailMode {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names = [
            ("closed", DeliveryFailMode::Closed),
            ("password_only", DeliveryFailMode::PasswordOnly),
        ];
        one_of(text, &names, "closed or password_only")
    }
}

impl ActionValue for LoginMode {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names = [
            ("challenge", LoginMode::Challenge),
            ("append", LoginMode::Append),
        ];
        one_of(text, &names, "challenge or append")
    }
}

/// One token type (`passthru_assign`).
impl ActionValue for EnrollType {
    fn parse_action(text: &str) -> Result<Self, String> {
        let names = [("sms", EnrollType::Sms), ("email", EnrollType::Email)];
        one_of(text, &names, "sms or email")
    }
}

/// A message to the user with `<otp>`, `<serial>` and `<user>` (`smstext`, `emailtext`,
/// `emailsubject`); may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

impl ActionValue for Template {
    fn parse_action(text: &str) -> Result<Self, String> {
        Ok(Template(text.to_string()))
    }
}

/// The word after the password that picks a channel in append mode (`sms_keyword`,
/// `email_keyword`): one word, no comma.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword(pub String);

impl ActionValue for Keyword {
    fn parse_action(text: &str) -> Result<Self, String> {
        let word = needs_value(text)?;
        if word.contains(',') || word.contains(char::is_whitespace) {
            return Err(format!("{word:?} must be one word"));
        }
        Ok(Keyword(word.to_string()))
    }
}

/// The Reply-Message of a challenge, with `<user>`, `<serial>` and `<recipient>`; never the
/// code itself, which the NAS would see (`challenge_text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeText(pub String);

impl ActionValue for ChallengeText {
    fn parse_action(text: &str) -> Result<Self, String> {
        let text = needs_value(text)?;
        if text.contains("<otp>") {
            return Err("<otp> would show the code to the NAS; \
                        placeholders are <user>, <serial> and <recipient>"
                .into());
        }
        Ok(ChallengeText(text.to_string()))
    }
}

macro_rules! text_deref {
    ($($name:ident),*) => {$(
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
text_deref!(Template, Keyword, ChallengeText);

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
    pub smstext: Option<Template>,
    /// `emailtext=…`.
    pub emailtext: Option<Template>,
    /// `emailsubject=…`.
    pub emailsubject: Option<Template>,
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
    pub sms_keyword: Option<Keyword>,
    /// `email_keyword=…` (default `email`): the same for the e-mail token.
    pub email_keyword: Option<Keyword>,
    /// `challenge_text=…`: the Reply-Message of a challenge, with `<user>`, `<serial>` and
    /// `<recipient>` (the masked number or address).
    pub challenge_text: Option<ChallengeText>,
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
        let Some(row) = ACTIONS.iter().find(|row| row.name == key) else {
            return Err(format!(
                "unknown action {key:?} (known: {})",
                ACTIONS
                    .iter()
                    .map(|row| row.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if scope != row.scope {
            return Err(format!(
                "action {key:?} belongs in scope {}",
                if row.scope == Scope::Enrollment {
                    "enrollment"
                } else {
                    "authentication"
                }
            ));
        }
        (row.set)(&mut actions, &value).map_err(|message| format!("{key}: {message}"))?;
    }
    Ok(actions)
}

/// One action a policy may set: its name in an action string, the scope it belongs in, and
/// how its value, parsed by its type's [`ActionValue`], lands in [`Actions`].
struct ActionRow {
    name: &'static str,
    scope: Scope,
    set: fn(&mut Actions, &str) -> Result<(), String>,
}

/// Parses `text` into `slot` with the slot's type's own syntax.
fn put<T: ActionValue>(slot: &mut Option<T>, text: &str) -> Result<(), String> {
    *slot = Some(T::parse_action(text)?);
    Ok(())
}

const AUTH: Scope = Scope::Authentication;
const ENROLL: Scope = Scope::Enrollment;

/// A row of [`ACTIONS`]: the action named as its field of [`Actions`].
macro_rules! row {
    ($field:ident, $scope:expr) => {
        ActionRow {
            name: stringify!($field),
            scope: $scope,
            set: |actions, text| put(&mut actions.$field, text),
        }
    };
}

/// Every action, in the order the docs list them: the one list of their names. Adding an
/// action is a field of [`Actions`] and a row here (and, for a new kind of value, its
/// [`ActionValue`]).
static ACTIONS: &[ActionRow] = &[
    row!(autoenrollment, ENROLL),
    row!(otppin, AUTH),
    row!(sms_provider, AUTH),
    row!(email_provider, AUTH),
    row!(smstext, AUTH),
    row!(emailtext, AUTH),
    row!(emailsubject, AUTH),
    row!(challenge_validity, AUTH),
    row!(blocking_timeout, AUTH),
    row!(max_fail, AUTH),
    row!(lockout_duration, AUTH),
    row!(mfa, AUTH),
    row!(delivery_failmode, AUTH),
    row!(login_mode, AUTH),
    row!(challenge_text, AUTH),
    row!(reject_text, AUTH),
    row!(grace_seconds, AUTH),
    row!(passthru, AUTH),
    row!(passthru_assign, AUTH),
    row!(sms_keyword, AUTH),
    row!(email_keyword, AUTH),
];

/// Every action's name and scope, in the docs' order.
pub fn action_scopes() -> impl Iterator<Item = (&'static str, Scope)> {
    ACTIONS.iter().map(|row| (row.name, row.scope))
}
