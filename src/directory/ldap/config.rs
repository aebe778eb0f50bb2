//! `[directory.NAME]` with `type = "ldap"`: the keys, their defaults, LinOTP's names for them,
//! and the checks that turn them into [`LdapSettings`].
//!
//! Every key has a tessera name and, where LinOTP has one, LinOTP's resolver key as an alias,
//! so a LinOTP `ldapresolver` can be pasted: `LDAPURI`, `LDAPBASE`, `BINDDN`, `BINDPW`,
//! `LOGINNAMEATTRIBUTE`, `LDAPFILTER`, `LDAPSEARCHFILTER`, `USERINFO` (JSON text),
//! `TIMEOUT`, `SIZELIMIT`, `CACERTIFICATE` (PEM text), `NOREFERRALS`, `EnforceTLS`,
//! `only_trusted_certs`. LinOTP writes booleans and numbers as strings (`"True"`, `"5"`); both
//! forms are accepted. `UIDTYPE` names the entry's stable id (`entryUUID`, `objectGUID`, or
//! `DN`; by default whichever of the first two the server returns), kept on autoenrolled tokens
//! so a recreated account is told apart; password checks always bind with the entry's DN.
//! `readonly` is accepted and ignored: tessera never writes to the directory.
//!
//! Nothing here touches the network or the file system; [`super::LdapDirectory::open`] reads
//! the CA file and builds the TLS configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::Problem;
use crate::linotp_values::Scalar;
use crate::secret::Secret;

/// The keys of an `ldap` directory, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// Server URIs, tried in order: `ldap://host:389` or `ldaps://host:636`. LinOTP's
    /// comma-separated string is accepted too.
    #[serde(alias = "LDAPURI")]
    pub uri: UriList,
    /// Where user searches start (subtree).
    #[serde(alias = "LDAPBASE")]
    pub base_dn: String,
    /// The service account's DN; empty or missing: anonymous searches.
    #[serde(default, alias = "BINDDN")]
    pub bind_dn: Option<String>,
    /// The service account's password.
    #[serde(default, alias = "BINDPW")]
    pub bind_password: Option<Secret>,
    /// The attribute holding the login name. Default `uid`; AD: `sAMAccountName` or
    /// `userPrincipalName`.
    #[serde(default, alias = "LOGINNAMEATTRIBUTE")]
    pub login_attribute: Option<String>,
    /// The user filter; every `%s` becomes the login, RFC 4515-escaped. Default
    /// `(<login_attribute>=%s)`.
    #[serde(default, alias = "LDAPFILTER")]
    pub search_filter: Option<String>,
    /// LinOTP's listing filter (`(uid=*)(objectClass=inetOrgPerson)`). Used only when no
    /// `search_filter` is given: the user filter becomes `(&<this>(<login_attribute>=%s))`.
    /// If it contains `%s` it is taken as the user filter itself.
    #[serde(default, rename = "LDAPSEARCHFILTER")]
    pub listing_filter: Option<String>,
    /// tessera's attribute name → the directory's (LinOTP USERINFO): a table, or LinOTP's JSON
    /// text. Merged over the defaults; `""` turns a default off.
    #[serde(default, alias = "USERINFO")]
    pub attributes: Option<AttributeMap>,
    /// Seconds for each network operation (connect, bind, search). Default 5. LinOTP's
    /// `"net;resp"` form uses the larger of the two.
    #[serde(default, alias = "TIMEOUT")]
    pub timeout: Option<Scalar>,
    /// The most entries a user search may return. Default 500; more than one entry is always
    /// an ambiguous login.
    #[serde(default, alias = "SIZELIMIT")]
    pub size_limit: Option<Scalar>,
    /// Upgrade `ldap://` connections with StartTLS; fail if the server refuses. Default off.
    #[serde(default, alias = "EnforceTLS")]
    pub starttls: Option<Scalar>,
    /// A PEM file of CA certificates to trust instead of the system store (LinOTP's
    /// `CACERTIFICATE` holds the PEM text itself, which is accepted too).
    #[serde(default, alias = "CACERTIFICATE")]
    pub ca_file: Option<String>,
    /// Check the server's certificate and name. Default on; off only for tests.
    #[serde(default, alias = "only_trusted_certs")]
    pub tls_verify: Option<Scalar>,
    /// Referrals are never chased (a referral could send the bind password elsewhere); this
    /// key is accepted for LinOTP compatibility. Default true.
    #[serde(default, alias = "NOREFERRALS")]
    pub no_referrals: Option<Scalar>,
    /// Seconds to keep a user's attributes, so the second round needs no search. Default 60;
    /// 0 turns the cache off.
    #[serde(default)]
    pub cache_seconds: Option<Scalar>,
    /// The attribute holding the entry's stable id (LinOTP's user id type): `entryUUID`,
    /// `objectGUID`, any attribute, or `DN`. Default: `entryUUID` or `objectGUID`, whichever
    /// the server has.
    #[serde(default, alias = "UIDTYPE")]
    pub uid_type: Option<String>,
    /// LinOTP's read-only flag: ignored, tessera never writes.
    #[serde(default)]
    pub readonly: Option<Scalar>,
}

