//! Value types for LinOTP provider keys, read leniently.
//!
//! LinOTP stores provider configs as JSON typed by hand in a web form, so the same key turns up
//! as `true`, `"true"` or `"True"`, as `5`, `5.0` or `"5"`. A pasted config must load unchanged,
//! so these types accept every spelling LinOTP itself accepts and reject the rest with a message
//! naming the value. They are shared by all provider classes' config structs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// A boolean: `true`/`false`, or a string `true|false|yes|no|on|off|1|0` (any case), or 0/1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Bool(b) => Ok(Flag(b)),
            Scalar::Int(0) => Ok(Flag(false)),
            Scalar::Int(1) => Ok(Flag(true)),
            Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Flag(true)),
                "false" | "no" | "off" | "0" | "" => Ok(Flag(false)),
                _ => Err(de::Error::custom(format!("{s:?} is not true or false"))),
            },
            other => Err(de::Error::custom(format!("{other} is not true or false"))),
        }
    }
}

/// A port number, as a number or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let scalar = Scalar::deserialize(d)?;
        let number = match &scalar {
            Scalar::Int(i) => Some(*i),
            Scalar::Str(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        number
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

fn seconds(value: f64, text: &dyn fmt::Display) -> Result<Duration, String> {
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
            Scalar::Int(i) => seconds(*i as f64, &scalar).map(|t| (t, t)),
            Scalar::Float(f) => seconds(*f, &scalar).map(|t| (t, t)),
            Scalar::Str(s) => match s.split_once(',') {
                // requests' (connect, read): the read limit applies after connecting.
                Some((connect, read)) => {
                    let number = |x: &str| x.trim().parse::<f64>().map_err(|_| scalar.to_string());
                    match (number(connect), number(read)) {
                        (Ok(c), Ok(r)) => seconds(c, &scalar)
                            .and_then(|c| seconds(r, &scalar).map(|r| (c, c + r))),
                        _ => Err(format!(
                            "{scalar} is not a timeout (seconds, or \"connect,read\")"
                        )),
                    }
                }
                None => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{scalar} is not a timeout in seconds"))
                    .and_then(|v| seconds(v, &scalar))
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
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
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
}
