//! Text that goes to a line-oriented reader — the human log, the audit table, CLI tables —
//! with every control character escaped, so one request can never write two lines, move the
//! cursor or recolour a terminal.
//!
//! Values in logs and audit rows come from the wire (a User-Name), from directories and from
//! providers' replies. A User-Name `"mallory\n… result=\"accept\""` written raw forges a
//! second, genuine-looking log line; `ESC [` sequences rewrite what a terminal shows. Here
//! `\n`, `\r`, `\t` and NUL become `\n`, `\r`, `\t`, `\0`; any other control character
//! (C0, DEL, C1), the Unicode line and paragraph separators and the bidi overrides become
//! `\x1b`-style or `\u{202e}`-style escapes. A backslash stays as it is: the escapes are for
//! the eye, not a reversible encoding (the JSON log format keeps the exact value).
//!
//! [`HumanFields`] is the field formatter of the human log format (`--log-format human`): the
//! default one's layout (`message key=value key="str"`) with every value escaped, and quoted
//! where it could otherwise be read as more than one field: a User-Name `alice result="accept"`
//! written bare would put a second `result=` into the decision's line. A value with a space,
//! an `=` or a `"` (or none at all) is written as a quoted string with `\` and `"` escaped
//! ([`quote_field`]); a `str` field is always quoted, as the default formatter does.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// Whether `c` must not reach a line-oriented reader raw.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with control characters escaped (see the module documentation); borrowed when
/// there is nothing to escape, which is almost always.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A field's value as it goes into the human log: bare when it is one word that cannot be
/// mistaken for another field (`alice`, `42`, `CORP\alice`), else quoted with `\` and `"`
/// escaped, so a value can never end early and start a forged `key=value`.
pub fn quote_field(text: &str) -> Cow<'_, str> {
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '=' || c == '"');
    if bare {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(out)
}

/// The human log's field formatter; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct HumanFields;

impl<'w> MakeVisitor<Writer<'w>> for HumanFields {
    type Visitor = HumanVisitor<'w>;

    fn make_visitor(&self, target: Writer<'w>) -> Self::Visitor {
        HumanVisitor {
            writer: target,
            empty: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields for [`HumanFields`].
pub struct HumanVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl HumanVisitor<'_> {
    /// Writes `name=text` (or the bare text for the message), escaped, and quoted unless
    /// `quoted` says it already is.
    fn write(&mut self, field: &Field, text: &str, quoted: bool) {
        let name = field.name();
        // Metadata of events that came from the `log` crate, already shown by the formatter.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.empty) {
            ""
        } else {
            " "
        };
        let text = escape_controls(text);
        self.result = if name == "message" {
            write!(self.writer, "{separator}{text}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            let text = if quoted { text } else { quote_field(&text) };
            write!(self.writer, "{separator}{name}={text}")
        };
    }
}

impl Visit for HumanVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Strings quoted, as the default formatter does; the message bare.
        if field.name() == "message" {
            self.write(field, value, true);
        } else {
            self.write(field, &format!("{value:?}"), true);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        if source.is_some() {
            let _ = write!(text, " {}.sources=[", field.name());
            let mut first = true;
            while let Some(s) = source {
                let _ = write!(text, "{}{s}", if first { "" } else { ", " });
                first = false;
                source = s.source();
            }
            text.push(']');
        }
        self.write(field, &text, false);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"), false);
    }
}

impl VisitOutput<fmt::Result> for HumanVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for HumanVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(escape_controls("alice@corp"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\nb\rc\td\0e\x1b[31mf\x7f\u{85}g\u{2028}h\u{202e}i\\n"),
            "a\\nb\\rc\\td\\0e\\x1b[31mf\\x7f\\u{85}g\\u{2028}h\\u{202e}i\\n"
        );
        assert_eq!(escape_controls("grüße"), "grüße");
    }

    #[test]
    fn values_that_could_forge_a_field_are_quoted() {
        for bare in ["alice", "CORP\\alice", "alice@corp", "42", "-"] {
            assert_eq!(quote_field(bare), bare);
        }
        assert_eq!(
            quote_field("alice result=\"accept\""),
            "\"alice result=\\\"accept\\\"\""
        );
        assert_eq!(quote_field("a=b"), "\"a=b\"");
        assert_eq!(quote_field(""), "\"\"");
        assert_eq!(quote_field("\"a\" b=\"c\""), "\"\\\"a\\\" b=\\\"c\\\"\"");
        assert_eq!(quote_field("\"alice\""), "\"\\\"alice\\\"\"");
    }

    #[test]
    fn one_event_is_one_line() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::ErrorKind::Other)?
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Sink {
            type Writer = Sink;
            fn make_writer(&'a self) -> Sink {
                self.clone()
            }
        }

        let sink = Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .with_ansi(false)
            .fmt_fields(HumanFields)
            .finish();
        let user = "mallory\nINFO authentication user=alice result=\"accept\"\x1b[2K";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", client = %"nas\r1");
            let _entered = span.enter();
            tracing::info!(user = %user, quoted = user, reason = ?user, "decision {}", user);
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
        assert!(text.contains("user=\"mallory\\\\nINFO"), "{text}");
        assert!(text.contains("client=nas\\r1"), "{text}");
        assert!(text.contains("decision mallory\\nINFO"), "{text}");
    }
}
