//! The way in: the login screen (user and directory password), then the code screen (the
//! engine's challenge message: "sms submitted to +49********678", or the authenticator app),
//! then the operator's home or the user's own tokens. Both rounds go through tessera's own
//! engine, as every RADIUS login does: the same policies, back-off and audit.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::assets::{html, see_other};
use super::flash;
use super::html::{Flash, Layout, Nav, esc};
use super::respond::{done, refused};
use crate::admin::Role;
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::api_audit;
use crate::http::admin::guard::{AdminCaller, Operator, Posted, Unauthenticated};
use crate::http::admin::login::{LoginAnswer, LoginInput, login_step};
use crate::http::admin::session::Found;

fn layout(title: &str, flash: Option<Flash>) -> Layout<'_> {
    Layout {
        title,
        who: None,
        csrf: None,
        operator: false,
        nav: Nav::None,
        flash,
        narrow: true,
    }
}

/// The first screen: user and password.
pub fn password_screen(user: &str, flash: Option<Flash>) -> String {
    let prefix = super::PREFIX;
    let body = format!(
        "<h1>Sign in</h1>\n<p class=\"lead\">Helpdesk and self-service for tessera.</p>\n\
         <form class=\"card stack\" method=\"post\" action=\"{prefix}/login\">\n\
         <div><label for=\"user\">User name</label>\
         <input type=\"text\" id=\"user\" name=\"user\" value=\"{user}\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required autofocus></div>\n\
         <div><label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required></div>\n\
         <div><button type=\"submit\">Continue</button></div>\n</form>\n",
        user = esc(user),
    );
    layout("Sign in", flash).render(&body)
}

/// The second screen: the challenge's message and the code. The engine's State stays on the
/// server, in the pending login behind the cookie.
pub fn code_screen(message: &str, flash: Option<Flash>) -> String {
    let prefix = super::PREFIX;
    let body = format!(
        "<h1>Enter your code</h1>\n<p class=\"lead\" id=\"challenge\">{message}</p>\n\
         <form class=\"card stack\" method=\"post\" action=\"{prefix}/login/code\">\n\
         <div><label for=\"code\">Code <span class=\"hint\">from the message, or from your authenticator app</span></label>\
         <input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" pattern=\"[0-9]*\" required autofocus></div>\n\
         <div><button type=\"submit\">Sign in</button> <a href=\"{prefix}/login\">Start over</a></div>\n</form>\n",
        message = esc(message),
    );
    layout("Enter your code", flash).render(&body)
}

/// Where a session starts: operators at the user search, self-service at their own tokens.
pub fn home(role: Role) -> String {
    match role {
        Role::SelfService => format!("{}/me", super::PREFIX),
        Role::Helpdesk | Role::Admin => format!("{}/users", super::PREFIX),
    }
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /` and `GET /ui/`: the home of a session, else the login screen.
pub async fn start(operator: Result<Operator, ApiError>) -> Response {
    match operator {
        Ok(operator) => see_other(&home(operator.role())),
        Err(error) if error.status == StatusCode::NOT_FOUND => error.into_response(),
        Err(_) => see_other(&format!("{}/login", super::PREFIX)),
    }
}

/// `GET /ui/login`.
pub async fn password_form(
    operator: Result<Operator, ApiError>,
    caller: Result<AdminCaller, ApiError>,
    headers: HeaderMap,
) -> Response {
    if let Ok(operator) = operator {
        return see_other(&home(operator.role()));
    }
    if let Err(error) = caller {
        return refused(error);
    }
    let message = flash::read(&headers);
    let mut response = html(StatusCode::OK, password_screen("", message));
    flash::add(response.headers_mut(), &flash::clear());
    response
}

/// `POST /ui/login`: the first step, then the code screen (or the home, when the password
/// and code came together).
pub async fn password_posted(
    State(shared): State<Arc<AdminShared>>,
    request: Result<Unauthenticated, ApiError>,
) -> Response {
    let Unauthenticated { caller, fields } = match request {
        Ok(request) => request,
        Err(error) => return refused(error),
    };
    let user = fields.get("user").unwrap_or_default().to_string();
    let input = LoginInput::Password {
        user: user.clone(),
        password: fields.secret("password").unwrap_or_else(|| "".into()),
    };
    match login_step(&shared, &caller, input).await {
        LoginAnswer::LoggedIn { session, cookie } => {
            with_cookie(see_other(&home(session.role)), Some(cookie))
        }
        LoginAnswer::Challenge { cookie, .. } => with_cookie(
            see_other(&format!("{}/login/code", super::PREFIX)),
            Some(cookie),
        ),
        LoginAnswer::Refused {
            status,
            message,
            cookie,
        } => with_cookie(
            html(status, password_screen(&user, Some(Flash::Error(message)))),
            cookie,
        ),
    }
}

/// `GET /ui/login/code`: the pending login's challenge message, and the code field.
pub async fn code_form(
    State(shared): State<Arc<AdminShared>>,
    caller: Result<AdminCaller, ApiError>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(error) => return refused(error),
    };
    let pending = caller
        .cookie
        .as_deref()
        .map(|id| shared.sessions.find(id, caller.live.limits()));
    match pending {
        Some(Found::Pending(pending)) => {
            let mut response = html(
                StatusCode::OK,
                code_screen(&pending.message, flash::read(&headers)),
            );
            flash::add(response.headers_mut(), &flash::clear());
            response
        }
        _ => done(
            &format!("{}/login", super::PREFIX),
            &Flash::Info("No login is waiting for a code; start again.".into()),
        ),
    }
}

/// `POST /ui/login/code`: the second step.
pub async fn code_posted(
    State(shared): State<Arc<AdminShared>>,
    request: Result<Unauthenticated, ApiError>,
) -> Response {
    let Unauthenticated { caller, fields } = match request {
        Ok(request) => request,
        Err(error) => return refused(error),
    };
    let input = LoginInput::Code {
        code: fields.secret("code").unwrap_or_else(|| "".into()),
    };
    match login_step(&shared, &caller, input).await {
        LoginAnswer::LoggedIn { session, cookie } => {
            with_cookie(see_other(&home(session.role)), Some(cookie))
        }
        LoginAnswer::Challenge { cookie, .. } => with_cookie(
            see_other(&format!("{}/login/code", super::PREFIX)),
            Some(cookie),
        ),
        LoginAnswer::Refused {
            message, cookie, ..
        } => with_cookie(
            done(&format!("{}/login", super::PREFIX), &Flash::Error(message)),
            cookie,
        ),
    }
}

/// `POST /ui/logout`: the admin API's logout (the session ended, audited), then the login
/// screen.
pub async fn logout(state: State<Arc<AdminShared>>, posted: Result<Posted, ApiError>) -> Response {
    let posted = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let answer = api_audit::logout(state, posted).await;
    let mut response = done(
        &format!("{}/login", super::PREFIX),
        &Flash::Info("Signed out.".into()),
    );
    for cookie in answer.headers().get_all(header::SET_COOKIE) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}
