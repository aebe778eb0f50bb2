//! The YubiKey personalization tool's CSV log (what `ykpersonalize` and the GUI tool write
//! when they program a YubiKey in Yubico OTP mode), as privacyIDEA's `parseYubicoCSV` and
//! LinOTP's `yubikeycsv` read it: `Yubico OTP, date, slot, public id, private id, AES key,
//! …`, and the short form `public id, private id, AES key`. The public id is modhex (12
//! characters), the private id hex (6 octets), the key hex (16 octets). A token's serial is
//! `UBAM` and its public id; its seed is the key followed by the private id. Rows of other
//! modes (`OATH-HOTP`, `Static Password`, `Challenge-Response`) are refused, naming the line.

use super::{Entry, EntryError};
use crate::otp::yubico;
use crate::secret::Secret;
use crate::store::{HashAlgorithm, TokenKind};

/// The entries of a personalization tool's CSV file.
pub fn parse(text: &str) -> Result<Vec<Entry>, EntryError> {
    let mut entries = vec![];
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let columns: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        let fields = match columns.first().map(|c| c.to_ascii_lowercase()) {
            Some(mode) if mode == "yubico otp" => columns.get(3..6),
            Some(mode) if mode.chars().any(|c| c == ' ' || c == '-') => {
                return Err(EntryError::new(
                    at,
                    format!("{mode:?}: only Yubico OTP mode is imported"),
                ));
            }
            _ => columns.get(..3),
        };
        let Some(&[public_id, private_id, key]) = fields else {
            return Err(EntryError::new(
                at,
                "expected public id, private id, AES key",
            ));
        };
        entries.push(entry(&at, public_id, private_id, key)?);
    }
    Ok(entries)
}

fn entry(at: &str, public_id: &str, private_id: &str, key: &str) -> Result<Entry, EntryError> {
    let public_id = public_id.to_ascii_lowercase();
    if public_id.len() != yubico::PUBLIC_ID_LEN || !yubico::is_modhex(public_id.as_bytes()) {
        return Err(EntryError::new(
            at,
            format!("public id {public_id:?} is not 12 modhex characters"),
        ));
    }
    let private = crate::hex::decode(private_id)
        .filter(|p| p.len() == 6)
        .ok_or_else(|| {
            EntryError::new(
                at,
                format!("{public_id}: the private id is not 6 octets in hex"),
            )
        })?;
    let mut seed = crate::hex::decode(key)
        .filter(|k| k.len() == 16)
        .ok_or_else(|| {
            EntryError::new(
                at,
                format!("{public_id}: the AES key is not 16 octets in hex"),
            )
        })?;
    seed.extend(private);
    Ok(Entry {
        at: at.to_string(),
        serial: format!("UBAM{public_id}"),
        kind: TokenKind::Yubikey,
        seed: Secret::new(seed),
        digits: 44,
        counter: 0,
        algorithm: HashAlgorithm::Sha1,
        time_step: None,
        public_id: Some(public_id),
        user: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_log_and_the_short_form() {
        let text = "Yubico OTP,12/11/2013 11:10,1,vvgutbiedkvi,ed520ce1b6e4,d0d1b8cb9d0549c9b9766ab0c2f4fa2a,,,0,0,0,0,0,0,0,0,0,0\n\
                    vvcccccccccb, 0a0b0c0d0e0f, 000102030405060708090a0b0c0d0e0f\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries[0].serial, "UBAMvvgutbiedkvi");
        assert_eq!(entries[0].public_id.as_deref(), Some("vvgutbiedkvi"));
        assert_eq!(entries[0].seed.len(), 22);
        assert_eq!(
            &entries[0].seed.expose()[16..],
            crate::hex::decode("ed520ce1b6e4").unwrap()
        );
        assert_eq!(entries[1].at, "line 2");
    }

    #[test]
    fn other_modes_and_bad_ids_are_named() {
        let hotp = parse("OATH-HOTP,11.12.13 18:55,1,cccccccccccc,,916821d3a138bf855e70069605559a206ba854cd,,,0\n").unwrap_err();
        assert_eq!(hotp.at, "line 1");
        assert!(parse("vvcccccccccx, 0a0b0c0d0e0f, 000102030405060708090a0b0c0d0e0f\n").is_err());
        let short_key = parse("vvcccccccccb, 0a0b0c0d0e0f, 0001020304\n").unwrap_err();
        assert!(!short_key.to_string().contains("0001020304"));
    }
}
