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
