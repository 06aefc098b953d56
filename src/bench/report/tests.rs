use std::time::Duration;

use super::*;
use crate::bench::measure::Percentiles;
use crate::bench::plan::{System, Workload};

fn spec(workload: Workload, system: System, in_flight: Option<usize>) -> Spec {
    Spec {
        workload,
        system,
        payload: 1024,
        in_flight,
        messages: 1000,
        duration: Duration::from_secs(1),
    }
}

fn sample(rate: f64, latency_us: Option<f64>) -> Sample {
    Sample {
        messages: 1000,
        errors: 0,
        elapsed: Duration::from_secs_f64(1000.0 / rate),
        enqueued: latency_us
            .is_none()
            .then(|| Duration::from_secs_f64(100.0 / rate)),
        latencies: latency_us.map(|us| Percentiles {
            p50_us: us,
            p99_us: us * 2.0,
            p999_us: us * 3.0,
        }),
        cpu: Duration::from_millis(4),
        peak_rss_kb: 10 * 1024,
        peer_peak_rss_kb: Some(20 * 1024),
        refused: None,
        failure: None,
    }
}

fn settings() -> Settings {
    Settings {
        workloads: vec![Workload::RemoteCast, Workload::RemoteCall],
        payloads: vec![1024],
        messages: None,
        in_flight: 64,
        duration: Duration::from_secs(1),
        runs: 3,
        json: true,
        runtime: crate::runtime::RuntimeArgs {
            workers: Some(1),
            busy_poll_us: 200,
        },
    }
}

const MACHINE: Machine = Machine {
    cpus: 2,
    load_before: Some(0.5),
    load_after: None,
};

fn rows() -> Vec<Row> {
    let cast = |system, rate| {
        Row::summarize(
            &spec(Workload::RemoteCast, system, None),
            &[
                sample(rate, None),
                sample(rate * 2.0, None),
                sample(rate * 0.5, None),
            ],
        )
    };
    let call = |system, rate| {
        Row::summarize(
            &spec(Workload::RemoteCall, system, Some(1)),
            &[
                sample(rate, Some(40.0)),
                sample(rate, Some(60.0)),
                sample(rate, Some(50.0)),
            ],
        )
    };
    let mut rows = vec![
        cast(System::Bazaar, 100_000.0),
        cast(System::RactorCluster, 200_000.0),
        cast(System::TcpFramed, 1_000_000.0),
        call(System::Bazaar, 10_000.0),
        call(System::TcpFramed, 40_000.0),
    ];
    add_ratios(&mut rows);
    rows
}

#[test]
fn a_row_holds_the_median_and_spread_of_its_runs() {
    let rows = rows();
    let bazaar = &rows[0];
    assert_eq!(bazaar.runs, 3);
    assert!((bazaar.rate - 100_000.0).abs() < 1e-6);
    assert!((bazaar.rate_min - 50_000.0).abs() < 1e-6);
    assert!((bazaar.rate_max - 200_000.0).abs() < 1e-6);
    assert_eq!(bazaar.p50_us, None);
    let enqueue_rate = bazaar.enqueue_rate.unwrap();
    assert!((enqueue_rate - 1_000_000.0).abs() < 1e-3, "{enqueue_rate}");
    assert_eq!(bazaar.cpu_us_per_msg, Some(4.0));
    assert_eq!(bazaar.peak_rss_mb, 10.0);
    assert_eq!(bazaar.peer_peak_rss_mb, Some(20.0));
    let call = &rows[3];
    assert_eq!(call.p50_us, Some(50.0));
    assert_eq!(call.enqueue_rate, None);
    assert_eq!(call.p99_us, Some(100.0));
    assert_eq!(call.p999_us, Some(150.0));
}

#[test]
fn ratios_compare_with_every_baseline_of_the_same_measurement() {
    let rows = rows();
    let bazaar = &rows[0];
    assert_eq!(bazaar.ratios.len(), 2);
    assert!((bazaar.ratios["ractor_cluster"] - 0.5).abs() < 1e-9);
    assert!((bazaar.ratios["tcp-framed"] - 0.1).abs() < 1e-9);
    // A baseline is compared with the other baselines, never with itself or bazaar.
    assert_eq!(
        rows[1].ratios.keys().copied().collect::<Vec<_>>(),
        ["tcp-framed"]
    );
    // Calls are compared only with calls.
    assert_eq!(
        rows[3].ratios.keys().copied().collect::<Vec<_>>(),
        ["tcp-framed"]
    );
    assert!((rows[3].ratios["tcp-framed"] - 0.25).abs() < 1e-9);
}

#[test]
fn json_has_the_documented_shape() {
    let json = to_json(&rows(), &settings(), &MACHINE);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let cast = &results[0];
    for key in [
        "workload",
        "system",
        "payload",
        "rate",
        "p50_us",
        "p99_us",
        "p999_us",
        "cpu_us_per_msg",
        "peak_rss_mb",
        "peer_peak_rss_mb",
        "runs",
        "rate_min",
        "rate_max",
        "ratios",
    ] {
        assert!(cast.get(key).is_some(), "missing {key}");
    }
    assert_eq!(cast["workload"], "remote-cast");
    assert_eq!(cast["system"], "bazaar");
    assert_eq!(cast["payload"], 1024);
    assert!(cast["p50_us"].is_null());
    assert!(cast["in_flight"].is_null());
    assert_eq!(results[1]["system"], "ractor_cluster");
    assert_eq!(results[2]["system"], "tcp-framed");
    assert_eq!(results[3]["p99_us"], 100.0);
    assert_eq!(results[3]["in_flight"], 1);
    assert_eq!(json["settings"]["runs"], 3);
    assert_eq!(json["settings"]["workers_per_process"], 1);
    assert_eq!(json["settings"]["busy_poll_us"], 200);
    assert_eq!(json["machine"]["cpus"], 2);
    assert!(json["machine"]["load_after"].is_null());
}

#[test]
fn the_table_aligns_columns_and_names_failures() {
    let mut rows = rows();
    rows[4].errors = 2;
    rows[4].failure = Some("2 calls failed, last: no reply within 5s".into());
    let table = render_table(&rows, &settings(), &MACHINE);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("bazaar bench: 3 run(s)"));
    assert!(
        lines[0].ends_with(
            "2 cpus, 1 worker(s) per process, lanes busy-poll 200 µs; load 0.50 before, ? after"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("rate: "));
    assert!(lines[2].starts_with("WORKLOAD"));
    assert!(lines[3].starts_with("remote-cast"));
    assert!(
        lines[3].contains("0.50× ractor_cluster, 0.10× tcp-framed"),
        "{}",
        lines[3]
    );
    // A blank line separates the cast group from the call group.
    assert_eq!(lines[6], "");
    assert!(lines[7].starts_with("remote-call ×1"));
    // Columns line up: the SYSTEM column starts at the same place on every row.
    let system_at = lines[2].find("SYSTEM").unwrap();
    let column = |line: &str| line.chars().skip(system_at).take(10).collect::<String>();
    assert_eq!(column(lines[3]).trim_end(), "bazaar");
    assert_eq!(column(lines[8]), "tcp-framed");
    assert!(table.contains("! remote-call ×1 tcp-framed 1k: 2 errors; 2 calls failed"));
}
