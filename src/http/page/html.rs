//! The page's HTML building blocks: [`esc`], the one escaping helper every value from a user,
//! an operator, the directory or the store goes through; [`Layout`], the frame of every
//! screen (head, bar, message, main); and the small pieces screens share (the CSRF field,
//! a flash message, a date).
//!
//! Why no template crate: the screens are a handful of forms and tables, and `format!` with
//! an escaping function keeps the build free of a proc-macro and the HTML next to the code
//! that fills it. The rule that makes it safe is simple to check: every `{}` that holds data
//! holds `esc(…)` (or a number, or a fixed `&'static str` of this crate).

use std::fmt::Write as _;

/// `text` with `& < > " '` replaced by their references: safe in element content and in
/// quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded for a query string value.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A message that says what happened, shown at the top of the next screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    /// It worked ("Token SMS00012 disabled").
    Ok(String),
    /// It did not, and why.
    Error(String),
    /// Something to know.
    Info(String),
}

impl Flash {
    /// The message's HTML (a live region, so a screen reader reads it out).
    pub fn html(&self) -> String {
        let (class, role, text) = match self {
            Flash::Ok(text) => ("ok", "status", text),
            Flash::Error(text) => ("error", "alert", text),
            Flash::Info(text) => ("info", "status", text),
        };
        format!(
            "<p class=\"msg {class}\" role=\"{role}\">{}</p>\n",
            esc(text)
        )
    }
}

/// The hidden field that carries the session's CSRF token in every form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC), or `–` for none.
pub fn when(unix: Option<i64>) -> String {
    match unix {
        Some(t) => crate::rfc3339::format(t).replace('T', " ").replace('Z', ""),
        None => "–".into(),
    }
}

/// Which entry of the bar is the current screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// None (login, code).
    None,
    /// User search and a user's tokens.
    Users,
    /// The audit.
    Audit,
    /// The service's state.
    State,
    /// The self-service screen.
    Mine,
}

/// The frame of a screen.
pub struct Layout<'a> {
    /// The `<title>` (and nothing else: the screen writes its own `<h1>`).
    pub title: &'a str,
    /// The logged-in person (name and role), or `None` before login.
    pub who: Option<(&'a str, &'a str)>,
    /// The session's CSRF token (for the logout form).
    pub csrf: Option<&'a str>,
    /// The bar's entries: operators see users, audit and state; self-service users their own.
    pub operator: bool,
    /// Which entry is current.
    pub nav: Nav,
    /// A message from the last action.
    pub flash: Option<Flash>,
    /// A narrow column (login screens).
    pub narrow: bool,
}

impl Layout<'_> {
    /// The whole document around `body`.
    pub fn render(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 2048);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{} · tessera</title>\n\
             <link rel=\"stylesheet\" href=\"{}/assets/tessera.css\">\n\
             <script src=\"{}/assets/tessera.js\" defer></script>\n</head>\n<body>\n\
             <a class=\"skip\" href=\"#main\">Skip to content</a>\n",
            esc(self.title),
            super::PREFIX,
            super::PREFIX,
        );
        out.push_str(&self.bar());
        let class = if self.narrow { " class=\"narrow\"" } else { "" };
        let _ = writeln!(out, "<main id=\"main\"{class}>");
        if let Some(flash) = &self.flash {
            out.push_str(&flash.html());
        }
        out.push_str(body);
        out.push_str("</main>\n<footer>tessera</footer>\n</body>\n</html>\n");
        out
    }

    fn bar(&self) -> String {
        let prefix = super::PREFIX;
        let mut out =
            format!("<header class=\"bar\">\n<a class=\"brand\" href=\"{prefix}/\">tessera</a>\n");
        let Some((name, role)) = self.who else {
            out.push_str("</header>\n");
            return out;
        };
        let entries: &[(Nav, &str, &str)] = if self.operator {
            &[
                (Nav::Users, "/users", "Users"),
                (Nav::Audit, "/audit", "Audit"),
                (Nav::State, "/state", "Service"),
            ]
        } else {
            &[(Nav::Mine, "/me", "My tokens")]
        };
        out.push_str("<nav aria-label=\"Main\"><ul>");
        for (nav, path, label) in entries {
            let current = if *nav == self.nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<li><a href=\"{prefix}{path}\"{current}>{label}</a></li>"
            );
        }
        out.push_str("</ul></nav>\n");
        let _ = writeln!(
            out,
            "<div class=\"who\"><span>{} <span class=\"badge off\">{}</span></span>\
             <form method=\"post\" action=\"{prefix}/logout\">{}<button type=\"submit\">Log out</button></form></div>",
            esc(name),
            esc(role),
            csrf_field(self.csrf.unwrap_or("")),
        );
        out.push_str("</header>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_that_could_open_markup_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("alice"), "alice");
    }

    #[test]
    fn a_flash_and_the_layout_escape_what_they_show() {
        let flash = Flash::Error("<b>no</b>".into()).html();
        assert!(flash.contains("&lt;b&gt;no&lt;/b&gt;"), "{flash}");
        let page = Layout {
            title: "Users",
            who: Some(("<eve>", "helpdesk")),
            csrf: Some("t\"k"),
            operator: true,
            nav: Nav::Users,
            flash: None,
            narrow: false,
        }
        .render("<p>body</p>");
        assert!(page.contains("&lt;eve&gt;"), "{page}");
        assert!(page.contains("value=\"t&quot;k\""), "{page}");
        assert!(!page.contains("<script>"), "no inline script: {page}");
        assert!(!page.contains("style="), "no inline style: {page}");
    }
}