/// One URI or many; LinOTP writes `"ldap://a, ldap://b"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UriList {
    /// `["ldap://a", "ldap://b"]`.
    Many(Vec<String>),
    /// `"ldap://a, ldap://b"`.
    One(String),
}

/// The attribute mapping as a table or as LinOTP's JSON text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AttributeMap {
    /// `{ mobile = "mobile", email = "mail" }`.
    Table(BTreeMap<String, String>),
    /// `'{"mobile": "mobile", "email": "mail"}'`.
    Json(String),
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    /// A PEM file.
    File(PathBuf),
    /// PEM text from the config.
    Pem(String),
}

/// The mapping keys tessera understands. `username` is LinOTP's and is ignored (the login
/// attribute plays its part).
const ATTRIBUTE_KEYS: &[&str] = &[
    "mobile",
    "email",
    "phone",
    "givenname",
    "surname",
    "groups",
    "username",
];

/// The default mapping, for inetOrgPerson and AD alike.
const DEFAULT_ATTRIBUTES: &[(&str, &str)] = &[
    ("mobile", "mobile"),
    ("email", "mail"),
    ("phone", "telephoneNumber"),
    ("givenname", "givenName"),
    ("surname", "sn"),
    ("groups", "memberOf"),
];

/// Default seconds per network operation.
pub const DEFAULT_TIMEOUT_SECS: f64 = 5.0;
/// Default search size limit (LinOTP's).
pub const DEFAULT_SIZE_LIMIT: i32 = 500;
/// Default attribute cache lifetime.
pub const DEFAULT_CACHE_SECS: u64 = 60;

/// An `ldap` directory's settings, checked.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// URIs in configured order.
    pub uris: Vec<String>,
    /// The search base.
    pub base_dn: String,
    /// Service account DN and password; `None`: anonymous.
    pub bind: Option<(String, Secret)>,
    /// The login attribute.
    pub login_attribute: String,
    /// The user filter template, `%s` for the escaped login.
    pub filter: String,
    /// tessera attribute name → directory attribute name; only non-empty entries.
    pub attributes: BTreeMap<String, String>,
    /// Per-operation timeout.
    pub timeout: Duration,
    /// Search size limit.
    pub size_limit: i32,
    /// StartTLS on `ldap://`.
    pub starttls: bool,
    /// Trusted CAs; `None`: the system store.
    pub ca: Option<CaSource>,
    /// Verify certificates.
    pub tls_verify: bool,
    /// Attribute cache lifetime; zero: no cache.
    pub cache_ttl: Duration,
    /// Where the entry's stable id is read, first found wins; empty: the DN.
    pub stable_id: Vec<String>,
}

