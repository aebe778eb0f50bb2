//! Reading dictionary files: FreeRADIUS's line format, `$INCLUDE` relative to the including
//! file, every bad line reported as `file:line: problem` (the way ripgrep reports its config).
//!
//! Supported: `ATTRIBUTE name number type [flags]` (also the old form with a vendor name last),
//! `VALUE attribute name number`, `VENDOR name number [format=1,1]`, `BEGIN-VENDOR name`,
//! `END-VENDOR name`, `$INCLUDE file` and `$INCLUDE- file` (optional). Comments start with `#`.
//! Not supported, and reported as such: TLVs, extended attributes (RFC 6929), vendor formats
//! other than one-octet type and length.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::{AttributeDef, DataType, Dictionary, DictionaryError, LineError};
use crate::radius::codec::AttributeType;

/// Includes nested deeper than this are an error (a loop through symlinks, say).
const MAX_DEPTH: usize = 32;

/// The files of `dictionaries/`, built into the binary for configs that name no dictionary.
/// `builtin_matches_the_directory` (tests) keeps this list equal to the directory.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "dictionary",
        include_str!("../../../dictionaries/dictionary"),
    ),
    (
        "dictionary.rfc2865",
        include_str!("../../../dictionaries/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../../dictionaries/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2868",
        include_str!("../../../dictionaries/dictionary.rfc2868"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../../dictionaries/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc3162",
        include_str!("../../../dictionaries/dictionary.rfc3162"),
    ),
    (
        "dictionary.rfc3579",
        include_str!("../../../dictionaries/dictionary.rfc3579"),
    ),
    (
        "dictionary.rfc5997",
        include_str!("../../../dictionaries/dictionary.rfc5997"),
    ),
    (
        "dictionary.cisco",
        include_str!("../../../dictionaries/dictionary.cisco"),
    ),
    (
        "dictionary.microsoft",
        include_str!("../../../dictionaries/dictionary.microsoft"),
    ),
    (
        "dictionary.fortinet",
        include_str!("../../../dictionaries/dictionary.fortinet"),
    ),
    (
        "dictionary.juniper",
        include_str!("../../../dictionaries/dictionary.juniper"),
    ),
    (
        "dictionary.paloalto",
        include_str!("../../../dictionaries/dictionary.paloalto"),
    ),
];

/// The directory shown in errors about the built-in files.
pub const BUILTIN_DIR: &str = "<built-in>";

/// Loads `path` and its includes from the file system.
pub fn load_files(path: &Path) -> Result<Dictionary, Vec<DictionaryError>> {
    load_with(path, &mut |p: &Path| std::fs::read_to_string(p))
}

/// Loads the built-in copy of `dictionaries/`.
pub fn load_builtin() -> Result<Dictionary, Vec<DictionaryError>> {
    let dir = Path::new(BUILTIN_DIR);
    load_with(&dir.join("dictionary"), &mut |p: &Path| {
        BUILTIN
            .iter()
            .find(|(name, _)| p.parent() == Some(dir) && p.file_name() == Some(name.as_ref()))
            .map(|(_, text)| (*text).to_string())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    })
}

/// Loads `top` and its includes, reading files with `read`.
pub fn load_with(
    top: &Path,
    read: &mut dyn FnMut(&Path) -> std::io::Result<String>,
) -> Result<Dictionary, Vec<DictionaryError>> {
    let top = normalize(top);
    let text = match read(&top) {
        Ok(text) => text,
        Err(source) => return Err(vec![DictionaryError::Read { file: top, source }]),
    };
    let mut loader = Loader {
        read,
        dictionary: Dictionary::default(),
        errors: vec![],
        loaded: HashSet::new(),
        attribute_sites: HashMap::new(),
        vendors: HashMap::new(),
    };
    loader.loaded.insert(top.clone());
    loader.file(&top, &text, 0);
    if loader.errors.is_empty() {
        Ok(loader.dictionary)
    } else {
        Err(loader.errors)
    }
}

/// Resolves `.` and `..` by name (as a shell's `cd` does), so that `./a`, `x/../a` and `a` are
/// one file.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

struct Loader<'r> {
    read: &'r mut dyn FnMut(&Path) -> std::io::Result<String>,
    dictionary: Dictionary,
    errors: Vec<DictionaryError>,
    /// Files already read: a second `$INCLUDE` of one is skipped, so loops end.
    loaded: HashSet<PathBuf>,
    /// Where each attribute name (lower-cased) was defined, for duplicate errors.
    attribute_sites: HashMap<String, String>,
    /// Vendors by lower-cased name: (number, name as written, where defined).
    vendors: HashMap<String, (u32, String, String)>,
}

/// The file and line being read.
#[derive(Clone, Copy)]
struct Site<'a> {
    file: &'a Path,
    line: usize,
}

