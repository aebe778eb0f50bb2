//! HttpSMSProvider against a real HTTP gateway on loopback
//! (`testkit/scripts/http_gateway.py`): request shape (GET/POST, parameters, PARAMETER
//! override, basic auth, headers, proxy), LinOTP's RETURN_* rules, non-2xx, timeouts and
//! failover, the `provider test` command, and the whole RADIUS login with the OTP read from
//! what the gateway received.

use tessera::delivery::http_sms::{HttpSmsConfig, HttpSmsProvider};
use tessera::delivery::{Channel, DeliveryError, Message, Provider};
use tessera::secret::Secret;

use crate::util::peers::{Peer, Silent, http_gateway, otp_in};
use crate::util::{Server, Setup, tessera, write_config};
use testkit::ca::TestCa;
use testkit::ports::closed_port;

fn provider(keys: &str) -> HttpSmsProvider {
    let config: HttpSmsConfig = toml::from_str(keys).expect("provider keys");
    HttpSmsProvider::new("gw", &config.check().expect("valid keys")).expect("provider")
}

fn sms(to: &str) -> Message {
    Message {
        channel: Channel::Sms,
        recipient: to.into(),
        subject: None,
        text: Secret::from("Your OTP: 123456 & more"),
        serial: "LSSM0001".into(),
        user: "alice".into(),
    }
}

fn field<'a>(record: &'a serde_json::Value, part: &str, key: &str) -> Option<&'a str> {
    record[part][key].as_str()
}

#[tokio::test]
async fn get_puts_phone_text_and_parameters_in_the_query() {
    let gw = http_gateway(200, "ID=123", &[]);
    let p = provider(&format!(
        r#"URL = "{}"
HTTP_Method = "get"
SMS_TEXT_KEY = "text"
SMS_PHONENUMBER_KEY = "destination"
PARAMETER = {{ from = "0170111111", account = "company_ltd" }}
MSISDN = "true"
SUPPRESS_PREFIX = "+"
RETURN_SUCCESS = "ID""#,
        gw.url("/sms_send_api.cgi")
    ));
    let receipt = p.send(&sms("+49 (170) 123-4567")).await.unwrap();
    assert_eq!(receipt.detail, "HTTP 200: ID=123");
    let r = &gw.wait_for(1)[0];
    assert_eq!(r["method"], "GET");
    assert_eq!(r["url_path"], "/sms_send_api.cgi");
    assert_eq!(field(r, "query", "destination"), Some("491701234567"));
    assert_eq!(field(r, "query", "text"), Some("Your OTP: 123456 & more"));
    assert_eq!(field(r, "query", "from"), Some("0170111111"));
    assert_eq!(field(r, "query", "account"), Some("company_ltd"));
}

#[tokio::test]
async fn post_is_the_default_and_parameter_overrides_phone_and_text() {
    let gw = http_gateway(200, "OK", &[]);
    let p = provider(&format!(
        r#"URL = "{}"
PARAMETER = {{ phone = "fixed-number", api_id = 12980436 }}"#,
        gw.url("/send")
    ));
    p.send(&sms("+4917012345678")).await.unwrap();
    let r = &gw.wait_for(1)[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["query"], serde_json::json!({}));
    assert_eq!(field(r, "form", "phone"), Some("fixed-number"));
    assert_eq!(field(r, "form", "sms"), Some("Your OTP: 123456 & more"));
    assert_eq!(field(r, "form", "api_id"), Some("12980436"));
}

#[tokio::test]
async fn basic_auth_and_headers_reach_the_gateway() {
    let gw = http_gateway(200, "OK", &[]);
    let p = provider(&format!(
        r#"URL = "{}"
USERNAME = "gwuser"
PASSWORD = "gw-secret"
HEADERS = {{ AUTH_TOKEN = "authenticated" }}"#,
        gw.url("/send")
    ));
    p.send(&sms("+4917012345678")).await.unwrap();
    let r = &gw.wait_for(1)[0];
    // base64("gwuser:gw-secret")
    assert_eq!(
        field(r, "headers", "authorization"),
        Some("Basic Z3d1c2VyOmd3LXNlY3JldA==")
    );
    assert_eq!(field(r, "headers", "auth_token"), Some("authenticated"));
}

