//! The helpdesk's home: find a user (on enter, or as you type with the script), then the
//! user's screen: their tokens with the buttons the operator's role allows, their back-off,
//! and, for admins, "Enroll a token".

use std::fmt::Write as _;

use super::html::{esc, query_value};
use super::tokens::{Buttons, TokenView, table};

/// A user found, as the list shows them (addresses masked by the admin layer).
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// Given name and surname.
    pub name: Option<String>,
    /// Masked mobile number.
    pub mobile: Option<String>,
    /// Masked e-mail address.
    pub email: Option<String>,
}

/// Where a user's screen is: `/ui/users/local/alice` (as the API's
/// `/api/v1/users/{realm}/{user}/tokens`).
pub fn user_path(user: &str, realm: &str) -> String {
    format!(
        "{}/users/{}/{}",
        super::PREFIX,
        segment(realm),
        segment(user)
    )
}

/// `text` percent-encoded for one path segment.
pub fn segment(text: &str) -> String {
    query_value(text).replace('+', "%20")
}

/// The search form and, after a search, its results (`#results`, which the script swaps).
pub fn search_body(query: &str, found: Option<&[Found]>) -> String {
    let prefix = super::PREFIX;
    let mut out = format!(
        "<h1>Users</h1>\n<form class=\"card\" method=\"get\" action=\"{prefix}/users\" role=\"search\" data-live-search>\n\
         <label for=\"q\">Find a user <span class=\"hint\">by name or part of it; press Enter</span></label>\n\
         <div class=\"row\"><div class=\"grow\"><input type=\"search\" id=\"q\" name=\"q\" value=\"{q}\" \
         autocomplete=\"off\" spellcheck=\"false\" autofocus></div>\
         <div><button type=\"submit\">Search</button></div></div>\n</form>\n",
        q = esc(query),
    );
    out.push_str(&results(query, found));
    out
}

/// The results list alone (also the answer to the script's `partial=1`).
pub fn results(query: &str, found: Option<&[Found]>) -> String {
    let mut out = String::from("<div id=\"results\" aria-live=\"polite\">");
    match found {
        None => {}
        Some([]) => {
            let _ = write!(
                out,
                "<p class=\"card\">No user matches “{}”.</p>",
                esc(query)
            );
        }
        Some(found) => {
            let _ = write!(
                out,
                "<h2 id=\"found-h\">{} found</h2><ul class=\"results\" aria-labelledby=\"found-h\">",
                match found.len() {
                    1 => "One user".to_string(),
                    n => format!("{n} users"),
                }
            );
            for user in found {
                let detail = [&user.name, &user.mobile, &user.email]
                    .into_iter()
                    .flatten()
                    .map(|s| esc(s))
                    .collect::<Vec<_>>()
                    .join(" · ");
                let _ = write!(
                    out,
                    "<li><a href=\"{href}\"><strong class=\"login\">{login}</strong>\
                     <span class=\"detail\">@{realm}</span><span class=\"detail\">{detail}</span></a></li>",
                    href = user_path(&user.user, &user.realm),
                    login = esc(&user.user),
                    realm = esc(&user.realm),
                );
            }
            out.push_str("</ul>");
        }
    }
    out.push_str("</div>\n");
    out
}

/// A back-off row as the user's screen lists it.
#[derive(Debug, Clone)]
pub struct BackoffLine {
    /// Where from (`None`: over all origins).
    pub origin: Option<String>,
    /// Failed passwords in a row.
    pub failures: u32,
    /// Seconds until the next attempt is checked; 0: not backing off.
    pub waiting_seconds: u64,
}

/// What the user's screen shows.
pub struct UserScreen<'a> {
    /// The identity.
    pub user: &'a str,
    /// Its realm.
    pub realm: &'a str,
    /// Its tokens.
    pub tokens: &'a [TokenView],
    /// Its back-off rows.
    pub backoff: &'a [BackoffLine],
    /// The buttons the operator's role allows.
    pub buttons: Buttons,
    /// Whether the operator may enroll.
    pub may_enroll: bool,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

impl UserScreen<'_> {
    /// The screen's body.
    pub fn body(&self) -> String {
        let path = user_path(self.user, self.realm);
        let mut out = format!(
            "<p><a href=\"{}/users\">← Users</a></p>\n<h1>{} <span class=\"detail\">@{}</span></h1>\n",
            super::PREFIX,
            esc(self.user),
            esc(self.realm)
        );
        out.push_str(&self.backoff_html());
        out.push_str("<h2 id=\"tokens-h\">Tokens</h2>\n");
        out.push_str(&table(
            self.tokens,
            &format!("{path}/tokens"),
            self.buttons,
            self.csrf,
        ));
        if self.may_enroll {
            let _ = writeln!(
                out,
                "<p><a class=\"button\" href=\"{path}/enroll\">Enroll a token</a></p>"
            );
        }
        out
    }

    fn backoff_html(&self) -> String {
        let waiting: Vec<&BackoffLine> = self
            .backoff
            .iter()
            .filter(|b| b.waiting_seconds > 0)
            .collect();
        if waiting.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "<div class=\"msg error\" role=\"status\" id=\"backoff\"><strong>Backing off.</strong> ",
        );
        let lines: Vec<String> = waiting
            .iter()
            .map(|b| {
                format!(
                    "{} failed passwords {}; checked again in {}",
                    b.failures,
                    match &b.origin {
                        Some(origin) => format!("from {}", esc(origin)),
                        None => "over all origins".into(),
                    },
                    duration(b.waiting_seconds)
                )
            })
            .collect();
        out.push_str(&lines.join("; "));
        out.push_str(". “Reset” on a token ends it.</div>\n");
        out
    }
}

/// `90` → `1 min 30 s`.
pub fn duration(seconds: u64) -> String {
    match (seconds / 3600, seconds % 3600 / 60, seconds % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_link_each_user_and_escape_the_query() {
        let found = [Found {
            user: "alice".into(),
            realm: "local".into(),
            mobile: Some("+49********678".into()),
            ..Found::default()
        }];
        let html = results("ali", Some(&found));
        assert!(html.contains("href=\"/ui/users/local/alice\""), "{html}");
        assert!(html.contains("+49********678"), "{html}");
        let none = results("<x>", Some(&[]));
        assert!(none.contains("&lt;x&gt;"), "{none}");
        assert_eq!(duration(90), "1 min 30 s");
    }
}