impl Site<'_> {
    fn describe(self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

impl Loader<'_> {
    fn error(&mut self, site: Site<'_>, problem: LineError) {
        self.errors.push(DictionaryError::Line {
            file: site.file.to_path_buf(),
            line: site.line,
            problem,
        });
    }

    fn file(&mut self, path: &Path, text: &str, depth: usize) {
        // The vendor block open in this file: (name, number, line of BEGIN-VENDOR).
        let mut block: Option<(String, u32, usize)> = None;
        for (index, raw) in text.lines().enumerate() {
            let site = Site {
                file: path,
                line: index + 1,
            };
            let line = raw.split('#').next().unwrap_or_default();
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((&keyword, args)) = fields.split_first() else {
                continue;
            };
            let result = match keyword {
                "ATTRIBUTE" => self.attribute(site, args, block.as_ref().map(|b| b.1)),
                "VALUE" => self.value(args),
                "VENDOR" => self.vendor(site, args),
                "BEGIN-VENDOR" => self.begin_vendor(args, &mut block, site.line),
                "END-VENDOR" => end_vendor(args, &mut block),
                "$INCLUDE" | "$INCLUDE-" => {
                    self.include(site, args, keyword == "$INCLUDE-", depth);
                    Ok(())
                }
                other => Err(LineError::UnknownKeyword(other.to_string())),
            };
            if let Err(problem) = result {
                self.error(site, problem);
            }
        }
        if let Some((name, _, line)) = block {
            self.error(Site { file: path, line }, LineError::UnclosedVendor(name));
        }
    }

    fn include(&mut self, site: Site<'_>, args: &[&str], optional: bool, depth: usize) {
        let [name] = args else {
            self.error(
                site,
                LineError::FieldCount {
                    keyword: "$INCLUDE",
                    expected: "one file name",
                    found: args.len(),
                },
            );
            return;
        };
        if depth >= MAX_DEPTH {
            self.error(site, LineError::IncludeDepth(MAX_DEPTH));
            return;
        }
        let base = site.file.parent().unwrap_or(Path::new(""));
        let path = normalize(&base.join(name));
        if !self.loaded.insert(path.clone()) {
            return;
        }
        match (self.read)(&path) {
            Ok(text) => self.file(&path, &text, depth + 1),
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.error(
                site,
                LineError::Include {
                    path,
                    reason: e.to_string(),
                },
            ),
        }
    }

    fn vendor(&mut self, site: Site<'_>, args: &[&str]) -> Result<(), LineError> {
        let (name, number, format) = match args {
            [name, number] => (name, number, None),
            [name, number, format] => (name, number, Some(format)),
            _ => {
                return Err(LineError::FieldCount {
                    keyword: "VENDOR",
                    expected: "a name and a number",
                    found: args.len(),
                });
            }
        };
        if let Some(format) = format {
            let spec = format.strip_prefix("format=").unwrap_or(format);
            if spec != "1,1" {
                return Err(LineError::VendorFormat((*format).to_string()));
            }
        }
        let number = parse_number(number)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| LineError::BadNumber {
                what: "vendor number",
                text: (*number).to_string(),
                range: "1..=4294967295",
            })?;
        let key = name.to_ascii_lowercase();
        if let Some((_, _, first)) = self.vendors.get(&key) {
            return Err(LineError::Duplicate {
                kind: "vendor",
                name: (*name).to_string(),
                first: first.clone(),
            });
        }
        self.vendors
            .insert(key, (number, (*name).to_string(), site.describe()));
        self.dictionary
            .vendors
            .entry(number)
            .or_insert_with(|| (*name).to_string());
        Ok(())
    }

    fn begin_vendor(
        &mut self,
        args: &[&str],
        block: &mut Option<(String, u32, usize)>,
        line: usize,
    ) -> Result<(), LineError> {
        let [name] = args else {
            return Err(LineError::FieldCount {
                keyword: "BEGIN-VENDOR",
                expected: "a vendor name",
                found: args.len(),
            });
        };
        let Some((number, written, _)) = self.vendors.get(&name.to_ascii_lowercase()) else {
            return Err(LineError::UnknownVendor((*name).to_string()));
        };
        if let Some((outer, _, _)) = block {
            return Err(LineError::NestedVendor {
                outer: outer.clone(),
                inner: (*name).to_string(),
            });
        }
        *block = Some((written.clone(), *number, line));
        Ok(())
    }

    fn attribute(
        &mut self,
        site: Site<'_>,
        args: &[&str],
        block_vendor: Option<u32>,
    ) -> Result<(), LineError> {
        let (name, number, data_type, rest) = match args {
            [name, number, data_type] => (name, number, data_type, None),
            [name, number, data_type, rest] => (name, number, data_type, Some(*rest)),
            _ => {
                return Err(LineError::FieldCount {
                    keyword: "ATTRIBUTE",
                    expected: "a name, a number, a type and optional flags",
                    found: args.len(),
                });
            }
        };
        // The old form `ATTRIBUTE name number type Vendor` names the vendor last.
        let mut vendor = block_vendor;
        let mut flags = rest;
        if let Some(last) = rest
            && block_vendor.is_none()
            && let Some(&(number, _, _)) = self.vendors.get(&last.to_ascii_lowercase())
        {
            vendor = Some(number);
            flags = None;
        }
        let number = parse_number(number)
            .and_then(|n| u8::try_from(n).ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| LineError::BadNumber {
                what: "attribute number",
                text: (*number).to_string(),
                range: "1..=255",
            })?;
        if vendor.is_none() && AttributeType(number) == AttributeType::VENDOR_SPECIFIC {
            // Vendor-Specific itself may be declared (as octets), nothing else at 26.
            if !name.eq_ignore_ascii_case("Vendor-Specific") {
                return Err(LineError::VendorSpecificRedefined(number));
            }
        }
        let data_type = DataType::from_name(data_type)
            .ok_or_else(|| LineError::UnknownType((*data_type).to_string()))?;
        let mut def = AttributeDef {
            name: (*name).to_string(),
            vendor,
            number,
            data_type,
            has_tag: false,
            encrypt: None,
            concat: false,
            values: Default::default(),
            numbers: Default::default(),
        };
        for flag in flags.into_iter().flat_map(|f| f.split(',')) {
            match flag {
                "has_tag" => def.has_tag = true,
                "concat" => def.concat = true,
                "encrypt=1" => def.encrypt = Some(1),
                "encrypt=2" => def.encrypt = Some(2),
                "encrypt=3" => def.encrypt = Some(3),
                other => return Err(LineError::UnknownFlag(other.to_string())),
            }
        }
        if def.has_tag && !matches!(data_type, DataType::String | DataType::Integer) {
            return Err(LineError::TagOnType(data_type));
        }
        let key = name.to_ascii_lowercase();
        if let Some(first) = self.attribute_sites.get(&key) {
            return Err(LineError::Duplicate {
                kind: "attribute",
                name: (*name).to_string(),
                first: first.clone(),
            });
        }
        self.attribute_sites.insert(key, site.describe());
        self.dictionary.insert(def);
        Ok(())
    }

    fn value(&mut self, args: &[&str]) -> Result<(), LineError> {
        let [attribute, name, number] = args else {
            return Err(LineError::FieldCount {
                keyword: "VALUE",
                expected: "an attribute, a name and a number",
                found: args.len(),
            });
        };
        let def = self
            .dictionary
            .attribute_mut(attribute)
            .ok_or_else(|| LineError::ValueForUnknown((*attribute).to_string()))?;
        if !def.data_type.is_numeric() {
            return Err(LineError::ValueForType {
                attribute: def.name.clone(),
                data_type: def.data_type,
            });
        }
        let max = def.data_type.max();
        let number =
            parse_number(number)
                .filter(|&n| n <= max)
                .ok_or_else(|| LineError::BadNumber {
                    what: "value",
                    text: (*number).to_string(),
                    range: match def.data_type {
                        DataType::Byte => "0..=255",
                        DataType::Short => "0..=65535",
                        DataType::Integer64 => "0..=18446744073709551615",
                        _ => "0..=4294967295",
                    },
                })?;
        let key = name.to_ascii_lowercase();
        match def.numbers.get(&key) {
            // The same definition twice is harmless (files merged from several sources).
            Some(&known) if known == number => return Ok(()),
            Some(&known) => {
                return Err(LineError::ValueConflict {
                    attribute: def.name.clone(),
                    name: (*name).to_string(),
                    number: known,
                });
            }
            None => {}
        }
        def.numbers.insert(key, number);
        def.values
            .entry(number)
            .or_insert_with(|| (*name).to_string());
        Ok(())
    }
}

fn end_vendor(args: &[&str], block: &mut Option<(String, u32, usize)>) -> Result<(), LineError> {
    let [name] = args else {
        return Err(LineError::FieldCount {
            keyword: "END-VENDOR",
            expected: "a vendor name",
            found: args.len(),
        });
    };
    match block {
        Some((open, _, _)) if open.eq_ignore_ascii_case(name) => {
            *block = None;
            Ok(())
        }
        _ => Err(LineError::EndVendor {
            open: block.as_ref().map(|b| b.0.clone()),
            found: (*name).to_string(),
        }),
    }
}

/// A decimal or `0x` hexadecimal number.
pub(super) fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}
