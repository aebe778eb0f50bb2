//! Policies, with LinOTP's fields, action syntax and precedence.
//!
//! A policy has a `scope` (`authentication` or `enrollment`), an `action` string
//! (`key=value, key2=value2`, values may be quoted), and filters on `user`, `realm` and
//! `client`. A filter is a comma-separated list of entries: `*`, an exact name, a pattern with
//! `*` (`adm*`, `*-svc`), or a negation (`-name`, `!name`) that excludes. Clients are IP
//! addresses or CIDR networks.
//!
//! To find an action's value for a request, take the active policies of the scope that set that
//! action and match the request; then narrow as LinOTP does — exact user over pattern over `*`,
//! then exact realm over `*`, then a client address over `*` — and take the first left in
//! config order. Action values are parsed when the config loads, so a value tessera does not
//! understand is a config error, not a silent default.

use std::net::IpAddr;

use ipnet::IpNet;

/// Policy scopes tessera acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// How users authenticate (otppin, providers, texts, timeouts).
    Authentication,
    /// What happens for users without a token (autoenrollment).
    Enrollment,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "authentication" => Ok(Scope::Authentication),
            "enrollment" => Ok(Scope::Enrollment),
            other => Err(format!(
                "unknown scope {other:?} (expected authentication or enrollment)"
            )),
        }
    }
}

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

/// How specifically a policy matched, field by field in order of precedence: user, group,
/// realm, client. Compared as a tuple: the more specific policy wins.
type Rank = (Specificity, Specificity, Specificity, Specificity);

/// How specifically a filter entry matched: more specific policies win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Pattern,
    Exact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NameEntry {
    Any,
    Exact(String),
    Pattern(String),
}

/// A `user` or `realm` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameFilter {
    include: Vec<NameEntry>,
    exclude: Vec<NameEntry>,
    case_insensitive: bool,
}

fn glob(pattern: &str, text: &str) -> bool {
    // `*` matches any run of characters; everything else matches itself.
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl NameEntry {
    fn parse(s: &str, case_insensitive: bool) -> NameEntry {
        let s = if case_insensitive {
            s.to_lowercase()
        } else {
            s.to_string()
        };
        if s == "*" {
            NameEntry::Any
        } else if s.contains('*') {
            NameEntry::Pattern(s)
        } else {
            NameEntry::Exact(s)
        }
    }

    fn matches(&self, name: &str) -> Option<Specificity> {
        match self {
            NameEntry::Any => Some(Specificity::Any),
            NameEntry::Exact(e) => (e == name).then_some(Specificity::Exact),
            NameEntry::Pattern(p) => glob(p, name).then_some(Specificity::Pattern),
        }
    }
}

impl NameFilter {
    fn parse(field: &str, case_insensitive: bool) -> Result<NameFilter, String> {
        NameFilter::parse_separated(field, ',', case_insensitive)
    }

    /// Like [`NameFilter::parse`] with another separator between entries (`;` for groups,
    /// whose DNs hold commas).
    fn parse_separated(
        field: &str,
        separator: char,
        case_insensitive: bool,
    ) -> Result<NameFilter, String> {
        let mut filter = NameFilter {
            include: vec![],
            exclude: vec![],
            case_insensitive,
        };
        for entry in field
            .split(separator)
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if let Some(negated) = entry.strip_prefix('-').or_else(|| entry.strip_prefix('!')) {
                let negated = negated.trim();
                if negated.is_empty() {
                    return Err(format!("negation {entry:?} names nothing"));
                }
                filter
                    .exclude
                    .push(NameEntry::parse(negated, case_insensitive));
            } else {
                filter
                    .include
                    .push(NameEntry::parse(entry, case_insensitive));
            }
        }
        // An empty filter, or one of exclusions only, means "everyone else".
        if filter.include.is_empty() {
            filter.include.push(NameEntry::Any);
        }
        Ok(filter)
    }

    fn matches(&self, name: &str) -> Option<Specificity> {
        let lowered;
        let name = if self.case_insensitive {
            lowered = name.to_lowercase();
            lowered.as_str()
        } else {
            name
        };
        if self.exclude.iter().any(|e| e.matches(name).is_some()) {
            return None;
        }
        self.include.iter().filter_map(|e| e.matches(name)).max()
    }
}

