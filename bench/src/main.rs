//! `tessera-bench`: measures tessera under real RADIUS load, side by side with FreeRADIUS on
//! the same machine, and the same logins over tessera's HTTP API, and prints a table (and a
//! CSV).
//!
//! The generator speaks RADIUS itself (`load`), and HTTP to tessera's `/validate/check`
//! (`http`), starts and stops the servers (`peers`), and runs the scenarios (`scenarios`, the
//! two-round ones in `challenge`, the HTTP ones in `http`). `bench/run.sh` installs what is
//! missing, builds the release binaries and runs everything.

mod challenge;
mod eap;
mod gateway;
mod http;
mod load;
mod peers;
mod scenarios;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use scenarios::{Knobs, Row};

/// Measure tessera against FreeRADIUS.
#[derive(Parser)]
struct Args {
    /// The tessera binary to measure.
    #[arg(long, default_value = "target/release/tessera")]
    tessera: PathBuf,
    /// Scenarios, comma-separated: hotp-one-round, freeradius-pap, hotp-one-round-http,
    /// challenge-flow, challenge-flow-http, slow-gateway, store-size, hotp-one-round-pg,
    /// hotp-one-round-pg-2-nodes, challenge-flow-pg (the `-pg` ones start their own
    /// PostgreSQL), hotp-radsec, ttls-gtc (whole EAP-TTLS/GTC logins). The `-http` rows are printed right after their RADIUS
    /// counterparts'.
    #[arg(
        long,
        default_value = "hotp-one-round,freeradius-pap,hotp-one-round-http,challenge-flow,challenge-flow-http,slow-gateway,store-size,hotp-one-round-pg,hotp-one-round-pg-2-nodes,challenge-flow-pg,hotp-radsec,ttls-gtc"
    )]
    scenarios: String,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured warm-up seconds before each run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent virtual users.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Users (tokens) in the protocol scenarios.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Tokens of the large store-size run.
    #[arg(long, default_value_t = 1_000_000)]
    large_store: usize,
    /// Pace the hotp-one-round/freeradius-pap pair at this many requests a second (each), and
    /// run nothing else of it: latency and CPU per request at low load. With `--seconds` over
    /// 120 it is a soak: tessera's run is reported minute by minute too (resident memory at
    /// each minute's end) and FreeRADIUS runs one minute.
    #[arg(long)]
    rate: Option<f64>,
    /// Also write the table as CSV here.
    #[arg(long)]
    csv: Option<PathBuf>,
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<31} {:>9} {:>10} {:>10} {:>9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>17} {:>8} {:>9}",
        "scenario",
        "tokens",
        "load",
        "ok/s",
        "answered",
        "lost",
        "reject",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "round 2 p50/p99",
        "RSS MiB",
        "CPU µs/req"
    );
    for r in rows {
        let round2 = r
            .round2
            .map(|(a, b, _)| format!("{a:.2}/{b:.2}"))
            .unwrap_or_else(|| "-".into());
        let rss = r
            .rss_mib
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| "-".into());
        let cpu = r
            .cpu_micros
            .map(|c| format!("{c:.1}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<31} {:>9} {:>10} {:>10.0} {:>9} {:>6} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>17} {:>8} {:>9}",
            r.scenario,
            r.tokens,
            r.load,
            r.per_second,
            r.answered,
            r.lost,
            r.rejected,
            r.round1.0,
            r.round1.1,
            r.round1.2,
            round2,
            rss,
            cpu
        );
    }
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "scenario,tokens,load,ok_per_second,answered,lost,rejected,p50_ms,p99_ms,p999_ms,round2_p50_ms,round2_p99_ms,rss_mib,cpu_us_per_request\n",
    );
    for r in rows {
        let (a, b) = r
            .round2
            .map(|(a, b, _)| (a.to_string(), b.to_string()))
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{:.1},{},{},{},{:.3},{:.3},{:.3},{a},{b},{},{}\n",
            r.scenario,
            r.tokens,
            r.load,
            r.per_second,
            r.answered,
            r.lost,
            r.rejected,
            r.round1.0,
            r.round1.1,
            r.round1.2,
            r.rss_mib.map(|m| format!("{m:.1}")).unwrap_or_default(),
            r.cpu_micros.map(|c| format!("{c:.1}")).unwrap_or_default()
        ));
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let knobs = Knobs {
        tessera: args.tessera.clone(),
        duration: Duration::from_secs(args.seconds),
        warmup: Duration::from_secs(args.warmup),
        concurrency: args.concurrency.max(1),
        users: args.users.max(1),
        rate: args.rate.filter(|r| *r > 0.0),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let wanted: Vec<&str> = args.scenarios.split(',').map(str::trim).collect();
    let mut rows: Vec<Row> = vec![];
    let mut failed = false;
    let mut measured_pair = false;
    runtime.block_on(async {
        for scenario in &wanted {
            // The two are measured together, taking turns (see `hotp_vs_freeradius`).
            let pair = matches!(*scenario, "hotp-one-round" | "freeradius-pap");
            if pair && measured_pair {
                continue;
            }
            eprintln!("tessera-bench: running {scenario}");
            if pair {
                measured_pair = true;
            }
            let result = run_scenario(scenario, &knobs, args.large_store).await;
            match result {
                Ok(more) => rows.extend(more),
                Err(e) => {
                    eprintln!("tessera-bench: {scenario}: {e}");
                    failed = true;
                }
            }
        }
    });
    let rows = http_after_radius_counterparts(rows);
    print_table(&rows);
    print_ratios(&rows);
    if let Some(path) = &args.csv
        && let Err(e) = std::fs::write(path, csv(&rows))
    {
        eprintln!("tessera-bench: {}: {e}", path.display());
        failed = true;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one scenario by its name.
async fn run_scenario(
    scenario: &str,
    knobs: &Knobs,
    large_store: usize,
) -> Result<Vec<Row>, String> {
    match scenario {
        "hotp-one-round" | "freeradius-pap" => scenarios::hotp_vs_freeradius(knobs).await,
        "challenge-flow" => challenge::challenge_flow(knobs, false).await,
        "challenge-flow-pg" => challenge::challenge_flow_pg(knobs).await,
        "hotp-one-round-pg" => scenarios::hotp_one_round_pg(knobs, 1).await,
        "hotp-one-round-pg-2-nodes" => scenarios::hotp_one_round_pg(knobs, 2).await,
        "hotp-radsec" => scenarios::hotp_udp_vs_radsec(knobs).await,
        "ttls-gtc" => eap::ttls_gtc(knobs).await,
        "hotp-one-round-http" => http::hotp_one_round_http(knobs).await,
        "challenge-flow-http" => http::challenge_flow_http(knobs).await,
        "slow-gateway" => challenge::challenge_flow(knobs, true).await,
        "store-size" => {
            let small = scenarios::hotp_one_round(knobs, 1_000, "store-size-1k").await;
            match small {
                Ok(mut rows) => scenarios::hotp_one_round(knobs, large_store, "store-size-large")
                    .await
                    .map(|more| {
                        rows.extend(more);
                        rows
                    }),
                Err(e) => Err(e),
            }
        }
        other => Err(format!("unknown scenario {other:?}")),
    }
}

/// The HTTP scenarios and their RADIUS counterparts.
const HTTP_COUNTERPARTS: [(&str, &str); 2] = [
    ("hotp-one-round-http", "hotp-one-round"),
    ("challenge-flow-http", "challenge-flow"),
];

/// Whether a row named `row` is one of scenario `name`'s: `name`, `name@50%`, or
/// `name-first-login`.
fn of_scenario(row: &str, name: &str) -> bool {
    row.strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('@') || rest == "-first-login")
}

/// Moves each HTTP scenario's rows right after its RADIUS counterpart's, when both were run,
/// so that the table compares them line by line.
fn http_after_radius_counterparts(mut rows: Vec<Row>) -> Vec<Row> {
    for (http, radius) in HTTP_COUNTERPARTS {
        let radius_rows = rows.iter().filter(|r| of_scenario(&r.scenario, radius));
        if radius_rows.count() == 0 {
            continue;
        }
        let (moved, rest): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| of_scenario(&r.scenario, http));
        rows = rest;
        let at = rows
            .iter()
            .rposition(|r| of_scenario(&r.scenario, radius))
            .map_or(rows.len(), |i| i + 1);
        rows.splice(at..at, moved);
    }
    rows
}

