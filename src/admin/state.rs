//! The service's state for the helpdesk's front page: logins and rejects by reason, deliveries
//! and their failures by provider (from the process's counters, `crate::metrics`, so since
//! this node started), logins per minute (from the previous reading, kept here), and whether
//! the store commits and each directory answers (probed now, under a deadline).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::directory::Realms;
use crate::metrics;
use crate::store::Store;

/// How long one probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How one peer answers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeerHealth {
    /// The directory's name, or `store`.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Deliveries through one provider.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Deliveries {
    /// The provider's name.
    pub provider: String,
    /// Codes handed to it.
    pub attempts: u64,
    /// Of those, failed, by kind (`timeout`, `refused` …).
    pub failures: BTreeMap<String, u64>,
}

/// The service's state.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    /// Decisions since start, by result (`accept`, `challenge`, `reject` …).
    pub decisions: BTreeMap<String, u64>,
    /// Rejects since start, by reason.
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Decisions per minute since the previous reading (at least 10 s before), if any.
    pub logins_per_minute: Option<f64>,
    /// Deliveries by provider.
    pub deliveries: Vec<Deliveries>,
    /// The store's health.
    pub store: PeerHealth,
    /// Each directory's health.
    pub directories: Vec<PeerHealth>,
}

/// Keeps the previous reading, for the rate.
#[derive(Debug, Default)]
pub struct StateReader {
    previous: Mutex<Option<(Instant, u64)>>,
}

impl StateReader {
    /// Reads the counters and probes the store and every directory.
    pub async fn read(&self, store: &dyn Store, realms: &Realms) -> ServiceState {
        let mut decisions = BTreeMap::new();
        let mut rejects_by_reason = BTreeMap::new();
        for (labels, value) in metrics::series("tessera_auth_decisions_total") {
            let label = |name: &str| {
                labels
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let result = label("result");
            *decisions.entry(result.clone()).or_insert(0) += value;
            if result == "reject" {
                *rejects_by_reason.entry(label("reason")).or_insert(0) += value;
            }
        }
        let total: u64 = decisions.values().sum();
        ServiceState {
            logins_per_minute: self.rate(total),
            decisions,
            rejects_by_reason,
            deliveries: deliveries(),
            store: probe_store(store).await,
            directories: probe_directories(realms).await,
        }
    }

    /// Decisions per minute since the previous reading, which this one replaces once it is
    /// at least 10 s old.
    fn rate(&self, total: u64) -> Option<f64> {
        let now = Instant::now();
        let mut previous = self.previous.lock().ok()?;
        match *previous {
            Some((at, count)) => {
                let elapsed = now.duration_since(at).as_secs_f64();
                if elapsed < 10.0 {
                    return None;
                }
                *previous = Some((now, total));
                Some(total.saturating_sub(count) as f64 * 60.0 / elapsed)
            }
            None => {
                *previous = Some((now, total));
                None
            }
        }
    }
}

fn deliveries() -> Vec<Deliveries> {
    let mut by_provider: BTreeMap<String, Deliveries> = BTreeMap::new();
    let provider = |labels: &[(&'static str, String)]| {
        labels
            .iter()
            .find(|(k, _)| *k == "provider")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for (labels, value) in metrics::series("tessera_delivery_attempts_total") {
        let name = provider(&labels);
        let entry = by_provider.entry(name.clone()).or_default();
        entry.provider = name;
        entry.attempts += value;
    }
    for (labels, value) in metrics::series("tessera_delivery_failures_total") {
        let name = provider(&labels);
        let kind = labels
            .iter()
            .find(|(k, _)| *k == "kind")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let entry = by_provider.entry(name.clone()).or_default();
        entry.provider = name;
        *entry.failures.entry(kind).or_insert(0) += value;
    }
    by_provider.into_values().collect()
}

async fn probe_store(store: &dyn Store) -> PeerHealth {
    let error = match tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
    };
    PeerHealth {
        name: "store".into(),
        ok: error.is_none(),
        error,
    }
}

async fn probe_directories(realms: &Realms) -> Vec<PeerHealth> {
    let mut seen = vec![];
    let mut health = vec![];
    for realm in realms.all() {
        for directory in &realm.directories {
            let name = directory.name().to_string();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let lookup = directory.lookup("tessera-health-check");
            let error = match tokio::time::timeout(PROBE_TIMEOUT, lookup).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            health.push(PeerHealth {
                name,
                ok: error.is_none(),
                error,
            });
        }
    }
    health
}