/// A `client` filter: addresses and networks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientFilter {
    any: bool,
    include: Vec<IpNet>,
    exclude: Vec<IpNet>,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))
}

impl ClientFilter {
    fn parse(field: &str) -> Result<ClientFilter, String> {
        let mut filter = ClientFilter {
            any: false,
            include: vec![],
            exclude: vec![],
        };
        for entry in field.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                filter.any = true;
            } else if let Some(negated) =
                entry.strip_prefix('-').or_else(|| entry.strip_prefix('!'))
            {
                filter.exclude.push(parse_net(negated.trim())?);
            } else {
                filter.include.push(parse_net(entry)?);
            }
        }
        if filter.include.is_empty() {
            filter.any = true;
        }
        Ok(filter)
    }

    fn matches(&self, client: IpAddr) -> Option<Specificity> {
        if self.exclude.iter().any(|n| n.contains(&client)) {
            return None;
        }
        if self.include.iter().any(|n| n.contains(&client)) {
            return Some(Specificity::Exact);
        }
        self.any.then_some(Specificity::Any)
    }
}

/// One policy, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Name, for logs.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Parsed actions.
    pub actions: Actions,
    users: NameFilter,
    /// Directory groups (names or DNs); `None`: any user, with or without groups.
    groups: Option<NameFilter>,
    realms: NameFilter,
    clients: ClientFilter,
    /// Inactive policies never match.
    pub active: bool,
}

/// Which field of a policy definition an error is about (for config error locations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyField {
    /// `scope`
    Scope,
    /// `action`
    Action,
    /// `user`
    User,
    /// `group`
    Group,
    /// `realm`
    Realm,
    /// `client`
    Client,
    /// `reply`
    Reply,
}

/// A policy definition that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The offending field.
    pub field: PolicyField,
    /// What is wrong.
    pub message: String,
}

/// A policy as written in the config: each field's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyText<'a> {
    /// `name`
    pub name: &'a str,
    /// `scope`
    pub scope: &'a str,
    /// `action`
    pub action: &'a str,
    /// `reply = ["Class = x", …]`
    pub reply: &'a [String],
    /// `user` filter.
    pub user: &'a str,
    /// `group` filter: directory groups by name or DN, separated by `;` (DNs hold commas);
    /// empty: no filter.
    pub group: &'a str,
    /// `realm` filter.
    pub realm: &'a str,
    /// `client` filter.
    pub client: &'a str,
    /// `active`
    pub active: bool,
}

impl Policy {
    /// Parses a policy from its text fields (tests and benchmarks; the config uses
    /// [`Policy::from_text`]).
    pub fn parse(
        name: &str,
        scope: &str,
        action: &str,
        user: &str,
        realm: &str,
        client: &str,
        active: bool,
    ) -> Result<Policy, PolicyError> {
        Policy::from_text(&PolicyText {
            name,
            scope,
            action,
            user,
            realm,
            client,
            active,
            ..PolicyText::default()
        })
    }

    /// Parses a policy as written in the config.
    pub fn from_text(text: &PolicyText<'_>) -> Result<Policy, PolicyError> {
        let err = |field| move |message| PolicyError { field, message };
        let scope: Scope = text.scope.parse().map_err(err(PolicyField::Scope))?;
        if text.action.trim().is_empty() && text.reply.is_empty() {
            return Err(PolicyError {
                field: PolicyField::Action,
                message: "the policy sets no action".into(),
            });
        }
        let mut actions = parse_actions(scope, text.action).map_err(err(PolicyField::Action))?;
        if !text.reply.is_empty() {
            if scope != Scope::Authentication {
                return Err(PolicyError {
                    field: PolicyField::Reply,
                    message: "reply attributes belong in scope authentication".into(),
                });
            }
            let templates: Result<Vec<ReplyTemplate>, String> =
                text.reply.iter().map(|r| ReplyTemplate::parse(r)).collect();
            actions.reply = Some(templates.map_err(err(PolicyField::Reply))?);
        }
        let groups = if text.group.trim().is_empty() {
            None
        } else {
            Some(
                NameFilter::parse_separated(text.group, ';', true)
                    .map_err(err(PolicyField::Group))?,
            )
        };
        Ok(Policy {
            name: text.name.to_string(),
            actions,
            scope,
            // Identities are the directory's spelling; names in a policy match them ignoring
            // case, as the directory itself does.
            users: NameFilter::parse(text.user, true).map_err(err(PolicyField::User))?,
            groups,
            realms: NameFilter::parse(text.realm, true).map_err(err(PolicyField::Realm))?,
            clients: ClientFilter::parse(text.client).map_err(err(PolicyField::Client))?,
            active: text.active,
        })
    }

