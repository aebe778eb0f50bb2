//! The way in: the login screen (user and directory password), then the code screen (the
//! engine's challenge message: "sms submitted to +49********678", or the authenticator app),
//! then the operator's home or the user's own tokens. Both rounds go through tessera's own
//! engine, as every RADIUS login does: the same policies, back-off and audit.

use super::html::{Flash, Layout, Nav, esc};

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

/// The second screen: the challenge's message and the code. `transaction` is the engine's
/// State for the second round, carried in the form (never in a URL).
pub fn code_screen(user: &str, message: &str, transaction: &str, flash: Option<Flash>) -> String {
    let prefix = super::PREFIX;
    let body = format!(
        "<h1>Enter your code</h1>\n<p class=\"lead\" id=\"challenge\">{message}</p>\n\
         <form class=\"card stack\" method=\"post\" action=\"{prefix}/login/code\">\n\
         <input type=\"hidden\" name=\"user\" value=\"{user}\">\
         <input type=\"hidden\" name=\"transaction\" value=\"{transaction}\">\n\
         <div><label for=\"code\">Code <span class=\"hint\">from the message, or from your authenticator app</span></label>\
         <input class=\"code\" type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" pattern=\"[0-9]*\" required autofocus></div>\n\
         <div><button type=\"submit\">Sign in</button> <a href=\"{prefix}/login\">Start over</a></div>\n</form>\n",
        message = esc(message),
        user = esc(user),
        transaction = esc(transaction),
    );
    layout("Enter your code", flash).render(&body)
}
