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
//! message across a redirect), `assets.rs` (CSS, JS, the security headers), `secret.rs` (a new
//! token's secret and QR code, shown once), `tokens.rs` (a user's tokens as a table), then one
//! file per screen: `login.rs` (password, then code), `users.rs` (search, a user's tokens),
//! `forms.rs` (resync, describe, enroll, confirm a removal), `audit.rs`, `state.rs` (the
//! service), `me.rs` (self-service).

pub mod assets;
pub mod audit;
pub mod flash;
pub mod forms;
pub mod html;
pub mod login;
pub mod me;
pub mod secret;
pub mod state;
pub mod tokens;
pub mod users;

/// Where the page lives.
pub const PREFIX: &str = "/ui";
