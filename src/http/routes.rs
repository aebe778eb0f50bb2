//! The routes and a request's way through them: the allow-list, the body read under a limit
//! and a deadline, the parameters, the engine, the answer.
//!
//! `/validate/check` and `/validate/simplecheck` (GET or POST) run the engine;
//! `/healthz` says whether the store commits and a directory answers (as on the metrics
//! listener); the admin API's routes (`admin/`) are merged in when the server has them. Every answer is counted in `tessera_http_requests_total` by route and status;
//! refusals before the engine also in `tessera_http_refused_total` by cause. No password or
//! code is ever logged: the parameters hold it as a [`Secret`](crate::secret::Secret).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::HttpLive;
use super::answer::{self, CheckAnswer, Verdict};
use super::params::{self, Params};
use crate::auth::{AuthRequest, Authenticate, Outcome};
use crate::live::Live;
use crate::metrics::{self, Health};

/// The largest body read (LinOTP's and privacyIDEA's requests are a few hundred octets).
pub const BODY_LIMIT: usize = 16 * 1024;

/// How long a client may take to send its body once the headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub use super::Peer;

/// What every request needs: the engine, the health state, and the current allow-list.
pub struct Shared<A> {
    /// The engine (the current configuration's, read once per request).
    pub auth: Arc<A>,
    /// `/healthz`'s answer.
    pub health: Arc<Health>,
    /// The allow-list and TLS configuration of the current configuration.
    pub live: Arc<Live<HttpLive>>,
    /// The admin API's state; `None`: its routes are not served at all.
    pub admin: Option<Arc<super::admin::AdminShared>>,
}

/// The routes.
pub fn router<A: Authenticate>(shared: Arc<Shared<A>>) -> Router {
    let admin = shared.admin.clone();
    let router = Router::new()
        .route("/validate/check", get(check::<A>).post(check::<A>))
        .route(
            "/validate/simplecheck",
            get(simplecheck::<A>).post(simplecheck::<A>),
        )
        .route("/healthz", get(healthz::<A>))
        .fallback(not_found)
        .with_state(shared);
    match admin {
        Some(admin) => router.merge(super::admin::router(admin)),
        None => router,
    }
}

/// Which route answered, for the metric label.
#[derive(Debug, Clone, Copy)]
enum Route {
    Check,
    Simplecheck,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Route::Check => "/validate/check",
            Route::Simplecheck => "/validate/simplecheck",
        }
    }
}

async fn check<A: Authenticate>(
    State(shared): State<Arc<Shared<A>>>,
    request: Request,
) -> Response {
    match decide(&shared, Route::Check, request).await {
        Ok(outcome) => {
            let (verdict, answer) = CheckAnswer::from_outcome(&outcome);
            counted(
                Route::Check,
                StatusCode::OK,
                Some(verdict),
                json(StatusCode::OK, &answer),
            )
        }
        Err(refusal) => refusal.into_response(Route::Check),
    }
}

async fn simplecheck<A: Authenticate>(
    State(shared): State<Arc<Shared<A>>>,
    request: Request,
) -> Response {
    match decide(&shared, Route::Simplecheck, request).await {
        Ok(outcome) => {
            let verdict = CheckAnswer::from_outcome(&outcome).0;
            let text = answer::simplecheck(&outcome);
            counted(
                Route::Simplecheck,
                StatusCode::OK,
                Some(verdict),
                plain(StatusCode::OK, text),
            )
        }
        Err(refusal) => refusal.into_response(Route::Simplecheck),
    }
}

async fn healthz<A: Authenticate>(State(shared): State<Arc<Shared<A>>>) -> Response {
    if shared.health.is_up() {
        plain(StatusCode::OK, "ok\n".into())
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable\n".into())
    }
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n".into())
}

/// Why a request did not reach the engine.
#[derive(Debug)]
enum Refusal {
    /// The caller is not in `allow`.
    NotAllowed,
    /// The body is larger than [`BODY_LIMIT`].
    TooLarge,
    /// The body did not arrive within [`BODY_TIMEOUT`].
    TooSlow,
    /// The parameters could not be read, or `user` or `pass` is missing.
    BadRequest(String),
}

