//! `bazaar up` as a user runs it: one command starts a local cluster,
//! restarts a node killed with `bazaar kill`, and leaves nothing behind on
//! SIGTERM; a taken port stops it before anything starts; its
//! `--rate-limit` reaches every node, and `DIR/nodes.json` lists them; a
//! restart on the same data dir keeps the cookie, so sessions survive, and
//! `--rotate-cookie` ends them.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use support::{free_port_range, http_get, http_post, ClusterView, DEMO_PASSWORD, POLL_INTERVAL};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// A running `bazaar up`, stopped (and its nodes killed) on drop.
struct Up {
    child: Child,
    output: PathBuf,
    data_dir: tempfile::TempDir,
    http_port: u16,
    /// The flags it was started with, before any `extra`.
    args: Vec<String>,
}

impl Up {
    fn start(nodes: usize, http_port: u16, cluster_port: u16, respawn_after: u64) -> Self {
        Self::start_with(nodes, http_port, cluster_port, respawn_after, &[])
    }

    /// Like [`Self::start`], with `extra` flags after the others.
    fn start_with(
        nodes: usize,
        http_port: u16,
        cluster_port: u16,
        respawn_after: u64,
        extra: &[&str],
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let output = data_dir.path().join("up.out");
        let args: Vec<String> = [
            "up".to_string(),
            "--nodes".into(),
            nodes.to_string(),
            "--data-dir".into(),
            data_dir.path().display().to_string(),
            "--http-port".into(),
            http_port.to_string(),
            "--cluster-port".into(),
            cluster_port.to_string(),
            "--respawn-after".into(),
            respawn_after.to_string(),
        ]
        .into();
        let child = spawn_up(&args, extra, &output);
        Self {
            child,
            output,
            data_dir,
            http_port,
            args,
        }
    }

    /// Stops `up` with SIGTERM and starts it again on the same data dir
    /// and ports, with `extra` flags.
    fn restart_with(&mut self, extra: &[&str]) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        wait_for(
            Duration::from_secs(10),
            "bazaar up exits on SIGTERM",
            || self.child.try_wait().unwrap().is_some(),
        );
        self.child = spawn_up(&self.args, extra, &self.output);
    }

    fn output(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.output).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    fn http(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port + i as u16 - 1))
    }

    fn view(&self, i: usize) -> Option<ClusterView> {
        let (status, body) = http_get(self.http(i), "/api/cluster")?;
        (status == 200).then(|| serde_json::from_str(&body).ok())?
    }

    fn state(&self, observer: usize, member: &str) -> Option<String> {
        Some(self.view(observer)?.member(member)?.state.clone())
    }

    fn pid(&self, name: &str) -> Option<u32> {
        read_pid(&self.data_dir.path().join(name).join("pid"))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for name in ["n1", "n2", "n3"] {
            if let Some(pid) = self.pid(name) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            eprintln!("--- bazaar up output ---\n{}", self.output());
        }
    }
}

/// `bazaar ARGS EXTRA`, its output appended to `output`.
fn spawn_up(args: &[String], extra: &[&str], output: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .unwrap();
    Command::new(BIN)
        .args(args)
        .args(extra)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
fn wait_for(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(POLL_INTERVAL);
    }
    start.elapsed()
}

