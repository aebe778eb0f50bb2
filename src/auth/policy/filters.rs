//! A policy's filters on user, group, realm and client: entries, patterns, negations, and how
//! specifically a request matched them (LinOTP's precedence: exact over pattern over `*`).

use std::net::IpAddr;

use ipnet::IpNet;

/// How specifically a policy matched, field by field in order of precedence: user, group,
/// realm, client. Compared as a tuple: the more specific policy wins.
pub(super) type Rank = (Specificity, Specificity, Specificity, Specificity);

/// How specifically a filter entry matched: more specific policies win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Specificity {
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
pub(super) struct NameFilter {
    include: Vec<NameEntry>,
    exclude: Vec<NameEntry>,
    case_insensitive: bool,
}

pub(super) fn glob(pattern: &str, text: &str) -> bool {
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
    pub(super) fn parse(field: &str, case_insensitive: bool) -> Result<NameFilter, String> {
        NameFilter::parse_separated(field, ',', case_insensitive)
    }

    /// Like [`NameFilter::parse`] with another separator between entries (`;` for groups,
    /// whose DNs hold commas).
    pub(super) fn parse_separated(
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

    pub(super) fn matches(&self, name: &str) -> Option<Specificity> {
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
pub(super) struct ClientFilter {
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
    pub(super) fn parse(field: &str) -> Result<ClientFilter, String> {
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

    pub(super) fn matches(&self, client: IpAddr) -> Option<Specificity> {
        if self.exclude.iter().any(|n| n.contains(&client)) {
            return None;
        }
        if self.include.iter().any(|n| n.contains(&client)) {
            return Some(Specificity::Exact);
        }
        self.any.then_some(Specificity::Any)
    }
}