impl Refusal {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Refusal::NotAllowed => (StatusCode::FORBIDDEN, "not_allowed"),
            Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Refusal::TooSlow => (StatusCode::REQUEST_TIMEOUT, "too_slow"),
            Refusal::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::NotAllowed => "this address may not call /validate".into(),
            Refusal::TooLarge => format!("request body larger than {BODY_LIMIT} octets"),
            Refusal::TooSlow => "request body not received in time".into(),
            Refusal::BadRequest(why) => why.clone(),
        }
    }

    /// The answer: the JSON error for `/validate/check`, `:-(` for simplecheck (what LinOTP's
    /// clients read as a failure), with the status either way.
    fn into_response(self, route: Route) -> Response {
        let (status, cause) = self.status();
        metrics::inc("tessera_http_refused_total", &[("cause", cause)]);
        let response = match route {
            Route::Check => json(status, &CheckAnswer::error(self.message())),
            Route::Simplecheck => plain(status, ":-(".into()),
        };
        counted(route, status, None, response)
    }
}

/// Admits, reads and decides one request.
async fn decide<A: Authenticate>(
    shared: &Shared<A>,
    route: Route,
    request: Request,
) -> Result<Outcome, Refusal> {
    let Some(Peer(peer)) = request.extensions().get::<Peer>().copied() else {
        // Every connection attaches its peer (server.rs); without one, nobody is allowed.
        return Err(Refusal::NotAllowed);
    };
    if !shared.live.get().allow.allows(peer.ip()) {
        // Debug, not info: a stranger must not be able to fill the log; the refusal is counted.
        tracing::debug!(%peer, route = route.as_str(), "HTTP caller not in [http] allow: 403");
        return Err(Refusal::NotAllowed);
    }
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = params::parse(parts.uri.query(), content_type, body)
        .await
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let request = to_auth_request(params, peer)?;
    let outcome = match shared.auth.authenticate(request).await {
        Outcome::Forward { upstream, .. } => {
            // A legacy RADIUS server decides this user (passthru); HTTP cannot relay to it.
            tracing::warn!(%peer, upstream, "passthru is not relayed over HTTP: rejected");
            Outcome::Reject {
                message: crate::auth::decision::MSG_FAILED.into(),
            }
        }
        outcome => outcome,
    };
    Ok(outcome)
}

/// The body, at most [`BODY_LIMIT`] octets, within [`BODY_TIMEOUT`].
async fn read_body(body: Body) -> Result<axum::body::Bytes, Refusal> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Err(_) => Err(Refusal::TooSlow),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => {
            let error = error.into_inner();
            if error.is::<http_body_util::LengthLimitError>() {
                Err(Refusal::TooLarge)
            } else {
                Err(Refusal::BadRequest(format!(
                    "request body unreadable: {error}"
                )))
            }
        }
    }
}

/// The engine's request: `user` (with `@realm` when `realm` is given and the name has none),
/// `pass`, the transaction as the State, the caller as the client.
fn to_auth_request(params: Params, peer: SocketAddr) -> Result<AuthRequest, Refusal> {
    let Params {
        user,
        pass,
        realm,
        transaction_id,
    } = params;
    let (Some(user), Some(password)) = (user, pass) else {
        return Err(Refusal::BadRequest(
            "missing parameter: user and pass are needed".into(),
        ));
    };
    let user_name = match realm {
        Some(realm) if !user.contains('@') => format!("{user}@{realm}"),
        _ => user,
    };
    let caller = peer.ip().to_canonical();
    Ok(AuthRequest {
        user_name,
        password,
        state: transaction_id.map(String::into_bytes),
        client: caller,
        // The audit's and the log's client: the transport and the caller.
        client_name: format!("http/{caller}"),
        calling_station: None,
        // The back-off's origin: the caller. A front end (privacyidea_radius.pm's `client`)
        // could name another, but a caller's word is not trusted for what keys the back-off.
        origin: caller.to_string(),
        // HTTP has no retransmits to recognise: each request is a request.
        request_id: None,
        // The JSON carries any message; reply attributes are RADIUS's and not sent.
        reply_limit: None,
    })
}