impl LdapSettings {
    /// Whether any connection will use TLS.
    pub fn uses_tls(&self) -> bool {
        self.starttls || self.uris.iter().any(|u| u.starts_with("ldaps://"))
    }

    /// The filter for one login, every `%s` replaced by the RFC 4515-escaped login, so a
    /// login like `*)(uid=*` matches only itself.
    pub fn filter_for(&self, login: &str) -> String {
        self.filter.replace("%s", &ldap3::ldap_escape(login))
    }

    /// The directory attributes a search asks for.
    pub fn requested_attributes(&self) -> Vec<String> {
        let mut list: Vec<String> = self.attributes.values().cloned().collect();
        list.push(self.login_attribute.clone());
        list.extend(self.stable_id.iter().cloned());
        list.sort();
        list.dedup();
        list
    }
}

impl LdapConfig {
    /// Checks every key and resolves the CA file against `resolve`. All problems are returned,
    /// each as (key, what is wrong); the key is tessera's name (`uri`, `attributes.mobile`).
    pub fn check(self, resolve: impl Fn(&Path) -> PathBuf) -> Result<LdapSettings, Vec<Problem>> {
        let mut problems: Vec<Problem> = vec![];

        let uris = check_uris(self.uri, &mut problems);
        if self.base_dn.trim().is_empty() {
            problems.push(Problem::new("base_dn", "is empty"));
        }
        let bind = check_bind(self.bind_dn, self.bind_password, &mut problems);
        let (login_attribute, filter) = check_filter(
            self.login_attribute,
            self.search_filter,
            self.listing_filter,
            &mut problems,
        );
        let attributes = check_attributes(self.attributes, &mut problems);
        let (timeout, size_limit, cache_secs) = check_limits(
            self.timeout,
            self.size_limit,
            self.cache_seconds,
            &mut problems,
        );
        let stable_id = check_stable_id(self.uid_type.as_deref(), &mut problems);

        let mut flag = |name: &str, value: Option<Scalar>, default: bool| match value {
            None => default,
            Some(f) => f.flag().unwrap_or_else(|| {
                problems.push(Problem::new(name, "expected true or false"));
                default
            }),
        };
        let starttls = flag("starttls", self.starttls, false);
        let tls_verify = flag("tls_verify", self.tls_verify, true);
        let no_referrals = flag("no_referrals", self.no_referrals, true);
        let _ = flag("readonly", self.readonly, true);
        let _ = no_referrals;
        let ca = self.ca_file.filter(|c| !c.trim().is_empty()).map(|c| {
            if c.trim_start().starts_with("-----BEGIN") {
                CaSource::Pem(c)
            } else {
                CaSource::File(resolve(Path::new(&c)))
            }
        });

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(LdapSettings {
            uris,
            base_dn: self.base_dn,
            bind,
            login_attribute,
            filter,
            attributes,
            timeout: Duration::from_secs_f64(timeout),
            size_limit,
            starttls,
            ca,
            tls_verify,
            cache_ttl: Duration::from_secs_f64(cache_secs),
            stable_id,
        })
    }
}

/// `uri`: one or more, comma-separated as LinOTP writes them, each checked.
fn check_uris(uri: UriList, problems: &mut Vec<Problem>) -> Vec<String> {
    let uris: Vec<String> = match uri {
        UriList::Many(list) => list,
        UriList::One(text) => text.split(',').map(str::to_string).collect(),
    }
    .into_iter()
    .map(|u| u.trim().to_string())
    .filter(|u| !u.is_empty())
    .collect();
    if uris.is_empty() {
        problems.push(Problem::new(
            "uri",
            "at least one ldap:// or ldaps:// URI is needed",
        ));
    }
    for uri in &uris {
        if let Err(message) = check_uri(uri) {
            problems.push(Problem::new("uri", format!("{uri:?}: {message}")));
        }
    }

    uris
}

