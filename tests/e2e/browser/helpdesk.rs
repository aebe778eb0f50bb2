//! The helpdesk's stories in a real browser: an operator signs in with password and code,
//! finds alice and her SMS token's fail counter, ends her back-off, disables and enables bob's
//! token, enrolls TOTP and HOTP tokens and resyncs one, reads the audit; a helpdesk operator
//! has no remove button; alice's screen lists her accounting session. Every effect is checked where it matters: over RADIUS. The people are
//! slapd's (realm `corp`), dave an admin through his LDAP group.

use super::{Ui, base32_decode, radius_sms_login, totp_now};

/// alice's SMS token after one full login over RADIUS and one wrong code: its serial.
fn alice_with_a_wrong_code(ui: &Ui) -> String {
    assert!(radius_sms_login(&ui.server, "alice", "alicepw"));
    let first = ui.server.auth("alice", "alicepw", None);
    first.expect("Access-Challenge");
    let wrong = if ui.server.last_otp() == "000000" {
        "111111"
    } else {
        "000000"
    };
    ui.server
        .auth("alice", wrong, Some(&first.state()))
        .expect("Access-Reject");
    let (_, out, _) = ui.server.cli(&["token", "list", "--user", "alice"], "");
    out.split_whitespace()
        .find(|w| w.starts_with("LSSM"))
        .unwrap_or_else(|| panic!("no SMS token: {out}"))
        .to_string()
}

#[test]
fn an_operator_signs_in_with_a_code_and_sees_alices_fail_counter() {
    let ui = Ui::on_slapd("", "");
    let serial = alice_with_a_wrong_code(&ui);
    let b = &ui.browser;
    b.goto("/");
    b.find("#user");
    assert!(b.path().starts_with("/ui/login"), "{}", b.path());
    b.doc_screenshot("helpdesk-login");
    let message = ui.login("dave", "davepw");
    assert!(message.contains("+49********999"), "{message}");
    assert_eq!(b.text("header.bar .who span"), "dave@corp admin");
    // Search as you type: no Enter, the list follows the typing.
    b.goto("/ui/users");
    b.fill("#q", "ali");
    b.find("#results a[href$=\"/corp/alice\"]");
    assert_eq!(b.path(), "/ui/users", "no page was loaded");
    // Issue 30: her session, as a NAS reported it, on her screen.
    testkit::radclient::radclient_command(
        crate::accounting::accounting_addr(&ui.server),
        testkit::radclient::SECRET,
        "acct",
        &[
            ("Acct-Status-Type", "Start"),
            ("Acct-Session-Id", "\"vpn-alice-1\""),
            ("User-Name", "\"alice\""),
        ],
    )
    .expect("Accounting-Response");
    ui.open_user("alice");
    assert_eq!(b.texts("table.sessions td.session-id"), ["vpn-alice-1"]);
    assert_eq!(ui.serials(), vec![serial.clone()]);
    assert_eq!(ui.cell(&serial, "fails"), "1 of 10");
    assert_eq!(ui.cell(&serial, "recipient"), "+49********678");
    assert_eq!(ui.cell(&serial, "kind"), "SMS");
    assert!(
        !b.html().contains("+4917012345678"),
        "the helpdesk never sees a full number"
    );
    b.doc_screenshot("helpdesk-user-tokens");
    // A phone's width: the table becomes cards, still with every value.
    b.set_window_size(390, 844);
    assert_eq!(ui.cell(&serial, "fails"), "1 of 10");
    b.doc_screenshot("helpdesk-phone");
}

#[test]
fn ending_alices_back_off_lets_her_log_in_over_radius_again() {
    let ui = Ui::on_slapd("", "backoff_after = 3\nbackoff_initial = 600\n");
    assert!(radius_sms_login(&ui.server, "alice", "alicepw"));
    for _ in 0..3 {
        ui.server
            .auth("alice", "guess", None)
            .expect("Access-Reject");
    }
    assert!(
        !radius_sms_login(&ui.server, "alice", "alicepw"),
        "backing off"
    );
    ui.login("dave", "davepw");
    ui.open_user("alice");
    let b = &ui.browser;
    assert!(
        b.text("#backoff").contains("3 failed passwords"),
        "{}",
        b.text("#backoff")
    );
    let serial = ui.serials()[0].clone();
    let message = ui.token_action(&serial, "reset");
    assert!(message.contains(&serial), "{message}");
    assert!(!b.exists("#backoff"), "{}", b.html());
    assert!(radius_sms_login(&ui.server, "alice", "alicepw"));
}

