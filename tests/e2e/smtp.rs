//! SmtpSMSProvider and SMTPEmailProvider against a real SMTP server (aiosmtpd, started by the
//! test through `testkit/scripts/smtp_server.py`): plain, STARTTLS with a CA made by the
//! test, implicit TLS, AUTH right and wrong, STARTTLS required but not offered, a server that
//! never answers; then the whole RADIUS login with the OTP read from the delivered mail.

use tessera::delivery::smtp_email::{SmtpEmailConfig, SmtpEmailProvider};
use tessera::delivery::smtp_sms::{SmtpSmsConfig, SmtpSmsProvider};
use tessera::delivery::{Channel, DeliveryError, Message, Provider};
use tessera::secret::Secret;

use crate::util::peers::{Peer, Silent, otp_in, smtp_server};
use crate::util::{Server, Setup, tessera, write_config};
use testkit::ca::TestCa;

fn email_provider(keys: &str) -> SmtpEmailProvider {
    let config: SmtpEmailConfig = toml::from_str(keys).expect("provider keys");
    SmtpEmailProvider::new("mail", &config.check().expect("valid keys")).expect("provider")
}

fn sms_provider(keys: &str) -> SmtpSmsProvider {
    let config: SmtpSmsConfig = toml::from_str(keys).expect("provider keys");
    SmtpSmsProvider::new("smtpsms", &config.check().expect("valid keys")).expect("provider")
}

fn email(subject: Option<&str>) -> Message {
    Message {
        channel: Channel::Email,
        recipient: "bob@example.org".into(),
        subject: subject.map(String::from),
        text: Secret::from("Your code is 246810"),
        serial: "LSSM0001".into(),
        user: "alice".into(),
    }
}

fn sms() -> Message {
    Message {
        channel: Channel::Sms,
        recipient: "+49 170 1234567".into(),
        subject: None,
        text: Secret::from("Your code is 135791"),
        serial: "LSSM0001".into(),
        user: "alice".into(),
    }
}

fn data(record: &serde_json::Value) -> String {
    record["data"]
        .as_str()
        .unwrap_or_default()
        .replace("\r\n", "\n")
}

fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[tokio::test]
async fn plain_email_with_linotp_defaults_and_headers() {
    let smtp = smtp_server(&[]);
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}",
        smtp.port
    ));
    let receipt = p.send(&email(None)).await.unwrap();
    assert!(receipt.detail.starts_with("250"), "{}", receipt.detail);
    let r = &smtp.wait_for(1)[0];
    assert_eq!(r["mail_from"], "tessera@localhost");
    assert_eq!(r["rcpt_tos"], serde_json::json!(["bob@example.org"]));
    let d = data(r);
    assert_eq!(header(&d, "Subject"), Some("Your OTP"));
    assert_eq!(header(&d, "To"), Some("bob@example.org"));
    assert!(header(&d, "Date").is_some(), "{d}");
    assert!(header(&d, "Message-ID").is_some(), "{d}");
    assert!(d.contains("Your code is 246810"), "{d}");

    // The emailsubject policy's subject (carried by the message) wins over EMAIL_SUBJECT.
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1:{}\"\nEMAIL_SUBJECT = \"Configured\"\nEMAIL_FROM = \"otp@example.org\"",
        smtp.port
    ));
    p.send(&email(Some("From the policy"))).await.unwrap();
    let r = &smtp.wait_for(2)[1];
    assert_eq!(r["mail_from"], "otp@example.org");
    assert_eq!(header(&data(r), "Subject"), Some("From the policy"));
}

#[tokio::test]
async fn starttls_with_the_test_ca_and_without_it() {
    let ca = TestCa::new();
    let cert = ca.cert.to_str().unwrap();
    let key = ca.key.to_str().unwrap();
    let smtp = smtp_server(&["--cert", cert, "--key", key]);
    let keys = format!(
        "SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}\nSTART_TLS = true",
        smtp.port
    );
    let trusting = email_provider(&format!("{keys}\nCA_FILE = {:?}", ca.ca));
    trusting.send(&email(None)).await.unwrap();
    smtp.wait_for(1);

    // Without CA_FILE the test CA is unknown: the handshake fails and nothing is sent.
    let untrusting = email_provider(&keys);
    let error = untrusting.send(&email(None)).await.unwrap_err();
    assert!(
        error.to_string().contains("invalid peer certificate"),
        "{error}"
    );
    assert_eq!(smtp.records().len(), 1);
}

