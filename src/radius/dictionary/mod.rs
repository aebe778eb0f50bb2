//! RADIUS dictionaries in FreeRADIUS's format: attribute names, numbers and data types, loaded
//! at start from `dictionaries/` (or the copy built into the binary).
//!
//! The dictionary turns names into wire attributes and back:
//! - [`Dictionary::encode`] makes the attributes for `Filter-Id = staff`, `Service-Type =
//!   Framed-User` or `Fortinet-Group-Name = vpn-users`, typed by the dictionary (RFC 2865 §5,
//!   RFC 8044 data types), vendor attributes wrapped in Vendor-Specific (RFC 2865 §5.26);
//! - [`Dictionary::describe`] prints an attribute by name for logs, and never the value of a
//!   password or an encrypted attribute.
//!
//! Files are read by [`load`]. Only this layer knows the dictionary: policies hand it names and
//! text values, and the engine never sees a RADIUS type.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod describe;
mod encode;
pub mod load;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use super::codec::AttributeType;

/// The data type of an attribute (FreeRADIUS names; RFC 8044 §3 defines most).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `string`: text, 1..=253 octets (RFC 8044 §3.5).
    String,
    /// `octets`: binary, 1..=253 octets (RFC 8044 §3.6).
    Octets,
    /// `ipaddr`: an IPv4 address, 4 octets (RFC 8044 §3.8).
    IpAddr,
    /// `ipv6addr`: an IPv6 address, 16 octets (RFC 8044 §3.9).
    Ipv6Addr,
    /// `ipv6prefix`: reserved octet, prefix length, prefix (RFC 3162 §2.3, RFC 8044 §3.10).
    Ipv6Prefix,
    /// `integer`: 32 bits, big-endian (RFC 8044 §3.1).
    Integer,
    /// `date`: seconds since 1970-01-01 UTC, 32 bits (RFC 8044 §3.4).
    Date,
    /// `byte`: 8 bits.
    Byte,
    /// `short`: 16 bits, big-endian.
    Short,
    /// `integer64`: 64 bits, big-endian (RFC 8044 §3.3).
    Integer64,
    /// `ifid`: an IPv6 interface identifier, 8 octets (RFC 8044 §3.7).
    Ifid,
    /// `ether`: an Ethernet (MAC) address, 6 octets.
    Ether,
}

