//! The page (issue 25) in a real browser: Debian's headless Chromium through chromedriver
//! ([`testkit::browser`]), against the real binary with `[http]` and `[admin]`, the users file
//! (`util::USERS`), and the `file` spool provider for the operators' and users' codes.
//!
//! A failing test leaves `screenshot.png` and `page.html` under
//! `target/browser-failures/<test>/`; `TESSERA_SCREENSHOTS=1` makes the docs' pictures
//! (`docs/src/images/`).

mod helpdesk;
mod selfservice;
mod smoke;

use testkit::browser::Browser;

use crate::util::{Server, Setup};

/// The operators of the page's tests: dave is an admin (he has a mobile number, so his
/// second factor is an SMS code from the spool); bob is the helpdesk where a test says so.
pub(crate) fn page_setup(admin: &str, auth: &str) -> Setup {
    Setup {
        auth: auth.into(),
        extra: format!(
            "[http]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nenabled = true\nadmin = \"dave\"\n{admin}\n"
        ),
        ..Setup::default()
    }
}

/// A tessera with the page, and a browser on it.
pub(crate) struct Ui {
    pub server: Server,
    pub browser: Browser,
}

impl Ui {
    /// tessera on `setup`, and a browser whose relative URLs go to its HTTP listener.
    pub fn start(setup: &Setup) -> Ui {
        let server = Server::start_with(setup);
        let base = format!("http://{}", server.http_addr.expect("[http] listener"));
        Ui {
            browser: Browser::start(&base),
            server,
        }
    }

    /// Signs in as `user` with `password`, then the code the spool received, as a person
    /// would; returns the challenge's message as the code screen showed it.
    pub fn login(&self, user: &str, password: &str) -> String {
        let b = &self.browser;
        let sent = self.server.spool().len();
        b.goto("/ui/login");
        b.fill("#user", user);
        b.fill("#password", password);
        b.click_to_next_page("main form button[type=submit]");
        let message = b.text("#challenge");
        assert!(
            self.server.spool().len() > sent,
            "no code was sent to {user}: {message}"
        );
        b.fill("#code", &self.server.last_otp());
        b.click_to_next_page("main form button[type=submit]");
        b.find("header.bar .who");
        message
    }

    /// Opens the screen of `user` (through the search, as the helpdesk would).
    pub fn open_user(&self, user: &str) {
        let b = &self.browser;
        b.goto("/ui/users");
        b.fill("#q", user);
        b.click_to_next_page("form[role=search] button[type=submit]");
        b.click_to_next_page(&format!("#results a[href$=\"/{user}\"]"));
        b.find("#tokens-h");
    }

    /// Clicks the button `label` ("Disable", "Reset" …) of token `serial` and returns the
    /// message the next screen shows.
    pub fn token_action(&self, serial: &str, action: &str) -> String {
        let b = &self.browser;
        b.click_to_next_page(&format!("form[action$=\"/{serial}/{action}\"] button"));
        b.text("p.msg")
    }

    /// The cells of token `serial`'s row, by class (`fails`, `state`, `backoff` …).
    pub fn cell(&self, serial: &str, class: &str) -> String {
        self.browser
            .text(&format!("tr[id=\"token-{serial}\"] td.{class}"))
    }

    /// The serials in the token table, in order.
    pub fn serials(&self) -> Vec<String> {
        self.browser.texts("table.tokens td.serial")
    }
}

/// Logs `user` in over RADIUS with the password, then the code the spool received: whether
/// it ended in an Access-Accept. A refusal of the first round ends it.
pub(crate) fn radius_sms_login(server: &Server, user: &str, password: &str) -> bool {
    let first = server.auth(user, password, None);
    if first.code != "Access-Challenge" {
        return false;
    }
    let second = server.auth(user, &server.last_otp(), Some(&first.state()));
    second.code == "Access-Accept"
}

/// RFC 4648 base32 (the secret the enrolment shows), decoded.
pub(crate) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = vec![];
    for c in text.trim().trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {text}")) as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The TOTP code of `seed` now (30-second steps, 6 digits).
pub(crate) fn totp_now(seed: &[u8]) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    tessera::otp::hotp(seed, tessera::otp::totp_step(now, 30), 6)
}