/// `bind_dn` and `bind_password`: both or neither.
fn check_bind(
    bind_dn: Option<String>,
    bind_password: Option<Secret>,
    problems: &mut Vec<Problem>,
) -> Option<(String, Secret)> {
    let bind_dn = bind_dn.filter(|d| !d.trim().is_empty());
    match (bind_dn, bind_password) {
        (Some(dn), Some(password)) if !password.is_empty() => Some((dn, password)),
        (Some(_), _) => {
            problems.push(Problem::new(
                "bind_password",
                "bind_dn is set but the password is empty",
            ));
            None
        }
        (None, Some(password)) if !password.is_empty() => {
            problems.push(Problem::new(
                "bind_dn",
                "a bind_password is set but no bind_dn",
            ));
            None
        }
        (None, _) => None,
    }
}

/// `login_attribute` and the search filter built from it (or given, or LinOTP's listing
/// filter with the login added): (login attribute, filter).
fn check_filter(
    login_attribute: Option<String>,
    search_filter: Option<String>,
    listing_filter: Option<String>,
    problems: &mut Vec<Problem>,
) -> (String, String) {
    let login_attribute = login_attribute
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| "uid".into());
    if !is_attribute_name(&login_attribute) {
        problems.push(Problem::new(
            "login_attribute",
            format!("{login_attribute:?} is not an attribute name"),
        ));
    }

    let filter = match (search_filter, listing_filter) {
        (Some(f), _) => f,
        (None, Some(listing)) if listing.contains("%s") => listing,
        (None, Some(listing)) => format!("(&{listing}({login_attribute}=%s))"),
        (None, None) => format!("({login_attribute}=%s)"),
    };
    if !filter.contains("%s") {
        problems.push(Problem::new(
            "search_filter",
            format!(
                "{filter:?} has no %s for the login, so every login would match the same entries"
            ),
        ));
    } else if ldap3::parse_filter(filter.replace("%s", "x")).is_err() {
        problems.push(Problem::new(
            "search_filter",
            format!("{filter:?} is not a valid LDAP filter (RFC 4515)"),
        ));
    }

    (login_attribute, filter)
}

/// `attributes`: the mapping over the defaults, `""` turning a default off.
fn check_attributes(
    given: Option<AttributeMap>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let mut attributes: BTreeMap<String, String> = DEFAULT_ATTRIBUTES
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let given = match given {
        None => BTreeMap::new(),
        Some(AttributeMap::Table(t)) => t,
        Some(AttributeMap::Json(text)) => serde_json::from_str::<BTreeMap<String, String>>(&text)
            .unwrap_or_else(|e| {
                problems.push(Problem::new(
                    "attributes",
                    format!("not a JSON object of strings: {e}"),
                ));
                BTreeMap::new()
            }),
    };
    for (key, value) in given {
        let key = key.to_lowercase();
        if !ATTRIBUTE_KEYS.contains(&key.as_str()) {
            problems.push(Problem::new(
                format!("attributes.{key}"),
                format!("unknown key {key:?} (known: {})", ATTRIBUTE_KEYS.join(", ")),
            ));
        } else if key != "username" {
            if !value.is_empty() && !is_attribute_name(&value) {
                problems.push(Problem::new(
                    format!("attributes.{key}"),
                    format!("{value:?} is not an attribute name"),
                ));
            }
            attributes.insert(key, value);
        }
    }
    attributes.retain(|_, v| !v.is_empty());

    attributes
}

