//! The helpdesk's home: find a user (on enter, or as you type with the script), then the
//! user's screen: their tokens with the buttons the operator's role allows, their back-off,
//! and, for admins, "Enroll a token" and "Hand out an imported token".

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::assets::html;
use super::calls;
use super::forms;
use super::html::{Flash, Nav, esc, query_value};
use super::respond::{done, error_screen, refused, screen, screen_with};
use super::secret::Shown;
use super::tokens::{Buttons, table};
use super::views::{BackoffLine, Found, SessionLine, TokenView};
use crate::admin::Action;
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::fields::Fields;
use crate::http::admin::guard::{Operator, Posted};

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
    /// Its accounting sessions, open ones first.
    pub sessions: &'a [SessionLine],
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
            // Handing out a fob that was imported unassigned (issue 29).
            let _ = writeln!(
                out,
                "<form class=\"card row\" method=\"post\" action=\"{path}/assign\">{csrf}\
                 <div class=\"grow\"><label for=\"assign-serial\">Hand out an imported token \
                 <span class=\"hint\">its serial, printed on the fob</span></label>\
                 <input type=\"text\" id=\"assign-serial\" name=\"serial\" required spellcheck=\"false\"></div>\
                 <div><button type=\"submit\">Assign</button></div></form>",
                csrf = super::html::csrf_field(self.csrf),
            );
        }
        out.push_str(&super::sessions::table(self.sessions));
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

/// `GET /ui/users?q=` (`&partial=1`: only the results list, for the script's search as you
/// type).
pub async fn search(
    operator: Result<Operator, ApiError>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let query = Fields::from_query(uri.query());
    let q = query.get("q").unwrap_or("").trim();
    let found = if q.is_empty() {
        None
    } else {
        match calls::find_users(operator.clone(), q).await {
            Ok(found) => Some(found),
            Err(error) => return refused(error),
        }
    };
    if query.get("partial") == Some("1") {
        return html(StatusCode::OK, results(q, found.as_deref()));
    }
    let mut body = search_body(q, found.as_deref());
    if operator.role().allows(Action::Enroll) {
        body.push_str(&format!(
            "<p><a class=\"button quiet\" href=\"{}/import\">Import tokens from a seed file</a></p>\n",
            super::PREFIX
        ));
    }
    screen(&operator, &headers, "Users", Nav::Users, &body)
}

/// The buttons `operator`'s role allows.
fn buttons(operator: &Operator) -> Buttons {
    let role = operator.role();
    Buttons {
        toggle: role.allows(Action::EnableDisable),
        disable_only: false,
        reset: role.allows(Action::Reset),
        resync: role.allows(Action::Resync),
        describe: role.allows(Action::Describe),
        remove: role.allows(Action::Remove),
    }
}

