//! What a typed login becomes before anyone looks it up: [`normalize`].
//!
//! A NAS passes the User-Name exactly as the user typed it. Directories match names loosely —
//! slapd and Active Directory compare `uid` / `sAMAccountName` ignoring case and surrounding
//! spaces, and a phone keyboard happily types `ａlice` (fullwidth) for `alice` — so every
//! spelling that finds the same entry must become the same identity, or each one is a fresh
//! user with no token, no fail counter and no policy. Normalisation is the first half of that:
//! Unicode NFKC (compatibility forms fold: fullwidth letters, ligatures, `＠`), surrounding
//! white space trimmed, and control characters refused outright (they would only ever serve
//! to forge log lines or to smuggle a second spelling). The second half is the directory's:
//! the identity tessera keys everything on is the login *as the directory spells it* in the
//! entry it found ([`super::UserInfo::login`]).
//!
//! Case is left to the directory: LDAP and AD fold it, and the users file does too (see
//! [`super::users_file`]). [`fold`] is the case-insensitive key used where tessera itself must
//! compare names (the users file's index, the back-off table for names no directory knows).

use unicode_normalization::UnicodeNormalization;

/// Why a typed login was refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Nothing left after trimming.
    #[error("empty user name")]
    Empty,
    /// A control character (newline, escape, NUL …) anywhere in the name.
    #[error("user name with control characters")]
    ControlCharacter,
}

/// NFKC, trimmed, no control characters: the form every lookup and every key starts from.
pub fn normalize(typed: &str) -> Result<String, LoginError> {
    // Checked before normalising: NFKC keeps control characters as they are anyway, and a
    // name that carries one is refused whatever else it holds.
    if typed.chars().any(char::is_control) {
        return Err(LoginError::ControlCharacter);
    }
    // The fast path: plain ASCII with nothing to trim is already in NFKC.
    let normalized = if typed.is_ascii() {
        typed.trim().to_string()
    } else {
        typed.nfkc().collect::<String>().trim().to_string()
    };
    if normalized.is_empty() {
        return Err(LoginError::Empty);
    }
    Ok(normalized)
}

/// A normalised name without the Windows domain an old server strips before it looks the user
/// up: `DOMAIN\\user` (NT4) and `user@suffix` (UPN), both at once too — as NPS with Active
/// Directory reads them. `None` when the name has no such domain, or nothing is left without
/// it. tessera itself never maps these names (a realm is split off by the realm table alone);
/// passthru asks who the old server would take them for.
pub fn without_domain(normalized: &str) -> Option<&str> {
    let user = normalized
        .rsplit_once('\\')
        .map_or(normalized, |(_, user)| user);
    let user = user.rsplit_once('@').map_or(user, |(user, _)| user).trim();
    (user != normalized && !user.is_empty()).then_some(user)
}

/// The case-folded form of a normalised name, for tessera's own case-insensitive indexes.
pub fn fold(normalized: &str) -> String {
    if normalized.is_ascii() {
        normalized.to_ascii_lowercase()
    } else {
        normalized.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_normalize_alike() {
        for typed in [
            "alice",
            " alice",
            "alice\u{3000}",
            "ａｌｉｃｅ",
            "\u{a0}alice ",
        ] {
            assert_eq!(normalize(typed).as_deref(), Ok("alice"), "{typed:?}");
        }
        assert_eq!(
            normalize("ALICE").as_deref(),
            Ok("ALICE"),
            "case is the directory's"
        );
        assert_eq!(fold("ALICE"), "alice");
        assert_eq!(fold("ÄLICE"), "älice");
        assert_eq!(normalize("alice＠corp").as_deref(), Ok("alice@corp"));
    }

    #[test]
    fn domains_an_old_server_strips() {
        for (name, user) in [
            ("CORP\\alice", Some("alice")),
            ("alice@corp.example", Some("alice")),
            ("CORP\\alice@corp.example", Some("alice")),
            ("corp.example\\ALICE", Some("ALICE")),
            ("CORP\\ alice", Some("alice")),
            ("alice", None),
            ("CORP\\", None),
            ("@corp", None),
        ] {
            assert_eq!(without_domain(name), user, "{name:?}");
        }
        let fullwidth = normalize("ＣＯＲＰ＼ａｌｉｃｅ").unwrap();
        assert_eq!(without_domain(&fullwidth), Some("alice"));
    }

    #[test]
    fn control_characters_and_empty_names_are_refused() {
        for typed in ["alice\n", "al\u{1b}[31mice", "alice\0", "a\rb", "\u{85}x"] {
            assert_eq!(
                normalize(typed),
                Err(LoginError::ControlCharacter),
                "{typed:?}"
            );
        }
        assert_eq!(normalize("   "), Err(LoginError::Empty));
        assert_eq!(normalize(""), Err(LoginError::Empty));
    }
}
