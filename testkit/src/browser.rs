//! A real browser for the page's end-to-end tests: Debian's `chromium`, headless, driven
//! through `chromedriver` (package `chromium-driver`) with the `fantoccini` WebDriver client.
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port, in a process group of
//! its own, and one Chromium session in it (`--headless=new`, a fixed window size, a throwaway
//! profile directory, `--no-sandbox` when we are root, as Chromium refuses to start otherwise).
//! Dropping it closes the session and kills the group, so no Chromium outlives its test.
//!
//! The tests are plain `#[test]`s like every other end-to-end test, so the browser has a
//! sync face: each call runs the WebDriver command on the browser's own current-thread tokio
//! runtime. [`Browser::block_on`] and [`Browser::client`] reach fantoccini for anything else.
//!
//! Two kinds of pictures:
//! - **A failing test** (the browser dropped while the thread panics) saves `screenshot.png`
//!   and `page.html` under `target/browser-failures/<test>/` (or `$TESSERA_BROWSER_FAILURES`),
//!   and says so on stderr, next to the panic message.
//! - **The docs' screenshots**: [`Browser::doc_screenshot`] writes `docs/src/images/<name>.png`
//!   when `TESSERA_SCREENSHOTS=1`, and does nothing otherwise (so a test run leaves the
//!   committed pictures alone).

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::log::LogLines;
use crate::ports::try_free_port;

/// The window's size: a laptop's screen. [`Browser::set_window_size`] changes it (a phone's
/// width, for the responsive layout).
pub const WINDOW: (u32, u32) = (1280, 900);

/// How long a page may take to show an element a test waits for.
pub const WAIT: Duration = Duration::from_secs(15);