impl DataType {
    /// The type for a dictionary type name.
    pub fn from_name(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "string" => DataType::String,
            "octets" => DataType::Octets,
            "ipaddr" => DataType::IpAddr,
            "ipv6addr" => DataType::Ipv6Addr,
            "ipv6prefix" => DataType::Ipv6Prefix,
            "integer" => DataType::Integer,
            "date" => DataType::Date,
            "byte" => DataType::Byte,
            "short" => DataType::Short,
            "integer64" => DataType::Integer64,
            "ifid" => DataType::Ifid,
            "ether" => DataType::Ether,
            _ => return None,
        })
    }

    /// The dictionary name of the type.
    pub fn name(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Octets => "octets",
            DataType::IpAddr => "ipaddr",
            DataType::Ipv6Addr => "ipv6addr",
            DataType::Ipv6Prefix => "ipv6prefix",
            DataType::Integer => "integer",
            DataType::Date => "date",
            DataType::Byte => "byte",
            DataType::Short => "short",
            DataType::Integer64 => "integer64",
            DataType::Ifid => "ifid",
            DataType::Ether => "ether",
        }
    }

    /// Whether `VALUE` lines may name this type's values.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DataType::Integer | DataType::Byte | DataType::Short | DataType::Integer64
        )
    }

    /// The largest number the type holds.
    fn max(self) -> u64 {
        match self {
            DataType::Byte => u64::from(u8::MAX),
            DataType::Short => u64::from(u16::MAX),
            DataType::Integer64 => u64::MAX,
            _ => u64::from(u32::MAX),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `ATTRIBUTE` line, with the `VALUE` names that belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// The name as written in the dictionary.
    pub name: String,
    /// The vendor (SMI private enterprise number) for a vendor attribute, `None` for a
    /// standard one.
    pub vendor: Option<u32>,
    /// The attribute type, or the vendor type inside Vendor-Specific.
    pub number: u8,
    /// The data type.
    pub data_type: DataType,
    /// `has_tag` (RFC 2868 §3): a tag octet may precede the value.
    pub has_tag: bool,
    /// `encrypt=N`: the value is hidden with the shared secret (1: as User-Password, 2: as
    /// Tunnel-Password, 3: Ascend's). Such values are never printed and never sent in clear.
    pub encrypt: Option<u8>,
    /// `concat`: a long value is split over several attributes, which the receiver joins.
    pub concat: bool,
    /// `VALUE` names by number (the first name given to a number).
    values: BTreeMap<u64, String>,
    /// `VALUE` numbers by lower-cased name.
    numbers: HashMap<String, u64>,
}

impl AttributeDef {
    /// The number a `VALUE` name stands for (case-insensitive).
    pub fn value_number(&self, name: &str) -> Option<u64> {
        self.numbers.get(&name.to_ascii_lowercase()).copied()
    }

    /// The `VALUE` name of a number.
    pub fn value_name(&self, number: u64) -> Option<&str> {
        self.values.get(&number).map(String::as_str)
    }

    /// Whether the value must never be printed.
    pub fn is_secret(&self) -> bool {
        self.encrypt.is_some()
            || (self.vendor.is_none()
                && (AttributeType(self.number) == AttributeType::USER_PASSWORD
                    || AttributeType(self.number) == AttributeType::CHAP_PASSWORD))
    }
}

/// Why a dictionary could not be loaded, or a value not encoded.
#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    /// A dictionary line is wrong.
    #[error("{}:{line}: {problem}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineError,
    },
    /// The top dictionary file could not be read.
    #[error("cannot read dictionary {}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No attribute has this name.
    #[error("unknown attribute {name:?}")]
    UnknownAttribute {
        /// The name asked for.
        name: String,
    },
    /// The text is not a value of the attribute's type.
    #[error("{attribute}: {value:?} is not a valid {data_type} value: {reason}")]
    BadValue {
        /// The attribute.
        attribute: String,
        /// Its type.
        data_type: DataType,
        /// The text given.
        value: String,
        /// Why it does not fit.
        reason: String,
    },
    /// The value is longer than one attribute holds, and the attribute may not be split.
    #[error("{attribute}: a value of {len} octets does not fit in one attribute (at most {max})")]
    TooLong {
        /// The attribute.
        attribute: String,
        /// The encoded length.
        len: usize,
        /// The most one attribute holds.
        max: usize,
    },
    /// Text that is not `Name = value`.
    #[error("{text:?} is not an assignment like `Filter-Id = staff`")]
    NotAnAssignment {
        /// The text.
        text: String,
    },
    /// The attribute is hidden with the shared secret, which [`Dictionary::encode`] does not do.
    #[error("{attribute} is encrypted (encrypt={method}); tessera does not send it")]
    Encrypted {
        /// The attribute.
        attribute: String,
        /// The `encrypt=` method.
        method: u8,
    },
}

