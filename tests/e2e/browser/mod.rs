//! The page (issue 25) in a real browser: Debian's headless Chromium through chromedriver
//! ([`testkit::browser`]), against the real binary with `[http]` and `[admin]`, the users
//! file or slapd, and the `file` spool provider for the operators' and users' codes.
//!
//! A failing test leaves `screenshot.png` and `page.html` under
//! `target/browser-failures/<test>/`; `TESSERA_SCREENSHOTS=1` makes the docs' pictures
//! (`docs/src/images/`).

mod smoke;
