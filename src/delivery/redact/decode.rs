//! The readings of a peer's text that [`super::Redactor`] searches: the text as it is, with its
//! HTML character references resolved, with its JSON string escapes resolved, and each of
//! those with percent-encoding resolved (as in a URL, and as in a form, where `+` is a space).
//!
//! A reading is a [`View`]: each character it reads, with the byte range of the original text
//! it was read from, so that a secret found in any reading blots out exactly the original
//! octets that spelled it, whatever their encoding. Searching decoded readings instead of
//! listing encoded forms covers every choice an encoder has (which characters it escapes,
//! upper- or lower-case hex, `&#228;`, `&#xE4;` or `&auml;`) with one search per reading.
//!
//! The decoders are lenient, as a peer's text is no document: what does not decode is read as
//! it stands. Only the outer encodings (HTML, JSON) are combined with the inner one (percent),
//! in that order: a gateway escapes, for its page or its JSON, a request it received encoded.

use std::ops::Range;

use super::entities::named_entity;

/// A reading of a text: its characters, each with the byte range of the text it came from.
pub type View = Vec<(char, Range<usize>)>;

/// Every reading of `text` (see the module documentation); those that would equal another
/// are left out.
pub fn readings(text: &str) -> Vec<View> {
    let plain: View = text
        .char_indices()
        .map(|(i, c)| (c, i..i + c.len_utf8()))
        .collect();
    let mut outer = vec![];
    if text.contains('&') {
        outer.push(html(&plain));
    }
    if text.contains('\\') {
        outer.push(json(&plain));
    }
    outer.push(plain);
    let mut out = Vec::with_capacity(outer.len() * 3);
    for view in outer {
        if view.iter().any(|(c, _)| *c == '%' || *c == '+') {
            out.push(percent(&view, true));
            if view.iter().any(|(c, _)| *c == '%') {
                out.push(percent(&view, false));
            }
        }
        out.push(view);
    }
    out
}

/// The source range from the first to the last of `chars`.
fn span(chars: &[(char, Range<usize>)]) -> Option<Range<usize>> {
    Some(chars.first()?.1.start..chars.last()?.1.end)
}

/// Reads one escape from the characters after its marker: the character it stands for, and
/// how many characters it took.
type Decoder = fn(&[(char, Range<usize>)]) -> Option<(char, usize)>;

/// `view` with every escape that starts at `marker` and that `decode` reads (the character
/// it stands for, and how many characters after the marker it took) resolved to that
/// character, spanning the whole escape; what does not decode stays as it is.
fn resolve(view: &[(char, Range<usize>)], marker: char, decode: Decoder) -> View {
    let mut out = Vec::with_capacity(view.len());
    let mut rest = view;
    while let Some(((c, range), after)) = rest.split_first() {
        if *c == marker
            && let Some((decoded, used)) = decode(after)
            && let Some(whole) = rest.get(..=used).and_then(span)
        {
            out.push((decoded, whole));
            rest = after.get(used..).unwrap_or_default();
            continue;
        }
        out.push((*c, range.clone()));
        rest = after;
    }
    out
}

/// HTML character references resolved: named (`&amp;`, `&auml;`; the `;` required) and
/// numeric (`&#228;`, `&#xE4;`; the `;` optional, as browsers read them).
fn html(view: &[(char, Range<usize>)]) -> View {
    resolve(view, '&', html_reference)
}

/// The character a reference after `&` stands for, and how many characters it took.
fn html_reference(after: &[(char, Range<usize>)]) -> Option<(char, usize)> {
    let chars: String = after.iter().take(34).map(|(c, _)| *c).collect();
    if let Some(number) = chars.strip_prefix('#') {
        let (radix, digits, prefix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (16, hex, 2),
            None => (10, number, 1),
        };
        let len = digits.chars().take_while(|c| c.is_digit(radix)).count();
        let value = u32::from_str_radix(digits.get(..len)?, radix).ok()?;
        let decoded = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
        let semicolon = usize::from(digits.get(len..)?.starts_with(';'));
        return Some((decoded, prefix + len + semicolon));
    }
    let (name, _) = chars.split_once(';')?;
    Some((named_entity(name)?, name.chars().count() + 1))
}

/// JSON string escapes resolved (RFC 8259 §7), a surrogate pair of `\u` escapes as one
/// character.
fn json(view: &[(char, Range<usize>)]) -> View {
    resolve(view, '\\', json_escape)
}

/// The character an escape after `\` stands for, and how many characters it took.
fn json_escape(after: &[(char, Range<usize>)]) -> Option<(char, usize)> {
    let simple = match after.first()?.0 {
        '"' => '"',
        '\\' => '\\',
        '/' => '/',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'u' => return unicode_escape(after),
        _ => return None,
    };
    Some((simple, 1))
}

