//! The page (issue 25) in a real browser: Debian's headless Chromium through chromedriver
//! ([`testkit::browser`]), against the real binary with `[http]` and `[admin]`, a real slapd
//! ([`crate::util::slapd`]) as the directory of realm `corp`, and the `file` spool provider for
//! the operators' and users' codes. The helpdesk and self-service tests ([`Ui::on_slapd`]) find,
//! authenticate and give roles to the people of slapd's seed (alice, bob, carol) and to dave,
//! whom [`dave_ldif`] adds; dave is an admin through his LDAP group (`businessCategory`, mapped
//! as `groups`), not by name. The smoke tests need no one to log in: they keep the users file
//! (`util::USERS`, [`page_setup`]).
//!
//! A failing test leaves `screenshot.png` and `page.html` under
//! `target/browser-failures/<test>/`; `TESSERA_SCREENSHOTS=1` makes the docs' pictures
//! (`docs/src/images/`).

mod helpdesk;
mod selfservice;
mod smoke;

use testkit::browser::Browser;

use crate::util::slapd::{BASE_DN, READER_DN, READER_PW, Slapd};
use crate::util::{Server, Setup};

/// The LDAP group of the page's admins, as dave's `businessCategory` lists it.
pub(crate) const ADMINS_GROUP: &str = "otp-admins";

/// dave, the admin operator, added to slapd's seed: password `davepw`, a mobile number (his
/// second factor is an SMS code from the spool), an e-mail address, and [`ADMINS_GROUP`].
pub(crate) fn dave_ldif() -> String {
    format!(
        "dn: uid=dave,ou=people,{BASE_DN}\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: dave\ncn: Dave Operator\nsn: Operator\nmobile: +4915199999999\n\
         mail: dave@example.org\nbusinessCategory: {ADMINS_GROUP}\nuserPassword: davepw\n"
    )
}

/// The page on the users file: dave is an admin by name; `admin` adds `[admin]` lines (bob as
/// the helpdesk, self-service …), `auth` adds `[auth]` lines.
pub(crate) fn page_setup(admin: &str, auth: &str) -> Setup {
    Setup {
        auth: auth.into(),
        extra: format!(
            "[http]\nlisten = [\"127.0.0.1:0\"]\n\n[admin]\nenabled = true\nadmin = \"dave\"\n{admin}\n"
        ),
        ..Setup::default()
    }
}

/// The page on `slapd` as realm `corp` (the only one): the admins are [`ADMINS_GROUP`]'s
/// members; `admin` and `auth` as for [`page_setup`].
pub(crate) fn ldap_page_setup(slapd: &Slapd, admin: &str, auth: &str) -> Setup {
    let page = page_setup(admin, auth);
    Setup {
        directories: format!(
            "[directory.corp]\ntype = \"ldap\"\nuri = [\"{}\"]\nbase_dn = \"{BASE_DN}\"\n\
             search_filter = \"(&(objectClass=inetOrgPerson)(uid=%s))\"\nbind_dn = \"{READER_DN}\"\n\
             bind_password = \"{READER_PW}\"\ntimeout = 3\n\n[directory.corp.attributes]\n\
             groups = \"businessCategory\"\n\n[[realm]]\nname = \"corp\"\ndirectories = [\"corp\"]\n\
             default = true\n",
            slapd.uri()
        ),
        extra: page
            .extra
            .replace("admin = \"dave\"", &format!("admin = \"{ADMINS_GROUP}\"")),
        ..page
    }
}

/// A tessera with the page, and a browser on it; with the slapd it reads, when it has one.
/// (Fields drop in order: the browser and tessera go before their directory.)
pub(crate) struct Ui {
    pub server: Server,
    pub browser: Browser,
    pub slapd: Option<Slapd>,
}

impl Ui {
    /// tessera on `setup`, and a browser whose relative URLs go to its HTTP listener.
    pub fn start(setup: &Setup) -> Ui {
        let server = Server::start_with(setup);
        let base = format!("http://{}", server.http_addr.expect("[http] listener"));
        Ui {
            browser: Browser::start(&base),
            server,
            slapd: None,
        }
    }

    /// A slapd with its seed and dave ([`dave_ldif`]), and the page on it
    /// ([`ldap_page_setup`]); the slapd lives as long as the `Ui`.
    pub fn on_slapd(admin: &str, auth: &str) -> Ui {
        let slapd = Slapd::start();
        slapd.modify(&dave_ldif());
        let mut ui = Ui::start(&ldap_page_setup(&slapd, admin, auth));
        ui.slapd = Some(slapd);
        ui
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
