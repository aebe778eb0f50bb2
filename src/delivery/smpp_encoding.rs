//! The character sets of the SMPP provider and LinOTP's way of splitting a long text.
//!
//! `target_encoding` names the set (Python codec names, as LinOTP takes them); the set gives
//! the SMPP `data_coding` and the octets. A text that does not fit one message is cut into
//! parts as LinOTP cuts it — 153 octets (67 UCS-2 characters) each, no concatenation header —
//! never inside a character.

use serde::Deserialize;

/// The character set of the short message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetEncoding {
    /// ISO 8859-1, data_coding 3.
    Latin1,
    /// UCS-2 big-endian (UTF-16BE), data_coding 8.
    Ucs2,
    /// IA5 / ASCII, data_coding 1.
    Ia5,
}

pub(crate) fn encoding<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TargetEncoding, D::Error> {
    let name = String::deserialize(d)?;
    TargetEncoding::from_name(&name).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown target_encoding {name:?} (known: ISO8859-1, UCS2, UTF-16BE, IA5, ASCII)"
        ))
    })
}

impl TargetEncoding {
    /// Parses LinOTP/Python codec names, case and punctuation ignored.
    pub fn from_name(name: &str) -> Option<Self> {
        let key: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        match key.as_str() {
            "iso88591" | "latin1" | "l1" | "iso885915" => Some(TargetEncoding::Latin1),
            "ucs2" | "ucs2be" | "utf16be" | "utf16" => Some(TargetEncoding::Ucs2),
            "ia5" | "ascii" | "usascii" => Some(TargetEncoding::Ia5),
            _ => None,
        }
    }

    /// The SMPP data_coding value (SMPP 3.4 §5.2.19).
    pub fn data_coding(self) -> u8 {
        match self {
            TargetEncoding::Latin1 => 3,
            TargetEncoding::Ucs2 => 8,
            TargetEncoding::Ia5 => 1,
        }
    }

    /// The octets of one character; a character the set cannot carry becomes `?` (LinOTP drops
    /// it silently, which can hide a problem in a template).
    fn encode_char(self, c: char, out: &mut Vec<u8>) {
        match self {
            TargetEncoding::Latin1 => out.push(u8::try_from(u32::from(c)).unwrap_or(b'?')),
            TargetEncoding::Ia5 => out.push(if c.is_ascii() { c as u8 } else { b'?' }),
            TargetEncoding::Ucs2 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(&unit.to_be_bytes());
                }
            }
        }
    }

    /// (octets in a single message, octets per part of a split message), as LinOTP counts:
    /// 160/153 for the 8-bit sets, 140/134 (70/67 characters) for UCS-2.
    fn limits(self) -> (usize, usize) {
        match self {
            TargetEncoding::Latin1 | TargetEncoding::Ia5 => (160, 153),
            TargetEncoding::Ucs2 => (140, 134),
        }
    }

    /// Encodes `text` and splits it into the short messages to submit. A character is never
    /// cut in two (a UCS-2 surrogate pair stays in one part).
    pub fn split(self, text: &str) -> Vec<Vec<u8>> {
        let (single, part) = self.limits();
        let chars: Vec<Vec<u8>> = text
            .chars()
            .map(|c| {
                let mut bytes = Vec::with_capacity(4);
                self.encode_char(c, &mut bytes);
                bytes
            })
            .collect();
        let total: usize = chars.iter().map(Vec::len).sum();
        if total <= single {
            return vec![chars.concat()];
        }
        let mut parts = vec![];
        let mut current = Vec::with_capacity(part);
        for c in chars {
            if current.len() + c.len() > part {
                parts.push(std::mem::take(&mut current));
            }
            current.extend_from_slice(&c);
        }
        if !current.is_empty() {
            parts.push(current);
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        let parts = TargetEncoding::Latin1.split("Your OTP is 123456");
        assert_eq!(parts, vec![b"Your OTP is 123456".to_vec()]);
        assert_eq!(TargetEncoding::Latin1.split(&"x".repeat(160)).len(), 1);
    }

    #[test]
    fn long_text_splits_as_linotp() {
        // LinOTP's test: 220 characters → 153 + 67, no header.
        let text: String = (0..220)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let parts = TargetEncoding::Latin1.split(&text);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![153, 67]
        );
        assert_eq!(parts.concat(), text.as_bytes());
        assert_eq!(TargetEncoding::Latin1.split(&"x".repeat(161)).len(), 2);
    }

    #[test]
    fn latin1_and_ucs2_encoding() {
        assert_eq!(
            TargetEncoding::Latin1.split("Täst€"),
            vec![b"T\xe4st?".to_vec()]
        );
        assert_eq!(TargetEncoding::Ia5.split("Täst"), vec![b"T?st".to_vec()]);
        assert_eq!(
            TargetEncoding::Ucs2.split("Tä"),
            vec![vec![0, b'T', 0, 0xe4]]
        );
        // 71 UCS-2 characters do not fit in one message: 67 + 4.
        let parts = TargetEncoding::Ucs2.split(&"ü".repeat(71));
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), vec![134, 8]);
        // A surrogate pair is never cut: 66 one-unit characters, then a two-unit one.
        let text = format!("{}😀{}", "a".repeat(66), "b".repeat(10));
        let parts = TargetEncoding::Ucs2.split(&text);
        assert_eq!(parts[0].len(), 132);
        assert_eq!(parts[1].len(), 4 + 20);
    }

    #[test]
    fn encoding_names() {
        for (name, coding) in [
            ("ISO8859-1", 3),
            ("iso-8859-1", 3),
            ("latin_1", 3),
            ("UCS2", 8),
            ("UTF-16BE", 8),
            ("ascii", 1),
            ("IA5", 1),
        ] {
            assert_eq!(
                TargetEncoding::from_name(name).map(TargetEncoding::data_coding),
                Some(coding),
                "{name}"
            );
        }
        assert_eq!(TargetEncoding::from_name("EBCDIC"), None);
    }
}