    fn specificity(&self, ctx: &PolicyContext<'_>) -> Option<Rank> {
        let group = match &self.groups {
            None => Specificity::Any,
            Some(filter) => ctx.groups.iter().filter_map(|g| filter.matches(g)).max()?,
        };
        Some((
            self.users.matches(ctx.user)?,
            group,
            self.realms.matches(ctx.realm)?,
            self.clients.matches(ctx.client)?,
        ))
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

fn parse_actions(scope: Scope, action: &str) -> Result<Actions, String> {
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

/// Who is asking: the facts policies match on.
#[derive(Debug, Clone, Copy)]
pub struct PolicyContext<'a> {
    /// Login (without realm).
    pub user: &'a str,
    /// Realm name.
    pub realm: &'a str,
    /// The NAS address.
    pub client: IpAddr,
    /// The user's directory groups (names or DNs, as the directory gives them).
    pub groups: &'a [String],
}

/// All policies, in config order.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// A set from parsed policies.
    pub fn new(policies: Vec<Policy>) -> Self {
        PolicySet { policies }
    }

    /// The value of one action for a request: among the active policies of `scope` that set
    /// it and match, the most specific (user, then realm, then client), first in config order.
    pub fn action<'a, T: ?Sized>(
        &'a self,
        scope: Scope,
        ctx: &PolicyContext<'_>,
        get: impl Fn(&'a Actions) -> Option<&'a T>,
    ) -> Option<&'a T> {
        let mut best: Option<(Rank, &'a T)> = None;
        for policy in self
            .policies
            .iter()
            .filter(|p| p.active && p.scope == scope)
        {
            let Some(value) = get(&policy.actions) else {
                continue;
            };
            let Some(spec) = policy.specificity(ctx) else {
                continue;
            };
            // Strictly greater: the first policy in config order wins among equals.
            if best.as_ref().is_none_or(|(b, _)| spec > *b) {
                best = Some((spec, value));
            }
        }
        best.map(|(_, v)| v)
    }

    /// The policies, for listing.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(user: &'a str, realm: &'a str, client: &str) -> PolicyContext<'a> {
        PolicyContext {
            user,
            realm,
            client: client.parse().unwrap(),
            groups: &[],
        }
    }

    fn auth(name: &str, action: &str, user: &str, realm: &str, client: &str) -> Policy {
        Policy::parse(name, "authentication", action, user, realm, client, true).unwrap()
    }

    #[test]
    fn actions_parse_linotp_syntax() {
        let p = auth(
            "p",
            "otppin=password, sms_provider= one   two ,smstext='Code: <otp>, bye'",
            "",
            "",
            "",
        );
        assert_eq!(p.actions.otppin, Some(OtpPin::Password));
        assert_eq!(
            p.actions.sms_provider,
            Some(vec!["one".to_string(), "two".to_string()])
        );
        assert_eq!(p.actions.smstext.as_deref(), Some("Code: <otp>, bye"));
        let e = Policy::parse(
            "e",
            "enrollment",
            "autoenrollment = sms  email",
            "",
            "",
            "",
            true,
        )
        .unwrap();
        assert_eq!(
            e.actions.autoenrollment,
            Some(vec![EnrollType::Sms, EnrollType::Email])
        );
        let star = Policy::parse("e", "enrollment", "autoenrollment=*", "", "", "", true).unwrap();
        assert_eq!(
            star.actions.autoenrollment,
            Some(vec![EnrollType::Sms, EnrollType::Email])
        );
    }