/// `timeout`, `size_limit` and `cache_seconds`: (timeout, size limit, cache seconds).
fn check_limits(
    timeout: Option<Scalar>,
    size_limit: Option<Scalar>,
    cache_seconds: Option<Scalar>,
    problems: &mut Vec<Problem>,
) -> (f64, i32, f64) {
    let timeout = match timeout.map(|n| seconds(&n)).transpose() {
        Ok(Some(s)) if s > 600.0 => {
            problems.push(Problem::new("timeout", "at most 600 seconds"));
            DEFAULT_TIMEOUT_SECS
        }
        Ok(Some(s)) if s > 0.0 => s,
        Ok(_) => DEFAULT_TIMEOUT_SECS, // LinOTP's -1 ("none"): tessera always has one
        Err(message) => {
            problems.push(Problem::new("timeout", message));
            DEFAULT_TIMEOUT_SECS
        }
    };
    let size_limit = match size_limit.map(|n| seconds(&n)).transpose() {
        Ok(None) => DEFAULT_SIZE_LIMIT,
        Ok(Some(n)) if n >= 1.0 && n <= f64::from(i32::MAX) && n.fract() == 0.0 => n as i32,
        Ok(Some(_)) => {
            problems.push(Problem::new(
                "size_limit",
                "must be a whole number of at least 1",
            ));
            DEFAULT_SIZE_LIMIT
        }
        Err(message) => {
            problems.push(Problem::new("size_limit", message));
            DEFAULT_SIZE_LIMIT
        }
    };
    let cache_secs = match cache_seconds.map(|n| seconds(&n)).transpose() {
        Ok(None) => DEFAULT_CACHE_SECS as f64,
        Ok(Some(n)) if (0.0..=86_400.0).contains(&n) => n,
        Ok(Some(_)) => {
            problems.push(Problem::new("cache_seconds", "must be between 0 and 86400"));
            0.0
        }
        Err(message) => {
            problems.push(Problem::new("cache_seconds", message));
            0.0
        }
    };

    (timeout, size_limit, cache_secs)
}

/// `uid_type`: the attributes that may hold the entry's stable id (none: the DN).
fn check_stable_id(uid_type: Option<&str>, problems: &mut Vec<Problem>) -> Vec<String> {
    match uid_type.map(str::trim) {
        None | Some("") => vec!["entryUUID".to_string(), "objectGUID".to_string()],
        Some(dn) if dn.eq_ignore_ascii_case("dn") => vec![],
        Some(attribute) if is_attribute_name(attribute) => vec![attribute.to_string()],
        Some(other) => {
            problems.push(Problem::new(
                "uid_type",
                format!("{other:?} is not an attribute name or DN"),
            ));
            vec![]
        }
    }
}

/// How a key may be spelt in the file, as dotted paths inside the directory's table: tessera's
/// name and LinOTP's (for pointing at its line).
pub fn spellings(key: &str) -> Vec<String> {
    const NAMES: &[(&str, &[&str])] = &[
        ("uri", &["uri", "LDAPURI"]),
        ("base_dn", &["base_dn", "LDAPBASE"]),
        ("bind_dn", &["bind_dn", "BINDDN"]),
        ("bind_password", &["bind_password", "BINDPW"]),
        (
            "login_attribute",
            &["login_attribute", "LOGINNAMEATTRIBUTE"],
        ),
        (
            "search_filter",
            &["search_filter", "LDAPFILTER", "LDAPSEARCHFILTER"],
        ),
        ("attributes", &["attributes", "USERINFO"]),
        ("timeout", &["timeout", "TIMEOUT"]),
        ("size_limit", &["size_limit", "SIZELIMIT"]),
        ("starttls", &["starttls", "EnforceTLS"]),
        ("ca_file", &["ca_file", "CACERTIFICATE"]),
        ("tls_verify", &["tls_verify", "only_trusted_certs"]),
        ("no_referrals", &["no_referrals", "NOREFERRALS"]),
        ("cache_seconds", &["cache_seconds"]),
        ("uid_type", &["uid_type", "UIDTYPE"]),
        ("readonly", &["readonly"]),
    ];
    let (first, rest) = key.split_once('.').unwrap_or((key, ""));
    // `attributes.mobile`: the sub-key's own line first, then the table's.
    let mut names: Vec<String> = if rest.is_empty() {
        vec![]
    } else {
        vec![key.to_string()]
    };
    if let Some((_, spelt)) = NAMES.iter().find(|(k, _)| *k == first) {
        names.extend(spelt.iter().map(|s| s.to_string()));
    }
    names
}