/// A `CA_FILE` replaces the system's roots (docs/src/providers.md, "Whom TLS trusts"): with the
/// server's CA among the system's roots (`SSL_CERT_FILE`, which rustls-native-certs reads), a
/// provider without `CA_FILE` delivers, and one whose `CA_FILE` names another CA refuses the
/// server's certificate and sends nothing.
#[test]
fn a_ca_file_replaces_the_system_roots() {
    let (server_ca, other_ca) = (TestCa::new(), TestCa::new());
    let cert = server_ca.cert.to_str().unwrap();
    let key = server_ca.key.to_str().unwrap();
    let smtp = smtp_server(&["--cert", cert, "--key", key]);
    let keys = format!(
        "class = \"SMTPEmailProvider\"\nSMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}\nSTART_TLS = true\n",
        smtp.port
    );
    let providers = format!(
        "[provider.email.system]\n{keys}default = true\n\n[provider.email.pinned]\n{keys}CA_FILE = {:?}\n",
        other_ca.ca
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &setup(&file_provider("sms"), &providers));
    let send = |name: &str| {
        tessera()
            .env("SSL_CERT_FILE", &server_ca.ca)
            .arg("--config")
            .arg(&config)
            .args(["provider", "test", name, "--to", "alice@example.org"])
            .args(["--channel", "email"])
            .output()
            .unwrap()
    };
    let trusted = send("system");
    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert!(trusted.status.success(), "{stderr}");
    smtp.wait_for(1);

    let pinned = send("pinned");
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    assert_eq!(pinned.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert_eq!(smtp.records().len(), 1);
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails() {
    let smtp = smtp_server(&[]);
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}\nSTART_TLS = \"True\"",
        smtp.port
    ));
    let error = p.send(&email(None)).await.unwrap_err();
    assert!(
        error.to_string().to_lowercase().contains("starttls"),
        "{error}"
    );
    assert!(smtp.records().is_empty());
}

#[tokio::test]
async fn implicit_tls_for_both_classes() {
    let ca = TestCa::new();
    let smtp = smtp_server(&[
        "--cert",
        ca.cert.to_str().unwrap(),
        "--key",
        ca.key.to_str().unwrap(),
        "--smtps",
    ]);
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}\nUSE_SSL = true\nCA_FILE = {:?}",
        smtp.port, ca.ca
    ));
    p.send(&email(None)).await.unwrap();
    let p = sms_provider(&format!(
        "mailserver = \"127.0.0.1:{}\"\nuse_ssl = true\nCA_FILE = {:?}\nmailto = \"<phone>@sms.example\"\nMSISDN = true",
        smtp.port, ca.ca
    ));
    p.send(&sms()).await.unwrap();
    smtp.wait_for(2);
}

