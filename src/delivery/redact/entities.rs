//! HTML's named character references that a gateway's page may spell a secret with: the five
//! of XML, the 96 of ISO 8859-1 (HTML 4, `&nbsp;` to `&yuml;`), and the punctuation HTML
//! escapers commonly name. Other characters are written as numeric references by every
//! escaper in common use (PHP's `htmlentities`, Python's `xmlcharrefreplace`), which
//! `decode` reads without a table.

/// The names of U+00A0 to U+00FF, in order (HTML 4.01 §24.2).
const LATIN_1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Named references outside Latin-1 that escapers use.
const OTHERS: [(&str, char); 22] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    // HTML5 reads these upper-case spellings too.
    ("AMP", '&'),
    ("LT", '<'),
    ("GT", '>'),
    ("QUOT", '"'),
    ("apos", '\''),
    ("euro", '€'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("hellip", '…'),
    ("bull", '•'),
    ("trade", '™'),
    ("OElig", 'Œ'),
];

/// The character `&name;` stands for (names are case-sensitive, as in HTML).
pub fn named_entity(name: &str) -> Option<char> {
    if let Some((_, c)) = OTHERS.iter().find(|(n, _)| *n == name) {
        return Some(*c);
    }
    let index = LATIN_1.iter().position(|n| *n == name)?;
    char::from_u32(0xA0 + u32::try_from(index).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(named_entity("nbsp"), Some('\u{a0}'));
        assert_eq!(named_entity("auml"), Some('ä'));
        assert_eq!(named_entity("Auml"), Some('Ä'));
        assert_eq!(named_entity("szlig"), Some('ß'));
        assert_eq!(named_entity("yuml"), Some('ÿ'));
        assert_eq!(named_entity("amp"), Some('&'));
        assert_eq!(named_entity("AMP"), Some('&'));
        assert_eq!(named_entity("Amp"), None);
        assert_eq!(named_entity("bogus"), None);
    }
}
