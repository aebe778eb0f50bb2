//! The page's answers: a screen in its frame for a logged-in session ([`screen`]), a redirect
//! with a message after a form ([`done`]), and what a refusal of the admin layer's extractors
//! becomes here: no session or an expired one goes to the login screen, anything else is an
//! error screen saying why (the admin API would answer the same refusal as JSON).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::assets::{html, see_other};
use super::flash;
use super::html::{Flash, Layout, Nav};
use crate::admin::Role;
use crate::http::admin::answer::ApiError;
use crate::http::admin::guard::Operator;

/// A screen for `operator`, with the message the request carries (which is then cleared).
pub fn screen(
    operator: &Operator,
    headers: &HeaderMap,
    title: &str,
    nav: Nav,
    body: &str,
) -> Response {
    screen_with(operator, flash::read(headers), title, nav, body, headers)
}

/// The same with a message of its own (an action answered on the spot).
pub fn screen_with(
    operator: &Operator,
    message: Option<Flash>,
    title: &str,
    nav: Nav,
    body: &str,
    headers: &HeaderMap,
) -> Response {
    let session = &operator.session;
    let who = format!("{}@{}", session.user, session.realm);
    let page = Layout {
        title,
        who: Some((&who, session.role.as_str())),
        csrf: Some(&session.csrf),
        operator: session.role != Role::SelfService,
        nav,
        flash: message,
        narrow: false,
    }
    .render(body);
    let mut response = html(StatusCode::OK, page);
    if flash::cookie(headers, flash::COOKIE).is_some() {
        flash::add(response.headers_mut(), &flash::clear());
    }
    response
}

/// After a form: to `location`, with `message` for the next screen.
pub fn done(location: &str, message: &Flash) -> Response {
    let mut response = see_other(location);
    flash::add(response.headers_mut(), &flash::set(message));
    response
}

/// What a refusal becomes on the page.
pub fn refused(error: ApiError) -> Response {
    match error.status {
        StatusCode::UNAUTHORIZED => done(
            &format!("{}/login", super::PREFIX),
            &Flash::Info(error.message),
        ),
        status => error_screen(status, &error.message),
    }
}

/// A screen that says what went wrong, without the session's frame.
pub fn error_screen(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<h1>{}</h1>\n<p class=\"card\"><a href=\"{}/\">Back to the start</a></p>\n",
        super::html::esc(title),
        super::PREFIX
    );
    let page = Layout {
        title,
        who: None,
        csrf: None,
        operator: false,
        nav: Nav::None,
        flash: Some(Flash::Error(message.to_string())),
        narrow: true,
    }
    .render(&body);
    html(status, page)
}
