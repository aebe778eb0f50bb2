//! Wire to text, for logs: `Service-Type = Framed-User`, `Cisco-AVPair = "shell:priv-lvl=15"`.
//!
//! The attributes come from hostile packets, so every value is read through slices that cannot
//! overrun and anything that does not fit its type is printed as hex. Passwords and encrypted
//! attributes print as `***`, whatever the dictionary files say about User-Password.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{AttributeDef, DataType, Dictionary};
use crate::radius::codec::{Attribute, AttributeType, Reader};

impl Dictionary {
    /// `Name = value` for an attribute; `Attr-N = 0x…` when the dictionary does not know it.
    /// A Vendor-Specific attribute prints each vendor attribute inside it, comma-separated.
    pub fn describe(&self, attribute: &Attribute) -> String {
        // Whatever the dictionary says, these never reach a log (RFC 2865 §5.2, §5.3).
        if attribute.typ == AttributeType::USER_PASSWORD
            || attribute.typ == AttributeType::CHAP_PASSWORD
        {
            let name = self.name_of(attribute.typ).map(str::to_string);
            return format!(
                "{} = ***",
                name.unwrap_or_else(|| attribute_name(attribute.typ))
            );
        }
        if attribute.typ == AttributeType::VENDOR_SPECIFIC
            && let Some(text) = self.describe_vendor_specific(&attribute.value)
        {
            return text;
        }
        match self.standard(attribute.typ) {
            Some(def) => format!(
                "{} = {}",
                tagged_name(def, &attribute.value),
                value(def, &attribute.value)
            ),
            None => format!(
                "{} = {}",
                attribute_name(attribute.typ),
                hex(&attribute.value)
            ),
        }
    }

    /// Every attribute of a packet, comma-separated, in wire order.
    pub fn describe_all(&self, attributes: &[Attribute]) -> String {
        let parts: Vec<String> = attributes.iter().map(|a| self.describe(a)).collect();
        parts.join(", ")
    }

    /// RFC 2865 §5.26: Vendor-Id, then (type, length, value) triples. `None` when the value
    /// is not laid out that way; the caller then prints it as opaque octets.
    fn describe_vendor_specific(&self, vsa: &[u8]) -> Option<String> {
        let mut reader = Reader::new(vsa);
        let vendor = u32::from_be_bytes(reader.take_array::<4>()?);
        let mut parts = vec![];
        if !reader.any_left() {
            return None;
        }
        while reader.any_left() {
            let number = reader.u8()?;
            let len = usize::from(reader.u8()?);
            let inner = reader.take(len.checked_sub(2)?)?;
            parts.push(match self.vendor_attribute(vendor, number) {
                Some(def) => format!("{} = {}", tagged_name(def, inner), value(def, inner)),
                None => {
                    let vendor_name = self
                        .vendor_name(vendor)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("Vendor-{vendor}"));
                    format!("{vendor_name}-Attr-{number} = {}", hex(inner))
                }
            });
        }
        Some(parts.join(", "))
    }
}

fn attribute_name(typ: AttributeType) -> String {
    typ.name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("Attr-{}", typ.0))
}

/// The name, with `:tag` when a tagged attribute carries one (RFC 2868 §3).
fn tagged_name(def: &AttributeDef, octets: &[u8]) -> String {
    match tag(def, octets) {
        Some(t) if t > 0 => format!("{}:{t}", def.name),
        _ => def.name.clone(),
    }
}

/// The tag octet of a tagged value, if it has one.
fn tag(def: &AttributeDef, octets: &[u8]) -> Option<u8> {
    if !def.has_tag {
        return None;
    }
    let first = *octets.first()?;
    match def.data_type {
        DataType::Integer => Some(first),
        _ if first <= 0x1f => Some(first),
        _ => None,
    }
}

/// A value as text in its type, or hex when it does not fit the type.
fn value(def: &AttributeDef, octets: &[u8]) -> String {
    if def.is_secret() {
        return "***".into();
    }
    let octets = match (def.data_type, tag(def, octets)) {
        // RFC 2868 §3.1: a tagged integer is the tag and 24 bits of value.
        (DataType::Integer, Some(_)) => {
            let mut widened = vec![0];
            widened.extend_from_slice(octets.get(1..).unwrap_or_default());
            return number(def, &widened);
        }
        (_, Some(_)) => octets.get(1..).unwrap_or_default(),
        _ => octets,
    };
    match def.data_type {
        DataType::String => match std::str::from_utf8(octets) {
            Ok(text) => format!("{text:?}"),
            Err(_) => hex(octets),
        },
        DataType::Octets => hex(octets),
        DataType::IpAddr => <[u8; 4]>::try_from(octets)
            .map(|a| Ipv4Addr::from(a).to_string())
            .unwrap_or_else(|_| hex(octets)),
        DataType::Ipv6Addr => <[u8; 16]>::try_from(octets)
            .map(|a| Ipv6Addr::from(a).to_string())
            .unwrap_or_else(|_| hex(octets)),
        DataType::Ipv6Prefix => prefix(octets).unwrap_or_else(|| hex(octets)),
        DataType::Integer | DataType::Byte | DataType::Short | DataType::Integer64 => {
            number(def, octets)
        }
        DataType::Date => <[u8; 4]>::try_from(octets)
            .map(|a| u32::from_be_bytes(a).to_string())
            .unwrap_or_else(|_| hex(octets)),
        DataType::Ifid => match <[u8; 8]>::try_from(octets) {
            Ok(a) => a
                .chunks(2)
                .map(|w| format!("{:x}", w.iter().fold(0u16, |n, &b| (n << 8) | u16::from(b))))
                .collect::<Vec<_>>()
                .join(":"),
            Err(_) => hex(octets),
        },
        DataType::Ether => match <[u8; 6]>::try_from(octets) {
            Ok(a) => a
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            Err(_) => hex(octets),
        },
    }
}

/// A big-endian number of the type's width, by its VALUE name when it has one.
fn number(def: &AttributeDef, octets: &[u8]) -> String {
    let width = match def.data_type {
        DataType::Byte => 1,
        DataType::Short => 2,
        DataType::Integer64 => 8,
        _ => 4,
    };
    if octets.len() != width {
        return hex(octets);
    }
    let n = octets.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
    match def.value_name(n) {
        Some(name) => name.to_string(),
        None => n.to_string(),
    }
}

/// RFC 3162 §2.3: reserved, prefix length, then the prefix's octets.
fn prefix(octets: &[u8]) -> Option<String> {
    let mut reader = Reader::new(octets);
    reader.u8()?;
    let len = reader.u8()?;
    let rest = reader.rest();
    if len > 128 || rest.len() > 16 {
        return None;
    }
    let mut address = [0u8; 16];
    address.get_mut(..rest.len())?.copy_from_slice(rest);
    Some(format!("{}/{len}", Ipv6Addr::from(address)))
}

fn hex(octets: &[u8]) -> String {
    let mut out = String::with_capacity(2 + octets.len() * 2);
    out.push_str("0x");
    for b in octets {
        let _ = write!(out, "{b:02x}");
    }
    out
}