#[test]
fn up_starts_restarts_and_stops_a_cluster() {
    let http_port = free_port_range(3);
    let cluster_port = free_port_range(3);
    let mut up = Up::start(3, http_port, cluster_port, 1);

    wait_for(Duration::from_secs(20), "the node table", || {
        up.output().contains("cluster up")
    });
    let output = up.output();
    for name in ["n1", "n2", "n3"] {
        let pid = up.pid(name).expect("pid file");
        assert!(
            output.contains(&pid.to_string()),
            "{name} pid in table:\n{output}"
        );
    }
    for i in 1..=3 {
        let view = up.view(i).expect("view");
        assert_eq!(view.up_names().len(), 3, "n{i} sees 3 up: {view:?}");
    }
    let cookie_file = up.data_dir.path().join("cookie");
    let mode = std::fs::metadata(&cookie_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "cookie file mode");
    assert_eq!(
        std::fs::read_to_string(&cookie_file).unwrap().trim().len(),
        64
    );

    let old_pid = up.pid("n2").unwrap();
    let killed_at = Instant::now();
    let kill_out = Command::new(BIN)
        .args(["kill", "n2", "--data-dir"])
        .arg(up.data_dir.path())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        kill_out.status.success(),
        "bazaar kill failed: {kill_out:?}"
    );
    assert!(String::from_utf8_lossy(&kill_out.stdout).contains("killed n2"));

    let detected = wait_for(Duration::from_secs(1), "n1 and n3 see n2 down", || {
        up.state(1, "n2").as_deref() == Some("down") && up.state(3, "n2").as_deref() == Some("down")
    });
    println!("n2 down everywhere {detected:?} after bazaar kill");

    let rejoined = wait_for(
        Duration::from_secs(1 + 5),
        "n2 restarted and up everywhere",
        || {
            up.pid("n2").is_some_and(|pid| pid != old_pid)
                && (1..=3).all(|i| up.view(i).is_some_and(|view| view.up_names().len() == 3))
        },
    );
    println!(
        "n2 up everywhere {:?} after bazaar kill",
        killed_at.elapsed()
    );
    let _ = rejoined;
    wait_for(
        Duration::from_secs(2),
        "up reports the exit and the rejoin",
        || {
            let output = up.output();
            output.contains("n2 exited (signal SIGKILL)")
                && output.contains("n2 started again")
                && output.contains("n2 down")
                && output.contains("n2 up")
        },
    );

    let pids: Vec<u32> = ["n1", "n2", "n3"]
        .iter()
        .filter_map(|n| up.pid(n))
        .collect();
    assert_eq!(pids.len(), 3);
    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGTERM).unwrap();
    let mut status = None;
    wait_for(
        Duration::from_secs(10),
        "bazaar up exits on SIGTERM",
        || {
            status = up.child.try_wait().unwrap();
            status.is_some()
        },
    );
    assert!(status.unwrap().success(), "exit status {status:?}");
    assert!(
        !up.data_dir.path().join("nodes.json").exists(),
        "a stopped up lists no nodes"
    );
    wait_for(Duration::from_secs(2), "no node process left", || {
        pids.iter().all(|pid| !alive(*pid))
    });
}

#[test]
fn up_refuses_a_taken_port_before_starting_anything() {
    let http_port = free_port_range(3);
    let cluster_port = free_port_range(3);
    let _taken = TcpListener::bind(("127.0.0.1", http_port + 1)).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["up", "--data-dir"])
        .arg(data_dir.path())
        .args(["--http-port", &http_port.to_string()])
        .args(["--cluster-port", &cluster_port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {} (http port of n2)", http_port + 1)),
        "{stderr}"
    );
    assert!(!data_dir.path().join("n1").exists(), "nothing started");
}

#[test]
fn the_dashboard_is_served_and_its_kill_switch_works_under_up() {
    let http_port = free_port_range(3);
    let cluster_port = free_port_range(3);
    let up = Up::start(3, http_port, cluster_port, 0);
    wait_for(Duration::from_secs(20), "the node table", || {
        up.output().contains("cluster up")
    });
    let (status, page) = http_get(up.http(2), "/").expect("dashboard page");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Bazaar cluster</title>"), "{page}");
    assert!(page.contains("/dashboard.js"));
    let (status, script) = http_get(up.http(3), "/dashboard.js").expect("dashboard script");
    assert_eq!(status, 200);
    assert!(script.contains("/api/cluster"));

    let password = std::fs::read_to_string(up.data_dir.path().join("admin-password")).unwrap();
    let credentials = json!({ "username": "admin", "password": password.trim() });
    let (status, login) = http_post(up.http(1), "/api/login", &credentials, None).unwrap();
    assert_eq!(status, 200, "{login}");
    let token: Value = serde_json::from_str(&login).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let target = json!({ "node": "n3" });
    let (status, _) = http_post(up.http(1), "/api/admin/kill", &target, None).unwrap();
    assert_eq!(status, 401, "the kill switch needs a token");

    let pid = up.pid("n3").unwrap();
    let (status, body) = http_post(up.http(1), "/api/admin/kill", &target, Some(&token)).unwrap();
    assert_eq!(status, 202, "{body}");
    wait_for(
        Duration::from_secs(3),
        "n3 killed through the dashboard's switch",
        || !alive(pid),
    );
    wait_for(Duration::from_secs(2), "n1 sees n3 down", || {
        up.state(1, "n3").as_deref() == Some("down")
    });
}

