//! [`Errors`], the collector every section function of the config reports to: it turns a span,
//! or a key path found in the file's [`KeyIndex`], into `file:line`.

use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;

use super::ConfigError;
use crate::backend::Problem;
use crate::source_location::{KeyIndex, line_col};

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

    /// A backend's problems with the keys of the table at `table` (`["directory", "corp"]`),
    /// each at the first of its key's `spellings` (dotted paths inside the table) that the file
    /// sets, else at `config_json` when the table has one (the key came from there), else at
    /// `header`, the table's own span.
    pub fn backend(
        &mut self,
        table: &[&str],
        header: Range<usize>,
        spellings: fn(&str) -> Vec<String>,
        problems: Vec<Problem>,
    ) {
        let name = table.join(".");
        for problem in problems {
            if problem.key.is_empty() {
                self.at(header.clone(), name.clone(), problem.message);
                continue;
            }
            let mut names = spellings(&problem.key);
            names.push("config_json".into());
            let span = names
                .iter()
                .find_map(|spelt| {
                    let path: Vec<&str> = table.iter().copied().chain(spelt.split('.')).collect();
                    self.keys().key(&path)
                })
                .unwrap_or(header.clone());
            self.at(span, format!("{name}.{}", problem.key), problem.message);
        }
    }

    /// A TOML error (syntax or type) at `span`, named by the key that stands there.
    pub fn toml(&mut self, span: Option<Range<usize>>, message: &str) {
        let span = span.unwrap_or(0..0);
        let key = self
            .keys()
            .name_at(&span)
            .unwrap_or_else(|| "config".into());
        self.at(span, key, message.trim());
    }

    /// The text, for the few checks that read it (`config_json`'s line).
    pub fn text(&self) -> &'a str {
        self.text
    }
}
