//! `GET /metrics` on a cluster of real `bazaar node` processes: the answer
//! is valid Prometheus text (parsed with `openmetrics-parser`) that passes
//! `promtool check metrics` (Debian's `prometheus` package; the test fails
//! without it), every metric has a `# HELP`, the process metrics and
//! `bazaar_build_info` are there, gateway requests are counted by route
//! template, service calls, membership and quorum are there, the messages
//! each service handles are counted on the node that handles them (and
//! monitoring polls are not), and a killed node shows up as a `down`
//! change on the survivors.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::PrometheusValue;
use support::{http_get, TestCluster, DEMO_PASSWORD};

/// Time a fresh cluster gets to be up and ready everywhere.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Time the survivors get to count a killed node down.
const DOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// One parsed sample: family name, labels, and its value (a counter or
/// gauge value, or a histogram's observation count).
struct Sample {
    metric: String,
    labels: HashMap<String, String>,
    value: f64,
    histogram: bool,
}

/// The samples of node `i`'s `GET /metrics`; `None` unless it answers 200.
fn scrape(cluster: &TestCluster, i: usize) -> Option<Vec<Sample>> {
    let (status, body) = http_get(cluster.http_addr(i), "/metrics")?;
    if status != 200 {
        return None;
    }
    let exposition = parse_prometheus(&body)
        .unwrap_or_else(|err| panic!("n{i}: invalid prometheus text: {err:?}\n{body}"));
    let mut samples = Vec::new();
    for (name, family) in exposition.families {
        for sample in family.iter_samples() {
            let labels = sample
                .get_labelset()
                .expect("sample bound to its family")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let (value, histogram) = match &sample.value {
                PrometheusValue::Counter(counter) => (counter.value.as_f64(), false),
                PrometheusValue::Gauge(gauge) | PrometheusValue::Unknown(gauge) => {
                    (gauge.as_f64(), false)
                }
                PrometheusValue::Histogram(histogram) => {
                    let count = histogram
                        .buckets
                        .iter()
                        .find(|bucket| bucket.upper_bound.is_infinite())
                        .map_or(0.0, |bucket| bucket.count.as_f64());
                    (count, true)
                }
                PrometheusValue::Summary(_) => continue,
            };
            samples.push(Sample {
                metric: name.clone(),
                labels,
                value,
                histogram,
            });
        }
    }
    Some(samples)
}

/// Runs `promtool check metrics` on `text`; panics with promtool's
/// findings, or with how to install it when it is missing.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run promtool ({err}): install it (Debian: apt-get install prometheus; \
                 .ci/run does) to check /metrics against Prometheus's own linter"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .expect("promtool reads the metrics");
    let output = child.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The families that `text` declares with `# TYPE` but not `# HELP`.
fn undescribed(text: &str) -> Vec<String> {
    let declared = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix(prefix))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let helped = declared("# HELP ");
    declared("# TYPE ")
        .into_iter()
        .filter(|name| !helped.contains(name))
        .collect()
}

/// `bazaar_service_messages_handled_total{service}` summed over nodes
/// `1..=3`; panics if a node does not serve it.
fn handled_everywhere(cluster: &TestCluster, service: &str) -> f64 {
    (1..=3)
        .map(|i| {
            let samples = scrape(cluster, i).unwrap_or_else(|| panic!("n{i} serves /metrics"));
            value(
                &samples,
                "bazaar_service_messages_handled_total",
                &[("service", service)],
            )
            .unwrap_or_else(|| panic!("n{i} exports messages handled by {service}"))
        })
        .sum()
}

