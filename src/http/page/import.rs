//! The import screen (admins): a vendor's seed file pasted into a form — OATH CSV, PSKC or
//! the YubiKey personalization tool's CSV — stored through the admin API's import
//! (`http::admin::api_import`), all of the file or nothing, and the serials it stored shown
//! in the message. The tokens wait unassigned until handed out on a user's screen.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::calls;
use super::html::{Flash, Nav, csrf_field};
use super::respond::{done, refused, screen};
use crate::admin::Action;
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::guard::{Operator, Upload};

/// Where the screen is.
fn path() -> String {
    format!("{}/import", super::PREFIX)
}

/// The form.
pub fn form(csrf: &str) -> String {
    format!(
        "<h1>Import tokens</h1>\n\
         <p>A vendor's seed file: OATH CSV, PSKC (RFC 6030) or the YubiKey personalization \
         tool's CSV. All of the file is stored, or nothing; the tokens wait unassigned until \
         you hand one out on a user's screen.</p>\n\
         <form class=\"card stack\" method=\"post\" action=\"{path}\">{csrf}\n\
         <div><label for=\"file_name\">File name <span class=\"hint\">for the audit</span></label>\
         <input type=\"text\" id=\"file_name\" name=\"file_name\" required></div>\n\
         <div><label for=\"file\">The file's text</label>\
         <textarea id=\"file\" name=\"file\" rows=\"12\" required spellcheck=\"false\" autocomplete=\"off\"></textarea></div>\n\
         <div><label for=\"format\">Format</label><select id=\"format\" name=\"format\">\
         <option value=\"\">detect (PSKC if XML, else OATH CSV)</option>\
         <option value=\"csv\">OATH CSV</option><option value=\"pskc\">PSKC</option>\
         <option value=\"yubikey\">YubiKey CSV</option></select></div>\n\
         <div><label for=\"psk\">Pre-shared key <span class=\"hint\">PSKC: 32 hex digits</span></label>\
         <input type=\"password\" id=\"psk\" name=\"psk\" autocomplete=\"off\"></div>\n\
         <div><label for=\"password\">Password <span class=\"hint\">PSKC encrypted with a password</span></label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"off\"></div>\n\
         <label><input type=\"checkbox\" name=\"force\" value=\"true\"> Replace tokens whose serial exists</label>\n\
         <div><button type=\"submit\">Import</button></div>\n</form>\n",
        path = path(),
        csrf = csrf_field(csrf),
    )
}

/// `GET /ui/import` (admins).
pub async fn screen_of(operator: Result<Operator, ApiError>, headers: HeaderMap) -> Response {
    let operator = match operator.and_then(|o| o.require(Action::Enroll).map(|()| o)) {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let body = form(&operator.session.csrf);
    screen(&operator, &headers, "Import tokens", Nav::Users, &body)
}

/// `POST /ui/import`: the file through the admin API, then this screen with what happened.
pub async fn import(
    State(shared): State<Arc<AdminShared>>,
    upload: Result<Upload, ApiError>,
) -> Response {
    let posted = match upload {
        Ok(Upload(posted)) => posted,
        Err(error) => return refused(error),
    };
    match calls::import(&shared, posted).await {
        Ok((serials, assigned)) => done(
            &path(),
            &Flash::Ok(format!(
                "{} tokens imported ({assigned} assigned): {}",
                serials.len(),
                serials.join(", ")
            )),
        ),
        Err(error) if error.status == axum::http::StatusCode::UNAUTHORIZED => refused(error),
        Err(error) if error.status == axum::http::StatusCode::FORBIDDEN => refused(error),
        Err(error) => done(&path(), &Flash::Error(error.message)),
    }
}
