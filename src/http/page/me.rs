//! Self-service (`[admin] selfservice`): a user's own tokens, enrolling an authenticator app
//! (the secret shown once, the token active only after its first code is confirmed, after
//! which SMS codes are no longer needed) and disabling a token that was lost. What a user may
//! do is what `[admin] selfservice` lists (LinOTP's `selfservice` scope names).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::calls;
use super::html::{Flash, Nav, csrf_field, esc};
use super::respond::{done, error_screen, refused, screen, screen_with};
use super::secret::Shown;
use super::tokens::{Buttons, table};
use super::views::TokenView;
use crate::admin::SelfServiceAction;
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::fields::Fields;
use crate::http::admin::guard::{Operator, Posted};

/// Where the self-service screen is.
pub fn path() -> String {
    format!("{}/me", super::PREFIX)
}

/// The user's screen: their tokens, and the enrolment button when allowed.
pub fn body(
    user: &str,
    tokens: &[TokenView],
    buttons: Buttons,
    may_enroll: bool,
    csrf: &str,
) -> String {
    let me = path();
    let mut out = format!(
        "<h1>My tokens</h1>\n<p class=\"lead\">Signed in as {}.</p>\n",
        esc(user)
    );
    out.push_str(&table(tokens, &format!("{me}/tokens"), buttons, csrf));
    for token in tokens.iter().filter(|t| t.pending) {
        out.push_str(&confirm_form(&token.serial, csrf));
    }
    if may_enroll {
        out.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"enroll-h\"><h2 id=\"enroll-h\">Use an authenticator app</h2>\n\
             <p>An app on your phone (FreeOTP, Google Authenticator, Microsoft Authenticator …) shows a new code \
             every 30 seconds, even without network. Once it is set up, you no longer wait for text messages.</p>\n\
             <form method=\"post\" action=\"{me}/enroll\">{}<button type=\"submit\">Set up an authenticator app</button></form>\
             </section>\n",
            csrf_field(csrf)
        ));
    }
    out
}

/// The form that confirms a new token with its first code.
pub fn confirm_form(serial: &str, csrf: &str) -> String {
    let me = path();
    let serial_e = esc(serial);
    format!(
        "<form class=\"card stack\" method=\"post\" action=\"{me}/tokens/{serial_e}/confirm\">{}\n\
         <h2>Confirm token {serial_e}</h2>\n\
         <div><label for=\"code-{serial_e}\">The code the app shows now</label>\
         <input class=\"code\" type=\"text\" id=\"code-{serial_e}\" name=\"code\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" required></div>\n\
         <div><button type=\"submit\">Confirm</button></div>\n</form>\n",
        csrf_field(csrf)
    )
}

/// The answer to an enrolment: the secret, once, and the confirmation form.
pub fn enrolled(shown: &Shown<'_>, csrf: &str) -> String {
    let mut out = String::from(
        "<h1>Set up your authenticator app</h1>\n\
        <p class=\"lead\">1. Scan the code with the app. 2. Type the code the app shows. \
        The token works once it is confirmed.</p>\n",
    );
    out.push_str(&shown.html());
    out.push_str(&confirm_form(shown.serial, csrf));
    out
}

fn allows(operator: &Operator, action: SelfServiceAction) -> bool {
    operator.session.selfservice.contains(&action)
}

/// `GET /ui/me`.
pub async fn screen_of(
    State(shared): State<Arc<AdminShared>>,
    operator: Result<Operator, ApiError>,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let mine = match calls::my_tokens(&shared, operator.clone()).await {
        Ok(mine) => mine,
        Err(error) => return refused(error),
    };
    let who = format!("{}@{}", operator.session.user, operator.session.realm);
    let enable = allows(&operator, SelfServiceAction::Enable);
    let disable = allows(&operator, SelfServiceAction::Disable);
    let buttons = Buttons {
        toggle: enable && disable,
        disable_only: disable && !enable,
        reset: allows(&operator, SelfServiceAction::Reset),
        ..Buttons::default()
    };
    let page = body(
        &who,
        &mine.tokens,
        buttons,
        allows(&operator, SelfServiceAction::EnrollTotp),
        &operator.session.csrf,
    );
    screen(&operator, &headers, "My tokens", Nav::Mine, &page)
}

/// `POST /ui/me/enroll`: a TOTP token for the session's own user, waiting for its first
/// code; the secret on this answer only.
pub async fn enroll(
    State(shared): State<Arc<AdminShared>>,
    posted: Result<Posted, ApiError>,
) -> Response {
    let Posted { operator, .. } = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let request = Fields::from_pairs([("type", "totp")]);
    match calls::enroll(&shared, operator.clone(), request).await {
        Ok(made) => {
            let shown = Shown {
                serial: &made.serial,
                uri: &made.uri,
                base32: &made.secret,
                qr_svg: made.qr_svg.as_deref(),
            };
            let page = enrolled(&shown, &operator.session.csrf);
            screen_with(
                &operator,
                None,
                "Set up your app",
                Nav::Mine,
                &page,
                &HeaderMap::new(),
            )
        }
        Err(error) if error.status == StatusCode::UNAUTHORIZED => refused(error),
        Err(error) => done(&path(), &Flash::Error(error.message)),
    }
}

/// `POST /ui/me/tokens/{serial}/{action}`: `confirm` (with `code`), `disable`, `enable`,
/// `reset`; the admin API decides what `[admin] selfservice` allows.
pub async fn token_action(
    State(shared): State<Arc<AdminShared>>,
    Path((serial, action)): Path<(String, String)>,
    posted: Result<Posted, ApiError>,
) -> Response {
    let Posted { operator, fields } = match posted {
        Ok(posted) => posted,
        Err(error) => return refused(error),
    };
    let said = match action.as_str() {
        "confirm" => format!("Token {serial} confirmed: it is active now"),
        "disable" => format!("Token {serial} disabled"),
        "enable" => format!("Token {serial} enabled"),
        "reset" => format!("Token {serial} reset: fail counter 0"),
        _ => return error_screen(StatusCode::NOT_FOUND, "no such action"),
    };
    let csrf = operator.session.csrf.clone();
    let again = operator.clone();
    match calls::change(&shared, operator, &serial, &action, fields).await {
        Ok(()) => done(&path(), &Flash::Ok(said)),
        Err(error) if error.status == StatusCode::UNAUTHORIZED => refused(error),
        Err(error) if action == "confirm" => {
            // A wrong first code: the same form again, with why.
            let page = format!(
                "<h1>Set up your authenticator app</h1>\n{}",
                confirm_form(&serial, &csrf)
            );
            screen_with(
                &again,
                Some(Flash::Error(error.message)),
                "Confirm",
                Nav::Mine,
                &page,
                &HeaderMap::new(),
            )
        }
        Err(error) => done(
            &path(),
            &Flash::Error(format!("{serial}: {}", error.message)),
        ),
    }
}
