//! Self-service (`[admin] selfservice`): a user's own tokens, enrolling an authenticator app
//! (the secret shown once, the token active only after its first code is confirmed, after
//! which SMS codes are no longer needed) and disabling a token that was lost. What a user may
//! do is what `[admin] selfservice` lists (LinOTP's `selfservice` scope names).

use super::html::{csrf_field, esc};
use super::secret::Shown;
use super::tokens::{Buttons, TokenView, table};

/// Where the self-service screen is.
pub fn path() -> String {
    format!("{}/me", super::PREFIX)
}

/// The user's screen: their tokens, and the enrolment button when allowed.
pub fn body(
    user: &str,
    tokens: &[TokenView],
    may_disable: bool,
    may_enroll: bool,
    csrf: &str,
) -> String {
    let me = path();
    let mut out = format!(
        "<h1>My tokens</h1>\n<p class=\"lead\">Signed in as {}.</p>\n",
        esc(user)
    );
    out.push_str(&table(
        tokens,
        &format!("{me}/tokens"),
        Buttons {
            disable_only: may_disable,
            ..Buttons::default()
        },
        csrf,
    ));
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