/// Answers 429 among `count` back-to-back reads from 127.0.0.1 to `addr`.
fn throttled(addr: SocketAddr, count: usize) -> usize {
    (0..count)
        .filter(|_| http_get(addr, "/api/products/1").is_some_and(|(status, _)| status == 429))
        .count()
}

#[test]
fn up_passes_its_rate_limit_to_every_node_and_lists_them() {
    // 5 a second, bursts of 10: 40 back-to-back reads are throttled.
    let up = Up::start_with(
        2,
        free_port_range(2),
        free_port_range(2),
        0,
        &["--rate-limit", "5"],
    );
    wait_for(Duration::from_secs(20), "the node table", || {
        up.output().contains("cluster up")
    });
    for i in 1..=2 {
        let refused = throttled(up.http(i), 40);
        assert!(refused >= 20, "n{i} answered {refused} of 40 with 429");
    }
    let nodes: Value = serde_json::from_str(
        &std::fs::read_to_string(up.data_dir.path().join("nodes.json")).unwrap(),
    )
    .unwrap();
    let nodes = nodes["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    for (i, node) in (1..).zip(nodes) {
        assert_eq!(node["name"], format!("n{i}"));
        assert_eq!(node["http"], up.http(i).to_string());
        assert_eq!(node["pid"], up.pid(&format!("n{i}")).unwrap());
    }
    drop(up);

    // 0: no limit (not "nothing allowed").
    let up = Up::start_with(
        2,
        free_port_range(2),
        free_port_range(2),
        0,
        &["--rate-limit", "0"],
    );
    wait_for(Duration::from_secs(20), "the node table", || {
        up.output().contains("cluster up")
    });
    for i in 1..=2 {
        assert_eq!(throttled(up.http(i), 40), 0, "n{i} is not limited");
    }
}

/// The status of `GET /api/cart` with `token` on `addr`.
fn cart_status(addr: SocketAddr, token: &str) -> Option<u16> {
    reqwest::blocking::Client::new()
        .get(format!("http://{addr}/api/cart"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(2))
        .send()
        .ok()
        .map(|response| response.status().as_u16())
}

#[test]
fn a_restart_keeps_sessions_and_rotate_cookie_ends_them() {
    let http_port = free_port_range(3);
    let cluster_port = free_port_range(3);
    let mut up = Up::start(3, http_port, cluster_port, 5);
    wait_for(Duration::from_secs(20), "the node table", || {
        up.output().contains("cluster up")
    });
    let credentials = json!({ "username": "user001", "password": DEMO_PASSWORD });
    let (status, body) = http_post(up.http(1), "/api/login", &credentials, None).unwrap();
    assert_eq!(status, 200, "login: {body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = up.data_dir.path().to_path_buf();
    let secret = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let (cookie, password) = (secret("cookie"), secret("admin-password"));

    up.restart_with(&[]);
    wait_for(Duration::from_secs(30), "the restarted cluster up", || {
        up.output().matches("cluster up").count() == 2
    });
    assert_eq!(secret("cookie"), cookie, "the cookie is kept");
    assert_eq!(
        secret("admin-password"),
        password,
        "the admin password is kept"
    );
    assert!(up.output().contains("keeping the cluster cookie"));
    wait_for(
        Duration::from_secs(20),
        "the token of before the restart accepted on every node",
        || (1..=3).all(|i| cart_status(up.http(i), &token) == Some(200)),
    );

    up.restart_with(&["--rotate-cookie"]);
    wait_for(Duration::from_secs(30), "the rotated cluster up", || {
        up.output().matches("cluster up").count() == 3
    });
    assert_ne!(
        secret("cookie"),
        cookie,
        "--rotate-cookie makes a new cookie"
    );
    wait_for(
        Duration::from_secs(20),
        "the old token refused on every node",
        || (1..=3).all(|i| cart_status(up.http(i), &token) == Some(401)),
    );
}
