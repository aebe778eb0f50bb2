//! The admin API (issue 25) without a browser, on the real binary: operators log in with their
//! directory password and a code from the spool, through tessera's own engine; sessions,
//! CSRF, cross-site requests, expiry and forged cookies; roles (a helpdesk operator cannot
//! remove or enroll) and the identity rules (a name variant of an operator holds its role, a
//! variant of anyone else none); changes that RADIUS sees at once (disable, enable, the end of
//! a back-off); every change audited with its operator.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Server, Setup};

/// tessera with `[http]` and `[admin]`: dave is admin, alice helpdesk; `admin` adds keys.
pub(crate) fn setup(admin: &str, auth: &str) -> Setup {
    Setup {
        auth: auth.into(),
        extra: format!(
            "[http]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nenabled = true\nadmin = \"dave\"\n\
             helpdesk = \"alice\"\n{admin}\n"
        ),
        ..Setup::default()
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request (HTTP/1.1, `Connection: close`) with `headers` and `body`.
pub(crate) fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A browser-less client: keeps the session cookie and the CSRF token.
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) cookie: Option<String>,
    pub(crate) csrf: Option<String>,
}

impl Client {
    pub(crate) fn new(server: &Server) -> Client {
        Client {
            addr: server.http_addr.expect("no [http] listener"),
            cookie: None,
            csrf: None,
        }
    }

    /// A request with the cookie and (for POST and DELETE) the CSRF header; JSON body.
    pub(crate) fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let cookie = self.cookie.as_ref().map(|c| format!("tessera_session={c}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie));
        }
        if method != "GET"
            && let Some(csrf) = &self.csrf
        {
            headers.push(("X-CSRF-Token", csrf));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let answer = send(self.addr, method, path, &headers, &body);
        if let Some(set) = answer.header("set-cookie") {
            let value = set
                .split(';')
                .next()
                .and_then(|p| p.split_once('='))
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            self.cookie = (!value.is_empty()).then_some(value);
        }
        answer
    }

    /// `POST /api/v1/login` with `user` and `password`, then with the code from the spool.
    pub(crate) fn login(server: &Server, user: &str, password: &str) -> Client {
        let mut client = Client::new(server);
        let first = client.call(
            "POST",
            "/api/v1/login",
            Some(json!({"user": user, "password": password})),
        );
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.json()["status"], "challenge", "{}", first.body);
        let code = server.last_otp();
        let second = client.call("POST", "/api/v1/login", Some(json!({"code": code})));
        assert_eq!(second.status, 200, "{}", second.body);
        let session = &second.json()["session"];
        client.csrf = Some(session["csrf"].as_str().expect("csrf").to_string());
        client
    }
}

/// A first RADIUS login with password and code: enrolls the user's SMS or e-mail token.
pub(crate) fn radius_login(server: &Server, user: &str, password: &str) {
    let first = server.auth(user, password, None);
    first.expect("Access-Challenge");
    let otp = server.last_otp();
    server
        .auth(user, &otp, Some(&first.state()))
        .expect("Access-Accept");
}

