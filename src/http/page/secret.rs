//! A new token's secret, shown once: its QR code (the admin layer's SVG, inline, so nothing is
//! fetched and the CSP's `img-src` needs no `data:` for it), the base32 secret for typing in,
//! and the `otpauth://` URI. Used by the admin's enrolment and by self-service; the screen
//! that shows it is the answer to the POST that made the token, never a page one can reload.

use super::html::esc;

/// What an authenticator app needs, ready to show.
pub struct Shown<'a> {
    /// The token's serial.
    pub serial: &'a str,
    /// The `otpauth://` URI.
    pub uri: &'a str,
    /// The seed in base32.
    pub base32: &'a str,
    /// The URI's QR code, an SVG document.
    pub qr_svg: Option<&'a str>,
}

/// An SVG document (the admin layer's QR code) made fit to sit inside the page: no XML
/// declaration, a class for the stylesheet, a role and a label for screen readers. Only the
/// document's own `<svg` tag is touched; the admin layer made it, not a user.
pub fn inline_svg(document: &str) -> String {
    let start = document.find("<svg").unwrap_or(0);
    let svg = document.get(start..).unwrap_or(document);
    svg.replacen(
        "<svg",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR code of the new token's secret\"",
        1,
    )
}

impl Shown<'_> {
    /// The secret's block: QR, base32 and URI, with the warning that it is shown once.
    pub fn html(&self) -> String {
        let qr = self.qr_svg.map_or_else(
            || "<p>(no QR code: the URI is too long)</p>".to_string(),
            inline_svg,
        );
        format!(
            "<section class=\"card\" aria-labelledby=\"secret-h\">\n\
             <h2 id=\"secret-h\">Scan this code in the authenticator app</h2>\n\
             <p class=\"msg info\" role=\"status\">The secret of token <strong>{serial}</strong> is shown \
             this once. It is not stored anywhere you can read it again.</p>\n\
             <div class=\"secret\">\n{qr}\n<div>\n\
             <p><span class=\"hint\">Or type this key</span><code id=\"secret\">{base32}</code></p>\n\
             <p><span class=\"hint\">otpauth URI</span><code id=\"otpauth\">{uri}</code></p>\n\
             </div>\n</div>\n</section>\n",
            serial = esc(self.serial),
            base32 = esc(self.base32),
            uri = esc(self.uri),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_sits_inline_with_a_label() {
        let doc = "<?xml version=\"1.0\" standalone=\"yes\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><path/></svg>";
        let svg = inline_svg(doc);
        assert!(svg.starts_with("<svg class=\"qr\" role=\"img\""), "{svg}");
        assert!(!svg.contains("<?xml"), "{svg}");
    }
}
