//! The deployment in `deploy/` really starts a cluster.
//!
//! The test reads `deploy/Dockerfile` and the Kubernetes manifests of
//! `deploy/k8s` and plays the kubelet on this machine: every pod the
//! StatefulSet and the Deployment make runs in a network namespace of its
//! own with its own address (as a pod has), with exactly the command line
//! (the image's entrypoint, pointed at the test's `bazaar` binary, and the
//! manifest's args) and environment (the image's `ENV`, then the manifest's
//! `env`: pod name and IP from `fieldRef`, a random cookie for the Secret,
//! `$(VAR)` expanded) the manifests give, each volume mount a directory of
//! its own. Names resolve through a hosts file per namespace, standing in
//! for cluster DNS: the headless Service's name to the address of every pod
//! it selects. The only seed a node has is that one name.
//!
//! Then it checks that they form one cluster: every pod's readiness probe
//! answers 200, and every node's `/api/cluster` shows every pod up and the
//! same checkout owner, one of the voters, with the view pods as learners.
//! It needs root and `ip` (Debian's iproute2), and fails without them.

#[path = "deploy/lan.rs"]
mod lan;
#[path = "deploy/manifests.rs"]
mod manifests;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value as Json;
use serde_norway::Value;

use lan::Lan;
use manifests::{find, image, resources, text, Pod};

/// How long the pods get to form a ready cluster (debug build, 2 cores).
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two looks at the cluster.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Lines of each pod's log printed when the test fails.
const LOG_TAIL_LINES: usize = 40;

/// One started pod.
struct Running {
    pod: Pod,
    ip: String,
    env: Vec<(String, String)>,
    log: std::path::PathBuf,
    child: Child,
}

impl Running {
    fn env(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}: no {key} in its environment", self.pod.name))
    }

    /// `http://IP:PORT` for the container port named `port`, as a probe
    /// or a scrape reaches it.
    fn url(&self, port: &str, path: &str) -> String {
        let ports = self.pod.container["ports"].as_sequence().expect("ports");
        let number = ports
            .iter()
            .find(|p| {
                p["name"].as_str() == Some(port)
                    || p["containerPort"]
                        .as_u64()
                        .map(|n| n.to_string())
                        .as_deref()
                        == Some(port)
            })
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("{}: no port {port}", self.pod.name));
        format!("http://{}:{number}{path}", self.ip)
    }

    /// The URL of the container's readiness or liveness probe.
    fn probe_url(&self, probe: &str) -> String {
        let get = &self.pod.container[probe]["httpGet"];
        let port = match &get["port"] {
            Value::Number(n) => n.to_string(),
            other => text(other, "probe port").to_string(),
        };
        self.url(&port, text(&get["path"], "probe path"))
    }
}

