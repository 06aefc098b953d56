//! `bazaar load` against a real 3-node `bazaar up`, with one node killed
//! by `bazaar kill` mid-run: the JSON report must show every flow and
//! route served, the requested rate held, the killed gateway's errors,
//! the other gateways serving every second, and the killed node serving
//! again once `up` has restarted it. With `--max-error-rate`, a run that
//! sends half its requests to a dead gateway exits non-zero, and a run
//! against nothing but a dead gateway fails once it gives up reading the
//! catalog.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::{free_port_range, http_get, TestCluster, POLL_INTERVAL};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");
/// Flows per second of the load: modest, for a debug build on 2 cores.
const RATE: f64 = 120.0;
/// Seconds of load: room for the kill, the restart and a clean tail.
const DURATION_SECS: u64 = 16;
/// Product views n2 must have served before it is killed.
const VIEWS_BEFORE_KILL: u64 = 30;

/// A running `bazaar up`; it and its nodes are killed on drop.
struct Up {
    child: Child,
    dir: tempfile::TempDir,
    http_port: u16,
}

impl Up {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let http_port = free_port_range(3);
        let cluster_port = free_port_range(3);
        let out = File::create(dir.path().join("up.out")).unwrap();
        let child = Command::new(BIN)
            .args(["up", "--nodes", "3", "--respawn-after", "1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--http-port", &http_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            dir,
            http_port,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, i: u16) -> String {
        format!("http://127.0.0.1:{}", self.http_port + i - 1)
    }

    fn ready(&self, i: u16) -> bool {
        let addr = ([127, 0, 0, 1], self.http_port + i - 1).into();
        http_get(addr, "/readyz").is_some_and(|(status, _)| status == 200)
    }

    /// Product views node `i` answered with 200 so far, from its metrics.
    fn product_views(&self, i: u16) -> u64 {
        let addr = ([127, 0, 0, 1], self.http_port + i - 1).into();
        let Some((200, text)) = http_get(addr, "/metrics") else {
            return 0;
        };
        text.lines()
            .filter(|line| {
                line.starts_with("bazaar_http_requests_total{")
                    && line.contains("route=\"/api/products/{id}\"")
                    && line.contains("status=\"200\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for name in ["n1", "n2", "n3"] {
            let pid = std::fs::read_to_string(self.data_dir().join(name).join("pid"));
            if let Some(pid) = pid.ok().and_then(|pid| pid.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            let output = std::fs::read_to_string(self.dir.path().join("up.out"));
            eprintln!("--- bazaar up output ---\n{}", output.unwrap_or_default());
        }
    }
}

/// A child killed on drop (the load, if the test fails before it ends).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn numbers(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

#[test]
fn load_goes_on_through_a_node_kill_and_reports_it() {
    let up = Up::start();
    wait_for(Duration::from_secs(60), "three ready nodes", || {
        (1..=3).all(|i| up.ready(i))
    });

    let stdout = up.dir.path().join("load.json");
    let stderr = up.dir.path().join("load.err");
    let gateways = [up.url(1), up.url(2), up.url(3)].join(",");
    let mut load = Reaped(
        Command::new(BIN)
            .args(["load", "--json", "--at", &gateways])
            .args(["--rate", &RATE.to_string()])
            .args(["--duration", &DURATION_SECS.to_string()])
            .args(["--timeout", "3"])
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );

    let views_before = up.product_views(2);
    wait_for(Duration::from_secs(40), "n2 serves the load", || {
        if let Some(status) = load.0.try_wait().unwrap() {
            panic!("bazaar load ended early ({status}): {}", read(&stderr));
        }
        up.product_views(2) >= views_before + VIEWS_BEFORE_KILL
    });
    let killed = Command::new(BIN)
        .args(["kill", "n2", "--data-dir"])
        .arg(up.data_dir())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(killed.status.success(), "bazaar kill: {killed:?}");

    let mut status = None;
    wait_for(
        Duration::from_secs(DURATION_SECS + 60),
        "the load to finish",
        || {
            status = load.0.try_wait().unwrap();
            status.is_some()
        },
    );
    assert!(
        status.unwrap().success(),
        "bazaar load failed: {}",
        read(&stderr)
    );
    let report: Value = serde_json::from_str(&read(&stdout))
        .unwrap_or_else(|e| panic!("load JSON ({e}): {}\n{}", read(&stdout), read(&stderr)));
    println!("{report:#}");

    for flow in report["flows"].as_array().unwrap() {
        assert!(
            flow["ok"].as_u64().unwrap() > 0,
            "flow without a success: {flow}"
        );
    }
    let routes = report["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 6, "every route reported");
    for route in routes {
        assert!(
            route["ok"].as_u64().unwrap() > 0,
            "route without a success: {route}"
        );
        assert!(route["p99_ms"].as_f64().unwrap() >= route["p50_ms"].as_f64().unwrap());
    }
    let achieved = report["achieved_rate"].as_f64().unwrap();
    assert!(
        (achieved - RATE).abs() <= RATE * 0.05,
        "achieved {achieved} flows/s for {RATE} requested"
    );
    assert_eq!(
        report["not_started"], 0,
        "the in-flight cap was never reached"
    );

    let n2 = &report["by_gateway"][1];
    assert_eq!(n2["gateway"], up.url(2));
    assert!(
        n2["errors"].as_u64().unwrap() > 0,
        "the killed gateway's errors: {n2}"
    );
    let kinds = n2["errors_by_kind"].as_object().unwrap();
    assert!(
        kinds.contains_key("connect refused") || kinds.contains_key("broken connection"),
        "a dead gateway fails at the transport: {n2}"
    );

    let timeline = report["timeline"].as_array().unwrap();
    assert!(
        timeline.len() as u64 >= DURATION_SECS - 1,
        "one entry a second"
    );
    // The others keep serving: every second, n1 and n3 answer successes.
    for second in timeline {
        let ok = numbers(&second["ok_by_gateway"]);
        assert!(
            ok[0] > 0 && ok[2] > 0,
            "n1 and n3 serve every second: {second}"
        );
    }
    // The killed node's errors stop once it is back: after its first
    // failing second comes a second where it serves with no error.
    let first_failure = timeline
        .iter()
        .position(|s| numbers(&s["errors_by_gateway"])[1] > 0)
        .expect("a second with n2 errors");
    let recovered = timeline[first_failure..]
        .iter()
        .any(|s| numbers(&s["ok_by_gateway"])[1] > 0 && numbers(&s["errors_by_gateway"])[1] == 0);
    assert!(
        recovered,
        "n2 serves again without errors after its restart"
    );
}

#[test]
fn load_exits_non_zero_above_its_max_error_rate() {
    let node = TestCluster::start(1);
    node.expect_within(Instant::now(), Duration::from_secs(30), "n1 ready", |c| {
        c.status(1, "/readyz") == Some(200)
    });
    // The live node serves the catalog the load reads first; round-robin
    // sends half the flows to a port nothing listens on.
    let live = format!("http://{}", node.http_addr(1));
    let dead = format!("http://127.0.0.1:{}", free_port_range(1));
    let run = |limit: &str| {
        Command::new(BIN)
            .args(["load", "--at", &format!("{live},{dead}")])
            .args([
                "--rate",
                "20",
                "--duration",
                "2",
                "--timeout",
                "2",
                "--json",
            ])
            .args(["--max-error-rate", limit])
            .output()
            .unwrap()
    };

    let strict = run("10%");
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        !strict.status.success(),
        "10% of errors is exceeded: {stderr}"
    );
    assert!(stderr.contains("above --max-error-rate 10%"), "{stderr}");
    let report: Value = serde_json::from_slice(&strict.stdout).expect("the report comes first");
    assert!(report["ok"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["errors"].as_u64().unwrap() > 0, "{report:#}");
    assert!(
        report["errors_by_kind"]["connect refused"].as_u64() > Some(0),
        "the dead gateway refuses connections: {report:#}"
    );

    let lenient = run("0.9");
    assert!(
        lenient.status.success(),
        "about half failed, under 90%: {}",
        String::from_utf8_lossy(&lenient.stderr)
    );
}

#[test]
fn load_against_only_a_dead_gateway_exits_non_zero() {
    let dead = format!("http://127.0.0.1:{}", free_port_range(1));
    let started = Instant::now();
    let output = Command::new(BIN)
        .args(["load", "--at", &dead, "--rate", "10", "--duration", "1"])
        .args(["--max-error-rate", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("no gateway served the catalog"), "{stderr}");
    println!("failed after {:?}", started.elapsed());
}

#[test]
fn a_closed_loop_of_orders_reports_what_checkout_did() {
    let cluster = TestCluster::start(3);
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(30),
        "n1..n3 ready",
        |c| c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3]),
    );
    let gateways: Vec<String> = (1..=3)
        .map(|i| format!("http://{}", cluster.http_addr(i)))
        .collect();
    let output = Command::new(BIN)
        .args(["load", "--at", &gateways.join(",")])
        .args(["--mix", "checkout", "--shoppers", "4", "--duration", "3"])
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "load failed: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["shoppers"], 4, "{report:#}");
    let checkout = &report["checkout"];
    let confirmed = checkout["confirmed"].as_u64().unwrap();
    assert!(confirmed > 0, "orders were confirmed: {report:#}");
    assert_eq!(checkout["nodes_scraped"], 3, "{report:#}");
    // Three voters store every batch: at most 3 fsyncs an order, and at
    // least one for each batch of the owner.
    let fsyncs = checkout["fsyncs_per_order"].as_f64().unwrap();
    assert!(
        (0.1..=3.5).contains(&fsyncs),
        "fsyncs per order {fsyncs}: {report:#}"
    );
    assert!(
        checkout["mean_batch"].as_f64().unwrap() >= 1.0,
        "{report:#}"
    );
    let flows = report["flows"].as_array().unwrap();
    let ran: Vec<&str> = flows
        .iter()
        .filter(|f| f["runs"].as_u64() > Some(0))
        .map(|f| f["flow"].as_str().unwrap())
        .collect();
    assert_eq!(
        ran,
        ["checkout"],
        "only orders in the checkout mix: {report:#}"
    );
}