/// `GET /ui/users/{realm}/{user}`.
pub async fn user(
    State(shared): State<Arc<AdminShared>>,
    operator: Result<Operator, ApiError>,
    Path((realm, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let found = match calls::user_tokens(&shared, operator.clone(), &realm, &user).await {
        Ok(found) => found,
        Err(error) => return refused(error),
    };
    let sessions =
        match calls::user_sessions(&shared, operator.clone(), &found.realm, &found.user).await {
            Ok(sessions) => sessions,
            Err(error) => return refused(error),
        };
    let body = UserScreen {
        user: &found.user,
        realm: &found.realm,
        tokens: &found.tokens,
        backoff: &found.backoff,
        sessions: &sessions,
        buttons: buttons(&operator),
        may_enroll: operator.role().allows(Action::Enroll),
        csrf: &operator.session.csrf,
    }
    .body();
    screen(&operator, &headers, &found.user, Nav::Users, &body)
}

/// `GET /ui/users/{realm}/{user}/tokens/{serial}/{step}`: the form an action needs first
/// (`resync`, `describe`) or the confirmation of a removal.
pub async fn token_form(
    State(shared): State<Arc<AdminShared>>,
    operator: Result<Operator, ApiError>,
    Path((realm, user, serial, step)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let (needed, title) = match step.as_str() {
        "resync" => (Action::Resync, "Resync"),
        "describe" => (Action::Describe, "Describe"),
        "remove" => (Action::Remove, "Remove"),
        _ => return error_screen(StatusCode::NOT_FOUND, "no such screen"),
    };
    if let Err(error) = operator.require(needed) {
        return refused(error);
    }
    let found = match calls::user_tokens(&shared, operator.clone(), &realm, &user).await {
        Ok(found) => found,
        Err(error) => return refused(error),
    };
    let Some(token) = found.tokens.iter().find(|t| t.serial == serial) else {
        return error_screen(
            StatusCode::NOT_FOUND,
            &format!("{} has no token {serial}", found.user),
        );
    };
    let path = user_path(&found.user, &found.realm);
    let csrf = &operator.session.csrf;
    let body = match step.as_str() {
        "resync" => forms::resync(&path, &token.serial, csrf),
        "describe" => forms::describe(&path, &token.serial, &token.description, csrf),
        _ => forms::confirm_remove(&path, &found.user, &token.serial, csrf),
    };
    screen(&operator, &headers, title, Nav::Users, &body)
}

/// `POST /ui/users/{realm}/{user}/tokens/{serial}/{action}`: the change through the admin
/// API, then the user's screen with what happened.
pub async fn token_action(
    State(shared): State<Arc<AdminShared>>,
    Path((realm, user, serial, action)): Path<(String, String, String, String)>,
    posted: Result<Posted, ApiError>,
) -> Response {
    let Posted { operator, fields } = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let back = user_path(&user, &realm);
    let (api_action, said) = match action.as_str() {
        "enable" => ("enable", format!("Token {serial} enabled")),
        "disable" => ("disable", format!("Token {serial} disabled")),
        "reset" => (
            "reset",
            format!("Token {serial} reset: fail counter 0, back-off ended"),
        ),
        "resync" => ("resync", format!("Token {serial} resynchronised")),
        "describe" => (
            "description",
            format!("Description of token {serial} saved"),
        ),
        "remove" => ("remove", format!("Token {serial} removed")),
        _ => return error_screen(StatusCode::NOT_FOUND, "no such action"),
    };
    if action == "remove" && fields.get("confirmed") != Some("1") {
        // Not yet confirmed (no script): ask first.
        if let Err(error) = operator.require(Action::Remove) {
            return refused(error);
        }
        let body = forms::confirm_remove(&back, &user, &serial, &operator.session.csrf);
        return screen_with(
            &operator,
            None,
            "Remove",
            Nav::Users,
            &body,
            &HeaderMap::new(),
        );
    }
    match calls::change(&shared, operator, &serial, api_action, fields).await {
        Ok(()) => done(&back, &Flash::Ok(said)),
        Err(error) if error.status == StatusCode::UNAUTHORIZED => refused(error),
        Err(error) => done(&back, &Flash::Error(format!("{serial}: {}", error.message))),
    }
}

/// `POST /ui/users/{realm}/{user}/assign` (`serial`): an unassigned token handed to the user
/// through the admin API's `assign`, then the user's screen with what happened.
pub async fn assign(
    State(shared): State<Arc<AdminShared>>,
    Path((realm, user)): Path<(String, String)>,
    posted: Result<Posted, ApiError>,
) -> Response {
    let Posted { operator, fields } = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let back = user_path(&user, &realm);
    let serial = fields.get("serial").unwrap_or("").trim().to_string();
    let owner = format!("{user}@{realm}");
    let request = Fields::from_pairs([("user", owner.as_str())]);
    match calls::change(&shared, operator, &serial, "assign", request).await {
        Ok(()) => done(
            &back,
            &Flash::Ok(format!("Token {serial} assigned to {user}")),
        ),
        Err(error) if error.status == StatusCode::UNAUTHORIZED => refused(error),
        Err(error) => done(&back, &Flash::Error(format!("{serial}: {}", error.message))),
    }
}

/// `GET /ui/users/{realm}/{user}/enroll` (admins).
pub async fn enroll_form(
    operator: Result<Operator, ApiError>,
    Path((realm, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let operator = match operator.and_then(|o| o.require(Action::Enroll).map(|()| o)) {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let body = forms::enroll(&user_path(&user, &realm), &user, &operator.session.csrf);
    screen(&operator, &headers, "Enroll", Nav::Users, &body)
}

/// `POST /ui/users/{realm}/{user}/enroll`: the token through the admin API, and its secret
/// on this answer only.
pub async fn enroll(
    State(shared): State<Arc<AdminShared>>,
    Path((realm, user)): Path<(String, String)>,
    posted: Result<Posted, ApiError>,
) -> Response {
    let Posted { operator, fields } = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let back = user_path(&user, &realm);
    let request = Fields::from_pairs([
        ("type", fields.get("type").unwrap_or("totp")),
        ("user", &format!("{user}@{realm}")),
        ("description", fields.get("description").unwrap_or("")),
    ]);
    match calls::enroll(&shared, operator.clone(), request).await {
        Ok(made) => {
            let shown = Shown {
                serial: &made.serial,
                uri: &made.uri,
                base32: &made.secret,
                qr_svg: made.qr_svg.as_deref(),
            };
            let body = format!(
                "<p><a href=\"{back}\">← {user}</a></p>\n<h1>Token {serial} enrolled for {user}</h1>\n{}",
                shown.html(),
                user = esc(&user),
                serial = esc(&made.serial),
            );
            let message = Flash::Ok(format!("Token {} enrolled for {user}", made.serial));
            screen_with(
                &operator,
                Some(message),
                "Enrolled",
                Nav::Users,
                &body,
                &HeaderMap::new(),
            )
        }
        Err(error) if error.status == StatusCode::UNAUTHORIZED => refused(error),
        Err(error) => done(&back, &Flash::Error(error.message)),
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
