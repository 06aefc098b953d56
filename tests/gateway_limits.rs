//! The gateway's limits as a client meets them, on one real `bazaar node`
//! (`--expect 1`) started through [`support::TestCluster`]:
//! - bodies over 64 KiB answer 413, bad JSON 400, wrong types or unknown
//!   fields 422, a missing JSON content type 415, all as JSON errors;
//! - routes that need a token answer 401 without one and 403 with a user
//!   token on an admin route;
//! - a client that floods the node gets 429s with `Retry-After` while
//!   another client (another source address) keeps getting 200s, and the
//!   probes stay exempt;
//! - a client that sends half a request head is disconnected after the
//!   header-read timeout.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::Value;
use support::{Options, TestCluster, DEMO_PASSWORD};

/// Time a fresh single-node cluster gets to be up and ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Budget of one request made by these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's header-read timeout (`gateway::limits::HEADER_READ_TIMEOUT`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests in the flood, and the threads sending them.
const FLOOD_REQUESTS: usize = 8_000;
/// The flood test's rate limit (requests a second, bursts of twice that):
/// low enough that a flood from a debug build on a busy two-core machine
/// still outruns it, so the test does not depend on the machine's speed.
const FLOOD_RATE_LIMIT: u32 = 200;
const FLOOD_THREADS: usize = 8;

/// Starts one node and waits until it is ready.
fn ready_node() -> TestCluster {
    ready_node_with(Vec::new())
}

/// A ready single node started with extra `flags`.
fn ready_node_with(flags: Vec<String>) -> TestCluster {
    let cluster = TestCluster::start_with(1, Options::default().expect(1).flags(1, flags));
    let took = cluster.expect_within(Instant::now(), READY_TIMEOUT, "n1 ready", |c| {
        c.all_ready(&[1])
    });
    println!("n1 ready in {took:?}");
    cluster
}

/// A client whose connections come from `source`.
fn client_from(source: Ipv4Addr) -> Client {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .local_address(IpAddr::V4(source))
        .build()
        .expect("http client")
}

/// Sends `body` to `path` on `addr`; returns the status, the headers'
/// `Retry-After` and the body as JSON (`Null` if it is not JSON).
fn send(
    client: &Client,
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
    token: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = client.request(method, format!("http://{addr}{path}"));
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap_or_else(|err| panic!("{path}: {err}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let text = response.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, retry_after, body)
}

/// `POST /api/login` with `body` as JSON; returns status and JSON body.
fn login_with(client: &Client, addr: SocketAddr, body: &[u8]) -> (u16, Value) {
    let (status, _, json) = send(
        client,
        Method::POST,
        addr,
        "/api/login",
        Some(("application/json", body.to_vec())),
        None,
    );
    (status, json)
}

fn assert_json_error(status: u16, body: &Value, expected: u16, what: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(
        body["error"].is_string(),
        "{what}: not a JSON error: {body}"
    );
}

#[test]
fn bad_bodies_and_missing_tokens_get_json_errors() {
    let cluster = ready_node();
    let addr = cluster.http_addr(1);
    let client = client_from(Ipv4Addr::LOCALHOST);

    // The gateway answers 413 without reading the body and closes that
    // connection; a client of its own keeps the others off it (reqwest
    // would otherwise reuse it from its pool and fail the next request).
    let huge = vec![b' '; 1024 * 1024];
    let (status, body) = login_with(&client_from(Ipv4Addr::LOCALHOST), addr, &huge);
    assert_json_error(status, &body, 413, "1 MiB body");

    let (status, body) = login_with(&client, addr, b"{\"username\": ");
    assert_json_error(status, &body, 400, "truncated json");

    let (status, body) = login_with(&client, addr, br#"{"username": 5, "password": "x"}"#);
    assert_json_error(status, &body, 422, "wrong type");

    let unknown = br#"{"username": "user001", "password": "bazaar", "admin": true}"#;
    let (status, body) = login_with(&client, addr, unknown);
    assert_json_error(status, &body, 422, "unknown field");

    let (status, _, body) = send(
        &client,
        Method::POST,
        addr,
        "/api/login",
        Some((
            "text/plain",
            br#"{"username": "user001", "password": "bazaar"}"#.to_vec(),
        )),
        None,
    );
    assert_json_error(status, &body, 415, "no json content type");

    let (status, _, body) = send(&client, Method::GET, addr, "/api/cart", None, None);
    assert_json_error(status, &body, 401, "cart without a token");

    let user = cluster.login(1, "user001", DEMO_PASSWORD);
    let (status, _, body) = send(
        &client,
        Method::GET,
        addr,
        "/api/admin/orders",
        None,
        Some(&user),
    );
    assert_json_error(status, &body, 403, "admin route with a user token");
}

#[test]
fn a_flooding_client_gets_429s_while_another_gets_200s() {
    let cluster = ready_node_with(vec!["--rate-limit".into(), FLOOD_RATE_LIMIT.to_string()]);
    let addr = cluster.http_addr(1);
    let ok = AtomicUsize::new(0);
    let limited = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..FLOOD_THREADS {
            scope.spawn(|| {
                let flooder = client_from(Ipv4Addr::LOCALHOST);
                while sent.fetch_add(1, Ordering::Relaxed) < FLOOD_REQUESTS {
                    let (status, retry_after, body) =
                        send(&flooder, Method::GET, addr, "/api/products/1", None, None);
                    match status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => {
                            assert!(body["error"].is_string(), "429 not JSON: {body}");
                            let seconds: u64 = retry_after
                                .expect("429 without Retry-After")
                                .parse()
                                .expect("Retry-After in seconds");
                            assert!(seconds >= 1);
                            limited.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("flood: unexpected {other}: {body}"),
                    };
                }
            });
        }
        // While the flood runs, another address reads normally, and the
        // flooding address still passes the probes.
        let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
        let flooder = client_from(Ipv4Addr::LOCALHOST);
        while sent.load(Ordering::Relaxed) < FLOOD_REQUESTS {
            let (status, _, body) = send(&other, Method::GET, addr, "/api/products/1", None, None);
            assert_eq!(status, 200, "the other client was refused: {body}");
            let (status, _, body) = send(&flooder, Method::GET, addr, "/healthz", None, None);
            assert_eq!(status, 200, "probe refused during the flood: {body}");
            thread::sleep(Duration::from_millis(20));
        }
    });
    let (ok, limited) = (ok.into_inner(), limited.into_inner());
    println!(
        "flood of {FLOOD_REQUESTS} in {:?}: {ok} ok, {limited} limited",
        started.elapsed()
    );
    assert!(limited > 0, "no 429 in a flood of {FLOOD_REQUESTS}");
    assert!(ok > 0, "the flooding client never got through");
}

#[test]
fn a_client_sending_half_a_header_is_disconnected() {
    let cluster = ready_node();
    let mut stream = TcpStream::connect(cluster.http_addr(1)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bazaar\r\nX-Slow: ")
        .expect("write half a header");
    let started = Instant::now();
    stream
        .set_read_timeout(Some(HEADER_READ_TIMEOUT * 3))
        .expect("read timeout");
    let mut answer = Vec::new();
    let closed = match stream.read_to_end(&mut answer) {
        Ok(_) => true,
        Err(err) => err.kind() == ErrorKind::ConnectionReset,
    };
    let took = started.elapsed();
    println!(
        "disconnected after {took:?}; answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(closed, "still connected after {took:?}");
    assert!(
        took < HEADER_READ_TIMEOUT * 2,
        "disconnected only after {took:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "half a request was served"
    );
}
