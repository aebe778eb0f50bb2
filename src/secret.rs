//! [`Secret`]: bytes that must never reach a log — passwords, OTPs, seeds, shared secrets.
//!
//! `Debug` and `Display` print `***`, so a struct holding a `Secret` can be logged with `?`.
//! Comparison is constant-time.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value. Its contents are reachable only through [`Secret::expose`].
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret bytes. Call sites are easy to audit with `grep expose`.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8, when it is.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s.into_bytes())
    }
}

/// Every secret in the configuration (a client's `secret`, `bind_password`, `PASSWORD`,
/// `SMTP_PASSWORD`, `mailpassword`, `password`, a modem's `PIN` …) is a `Secret`, so this is
/// the one place that reads them. serde's own type error echoes the value
/// (`invalid type: integer `987654321012`, expected a string`), and a config error goes to the
/// terminal, the journal and a CI log: here a value of the wrong type is named by its kind only.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(SecretVisitor)
    }
}

/// Reads a string; any other value is refused without repeating it.
struct SecretVisitor;

impl SecretVisitor {
    /// The error for a value of kind `found` (never the value itself).
    fn refuse<E: serde::de::Error>(found: &str) -> Result<Secret, E> {
        Err(E::custom(format_args!(
            "expected a string in quotes, found {found} (not shown: it is a secret)"
        )))
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Self::refuse("a boolean")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<Secret, E> {
        Self::refuse("an integer")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Self::refuse("a number")
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Self::refuse("bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23 (9): a secret given as another type is refused without its value.
    #[test]
    fn a_secret_of_the_wrong_type_is_refused_without_its_value() {
        #[derive(Debug, serde::Deserialize)]
        struct Holder {
            #[allow(dead_code)]
            secret: Secret,
        }
        for (value, kind) in [
            ("987654321012", "an integer"),
            ("-987654321012", "an integer"),
            ("98765.4321", "a number"),
            ("true", "a boolean"),
        ] {
            let error = toml::from_str::<Holder>(&format!("secret = {value}"))
                .unwrap_err()
                .message()
                .to_string();
            assert_eq!(
                error,
                format!("expected a string in quotes, found {kind} (not shown: it is a secret)")
            );
        }
        let error = toml::from_str::<Holder>("secret = [\"987654321012\"]").unwrap_err();
        assert!(!error.message().contains("987654321012"), "{error}");
        let holder: Holder = toml::from_str("secret = \"987654321012\"").unwrap();
        assert_eq!(holder.secret, Secret::from("987654321012"));
    }

    #[test]
    fn never_prints() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s, Secret::from("hunter2"));
        assert_ne!(s, Secret::from("hunter3"));
    }
}