#[tokio::test]
async fn auth_right_and_wrong() {
    let smtp = smtp_server(&["--auth", "smtp-user:smtp-secret"]);
    let base = format!("SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}", smtp.port);
    let right = email_provider(&format!(
        "{base}\nSMTP_USER = \"smtp-user\"\nSMTP_PASSWORD = \"smtp-secret\""
    ));
    right.send(&email(None)).await.unwrap();
    smtp.wait_for(1);

    let wrong = email_provider(&format!(
        "{base}\nSMTP_USER = \"smtp-user\"\nSMTP_PASSWORD = \"wrong-secret\""
    ));
    match wrong.send(&email(None)).await {
        Err(DeliveryError::Refused { reason, .. }) => {
            assert!(reason.contains("535"), "{reason}");
            assert!(!reason.contains("wrong-secret"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Without credentials the server refuses the mail (it requires AUTH).
    let none = email_provider(&base);
    assert!(matches!(
        none.send(&email(None)).await,
        Err(DeliveryError::Refused { .. })
    ));

    let sms_right = sms_provider(&format!(
        "mailserver = \"127.0.0.1\"\nmailserver_port = \"{}\"\nmailuser = \"smtp-user\"\nmailpassword = \"smtp-secret\"\nmailto = \"<phone>@sms.example\"\nMSISDN = 1",
        smtp.port
    ));
    sms_right.send(&sms()).await.unwrap();
    assert_eq!(smtp.wait_for(2).len(), 2);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let silent = Silent::start();
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1\"\nSMTP_PORT = {}\nTIMEOUT = 1",
        silent.port
    ));
    let error = p.send(&email(None)).await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Unavailable { .. }),
        "{error:?}"
    );
    let p = sms_provider(&format!(
        "mailserver = \"127.0.0.1:{}\"\nTIMEOUT = \"1\"\nmailto = \"gw@sms.example\"",
        silent.port
    ));
    assert!(matches!(
        p.send(&sms()).await,
        Err(DeliveryError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn email_template_file_fills_otp_serial_and_user() {
    let smtp = smtp_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("otp-mail.txt");
    std::fs::write(
        &template,
        "Hello <user>,\n\nyour code for token ${serial} is: <otp>\n",
    )
    .unwrap();
    let p = email_provider(&format!(
        "SMTP_SERVER = \"127.0.0.1:{}\"\nTEMPLATE = {:?}",
        smtp.port, template
    ));
    p.send(&email(None)).await.unwrap();
    let d = data(&smtp.wait_for(1)[0]);
    assert!(
        d.contains("Hello alice,\n\nyour code for token LSSM0001 is: Your code is 246810"),
        "{d}"
    );

    std::fs::write(&template, "no placeholder").unwrap();
    let config: SmtpEmailConfig = toml::from_str(&format!(
        "SMTP_SERVER = \"127.0.0.1\"\nTEMPLATE = {template:?}"
    ))
    .unwrap();
    let error = SmtpEmailProvider::new("mail", &config.check().unwrap())
        .err()
        .unwrap();
    assert!(error.contains("has no <otp>"), "{error}");
}

#[tokio::test]
async fn smtp_sms_replaces_phone_and_otp_like_linotp() {
    let smtp = smtp_server(&[]);
    let p = sms_provider(&format!(
        r#"mailserver = "127.0.0.1:{}"
mailsender = "otp@example.org"
mailto = "<phone>@sms.example"
subject = "<phone>"
body = "This is your OTP-value: <otp>"
MSISDN = true"#,
        smtp.port
    ));
    p.send(&sms()).await.unwrap();
    let r = &smtp.wait_for(1)[0];
    assert_eq!(r["mail_from"], "otp@example.org");
    assert_eq!(
        r["rcpt_tos"],
        serde_json::json!(["+491701234567@sms.example"])
    );
    let d = data(r);
    assert_eq!(header(&d, "Subject"), Some("+491701234567"));
    assert!(
        d.contains("This is your OTP-value: Your code is 135791"),
        "the whole SMS text replaces <otp>: {d}"
    );
}

/// A test config whose SMS and e-mail providers are the given blocks.
fn setup(sms: &str, email: &str) -> Setup {
    Setup {
        providers: format!("{sms}\n{email}\n"),
        ..Setup::default()
    }
}

fn file_provider(channel: &str) -> String {
    format!("[provider.{channel}.spool]\nclass = \"file\"\npath = \"spool.log\"\n")
}

/// The last delivered message's OTP.
fn otp_from(smtp: &Peer, n: usize) -> String {
    let records = smtp.wait_for(n);
    let d = data(&records[n - 1]);
    let body = d.split_once("\n\n").map(|(_, b)| b).unwrap_or(&d);
    otp_in(body)
}

#[test]
fn radius_login_with_the_otp_from_the_email() {
    let smtp = smtp_server(&["--auth", "smtp-user:smtp-secret"]);
    // LinOTP's JSON, pasted verbatim.
    let email = format!(
        r#"[provider.email.mail]
class = "linotp.lib.emailprovider.SMTPEmailProvider"
config_json = '''
{{
"SMTP_SERVER": "127.0.0.1",
"SMTP_PORT": {},
"SMTP_USER": "smtp-user",
"SMTP_PASSWORD": "smtp-secret",
"EMAIL_FROM": "linotp@example.com",
"EMAIL_SUBJECT": "Your OTP"
}}
'''
"#,
        smtp.port
    );
    let server = Server::start_with(&setup(&file_provider("sms"), &email));
    let first = server.auth("bob", "builder", None);
    first.expect("Access-Challenge");
    let otp = otp_from(&smtp, 1);
    assert_eq!(
        smtp.records()[0]["rcpt_tos"],
        serde_json::json!(["bob@example.org"])
    );
    server
        .auth("bob", &otp, Some(&first.state()))
        .expect("Access-Accept");
    let log = server.log_text();
    assert!(!log.contains("smtp-secret") && !log.contains(&otp), "{log}");
}

#[test]
fn radius_login_with_the_otp_from_the_smtp_sms_gateway() {
    let smtp = smtp_server(&[]);
    let sms = format!(
        "[provider.sms.mailgw]\nclass = \"smsprovider.SmtpSMSProvider.SmtpSMSProvider\"\nmailserver = \"127.0.0.1:{}\"\nmailto = \"<phone>@sms.example\"\nsubject = \"<phone>\"\nbody = \"<otp>\"\n",
        smtp.port
    );
    let server = Server::start_with(&setup(&sms, &file_provider("email")));
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let otp = otp_from(&smtp, 1);
    assert_eq!(
        smtp.records()[0]["rcpt_tos"],
        serde_json::json!(["+4917012345678@sms.example"])
    );
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn an_unreachable_mail_server_rejects_and_enrolls_afresh_next_time() {
    let silent = Silent::start();
    let sms = format!(
        "[provider.sms.mailgw]\nclass = \"SmtpSMSProvider\"\nmailserver = \"127.0.0.1:{}\"\nTIMEOUT = 0.5\nmailto = \"<phone>@sms.example\"\n",
        silent.port
    );
    let email = format!(
        "[provider.email.mail]\nclass = \"SMTPEmailProvider\"\nSMTP_SERVER = \"127.0.0.1:{}\"\nTIMEOUT = 0.5\n",
        silent.port
    );
    let server = Server::start_with(&setup(&sms, &email));
    for (user, password, words) in [
        ("alice", "wonderland", "SMS"),
        ("alice", "wonderland", "SMS"),
        ("bob", "builder", "e-mail"),
    ] {
        let reply = server.auth(user, password, None);
        reply.expect("Access-Reject");
        assert_eq!(
            reply.get("Reply-Message"),
            Some(format!("sending the OTP by {words} failed").as_str())
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server
        .log_text()
        .matches("reason=\"autoenrollment undone")
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
