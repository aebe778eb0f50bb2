//! Self-service in a real browser: alice signs in with her password and an SMS code, sets up
//! an authenticator app (the QR shown once, confirmed by its first code), and her next RADIUS
//! login takes the app's code instead of an SMS.

use super::{Ui, base32_decode, radius_sms_login};

#[test]
fn alice_enrolls_an_authenticator_app_and_logs_in_with_it() {
    let ui = Ui::on_slapd("selfservice = [\"enrollTOTP\", \"disable\"]", "");
    assert!(radius_sms_login(&ui.server, "alice", "alicepw"));
    ui.login("alice", "alicepw");
    let b = &ui.browser;
    assert_eq!(b.path(), "/ui/me");
    assert_eq!(b.text("h1"), "My tokens");
    b.doc_screenshot("selfservice-tokens");
    b.click_to_next_page("form[action$=\"/me/enroll\"] button");
    let seed = base32_decode(&b.text("#secret"));
    let serial = b.text("#secret-h + p strong");
    b.doc_screenshot("selfservice-enroll");
    // Away and back before the first code: the token waits, and asks for it.
    b.goto("/ui/me");
    assert_eq!(ui.cell(&serial, "state"), "awaiting first code");
    b.find(&format!("form[action$=\"/{serial}/confirm\"]"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let step = tessera::otp::totp_step(now, 30);
    // A mistyped first code: the form again, with why, and the token still off.
    let right = tessera::otp::hotp(&seed, step, 6);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    b.fill("input[name=code]", wrong);
    b.click_to_next_page(&format!("form[action$=\"/{serial}/confirm\"] button"));
    assert!(
        b.text("p.msg.error")
            .contains("not the token's current code")
    );
    b.fill("input[name=code]", &right);
    b.click_to_next_page(&format!("form[action$=\"/{serial}/confirm\"] button"));
    assert_eq!(
        b.text("p.msg"),
        format!("Token {serial} confirmed: it is active now")
    );
    // The next login: password and the app's next code in one field, no SMS.
    let sent = ui.server.spool().len();
    ui.server
        .auth(
            "alice",
            &format!("alicepw{}", tessera::otp::hotp(&seed, step + 1, 6)),
            None,
        )
        .expect("Access-Accept");
    assert_eq!(ui.server.spool().len(), sent, "no SMS was needed");
    // The phone with the SMS number was lost: alice disables that token herself.
    let sms = ui
        .serials()
        .into_iter()
        .find(|s| s.starts_with("LSSM"))
        .expect("her SMS token");
    let message = ui.token_action(&sms, "disable");
    assert_eq!(message, format!("Token {sms} disabled"));
    assert_eq!(ui.cell(&sms, "state"), "disabled");
    assert_eq!(ui.cell(&serial, "state"), "active");
    let sent = ui.server.spool().len();
    assert!(!radius_sms_login(&ui.server, "alice", "alicepw"));
    assert_eq!(
        ui.server.spool().len(),
        sent,
        "no SMS goes to the lost phone"
    );
}
