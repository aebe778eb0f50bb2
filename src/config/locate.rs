//! Where things are in the config file: an index of every key's span (tables and array entries
//! alike, from the TOML parser's own spans), and [`Errors`], the collector every section
//! function reports to, which turns a span or a key path into `file:line`.

use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::ConfigError;
use crate::source_location::line_col;

/// One key of the file: its path (array entries by index), where the key and its value stand.
struct Entry {
    path: Vec<String>,
    /// The dotted name as errors print it: the path without array indices.
    name: String,
    key: Range<usize>,
    value: Range<usize>,
    table: bool,
}

/// Every key of the file with its span. Built from a recovering parse, so a file with a syntax
/// error is indexed up to (and around) the error.
struct KeyIndex {
    entries: Vec<Entry>,
}

impl KeyIndex {
    fn new(text: &str) -> KeyIndex {
        let (root, _) = DeTable::parse_recoverable(text);
        let mut index = KeyIndex { entries: vec![] };
        index.table(root.get_ref(), &mut vec![], &mut vec![]);
        index.entries.sort_by_key(|e| e.key.start);
        index
    }

    fn table(&mut self, table: &DeTable<'_>, path: &mut Vec<String>, name: &mut Vec<String>) {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            name.push(key.get_ref().to_string());
            self.entries.push(Entry {
                path: path.clone(),
                name: name.join("."),
                key: key.span(),
                value: value.span(),
                table: value.get_ref().is_table(),
            });
            self.value(value.get_ref(), path, name);
            path.pop();
            name.pop();
        }
    }

    fn value(&mut self, value: &DeValue<'_>, path: &mut Vec<String>, name: &mut Vec<String>) {
        match value {
            DeValue::Table(table) => self.table(table, path, name),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    if item.get_ref().is_table() {
                        self.entries.push(Entry {
                            path: path.clone(),
                            name: name.join("."),
                            key: item.span(),
                            value: item.span(),
                            table: true,
                        });
                    }
                    self.value(item.get_ref(), path, name);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The span of the key at `path`, if the file sets it.
    fn key(&self, path: &[&str]) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|e| e.key.clone())
    }

    /// The dotted name of what stands at `offset`: the innermost key whose name or value holds
    /// it, else the table the offset falls in, else `config`.
    fn name_at(&self, offset: usize) -> String {
        let holds = |r: &Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        if let Some(e) = self
            .entries
            .iter()
            .filter(|e| holds(&e.key) || holds(&e.value))
            .max_by_key(|e| e.path.len())
        {
            return e.name.clone();
        }
        match self.entries.iter().rev().find(|e| e.key.start <= offset) {
            Some(e) if e.table => e.name.clone(),
            Some(e) => match e.name.rsplit_once('.') {
                Some((parent, _)) => parent.to_string(),
                None => "config".into(),
            },
            None => "config".into(),
        }
    }
}

/// Collects located errors for one file.
pub(super) struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    keys: OnceCell<KeyIndex>,
    pub list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Errors {
            file,
            text,
            keys: OnceCell::new(),
            list: vec![],
        }
    }

    fn keys(&self) -> &KeyIndex {
        self.keys.get_or_init(|| KeyIndex::new(self.text))
    }

    /// A problem at `span` (line 0, "unknown", when the span is empty at 0).
    pub fn at(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let line = if span.is_empty() && span.start == 0 {
            0
        } else {
            line_col(self.text, span.start).0
        };
        self.at_line(line, key, message);
    }

    /// A problem at a known line.
    pub fn at_line(&mut self, line: usize, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// A problem about a key inside the table at `table` (e.g. `["directory", "corp"]`), located
    /// at the first of `spellings` (dotted paths relative to the table) the file sets, else at
    /// `fallback` (the table's header).
    pub fn in_table(
        &mut self,
        table: &[&str],
        spellings: &[String],
        fallback: Range<usize>,
        key: String,
        message: String,
    ) {
        let span = spellings
            .iter()
            .find_map(|spelt| {
                let path: Vec<&str> = table.iter().copied().chain(spelt.split('.')).collect();
                self.keys().key(&path)
            })
            .unwrap_or(fallback);
        self.at(span, key, message);
    }

    /// A TOML error (syntax or type) at `span`, named by the key that stands there.
    pub fn toml(&mut self, span: Option<Range<usize>>, message: &str) {
        let span = span.unwrap_or(0..0);
        let key = self.keys().name_at(span.start);
        self.at(span, key, message.trim());
    }

    /// The text, for the few checks that read it (`config_json`'s line).
    pub fn text(&self) -> &'a str {
        self.text
    }
}