/// The ratios the issues set targets for, from the rows measured, and the HTTP rows against
/// their RADIUS counterparts (throughput, and the server's CPU time per request).
fn print_ratios(rows: &[Row]) {
    // (numerator, denominator, how it is printed, target)
    const RATIOS: [(&str, &str, &str, f64); 5] = [
        (
            "hotp-one-round",
            "freeradius-pap",
            "hotp-one-round / freeradius-pap",
            1.0,
        ),
        (
            "hotp-one-round-pg",
            "hotp-one-round",
            "hotp-one-round-pg / hotp-one-round",
            0.5,
        ),
        (
            "hotp-one-round-pg-2-nodes",
            "hotp-one-round-pg",
            "hotp-one-round-pg 2 nodes / 1 node",
            1.0,
        ),
        (
            "hotp-one-round-radsec",
            "hotp-one-round-udp",
            "hotp-one-round over RadSec / over UDP",
            0.7,
        ),
        (
            "store-size-large",
            "store-size-1k",
            "store-size large / 1k",
            0.8,
        ),
    ];
    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .map(|r| r.per_second)
    };
    let mut first = true;
    for (numerator, denominator, label, target) in RATIOS {
        if let (Some(n), Some(d)) = (rate(numerator), rate(denominator)) {
            let gap = if first { "\n" } else { "" };
            first = false;
            println!("{gap}{label} = {:.2} (target >= {target:.2})", n / d);
        }
    }
    let cpu = |name: &str| {
        rows.iter()
            .find(|r| r.scenario == name)
            .and_then(|r| r.cpu_micros)
    };
    for (http, radius) in HTTP_COUNTERPARTS {
        if let (Some(n), Some(d)) = (rate(http), rate(radius)) {
            let gap = if first { "\n" } else { "" };
            first = false;
            let cpu = cpu(http)
                .zip(cpu(radius))
                .map(|(a, b)| format!(", CPU per request {:.2}", a / b))
                .unwrap_or_default();
            println!("{gap}{radius} over HTTP / over UDP = {:.2}{cpu}", n / d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(names: &[&str]) -> Vec<Row> {
        names
            .iter()
            .map(|n| Row {
                scenario: (*n).into(),
                ..Row::default()
            })
            .collect()
    }

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.scenario.as_str()).collect()
    }

    #[test]
    fn http_rows_follow_their_radius_counterparts() {
        let rows = named(&[
            "hotp-one-round",
            "hotp-one-round@50%",
            "freeradius-pap",
            "hotp-one-round-http",
            "hotp-one-round-http@50%",
            "challenge-flow-first-login",
            "challenge-flow",
            "challenge-flow@50%",
            "challenge-flow-http-first-login",
            "challenge-flow-http",
            "challenge-flow-pg",
        ]);
        let rows = http_after_radius_counterparts(rows);
        assert_eq!(
            names(&rows),
            [
                "hotp-one-round",
                "hotp-one-round@50%",
                "hotp-one-round-http",
                "hotp-one-round-http@50%",
                "freeradius-pap",
                "challenge-flow-first-login",
                "challenge-flow",
                "challenge-flow@50%",
                "challenge-flow-http-first-login",
                "challenge-flow-http",
                "challenge-flow-pg",
            ]
        );
        // Without a counterpart, HTTP rows stay where they were run.
        let alone = named(&["challenge-flow-http", "store-size-1k"]);
        assert_eq!(
            names(&http_after_radius_counterparts(alone)),
            ["challenge-flow-http", "store-size-1k"]
        );
    }
}