/// A URI ldap3 can connect to: `ldap://` or `ldaps://`, a host, no path beyond `/`.
fn check_uri(uri: &str) -> Result<(), String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or("expected ldap://host[:port] or ldaps://host[:port]")?;
    if scheme != "ldap" && scheme != "ldaps" {
        return Err(format!(
            "scheme {scheme:?} is not supported (ldap or ldaps)"
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{port:?} is not a port"));
    }
    Ok(())
}

/// An LDAP attribute description: a letter, then letters, digits, `-` and `;` options (or a
/// numeric OID).
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        }
        Some(c) if c.is_ascii_digit() => name.chars().all(|c| c.is_ascii_digit() || c == '.'),
        _ => false,
    }
}

/// A number from a number or text; LinOTP's `"net;resp"` gives the larger part.
fn seconds(n: &Scalar) -> Result<f64, String> {
    n.numbers(';')
        .and_then(|parts| parts.into_iter().reduce(f64::max))
        .ok_or_else(|| format!("{n} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<LdapSettings, String> {
        let config: LdapConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        config
            .check(|p| Path::new("/etc/tessera").join(p))
            .map_err(|problems| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }

    #[test]
    fn flags_and_numbers_are_read_as_every_linotp_value_is() {
        // The reader the providers use: 0/1 are flags, "net;resp" gives the larger part.
        let s = check(
            "uri = \"ldap://dc1\"\nbase_dn = \"dc=x\"\nEnforceTLS = 1\nonly_trusted_certs = \"False\"\nTIMEOUT = \"3;5\"\n",
        )
        .unwrap();
        assert!(s.starttls && !s.tls_verify);
        assert_eq!(s.timeout, Duration::from_secs(5));
        let e = check("uri = \"ldap://dc1\"\nbase_dn = \"dc=x\"\nstarttls = 2\nTIMEOUT = true\n")
            .unwrap_err();
        assert_eq!(
            e,
            "timeout: true is not a number; starttls: expected true or false"
        );
    }

    #[test]
    fn defaults() {
        let s = check("uri = \"ldap://127.0.0.1\"\nbase_dn = \"dc=example,dc=org\"\n").unwrap();
        assert_eq!(s.uris, ["ldap://127.0.0.1"]);
        assert_eq!(s.filter, "(uid=%s)");
        assert_eq!(s.attributes["mobile"], "mobile");
        assert_eq!(s.attributes["email"], "mail");
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.size_limit, 500);
        assert_eq!(s.cache_ttl, Duration::from_secs(60));
        assert!(s.tls_verify && !s.starttls && s.bind.is_none() && s.ca.is_none());
        assert!(!s.uses_tls());
    }

    #[test]
    fn a_pasted_linotp_resolver_is_understood() {
        let s = check(
            r#"
LDAPURI = "ldaps://dc1.example.org, ldaps://dc2.example.org:3269"
LDAPBASE = "dc=example,dc=org"
BINDDN = "cn=svc,dc=example,dc=org"
BINDPW = "secret"
LOGINNAMEATTRIBUTE = "sAMAccountName"
LDAPSEARCHFILTER = "(sAMAccountName=*)(objectClass=user)"
USERINFO = '{"username": "sAMAccountName", "mobile": "telephoneNumber", "email": "mail", "surname": "sn"}'
TIMEOUT = "3;7"
SIZELIMIT = "100"
NOREFERRALS = "True"
EnforceTLS = "False"
UIDTYPE = "objectGUID"
CACERTIFICATE = "ca.pem"
"#,
        )
        .unwrap();
        assert_eq!(
            s.uris,
            ["ldaps://dc1.example.org", "ldaps://dc2.example.org:3269"]
        );
        assert_eq!(
            s.filter,
            "(&(sAMAccountName=*)(objectClass=user)(sAMAccountName=%s))"
        );
        assert_eq!(s.attributes["mobile"], "telephoneNumber");
        assert_eq!(s.timeout, Duration::from_secs(7));
        assert_eq!(s.size_limit, 100);
        assert_eq!(s.ca, Some(CaSource::File("/etc/tessera/ca.pem".into())));
        assert_eq!(
            s.bind.as_ref().map(|b| b.0.as_str()),
            Some("cn=svc,dc=example,dc=org")
        );
        assert!(s.uses_tls());
    }

    #[test]
    fn the_login_is_escaped_into_the_filter() {
        let s = check(
            "uri = [\"ldap://h\"]\nbase_dn = \"o=x\"\nsearch_filter = \"(&(objectClass=person)(uid=%s))\"\n",
        )
        .unwrap();
        assert_eq!(
            s.filter_for("*)(uid=*"),
            "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert!(ldap3::parse_filter(s.filter_for("a\\b(c)*\0")).is_ok());
    }

    #[test]
    fn every_problem_is_reported() {
        let err = check(
            r#"
uri = ["ldap://", "http://x"]
base_dn = ""
bind_dn = "cn=svc"
search_filter = "(uid=alice)"
attributes = { mobil = "mobile" }
timeout = "soon"
"#,
        )
        .unwrap_err();
        for needle in [
            "uri: \"ldap://\": no host",
            "uri: \"http://x\": scheme \"http\"",
            "base_dn: is empty",
            "bind_password: bind_dn is set",
            "search_filter: \"(uid=alice)\" has no %s",
            "attributes.mobil: unknown key \"mobil\"",
            "timeout: \"soon\" is not a number",
        ] {
            assert!(err.contains(needle), "{needle:?} missing in {err}");
        }
        let err = check("uri = \"ldap://h\"\nbase_dn = \"o=x\"\nsearch_filter = \"(uid=%s\"\n")
            .unwrap_err();
        assert!(err.contains("not a valid LDAP filter"), "{err}");
    }

    #[test]
    fn an_empty_mapping_turns_a_default_off() {
        let s = check(
            "uri = \"ldap://h\"\nbase_dn = \"o=x\"\n[attributes]\ngroups = \"\"\nmobile = \"pager\"\n",
        )
        .unwrap();
        assert!(!s.attributes.contains_key("groups"));
        assert_eq!(s.attributes["mobile"], "pager");
        assert_eq!(
            s.requested_attributes(),
            [
                "entryUUID",
                "givenName",
                "mail",
                "objectGUID",
                "pager",
                "sn",
                "telephoneNumber",
                "uid"
            ]
        );
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The `[directory.*]` tables of type ldap in a config file.
    fn ldap_tables(text: &str) -> Vec<LdapConfig> {
        let doc: toml::Table = toml::from_str(text).unwrap();
        let directories = doc["directory"].as_table().unwrap();
        directories
            .values()
            .filter_map(|d| {
                let mut d = d.as_table().unwrap().clone();
                (d.remove("type")?.as_str()? == "ldap")
                    .then(|| toml::Value::Table(d).try_into().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_shipped_examples_are_valid() {
        for (name, text) in [
            (
                "openldap",
                include_str!("../../../conf/examples/openldap.toml"),
            ),
            (
                "active-directory",
                include_str!("../../../conf/examples/active-directory.toml"),
            ),
        ] {
            let tables = ldap_tables(text);
            assert_eq!(tables.len(), 1, "{name}");
            for table in tables {
                let s = table
                    .check(Path::to_path_buf)
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(s.uris.len(), 2, "{name}");
                assert!(s.bind.is_some() && s.uses_tls() && s.tls_verify, "{name}");
                assert_eq!(s.attributes["groups"], "memberOf", "{name}");
            }
        }
    }
}
