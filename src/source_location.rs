//! Where in a text a byte offset is, for error messages that name `file:line` (the config, the
//! users file, dictionaries), and [`KeyIndex`]: which TOML key stands where.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// 1-based (line, column) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    (line, col)
}

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
pub struct KeyIndex {
    entries: Vec<Entry>,
}

impl KeyIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> KeyIndex {
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
    pub fn key(&self, path: &[&str]) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|e| e.key.clone())
    }

    /// The dotted name of what stands at `span` (a parser's error span): the innermost key
    /// whose name or value holds all of it, else the table the span falls in; `None` before
    /// the first key, for a span around everything and for none (`0..0`).
    pub fn name_at(&self, span: &Range<usize>) -> Option<String> {
        if *span == (0..0) {
            return None; // what serde reports for a missing key: no place at all
        }
        let end = span.end.max(span.start + 1);
        let within = |r: &Range<usize>| r.start <= span.start && end <= r.end.max(r.start + 1);
        if let Some(e) = self
            .entries
            .iter()
            .filter(|e| within(&e.key) || within(&e.value))
            .max_by_key(|e| e.path.len())
        {
            return Some(e.name.clone());
        }
        if span.start == 0 && span.end > 0 {
            return None;
        }
        match self
            .entries
            .iter()
            .rev()
            .find(|e| e.key.start <= span.start)?
        {
            e if e.table => Some(e.name.clone()),
            e => e
                .name
                .rsplit_once('.')
                .map(|(parent, _)| parent.to_string()),
        }
    }
}