/// The serial of `user`'s only token, as the admin API lists it.
pub(crate) fn serial_of(client: &mut Client, user: &str) -> String {
    let answer = client.call("GET", &format!("/api/v1/users/local/{user}/tokens"), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["tokens"][0]["serial"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", answer.body))
        .to_string()
}

/// After the disable and enable of bob's token by dave: the audit names the operator, the
/// address and what changed, the CSV export too; the state; 400s; nothing secret in the log.
fn audit_state_and_bad_input(server: &Server, dave: &mut Client) {
    // The audit names the operator, the address and what changed; the CSV export too.
    let audit = dave.call("GET", "/api/v1/audit?user=bob&result=ok", None);
    assert_eq!(audit.status, 200, "{}", audit.body);
    let rows = audit.json()["rows"].as_array().unwrap().clone();
    let changes: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["client"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("token enable", "admin/127.0.0.1", "by dave@local (admin)"),
            ("token disable", "admin/127.0.0.1", "by dave@local (admin)"),
        ],
        "{}",
        audit.body
    );
    let csv = dave.call("GET", "/api/v1/audit?user=bob&format=csv", None);
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.header("content-type")
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert!(
        csv.body
            .starts_with("time,client,user,realm,serial,action,result,reason\r\n")
    );
    assert!(csv.body.contains("token disable"), "{}", csv.body);
    let login = dave.call("GET", "/api/v1/audit?user=dave&client=admin", None);
    assert!(login.body.contains("admin login"), "{}", login.body);

    let state = dave.call("GET", "/api/v1/state", None);
    assert_eq!(state.status, 200, "{}", state.body);
    assert_eq!(state.json()["store"]["ok"], true, "{}", state.body);
    assert!(
        state.json()["decisions"]["accept"].as_u64().unwrap() >= 3,
        "{}",
        state.body
    );

    // Bad input is a 400 that says what is wrong.
    let bad = dave.call(
        "POST",
        "/api/v1/tokens",
        Some(json!({"type": "motp", "user": "bob"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown token type"),
        "{}",
        bad.body
    );
    let bad = dave.call("GET", "/api/v1/audit?since=soon", None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    // Neither the password nor a code reached the log.
    let log = server.log_text();
    assert!(!log.contains("davepw"), "password in the log");
    assert!(!log.contains(&server.last_otp()), "code in the log");
}

#[test]
fn an_operator_logs_in_with_a_code_and_disabling_a_token_refuses_radius_until_enabled() {
    let server = Server::start_with(&setup("", ""));
    radius_login(&server, "bob", "builder");
    let mut dave = Client::login(&server, "dave", "davepw");
    // Every admin answer carries the security headers.
    let session = dave.call("GET", "/api/v1/session", None);
    assert_eq!(session.status, 200, "{}", session.body);
    assert_eq!(session.json()["role"], "admin");
    assert_eq!(session.json()["user"], "dave");
    let csp = session.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(session.header("cache-control"), Some("no-store"));
    assert_eq!(session.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(session.header("referrer-policy"), Some("no-referrer"));

    let found = dave.call("GET", "/api/v1/users?q=bo", None);
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json()["users"][0]["user"], "bob", "{}", found.body);
    let tokens = dave.call("GET", "/api/v1/users/local/bob/tokens", None);
    let token = &tokens.json()["tokens"][0];
    assert_eq!(token["type"], "email", "{}", tokens.body);
    assert_eq!(token["email"], "b**@example.org", "never the whole address");
    assert!(token["last_use"].as_i64().is_some(), "{}", tokens.body);
    assert!(!tokens.body.contains("seed"), "{}", tokens.body);
    let serial = token["serial"].as_str().unwrap().to_string();

    let disabled = dave.call("POST", &format!("/api/v1/tokens/{serial}/disable"), None);
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.json()["active"], false);
    server.auth("bob", "builder", None).expect("Access-Reject");

    let enabled = dave.call("POST", &format!("/api/v1/tokens/{serial}/enable"), None);
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    radius_login(&server, "bob", "builder");

    audit_state_and_bad_input(&server, &mut dave);

    let out = dave.call("POST", "/api/v1/logout", None);
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(dave.call("GET", "/api/v1/session", None).status, 401);
}

#[test]
fn csrf_cross_site_requests_forged_cookies_and_strangers_are_refused() {
    let server = Server::start_with(&setup("", ""));
    radius_login(&server, "bob", "builder");
    let mut dave = Client::login(&server, "dave", "davepw");
    let serial = serial_of(&mut dave, "bob");
    let path = format!("/api/v1/tokens/{serial}/disable");
    let csrf = dave.csrf.take();
    let missing = dave.call("POST", &path, None);
    assert_eq!(missing.status, 403, "{}", missing.body);
    assert!(missing.body.contains("CSRF"), "{}", missing.body);
    dave.csrf = Some("0".repeat(64));
    assert_eq!(dave.call("POST", &path, None).status, 403);
    dave.csrf = csrf.clone();
    // The right token from another site's page: refused on its Origin.
    let cookie = format!("tessera_session={}", dave.cookie.clone().unwrap());
    let csrf = csrf.unwrap();
    let headers = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    let cross = send(dave.addr, "POST", &path, &headers, "");
    assert_eq!(cross.status, 403, "{}", cross.body);
    let headers = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    assert_eq!(send(dave.addr, "POST", &path, &headers, "").status, 403);
    // A form posting the token as a field works (the page's way).
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Sec-Fetch-Site", "same-origin"),
        // Under Referrer-Policy: no-referrer a browser withholds a form's origin.
        ("Origin", "null"),
    ];
    let body = format!("csrf={csrf}");
    let posted = send(
        dave.addr,
        "POST",
        &format!("/api/v1/tokens/{serial}/enable"),
        &form,
        &body,
    );
    assert_eq!(posted.status, 200, "{}", posted.body);
    // A forged cookie, and none.
    let mut forged = Client::new(&server);
    forged.cookie = Some("ab".repeat(32));
    let answer = forged.call("GET", "/api/v1/session", None);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(
        Client::new(&server)
            .call("GET", "/api/v1/users?q=b", None)
            .status,
        401
    );
    // None of the refused requests changed anything.
    let token = dave.call("GET", &format!("/api/v1/tokens/{serial}"), None);
    assert_eq!(token.json()["active"], true, "{}", token.body);
    let disables = dave.call("GET", "/api/v1/audit?user=bob&result=ok", None);
    assert!(
        !disables.body.contains("token disable"),
        "{}",
        disables.body
    );
}

#[test]
fn an_idle_session_expires() {
    let server = Server::start_with(&setup("session_idle_timeout = 2\n", ""));
    let mut dave = Client::login(&server, "dave", "davepw");
    assert_eq!(dave.call("GET", "/api/v1/session", None).status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let expired = dave.call("GET", "/api/v1/session", None);
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);
}

#[test]
fn a_helpdesk_operator_cannot_remove_enroll_or_export() {
    let server = Server::start_with(&setup("", ""));
    radius_login(&server, "bob", "builder");
    let mut alice = Client::login(&server, "alice", "wonderland");
    assert_eq!(
        alice.call("GET", "/api/v1/session", None).json()["role"],
        "helpdesk"
    );
    let serial = serial_of(&mut alice, "bob");
    for (method, path, body) in [
        ("DELETE", format!("/api/v1/tokens/{serial}"), None),
        ("POST", format!("/api/v1/tokens/{serial}/remove"), None),
        (
            "POST",
            "/api/v1/tokens".to_string(),
            Some(json!({"type": "totp", "user": "carol"})),
        ),
        ("GET", "/api/v1/audit?format=csv".to_string(), None),
    ] {
        let answer = alice.call(method, &path, body);
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
    }
    // The helpdesk never sees a whole phone number.
    let found = alice.call("GET", "/api/v1/users?q=LIC", None);
    assert_eq!(
        found.json()["users"][0]["mobile"],
        "+49********678",
        "{}",
        found.body
    );
    let own = alice.call("GET", "/api/v1/users/local/alice/tokens", None);
    assert_eq!(
        own.json()["tokens"][0]["phone"],
        "+49********678",
        "{}",
        own.body
    );
    assert!(!own.body.contains("+4917012345678"), "{}", own.body);
    // What the helpdesk may do, it may.
    let reset = alice.call("POST", &format!("/api/v1/tokens/{serial}/reset"), None);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let described = alice.call(
        "POST",
        &format!("/api/v1/tokens/{serial}/description"),
        Some(json!({"description": "front desk phone"})),
    );
    assert_eq!(described.status, 200, "{}", described.body);
    assert_eq!(described.json()["description"], "front desk phone");
    let audit = alice
        .call("GET", "/api/v1/audit?user=bob&result=ok&limit=1", None)
        .json();
    assert_eq!(
        audit["rows"][0]["reason"], "by alice@local (helpdesk): description: \"front desk phone\"",
        "{audit}"
    );
    let (_, list, _) = server.cli(&["token", "list", "--user", "carol"], "");
    assert!(!list.contains("TOTP"), "{list}");
}

#[test]
fn a_name_variant_of_an_operator_holds_its_role_and_of_anyone_else_none() {
    let server = Server::start_with(&setup("", ""));
    let mut variant = Client::login(&server, "DAVE", "davepw");
    let session = variant.call("GET", "/api/v1/session", None).json();
    assert_eq!(
        (session["user"].as_str(), session["role"].as_str()),
        (Some("dave"), Some("admin"))
    );
    let mut qualified = Client::login(&server, " Alice@local", "wonderland");
    let session = qualified.call("GET", "/api/v1/session", None).json();
    assert_eq!(
        (session["user"].as_str(), session["role"].as_str()),
        (Some("alice"), Some("helpdesk"))
    );
    // bob has no role: his right password and code end in 403, and no session.
    radius_login(&server, "bob", "builder");
    let mut bob = Client::new(&server);
    let first = bob.call(
        "POST",
        "/api/v1/login",
        Some(json!({"user": "BOB", "password": "builder"})),
    );
    assert_eq!(first.json()["status"], "challenge", "{}", first.body);
    let code = server.last_otp();
    let refused = bob.call("POST", "/api/v1/login", Some(json!({"code": code})));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("bob@local has no role"),
        "{}",
        refused.body
    );
    assert_eq!(bob.call("GET", "/api/v1/session", None).status, 401);
    // Only one token each: the variants are the same identities.
    let (_, list, _) = server.cli(&["token", "list", "--json"], "");
    let owners: Vec<String> = serde_json::from_str::<Value>(&list)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = owners.clone();
    sorted.sort();
    assert_eq!(sorted, ["alice", "bob", "dave"], "{list}");
}

#[test]
fn a_wrong_code_is_refused_and_the_back_off_holds_for_operators_too() {
    let server = Server::start_with(&setup("", "backoff_after = 2\nbackoff_initial = 60\n"));
    let mut eve = Client::new(&server);
    for _ in 0..2 {
        let wrong = eve.call(
            "POST",
            "/api/v1/login",
            Some(json!({"user": "dave", "password": "nope"})),
        );
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }
    // Backing off now: even the right password is not checked.
    let held = eve.call(
        "POST",
        "/api/v1/login",
        Some(json!({"user": "dave", "password": "davepw"})),
    );
    assert_eq!(held.status, 401, "{}", held.body);
    assert!(server.spool().is_empty(), "no code was sent");
    // A code without a login waiting for it.
    let lone = Client::new(&server).call("POST", "/api/v1/login", Some(json!({"code": "123456"})));
    assert_eq!(lone.status, 401, "{}", lone.body);
}

#[test]
fn reset_ends_a_back_off_and_radius_lets_the_user_in_again() {
    let server = Server::start_with(&setup("", "backoff_after = 2\nbackoff_initial = 60\n"));
    radius_login(&server, "bob", "builder");
    for _ in 0..3 {
        server.auth("bob", "wrong", None).expect("Access-Reject");
    }
    // The right password is refused unchecked while bob backs off.
    server.auth("bob", "builder", None).expect("Access-Reject");
    let mut alice = Client::login(&server, "alice", "wonderland");
    let tokens = alice
        .call("GET", "/api/v1/users/local/bob/tokens", None)
        .json();
    assert_eq!(tokens["backing_off"], true, "{tokens}");
    let serial = tokens["tokens"][0]["serial"].as_str().unwrap().to_string();
    let reset = alice.call("POST", &format!("/api/v1/tokens/{serial}/reset"), None);
    assert_eq!(reset.status, 200, "{}", reset.body);
    let tokens = alice
        .call("GET", "/api/v1/users/local/bob/tokens", None)
        .json();
    assert_eq!(tokens["backing_off"], false, "{tokens}");
    radius_login(&server, "bob", "builder");
    let audit = alice
        .call("GET", "/api/v1/audit?user=bob&result=ok", None)
        .json();
    let row = &audit["rows"][0];
    assert_eq!(row["action"], "token unlock", "{audit}");
    assert_eq!(
        row["reason"], "by alice@local (helpdesk): fail counter reset, back-off ended",
        "{audit}"
    );
}

#[test]
fn a_caller_outside_admin_allow_gets_403_and_without_admin_there_is_no_api() {
    let server = Server::start_with(&setup("allow = [\"192.0.2.0/24\"]\n", ""));
    let mut stranger = Client::new(&server);
    let login = stranger.call(
        "POST",
        "/api/v1/login",
        Some(json!({"user": "dave", "password": "davepw"})),
    );
    assert_eq!(login.status, 403, "{}", login.body);
    assert!(server.spool().is_empty(), "the engine was not asked");
    // /validate/* keeps its own allow-list.
    let check = send(
        stranger.addr,
        "GET",
        "/validate/check?user=dave&pass=davepw",
        &[],
        "",
    );
    assert_eq!(check.status, 200, "{}", check.body);

    let off = Server::start_with(&Setup {
        extra: "[http]\nlisten = [\"127.0.0.1:0\"]\n".into(),
        ..Setup::default()
    });
    let answer = Client::new(&off).call(
        "POST",
        "/api/v1/login",
        Some(json!({"user": "dave", "password": "davepw"})),
    );
    assert_eq!(answer.status, 404, "{}", answer.body);
}
