//! Text to wire: a value written in a policy (`Framed-User`, `10.0.0.1`, `0x0a0b`) becomes the
//! octets of its attribute's data type (RFC 8044 §3), and a vendor attribute is wrapped in
//! Vendor-Specific (RFC 2865 §5.26).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::load::parse_number;
use super::{AttributeDef, DataType, Dictionary, DictionaryError};
use crate::radius::codec::{Attribute, AttributeType, MAX_ATTRIBUTE_VALUE};

/// RFC 2865 §5.26: Vendor-Id (4 octets), Vendor type (1) and Vendor length (1) come before a
/// vendor attribute's value, so it holds 253 - 6 octets.
pub const MAX_VENDOR_VALUE: usize = MAX_ATTRIBUTE_VALUE - 6;

/// RFC 2868 §3: tags are 0x01..=0x1F.
const MAX_TAG: u8 = 0x1f;

impl Dictionary {
    /// Encodes `name = value` as wire attributes.
    ///
    /// `name` is an attribute name, optionally with a tag for `has_tag` attributes
    /// (`Tunnel-Private-Group-Id:1`). `value` is text in the attribute's type:
    /// - string: the text as is; octets: `0x` and hex digits, or else the text's bytes;
    /// - integer, byte, short, integer64: a decimal or `0x` number, or a `VALUE` name
    ///   (`Service-Type = Framed-User`); date: seconds since 1970;
    /// - ipaddr, ipv6addr, `ipv6prefix` (`2001:db8::/32`), ifid (`0:0:0:1`), ether
    ///   (`00:11:22:33:44:55`).
    ///
    /// A value longer than one attribute holds is split over several attributes when the
    /// attribute is `concat` (Reply-Message, EAP-Message), and an error otherwise. Encrypted
    /// attributes (Tunnel-Password, MS-MPPE keys) are refused: they must be hidden with the
    /// request's authenticator and the secret, which this function does not have.
    pub fn encode(&self, name: &str, value: &str) -> Result<Vec<Attribute>, DictionaryError> {
        let (def, tag) = self.lookup_tagged(name)?;
        if let Some(method) = def.encrypt {
            return Err(DictionaryError::Encrypted {
                attribute: def.name.clone(),
                method,
            });
        }
        let octets = encode_value(def, value, tag)?;
        let max = if def.vendor.is_some() {
            MAX_VENDOR_VALUE
        } else {
            MAX_ATTRIBUTE_VALUE
        };
        if octets.len() > max && !def.concat {
            return Err(DictionaryError::TooLong {
                attribute: def.name.clone(),
                len: octets.len(),
                max,
            });
        }
        Ok(octets.chunks(max).map(|chunk| wrap(def, chunk)).collect())
    }

    /// Encodes an assignment as FreeRADIUS writes one: `Name = value`, `Name:tag = value`, the
    /// value optionally in double quotes (with `\"` and `\\` escapes). For reply attributes
    /// configured as text, e.g. `reply = ["Filter-Id = staff", "Tunnel-Type:1 = VLAN"]`.
    pub fn encode_assignment(&self, text: &str) -> Result<Vec<Attribute>, DictionaryError> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(DictionaryError::NotAnAssignment {
                text: text.to_string(),
            });
        };
        let value = value.trim();
        let value = match value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|_| value.len() >= 2)
        {
            Some(quoted) => unquote(quoted).ok_or_else(|| DictionaryError::NotAnAssignment {
                text: text.to_string(),
            })?,
            None => value.to_string(),
        };
        self.encode(name.trim(), &value)
    }

    /// The attribute of `name` or `name:tag`.
    fn lookup_tagged(&self, name: &str) -> Result<(&AttributeDef, Option<u8>), DictionaryError> {
        let unknown = || DictionaryError::UnknownAttribute {
            name: name.to_string(),
        };
        if let Some(def) = self.attribute(name) {
            return Ok((def, None));
        }
        let (base, tag) = name.rsplit_once(':').ok_or_else(unknown)?;
        let def = self.attribute(base).ok_or_else(unknown)?;
        let tag = tag
            .parse::<u8>()
            .ok()
            .filter(|t| (1..=MAX_TAG).contains(t) && def.has_tag)
            .ok_or_else(|| DictionaryError::BadValue {
                attribute: def.name.clone(),
                data_type: def.data_type,
                value: name.to_string(),
                reason: if def.has_tag {
                    "a tag is a number in 1..=31".into()
                } else {
                    "this attribute takes no tag".into()
                },
            })?;
        Ok((def, Some(tag)))
    }
}

/// A standard attribute, or a vendor one inside Vendor-Specific.
fn wrap(def: &AttributeDef, value: &[u8]) -> Attribute {
    match def.vendor {
        None => Attribute {
            typ: AttributeType(def.number),
            value: value.to_vec(),
        },
        Some(vendor) => {
            let mut vsa = Vec::with_capacity(value.len() + 6);
            vsa.extend_from_slice(&vendor.to_be_bytes());
            vsa.push(def.number);
            // The caller keeps `value` within MAX_VENDOR_VALUE, so this fits in an octet.
            vsa.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
            vsa.extend_from_slice(value);
            Attribute {
                typ: AttributeType::VENDOR_SPECIFIC,
                value: vsa,
            }
        }
    }
}

