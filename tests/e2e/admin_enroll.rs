//! The admin API's enrolment, resync and self-service (issue 25), and roles given by directory
//! groups in a real slapd: an admin enrolls a TOTP token for carol and carol logs in over
//! RADIUS with a code computed from the secret shown; a HOTP token drifted far is resynced from
//! two codes; a self-service user enrolls an authenticator app, confirms it with a code, logs in
//! with it, and sees nobody else's tokens; an LDAP group makes its members admins.

use serde_json::json;
use tessera::otp::{hotp, totp_step};

use crate::admin_api::{Client, radius_login, setup};
use crate::util::slapd::{BASE_DN, READER_DN, READER_PW, Slapd};
use crate::util::{Server, Setup};

/// RFC 4648 base32 (no padding) to octets.
fn base32(text: &str) -> Vec<u8> {
    let mut out = vec![];
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c)
            .unwrap_or_else(|| panic!("not base32: {c}")) as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn an_admin_enrolls_totp_for_carol_and_carol_logs_in_with_the_secret_shown() {
    let server = Server::start_with(&setup("", ""));
    let mut dave = Client::login(&server, "dave", "davepw");
    let enrolled = dave.call(
        "POST",
        "/api/v1/tokens",
        Some(json!({"type": "totp", "user": "Carol", "description": "phone app"})),
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let value = enrolled.json();
    assert_eq!(
        value["token"]["user"], "carol",
        "the identity, not the spelling"
    );
    assert_eq!(value["token"]["active"], true);
    let svg = value["qr_svg"].as_str().unwrap();
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "not an SVG document"
    );
    let uri = value["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/tessera:carol@local?secret="),
        "{uri}"
    );
    let seed = base32(value["secret"].as_str().unwrap());
    let code = hotp(&seed, totp_step(now(), 30), 6);
    server
        .auth("carol", &format!("carolpw{code}"), None)
        .expect("Access-Accept");
    // Shown once: the token's view never holds the secret again.
    let serial = value["token"]["serial"].as_str().unwrap();
    let again = dave.call("GET", &format!("/api/v1/tokens/{serial}"), None);
    assert!(
        !again.body.contains(value["secret"].as_str().unwrap()),
        "{}",
        again.body
    );
    let audit = dave
        .call("GET", "/api/v1/audit?user=carol&result=ok", None)
        .json();
    assert_eq!(audit["rows"][0]["action"], "token enroll", "{audit}");
    assert_eq!(
        audit["rows"][0]["reason"], "by dave@local (admin): totp token for carol@local",
        "{audit}"
    );
}