    #[test]
    fn bad_actions_are_errors() {
        for (scope, action) in [
            ("authentication", "otppin=7"),
            ("authentication", "frobnicate=1"),
            ("authentication", "autoenrollment=sms"),
            ("enrollment", "autoenrollment=fax"),
            ("enrollment", "otppin=1"),
            ("authentication", "max_fail=0"),
            ("authentication", "otppin=1, otppin=2"),
            ("authentication", "smstext='unterminated"),
        ] {
            let r = Policy::parse("p", scope, action, "", "", "", true);
            assert_eq!(
                r.map_err(|e| e.field),
                Err(PolicyField::Action),
                "{scope} {action}"
            );
        }
        assert_eq!(
            Policy::parse("p", "admin", "", "", "", "", true).map_err(|e| e.field),
            Err(PolicyField::Scope)
        );
        assert_eq!(
            Policy::parse(
                "p",
                "authentication",
                "otppin=1",
                "",
                "",
                "10.0.0.300",
                true
            )
            .map_err(|e| e.field),
            Err(PolicyField::Client)
        );
    }

    #[test]
    fn client_networks_like_linotp_autosms_test() {
        let set = PolicySet::new(vec![auth("net", "otppin=2", "*", "*", "172.16.200.0/24")]);
        let get = |c| {
            set.action(Scope::Authentication, &ctx("u", "r", c), |a| {
                a.otppin.as_ref()
            })
            .copied()
        };
        assert_eq!(get("172.16.200.123"), Some(OtpPin::OnlyOtp));
        assert_eq!(get("192.168.20.1"), None);
    }

    #[test]
    fn user_patterns_and_negation() {
        let set = PolicySet::new(vec![auth("p", "otppin=2", "horst, adm*, -admin2", "", "")]);
        let get = |u| {
            set.action(Scope::Authentication, &ctx(u, "r", "10.0.0.1"), |a| {
                a.otppin.as_ref()
            })
            .copied()
        };
        assert_eq!(get("horst"), Some(OtpPin::OnlyOtp));
        assert_eq!(get("admin1"), Some(OtpPin::OnlyOtp));
        assert_eq!(get("admin2"), None);
        assert_eq!(get("localuser"), None);
    }

    #[test]
    fn most_specific_wins() {
        let set = PolicySet::new(vec![
            auth("all", "otppin=0", "*", "*", "*"),
            auth("pattern", "otppin=1", "al*", "*", "*"),
            auth("exact", "otppin=2", "alice", "*", "*"),
            auth("realm", "max_fail=3", "*", "*", "*"),
            auth("realm-exact", "max_fail=5", "*", "Corp", "*"),
            auth("client", "blocking_timeout=7", "*", "*", "*"),
            auth(
                "client-exact",
                "blocking_timeout=9",
                "*",
                "*",
                "10.1.0.0/16",
            ),
            auth("inactive", "otppin=2", "bob", "*", "*"),
        ]);
        let mut set = set;
        set.policies.last_mut().unwrap().active = false;
        let otppin = |u| {
            set.action(Scope::Authentication, &ctx(u, "corp", "10.1.2.3"), |a| {
                a.otppin.as_ref()
            })
            .copied()
        };
        assert_eq!(otppin("alice"), Some(OtpPin::OnlyOtp));
        assert_eq!(otppin("albert"), Some(OtpPin::Password));
        assert_eq!(otppin("bob"), Some(OtpPin::TokenPin));
        let c = ctx("x", "corp", "10.1.2.3");
        assert_eq!(
            set.action(Scope::Authentication, &c, |a| a.max_fail.as_ref()),
            Some(&5)
        );
        assert_eq!(
            set.action(Scope::Authentication, &c, |a| a.blocking_timeout.as_ref()),
            Some(&9)
        );
        let other = ctx("x", "other", "192.0.2.1");
        assert_eq!(
            set.action(Scope::Authentication, &other, |a| a.max_fail.as_ref()),
            Some(&3)
        );
        assert_eq!(
            set.action(Scope::Authentication, &other, |a| a
                .blocking_timeout
                .as_ref()),
            Some(&7)
        );
    }

