//! The extractors every admin and page handler starts from, so none can forget a check:
//!
//! - [`AdminCaller`]: the API is on, the caller is in `[admin] allow`, and a state-changing
//!   request comes from tessera's own pages (`Origin` and `Sec-Fetch-Site`, when the browser
//!   sends them). No session needed: the login form and `POST /api/v1/login` use it.
//! - [`Operator`]: an [`AdminCaller`] with a live session; for a state-changing request also
//!   the session's CSRF token in `X-CSRF-Token` (the API's clients; a form cannot set it, so
//!   forms use [`Posted`]).
//! - [`Posted`]: an [`Operator`] and the request's fields (JSON or form), the CSRF token taken
//!   from `X-CSRF-Token` or the field `csrf`.
//!
//! Then [`Operator::require`] checks the role: 403 when it may not.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::answer::{ApiError, cookie_of};
use super::fields::{Fields, read_body};
use super::session::{Found, Session, same_token};
use super::{AdminLive, AdminShared};
use crate::admin::{Action, Actor, Role, SelfServiceAction};
use crate::http::Peer;

/// The header a client echoes the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field the page echoes it in.
pub const CSRF_FIELD: &str = "csrf";

/// An admitted caller of the admin API or the page.
#[derive(Clone)]
pub struct AdminCaller {
    /// Its address.
    pub peer: SocketAddr,
    /// The configuration in force.
    pub live: Arc<AdminLive>,
    /// Whether the listener speaks TLS (cookies get `Secure` and the `__Host-` name).
    pub tls: bool,
    /// The session cookie it sent, if any.
    pub cookie: Option<String>,
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A state-changing request must come from a page of this origin: a browser's
/// `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user), its `Origin` (unless
/// `null`) must be this host. Clients that send neither (curl, scripts) are left to the CSRF
/// token, which every state-changing request needs anyway.
fn same_origin(parts: &Parts, tls: bool) -> bool {
    let headers = &parts.headers;
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    // A form posted from a page under `Referrer-Policy: no-referrer` carries `Origin: null`
    // (Fetch withholds the origin with the referrer): `Sec-Fetch-Site` above has spoken.
    let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let scheme = if tls { "https" } else { "http" };
    origin.to_str().ok() == Some(&format!("{scheme}://{host}")) && !host.is_empty()
}

impl FromRequestParts<Arc<AdminShared>> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<AdminShared>,
    ) -> Result<Self, ApiError> {
        let live = shared.live.get();
        let Some(admin) = live.admin.clone().filter(|a| a.config.enabled) else {
            return Err(ApiError::not_found("not found"));
        };
        let Some(Peer(peer)) = parts.extensions.get::<Peer>().copied() else {
            return Err(ApiError::forbidden(
                "this address may not use the admin API",
            ));
        };
        if !admin.config.allow.allows(peer.ip()) {
            tracing::debug!(%peer, "admin API caller not in [admin] allow: 403");
            return Err(ApiError::forbidden(
                "this address may not use the admin API",
            ));
        }
        let tls = live.tls.is_some();
        if !is_safe(&parts.method) && !same_origin(parts, tls) {
            return Err(ApiError::forbidden(
                "cross-site request refused (Origin or Sec-Fetch-Site)",
            ));
        }
        Ok(AdminCaller {
            peer,
            cookie: cookie_of(&parts.headers, tls),
            live: admin,
            tls,
        })
    }
}

/// A caller with a live session.
#[derive(Clone)]
pub struct Operator {
    /// The caller.
    pub caller: AdminCaller,
    /// Its session.
    pub session: Session,
    /// The session's id (the cookie's value).
    pub id: String,
}

impl Operator {
    /// The audit's actor for this session.
    pub fn actor(&self) -> Actor {
        Actor::operator(
            &self.session.user,
            &self.session.realm,
            self.session.role.as_str(),
            self.caller.peer.ip(),
        )
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.session.role
    }