#[test]
fn a_drifted_hotp_token_is_resynced_from_two_codes() {
    let server = Server::start_with(&setup("", ""));
    let mut dave = Client::login(&server, "dave", "davepw");
    let enrolled = dave
        .call(
            "POST",
            "/api/v1/tokens",
            Some(json!({"type": "hotp", "user": "carol"})),
        )
        .json();
    let seed = base32(enrolled["secret"].as_str().unwrap());
    let serial = enrolled["token"]["serial"].as_str().unwrap().to_string();
    // The token was pressed 50 times away from the server: out of the look-ahead window.
    server
        .auth("carol", &format!("carolpw{}", hotp(&seed, 50, 6)), None)
        .expect("Access-Reject");
    let path = format!("/api/v1/tokens/{serial}/resync");
    let wrong = dave.call(
        "POST",
        &path,
        Some(json!({"otp1": hotp(&seed, 60, 6), "otp2": hotp(&seed, 62, 6)})),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    let resynced = dave.call(
        "POST",
        &path,
        Some(json!({"otp1": hotp(&seed, 60, 6), "otp2": hotp(&seed, 61, 6)})),
    );
    assert_eq!(resynced.status, 200, "{}", resynced.body);
    server
        .auth("carol", &format!("carolpw{}", hotp(&seed, 62, 6)), None)
        .expect("Access-Accept");
}

#[test]
fn self_service_enrolls_an_app_confirms_it_and_sees_only_its_own_tokens() {
    let server = Server::start_with(&setup(
        "selfservice = [\"enrollTOTP\", \"disable\", \"history\"]\n",
        "",
    ));
    radius_login(&server, "alice", "wonderland");
    // bob has no role: with self-service on, his login gives him a self-service session (and
    // his first login, like any, autoenrolls his e-mail token).
    let mut bob = Client::login(&server, "bob", "builder");
    let session = bob.call("GET", "/api/v1/session", None).json();
    assert_eq!(session["role"], "selfservice", "{session}");
    let mine = bob.call("GET", "/api/v1/me/tokens", None).json();
    assert_eq!(mine["tokens"].as_array().unwrap().len(), 1, "{mine}");
    // Others' tokens and the helpdesk's views are not his.
    assert_eq!(bob.call("GET", "/api/v1/users?q=a", None).status, 403);
    assert_eq!(
        bob.call("GET", "/api/v1/users/local/alice/tokens", None)
            .status,
        403
    );
    let mut dave = Client::login(&server, "dave", "davepw");
    let alices = crate::admin_api::serial_of(&mut dave, "alice");
    let foreign = bob.call("POST", &format!("/api/v1/tokens/{alices}/disable"), None);
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    // No SMS or e-mail token for himself, and only what the list allows.
    let sms = bob.call(
        "POST",
        "/api/v1/tokens",
        Some(json!({"type": "sms", "phone": "+491"})),
    );
    assert_eq!(sms.status, 403, "{}", sms.body);
    let enrolled = bob.call(
        "POST",
        "/api/v1/tokens",
        Some(json!({"type": "totp", "user": "alice"})),
    );
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let value = enrolled.json();
    assert_eq!(
        value["token"]["user"], "bob",
        "self-service enrolls for itself only"
    );
    assert_eq!(
        (
            value["pending"].as_bool(),
            value["token"]["active"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let seed = base32(value["secret"].as_str().unwrap());
    let serial = value["token"]["serial"].as_str().unwrap().to_string();
    let step = totp_step(now(), 30);
    let confirm = format!("/api/v1/tokens/{serial}/confirm");
    let bad = bob.call("POST", &confirm, Some(json!({"code": "000000"})));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let confirmed = bob.call(
        "POST",
        &confirm,
        Some(json!({"code": hotp(&seed, step - 1, 6)})),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(confirmed.json()["active"], true);
    // His next RADIUS login takes the app's code, and sends no e-mail.
    let spooled = server.spool().len();
    let code = hotp(&seed, totp_step(now(), 30), 6);
    server
        .auth("bob", &format!("builder{code}"), None)
        .expect("Access-Accept");
    assert_eq!(server.spool().len(), spooled, "no code was sent");
    // His own history, nobody else's.
    let history = bob.call("GET", "/api/v1/audit?user=alice", None).json();
    let users: Vec<&str> = history["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert!(
        !users.is_empty() && users.iter().all(|u| *u == "bob"),
        "{history}"
    );
    // Removing is not on the list.
    let remove = bob.call("DELETE", &format!("/api/v1/tokens/{serial}"), None);
    assert_eq!(remove.status, 403, "{}", remove.body);
}

#[test]
fn a_token_an_admin_disabled_is_not_confirmed_by_self_service() {
    // bob may enroll and disable his own app tokens, not enable them.
    let server = Server::start_with(&setup("selfservice = [\"enrollTOTP\", \"disable\"]\n", ""));
    let mut dave = Client::login(&server, "dave", "davepw");
    let mut bob = Client::login(&server, "bob", "builder");
    let state = |bob: &mut Client, serial: &str| {
        let mine = bob.call("GET", "/api/v1/me/tokens", None).json();
        let t = mine["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["serial"] == serial)
            .cloned()
            .unwrap_or_else(|| panic!("{serial} not in {mine}"));
        (t["active"].as_bool(), t["pending"].as_bool())
    };
    // His own: enrolled (pending), confirmed, then disabled by the helpdesk (a lost phone).
    let enrolled = bob
        .call("POST", "/api/v1/tokens", Some(json!({"type": "totp"})))
        .json();
    assert_eq!(enrolled["token"]["pending"], true, "{enrolled}");
    let serial = enrolled["token"]["serial"].as_str().unwrap().to_string();
    let seed = base32(enrolled["secret"].as_str().unwrap());
    assert_eq!(state(&mut bob, &serial), (Some(false), Some(true)));
    let confirm = format!("/api/v1/tokens/{serial}/confirm");
    let step = totp_step(now(), 30);
    let confirmed = bob.call(
        "POST",
        &confirm,
        Some(json!({"code": hotp(&seed, step - 1, 6)})),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(state(&mut bob, &serial), (Some(true), Some(false)));
    let disabled = dave.call("POST", &format!("/api/v1/tokens/{serial}/disable"), None);
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    // A fresh code does not bring it back: confirming is not enabling.
    let again = bob.call(
        "POST",
        &confirm,
        Some(json!({"code": hotp(&seed, step + 1, 6)})),
    );
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("is not waiting for its first code"),
        "{}",
        again.body
    );
    assert_eq!(state(&mut bob, &serial), (Some(false), Some(false)));
    let enable = bob.call("POST", &format!("/api/v1/tokens/{serial}/enable"), None);
    assert_eq!(enable.status, 403, "{}", enable.body);

    // One the helpdesk enrolled for him and disabled: not his to enable by a code either.
    let made = dave
        .call(
            "POST",
            "/api/v1/tokens",
            Some(json!({"type": "totp", "user": "bob"})),
        )
        .json();
    assert_eq!(made["token"]["pending"], false, "{made}");
    let theirs = made["token"]["serial"].as_str().unwrap().to_string();
    let seed = base32(made["secret"].as_str().unwrap());
    let disabled = dave.call("POST", &format!("/api/v1/tokens/{theirs}/disable"), None);
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    let code = hotp(&seed, totp_step(now(), 30), 6);
    let forced = bob.call(
        "POST",
        &format!("/api/v1/tokens/{theirs}/confirm"),
        Some(json!({"code": code})),
    );
    assert_eq!(forced.status, 400, "{}", forced.body);
    assert_eq!(state(&mut bob, &theirs), (Some(false), Some(false)));
    let login = server.auth("bob", &format!("builder{code}"), None);
    assert_ne!(
        login.code, "Access-Accept",
        "a disabled token logs nobody in"
    );
}

#[test]
fn an_ldap_group_makes_its_members_admins_whatever_the_spelling() {
    let slapd = Slapd::start();
    slapd.modify(&format!(
        "dn: uid=alice,ou=people,{BASE_DN}\nchangetype: modify\nadd: businessCategory\n\
         businessCategory: CN=OTP Admins,OU=Groups,{BASE_DN}\n"
    ));
    let admin = setup("", "");
    let server = Server::start_with(&Setup {
        directories: format!(
            "[directory.corp]\ntype = \"ldap\"\nuri = [\"{}\"]\nbase_dn = \"{BASE_DN}\"\n\
             search_filter = \"(&(objectClass=inetOrgPerson)(uid=%s))\"\nbind_dn = \"{READER_DN}\"\n\
             bind_password = \"{READER_PW}\"\ntimeout = 3\n\n[directory.corp.attributes]\n\
             groups = \"businessCategory\"\n\n[[realm]]\nname = \"corp\"\ndirectories = [\"corp\"]\n\
             default = true\n",
            slapd.uri()
        ),
        extra: admin.extra.replace(
            "admin = \"dave\"",
            &format!("admin = \"cn=otp admins,ou=groups,{BASE_DN}\""),
        ),
        ..admin
    });
    let mut alice = Client::login(&server, "ALICE", "alicepw");
    let session = alice.call("GET", "/api/v1/session", None).json();
    assert_eq!(
        (
            session["user"].as_str(),
            session["realm"].as_str(),
            session["role"].as_str()
        ),
        (Some("alice"), Some("corp"), Some("admin")),
        "{session}"
    );
    // The search goes through LDAP with a substring filter.
    let found = alice.call("GET", "/api/v1/users?q=aro", None).json();
    assert_eq!(found["users"][0]["user"], "carol", "{found}");
    assert_eq!(found["users"][0]["directory"], "corp", "{found}");
    // bob is in no group: his right password and code give him nothing.
    let mut bob = Client::new(&server);
    let first = bob.call(
        "POST",
        "/api/v1/login",
        Some(json!({"user": "bob", "password": "bobpw"})),
    );
    assert_eq!(first.json()["status"], "challenge", "{}", first.body);
    let code = server.last_otp();
    let refused = bob.call("POST", "/api/v1/login", Some(json!({"code": code})));
    assert_eq!(refused.status, 403, "{}", refused.body);
}
