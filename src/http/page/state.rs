//! The service's state: logins per minute, decisions and rejects by reason, deliveries by
//! provider and their failures (this node's counters since it started), and whether the store
//! and each directory answer now. Read from the admin layer's state reader.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::calls;
use super::html::{Nav, esc};
use super::respond::{refused, screen};
use super::views::{Delivery, StateView};
use crate::http::admin::AdminShared;
use crate::http::admin::answer::ApiError;
use crate::http::admin::guard::Operator;

/// `GET /ui/state`.
pub async fn screen_of(
    State(shared): State<Arc<AdminShared>>,
    operator: Result<Operator, ApiError>,
    headers: HeaderMap,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(error) => return refused(error),
    };
    match calls::state(&shared, operator.clone()).await {
        Ok(state) => screen(&operator, &headers, "Service", Nav::State, &body(&state)),
        Err(error) => refused(error),
    }
}

fn counts(caption: &str, head: &str, rows: &[(String, u64)]) -> String {
    if rows.is_empty() {
        return format!("<p class=\"card\">{caption}: none since start.</p>\n");
    }
    let mut out = format!(
        "<div class=\"table-wrap\"><table><caption>{caption}</caption><thead><tr><th scope=\"col\">{head}</th>\
         <th scope=\"col\" class=\"num\">Count</th></tr></thead><tbody>"
    );
    for (name, count) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            esc(name)
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// The screen's body.
pub fn body(state: &StateView) -> String {
    let total: u64 = state.decisions.iter().map(|(_, n)| n).sum();
    let rejects: u64 = state.rejects.iter().map(|(_, n)| n).sum();
    let healthy = state.health.iter().all(|h| h.ok);
    let mut out = format!(
        "<h1>Service</h1>\n<div class=\"stats\">\
         <div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">logins per minute</div></div>\
         <div class=\"card\"><div class=\"value\">{total}</div><div class=\"label\">decisions since start</div></div>\
         <div class=\"card\"><div class=\"value\">{rejects}</div><div class=\"label\">rejects since start</div></div>\
         <div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">store and directories</div></div>\
         </div>\n",
        state
            .per_minute
            .map_or_else(|| "–".to_string(), |r| format!("{r:.1}")),
        if healthy { "healthy" } else { "trouble" },
    );
    out.push_str("<h2>Store and directories</h2>\n<div class=\"table-wrap\"><table class=\"cards\"><thead><tr>\
                  <th scope=\"col\">Peer</th><th scope=\"col\">State</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
    for peer in &state.health {
        let _ = write!(
            out,
            "<tr><td data-label=\"Peer\">{}</td><td data-label=\"State\">{}</td><td data-label=\"Detail\">{}</td></tr>",
            esc(&peer.name),
            if peer.ok {
                "<span class=\"badge on\">answers</span>"
            } else {
                "<span class=\"badge locked\">down</span>"
            },
            esc(peer.error.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table></div>\n<h2>Decisions</h2>\n");
    out.push_str(&counts("By result", "Result", &state.decisions));
    out.push_str(&counts("Rejects by reason", "Reason", &state.rejects));
    out.push_str("<h2>Deliveries</h2>\n");
    if state.deliveries.is_empty() {
        out.push_str("<p class=\"card\">No code sent since start.</p>\n");
    } else {
        out.push_str("<div class=\"table-wrap\"><table class=\"cards\"><thead><tr><th scope=\"col\">Provider</th>\
                      <th scope=\"col\" class=\"num\">Sent</th><th scope=\"col\">Failed</th></tr></thead><tbody>");
        for Delivery {
            provider,
            attempts,
            failures,
        } in &state.deliveries
        {
            let failed = failures
                .iter()
                .map(|(kind, n)| format!("{n} {}", esc(kind)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
                out,
                "<tr><td data-label=\"Provider\">{}</td><td data-label=\"Sent\" class=\"num\">{attempts}</td>\
                 <td data-label=\"Failed\">{}</td></tr>",
                esc(provider),
                if failed.is_empty() {
                    "none".into()
                } else {
                    failed
                },
            );
        }
        out.push_str("</tbody></table></div>\n");
    }
    out
}