    /// 403 unless the session's role allows `action` on any user's tokens.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.session.role.allows(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this ({action:?})",
                self.session.role
            )))
        }
    }

    /// 403 unless the session holds `role` or a higher one.
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        if self.session.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role; this session has {}",
                self.session.role
            )))
        }
    }

    /// For an operator, [`Operator::require`] of `action`; for a self-service session,
    /// whether `[admin] selfservice` allows `own` (on the user's own tokens: the caller checks
    /// ownership).
    pub fn require_or_own(
        &self,
        action: Action,
        own: Option<SelfServiceAction>,
    ) -> Result<(), ApiError> {
        if self.session.role != Role::SelfService {
            return self.require(action);
        }
        match own {
            Some(a) if self.session.selfservice.contains(&a) => Ok(()),
            Some(a) => Err(ApiError::forbidden(format!(
                "self-service does not allow {} here",
                a.as_str()
            ))),
            None => Err(ApiError::forbidden("self-service does not allow this")),
        }
    }

    /// Whether this is a self-service session (which sees only its own tokens).
    pub fn is_self_service(&self) -> bool {
        self.session.role == Role::SelfService
    }
}

/// The session of `caller`, or 401.
fn session_of(shared: &AdminShared, caller: &AdminCaller) -> Result<(Session, String), ApiError> {
    let Some(id) = caller.cookie.clone() else {
        return Err(ApiError::unauthorized("not logged in"));
    };
    match shared.sessions.find(&id, caller.live.limits()) {
        Found::Active(session) => Ok((session, id)),
        Found::Expired => Err(ApiError::unauthorized(
            "the session has expired; log in again",
        )),
        Found::Pending(_) | Found::Unknown => Err(ApiError::unauthorized("not logged in")),
    }
}

fn check_csrf(session: &Session, given: Option<&str>) -> Result<(), ApiError> {
    match given {
        Some(given) if same_token(given.trim(), &session.csrf) => Ok(()),
        Some(_) => Err(ApiError::forbidden("wrong CSRF token")),
        None => Err(ApiError::forbidden(
            "missing CSRF token (X-CSRF-Token header or csrf field)",
        )),
    }
}

fn csrf_header(parts: &Parts) -> Option<&str> {
    parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

impl FromRequestParts<Arc<AdminShared>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<AdminShared>,
    ) -> Result<Self, ApiError> {
        let caller = AdminCaller::from_request_parts(parts, shared).await?;
        let (session, id) = session_of(shared, &caller)?;
        if !is_safe(&parts.method) {
            check_csrf(&session, csrf_header(parts))?;
        }
        Ok(Operator {
            caller,
            session,
            id,
        })
    }
}

/// An operator's state-changing request with its fields, the CSRF token checked.
pub struct Posted {
    /// Who.
    pub operator: Operator,
    /// The fields (the CSRF field among them).
    pub fields: Fields,
}

impl FromRequest<Arc<AdminShared>> for Posted {
    type Rejection = ApiError;

    async fn from_request(request: Request, shared: &Arc<AdminShared>) -> Result<Self, ApiError> {
        Posted::read(request, shared, super::fields::BODY_LIMIT).await
    }
}

/// A [`Posted`] request whose body may be as large as a seed file
/// ([`super::fields::UPLOAD_LIMIT`]): the import's.
pub struct Upload(pub Posted);

impl FromRequest<Arc<AdminShared>> for Upload {
    type Rejection = ApiError;

    async fn from_request(request: Request, shared: &Arc<AdminShared>) -> Result<Self, ApiError> {
        Posted::read(request, shared, super::fields::UPLOAD_LIMIT)
            .await
            .map(Upload)
    }
}

impl Posted {
    /// The request's operator and fields, its body at most `limit` octets.
    async fn read(
        request: Request,
        shared: &Arc<AdminShared>,
        limit: usize,
    ) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let caller = AdminCaller::from_request_parts(&mut parts, shared).await?;
        let (session, id) = session_of(shared, &caller)?;
        let body = super::fields::read_body_up_to(body, limit).await?;
        let fields = Fields::from_body(&parts.headers, &body)?;
        check_csrf(
            &session,
            csrf_header(&parts).or_else(|| fields.get(CSRF_FIELD)),
        )?;
        Ok(Posted {
            operator: Operator {
                caller,
                session,
                id,
            },
            fields,
        })
    }
}

/// An admitted caller's request with its fields and no session (the login).
pub struct Unauthenticated {
    /// Who.
    pub caller: AdminCaller,
    /// The fields.
    pub fields: Fields,
}

impl FromRequest<Arc<AdminShared>> for Unauthenticated {
    type Rejection = ApiError;

    async fn from_request(request: Request, shared: &Arc<AdminShared>) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let caller = AdminCaller::from_request_parts(&mut parts, shared).await?;
        let body = read_body(body).await?;
        let fields = Fields::from_body(&parts.headers, &body)?;
        Ok(Unauthenticated { caller, fields })
    }
}
