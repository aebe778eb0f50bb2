//! The accounting sessions' routes (issue 30): a user's sessions, the open ones first
//! (`GET /api/v1/users/{realm}/{user}/sessions`), and every open session
//! (`GET /api/v1/sessions`); both `?limit=N`. Each session has the fields of `tessera
//! sessions --json` ([`SessionView`](crate::admin::sessions::SessionView)). Operators with the
//! view action only: a session shows where a user is.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde_json::json;

use super::AdminShared;
use super::answer::{ApiError, ok};
use super::api::identity_of;
use super::fields::Fields;
use super::guard::Operator;
use crate::admin::Action;
use crate::admin::sessions::{self, limit};

/// `?limit=N` of `request`, bounded.
fn limit_of(request: &Request) -> Result<u32, ApiError> {
    let fields = Fields::from_query(request.uri().query());
    let asked = match fields.get("limit") {
        None => None,
        Some(l) => Some(
            l.trim()
                .parse::<u32>()
                .map_err(|_| ApiError::bad_request(format!("limit {l:?}: expected a number")))?,
        ),
    };
    Ok(limit(asked))
}

/// `GET /api/v1/users/{realm}/{user}/sessions`: the user's sessions, open ones first.
pub async fn user_sessions(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    Path((realm, user)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    operator.require(Action::View)?;
    let limit = limit_of(&request)?;
    let identity = identity_of(&operator, &realm, &user).await?;
    let found = sessions::of_identity(shared.store.as_ref(), &identity, limit).await?;
    Ok(ok(&json!({
        "user": identity.user,
        "realm": identity.realm,
        "sessions": found,
    })))
}

/// `GET /api/v1/sessions`: every open session, newest first.
pub async fn open_sessions(
    State(shared): State<Arc<AdminShared>>,
    operator: Operator,
    request: Request,
) -> Result<Response, ApiError> {
    operator.require(Action::View)?;
    let limit = limit_of(&request)?;
    let found = sessions::open(shared.store.as_ref(), limit).await?;
    Ok(ok(&json!({ "sessions": found })))
}
