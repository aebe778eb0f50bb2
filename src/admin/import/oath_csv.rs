//! OATH CSV, as LinOTP (`lib/ImportOTP/oath.py`) and privacyIDEA (`parseOATHcsv`) read it:
//! one token per line, `serial, key, type, digits, counter|step`, then optionally the hash
//! (`sha1`, `sha256`, `sha512`, LinOTP's sixth column) and the user the token is assigned to
//! (`alice` or `alice@realm`). The key is hex; the type `hotp` (default) or `totp`; digits
//! 6 (default) or 8; the fifth column is a HOTP token's counter (default 0) or a TOTP token's
//! time step (default 30). Without a hash column, a 32-octet key means SHA-256 and a 64-octet
//! key SHA-512, as both anchors decide. Lines starting with `#` are comments, except
//! privacyIDEA's first line `# version: 2`, after which each line starts with `user,
//! resolver, realm`. Only this file's caller ([`super::parse`]) sees the entries.

use super::{Entry, EntryError, algorithm_for_key};
use crate::secret::Secret;
use crate::store::{HashAlgorithm, TokenKind};

/// The entries of an OATH CSV file.
pub fn parse(text: &str) -> Result<Vec<Entry>, EntryError> {
    let mut entries = vec![];
    let mut version2 = false;
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}", n + 1);
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim().to_ascii_lowercase().replace(' ', "");
            if entries.is_empty() && comment == "version:2" {
                version2 = true;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let mut columns: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        let mut user = None;
        if version2 {
            if columns.len() < 5 {
                return Err(EntryError::new(
                    at,
                    "expected user, resolver, realm, serial, key, … (version 2)",
                ));
            }
            let (name, realm) = (columns[0], columns[2]);
            if !name.is_empty() {
                user = Some(if realm.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}@{realm}")
                });
            }
            columns.drain(..3);
        }
        entries.push(entry(&at, &columns, user)?);
    }
    Ok(entries)
}

fn entry(at: &str, columns: &[&str], user: Option<String>) -> Result<Entry, EntryError> {
    let fail = |why: String| EntryError::new(at, why);
    let column = |i: usize| columns.get(i).copied().filter(|c| !c.is_empty());
    let serial = column(0).ok_or_else(|| fail("no serial".into()))?;
    if serial.chars().any(|c| c.is_control() || c.is_whitespace()) || serial.len() > 64 {
        return Err(fail(format!("serial {serial:?} is not a serial")));
    }
    // The key never appears in a message: only its shape is described.
    let seed = column(1)
        .and_then(crate::hex::decode)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| fail(format!("{serial}: the key is not hex")))?;
    let kind = match column(2).map(str::to_ascii_lowercase).as_deref() {
        None | Some("hotp") | Some("hmac") => TokenKind::Hotp,
        Some("totp") => TokenKind::Totp,
        Some(other) => {
            return Err(fail(format!(
                "{serial}: type {other:?} is not imported (hotp or totp)"
            )));
        }
    };
    let digits = match column(3) {
        None => 6,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (6..=8).contains(d))
            .ok_or_else(|| fail(format!("{serial}: digits {d:?} (expected 6, 7 or 8)")))?,
    };
    let fifth = column(4)
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| fail(format!("{serial}: {c:?} is not a number")))
        })
        .transpose()?;
    let (counter, time_step) = match kind {
        TokenKind::Totp => {
            let step = fifth.unwrap_or(30);
            let step = u32::try_from(step)
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .ok_or_else(|| fail(format!("{serial}: time step {step} (1 to 3600 s)")))?;
            (0, Some(step))
        }
        _ => (fifth.unwrap_or(0), None),
    };
    // Sixth: a hash or the user; seventh: the user.
    let mut algorithm = algorithm_for_key(seed.len());
    let mut rest = columns.iter().skip(5).filter(|c| !c.is_empty());
    let mut user = user;
    if let Some(sixth) = rest.next() {
        match sixth.parse::<HashAlgorithm>() {
            Ok(named) => algorithm = named,
            Err(_) => user = Some(sixth.to_string()),
        }
    }
    if let Some(seventh) = rest.next() {
        if user.is_some() {
            return Err(fail(format!("{serial}: too many columns")));
        }
        user = Some(seventh.to_string());
    }
    if rest.next().is_some() {
        return Err(fail(format!("{serial}: too many columns")));
    }
    Ok(Entry {
        at: at.to_string(),
        serial: serial.to_string(),
        kind,
        seed: Secret::new(seed),
        digits,
        counter,
        algorithm,
        time_step,
        public_id: None,
        user,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_both_anchors() {
        let text = "# a comment\n\
                    OATH0001, 3132333435363738393031323334353637383930, hotp, 6, 5\n\
                    \n\
                    TOTP0001, 3132333435363738393031323334353637383930313233343536373839303132, totp, 8, 60\n\
                    TOTP0002, 3132333435363738393031323334353637383930, totp, 6, 30, sha512, carol@corp\n\
                    OATH0002, 3132333435363738393031323334353637383930, hotp, 6, 0, alice\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].at, "line 2");
        assert_eq!(entries[0].counter, 5);
        assert_eq!(entries[0].algorithm, HashAlgorithm::Sha1);
        assert_eq!(entries[1].kind, TokenKind::Totp);
        assert_eq!(entries[1].time_step, Some(60));
        assert_eq!(entries[1].digits, 8);
        // A 32-octet key without a hash column: SHA-256.
        assert_eq!(entries[1].algorithm, HashAlgorithm::Sha256);
        assert_eq!(entries[2].algorithm, HashAlgorithm::Sha512);
        assert_eq!(entries[2].user.as_deref(), Some("carol@corp"));
        assert_eq!(entries[3].user.as_deref(), Some("alice"));
    }

    #[test]
    fn privacyidea_version_2_names_the_user_first() {
        let text = "# version: 2\nbob, resolver1, corp, OATH9, 3132333435363738393031323334353637383930, hotp, 6\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries[0].user.as_deref(), Some("bob@corp"));
        assert_eq!(entries[0].serial, "OATH9");
    }

    #[test]
    fn a_bad_line_is_named_and_the_key_never_shown() {
        let bad = parse("OATH1, 31323334, hotp\nOATH2, zz313233, hotp\n").unwrap_err();
        assert_eq!(bad.at, "line 2");
        assert!(!bad.to_string().contains("zz313233"), "{bad}");
        let ocra = parse("OCRA1, 31323334, ocra, OCRA-1:HOTP-SHA1-6:QN08\n").unwrap_err();
        assert!(ocra.why.contains("ocra"), "{ocra}");
        assert!(parse("T1, 3132, totp, 6, 0\n").is_err());
        assert!(parse("T1, 3132, hotp, 7x\n").is_err());
    }
}
