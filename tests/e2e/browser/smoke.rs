//! The browser itself: Chromium starts, opens a page tessera serves, and a failure leaves its
//! screenshot and HTML behind.

use testkit::browser::Browser;

use crate::http::http_setup;
use crate::util::Server;

#[test]
fn chromium_reads_a_page_tessera_serves() {
    let server = Server::start_with(&http_setup("", ""));
    let browser = Browser::start(&format!("http://{}", server.http_addr.unwrap()));
    browser.goto("/healthz");
    assert_eq!(browser.text("body"), "ok");
}

#[test]
fn the_login_page_comes_with_its_stylesheet_under_the_csp_and_only_when_admin_is_on() {
    let ui = super::Ui::start(&super::page_setup("", ""));
    let b = &ui.browser;
    b.goto("/");
    assert_eq!(b.path(), "/ui/login");
    assert_eq!(b.title(), "Sign in · tessera");
    // The stylesheet loaded (the CSP allows 'self'): the bar has its colour.
    let bar = b.find("header.bar");
    let colour = b.block_on(bar.css_value("background-color")).unwrap();
    assert_eq!(colour, "rgba(29, 39, 51, 1)");
    // Every input has its label.
    for id in ["user", "password"] {
        assert!(b.exists(&format!("label[for={id}]")), "{id}");
    }
    // Without [admin], there is no page at all.
    let server = Server::start_with(&http_setup("", ""));
    let other = Browser::start(&format!("http://{}", server.http_addr.unwrap()));
    other.goto("/ui/login");
    assert!(other.text("body").contains("Not Found"), "{}", other.html());
    assert!(!other.exists("#password"), "no login form");
}
