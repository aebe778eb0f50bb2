//! Metrics in Prometheus's text format, and the health state behind `/healthz` and
//! Status-Server.
//!
//! One process-wide [`Registry`] ([`global`]) holds counters and latency histograms keyed by
//! name and labels; every layer records into it (`metrics::inc`, `metrics::observe`) and the
//! optional HTTP listener ([`serve_http`]) renders it. Label values come from configuration
//! (client, provider and directory names) or from small fixed sets, so the number of series
//! stays bounded. The registry is a mutex-protected map: an increment costs a hash lookup under
//! an uncontended lock, far below the cost of the RADIUS packet it counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What each metric means, for the `# HELP` lines.
const HELP: &[(&str, &str, &str)] = &[
    (
        "tessera_radius_requests_total",
        "counter",
        "RADIUS requests received, by code, client and transport (udp, tls)",
    ),
    (
        "tessera_radius_replies_total",
        "counter",
        "RADIUS replies sent, by code, client and transport (udp, tls)",
    ),
    (
        "tessera_radius_drops_total",
        "counter",
        "datagrams dropped unanswered, by cause",
    ),
    (
        "tessera_eap_conversations",
        "gauge",
        "EAP conversations open (at most [eap] max_conversations, plus those being answered)",
    ),
    (
        "tessera_eap_conversations_total",
        "counter",
        "EAP conversations opened, and how they ended (accepted, rejected, expired, refused, unknown)",
    ),
    (
        "tessera_eap_malformed_total",
        "counter",
        "EAP-Messages that are not EAP packets (rejected)",
    ),
    (
        "tessera_http_requests_total",
        "counter",
        "HTTP API requests answered, by route and answer (accept, challenge, reject, or the HTTP status)",
    ),
    (
        "tessera_http_refused_total",
        "counter",
        "HTTP API requests refused before the engine, by cause",
    ),
    (
        "tessera_auth_decisions_total",
        "counter",
        "authentication decisions, by result and reason",
    ),
    (
        "tessera_delivery_attempts_total",
        "counter",
        "OTP deliveries attempted, by provider",
    ),
    (
        "tessera_delivery_failures_total",
        "counter",
        "OTP deliveries failed, by provider and kind",
    ),
    (
        "tessera_local_failures_total",
        "counter",
        "logins refused because of a failure of tessera's own (descriptors, memory, runtime, system), never the provider's, by resource",
    ),
    (
        "tessera_connections_refused_total",
        "counter",
        "TCP connections closed on accept, by listener and reason (per_source, full, descriptors)",
    ),
    (
        "tessera_connections_closed_total",
        "counter",
        "TCP connections closed before their handshake finished, by listener and reason (evicted, handshake_timeout)",
    ),
    (
        "tessera_descriptors_open",
        "gauge",
        "file descriptors the process has open (counted in /proc/self/fd when read)",
    ),
    (
        "tessera_descriptor_limit",
        "gauge",
        "the soft limit on open file descriptors (RLIMIT_NOFILE)",
    ),
    (
        "tessera_delivery_seconds",
        "histogram",
        "OTP delivery latency, by provider",
    ),
    (
        "tessera_directory_seconds",
        "histogram",
        "directory operation latency, by directory and operation",
    ),
    (
        "tessera_directory_errors_total",
        "counter",
        "directory operations that failed, by directory",
    ),
    (
        "tessera_store_seconds",
        "histogram",
        "token store operation latency (queue, work and commit)",
    ),
    (
        "tessera_accounting_records_total",
        "counter",
        "accounting records, by Acct-Status-Type and result (stored, unchanged, limit, failed)",
    ),
    (
        "tessera_sessions_open",
        "gauge",
        "accounting sessions open, by client entry (refreshed every minute)",
    ),
    (
        "tessera_reply_cache_entries",
        "gauge",
        "requests held by the reply cache (answered and in flight)",
    ),
    (
        "tessera_backoff_identities_under_attack",
        "gauge",
        "identities whose failed passwords from all origins reached backoff_identity_after, not yet forgotten",
    ),
    (
        "tessera_tls_certificate_expiry_seconds",
        "gauge",
        "when the RadSec server certificate expires (Unix time; 0 without RadSec)",
    ),
    (
        "tessera_up",
        "gauge",
        "1 when the store commits and at least one directory answers",
    ),
];

