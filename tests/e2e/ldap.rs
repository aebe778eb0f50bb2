//! The LDAP directory against a real OpenLDAP `slapd` started by each test: login by uid,
//! wrong and empty passwords, missing attributes, attribute mapping, StartTLS and ldaps with a
//! CA made by the test, failover, a directory that goes down and comes back, filter injection
//! and ambiguous logins.

use std::time::{Duration, Instant};

use tessera::radius::codec::Code;

use crate::radius::RawClient;
use crate::util::slapd::{BASE_DN, READER_DN, READER_PW, Slapd};
use crate::util::{SECRET, Server, Setup, tessera, write_config};
use testkit::ports::free_port;

/// A setup whose default realm `corp` is the LDAP directory (URIs `uris`, `extra` lines added
/// to its table) and whose realm `local` is the users file.
fn setup(uris: &[String], extra: &str) -> Setup {
    let uris = uris
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Setup {
        directories: format!(
            r#"[directory.corp]
type = "ldap"
uri = [{uris}]
base_dn = "{BASE_DN}"
search_filter = "(&(objectClass=inetOrgPerson)(uid=%s))"
timeout = 3
{extra}

[directory.local]
type = "users_file"
path = "users.toml"

[[realm]]
name = "corp"
directories = ["corp"]
default = true

[[realm]]
name = "local"
directories = ["local"]
"#
        ),
        ..Setup::default()
    }
}

/// The service-account lines.
fn service_account() -> String {
    format!("bind_dn = \"{READER_DN}\"\nbind_password = \"{READER_PW}\"\n")
}

/// The audit reasons written so far (the audit row is written just after the reply, so wait
/// until there are `at_least`).
fn audit_reasons(server: &Server, at_least: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let db = rusqlite::Connection::open(server.dir.path().join("tessera.db")).unwrap();
        let mut statement = db
            .prepare("SELECT user || ' ' || result || ': ' || reason FROM audit ORDER BY id")
            .unwrap();
        let rows: Vec<String> = statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if rows.len() >= at_least || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends an Access-Request with an empty User-Password and returns the reply's code.
fn empty_password_request(server: &Server, user: &str) -> Code {
    let client = RawClient::new(server.addr);
    let (request, _) = RawClient::access_request(7, user, "", None);
    client.send(&request);
    Code(client.receive().expect("a reply")[0])
}

#[test]
fn login_by_uid_enrolls_and_the_second_round_needs_no_search() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));

    let first = server.auth("alice", "alicepw", None);
    first.expect("Access-Challenge");
    assert_eq!(
        first.get("Reply-Message"),
        Some("sms submitted to +49********678")
    );
    let spool = server.spool();
    assert_eq!(spool[0].1, "+4917012345678", "the mobile from LDAP");
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    // The PIN (the LDAP password) again: a new bind, but the attributes come from the cache.
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");

    let searches = slapd.log_lines("(uid=alice))");
    assert_eq!(searches.len(), 1, "one search for alice:\n{}", slapd.log());
    let binds: Vec<String> = slapd
        .log_lines("BIND dn=\"uid=alice,ou=people,dc=example,dc=org\"")
        .into_iter()
        .filter(|l| l.contains("method=128"))
        .collect();
    assert_eq!(
        binds.len(),
        2,
        "one bind per password check:\n{}",
        slapd.log()
    );
    // Searches ran as the service account, user binds never on its connection.
    let service_conn: Vec<String> = slapd.log_lines(&format!("BIND dn=\"{READER_DN}\" method=128"));
    assert_eq!(
        service_conn.len(),
        1,
        "one service connection:\n{}",
        slapd.log()
    );
    let conn_of = |line: &str| {
        line.split_whitespace()
            .find(|w| w.starts_with("conn="))
            .map(str::to_string)
    };
    let service = conn_of(&service_conn[0]);
    assert_eq!(conn_of(&searches[0]), service);
    assert!(binds.iter().all(|b| conn_of(b) != service));
}

#[test]
fn a_salted_hash_password_and_email_enrollment() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    let first = server.auth("bob", "bobpw", None);
    first.expect("Access-Challenge");
    assert_eq!(server.spool()[0].1, "bob@example.org");
    server
        .auth("bob", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn wrong_password_is_rejected_as_a_wrong_password() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    server
        .auth("alice", "alicepx", None)
        .expect("Access-Reject");
    server.wait_for_log("reason=\"wrong password\"");
    assert!(server.spool().is_empty());
}