#[test]
fn disabling_bobs_token_refuses_his_login_and_enabling_it_lets_him_in() {
    let ui = Ui::on_slapd("", "");
    assert!(radius_sms_login(&ui.server, "bob", "bobpw"));
    ui.login("dave", "davepw");
    ui.open_user("bob");
    let serial = ui.serials()[0].clone();
    assert!(serial.starts_with("LSEM"), "{serial}");
    let message = ui.token_action(&serial, "disable");
    assert_eq!(message, format!("Token {serial} disabled"));
    assert_eq!(ui.cell(&serial, "state"), "disabled");
    assert!(!radius_sms_login(&ui.server, "bob", "bobpw"));
    let message = ui.token_action(&serial, "enable");
    assert_eq!(message, format!("Token {serial} enabled"));
    assert!(radius_sms_login(&ui.server, "bob", "bobpw"));
    // The audit names the operator for both.
    let b = &ui.browser;
    b.goto("/ui/audit");
    b.fill("#f-user", "bob");
    b.click_to_next_page("form[aria-label=\"Audit filters\"] button");
    b.find("table.audit");
    let actions = b.texts("table.audit td.action");
    assert!(
        actions.contains(&"token disable".to_string()),
        "{actions:?}"
    );
    assert!(actions.contains(&"token enable".to_string()), "{actions:?}");
    let reasons = b.texts("table.audit td.reason").join("\n");
    assert!(reasons.contains("dave@corp (admin)"), "{reasons}");
    b.doc_screenshot("helpdesk-audit");
    // Only the disables, by result and client.
    b.fill("#f-client", "admin/");
    b.click_to_next_page("form[aria-label=\"Audit filters\"] button");
    b.find("table.audit");
    let actions = b.texts("table.audit td.action");
    assert!(
        actions.iter().all(|a| a.starts_with("token ")),
        "{actions:?}"
    );
    let csv = b.attr("#csv", "href").unwrap();
    assert!(
        csv.contains("format=csv") && csv.contains("client=admin%2F"),
        "{csv}"
    );
    // The service's state: the store and slapd (directory corp) answer.
    b.click_to_next_page("nav a[href$=\"/state\"]");
    assert_eq!(b.text("h1"), "Service");
    let peers = b.texts("main table td[data-label=Peer]");
    assert!(peers.contains(&"store".to_string()), "{peers:?}");
    assert!(peers.iter().any(|p| p.contains("corp")), "{peers:?}");
    assert!(!b.exists("span.badge.locked"), "{}", b.html());
    b.doc_screenshot("helpdesk-service");
}

/// Enrolls a token of `kind` for `user` through the page; returns (serial, seed).
fn enroll(ui: &Ui, user: &str, kind: &str) -> (String, Vec<u8>) {
    let b = &ui.browser;
    ui.open_user(user);
    b.click_to_next_page("a[href$=\"/enroll\"]");
    b.click(&format!("input[name=type][value={kind}]"));
    b.fill("#description", &format!("{kind} from the helpdesk"));
    b.click_to_next_page("main form button[type=submit]");
    let secret = b.text("#secret");
    let uri = b.text("#otpauth");
    assert!(uri.starts_with(&format!("otpauth://{kind}/")), "{uri}");
    assert!(b.exists("svg.qr"), "a QR code");
    let serial = b.text("#secret-h + p strong");
    (serial, base32_decode(&secret))
}

#[test]
fn an_admin_enrolls_totp_for_carol_and_she_logs_in_with_it() {
    let ui = Ui::on_slapd("", "");
    ui.login("dave", "davepw");
    let (serial, seed) = enroll(&ui, "carol", "totp");
    ui.browser.doc_screenshot("helpdesk-enroll");
    assert!(serial.starts_with("TOTP"), "{serial}");
    ui.server
        .auth("carol", &format!("carolpw{}", totp_now(&seed)), None)
        .expect("Access-Accept");
    // The secret is gone from the page once one leaves it.
    ui.open_user("carol");
    assert_eq!(ui.serials(), vec![serial.clone()]);
    let b = &ui.browser;
    let html = b.html();
    assert!(!html.contains("otpauth://"), "{html}");
    // A description with markup in it is shown as text.
    b.click_to_next_page(&format!("a[href$=\"/{serial}/describe\"]"));
    b.fill("#description", "<b>desk</b> & \"phone\"");
    b.click_to_next_page("main form button[type=submit]");
    assert_eq!(
        b.text("p.msg"),
        format!("Description of token {serial} saved")
    );
    assert_eq!(ui.cell(&serial, "description"), "<b>desk</b> & \"phone\"");
    assert!(
        !b.exists("td.description b"),
        "no markup from a description"
    );
    // Without the script's dialog, a removal asks on a page of its own first.
    let page = b.current_page();
    b.block_on(b.client().execute(
        "document.querySelector('form[action$=\"/remove\"]').submit();",
        vec![],
    ))
    .unwrap();
    b.wait_for_next_page(page);
    assert_eq!(b.text("h1"), format!("Remove token {serial}?"));
    assert_eq!(ui.serials_of("carol"), 1, "nothing removed yet");
    b.click_to_next_page("main form button[type=submit]");
    assert_eq!(b.text("p.msg"), format!("Token {serial} removed"));
    assert_eq!(ui.serials_of("carol"), 0);
}