/// Debian's Chromium (`$TESSERA_CHROMIUM` names another).
fn chromium_binary() -> String {
    std::env::var("TESSERA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Debian's chromedriver (`$TESSERA_CHROMEDRIVER` names another).
fn chromedriver_binary() -> String {
    std::env::var("TESSERA_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

/// A headless Chromium session and the chromedriver it runs under.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    driver_log: LogLines,
    _profile: tempfile::TempDir,
    /// Prepended to the paths given to [`Browser::goto`] (`http://127.0.0.1:PORT`).
    pub base: String,
}

impl Browser {
    /// A browser whose relative URLs go to `base`; panics with what to install when
    /// chromium or chromedriver cannot start.
    pub fn start(base: &str) -> Browser {
        Browser::try_start(base).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same, or why not.
    pub fn try_start(base: &str) -> Result<Browser, String> {
        let hint = "run scripts/test.sh, which installs chromium and chromium-driver";
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let port = try_free_port()?;
        let mut command = Command::new(chromedriver_binary());
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A group of its own: Chromium and its helpers join it, and drop kills them all.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut driver = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e} ({hint})", chromedriver_binary()))?;
        let driver_log = match (driver.stdout.take(), driver.stderr.take()) {
            (Some(out), Some(err)) => {
                let log = LogLines::collect(out, |_| {});
                let _ = LogLines::collect(err, |_| {});
                log
            }
            _ => LogLines::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let mut browser = Browser {
            rt,
            client: None,
            driver,
            driver_log,
            _profile: profile,
            base: base.trim_end_matches('/').to_string(),
        };
        browser.wait_for_driver(port, hint)?;
        let capabilities = browser.capabilities();
        let url = format!("http://127.0.0.1:{port}");
        let client = browser
            .rt
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&url),
            )
            .map_err(|e| {
                format!(
                    "chromedriver cannot start {}: {e} ({hint}); chromedriver said:\n{}",
                    chromium_binary(),
                    browser.driver_log.text()
                )
            })?;
        browser.client = Some(client);
        browser.set_window_size(WINDOW.0, WINDOW.1);
        Ok(browser)
    }

    fn wait_for_driver(&mut self, port: u16, hint: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!(
                    "chromedriver exited ({status}; {hint}):\n{}",
                    self.driver_log.text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not listen on {port} within 30 s:\n{}",
                    self.driver_log.text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut args = vec![
            "--headless=new".to_string(),
            format!("--user-data-dir={}", self._profile.path().display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-extensions".into(),
            "--disable-crash-reporter".into(),
            "--disable-breakpad".into(),
            "--hide-scrollbars".into(),
            "--lang=en-US".into(),
        ];
        if crate::is_root() {
            args.push("--no-sandbox".into());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium_binary(), "args": args },
        });
        match capabilities {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    /// The fantoccini client, for what the sync calls do not cover (with [`Browser::block_on`]).
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session closed")
    }

    /// Runs `future` (a fantoccini call) on the browser's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// Opens `path` (relative to [`Browser::base`]) or an absolute URL.
    pub fn goto(&self, path: &str) {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.block_on(self.client().goto(&url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.block_on(self.client().current_url())
            .map(|u| u.to_string())
            .unwrap_or_else(|e| panic!("current URL: {e}"))
    }

    /// The current URL's path (and query).
    pub fn path(&self) -> String {
        let url = self
            .block_on(self.client().current_url())
            .unwrap_or_else(|e| panic!("current URL: {e}"));
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The page's HTML as the browser has it now.
    pub fn html(&self) -> String {
        self.block_on(self.client().source())
            .unwrap_or_else(|e| panic!("page source: {e}"))
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.block_on(self.client().title())
            .unwrap_or_else(|e| panic!("title: {e}"))
    }

    /// Waits (up to [`WAIT`]) for an element matching the CSS selector and returns it.
    pub fn find(&self, css: &str) -> fantoccini::elements::Element {
        let client = self.client();
        self.block_on(async {
            client
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
        })
        .unwrap_or_else(|e| panic!("no element {css:?} on {}: {e}", self.path()))
    }

    /// Whether an element matches the CSS selector now (no waiting).
    pub fn exists(&self, css: &str) -> bool {
        self.block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| !found.is_empty())
            .unwrap_or(false)
    }

    /// The visible text of the first element matching `css` (waited for).
    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.block_on(element.text())
            .unwrap_or_else(|e| panic!("text of {css:?}: {e}"))
    }

    /// The visible texts of every element matching `css` now.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let client = self.client();
        self.block_on(async {
            let mut texts = vec![];
            for element in client.find_all(Locator::Css(css)).await? {
                texts.push(element.text().await?);
            }
            Ok::<_, fantoccini::error::CmdError>(texts)
        })
        .unwrap_or_else(|e| panic!("texts of {css:?}: {e}"))
    }

    /// An attribute of the first element matching `css` (waited for).
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css);
        self.block_on(element.attr(name))
            .unwrap_or_else(|e| panic!("attribute {name} of {css:?}: {e}"))
    }

    /// Clears the input matching `css` and types `text` into it, as a person would.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.block_on(async {
            element.clear().await?;
            element.send_keys(text).await
        })
        .unwrap_or_else(|e| panic!("type into {css:?}: {e}"));
    }

    /// Clicks the element matching `css` (a button submits its form, a link navigates).
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.block_on(element.click())
            .unwrap_or_else(|e| panic!("click {css:?}: {e}"));
    }

    /// Clicks the element matching `css` and waits until the browser has left the page (a
    /// form posted, a link followed): what the next call finds is the next page's.
    pub fn click_to_next_page(&self, css: &str) {
        let page = self.find("html");
        self.click(css);
        self.wait_for_next_page(page);
    }

    /// The current page's `<html>` element, to wait for its end with
    /// [`Browser::wait_for_next_page`] (after a click that leads to a dialog first).
    pub fn current_page(&self) -> fantoccini::elements::Element {
        self.find("html")
    }

    /// Waits (up to [`WAIT`]) until `page` (from [`Browser::current_page`]) is gone.
    pub fn wait_for_next_page(&self, page: fantoccini::elements::Element) {
        let deadline = Instant::now() + WAIT;
        // A stale element answers with an error: the document it was in is gone.
        while self.block_on(page.tag_name()).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the page {} did not change",
                self.path()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to [`WAIT`]) until the page's text contains `needle`; panics with the text.
    pub fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self
                .block_on(async { self.client().find(Locator::Css("body")).await?.text().await })
                .unwrap_or_default();
            if body.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page {} never said {needle:?}; it says:\n{body}",
                self.path()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resizes the window (a phone is about 390 × 844).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.block_on(self.client().set_window_size(width, height))
            .unwrap_or_else(|e| panic!("window size: {e}"));
    }

    /// The viewport as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        self.block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("screenshot: {e}"))
    }

    /// Writes the viewport to `docs/src/images/<name>.png` when `TESSERA_SCREENSHOTS` is set
    /// (and not `0`); returns the path written, if any.
    pub fn doc_screenshot(&self, name: &str) -> Option<PathBuf> {
        let wanted = std::env::var("TESSERA_SCREENSHOTS").is_ok_and(|v| !v.is_empty() && v != "0");
        if !wanted {
            return None;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/images");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.screenshot())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Some(path)
    }

    /// Saves the screenshot and the HTML of a failing test (see the module comment).
    fn save_failure(&self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-");
        let dir = failures_dir().join(test);
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let client = self.client();
        let shot = self.block_on(async { tokio::time::timeout(WAIT, client.screenshot()).await });
        if let Ok(Ok(png)) = shot {
            let _ = std::fs::write(dir.join("screenshot.png"), png);
        }
        let html = self.block_on(async { tokio::time::timeout(WAIT, client.source()).await });
        if let Ok(Ok(html)) = html {
            let _ = std::fs::write(dir.join("page.html"), html);
        }
        let url = self.block_on(async { tokio::time::timeout(WAIT, client.current_url()).await });
        if let Ok(Ok(url)) = url {
            let _ = std::fs::write(dir.join("url.txt"), url.to_string());
        }
        eprintln!(
            "browser test failed: screenshot and page saved in {}",
            dir.display()
        );
    }
}

/// `$TESSERA_BROWSER_FAILURES`, else `target/browser-failures` beside the test binary
/// (`target/debug/deps/e2e-…`), else the temporary directory.
pub fn failures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TESSERA_BROWSER_FAILURES") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|a| a.file_name().is_some_and(|n| n == "deps"))
                .and_then(|deps| deps.parent())
                .and_then(|profile| profile.parent())
                .map(|target| target.join("browser-failures"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("tessera-browser-failures"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && self.client.is_some() {
            self.save_failure();
        }
        if let Some(client) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(WAIT, client.close()).await });
        }
        // The whole group: chromedriver, and any Chromium a failed close left behind. The
        // group id goes after `--`: procps-ng 4's kill misreads a negative id after a signal
        // option (strace: `kill -0 -14290` is kill(-1, 0)), and -1 is every process.
        let group = self.driver.id();
        if group > 1 {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{group}"))
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
