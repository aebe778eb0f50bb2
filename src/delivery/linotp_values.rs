//! Lenient readers for provider keys whose values LinOTP users write as strings.
//!
//! LinOTP stores provider configuration as JSON, and its documented examples quote numbers
//! (`"port": "2775"`, `"source_addr_ton": "5"`, `"MSISDN": "true"`). A user pasting such a
//! config must not have to retype it, so these `deserialize_with` helpers accept a number (or
//! boolean) and the same value as a string. The error names the value, never a secret: none of
//! these helpers is used on a password or PIN.
//! Ports, timeouts and booleans are read by the shared [`super::keys`] types; the line speed
//! and the SMPP TON/NPI octets, which only these providers have, are read here.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};

/// A number or the same number as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Integer(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl NumberOrString {
    fn text(&self) -> String {
        match self {
            NumberOrString::Integer(n) => n.to_string(),
            NumberOrString::Float(f) => f.to_string(),
            NumberOrString::Bool(b) => b.to_string(),
            NumberOrString::Text(s) => s.trim().to_string(),
        }
    }
}

fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
    d: D,
    what: &str,
    min: i64,
    max: i64,
) -> Result<T, D::Error> {
    let value = NumberOrString::deserialize(d)?;
    let n = match &value {
        NumberOrString::Integer(n) => Some(*n),
        NumberOrString::Text(s) => s.trim().parse::<i64>().ok(),
        NumberOrString::Float(_) | NumberOrString::Bool(_) => None,
    };
    n.filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            D::Error::custom(format!("{:?} is not {what} ({min}..={max})", value.text()))
        })
}

/// A TCP port, `2775` or `"2775"` (read by [`super::keys::Port`], as every provider reads it).
pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    super::keys::Port::deserialize(d).map(|p| p.0)
}

/// A serial line speed, `115200` or `"115200"`.
pub fn baud_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integer(d, "a baud rate", 50, 4_000_000)
}

/// An SMPP type of number or numbering plan, `1` or `"1"` (SMPP 3.4 §5.2.5/§5.2.6 define
/// 0..=6 for TON and up to 18 for NPI; both are one octet). The config names the key.
pub fn octet<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    integer(d, "a TON/NPI value", 0, 255)
}

/// Seconds as a number or string (`5`, `2.5`, `"5"`, LinOTP's `"connect,read"`), read by
/// [`super::keys::Timeout`]; the whole operation's limit.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    super::keys::Timeout::deserialize(d).map(|t| t.total)
}

/// A boolean, `true` or `"true"`/`"1"`/`"yes"` (and their negatives), read by
/// [`super::keys::Flag`].
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    super::keys::Flag::deserialize(d).map(|f| f.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "port")]
        port: u16,
        #[serde(deserialize_with = "seconds")]
        timeout: Duration,
        #[serde(deserialize_with = "boolean")]
        flag: bool,
    }

    fn parse(s: &str) -> Result<T, String> {
        toml::from_str::<T>(s).map_err(|e| e.message().to_string())
    }

    #[test]
    fn numbers_and_strings_both_work() {
        let t = parse("port = 2775\ntimeout = 2.5\nflag = true").unwrap();
        assert_eq!(
            (t.port, t.timeout, t.flag),
            (2775, Duration::from_millis(2500), true)
        );
        let t = parse("port = \"2775\"\ntimeout = \"5\"\nflag = \"0\"").unwrap();
        assert_eq!(
            (t.port, t.timeout, t.flag),
            (2775, Duration::from_secs(5), false)
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("port = \"smpp-port\"\ntimeout = 5\nflag = true").unwrap_err();
        assert!(e.contains("\"smpp-port\" is not a port"), "{e}");
        let e = parse("port = 70000\ntimeout = 5\nflag = true").unwrap_err();
        assert!(e.contains("70000 is not a port"), "{e}");
        let e = parse("port = 1\ntimeout = 0\nflag = true").unwrap_err();
        assert!(e.contains("is not a timeout in seconds"), "{e}");
    }
}
