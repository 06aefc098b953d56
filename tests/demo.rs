//! `bazaar demo` end to end: it starts its own cluster, kills the checkout
//! owner under load, and its JSON report must show a failover, a rejoin
//! and every acknowledged order in the shop exactly once; with `--attach`
//! it does the same to a cluster a user started with `bazaar up`, found
//! through the `nodes.json` in its data directory.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{free_port_range, UpCluster};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

#[test]
fn the_demo_tells_a_failover_with_no_order_lost() {
    let data_dir = tempfile::tempdir().unwrap();
    let http_port = free_port_range(3);
    let cluster_port = free_port_range(3);
    let output = Command::new(BIN)
        .args(["demo", "--json", "--load-secs", "2", "--data-dir"])
        .arg(data_dir.path())
        .args(["--http-port", &http_port.to_string()])
        .args(["--cluster-port", &cluster_port.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{stderr}\nup log:\n{}",
        std::fs::read_to_string(data_dir.path().join("up.log")).unwrap_or_default()
    );
    let report: Value = serde_json::from_str(&stdout).expect("json report");
    println!("{report:#}");
    assert_eq!(report["all_clear"], true);
    assert_eq!(report["lost_orders"], 0);
    assert_eq!(report["duplicate_orders"], 0);
    assert_eq!(
        report["reads_failed"], 0,
        "reads through the survivors never fail"
    );
    assert!(report["new_owner"].as_str().is_some());
    assert_ne!(report["new_owner"], report["killed"]);
    assert!(report["new_epoch"].as_u64() > report["old_epoch"].as_u64());
    assert!(report["orders_before"].as_u64().unwrap() > 0);
    assert!(report["orders_after"].as_u64().unwrap() > 0);
    assert!(
        report["detect_ms"].as_u64().unwrap() < 1000,
        "a killed owner is seen down within a second"
    );
    assert!(report["rejoin_ms"].as_u64().is_some());
}

#[test]
fn the_demo_attaches_to_a_cluster_started_with_up() {
    // Free ports far from the demo's own defaults (8181..): attaching must
    // follow what `up` recorded, not assume them.
    let up = UpCluster::start(3, 1);
    let output = Command::new(BIN)
        .args([
            "demo",
            "--attach",
            "--json",
            "--load-secs",
            "2",
            "--data-dir",
        ])
        .arg(up.data_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo --attach failed: {stdout}\n{stderr}\nup output:\n{}",
        up.output()
    );
    let report: Value = serde_json::from_str(&stdout).expect("json report");
    println!("{report:#}");
    assert_eq!(report["nodes"], 3);
    assert_eq!(report["all_clear"], true);
    assert_eq!(report["lost_orders"], 0);
    assert_eq!(report["duplicate_orders"], 0);
    assert_ne!(report["new_owner"], report["killed"]);
    assert!(report["orders_after"].as_u64().unwrap() > 0);
    let killed = report["killed"].as_str().unwrap();
    assert!(
        up.output().contains(&format!("{killed} exited")),
        "the demo killed a node of this `up`:\n{}",
        up.output()
    );
}
