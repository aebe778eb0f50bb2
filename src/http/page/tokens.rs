//! A user's tokens as a table, for the helpdesk (with the buttons an operator's role allows)
//! and for the user's own self-service screen (with the buttons the policies allow). Only
//! what is safe to show: the recipient masked, never a seed. Each button is a small form that
//! posts with the session's CSRF token; "Remove" asks first (a dialog with the script, a
//! confirmation page without it).

use std::fmt::Write as _;

use super::html::{csrf_field, esc, when};
use super::views::TokenView;

/// Which buttons a row gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Buttons {
    /// Enable and disable.
    pub toggle: bool,
    /// Disable only (self-service: a lost token).
    pub disable_only: bool,
    /// Reset the fail counter and end the back-off.
    pub reset: bool,
    /// Resync from two codes.
    pub resync: bool,
    /// Set the description.
    pub describe: bool,
    /// Remove (admins).
    pub remove: bool,
}

/// The table of `tokens`; each action posts to `{base}/{serial}/{action}`.
pub fn table(tokens: &[TokenView], base: &str, buttons: Buttons, csrf: &str) -> String {
    if tokens.is_empty() {
        return "<p class=\"card\">No tokens yet.</p>\n".into();
    }
    let mut out = String::from(
        "<div class=\"table-wrap\"><table class=\"cards tokens\">\n<thead><tr>\
         <th scope=\"col\">Serial</th><th scope=\"col\">Type</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Failures</th><th scope=\"col\">Back-off</th><th scope=\"col\">Last use</th>\
         <th scope=\"col\">Sends to</th><th scope=\"col\">Description</th><th scope=\"col\">Actions</th>\
         </tr></thead>\n<tbody>\n",
    );
    for token in tokens {
        let _ = writeln!(
            out,
            "<tr id=\"token-{id}\"><td data-label=\"Serial\" class=\"mono serial\">{serial}</td>\
             <td data-label=\"Type\" class=\"kind\">{kind}</td><td data-label=\"State\" class=\"state\">{state}</td>\
             <td data-label=\"Failures\" class=\"num fails\">{fails} of {max}</td>\
             <td data-label=\"Back-off\" class=\"backoff\">{backoff}</td>\
             <td data-label=\"Last use\" class=\"last-use\">{last}</td>\
             <td data-label=\"Sends to\" class=\"mono recipient\">{recipient}</td>\
             <td data-label=\"Description\" class=\"description\">{description}</td>\
             <td data-label=\"Actions\"><div class=\"actions\">{actions}</div></td></tr>",
            id = esc(&token.serial),
            serial = esc(&token.serial),
            kind = esc(&token.kind.to_uppercase()),
            state = token.badge(),
            fails = token.fail_count,
            max = token.max_fail,
            backoff = esc(token.backoff.as_deref().unwrap_or("none")),
            last = when(token.last_use),
            recipient = esc(token.recipient.as_deref().unwrap_or("–")),
            description = esc(&token.description),
            actions = actions(token, base, buttons, csrf),
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

fn post(action: &str, label: &str, serial: &str, class: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\">{}<button type=\"submit\" class=\"{class}\" \
         aria-label=\"{label} token {serial}\">{label}</button></form>",
        csrf_field(csrf),
        serial = esc(serial),
    )
}

fn actions(token: &TokenView, base: &str, buttons: Buttons, csrf: &str) -> String {
    let at = format!("{base}/{}", esc(&token.serial));
    let serial = &token.serial;
    let mut out = String::new();
    if buttons.toggle && !token.pending {
        out.push_str(&if token.active {
            post(&format!("{at}/disable"), "Disable", serial, "quiet", csrf)
        } else {
            post(&format!("{at}/enable"), "Enable", serial, "quiet", csrf)
        });
    } else if buttons.disable_only && token.active {
        out.push_str(&post(
            &format!("{at}/disable"),
            "Disable",
            serial,
            "danger",
            csrf,
        ));
    }
    if buttons.reset {
        out.push_str(&post(
            &format!("{at}/reset"),
            "Reset",
            serial,
            "quiet",
            csrf,
        ));
    }
    if buttons.resync && token.is_resyncable() {
        let _ = write!(
            out,
            "<a class=\"button quiet\" href=\"{at}/resync\" aria-label=\"Resync token {s}\">Resync</a>",
            s = esc(serial)
        );
    }
    if buttons.describe {
        let _ = write!(
            out,
            "<a class=\"button quiet\" href=\"{at}/describe\" aria-label=\"Describe token {s}\">Describe</a>",
            s = esc(serial)
        );
    }
    if buttons.remove {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{at}/remove\">{}<input type=\"hidden\" name=\"confirmed\" value=\"\">\
             <button type=\"submit\" class=\"danger\" aria-label=\"Remove token {s}\" \
             data-confirm=\"Remove token {s}? This cannot be undone.\">Remove</button></form>",
            csrf_field(csrf),
            s = esc(serial)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenView {
        TokenView {
            serial: "LSSM0001".into(),
            kind: "sms".into(),
            active: true,
            fail_count: 2,
            max_fail: 10,
            recipient: Some("+49********678".into()),
            description: "<i>phone</i>".into(),
            ..TokenView::default()
        }
    }

    #[test]
    fn a_helpdesk_row_has_no_remove_button_and_escapes_the_description() {
        let buttons = Buttons {
            toggle: true,
            reset: true,
            resync: true,
            describe: true,
            ..Buttons::default()
        };
        let html = table(&[token()], "/ui/users/alice/tokens", buttons, "c");
        assert!(
            html.contains("/ui/users/alice/tokens/LSSM0001/disable"),
            "{html}"
        );
        assert!(html.contains("2 of 10"), "{html}");
        assert!(html.contains("&lt;i&gt;phone&lt;/i&gt;"), "{html}");
        assert!(!html.contains("/remove"), "{html}");
        assert!(
            !html.contains("/resync"),
            "SMS tokens are not resynced: {html}"
        );
        let admin = table(
            &[token()],
            "/ui/users/alice/tokens",
            Buttons {
                remove: true,
                ..buttons
            },
            "c",
        );
        assert!(
            admin.contains("/ui/users/alice/tokens/LSSM0001/remove"),
            "{admin}"
        );
    }
}