/// Reads a gauge's current value when the metrics are rendered.
type GaugeSource = Box<dyn Fn() -> usize + Send + Sync>;

/// The registry. See the module documentation.
#[derive(Default)]
pub struct Registry {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
    gauges: Mutex<BTreeMap<&'static str, GaugeSource>>,
}

/// The process-wide registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Applies `update` to the value of `name` with `pairs`, creating it when new. The labels are
/// compared in place: a metric that exists costs no allocation (this runs several times per
/// request).
fn update<V: Default>(
    map: &mut BTreeMap<(&'static str, Labels), V>,
    name: &'static str,
    pairs: &[(&'static str, &str)],
    update: impl FnOnce(&mut V),
) {
    let same = |labels: &Labels| {
        labels.len() == pairs.len()
            && labels
                .iter()
                .zip(pairs)
                .all(|((k, v), (pk, pv))| k == pk && v == pv)
    };
    let existing = map
        .range_mut((name, Vec::new())..)
        .take_while(|((n, _), _)| *n == name)
        .find(|((_, labels), _)| same(labels));
    match existing {
        Some((_, value)) => update(value),
        None => update(map.entry((name, labels(pairs))).or_default()),
    }
}

/// Adds one to a counter.
pub fn inc(name: &'static str, pairs: &[(&'static str, &str)]) {
    if let Ok(mut counters) = global().counters.lock() {
        update(&mut counters, name, pairs, |count| *count += 1);
    }
}

/// Sets a labelled gauge (one series per label set, like a counter's).
pub fn set(name: &'static str, pairs: &[(&'static str, &str)], value: u64) {
    if let Ok(mut counters) = global().counters.lock() {
        update(&mut counters, name, pairs, |current| *current = value);
    }
}

/// Makes `read` the source of a gauge: it is called when the metrics are rendered, so the
/// thing measured pays nothing per request. A later registration replaces an earlier one.
pub fn register_gauge(name: &'static str, read: impl Fn() -> usize + Send + Sync + 'static) {
    if let Ok(mut gauges) = global().gauges.lock() {
        gauges.insert(name, Box::new(read));
    }
}

/// Records a latency.
pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    if let Ok(mut histograms) = global().histograms.lock() {
        update(&mut histograms, name, pairs, |h: &mut Histogram| {
            for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *count += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        });
    }
}

/// A counter's current value (tests and reports).
pub fn counter(name: &'static str, pairs: &[(&'static str, &str)]) -> u64 {
    global()
        .counters
        .lock()
        .ok()
        .and_then(|c| c.get(&(name, labels(pairs))).copied())
        .unwrap_or(0)
}

/// Every series of the counter `name`: its labels and value (the admin API's state page).
pub fn series(name: &str) -> Vec<(Vec<(&'static str, String)>, u64)> {
    global().counters.lock().map_or_else(
        |_| vec![],
        |counters| {
            counters
                .iter()
                .filter(|((n, _), _)| *n == name)
                .map(|((_, labels), value)| (labels.clone(), *value))
                .collect()
        },
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Renders every metric in Prometheus's text exposition format.
pub fn render(health: &Health) -> String {
    let mut out = String::new();
    let counters = global()
        .counters
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let histograms = global()
        .histograms
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        if *name == "tessera_up" {
            let _ = writeln!(out, "tessera_up {}", u8::from(health.is_up()));
            continue;
        }
        if let Ok(gauges) = global().gauges.lock()
            && let Some(read) = gauges.get(name)
        {
            let _ = writeln!(out, "{name} {}", read());
        }
        for ((n, labels), value) in counters.iter().filter(|((n, _), _)| n == name) {
            let _ = writeln!(out, "{n}{} {value}", label_text(labels, None));
        }
        for ((n, labels), h) in histograms.iter().filter(|((n, _), _)| n == name) {
            for (count, bound) in h.counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {count}",
                    label_text(labels, Some(("le", bound.to_string())))
                );
            }
            let _ = writeln!(
                out,
                "{n}_bucket{} {}",
                label_text(labels, Some(("le", "+Inf".into()))),
                h.count
            );
            let _ = writeln!(out, "{n}_sum{} {}", label_text(labels, None), h.sum);
            let _ = writeln!(out, "{n}_count{} {}", label_text(labels, None), h.count);
        }
    }
    out
}