/// Password checks reuse their connection (one bind round trip per login, no new TCP
/// connection), and each bind stands alone: a wrong password right after a right one, on the
/// same connection, is refused.
#[test]
fn password_checks_reuse_a_connection_and_each_bind_stands_alone() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");
    server.auth("bob", "bobpx", None).expect("Access-Reject");
    server.auth("bob", "bobpw", None).expect("Access-Challenge");

    // One line per bind request (slapd logs a second one for a bind that succeeds).
    let binds = slapd.log_lines("method=128");
    let connections: Vec<&str> = binds
        .iter()
        .filter(|l| l.contains("BIND dn=\"uid="))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("conn=")))
        .collect();
    assert_eq!(connections.len(), 3, "three user binds:\n{}", slapd.log());
    assert!(
        connections.iter().all(|c| *c == connections[0]),
        "all on one connection: {connections:?}"
    );
}

/// A burst of logins larger than slapd lets one anonymous connection queue (conn_max_pending,
/// 100): slapd would close the shared search connection and fail every search on it; tessera
/// keeps the searches in flight below that and answers each user.
#[test]
fn a_burst_of_logins_on_an_anonymous_connection_is_answered_user_by_user() {
    crate::util::require_radclient();
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], ""));
    // Enough to queue more than 100 searches, few enough to fit a default kernel receive
    // buffer (net.core.rmem_max 208 KiB on stock Debian), which drops datagrams unseen.
    const BURST: usize = 200;
    let packets: String = (0..BURST)
        .map(|n| {
            format!(
                "User-Name = \"nobody{n}\"\nUser-Password = \"x\"\nMessage-Authenticator = 0x00\n\n"
            )
        })
        .collect();
    let file = server.dir.path().join("burst.txt");
    std::fs::write(&file, packets).unwrap();
    let out = std::process::Command::new("radclient")
        .args(["-q", "-s", "-r", "1", "-t", "10", "-p"])
        .arg(BURST.to_string())
        .arg("-f")
        .arg(&file)
        .arg(server.addr.to_string())
        .args(["auth", SECRET])
        .output()
        .expect("run radclient");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("Rejected      : {BURST}")),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.log_count_reaching("reason=\"unknown user\"", BURST),
        BURST,
        "every search answered; log:\n{}",
        server.log_text()
    );
}

#[test]
fn empty_password_is_refused_before_any_bind() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    // radclient leaves an empty User-Password out, so send it with tessera's own codec: one
    // 16-octet block of hidden zeros, which decodes to the empty password.
    assert_eq!(
        empty_password_request(&server, "alice"),
        Code::ACCESS_REJECT
    );
    server.wait_for_log("reason=\"wrong password\"");
    let binds = slapd.log_lines("BIND dn=\"uid=alice");
    assert!(
        binds.is_empty(),
        "no user bind was attempted:\n{}",
        slapd.log()
    );
}

#[test]
fn a_user_without_mobile_or_mail_is_rejected() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    let reply = server.auth("carol", "carolpw", None);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("no mobile number or e-mail address is on record for you; ask your administrator")
    );
}

#[test]
fn attribute_mapping_takes_the_mobile_from_another_attribute() {
    let slapd = Slapd::start();
    // Without a mapping erin has no mobile ...
    let plain = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    plain.auth("erin", "erinpw", None).expect("Access-Reject");
    // ... with LinOTP's USERINFO mapping mobile to pager, she gets an SMS there.
    let extra = format!(
        "{}USERINFO = '{{\"mobile\": \"pager\", \"email\": \"mail\"}}'\n",
        service_account()
    );
    let mapped = Server::start_with(&setup(&[slapd.uri()], &extra));
    mapped
        .auth("erin", "erinpw", None)
        .expect("Access-Challenge");
    assert_eq!(mapped.spool()[0].1, "+4916000000001");
}

#[test]
fn starttls_with_a_ca_made_by_the_test() {
    let slapd = Slapd::with_tls();
    let extra = format!(
        "{}starttls = true\nca_file = \"{}\"\n",
        service_account(),
        slapd.ca_file().display()
    );
    let server = Server::start_with(&setup(&[slapd.uri()], &extra));
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");
    // slapd logged the StartTLS extended operation before the binds.
    assert!(
        !slapd.log_lines("oid=1.3.6.1.4.1.1466.20037").is_empty(),
        "{}",
        slapd.log()
    );
}

#[test]
fn ldaps_with_a_ca_made_by_the_test() {
    let slapd = Slapd::with_tls();
    let extra = format!(
        "{}ca_file = \"{}\"\n",
        service_account(),
        slapd.ca_file().display()
    );
    let server = Server::start_with(&setup(&[slapd.ldaps_uri()], &extra));
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");
}

