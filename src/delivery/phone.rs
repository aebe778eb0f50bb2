//! [`PhoneFormat`]: LinOTP's `MSISDN` and `SUPPRESS_PREFIX`, the one number handling of the
//! four SMS classes (HTTP, SMTP, SMPP, device), read from their keys when a provider is built.

use crate::linotp_values::Flag;

/// LinOTP's phone normalisation, an SMS class's `MSISDN` and `SUPPRESS_PREFIX` keys: every SMS
/// provider holds one, made from its config, and applies it to the recipient before it sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneFormat {
    /// `MSISDN`: reduce the number to `+` and digits.
    msisdn: bool,
    /// `SUPPRESS_PREFIX`: removed from the start of the number (an empty one is none).
    suppress_prefix: Option<String>,
}

impl PhoneFormat {
    /// From a class's `MSISDN` and `SUPPRESS_PREFIX` keys.
    pub fn new(msisdn: Flag, suppress_prefix: Option<&str>) -> Self {
        PhoneFormat {
            msisdn: msisdn.0,
            suppress_prefix: suppress_prefix
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        }
    }

    /// With `MSISDN`, a leading `+` (after trimming) is kept and every other non-digit dropped:
    /// `"+49 01602/2222-222"` → `"+49016022222222"`. Then, with `SUPPRESS_PREFIX`, leading
    /// spaces are trimmed and that prefix removed if present (e.g. `"+"` or `"00"`).
    pub fn apply(&self, phone: &str) -> String {
        let mut phone = phone.trim().to_string();
        if self.msisdn {
            let plus = phone.starts_with('+');
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            phone = if plus { format!("+{digits}") } else { digits };
        }
        match &self.suppress_prefix {
            Some(prefix) => {
                let trimmed = phone.trim_start();
                trimmed
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(trimmed)
                    .to_string()
            }
            None => phone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalise_phone(phone: &str, msisdn: bool, suppress_prefix: Option<&str>) -> String {
        PhoneFormat::new(Flag(msisdn), suppress_prefix).apply(phone)
    }

    #[test]
    fn phone_normalisation_as_linotp() {
        assert_eq!(
            normalise_phone("+49 01602/2222-222", true, None),
            "+49016022222222"
        );
        assert_eq!(normalise_phone(" 0170 123", true, None), "0170123");
        assert_eq!(
            normalise_phone("+4917012345678", true, Some("+")),
            "4917012345678"
        );
        assert_eq!(
            normalise_phone("+49 170 1234", false, Some("+")),
            "49 170 1234"
        );
        assert_eq!(normalise_phone("0049170", false, Some("00")), "49170");
        assert_eq!(
            normalise_phone("+49(0)1234-24", false, None),
            "+49(0)1234-24"
        );
    }
}
