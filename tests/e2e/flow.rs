//! The two-round login, as a user at a VPN prompt sees it: autoenrollment, challenge, answer,
//! replay, single-field mode, blocking, and the ways to fail.

use crate::util::{Server, Setup};

#[test]
fn sms_autoenrollment_challenge_then_accept() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    assert_eq!(
        first.get("Reply-Message"),
        Some("sms submitted to +49********678")
    );
    assert_eq!(first.get("Session-Timeout"), Some("120"));
    assert_eq!(
        first.attrs[0].0, "Message-Authenticator",
        "Message-Authenticator comes first"
    );

    let spool = server.spool();
    assert_eq!(spool.len(), 1);
    assert_eq!(
        (spool[0].0.as_str(), spool[0].1.as_str()),
        ("sms", "+4917012345678")
    );
    let otp = server.last_otp();

    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Accept");
    // The same OTP again: the challenge is closed.
    server
        .auth("alice", &otp, Some(&first.state()))
        .expect("Access-Reject");
    let line = server.wait_for_log("reason=\"token enrolled");
    assert!(line.contains("serial=\"LSSM"), "{line}");
}

#[test]
fn email_autoenrollment_for_a_user_without_mobile() {
    let server = Server::start();
    let first = server.auth("bob", "builder", None);
    first.expect("Access-Challenge");
    assert_eq!(
        first.get("Reply-Message"),
        Some("e-mail submitted to b**@example.org")
    );
    assert_eq!(first.get("Session-Timeout"), Some("600"));
    let spool = server.spool();
    assert_eq!(
        (spool[0].0.as_str(), spool[0].1.as_str()),
        ("email", "bob@example.org")
    );
    server
        .auth("bob", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn wrong_otp_then_right_otp_on_the_same_challenge() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    let state = first.state();
    let otp = server.last_otp();
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let reject = server.auth("alice", wrong, Some(&state));
    reject.expect("Access-Reject");
    assert_eq!(reject.get("Reply-Message"), Some("wrong code, try again"));
    server
        .auth("alice", &otp, Some(&state))
        .expect("Access-Accept");
}

#[test]
fn password_and_otp_in_one_field_without_state() {
    let server = Server::start();
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let otp = server.last_otp();
    server
        .auth("alice", &format!("wonderland{otp}"), None)
        .expect("Access-Accept");
    // Replay of the single-field form.
    server
        .auth("alice", &format!("wonderland{otp}"), None)
        .expect("Access-Reject");
    // A wrong password with the right-looking OTP shape is refused.
    server
        .auth("alice", "wonderland", None)
        .expect("Access-Challenge");
    let otp = server.last_otp();
    server
        .auth("alice", &format!("wrongpass{otp}"), None)
        .expect("Access-Reject");
}

#[test]
fn blocking_timeout_returns_the_open_challenge_and_sends_nothing() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let again = server.auth("alice", "wonderland", None);
    again.expect("Access-Challenge");
    assert_eq!(
        again.state(),
        first.state(),
        "the open challenge's State comes back"
    );
    assert_eq!(
        again.get("Reply-Message"),
        Some("sms with otp already submitted to +49********678")
    );
    assert_eq!(server.spool().len(), 1, "nothing is sent again");
    server
        .auth("alice", &server.last_otp(), Some(&again.state()))
        .expect("Access-Accept");
}

#[test]
fn existing_token_gets_a_new_challenge_after_the_blocking_timeout() {
    let server = Server::start_with(&Setup {
        auth: "sms_blocking_timeout = 0\n".into(),
        ..Setup::default()
    });
    let first = server.auth("alice", "wonderland", None);
    let first_otp = server.last_otp();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = server.auth("alice", "wonderland", None);
    second.expect("Access-Challenge");
    assert_ne!(second.state(), first.state());
    assert_eq!(server.spool().len(), 2, "a new OTP was sent");
    let second_otp = server.last_otp();
    server
        .auth("alice", &second_otp, Some(&second.state()))
        .expect("Access-Accept");
    // The older challenge was superseded when the newer one was answered.
    server
        .auth("alice", &first_otp, Some(&first.state()))
        .expect("Access-Reject");
}

#[test]
fn wrong_password_and_unknown_user_look_the_same_and_send_nothing() {
    let server = Server::start();
    let wrong = server.auth("alice", "not-her-password", None);
    wrong.expect("Access-Reject");
    let unknown = server.auth("mallory", "whatever", None);
    unknown.expect("Access-Reject");
    assert_eq!(wrong.get("Reply-Message"), unknown.get("Reply-Message"));
    assert_eq!(wrong.get("Reply-Message"), Some("authentication failed"));
    assert!(server.spool().is_empty());
    server.wait_for_log("reason=\"wrong password\"");
    server.wait_for_log("reason=\"unknown user\"");
}

#[test]
fn missing_mobile_and_email_is_told_only_after_the_password() {
    let server = Server::start();
    let wrong = server.auth("carol", "nope", None);
    wrong.expect("Access-Reject");
    assert_eq!(wrong.get("Reply-Message"), Some("authentication failed"));
    let right = server.auth("carol", "carolpw", None);
    right.expect("Access-Reject");
    assert_eq!(
        right.get("Reply-Message"),
        Some("no mobile number or e-mail address is on record for you; ask your administrator")
    );
    assert!(server.spool().is_empty());
}