#[test]
fn ldaps_with_an_untrusted_certificate_is_unavailable() {
    let slapd = Slapd::with_tls();
    // No ca_file: the system store does not know the test CA.
    let server = Server::start_with(&setup(&[slapd.ldaps_uri()], &service_account()));
    let reply = server.auth("alice", "alicepw", None);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("authentication service unavailable, try again later")
    );
    let line = server.wait_for_log("reason=\"directory unavailable");
    assert!(
        line.contains("UnknownIssuer") || line.contains("certificate"),
        "{line}"
    );
}

#[test]
fn tls_verify_off_accepts_an_unknown_certificate() {
    let slapd = Slapd::with_tls();
    let extra = format!("{}tls_verify = false\n", service_account());
    let server = Server::start_with(&setup(&[slapd.ldaps_uri()], &extra));
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");
    server.wait_for_log("tls_verify is off");
}

#[test]
fn failover_from_a_dead_first_uri_to_a_live_second_one() {
    let slapd = Slapd::start();
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    // Anonymous searches: no service account.
    let server = Server::start_with(&setup(&[dead.clone(), slapd.uri()], ""));
    let first = server.auth("alice", "alicepw", None);
    first.expect("Access-Challenge");
    server
        .auth("alice", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
    server.wait_for_log("LDAP server failed, trying the next one");
}

#[test]
fn slapd_stopped_mid_run_rejects_with_the_reason_then_recovers() {
    let mut slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    server
        .auth("alice", "alicepw", None)
        .expect("Access-Challenge");

    slapd.stop();
    let reply = server.auth("bob", "bobpw", None);
    reply.expect("Access-Reject");
    assert_eq!(
        reply.get("Reply-Message"),
        Some("authentication service unavailable, try again later")
    );
    server.wait_for_log("reason=\"directory unavailable");
    let audit = audit_reasons(&server, 2);
    assert!(
        audit
            .iter()
            .any(|r| r.starts_with("bob reject: directory unavailable: corp:")),
        "{audit:?}"
    );
    // The other realm keeps working.
    server
        .auth("dave@local", "davepw", None)
        .expect("Access-Challenge");

    slapd.resume();
    let reply = server.auth("bob", "bobpw", None);
    reply.expect("Access-Challenge");
    assert_eq!(server.spool().last().unwrap().1, "bob@example.org");
}

#[test]
fn a_filter_injection_user_name_matches_nothing() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    server
        .auth("*)(uid=*", "alicepw", None)
        .expect("Access-Reject");
    server.wait_for_log("reason=\"unknown user\"");
    let searches = slapd.log_lines("SRCH base=");
    assert!(
        searches.iter().any(|l| l.contains(r"(uid=\2A\29\28uid=\2A)") || l.contains(r"(uid=\2a\29\28uid=\2a)")),
        "the name was escaped:\n{}",
        slapd.log()
    );
    assert!(server.spool().is_empty());
}

#[test]
fn an_ambiguous_login_is_refused() {
    let slapd = Slapd::start();
    let server = Server::start_with(&setup(&[slapd.uri()], &service_account()));
    server.auth("twin", "twinpw", None).expect("Access-Reject");
    server.wait_for_log("is ambiguous (2 entries)");
    assert!(
        slapd.log_lines("BIND dn=\"uid=twin").is_empty(),
        "no bind for an ambiguous login"
    );
}

#[test]
fn check_config_reports_a_bad_ldap_directory_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        directories: "[directory.corp]\ntype = \"ldap\"\nLDAPURI = \"http://dc1\"\nLDAPBASE = \"dc=example,dc=org\"\nLDAPFILTER = \"(uid=alice)\"\n\n\
                      [[realm]]\nname = \"corp\"\ndirectories = [\"corp\"]\n"
            .into(),
        ..Setup::default()
    };
    let config = write_config(dir.path(), &setup);
    let out = tessera()
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // One line per problem, each pointing at the key's own line (LinOTP spellings included).
    assert_eq!(lines.len(), 2, "{stderr}");
    let config_text = std::fs::read_to_string(&config).unwrap();
    let line_of = |needle: &str| {
        1 + config_text
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap()
    };
    let expected_uri = format!(
        "tessera: {}:{}: directory.corp.uri: \"http://dc1\": scheme \"http\" is not supported",
        config.display(),
        line_of("LDAPURI")
    );
    assert!(lines[0].starts_with(&expected_uri), "{stderr}");
    let expected_filter = format!(
        "tessera: {}:{}: directory.corp.search_filter: \"(uid=alice)\" has no %s",
        config.display(),
        line_of("LDAPFILTER")
    );
    assert!(lines[1].starts_with(&expected_filter), "{stderr}");
}
