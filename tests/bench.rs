//! `bazaar bench` as a user runs it: the real binary, a real peer process,
//! small message counts, JSON out. Checks the shape of the answer, never
//! the speed (benchmarks are not timed tests).

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// Runs `bazaar bench ARGS --json` and returns its result rows.
fn bench_results(args: &[&str]) -> Vec<Value> {
    let output = Command::new(BIN)
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("cannot run bazaar bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bazaar bench failed: {stderr}");
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {stderr}"));
    json["results"].as_array().expect("a results array").clone()
}

#[test]
fn bench_reports_every_system_of_every_requested_workload() {
    let results = bench_results(&[
        "--workload",
        "local-cast",
        "--workload",
        "remote-call",
        "--payload",
        "32",
        "--messages",
        "2000",
    ]);

    let expected = [
        ("local-cast", ["bazaar", "ractor", "tokio-mpsc"]),
        ("remote-call", ["bazaar", "ractor_cluster", "tcp-framed"]),
    ];
    for (workload, systems) in expected {
        for system in systems {
            let rows: Vec<&Value> = results
                .iter()
                .filter(|row| row["workload"] == workload && row["system"] == system)
                .collect();
            // Calls come sequential and pipelined; casts once.
            let variants = if workload == "remote-call" { 2 } else { 1 };
            assert_eq!(rows.len(), variants, "{workload} {system}: {results:#?}");
            for row in rows {
                check_row(
                    row,
                    workload.starts_with("remote"),
                    workload.ends_with("call"),
                );
            }
        }
    }
    assert_eq!(results.len(), 3 + 3 * 2, "no other rows: {results:#?}");
}

#[test]
fn a_frozen_peer_gets_refusals_and_every_accepted_cast() {
    let results = bench_results(&[
        "--workload",
        "frozen-peer",
        "--payload",
        "32",
        "--messages",
        "200000",
        "--runs",
        "1",
    ]);
    assert_eq!(results.len(), 1, "bazaar only: {results:#?}");
    let row = &results[0];
    assert_eq!(row["system"], "bazaar");
    assert_eq!(row["errors"], 0, "every accepted cast arrives: {row:#}");
    let arrived = row["messages"].as_u64().expect("messages");
    let refused = row["refused"].as_u64().expect("refused");
    assert!(arrived > 0, "some casts fit in the lane: {row:#}");
    assert!(refused > 0, "a frozen peer must push back: {row:#}");
    assert_eq!(arrived + refused, 200_000, "every cast accepted or refused");
}

fn check_row(row: &Value, remote: bool, call: bool) {
    let what = format!("{} {} {}", row["workload"], row["system"], row["in_flight"]);
    assert_eq!(row["payload"], 32, "{what}");
    assert_eq!(row["runs"], 3, "{what}: the default --runs");
    assert_eq!(row["errors"], 0, "{what}: {}", row["failure"]);
    for key in [
        "rate",
        "rate_min",
        "rate_max",
        "cpu_us_per_msg",
        "peak_rss_mb",
    ] {
        let value = row[key].as_f64().unwrap_or(0.0);
        assert!(value > 0.0, "{what}: {key} = {}", row[key]);
    }
    for key in ["p50_us", "p99_us", "p999_us"] {
        if call {
            assert!(row[key].as_f64().unwrap_or(0.0) > 0.0, "{what}: {key}");
        } else {
            assert!(row[key].is_null(), "{what}: {key} should be null for casts");
        }
    }
    if remote {
        assert!(
            row["peer_peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0,
            "{what}: peer rss"
        );
    } else {
        assert!(
            row["peer_peak_rss_mb"].is_null(),
            "{what}: no peer for local"
        );
    }
    let baselines = row["ratios"].as_object().expect("ratios");
    let expected = if row["system"] == "bazaar" { 2 } else { 1 };
    assert_eq!(baselines.len(), expected, "{what}: ratios {baselines:?}");
    assert!(baselines
        .values()
        .all(|ratio| ratio.as_f64().unwrap_or(0.0) > 0.0));
}