#[test]
fn email_first_policy_picks_email_for_a_user_with_both() {
    let setup = Setup {
        policies: "[[policy]]\nname = \"e\"\nscope = \"enrollment\"\naction = \"autoenrollment=email sms\"\n\n\
                   [[policy]]\nname = \"pin\"\nscope = \"authentication\"\naction = \"otppin=1\"\n"
            .into(),
        ..Setup::default()
    };
    let server = Server::start_with(&setup);
    let first = server.auth("dave", "davepw", None);
    first.expect("Access-Challenge");
    assert_eq!(server.spool()[0].0, "email");
    server
        .auth("dave", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn user_at_realm_is_split() {
    let server = Server::start();
    let first = server.auth("alice@local", "wonderland", None);
    first.expect("Access-Challenge");
    server
        .auth("alice@local", &server.last_otp(), Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn state_with_password_and_otp_is_accepted_too() {
    let server = Server::start();
    let first = server.auth("alice", "wonderland", None);
    let otp = server.last_otp();
    server
        .auth("alice", &format!("wrong{otp}"), Some(&first.state()))
        .expect("Access-Reject");
    server
        .auth("alice", &format!("wonderland{otp}"), Some(&first.state()))
        .expect("Access-Accept");
}

#[test]
fn access_accept_carries_the_policy_reply_attributes() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"attributes\"\nscope = \"authentication\"\n\
         reply = [\"Class = vpn-{user}\", \"Fortinet-Group-Name = staff-{user}\", \"Session-Timeout = 3600\"]\n",
    );
    let server = Server::start_with(&setup);
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    assert_eq!(first.get("Class"), None, "only Access-Accept carries them");
    let accept = server.auth("alice", &server.last_otp(), Some(&first.state()));
    accept.expect("Access-Accept");
    let hex: String = b"vpn-alice".iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        accept.get("Class"),
        Some(format!("0x{hex}").as_str()),
        "{}",
        accept.output
    );
    assert_eq!(
        accept.get("Fortinet-Group-Name"),
        Some("staff-alice"),
        "{}",
        accept.output
    );
    assert_eq!(accept.get("Session-Timeout"), Some("3600"));
}

#[test]
fn a_reply_attribute_no_dictionary_knows_is_a_config_error() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"typo\"\nscope = \"authentication\"\nreply = [\"Fortinet-Grup-Name = x\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = crate::util::write_config(dir.path(), &setup);
    let out = crate::util::tessera()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "policy.reply: policy \"typo\": no dictionary defines attribute \"Fortinet-Grup-Name\""
        ),
        "{stderr}"
    );
}

/// Issue 13: a reply attribute filled from the directory that cannot be encoded (here a
/// 300-octet `Class = {givenname}`, longer than an attribute can carry) was left out with a
/// warning and the user accepted anyway — so a user who can edit their own directory entry
/// could strip the attribute that restricts them. Now the login is rejected, with a clear log
/// line; a user whose value fits is accepted with it.
#[test]
fn issue_13_a_reply_attribute_that_cannot_be_encoded_rejects_the_login() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"attributes\"\nscope = \"authentication\"\n\
         reply = [\"Class = {givenname}\", \"Filter-Id = vpn\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &setup);
    let mut users = std::fs::read_to_string(dir.path().join("users.toml")).unwrap();
    for (name, givenname) in [("erin", "e".repeat(300)), ("frank", "Frank".to_string())] {
        let hash =
            tessera::password_hash::hash(&tessera::secret::Secret::from("pw-of-user")).unwrap();
        users.push_str(&format!(
            "[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\nmobile = \"+4915000000001\"\n\
             givenname = \"{givenname}\"\n\n"
        ));
    }
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    let server = Server::start_in(dir, &config);

    let first = server.auth("frank", "pw-of-user", None);
    first.expect("Access-Challenge");
    let accept = server.auth("frank", &server.last_otp(), Some(&first.state()));
    accept.expect("Access-Accept");
    assert_eq!(
        accept.get("Class"),
        Some("0x4672616e6b"),
        "{}",
        accept.output
    );

    let first = server.auth("erin", "pw-of-user", None);
    first.expect("Access-Challenge");
    let reply = server.auth("erin", &server.last_otp(), Some(&first.state()));
    reply.expect("Access-Reject");
    assert_eq!(reply.get("Filter-Id"), None, "{}", reply.output);
    let line = server.wait_for_log("Access-Accept turned into Access-Reject");
    assert!(line.contains("attribute=Class"), "{line}");
    let decision = server.wait_for_log("user=erin realm=local result=\"reject\"");
    assert!(
        decision.contains("reason=\"reply attribute Class cannot be sent"),
        "{decision}"
    );
}

/// A directory value is text, never a template: a user whose given name is `{groups}` gets one
/// Class holding exactly that, not one Class per group (the old sequential replacement read
/// the filled-in value for placeholders again).
#[test]
fn a_directory_value_is_never_read_for_placeholders() {
    let mut setup = Setup::default();
    setup.policies.push_str(
        "\n[[policy]]\nname = \"attributes\"\nscope = \"authentication\"\n\
         reply = [\"Class = {givenname}\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = crate::util::write_config(dir.path(), &setup);
    let mut users = std::fs::read_to_string(dir.path().join("users.toml")).unwrap();
    let hash = tessera::password_hash::hash(&tessera::secret::Secret::from("pw-of-user")).unwrap();
    users.push_str(&format!(
        "[[user]]\nname = \"mallory\"\npassword = \"{hash}\"\nmobile = \"+4915000000003\"\n\
         givenname = \"{{groups}}\"\ngroups = [\"admins\", \"vpn\"]\n"
    ));
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    let server = Server::start_in(dir, &config);
    let first = server.auth("mallory", "pw-of-user", None);
    first.expect("Access-Challenge");
    let accept = server.auth("mallory", &server.last_otp(), Some(&first.state()));
    accept.expect("Access-Accept");
    let literal: String = b"{groups}".iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        accept.get_all("Class"),
        [format!("0x{literal}").as_str()],
        "{}",
        accept.output
    );
}