/// What is wrong with a dictionary line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The first word is not a keyword we know.
    #[error(
        "unknown keyword {0:?} (known: ATTRIBUTE, VALUE, VENDOR, BEGIN-VENDOR, END-VENDOR, $INCLUDE)"
    )]
    UnknownKeyword(String),
    /// Too few or too many fields.
    #[error("{keyword} needs {expected}, found {found} field(s)")]
    FieldCount {
        /// The keyword.
        keyword: &'static str,
        /// What it needs.
        expected: &'static str,
        /// How many fields followed the keyword.
        found: usize,
    },
    /// A number is malformed or out of range.
    #[error("{what} {text:?} is not a number in {range}")]
    BadNumber {
        /// Which number.
        what: &'static str,
        /// The text.
        text: String,
        /// The allowed range.
        range: &'static str,
    },
    /// The data type is unknown or not supported.
    #[error(
        "unknown data type {0:?} (known: string, octets, ipaddr, ipv6addr, ipv6prefix, integer, date, byte, short, integer64, ifid, ether)"
    )]
    UnknownType(String),
    /// A flag is unknown.
    #[error("unknown flag {0:?} (known: has_tag, encrypt=1|2|3, concat)")]
    UnknownFlag(String),
    /// `has_tag` on a type that cannot carry a tag.
    #[error("has_tag is allowed on string and integer attributes only, not {0}")]
    TagOnType(DataType),
    /// A name is defined twice.
    #[error("{kind} {name:?} is already defined at {first}")]
    Duplicate {
        /// "attribute" or "vendor".
        kind: &'static str,
        /// The name.
        name: String,
        /// `file:line` of the first definition.
        first: String,
    },
    /// A `VALUE` name given two different numbers.
    #[error("VALUE {name} of {attribute} is already defined as {number}")]
    ValueConflict {
        /// The attribute.
        attribute: String,
        /// The value name.
        name: String,
        /// The number it has.
        number: u64,
    },
    /// `VALUE` names an attribute not defined before it.
    #[error("VALUE for {0:?}, which is not defined (define the ATTRIBUTE first)")]
    ValueForUnknown(String),
    /// `VALUE` for an attribute that is not a number.
    #[error("VALUE for {attribute:?}, which is {data_type}, not a number type")]
    ValueForType {
        /// The attribute.
        attribute: String,
        /// Its type.
        data_type: DataType,
    },
    /// A vendor name that no `VENDOR` line defined.
    #[error("unknown vendor {0:?} (define it with VENDOR first)")]
    UnknownVendor(String),
    /// A vendor format other than 1,1.
    #[error("vendor format {0:?} is not supported (only format=1,1: one-octet type and length)")]
    VendorFormat(String),
    /// `BEGIN-VENDOR` inside another.
    #[error("BEGIN-VENDOR {inner} inside BEGIN-VENDOR {outer}")]
    NestedVendor {
        /// The open block.
        outer: String,
        /// The new one.
        inner: String,
    },
    /// `END-VENDOR` that closes nothing, or another vendor.
    #[error("END-VENDOR {found} does not close {}", open.as_deref().unwrap_or("any BEGIN-VENDOR"))]
    EndVendor {
        /// The open block, if any.
        open: Option<String>,
        /// The vendor named.
        found: String,
    },
    /// A `BEGIN-VENDOR` block that the file does not close.
    #[error("BEGIN-VENDOR {0} is not closed by END-VENDOR before the end of the file")]
    UnclosedVendor(String),
    /// An included file could not be read.
    #[error("cannot read included file {}: {reason}", path.display())]
    Include {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Includes nested too deeply.
    #[error("$INCLUDE nested more than {0} deep")]
    IncludeDepth(usize),
    /// A standard attribute number that tessera itself must own.
    #[error(
        "attribute number {0} is Vendor-Specific; define vendor attributes inside BEGIN-VENDOR"
    )]
    VendorSpecificRedefined(u8),
}

/// The loaded dictionaries.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    attributes: Vec<AttributeDef>,
    /// Index into `attributes` by lower-cased name.
    by_name: HashMap<String, usize>,
    /// Index into `attributes` by (vendor, number); vendor 0 is the standard space. The first
    /// name defined for a number is the one printed.
    by_number: HashMap<(u32, u8), usize>,
    /// Vendor names by number.
    vendors: BTreeMap<u32, String>,
}

impl Dictionary {
    /// Loads a dictionary file and everything it includes. Every bad line is reported.
    pub fn load(path: &Path) -> Result<Dictionary, Vec<DictionaryError>> {
        load::load_files(path)
    }

    /// The dictionaries shipped in `dictionaries/`, as built into the binary: used when the
    /// config names no dictionary.
    pub fn builtin() -> Result<Dictionary, Vec<DictionaryError>> {
        load::load_builtin()
    }

    /// The attribute of a name (case-insensitive, as in FreeRADIUS).
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .and_then(|&i| self.attributes.get(i))
    }

    /// The standard attribute of a type.
    pub fn standard(&self, typ: AttributeType) -> Option<&AttributeDef> {
        self.by_number
            .get(&(0, typ.0))
            .and_then(|&i| self.attributes.get(i))
    }

    /// A vendor's attribute.
    pub fn vendor_attribute(&self, vendor: u32, number: u8) -> Option<&AttributeDef> {
        self.by_number
            .get(&(vendor, number))
            .and_then(|&i| self.attributes.get(i))
    }

    /// The name of a standard attribute type.
    pub fn name_of(&self, typ: AttributeType) -> Option<&str> {
        self.standard(typ).map(|a| a.name.as_str())
    }

    /// A vendor's name.
    pub fn vendor_name(&self, vendor: u32) -> Option<&str> {
        self.vendors.get(&vendor).map(String::as_str)
    }

    /// How many attributes are defined.
    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    /// Whether no attribute is defined.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Adds an attribute; the loader has checked that the name is new.
    fn insert(&mut self, def: AttributeDef) {
        let index = self.attributes.len();
        self.by_name.insert(def.name.to_ascii_lowercase(), index);
        self.by_number
            .entry((def.vendor.unwrap_or(0), def.number))
            .or_insert(index);
        self.attributes.push(def);
    }

    /// Mutable access for `VALUE` lines.
    fn attribute_mut(&mut self, name: &str) -> Option<&mut AttributeDef> {
        let index = *self.by_name.get(&name.to_ascii_lowercase())?;
        self.attributes.get_mut(index)
    }
}
