//! The dashboard in a real browser: Debian's headless Chromium, driven
//! through chromedriver (WebDriver, with `fantoccini`), against a 3-node
//! `bazaar up`. The page must show the three nodes up, message rates that
//! move while a client reads the catalog, and, after a click on a node's
//! own kill button, that node down within 3 s; charts of the message rate
//! and request latency with points; and the node's events (n3 down, the
//! checkout owner) again after a reload. Screenshots before and after the
//! kill are written under the target directory.
//!
//! Chromium and chromedriver are required, not optional: without them the
//! test fails and says what to install (`.ci/run` installs both).

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde_json::{json, Value};
use support::{http_get, UpCluster, POLL_INTERVAL};

/// Debian's chromium; `CHROMIUM` overrides it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromium-driver; `CHROMEDRIVER` overrides it.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Time chromedriver gets to listen and start a browser session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the page gets to draw what the cluster already is.
const PAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The issue's bound: the page shows a killed node within this.
const KILL_SHOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// Size of the browser window, and so of the screenshots.
const WINDOW: (u32, u32) = (1400, 1000);

/// The DOM facts the test reads, in one script run: every node card's
/// state, the summary line, the catalog rates and the event timeline.
const READ_PAGE: &str = r##"
const cards = [...document.querySelectorAll(".node[data-node]")];
const rates = [...document.querySelectorAll('td.rate[data-service="catalog"]')];
return {
  states: Object.fromEntries(cards.map((c) => [c.dataset.node, c.dataset.state])),
  checkout: Object.fromEntries(cards.map((c) => [c.dataset.node, c.dataset.checkout])),
  voters: (document.getElementById("checkout-voters") || {}).textContent || "",
  trees: cards.filter((c) => c.querySelector("ul.tree")).length,
  summary: document.getElementById("summary").textContent,
  catalog_rate: rates.reduce((sum, td) => sum + (parseFloat(td.dataset.rate) || 0), 0),
  events: [...document.querySelectorAll("#events li")].map((li) => li.textContent),
  kill_buttons: document.querySelectorAll(".node[data-node] button").length,
  points: Object.fromEntries(["chart-messages", "chart-latency"].map((id) => {
    const line = document.querySelector(`#${id} polyline`);
    const points = line ? line.getAttribute("points").trim() : "";
    return [id, points ? points.split(/\s+/).length : 0];
  })),
};
"##;

#[test]
fn the_dashboard_shows_the_cluster_rates_and_a_kill_in_chromium() {
    let test_started = Instant::now();
    let chromium = required_program("CHROMIUM", CHROMIUM, "chromium");
    let chromedriver = required_program("CHROMEDRIVER", CHROMEDRIVER, "chromium-driver");
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&screenshots).expect("screenshot directory");
    let up = UpCluster::start(3, 0);
    let browser = Browser::start(
        &chromedriver,
        &chromium,
        &screenshots.join("chromedriver.log"),
    );

    browser.goto(&format!("http://{}/", up.http_addr(1)));
    let took = browser.wait_for(
        PAGE_TIMEOUT,
        "the page shows n1, n2, n3 up with trees",
        |page| {
            page["states"] == json!({ "n1": "up", "n2": "up", "n3": "up" })
                && page["trees"] == 3
                && page["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("3 of 3 up"))
        },
    );
    println!("page showed 3 nodes up {took:?} after loading");
    let took = browser.wait_for(
        PAGE_TIMEOUT,
        "the page marks n1, n2, n3 as checkout voters, with no learner",
        |page| {
            let voters = page["voters"].as_str().unwrap_or_default();
            page["checkout"] == json!({ "n1": "voter", "n2": "voter", "n3": "voter" })
                && voters.contains("n1, n2, n3")
                && voters.contains("learners (replicate, never vote): none")
        },
    );
    println!("page showed the checkout voters {took:?} after the nodes");
    assert_eq!(
        browser.read_page()["kill_buttons"],
        3,
        "kill buttons on a bazaar up cluster"
    );

    // Reads through two gateways: the catalog's message rate must move.
    let reads = BackgroundReads::start(vec![up.http_addr(1), up.http_addr(2)]);
    let took = browser.wait_for(
        PAGE_TIMEOUT,
        "the page shows a catalog message rate",
        |page| page["catalog_rate"].as_f64().is_some_and(|rate| rate > 0.0),
    );
    let page = browser.read_page();
    println!(
        "page showed {:.1} catalog messages/s {took:?} after reads started ({} reads so far)",
        page["catalog_rate"].as_f64().unwrap_or_default(),
        reads.done()
    );
    let took = browser.wait_for(
        PAGE_TIMEOUT,
        "the charts draw message rate and latency points",
        |page| {
            page["points"]["chart-messages"].as_u64() >= Some(2)
                && page["points"]["chart-latency"].as_u64() >= Some(1)
        },
    );
    println!(
        "charts drawn {took:?} later: {}",
        browser.read_page()["points"]
    );
    let before = screenshots.join("before-kill.png");
    browser.screenshot(&before);
    println!("screenshot before the kill: {}", before.display());

    // The page's own kill button, with an admin token typed into its field.
    let n3 = up.pid(3).expect("n3 pid file");
    browser.type_into("#token", &up.admin_token());
    let clicked = browser.click(r#".node[data-node="n3"] button"#);
    let took = browser.wait_for(KILL_SHOWN_TIMEOUT, "the page shows n3 down", |page| {
        page["states"] == json!({ "n1": "up", "n2": "up", "n3": "down" })
            && page["summary"]
                .as_str()
                .is_some_and(|s| s.contains("2 of 3 up"))
    });
    let shown = clicked.elapsed();
    assert!(
        kill(Pid::from_raw(n3 as i32), None).is_err(),
        "n3 (pid {n3}) was killed"
    );
    println!("page showed n3 down {shown:?} after the click ({took:?} of polling)");
    let page = browser.read_page();
    let events: Vec<&str> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains(&format!("killed n3 (pid {n3})"))),
        "the timeline shows the kill: {events:?}"
    );
    assert!(
        events.iter().any(|e| e.contains("n3 down (was up)")),
        "the timeline shows n3 down: {events:?}"
    );
    let after = screenshots.join("after-kill.png");
    browser.screenshot(&after);
    println!("screenshot after the kill: {}", after.display());

    // The node keeps its events: a reload shows them again.
    browser.goto(&format!("http://{}/", up.http_addr(1)));
    let took = browser.wait_for(
        PAGE_TIMEOUT,
        "the reloaded page shows the node's events",
        |page| {
            let events = page["events"].as_array().cloned().unwrap_or_default();
            let has = |text: &str| {
                events
                    .iter()
                    .any(|e| e.as_str().is_some_and(|e| e.contains(text)))
            };
            has("n3 down (was up)") && has("n1 started") && has("checkout owner")
        },
    );
    println!("reloaded page showed the node's events {took:?} after loading");
    drop(reads);
    browser.close();
    println!("browser test took {:?}", test_started.elapsed());
}