/// The pods, the network and the directories; torn down on drop.
struct Deployment {
    pods: Vec<Running>,
    _lan: Lan,
    _dir: tempfile::TempDir,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for running in &mut self.pods {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
        if thread::panicking() {
            for running in &self.pods {
                let log = fs::read_to_string(&running.log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!("----- {} ({}) log tail -----", running.pod.name, running.ip);
                for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Starts every pod of the StatefulSet and the Deployment as the
/// manifests describe them.
fn deploy(resources: &[Value]) -> Deployment {
    let image = image();
    assert_eq!(
        image.entrypoint,
        ["/usr/local/bin/bazaar"],
        "the image runs bazaar"
    );
    let mut pods = Pod::of(find(resources, "StatefulSet", "bazaar-checkout"));
    pods.extend(Pod::of(find(resources, "Deployment", "bazaar-view")));
    let lan = Lan::create(pods.len());
    let service = find(resources, "Service", "bazaar-seeds");
    let selector = &service["spec"]["selector"];
    let selected = (0..pods.len())
        .filter(|&i| pods[i].matches(selector))
        .map(|i| lan.addr(i))
        .collect();
    let mut names = vec![(
        text(&service["metadata"]["name"], "service name").to_string(),
        selected,
    )];
    names.extend(
        pods.iter()
            .enumerate()
            .map(|(i, pod)| (pod.name.clone(), vec![lan.addr(i)])),
    );
    lan.set_hosts(&names);

    let dir = tempfile::Builder::new()
        .prefix("bazaar-deploy-")
        .tempdir()
        .expect("temp dir");
    let secrets: BTreeMap<String, String> = [
        (
            "bazaar-cookie/cookie",
            Alphanumeric.sample_string(&mut rand::rng(), 32),
        ),
        (
            "bazaar-admin/password",
            Alphanumeric.sample_string(&mut rand::rng(), 24),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut running = Vec::new();
    for (i, pod) in pods.into_iter().enumerate() {
        let ip = lan.addr(i).to_string();
        let mut env = pod.env(&image, &ip, &secrets);
        let mut command = pod.command(&image, &env);
        command[0] = env!("CARGO_BIN_EXE_bazaar").to_string();
        // Each volume is a directory of this pod's own, where the
        // container would see it mounted.
        for (volume, mount_path) in pod.mounts() {
            let host = dir.path().join(&pod.name).join(volume);
            fs::create_dir_all(&host).expect("create volume dir");
            let host = host.to_str().expect("utf-8 temp path");
            for (_, value) in &mut env {
                if value.starts_with(&mount_path) {
                    *value = value.replacen(&mount_path, host, 1);
                }
            }
            for arg in &mut command {
                if arg.starts_with(&mount_path) {
                    *arg = arg.replacen(&mount_path, host, 1);
                }
            }
        }
        let log = dir.path().join(format!("{}.log", pod.name));
        let out = File::create(&log).expect("create log");
        let child = Command::new("ip")
            .args(["netns", "exec", lan.namespace(i)])
            .args(&command)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log"))
            .stderr(out)
            .spawn()
            .expect("start pod");
        println!("{} at {ip}: {}", pod.name, command.join(" "));
        running.push(Running {
            pod,
            ip,
            env,
            log,
            child,
        });
    }
    Deployment {
        pods: running,
        _lan: lan,
        _dir: dir,
    }
}

/// What the manifests promise before anything runs.
fn check_manifests(resources: &[Value], deployment: &Deployment) {
    let statefulset = find(resources, "StatefulSet", "bazaar-checkout");
    let service = find(resources, "Service", "bazaar-seeds");
    assert_eq!(
        service["spec"]["clusterIP"].as_str(),
        Some("None"),
        "seeds Service is headless"
    );
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true),
        "not-ready pods must resolve: they join through it"
    );
    assert_eq!(
        statefulset["spec"]["serviceName"],
        service["metadata"]["name"]
    );
    assert_eq!(
        statefulset["spec"]["podManagementPolicy"].as_str(),
        Some("Parallel")
    );
    let claims: Vec<&str> = statefulset["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .expect("a volume per voter")
        .iter()
        .map(|claim| text(&claim["metadata"]["name"], "claim name"))
        .collect();
    let voters: Vec<&str> = deployment
        .pods
        .iter()
        .filter(|r| r.pod.matches(&service["spec"]["selector"]))
        .map(|r| r.pod.name.as_str())
        .collect();
    assert_eq!(voters.len(), 3, "three voters");
    for running in &deployment.pods {
        let pod = &running.pod;
        assert_eq!(
            running.env("BAZAAR_VOTERS"),
            voters.join(","),
            "{}: --voters names the StatefulSet's pods",
            pod.name
        );
        assert_eq!(running.env("BAZAAR_NAME"), pod.name);
        assert!(
            running.env("BAZAAR_SEEDS").starts_with("bazaar-seeds:"),
            "{}: seeded by the headless Service",
            pod.name
        );
        assert_eq!(
            pod.annotations
                .get("prometheus.io/scrape")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            text(
                &pod.container["readinessProbe"]["httpGet"]["path"],
                "readiness"
            ),
            "/readyz"
        );
        assert_eq!(
            text(
                &pod.container["livenessProbe"]["httpGet"]["path"],
                "liveness"
            ),
            "/healthz"
        );
        if voters.contains(&pod.name.as_str()) {
            assert!(
                pod.mounts()
                    .iter()
                    .any(|(volume, _)| claims.contains(&volume.as_str())),
                "{}: data on its own volume",
                pod.name
            );
        }
    }
    let template = &statefulset["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(template["runAsNonRoot"].as_bool(), Some(true));
    let user = image().user;
    assert!(
        !user.is_empty() && !user.starts_with("0") && !user.starts_with("root"),
        "image runs as non-root, not {user:?}"
    );
}

/// Why `deployment` is not one ready cluster yet, or `None` once it is.
fn not_yet_formed(deployment: &Deployment, client: &reqwest::blocking::Client) -> Option<String> {
    let names: Vec<&str> = deployment
        .pods
        .iter()
        .map(|r| r.pod.name.as_str())
        .collect();
    let mut owners = Vec::new();
    for running in &deployment.pods {
        let name = &running.pod.name;
        for probe in ["readinessProbe", "livenessProbe"] {
            let status = client
                .get(running.probe_url(probe))
                .send()
                .map(|r| r.status().as_u16());
            if !matches!(status, Ok(200)) {
                return Some(format!("{name}: {probe} answers {status:?}"));
            }
        }
        let cluster: Json = match client
            .get(running.url("http", "/api/cluster"))
            .send()
            .and_then(|r| r.json())
        {
            Ok(cluster) => cluster,
            Err(err) => return Some(format!("{name}: /api/cluster: {err}")),
        };
        let members = cluster["members"].as_array().cloned().unwrap_or_default();
        for expected in &names {
            let up = members
                .iter()
                .any(|m| m["name"] == *expected && m["state"] == "up");
            if !up {
                return Some(format!("{name} does not see {expected} up"));
            }
        }
        if members.len() != names.len() {
            return Some(format!("{name} sees {} members", members.len()));
        }
        owners.push(cluster["checkout"]["owner"].as_str().map(str::to_string));
        let learners = &cluster["checkout"]["learners"];
        let views: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| n.starts_with("bazaar-view"))
            .collect();
        if *learners != serde_json::json!(views) {
            return Some(format!("{name}: learners {learners}, not the view pods"));
        }
    }
    let first = owners[0].clone();
    if first.is_none() || owners.iter().any(|o| *o != first) {
        return Some(format!("checkout owners disagree: {owners:?}"));
    }
    let owner = first.unwrap();
    if !owner.starts_with("bazaar-checkout-") {
        return Some(format!("owner {owner} is no voter"));
    }
    None
}

#[test]
fn the_manifests_start_one_cluster() {
    let resources = resources();
    let mut deployment = deploy(&resources);
    check_manifests(&resources, &deployment);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    loop {
        for running in &mut deployment.pods {
            if let Some(status) = running.child.try_wait().expect("poll pod") {
                panic!("{} exited: {status}", running.pod.name);
            }
        }
        let Some(missing) = not_yet_formed(&deployment, &client) else {
            break;
        };
        assert!(
            start.elapsed() < FORM_TIMEOUT,
            "no cluster after {FORM_TIMEOUT:?}: {missing}"
        );
        thread::sleep(POLL_INTERVAL);
    }
    println!(
        "{} pods formed one cluster in {:?}",
        deployment.pods.len(),
        start.elapsed()
    );
    for running in &deployment.pods {
        let scrape = running.url(
            &running.pod.annotations["prometheus.io/port"],
            &running.pod.annotations["prometheus.io/path"],
        );
        let body = client
            .get(&scrape)
            .send()
            .and_then(|r| r.text())
            .expect("scrape");
        assert!(
            body.contains("bazaar_members"),
            "{scrape} serves bazaar's metrics"
        );
    }
}
