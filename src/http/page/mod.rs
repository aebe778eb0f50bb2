//! The helpdesk and self-service page (issue 25): server-rendered HTML under `/ui/`, served by
//! tessera itself, on the admin layer (`crate::admin`) and the admin API's sessions
//! (`crate::http::admin`). It decides nothing of its own about tokens, roles or sessions: each
//! screen asks the same functions the JSON API asks, so the page and the API cannot disagree.
//!
//! No framework and little script: every form posts and is answered by a redirect (post,
//! redirect, get) with a message that says what happened; `assets/tessera.js` only adds search
//! as you type and confirmation dialogs, and everything works without it. The
//! Content-Security-Policy (`assets.rs`) forbids inline script and style.
//!
//! Files, from the base up: `html.rs` (escaping, the frame of every screen), `flash.rs` (the
//! message across a redirect), `assets.rs` (CSS and JS, the HTML answer), `views.rs` (what
//! the screens show, as data), `calls.rs` (the admin API's handlers asked, their JSON read
//! into views), `respond.rs` (a screen, a redirect with a message, a refusal), `secret.rs` (a
//! new token's secret and QR code, shown once), `tokens.rs` (a user's tokens as a table),
//! `sessions.rs` (a user's accounting sessions as a table), then one file per screen:
//! `login.rs` (password, then code), `users.rs` (search, a user's tokens and sessions),
//! `forms.rs` (resync, describe, enroll, confirm a removal), `import.rs` (a seed file),
//! `audit.rs`, `state.rs` (the service), `me.rs` (self-service).

pub mod assets;
pub mod audit;
pub mod calls;
pub mod flash;
pub mod forms;
pub mod html;
pub mod import;
pub mod login;
pub mod me;
pub mod respond;
pub mod secret;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod users;
pub mod views;

/// Where the page lives.
pub const PREFIX: &str = "/ui";

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::http::admin::AdminShared;

/// The page's routes, merged into the admin router (which adds the security headers and
/// answers 404 for all of them while `[admin]` is off).
pub fn router() -> Router<Arc<AdminShared>> {
    Router::new()
        .route("/", get(login::start))
        .route("/ui", get(login::start))
        .route("/ui/", get(login::start))
        .route("/ui/assets/tessera.css", get(assets::css))
        .route("/ui/assets/tessera.js", get(assets::js))
        .route(
            "/ui/login",
            get(login::password_form).post(login::password_posted),
        )
        .route(
            "/ui/login/code",
            get(login::code_form).post(login::code_posted),
        )
        .route("/ui/logout", post(login::logout))
        .route("/ui/users", get(users::search))
        .route("/ui/users/{realm}/{user}", get(users::user))
        .route(
            "/ui/users/{realm}/{user}/enroll",
            get(users::enroll_form).post(users::enroll),
        )
        .route("/ui/users/{realm}/{user}/assign", post(users::assign))
        .route(
            "/ui/users/{realm}/{user}/tokens/{serial}/{action}",
            get(users::token_form).post(users::token_action),
        )
        .route("/ui/import", get(import::screen_of).post(import::import))
        .route("/ui/audit", get(audit::screen_of))
        .route("/ui/state", get(state::screen_of))
        .route("/ui/me", get(me::screen_of))
        .route("/ui/me/enroll", post(me::enroll))
        .route("/ui/me/tokens/{serial}/{action}", post(me::token_action))
}