/// LinOTP's own cases (test_httpsms.py) and the precedence between the rules.
#[tokio::test]
async fn return_rules_decide_like_linotp() {
    let cases: &[(&str, &str, bool)] = &[
        ("RETURN_SUCCESS = \"ID\"", "ID=123", true),
        ("RETURN_SUCCESS = \"ID\"", "MISSING PARAMETERS", false),
        ("RETURN_FAIL = \"FAILED\"", "FAILED", false),
        ("RETURN_FAIL = \"FAILED\"", "SENT", true),
        (
            "RETURN_SUCCESS_REGEX = \"<Status>queued</Status>\"",
            "<Response><Status>queued</Status></Response>",
            true,
        ),
        (
            "RETURN_SUCCESS_REGEX = \"(result:0|success)\"",
            "result:1",
            false,
        ),
        (
            "RETURN_FAIL_REGEX = \"<Status>400</Status>\"",
            "<Response><Status>400</Status></Response>",
            false,
        ),
        // The success regex outranks every other rule.
        (
            "RETURN_SUCCESS_REGEX = \"queued\"\nRETURN_SUCCESS = \"ID\"",
            "status: queued",
            true,
        ),
        // The fail regex outranks the prefixes.
        (
            "RETURN_FAIL_REGEX = \"error\"\nRETURN_SUCCESS = \"ID\"",
            "ID=1 error",
            false,
        ),
        // No rule: anything goes (an unknown key such as RETURN_FAILED is an error at load).
        ("", "whatever", true),
    ];
    for (rule, body, ok) in cases {
        let gw = http_gateway(200, body, &[]);
        let p = provider(&format!("URL = \"{}\"\n{rule}", gw.url("/send")));
        let result = p.send(&sms("+4917012345678")).await;
        match (ok, result) {
            (true, Ok(_)) => {}
            (false, Err(DeliveryError::Refused { reason, .. })) => {
                assert!(reason.contains(body), "the reply is in the error: {reason}");
            }
            (_, other) => panic!("{rule} with reply {body:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn non_2xx_is_a_failure_whatever_the_body_says() {
    let gw = http_gateway(500, "ID=123", &[]);
    let p = provider(&format!(
        "URL = \"{}\"\nRETURN_SUCCESS = \"ID\"",
        gw.url("/send")
    ));
    match p.send(&sms("+4917012345678")).await {
        Err(DeliveryError::Refused { reason, .. }) => {
            assert!(reason.contains("HTTP 500: ID=123"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_gateway_echoing_the_text_does_not_put_the_otp_in_the_error() {
    let gw = http_gateway(400, "rejected: Your OTP: 123456 & more", &[]);
    let p = provider(&format!("URL = \"{}\"", gw.url("/send")));
    let error = p.send(&sms("+4917012345678")).await.unwrap_err();
    assert!(!error.to_string().contains("123456"), "{error}");
}

#[tokio::test]
async fn a_gateway_slower_than_the_timeout_is_unavailable() {
    let gw = http_gateway(200, "OK", &["--delay", "10"]);
    let p = provider(&format!("URL = \"{}\"\ntimeout = 0.5", gw.url("/send")));
    let error = p.send(&sms("+4917012345678")).await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Unavailable { .. }),
        "{error:?}"
    );
    gw.wait_for(1);
}

#[tokio::test]
async fn a_silent_server_and_a_closed_port_are_unavailable() {
    let silent = Silent::start();
    for port in [silent.port, closed_port()] {
        let p = provider(&format!(
            "URL = \"http://127.0.0.1:{port}/send\"\nTIMEOUT = \"1,1\""
        ));
        let error = p.send(&sms("+4917012345678")).await.unwrap_err();
        assert!(
            matches!(error, DeliveryError::Unavailable { .. }),
            "{error:?}"
        );
        assert!(!error.to_string().contains("123456"), "{error}");
    }
}

#[tokio::test]
async fn a_proxy_that_requires_credentials() {
    let proxy = http_gateway(200, "ID=9", &["--proxy-auth", "puser:proxy-secret"]);
    // The gateway's host does not exist: only the proxy can have answered.
    let url = "http://sms-gateway.invalid/send";
    let with = provider(&format!(
        "URL = \"{url}\"\nHTTP_Method = \"GET\"\nPROXY = \"http://puser:proxy-secret@127.0.0.1:{}\"",
        proxy.port
    ));
    with.send(&sms("+4917012345678")).await.unwrap();
    let r = &proxy.wait_for(1)[0];
    let path = r["path"].as_str().unwrap();
    assert!(path.starts_with(url), "absolute-form request: {path}");
    assert_eq!(field(r, "query", "phone"), Some("+4917012345678"));

    let without = provider(&format!(
        "URL = \"{url}\"\nPROXY = \"http://127.0.0.1:{}\"",
        proxy.port
    ));
    match without.send(&sms("+4917012345678")).await {
        Err(DeliveryError::Refused { reason, .. }) => {
            assert!(reason.contains("HTTP 407"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let wrong = provider(&format!(
        "URL = \"{url}\"\nPROXY = \"http://puser:wrong-secret@127.0.0.1:{}\"",
        proxy.port
    ));
    let error = wrong.send(&sms("+4917012345678")).await.unwrap_err();
    assert!(error.to_string().contains("HTTP 407"), "{error}");
    assert!(!error.to_string().contains("wrong-secret"), "{error}");
}

#[tokio::test]
async fn https_gateway_with_server_certificate() {
    let ca = TestCa::new();
    let gw = http_gateway(
        200,
        "OK",
        &[
            "--cert",
            ca.cert.to_str().unwrap(),
            "--key",
            ca.key.to_str().unwrap(),
        ],
    );
    let url = format!("https://127.0.0.1:{}/send", gw.port);
    let trusting = provider(&format!(
        "URL = \"{url}\"\nSERVER_CERTIFICATE = {:?}",
        ca.ca
    ));
    trusting.send(&sms("+4917012345678")).await.unwrap();
    gw.wait_for(1);

    // The test CA is not in the system's store: without SERVER_CERTIFICATE nothing is sent.
    let untrusting = provider(&format!("URL = \"{url}\""));
    let error = untrusting.send(&sms("+4917012345678")).await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Unavailable { .. }),
        "{error:?}"
    );
    assert_eq!(gw.records().len(), 1);

    // LinOTP's `false`: no verification at all.
    let blind = provider(&format!("URL = \"{url}\"\nSERVER_CERTIFICATE = false"));
    blind.send(&sms("+4917012345678")).await.unwrap();
    gw.wait_for(2);
}

/// `[provider.sms.NAME]` blocks for an HTTP gateway.
fn http_provider(name: &str, gw: &Peer, extra: &str) -> String {
    format!(
        "[provider.sms.{name}]\nclass = \"HttpSMSProvider\"\nURL = \"{}\"\nUSERNAME = \"gwuser\"\nPASSWORD = \"gw-secret\"\n{extra}\n",
        gw.url("/send")
    )
}

fn setup_with(providers: String, sms_provider: Option<&str>) -> Setup {
    let mut setup = Setup {
        providers: format!(
            "{providers}\n[provider.email.spool]\nclass = \"file\"\npath = \"spool.log\"\n"
        ),
        ..Setup::default()
    };
    if let Some(list) = sms_provider {
        setup.policies.push_str(&format!(
            "\n[[policy]]\nname = \"gateways\"\nscope = \"authentication\"\naction = \"sms_provider={list}\"\n"
        ));
    }
    setup
}

#[test]
fn radius_login_with_the_otp_from_the_gateway() {
    let gw = http_gateway(200, "ID=42", &[]);
    let server = Server::start_with(&setup_with(
        http_provider(
            "gw",
            &gw,
            "RETURN_SUCCESS = \"ID\"\nSMS_TEXT_KEY = \"text\"",
        ),
        None,
    ));
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let r = &gw.wait_for(1)[0];
    assert_eq!(field(r, "form", "phone"), Some("+4917012345678"));
    let otp = otp_in(field(r, "form", "text").unwrap());
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    let log = server.log_text();
    assert!(!log.contains(&otp), "the OTP is not logged:\n{log}");
    assert!(!log.contains("gw-secret"), "the password is not logged");
}

#[test]
fn a_slow_gateway_fails_over_to_the_next() {
    let slow = http_gateway(200, "ID=1", &["--delay", "10"]);
    let fast = http_gateway(200, "ID=2", &[]);
    let providers = format!(
        "{}{}",
        http_provider("slow", &slow, "timeout = 0.5"),
        http_provider("fast", &fast, "")
    );
    let server = Server::start_with(&setup_with(providers, Some("slow fast")));
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    slow.wait_for(1);
    let r = &fast.wait_for(1)[0];
    let otp = otp_in(field(r, "form", "sms").unwrap());
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    server.wait_for_log("provider unavailable");

    // The slow gateway is now in back-off: the next login goes straight to the fast one.
    server
        .auth("dave", "davepw", None)
        .expect("Access-Challenge");
    fast.wait_for(2);
    assert_eq!(slow.records().len(), 1, "the slow gateway was skipped");
}

#[test]
fn a_refused_sms_rejects_and_leaves_no_token_behind() {
    let gw = http_gateway(200, "FAILED: no credit", &[]);
    let server = Server::start_with(&setup_with(
        http_provider("gw", &gw, "RETURN_FAIL = \"FAILED\""),
        None,
    ));
    for attempt in 1..=2 {
        let reply = server.auth("alice", "wonderland", None);
        reply.expect("Access-Reject");
        assert_eq!(
            reply.get("Reply-Message"),
            Some("sending the OTP by SMS failed")
        );
        gw.wait_for(attempt);
    }
    // Both attempts enrolled afresh (and undid it): nothing was half-enrolled the first time.
    server.wait_for_log("autoenrollment undone");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server
        .log_text()
        .matches("reason=\"autoenrollment undone")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = server.log_text();
    assert!(log.contains("no credit"), "the gateway's reply is logged");
}

#[test]
fn provider_test_command_prints_the_gateway_reply() {
    let good = http_gateway(200, "ID=77", &[]);
    let bad = http_gateway(200, "FAILED", &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &setup_with(
            format!(
                "{}{}",
                http_provider("good", &good, ""),
                http_provider("bad", &bad, "RETURN_FAIL = \"FAILED\"")
            ),
            None,
        ),
    );
    let out = tessera()
        .arg("--config")
        .arg(&config)
        .args(["provider", "test", "good", "--to", "+4917012345678"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ID=77"), "{stdout}");
    let r = &good.wait_for(1)[0];
    assert_eq!(field(r, "form", "sms"), Some("tessera test message"));

    let out = tessera()
        .arg("--config")
        .arg(&config)
        .args([
            "provider",
            "test",
            "bad",
            "--to",
            "+4917012345678",
            "--channel",
            "sms",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the message") && stderr.contains("FAILED"),
        "{stderr}"
    );
}

#[test]
fn single_quoted_linotp_json_stops_the_server_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let providers = "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nconfig_json = '''\n{\n 'URL': 'http://gw/send'\n}\n'''\n";
    let config = write_config(dir.path(), &setup_with(providers.into(), None));
    let text = std::fs::read_to_string(&config).unwrap();
    let bad_line = text
        .lines()
        .position(|l| l.contains("'URL'"))
        .map(|i| i + 1)
        .unwrap();
    for command in ["check-config", "serve"] {
        let out = tessera()
            .arg("--config")
            .arg(&config)
            .arg(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        let want = format!(
            "tessera.toml:{bad_line}: provider.sms.gw.config_json: invalid JSON at line 2, column 2"
        );
        assert!(stderr.contains(&want), "{command}: {stderr}");
    }
}

/// Issue 13: a gateway whose error reply echoes the request put `PARAMETER` and `HEADERS`
/// values, URL query values and basic-auth credentials into the WARN line, the decision line
/// and the audit. Every configured secret value is now redacted — as written, URL-encoded and
/// base64 — from whatever the gateway says.
#[test]
fn issue_13_an_echoing_gateway_gets_no_secret_into_log_or_audit() {
    let gw = http_gateway(400, "rejected:", &["--echo"]);
    let mut url = gw.url("/send");
    url.push_str("?account=acct-secret-77");
    let providers = format!(
        "[provider.sms.gw]\nclass = \"HttpSMSProvider\"\nURL = \"{url}\"\n\
         USERNAME = \"gwuser\"\nPASSWORD = \"gw pass/word\"\n\
         PARAMETER = {{ apikey = \"api key+secret/1\" }}\n\
         HEADERS = {{ X-Api-Token = \"hdr-token-9876\" }}\n"
    );
    let server = Server::start_with(&setup_with(providers, None));
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Reject");
    let request = &gw.wait_for(1)[0];
    assert_eq!(field(request, "form", "apikey"), Some("api key+secret/1"));
    let line = server.wait_for_log("result=\"reject\"");
    assert!(line.contains("HTTP 400: rejected:"), "{line}");
    assert!(line.contains("***"), "the echo is there, redacted: {line}");

    let audit = crate::util::tessera()
        .arg("--config")
        .arg(server.dir.path().join("tessera.toml"))
        .args(["audit", "--json"])
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout).into_owned();
    let log = server.log_text();
    let forms = [
        "acct-secret-77",
        "gw pass/word",
        "gw+pass%2Fword",
        "api key+secret/1",
        "api+key%2Bsecret%2F1",
        "hdr-token-9876",
        // base64("gwuser:gw pass/word"), as in the echoed Authorization header
        "Z3d1c2VyOmd3IHBhc3Mvd29yZA",
    ];
    for text in [&log, &audit] {
        for secret in forms {
            assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
        }
    }
    assert!(audit.contains("HTTP 400: rejected:"), "{audit}");
}

/// Issue 13: without `default = true` the default provider was the alphabetically first, not
/// the first in the file as documented.
#[test]
fn issue_13_the_default_provider_is_the_first_in_the_file() {
    let providers = "[provider.sms.zeta]\nclass = \"file\"\npath = \"zeta.log\"\n\n\
                     [provider.sms.alpha]\nclass = \"file\"\npath = \"alpha.log\"\n"
        .to_string();
    let server = Server::start_with(&setup_with(providers, None));
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let zeta = std::fs::read_to_string(server.dir.path().join("zeta.log")).unwrap_or_default();
    assert!(zeta.contains("+4917012345678"), "zeta.log: {zeta:?}");
    assert!(!server.dir.path().join("alpha.log").exists());

    // `default = true` still wins over the order.
    let providers = "[provider.sms.zeta]\nclass = \"file\"\npath = \"zeta.log\"\n\n\
                     [provider.sms.alpha]\nclass = \"file\"\npath = \"alpha.log\"\ndefault = true\n"
        .to_string();
    let server = Server::start_with(&setup_with(providers, None));
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    assert!(server.dir.path().join("alpha.log").exists());
    assert!(!server.dir.path().join("zeta.log").exists());
}