/// The path of a program the test cannot run without; panics with what to
/// install if it is missing.
fn required_program(variable: &str, default: &str, package: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the dashboard test needs Debian's {package} package \
         (apt-get install -y chromium chromium-driver; .ci/run installs it), \
         or {variable} set to another path",
        path.display()
    );
    path
}

/// Headless Chromium under a chromedriver child process, with one
/// WebDriver session; chromedriver (and with it Chromium) is killed on
/// drop.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// Chromium's profile, fresh per run.
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver (its output to `log`) and opens a session of
    /// headless `chromium` in a fresh profile.
    fn start(chromedriver: &Path, chromium: &Path, log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let log = std::fs::File::create(log).expect("chromedriver log");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().expect("clone chromedriver log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("chromium profile directory");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut browser = Self {
            runtime,
            client: None,
            driver,
            profile,
        };
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // The machine has no network: without these Chromium waits
                // on refused connections (updates, sync, first run).
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", browser.profile.path().display()),
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = browser.runtime.block_on(async {
            loop {
                let mut builder = ClientBuilder::new(HttpConnector::new());
                match builder
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    // Not listening yet.
                    Err(_) if started.elapsed() < SESSION_TIMEOUT => {
                        tokio::time::sleep(POLL_INTERVAL * 5).await;
                    }
                    Err(err) => panic!(
                        "no browser session from chromedriver within {SESSION_TIMEOUT:?}: {err}"
                    ),
                }
            }
        });
        println!("browser session after {:?}", started.elapsed());
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session open")
    }

    fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|err| panic!("open {url}: {err}"));
    }

    /// Runs [`READ_PAGE`] in the page.
    fn read_page(&self) -> Value {
        self.runtime
            .block_on(self.client().execute(READ_PAGE, Vec::new()))
            .unwrap_or_else(|err| panic!("read the page: {err}"))
    }

    /// Polls the page until `condition` holds; panics with `what` and the
    /// last reading after `timeout`.
    fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&Value) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let page = self.read_page();
            if condition(&page) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?}: {what}; the page reads {page:#}"
            );
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Types `text` into the input matched by `css`.
    fn type_into(&self, css: &str, text: &str) {
        self.runtime
            .block_on(async {
                self.client()
                    .find(Locator::Css(css))
                    .await?
                    .send_keys(text)
                    .await
            })
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Clicks the element matched by `css` and returns when it was clicked.
    /// The page redraws every second, so an element found just before a
    /// redraw can be stale by the click: find it again then.
    fn click(&self, css: &str) -> Instant {
        let started = Instant::now();
        loop {
            let clicked = self
                .runtime
                .block_on(async { self.client().find(Locator::Css(css)).await?.click().await });
            match clicked {
                Ok(()) => return Instant::now(),
                Err(err)
                    if err.is_stale_element_reference() && started.elapsed() < PAGE_TIMEOUT =>
                {
                    continue;
                }
                Err(err) => panic!("click {css}: {err}"),
            }
        }
    }

    /// Writes a PNG of the window to `path`.
    fn screenshot(&self, path: &Path) {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .unwrap_or_else(|err| panic!("screenshot: {err}"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::write(path, png).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    }

    /// Ends the session (and so Chromium) cleanly.
    fn close(mut self) {
        if let Some(client) = self.client.take() {
            self.runtime
                .block_on(client.close())
                .unwrap_or_else(|err| panic!("close the browser session: {err}"));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Product reads through some gateways in a background thread, until
/// dropped.
struct BackgroundReads {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BackgroundReads {
    fn start(gateways: Vec<SocketAddr>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, done) = (stop.clone(), done.clone());
            thread::spawn(move || {
                let mut id = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for gateway in &gateways {
                        id = id % 1000 + 1;
                        if let Some((200, _)) = http_get(*gateway, &format!("/api/products/{id}")) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    thread::sleep(POLL_INTERVAL);
                }
            })
        };
        Self {
            stop,
            done,
            thread: Some(thread),
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

impl Drop for BackgroundReads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
