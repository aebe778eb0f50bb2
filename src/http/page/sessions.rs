//! A user's accounting sessions as a table on the helpdesk's user screen (issue 30): open ones
//! first, each with its NAS, where the user is (Calling-Station-Id), the address the NAS gave,
//! since and until when. Read-only: a session ends at the NAS (a revoke sends the
//! Disconnect-Request).

use std::fmt::Write as _;

use super::html::esc;
use super::views::SessionLine;

/// The "Sessions" heading and table of `sessions`.
pub fn table(sessions: &[SessionLine]) -> String {
    let mut out = String::from("<h2 id=\"sessions-h\">Sessions</h2>\n");
    if sessions.is_empty() {
        out.push_str("<p class=\"card\" id=\"sessions\">No sessions reported by a NAS.</p>\n");
        return out;
    }
    out.push_str(
        "<div class=\"table-wrap\"><table class=\"cards sessions\" id=\"sessions\" \
         aria-labelledby=\"sessions-h\">\n<thead><tr>\
         <th scope=\"col\">State</th><th scope=\"col\">NAS</th><th scope=\"col\">Session</th>\
         <th scope=\"col\">Station</th><th scope=\"col\">Address</th><th scope=\"col\">Since</th>\
         <th scope=\"col\">Until</th></tr></thead>\n<tbody>\n",
    );
    let dash = |v: &Option<String>| esc(v.as_deref().unwrap_or("–"));
    for s in sessions {
        let state = if s.open {
            "<span class=\"badge on\">open</span>".to_string()
        } else {
            format!(
                "<span class=\"badge off\">ended</span> <span class=\"detail\">{}</span>",
                dash(&s.cause)
            )
        };
        let _ = writeln!(
            out,
            "<tr><td data-label=\"State\" class=\"state\">{state}</td>\
             <td data-label=\"NAS\" class=\"mono\">{nas}</td>\
             <td data-label=\"Session\" class=\"mono session-id\">{id}</td>\
             <td data-label=\"Station\" class=\"mono\">{station}</td>\
             <td data-label=\"Address\" class=\"mono\">{ip}</td>\
             <td data-label=\"Since\">{since}</td><td data-label=\"Until\">{until}</td></tr>",
            nas = esc(&s.nas),
            id = esc(&s.session_id),
            station = dash(&s.calling_station),
            ip = dash(&s.framed_ip),
            since = dash(&s.started),
            until = dash(&s.stopped),
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}