/// `uXXXX`, or `uD83D\uDE00` for a character beyond the Basic Multilingual Plane.
fn unicode_escape(after: &[(char, Range<usize>)]) -> Option<(char, usize)> {
    let unit = |from: usize| -> Option<u32> {
        let hex: String = after.get(from..from + 4)?.iter().map(|(c, _)| *c).collect();
        // from_str_radix would take a sign.
        hex.chars().all(|c| c.is_ascii_hexdigit()).then_some(())?;
        u32::from_str_radix(&hex, 16).ok()
    };
    let high = unit(1)?;
    if (0xD800..0xDC00).contains(&high)
        && after.get(5).map(|(c, _)| *c) == Some('\\')
        && after.get(6).map(|(c, _)| *c) == Some('u')
        && let Some(low) = unit(7).filter(|low| (0xDC00..0xE000).contains(low))
    {
        let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return Some((char::from_u32(value)?, 11));
    }
    Some((
        char::from_u32(high).unwrap_or(char::REPLACEMENT_CHARACTER),
        5,
    ))
}

/// Percent-encoding resolved (`%C3%A4` and `%c3%a4` alike, UTF-8); `form`: `+` is a space.
fn percent(view: &[(char, Range<usize>)], form: bool) -> View {
    // First the octets, each with its source range; then the characters they spell.
    let mut octets: Vec<(u8, Range<usize>)> = Vec::with_capacity(view.len());
    let mut rest = view;
    while let Some(((c, range), after)) = rest.split_first() {
        let hex: Option<String> = after
            .get(..2)
            .map(|h| h.iter().map(|(c, _)| *c).collect())
            .filter(|h: &String| h.chars().all(|c| c.is_ascii_hexdigit()));
        if *c == '%'
            && let Some(value) = hex.and_then(|h| u8::from_str_radix(&h, 16).ok())
            && let Some(whole) = rest.get(..3).and_then(span)
        {
            octets.push((value, whole));
            rest = after.get(2..).unwrap_or_default();
            continue;
        }
        if *c == '+' && form {
            octets.push((b' ', range.clone()));
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                octets.push((b, range.clone()));
            }
        }
        rest = after;
    }
    utf8(&octets)
}

/// UTF-8 octets (with their source ranges) as characters; an octet that starts no valid
/// sequence reads as U+FFFD.
fn utf8(octets: &[(u8, Range<usize>)]) -> View {
    let mut out = Vec::with_capacity(octets.len());
    let mut rest = octets;
    while let Some(((lead, range), after)) = rest.split_first() {
        let len = match lead.leading_ones() {
            0 => 1,
            n @ 2..=4 => n as usize,
            _ => 0,
        };
        let sequence = rest.get(..len).filter(|_| len > 0);
        let decoded = sequence.and_then(|s| {
            let bytes: Vec<u8> = s.iter().map(|(b, _)| *b).collect();
            let c = std::str::from_utf8(&bytes).ok()?.chars().next()?;
            Some((c, span_of_octets(s)?))
        });
        match decoded {
            Some((c, whole)) => {
                out.push((c, whole));
                rest = rest.get(len..).unwrap_or_default();
            }
            None => {
                out.push((char::REPLACEMENT_CHARACTER, range.clone()));
                rest = after;
            }
        }
    }
    out
}

fn span_of_octets(octets: &[(u8, Range<usize>)]) -> Option<Range<usize>> {
    Some(octets.first()?.1.start..octets.last()?.1.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reading's text.
    fn texts(text: &str) -> Vec<String> {
        readings(text)
            .iter()
            .map(|v| v.iter().map(|(c, _)| *c).collect())
            .collect()
    }

    #[test]
    fn each_decoder_reads_its_encoding() {
        let read = |text: &str| texts(text);
        assert!(
            read("a&amp;b &#228; &#xE4;&#xe4 &auml; &bogus; &")
                .contains(&"a&b ä ää ä &bogus; &".into())
        );
        assert!(
            read(r#"P\u00e4sswort KEY\"with\\backslash \ud83d\ude00 \/ \q"#)
                .contains(&r#"Pässwort KEY"with\backslash 😀 / \q"#.into())
        );
        let url = read("P%C3%A4ss+w%c3%a4 %zz %");
        assert!(url.contains(&"Päss+wä %zz %".into()), "{url:?}");
        assert!(url.contains(&"Päss wä %zz %".into()), "{url:?}");
        assert!(read("%FF%C3").contains(&"\u{fffd}\u{fffd}".into()));
        assert_eq!(read("plain"), ["plain"], "nothing to decode: one reading");
    }

    #[test]
    fn a_decoded_character_keeps_its_whole_source() {
        let views = readings("x&#xE4;y");
        let html = views.iter().find(|v| v.len() == 3).unwrap();
        assert_eq!(html.get(1), Some(&('ä', 1..7)));
        let views = readings("%C3%A4");
        let url = views.iter().find(|v| v.len() == 1).unwrap();
        assert_eq!(url.first(), Some(&('ä', 0..6)));
    }
}
