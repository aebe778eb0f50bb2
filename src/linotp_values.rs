//! LinOTP's values, read leniently: one reader for every backend's keys.
//!
//! LinOTP stores provider and resolver configs as JSON typed by hand in a web form, so the same
//! key turns up as `true`, `"true"` or `"True"`, as `5`, `5.0` or `"5"`, a timeout as `"3,10"`.
//! A pasted config must load unchanged, so [`Scalar`] takes any of these and its readers accept
//! every spelling LinOTP itself accepts, rejecting the rest with a message naming the value
//! (never used on a password or PIN). The provider classes use the types ([`Flag`], [`Port`],
//! [`Timeout`], [`StringMap`]) and the `deserialize_with` helpers (`port`, `seconds`,
//! `baud_rate`, `octet`); the LDAP directory reads [`Scalar`]s and collects its
//! problems itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, de};

/// A boolean: `true`/`false`, or a string `true|false|yes|no|on|off|1|0` (any case), or 0/1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(d)?;
        scalar
            .flag()
            .map(Flag)
            .ok_or_else(|| de::Error::custom(format!("{scalar} is not true or false")))
    }
}

/// A port number, as a number or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(d)?;
        scalar
            .integer()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Port)
            .ok_or_else(|| de::Error::custom(format!("{scalar} is not a port number")))
    }
}

/// A timeout in seconds: a number (`5`, `2.5`, `"5"`), or LinOTP's `"connect,read"` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// Time allowed to establish the connection.
    pub connect: Duration,
    /// Time allowed for the whole operation, connect included.
    pub total: Duration,
}

impl Timeout {
    /// The same limit for connect and the whole operation.
    pub fn secs(seconds: u64) -> Self {
        let d = Duration::from_secs(seconds);
        Timeout {
            connect: d,
            total: d,
        }
    }
}

fn within_limits(value: f64, text: &dyn fmt::Display) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value <= 3600.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "{text} is not a timeout in seconds (more than 0, at most 3600)"
        ))
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(d)?;
        let parsed = match &scalar {
            Scalar::Int(i) => within_limits(*i as f64, &scalar).map(|t| (t, t)),
            Scalar::Float(f) => within_limits(*f, &scalar).map(|t| (t, t)),
            Scalar::Str(s) => match s.split_once(',') {
                // requests' (connect, read): the read limit applies after connecting.
                Some((connect, read)) => {
                    let number = |x: &str| x.trim().parse::<f64>().map_err(|_| scalar.to_string());
                    match (number(connect), number(read)) {
                        (Ok(c), Ok(r)) => within_limits(c, &scalar)
                            .and_then(|c| within_limits(r, &scalar).map(|r| (c, c + r))),
                        _ => Err(format!(
                            "{scalar} is not a timeout (seconds, or \"connect,read\")"
                        )),
                    }
                }
                None => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{scalar} is not a timeout in seconds"))
                    .and_then(|v| within_limits(v, &scalar))
                    .map(|t| (t, t)),
            },
            Scalar::Bool(_) => Err(format!("{scalar} is not a timeout in seconds")),
        };
        parsed
            .map(|(connect, total)| Timeout { connect, total })
            .map_err(de::Error::custom)
    }
}

/// A table of string values (`PARAMETER`, `HEADERS`): numbers and booleans become strings.
///
/// Its `Debug` shows only the keys, because values are often gateway passwords or API keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StringMap(pub BTreeMap<String, String>);

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "***")))
            .finish()
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
        Ok(StringMap(
            raw.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Scalar::Str(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// Any scalar a LinOTP JSON value may be.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true`.
    Bool(bool),
    /// `5`.
    Int(i64),
    /// `2.5`.
    Float(f64),
    /// `"True"`, `"5"`, `"3,10"`.
    Str(String),
}

impl Scalar {
    /// As a boolean: `true`/`false`, 0/1, or a string `true|false|yes|no|on|off|1|0` (any
    /// case; empty is false). `None` for anything else.
    pub fn flag(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Int(0) => Some(false),
            Scalar::Int(1) => Some(true),
            Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" | "" => Some(false),
                _ => None,
            },
            Scalar::Int(_) | Scalar::Float(_) => None,
        }
    }

    /// As a whole number: a number, or a string of one.
    pub fn integer(&self) -> Option<i64> {
        match self {
            Scalar::Int(n) => Some(*n),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Float(_) | Scalar::Bool(_) => None,
        }
    }

    /// As finite numbers: a number, or a string of numbers separated by `separator` (LinOTP's
    /// `"3,10"` timeouts, `"3;5"` LDAP timeouts).
    pub fn numbers(&self, separator: char) -> Option<Vec<f64>> {
        let parts = match self {
            Scalar::Int(i) => vec![*i as f64],
            Scalar::Float(f) => vec![*f],
            Scalar::Str(s) => s
                .split(separator)
                .map(|part| part.trim().parse::<f64>().ok())
                .collect::<Option<Vec<f64>>>()?,
            Scalar::Bool(_) => return None,
        };
        parts.iter().all(|f| f.is_finite()).then_some(parts)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => write!(f, "{s:?}"),
        }
    }
}

fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
    d: D,
    what: &str,
    min: i64,
    max: i64,
) -> Result<T, D::Error> {
    let value = Scalar::deserialize(d)?;
    value
        .integer()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            let text = match &value {
                Scalar::Str(s) => s.trim().to_string(),
                other => other.to_string(),
            };
            D::Error::custom(format!("{text:?} is not {what} ({min}..={max})"))
        })
}

/// A TCP port, `2775` or `"2775"` (read by [`Port`], as every provider reads it).
pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Port::deserialize(d).map(|p| p.0)
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
/// [`Timeout`]; the whole operation's limit.
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Timeout::deserialize(d).map(|t| t.total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Keys {
        flag: Option<Flag>,
        port: Option<Port>,
        timeout: Option<Timeout>,
        map: Option<StringMap>,
    }

    fn parse(toml_text: &str) -> Result<Keys, String> {
        toml::from_str(toml_text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn flags_in_every_linotp_spelling() {
        for (text, want) in [
            ("true", true),
            ("\"True\"", true),
            ("\"1\"", true),
            ("1", true),
            ("false", false),
            ("\"FALSE\"", false),
            ("\"\"", false),
        ] {
            let k = parse(&format!("flag = {text}")).unwrap();
            assert_eq!(k.flag, Some(Flag(want)), "{text}");
        }
        assert!(parse("flag = \"maybe\"").is_err());
    }

    #[test]
    fn ports_and_timeouts() {
        assert_eq!(parse("port = \"5100\"").unwrap().port, Some(Port(5100)));
        assert!(parse("port = 70000").is_err());
        let t = parse("timeout = \"3,10\"").unwrap().timeout.unwrap();
        assert_eq!(t.connect, Duration::from_secs(3));
        assert_eq!(t.total, Duration::from_secs(13));
        let t = parse("timeout = 2.5").unwrap().timeout.unwrap();
        assert_eq!(t.total, Duration::from_millis(2500));
        assert_eq!(
            parse("timeout = \"5\"").unwrap().timeout,
            Some(Timeout::secs(5))
        );
        assert!(parse("timeout = 0").is_err());
        assert!(parse("timeout = \"soon\"").is_err());
    }

    #[test]
    fn string_map_stringifies_and_hides_values() {
        let k = parse("map = { user = \"gw\", password = \"hunter2\", id = 42 }").unwrap();
        let map = k.map.unwrap();
        assert_eq!(map.0["id"], "42");
        let debug = format!("{map:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("password"), "{debug}");
    }

    mod helpers {
        use super::*;

        #[derive(Deserialize, Debug)]
        struct T {
            #[serde(deserialize_with = "port")]
            port: u16,
            #[serde(deserialize_with = "seconds")]
            timeout: Duration,
        }

        fn parse(s: &str) -> Result<T, String> {
            toml::from_str::<T>(s).map_err(|e| e.message().to_string())
        }

        #[test]
        fn numbers_and_strings_both_work() {
            let t = parse("port = 2775\ntimeout = 2.5").unwrap();
            assert_eq!((t.port, t.timeout), (2775, Duration::from_millis(2500)));
            let t = parse("port = \"2775\"\ntimeout = \"5\"").unwrap();
            assert_eq!((t.port, t.timeout), (2775, Duration::from_secs(5)));
        }

        #[test]
        fn bad_values_are_named() {
            let e = parse("port = \"smpp-port\"\ntimeout = 5").unwrap_err();
            assert!(e.contains("\"smpp-port\" is not a port"), "{e}");
            let e = parse("port = 70000\ntimeout = 5").unwrap_err();
            assert!(e.contains("70000 is not a port"), "{e}");
            let e = parse("port = 1\ntimeout = 0").unwrap_err();
            assert!(e.contains("is not a timeout in seconds"), "{e}");
        }
    }
}