/// The value's octets, before any splitting.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per RADIUS data type, each its RFC's encoding: a table reads best whole"
)]
fn encode_value(
    def: &AttributeDef,
    text: &str,
    tag: Option<u8>,
) -> Result<Vec<u8>, DictionaryError> {
    let bad = |reason: &str| DictionaryError::BadValue {
        attribute: def.name.clone(),
        data_type: def.data_type,
        value: text.to_string(),
        reason: reason.to_string(),
    };
    let octets = match def.data_type {
        DataType::String | DataType::Octets => {
            let mut octets = if def.data_type == DataType::Octets {
                match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                    Some(hex) => from_hex(hex).ok_or_else(|| bad("odd length or not hex"))?,
                    None => text.as_bytes().to_vec(),
                }
            } else {
                text.as_bytes().to_vec()
            };
            if octets.is_empty() {
                // RFC 2865 §5: string and octets values are at least one octet.
                return Err(bad("empty"));
            }
            if def.has_tag {
                // RFC 2868 §3: a first octet in 0x01..=0x1F is a tag; 0 means "no tag" so a
                // value that starts with such an octet is not misread.
                match tag {
                    Some(tag) => octets.insert(0, tag),
                    None if octets.first().is_some_and(|&b| b <= MAX_TAG) => octets.insert(0, 0),
                    None => {}
                }
            }
            octets
        }
        DataType::Integer | DataType::Byte | DataType::Short | DataType::Integer64 => {
            let number = def
                .value_number(text)
                .or_else(|| parse_number(text))
                .ok_or_else(|| bad("neither a number nor a VALUE name of this attribute"))?;
            if number > def.data_type.max() {
                return Err(bad("out of range"));
            }
            let octets = number.to_be_bytes();
            let width = match def.data_type {
                DataType::Byte => 1,
                DataType::Short => 2,
                DataType::Integer64 => 8,
                _ => 4,
            };
            let mut octets = octets.get(8 - width..).unwrap_or_default().to_vec();
            if def.has_tag {
                // RFC 2868 §3.1: the tag takes the first octet, the value the other three.
                if number > 0x00ff_ffff {
                    return Err(bad("a tagged integer holds 24 bits"));
                }
                if let Some(first) = octets.first_mut() {
                    *first = tag.unwrap_or(0);
                }
            }
            octets
        }
        DataType::Date => text
            .parse::<u32>()
            .map_err(|_| bad("seconds since 1970-01-01 UTC, at most 4294967295"))?
            .to_be_bytes()
            .to_vec(),
        DataType::IpAddr => text
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("not an IPv4 address"))?
            .octets()
            .to_vec(),
        DataType::Ipv6Addr => text
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address"))?
            .octets()
            .to_vec(),
        DataType::Ipv6Prefix => {
            let (address, len) = text
                .split_once('/')
                .ok_or_else(|| bad("not an IPv6 prefix like 2001:db8::/32"))?;
            let address = address
                .parse::<Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address before the '/'"))?;
            let len = len
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= 128)
                .ok_or_else(|| bad("the prefix length is 0..=128"))?;
            // RFC 8044 §3.10: bits past the prefix length are zero; only the octets the
            // prefix covers are sent (RFC 3162 §2.3: Length 4..=20).
            let bits = u128::from(address);
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            if bits & !mask != 0 {
                return Err(bad("bits are set past the prefix length"));
            }
            let covered = usize::from(len).div_ceil(8);
            let mut octets = vec![0, len];
            octets.extend_from_slice(address.octets().get(..covered).unwrap_or_default());
            octets
        }
        DataType::Ifid => {
            // RFC 3162 §2.2: four groups of up to four hex digits.
            let groups: Vec<&str> = text.split(':').collect();
            if groups.len() != 4 {
                return Err(bad("an interface id is four groups like 0:0:0:1"));
            }
            let mut octets = Vec::with_capacity(8);
            for group in groups {
                let word = (group.len() <= 4)
                    .then(|| u16::from_str_radix(group, 16).ok())
                    .flatten()
                    .filter(|_| !group.starts_with('+'))
                    .ok_or_else(|| bad("an interface id is four groups like 0:0:0:1"))?;
                octets.extend_from_slice(&word.to_be_bytes());
            }
            octets
        }
        DataType::Ether => {
            let groups: Vec<&str> = text.split([':', '-']).collect();
            let octets: Option<Vec<u8>> = (groups.len() == 6)
                .then(|| {
                    groups
                        .iter()
                        .map(|g| (g.len() == 2).then(|| from_hex(g)).flatten())
                        .map(|g| g.and_then(|v| v.first().copied()))
                        .collect()
                })
                .flatten();
            octets.ok_or_else(|| bad("a MAC address is six hex octets like 00:11:22:33:44:55"))?
        }
    };
    Ok(octets)
}

/// The text between double quotes, `\"` and `\\` unescaped; `None` for a stray quote or
/// backslash.
fn unquote(quoted: &str) -> Option<String> {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('"' | '\\') => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Hex digits to octets.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        })
        .collect()
}
