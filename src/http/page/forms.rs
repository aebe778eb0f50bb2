//! The screens an action needs before it runs: resync's two consecutive codes, a new
//! description, an enrolment's type and description, and the confirmation of a removal (the
//! script asks in a dialog; without it, this page asks). Each posts back with the CSRF token.

use super::html::{csrf_field, esc};

/// Resync: the token and two consecutive codes.
pub fn resync(user_path: &str, serial: &str, csrf: &str) -> String {
    let serial_e = esc(serial);
    format!(
        "<p><a href=\"{user_path}\">← Back</a></p>\n<h1>Resync token {serial_e}</h1>\n\
         <p class=\"lead\">Ask for two codes shown one after the other on the token or app.</p>\n\
         <form class=\"card stack\" method=\"post\" action=\"{user_path}/tokens/{serial_e}/resync\">{csrf}\n\
         <div><label for=\"otp1\">First code</label><input class=\"code\" type=\"text\" id=\"otp1\" name=\"otp1\" \
         inputmode=\"numeric\" autocomplete=\"off\" required autofocus></div>\n\
         <div><label for=\"otp2\">Next code</label><input class=\"code\" type=\"text\" id=\"otp2\" name=\"otp2\" \
         inputmode=\"numeric\" autocomplete=\"off\" required></div>\n\
         <div><button type=\"submit\">Resync</button></div>\n</form>\n",
        csrf = csrf_field(csrf),
    )
}

/// A token's description.
pub fn describe(user_path: &str, serial: &str, current: &str, csrf: &str) -> String {
    let serial_e = esc(serial);
    format!(
        "<p><a href=\"{user_path}\">← Back</a></p>\n<h1>Describe token {serial_e}</h1>\n\
         <form class=\"card stack\" method=\"post\" action=\"{user_path}/tokens/{serial_e}/describe\">{csrf}\n\
         <div><label for=\"description\">Description <span class=\"hint\">e.g. “work phone”, “YubiKey in the safe”</span></label>\
         <input type=\"text\" id=\"description\" name=\"description\" value=\"{current}\" maxlength=\"200\" autofocus></div>\n\
         <div><button type=\"submit\">Save</button></div>\n</form>\n",
        csrf = csrf_field(csrf),
        current = esc(current),
    )
}

/// The admin's enrolment for a user: TOTP or HOTP, and a description.
pub fn enroll(user_path: &str, user: &str, csrf: &str) -> String {
    format!(
        "<p><a href=\"{user_path}\">← Back</a></p>\n<h1>Enroll a token for {user}</h1>\n\
         <form class=\"card stack\" method=\"post\" action=\"{user_path}/enroll\">{csrf}\n\
         <fieldset class=\"stack\"><legend>Type</legend>\
         <label><input type=\"radio\" name=\"type\" value=\"totp\" checked> TOTP <span class=\"hint\">an authenticator app: codes change every 30 seconds</span></label>\
         <label><input type=\"radio\" name=\"type\" value=\"hotp\"> HOTP <span class=\"hint\">a counter-based token or app</span></label></fieldset>\n\
         <div><label for=\"description\">Description <span class=\"hint\">optional</span></label>\
         <input type=\"text\" id=\"description\" name=\"description\" maxlength=\"200\"></div>\n\
         <div><button type=\"submit\">Enroll</button></div>\n</form>\n",
        user = esc(user),
        csrf = csrf_field(csrf),
    )
}

/// The confirmation of a removal (no script, or a request that was not yet confirmed).
pub fn confirm_remove(user_path: &str, user: &str, serial: &str, csrf: &str) -> String {
    let serial_e = esc(serial);
    format!(
        "<h1>Remove token {serial_e}?</h1>\n\
         <div class=\"card\"><p>Token <strong>{serial_e}</strong> of <strong>{user}</strong> will be removed. \
         This cannot be undone: the user needs a new token to log in with it.</p>\n\
         <form class=\"actions\" method=\"post\" action=\"{user_path}/tokens/{serial_e}/remove\">{csrf}\
         <input type=\"hidden\" name=\"confirmed\" value=\"1\">\
         <button type=\"submit\" class=\"danger solid\">Remove {serial_e}</button> \
         <a class=\"button quiet\" href=\"{user_path}\">Keep it</a></form></div>\n",
        user = esc(user),
        csrf = csrf_field(csrf),
    )
}