#[test]
fn a_hotp_token_is_resynced_from_two_codes() {
    let ui = Ui::on_slapd("", "");
    ui.login("dave", "davepw");
    let (serial, seed) = enroll(&ui, "carol", "hotp");
    // The token was pressed far ahead of the server's look-ahead window.
    let far = |counter| tessera::otp::hotp(&seed, counter, 6);
    ui.server
        .auth("carol", &format!("carolpw{}", far(40)), None)
        .expect("Access-Reject");
    ui.open_user("carol");
    let b = &ui.browser;
    b.click_to_next_page(&format!("a[href$=\"/{serial}/resync\"]"));
    b.fill("#otp1", &far(41));
    b.fill("#otp2", &far(42));
    b.click_to_next_page("main form button[type=submit]");
    let message = b.text("p.msg");
    assert_eq!(message, format!("Token {serial} resynchronised"));
    ui.server
        .auth("carol", &format!("carolpw{}", far(43)), None)
        .expect("Access-Accept");
}

#[test]
fn a_helpdesk_operator_has_no_remove_button_and_an_admin_removes_with_a_confirmation() {
    let ui = Ui::on_slapd("helpdesk = \"bob\"", "");
    assert!(radius_sms_login(&ui.server, "alice", "alicepw"));
    ui.login("bob", "bobpw");
    assert_eq!(ui.browser.text("header.bar .who span"), "bob@corp helpdesk");
    ui.open_user("alice");
    let serial = ui.serials()[0].clone();
    let b = &ui.browser;
    assert!(b.exists(&format!("form[action$=\"/{serial}/disable\"]")));
    assert!(!b.exists("form[action$=\"/remove\"]"), "{}", b.html());
    assert!(!b.exists("a[href$=\"/enroll\"]"), "{}", b.html());
    // Asked anyway, the page and the API refuse.
    b.goto(&format!("/ui/users/corp/alice/tokens/{serial}/remove"));
    assert_eq!(b.text("h1"), "Forbidden");
    b.goto("/ui/users");
    let status = b
        .block_on(b.client().execute_async(
            "const done = arguments[arguments.length - 1];\
             const csrf = document.querySelector('input[name=csrf]').value;\
             fetch('/api/v1/tokens/' + arguments[0], {method: 'DELETE', headers: {'X-CSRF-Token': csrf}})\
               .then(r => done(r.status), e => done(String(e)));",
            vec![serial.clone().into()],
        ))
        .unwrap();
    assert_eq!(status, 403, "{status}");
    assert!(ui.serials_left(&serial), "still there");
    // An admin removes it, after saying yes.
    b.click_to_next_page("header.bar .who button");
    b.wait_for_text("Signed out.");
    ui.login("dave", "davepw");
    ui.open_user("alice");
    let page = b.current_page();
    b.click(&format!("form[action$=\"/{serial}/remove\"] button"));
    let asked = b.block_on(b.client().get_alert_text()).unwrap();
    assert!(asked.contains(&serial), "{asked}");
    b.block_on(b.client().accept_alert()).unwrap();
    b.wait_for_next_page(page);
    assert_eq!(b.text("p.msg"), format!("Token {serial} removed"));
    assert!(!ui.serials_left(&serial), "removed");
    assert!(b.exists("#tokens-h") && ui.serials().is_empty());
}

impl Ui {
    /// Whether `serial` is still listed for alice (through the command line).
    fn serials_left(&self, serial: &str) -> bool {
        let (_, out, _) = self.server.cli(&["token", "list", "--user", "alice"], "");
        out.contains(serial)
    }

    /// How many tokens `user` has (through the command line).
    fn serials_of(&self, user: &str) -> usize {
        let (_, out, _) = self
            .server
            .cli(&["token", "list", "--user", user, "--json"], "");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        value.as_array().map_or(0, Vec::len)
    }
}

#[test]
fn the_keyboard_alone_signs_in_and_an_idle_session_ends_at_the_login_screen() {
    let ui = Ui::on_slapd("session_idle_timeout = 1", "");
    let b = &ui.browser;
    b.goto("/ui/");
    // Tab from the name to the password, Enter submits; the code field has the focus.
    b.fill("#user", "dave\u{E004}davepw\u{E007}");
    b.find("#challenge");
    let code = ui.server.last_otp();
    let page = b.current_page();
    b.block_on(async {
        let focused = b.client().active_element().await?;
        focused.send_keys(&format!("{code}\u{E007}")).await
    })
    .unwrap();
    b.wait_for_next_page(page);
    assert_eq!(b.text("h1"), "Users");
    // Left alone longer than session_idle_timeout: the next screen is the login, saying why.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    b.goto("/ui/users?q=alice");
    b.find("#password");
    assert!(b.path().starts_with("/ui/login"), "{}", b.path());
    assert!(b.text("p.msg").contains("expired"), "{}", b.text("p.msg"));
}
