//! The admin API (`/api/v1/…`) and what the helpdesk page builds on: who may reach it
//! (`[admin] allow`), operators' logins through tessera's own engine (`login.rs`), sessions in
//! memory with a CSRF token each (`session.rs`), the extractors every handler starts from
//! (`guard.rs`: [`guard::AdminCaller`], [`guard::Operator`], [`guard::Posted`]), the security
//! headers on every answer, and the JSON routes (`api.rs`, `api_audit.rs`, `api_import.rs`).
//!
//! This layer translates, as `routes.rs` does for `/validate/check`: the token and audit
//! operations are `crate::admin`'s, shared with `tessera token …`; the login is the engine's
//! (password, then the second factor, with its back-off and identity rules). The page's
//! handlers (`page` routes, merged by [`router`]) use the same extractors and `crate::admin`.
//!
//! Files: `settings.rs` (`[admin]`), `session.rs`, `guard.rs`, `fields.rs` (a request's form
//! or JSON fields), `answer.rs` ([`answer::ApiError`], JSON, cookies, headers), `login.rs`,
//! `api.rs` (users and tokens), `api_audit.rs` (session, audit, state), `api_sessions.rs`
//! (accounting sessions), `api_import.rs` (the seed file upload).

pub mod answer;
pub mod api;
pub mod api_audit;
pub mod api_import;
pub mod api_sessions;
pub mod fields;
pub mod guard;
pub mod login;
pub mod session;
pub mod settings;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use settings::{AdminConfig, AdminSettings};

use super::HttpLive;
use crate::admin::state::StateReader;
use crate::auth::{AuthRequest, AuthSettings, Authenticate, Outcome};
use crate::directory::Realms;
use crate::live::Live;
use crate::store::Store;

/// What the admin API needs of one configuration, swapped whole on reload (inside
/// [`HttpLive`]): `[admin]`, the realms and the engine's settings.
pub struct AdminLive {
    /// `[admin]`.
    pub config: AdminConfig,
    /// The realms of the same configuration (the engine's directories, shared).
    pub realms: Realms,
    /// `[auth]` of the same configuration.
    pub auth: AuthSettings,
    /// The `[[client]]` entries of the same configuration: their `das_port`, for ending a
    /// revoked user's sessions.
    pub clients: crate::radius::clients::ClientTable,
}

impl AdminLive {
    /// The session limits of this configuration.
    pub fn limits(&self) -> session::Limits {
        session::Limits {
            idle: self.config.idle_timeout,
            lifetime: self.config.lifetime,
            max: self.config.max_sessions,
        }
    }
}

/// A boxed login engine, so the admin API's state needs no type parameter.
type LoginFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

trait LoginEngine: Send + Sync {
    fn authenticate(&self, request: AuthRequest) -> LoginFuture;
}

struct Boxed<A>(Arc<A>);

impl<A: Authenticate> LoginEngine for Boxed<A> {
    fn authenticate(&self, request: AuthRequest) -> LoginFuture {
        let engine = self.0.clone();
        Box::pin(async move { engine.authenticate(request).await })
    }
}

/// What every admin handler shares: the engine (for logins), the store, the configuration in
/// force, the sessions of this node and the state reader.
pub struct AdminShared {
    engine: Box<dyn LoginEngine>,
    /// The token store.
    pub store: Arc<dyn Store>,
    /// The listener's configuration in force (with `[admin]` in it).
    pub live: Arc<Live<HttpLive>>,
    /// This node's sessions.
    pub sessions: session::Sessions,
    /// The service state's previous reading (for rates).
    pub state: StateReader,
}

impl AdminShared {
    /// The admin API's state on `auth`'s engine and `store`.
    pub fn new<A: Authenticate>(
        auth: Arc<A>,
        store: Arc<dyn Store>,
        live: Arc<Live<HttpLive>>,
    ) -> Self {
        AdminShared {
            engine: Box::new(Boxed(auth)),
            store,
            live,
            sessions: session::Sessions::new(),
            state: StateReader::default(),
        }
    }

    /// Asks the engine (an operator's login).
    pub async fn authenticate(&self, request: AuthRequest) -> Outcome {
        self.engine.authenticate(request).await
    }
}

/// The admin API's routes and the page's, each answer with the security headers; the caller
/// merges them into the listener's router.
pub fn router(shared: Arc<AdminShared>) -> Router {
    Router::new()
        .route("/api/v1/login", post(api_audit::login))
        .route("/api/v1/logout", post(api_audit::logout))
        .route("/api/v1/session", get(api_audit::session))
        .route("/api/v1/audit", get(api_audit::audit))
        .route("/api/v1/state", get(api_audit::state))
        .route("/api/v1/users", get(api::users))
        .route("/api/v1/users/{realm}/{user}/tokens", get(api::user_tokens))
        .route(
            "/api/v1/users/{realm}/{user}/sessions",
            get(api_sessions::user_sessions),
        )
        .route("/api/v1/sessions", get(api_sessions::open_sessions))
        .route("/api/v1/me/tokens", get(api::my_tokens))
        .route("/api/v1/tokens", post(api::enroll))
        .route("/api/v1/tokens/import", post(api_import::import))
        .route(
            "/api/v1/tokens/{serial}",
            get(api::token).delete(api::remove),
        )
        .route("/api/v1/tokens/{serial}/{action}", post(api::change))
        .merge(page_routes())
        .layer(axum::middleware::map_response(answer::secured))
        .with_state(shared)
}

/// The helpdesk page's routes (the page's own module adds them here).
fn page_routes() -> Router<Arc<AdminShared>> {
    super::page::router()
}