/// Whether tessera can do its job: the store commits a write and at least one directory
/// answers. Set by a
/// periodic check, read by `/healthz` and by Status-Server (a NAS fails over to another server
/// when we do not answer).
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: AtomicBool::new(true),
        }
    }
}

impl Health {
    /// Whether the last check passed.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records a check's result.
    pub fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!(
                    "health check passed again: the store commits and a directory answers"
                );
            } else {
                tracing::error!(
                    "health check failed: the store cannot commit, or no directory answers"
                );
            }
        }
    }
}

/// `[metrics]`: the optional HTTP listener.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where to serve `/metrics` and `/healthz`, e.g. `127.0.0.1:9812`. Off when absent.
    pub listen: Option<toml::Spanned<String>>,
}

/// Serves `GET /metrics` and `GET /healthz` until `shutdown`. Each connection gets one
/// response and is closed; a request that does not arrive within 5 s is dropped.
pub async fn serve_http(
    listener: TcpListener,
    health: std::sync::Arc<Health>,
    shutdown: CancellationToken,
) {
    loop {
        let (mut stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let health = health.clone();
        tokio::spawn(async move {
            // Read the request head (up to 8 KiB), within 5 s.
            let mut head = Vec::with_capacity(512);
            let read_head = async {
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(5), read_head)
                .await
                .is_err()
            {
                return;
            }
            let request = String::from_utf8_lossy(&head);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/metrics" => ("200 OK", render(&health)),
                "/healthz" if health.is_up() => ("200 OK", "ok\n".to_string()),
                "/healthz" => ("503 Service Unavailable", "unavailable\n".to_string()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                stream.write_all(response.as_bytes()),
            )
            .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_label_set_counts_on_its_own() {
        inc("test_label_sets_total", &[("result", "accept")]);
        inc("test_label_sets_total", &[("result", "accept")]);
        inc("test_label_sets_total", &[("result", "reject")]);
        inc(
            "test_label_sets_total",
            &[("result", "accept"), ("reason", "x")],
        );
        inc("test_label_sets_other_total", &[("result", "accept")]);
        assert_eq!(counter("test_label_sets_total", &[("result", "accept")]), 2);
        assert_eq!(counter("test_label_sets_total", &[("result", "reject")]), 1);
        assert_eq!(
            counter(
                "test_label_sets_total",
                &[("result", "accept"), ("reason", "x")]
            ),
            1
        );
        assert_eq!(
            counter("test_label_sets_other_total", &[("result", "accept")]),
            1
        );
        assert_eq!(counter("test_label_sets_total", &[]), 0);
    }

    #[test]
    fn renders_counters_and_histograms() {
        inc(
            "tessera_radius_drops_total",
            &[("cause", "unit_test\"cause")],
        );
        inc(
            "tessera_radius_drops_total",
            &[("cause", "unit_test\"cause")],
        );
        observe(
            "tessera_delivery_seconds",
            &[("provider", "unit-test")],
            Duration::from_millis(3),
        );
        let text = render(&Health::default());
        assert!(
            text.contains("tessera_radius_drops_total{cause=\"unit_test\\\"cause\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_delivery_seconds_bucket{provider=\"unit-test\",le=\"0.0025\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("tessera_delivery_seconds_bucket{provider=\"unit-test\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tessera_delivery_seconds_count{provider=\"unit-test\"} 1"),
            "{text}"
        );
        assert!(text.contains("tessera_up 1"));
    }
}