    #[test]
    fn reply_templates() {
        let t = ReplyTemplate::parse(" Fortinet-Group-Name = \"{groups}\" ").unwrap();
        assert_eq!(
            (t.attribute.as_str(), t.value.as_str()),
            ("Fortinet-Group-Name", "{groups}")
        );
        assert!(t.per_group());
        let t = ReplyTemplate::parse("Class = vpn-{user}-{givenname}!").unwrap();
        assert!(!t.per_group() && t.constant().is_none());
        // A value from the directory is text, never read for placeholders again.
        let filled = t.render(
            |field| match field {
                ReplyField::User => "alice".into(),
                _ => "{groups}".into(),
            },
            None,
        );
        assert_eq!(filled, "vpn-alice-{groups}!");
        assert_eq!(
            ReplyTemplate::parse("Filter-Id = staff")
                .unwrap()
                .constant(),
            Some("staff")
        );
        assert!(ReplyTemplate::parse("Class").is_err());
        assert!(ReplyTemplate::parse("Bad Name = x").is_err());
        assert!(
            ReplyTemplate::parse("Class = {nope}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        let reply = vec!["Class = x".to_string()];
        let e = Policy::from_text(&PolicyText {
            name: "p",
            scope: "enrollment",
            action: "autoenrollment=sms",
            reply: &reply,
            active: true,
            ..PolicyText::default()
        });
        assert_eq!(e.map_err(|e| e.field), Err(PolicyField::Reply));
        let empty = Policy::parse("p", "authentication", " ", "", "", "", true);
        assert_eq!(empty.map_err(|e| e.field), Err(PolicyField::Action));
    }

    /// Issue 17: `group` filters on directory groups (name or DN, ignoring case), and ranks
    /// between user and realm; user names match the directory's spelling ignoring case.
    #[test]
    fn issue_17_group_filters_and_case_insensitive_users() {
        let policy = |name: &str, action: &str, user: &str, group: &str| {
            Policy::from_text(&PolicyText {
                name,
                scope: "authentication",
                action,
                user,
                group,
                active: true,
                ..PolicyText::default()
            })
            .unwrap()
        };
        let set = PolicySet::new(vec![
            policy("all", "mfa=required", "", ""),
            policy(
                "admins",
                "mfa=password_only",
                "",
                "Break-Glass; cn=svc,ou=groups,dc=x",
            ),
            policy("bob", "mfa=required", "BOB", "break-glass"),
        ]);
        let mfa = |user: &str, groups: &[String]| {
            let ctx = PolicyContext {
                user,
                realm: "local",
                client: "10.0.0.1".parse().unwrap(),
                groups,
            };
            set.action(Scope::Authentication, &ctx, |a| a.mfa.as_ref())
                .copied()
        };
        let glass = vec!["break-glass".to_string()];
        let dn = vec!["CN=svc,OU=groups,DC=x".to_string()];
        assert_eq!(mfa("alice", &[]), Some(Mfa::Required));
        assert_eq!(mfa("alice", &glass), Some(Mfa::PasswordOnly));
        assert_eq!(mfa("carol", &dn), Some(Mfa::PasswordOnly), "by DN");
        assert_eq!(
            mfa("bob", &glass),
            Some(Mfa::Required),
            "the user is more specific"
        );
    }

    #[test]
    fn issue_17_new_actions_parse_and_refuse_bad_values() {
        let p = auth(
            "p",
            "mfa=password_only, delivery_failmode=password_only, login_mode=append, \
             challenge_text='Code sent to <recipient>', reject_text='Nope'",
            "",
            "",
            "",
        );
        assert_eq!(p.actions.mfa, Some(Mfa::PasswordOnly));
        assert_eq!(
            p.actions.delivery_failmode,
            Some(DeliveryFailMode::PasswordOnly)
        );
        assert_eq!(p.actions.login_mode, Some(LoginMode::Append));
        assert_eq!(
            p.actions.challenge_text.as_deref(),
            Some("Code sent to <recipient>")
        );
        for bad in [
            "mfa=maybe",
            "delivery_failmode=open",
            "login_mode=inline",
            "challenge_text=your code is <otp>",
        ] {
            let e = Policy::parse("p", "authentication", bad, "", "", "", true).unwrap_err();
            assert_eq!(e.field, PolicyField::Action, "{bad}");
        }
    }

    #[test]
    fn glob_cases() {
        assert!(glob("adm*", "admin"));
        assert!(glob("*-svc", "vpn-svc"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXcYYb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("*", ""));
    }
}