/// Samples of `metric` whose labels include `labels`.
fn matching<'a>(
    samples: &'a [Sample],
    metric: &'a str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a Sample> {
    samples.iter().filter(move |sample| {
        sample.metric == metric
            && labels
                .iter()
                .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// The counter or gauge `metric` with `labels`, summed over the other
/// labels; `None` if no sample matches.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = matching(samples, metric, labels)
        .filter(|sample| !sample.histogram)
        .map(|sample| sample.value)
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Observations of the histogram `metric` with `labels`, summed over the
/// other labels.
fn observations(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    matching(samples, metric, labels)
        .filter(|sample| sample.histogram)
        .map(|sample| sample.value)
        .sum()
}

#[test]
fn metrics_count_requests_calls_and_membership() {
    let mut cluster = TestCluster::start(3);
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1, n2, n3 all up and /readyz 200",
        |c| c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3]),
    );
    for id in [1, 2, 3] {
        cluster
            .product(1, id)
            .unwrap_or_else(|| panic!("product {id} on n1"));
    }
    cluster.login(1, "user001", DEMO_PASSWORD);

    let response = reqwest::blocking::get(format!("http://{}/metrics", cluster.http_addr(1)))
        .expect("GET /metrics on n1");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4");

    let text = response.text().expect("the /metrics body");
    promtool_check(&text);
    assert_eq!(
        undescribed(&text),
        Vec::<String>::new(),
        "metrics without # HELP"
    );

    let samples = scrape(&cluster, 1).expect("n1 serves /metrics");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&samples, "bazaar_build_info", &[("version", version)]),
        Some(1.0),
        "bazaar_build_info{{version=\"{version}\"}} 1"
    );
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        let found = value(&samples, process, &[]);
        assert!(found > Some(0.0), "{process} exported: {found:?}");
    }
    let product = [
        ("route", "/api/products/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    let reads = value(&samples, "bazaar_http_requests_total", &product);
    assert!(reads >= Some(3.0), "product reads counted: {reads:?}");
    assert!(
        observations(&samples, "bazaar_http_request_duration_seconds", &product) >= 3.0,
        "product reads timed"
    );
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("route").is_none_or(|route| !route
                .starts_with("/api/products/")
                || route.ends_with("{id}"))),
        "raw paths never become labels"
    );
    let login = [
        ("route", "/api/login"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(
        value(&samples, "bazaar_http_requests_total", &login),
        Some(1.0)
    );

    // The login called auth; the product reads were answered from n1's
    // catalog snapshot: handled by the catalog, but not calls.
    let auth = [("service", "auth"), ("outcome", "ok")];
    let calls = value(&samples, "bazaar_service_calls_total", &auth);
    assert!(calls >= Some(1.0), "auth calls counted: {calls:?}");
    assert!(
        observations(
            &samples,
            "bazaar_service_call_duration_seconds",
            &[("service", "auth")]
        ) >= 1.0,
        "auth calls timed"
    );
    let served = value(
        &samples,
        "bazaar_service_messages_handled_total",
        &[("service", "catalog")],
    );
    assert!(
        served >= Some(3.0),
        "product reads from n1's snapshot counted as catalog requests on n1: {served:?}"
    );

    assert_eq!(
        value(&samples, "bazaar_members", &[("state", "up")]),
        Some(3.0)
    );
    assert_eq!(
        value(&samples, "bazaar_members", &[("state", "down")]),
        Some(0.0)
    );
    assert_eq!(value(&samples, "bazaar_quorum", &[]), Some(1.0));
    let ups = value(
        &samples,
        "bazaar_membership_changes_total",
        &[("event", "up")],
    );
    assert!(ups >= Some(2.0), "peers seen up: {ups:?}");
    // The gauge follows the promised epoch at each checkout tick, so it can
    // lag a promotion that happened just before the node became ready.
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1 exports checkout epoch >= 1",
        |c| {
            scrape(c, 1)
                .is_some_and(|samples| value(&samples, "bazaar_checkout_epoch", &[]) >= Some(1.0))
        },
    );

    for service in ["catalog", "search", "auth", "cart", "checkout"] {
        assert!(
            value(
                &samples,
                "bazaar_service_messages_handled_total",
                &[("service", service)],
            )
            .is_some(),
            "messages handled by {service} exported"
        );
    }
    assert!(
        samples.iter().all(|s| !s.labels.contains_key("group")),
        "services are labelled `service`, never `group`"
    );

    // A dashboard polling the cluster is not checkout traffic.
    let checkout_idle = handled_everywhere(&cluster, "checkout");
    for _ in 0..5 {
        for i in 1..=3 {
            let (status, _) = http_get(cluster.http_addr(i), "/api/cluster")
                .unwrap_or_else(|| panic!("n{i} answers /api/cluster"));
            assert_eq!(status, 200);
            let (status, _) = http_get(cluster.http_addr(i), "/readyz")
                .unwrap_or_else(|| panic!("n{i} answers /readyz"));
            assert_eq!(status, 200);
        }
    }
    assert_eq!(
        handled_everywhere(&cluster, "checkout"),
        checkout_idle,
        "15 polls of /api/cluster and /readyz are not checkout messages"
    );

    let catalog_before = handled_everywhere(&cluster, "catalog");
    let search_before = handled_everywhere(&cluster, "search");
    assert!(catalog_before >= 3.0, "the reads above reached the catalog");
    for id in 10..20 {
        cluster
            .product(2, id)
            .unwrap_or_else(|| panic!("product {id} on n2"));
    }
    cluster
        .search_ids(3, "lamp", 5)
        .expect("a search through n3");
    let catalog_after = handled_everywhere(&cluster, "catalog");
    let search_after = handled_everywhere(&cluster, "search");
    println!("catalog messages {catalog_before} -> {catalog_after}, search {search_before} -> {search_after}");
    assert!(
        catalog_after >= catalog_before + 10.0,
        "10 product reads are 10 catalog messages at least: {catalog_before} -> {catalog_after}"
    );
    assert!(
        search_after > search_before,
        "a search is a search message: {search_before} -> {search_after}"
    );

    cluster.kill(3);
    let took = cluster.expect_within(
        Instant::now(),
        DOWN_TIMEOUT,
        "n1 counts n3 down in /metrics",
        |c| {
            scrape(c, 1).is_some_and(|samples| {
                value(
                    &samples,
                    "bazaar_membership_changes_total",
                    &[("event", "down")],
                ) >= Some(1.0)
                    && value(&samples, "bazaar_members", &[("state", "up")]) == Some(2.0)
            })
        },
    );
    println!("n3 counted down on n1 after {took:?}");
    let samples = scrape(&cluster, 1).expect("n1 serves /metrics");
    assert_eq!(value(&samples, "bazaar_quorum", &[]), Some(1.0));
}
