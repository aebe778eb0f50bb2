//! The audit screen: filters (user, result, client, time range) in a GET form, so a filtered
//! view is a link one can share, the rows newest first, and the CSV export of the same filters
//! (the admin API's, for admins: an export is theirs).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::calls;
use super::html::{Flash, Nav, esc, query_value};
use super::respond::{refused, screen, screen_with};
use super::views::Row;
use crate::admin::Action;
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::fields::Fields;
use crate::http::admin::guard::Operator;

/// The filters as typed.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// The identity.
    pub user: String,
    /// `accept`, `reject`, …
    pub result: String,
    /// A part of the client.
    pub client: String,
    /// From (`15m`, `2h`, `7d`, a date or a time).
    pub since: String,
    /// Until.
    pub until: String,
}

impl Filters {
    /// The query string of the filters that are set (for the CSV link).
    pub fn query(&self) -> String {
        [
            ("user", &self.user),
            ("result", &self.result),
            ("client", &self.client),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", query_value(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

const RESULTS: [&str; 6] = ["accept", "challenge", "reject", "forward", "ok", "failed"];

/// Where the admin API exports the audit as CSV (the filters follow).
pub const CSV: &str = "/api/v1/audit?format=csv";

/// `GET /ui/audit?user=&result=&client=&since=&until=`.
pub async fn screen_of(
    State(shared): State<Arc<AdminShared>>,
    operator: Result<Operator, ApiError>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    let query = Fields::from_query(uri.query());
    let field = |name: &str| query.get(name).unwrap_or("").to_string();
    let filters = Filters {
        user: field("user"),
        result: field("result"),
        client: field("client"),
        since: field("since"),
        until: field("until"),
    };
    let asked = [
        ("user", filters.user.as_str()),
        ("result", filters.result.as_str()),
        ("client", filters.client.as_str()),
        ("since", filters.since.as_str()),
        ("until", filters.until.as_str()),
    ];
    let csv = operator.role().allows(Action::Export).then_some(CSV);
    match calls::audit(&shared, operator.clone(), &asked).await {
        Ok(rows) => screen(
            &operator,
            &headers,
            "Audit",
            Nav::Audit,
            &body(&filters, &rows, csv),
        ),
        Err(error) if error.status == axum::http::StatusCode::BAD_REQUEST => screen_with(
            &operator,
            Some(Flash::Error(error.message)),
            "Audit",
            Nav::Audit,
            &body(&filters, &[], csv),
            &headers,
        ),
        Err(error) => refused(error),
    }
}

/// The screen's body; `csv` is the export's address (filters not yet added), when the
/// operator may export.
pub fn body(filters: &Filters, rows: &[Row], csv: Option<&str>) -> String {
    let prefix = super::PREFIX;
    let mut options = String::from("<option value=\"\">any</option>");
    for result in RESULTS {
        let selected = if filters.result == result {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<option value=\"{result}\"{selected}>{result}</option>"
        );
    }
    let mut out = format!(
        "<h1>Audit</h1>\n<form class=\"card\" method=\"get\" action=\"{prefix}/audit\" aria-label=\"Audit filters\">\n\
         <div class=\"row\">\
         <div><label for=\"f-user\">User</label><input type=\"text\" id=\"f-user\" name=\"user\" value=\"{user}\"></div>\
         <div><label for=\"f-result\">Result</label><select id=\"f-result\" name=\"result\">{options}</select></div>\
         <div><label for=\"f-client\">Client <span class=\"hint\">part of it</span></label><input type=\"text\" id=\"f-client\" name=\"client\" value=\"{client}\"></div>\
         <div><label for=\"f-since\">From <span class=\"hint\">2h, 7d, 2026-11-23</span></label><input type=\"text\" id=\"f-since\" name=\"since\" value=\"{since}\"></div>\
         <div><label for=\"f-until\">Until</label><input type=\"text\" id=\"f-until\" name=\"until\" value=\"{until}\"></div>\
         <div><button type=\"submit\">Filter</button></div></div>\n</form>\n",
        user = esc(&filters.user),
        client = esc(&filters.client),
        since = esc(&filters.since),
        until = esc(&filters.until),
    );
    if let Some(csv) = csv {
        let query = filters.query();
        let href = if query.is_empty() {
            csv.to_string()
        } else {
            format!("{csv}&{query}")
        };
        let _ = writeln!(
            out,
            "<p><a class=\"button quiet\" id=\"csv\" href=\"{}\" download>Export as CSV</a></p>",
            esc(&href)
        );
    }
    if rows.is_empty() {
        out.push_str("<p class=\"card\">No audit rows match.</p>\n");
        return out;
    }
    out.push_str(
        "<div class=\"table-wrap\"><table class=\"cards audit\">\n<caption>Newest first</caption>\n<thead><tr>\
         <th scope=\"col\">Time (UTC)</th><th scope=\"col\">User</th><th scope=\"col\">Action</th>\
         <th scope=\"col\">Result</th><th scope=\"col\">Token</th><th scope=\"col\">Client</th>\
         <th scope=\"col\">Detail</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "<tr><td data-label=\"Time\" class=\"mono time\">{}</td><td data-label=\"User\">{}</td>\
             <td data-label=\"Action\" class=\"action\">{}</td><td data-label=\"Result\" class=\"result\">{}</td>\
             <td data-label=\"Token\" class=\"mono\">{}</td><td data-label=\"Client\" class=\"mono\">{}</td>\
             <td data-label=\"Detail\" class=\"reason\">{}</td></tr>",
            esc(&row.time),
            esc(&row.user),
            esc(&row.action),
            esc(&row.result),
            esc(&row.serial),
            esc(&row.client),
            esc(&row.reason),
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_link_keeps_the_filters_and_rows_are_escaped() {
        let filters = Filters {
            user: "alice".into(),
            result: "ok".into(),
            since: "2h".into(),
            ..Filters::default()
        };
        let rows = [Row {
            reason: "<b>by carol</b>".into(),
            ..Row::default()
        }];
        let html = body(&filters, &rows, Some(CSV));
        assert!(
            html.contains(
                "href=\"/api/v1/audit?format=csv&amp;user=alice&amp;result=ok&amp;since=2h\""
            ),
            "{html}"
        );
        assert!(html.contains("<option value=\"ok\" selected>"), "{html}");
        assert!(html.contains("&lt;b&gt;by carol&lt;/b&gt;"), "{html}");
        assert!(!body(&filters, &rows, None).contains("CSV"));
    }
}