fn counted(
    route: Route,
    status: StatusCode,
    verdict: Option<Verdict>,
    response: Response,
) -> Response {
    let answer = match verdict {
        Some(verdict) => verdict.label(),
        None => status.as_str(),
    };
    metrics::inc(
        "tessera_http_requests_total",
        &[("route", route.as_str()), ("answer", answer)],
    );
    response
}

fn json(status: StatusCode, answer: &CheckAnswer) -> Response {
    let body = serde_json::to_vec(answer).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn plain(status: StatusCode, text: String) -> Response {
    let mut response = (status, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tower::ServiceExt;

    use super::*;
    use crate::http::settings::HttpConfig;

    /// An engine that answers `outcome` and keeps what it was asked.
    struct Fake {
        outcome: Outcome,
        asked: Mutex<Vec<AuthRequest>>,
    }

    impl Authenticate for Fake {
        async fn authenticate(&self, request: AuthRequest) -> Outcome {
            self.asked.lock().unwrap().push(request);
            self.outcome.clone()
        }
    }

    fn serve(outcome: Outcome) -> (Router, Arc<Fake>) {
        let fake = Arc::new(Fake {
            outcome,
            asked: Mutex::new(vec![]),
        });
        let shared = Arc::new(Shared {
            auth: fake.clone(),
            health: Arc::new(Health::default()),
            live: Arc::new(Live::new(HttpLive {
                allow: HttpConfig::default().allow,
                tls: None,
                admin: None,
            })),
            admin: None,
        });
        (router(shared), fake)
    }

    async fn call(router: Router, peer: Option<&str>, uri: &str) -> (StatusCode, String) {
        let mut request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            request.extensions_mut().insert(Peer(peer.parse().unwrap()));
        }
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_engine_is_asked_with_the_caller_the_realm_and_the_transaction() {
        let (router, fake) = serve(Outcome::Accept {
            message: None,
            reply: vec![],
        });
        let (status, body) = call(
            router,
            Some("[::ffff:127.0.0.1]:40000"),
            "/validate/check?user=alice&pass=123456&realm=corp&transactionid=ab12.01",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let asked = fake.asked.lock().unwrap();
        let request = &asked[0];
        assert_eq!(request.user_name, "alice@corp");
        assert_eq!(request.password.expose(), b"123456");
        assert_eq!(request.state.as_deref(), Some(&b"ab12"[..]));
        assert_eq!(
            request.client,
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(request.client_name, "http/127.0.0.1");
        assert_eq!(request.origin, "127.0.0.1");
    }

    #[tokio::test]
    async fn a_forward_is_a_reject_and_a_request_without_its_peer_is_refused() {
        let forward = Outcome::Forward {
            upstream: "legacy".into(),
            request: Box::new(AuthRequest {
                user_name: "bob".into(),
                password: "x".into(),
                state: None,
                client: "127.0.0.1".parse().unwrap(),
                client_name: String::new(),
                calling_station: None,
                origin: String::new(),
                request_id: None,
                reply_limit: None,
            }),
        };
        let (router, fake) = serve(forward);
        let (status, body) = call(
            router.clone(),
            Some("127.0.0.1:1"),
            "/validate/check?user=bob&pass=x",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["result"]["authentication"], "REJECT", "{json}");
        let (status, body) = call(
            router.clone(),
            None,
            "/validate/simplecheck?user=bob&pass=x",
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::FORBIDDEN, ":-("));
        let (status, _) = call(
            router,
            Some("192.0.2.1:1"),
            "/validate/check?user=bob&pass=x",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "not in the default allow-list"
        );
        assert_eq!(
            fake.asked.lock().unwrap().len(),
            1,
            "refusals never reach the engine"
        );
    }
}
