//! The optional OTLP exporter (`cargo test --features otlp --test otlp`):
//! a real `bazaar node` built with the feature exports the span of a
//! request to an OTLP/HTTP collector, in the trace and under the parent
//! that the request's `traceparent` named, named after its route, with the
//! caller's `tracestate`, under a resource that names the node and keeps
//! the operator's `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`; an
//! unsampled caller's span is not exported.
//!
//! The collector here is a minimal HTTP/1.1 server that keeps the bodies
//! of `POST /v1/traces`; the protobuf encodes trace and span ids as raw
//! bytes, so finding them in a body is finding the exported span.
#![cfg(feature = "otlp")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Options, TestCluster};

type Bodies = Arc<Mutex<Vec<Vec<u8>>>>;

/// Serves one connection: every request's body is kept, every answer is 200.
fn serve(stream: TcpStream, bodies: Bodies) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let is_traces = line.starts_with("POST /v1/traces");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if is_traces {
            bodies.lock().unwrap().push(body);
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn collector() -> (u16, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies: Bodies = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || serve(stream, kept));
        }
    });
    (port, bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// `GET /api/products/1` on `addr` in the caller's trace `traceparent`.
fn get_product(addr: std::net::SocketAddr, traceparent: &str, tracestate: &str) {
    let response = reqwest::blocking::Client::new()
        .get(format!("http://{addr}/api/products/1"))
        .header("traceparent", traceparent)
        .header("tracestate", tracestate)
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("tracestate").map(|v| v.as_bytes()),
        Some(tracestate.as_bytes()),
        "the tracestate is echoed"
    );
}

#[test]
fn a_request_span_is_exported_in_the_callers_trace() {
    let (collector_port, bodies) = collector();
    let options = Options::default()
        .expect(1)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{collector_port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "shop-under-test")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci");
    let cluster = TestCluster::start_with(1, options);
    cluster.expect_within(Instant::now(), Duration::from_secs(30), "n1 ready", |c| {
        c.all_ready(&[1])
    });

    // First a trace its caller does not sample, then one it does: spans
    // are exported in order, so once the second is in, the first would be.
    let unsampled_id = rand::random::<u128>() | 1;
    let trace_id = rand::random::<u128>() | 1;
    let parent_id = rand::random::<u64>() | 1;
    let addr = cluster.http_addr(1);
    get_product(
        addr,
        &format!("00-{unsampled_id:032x}-{parent_id:016x}-00"),
        "vendor=unsampled",
    );
    get_product(
        addr,
        &format!("00-{trace_id:032x}-{parent_id:016x}-01"),
        "vendor=sampled",
    );

    let mut exported = Vec::new();
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(10),
        &format!("a span of trace {trace_id:032x} under {parent_id:016x} at the collector"),
        |_| {
            let bodies = bodies.lock().unwrap();
            match bodies.iter().find(|body| {
                contains(body, &trace_id.to_be_bytes()) && contains(body, &parent_id.to_be_bytes())
            }) {
                Some(body) => {
                    exported = body.clone();
                    true
                }
                None => false,
            }
        },
    );
    for expected in [
        "GET /api/products/{id}",
        "http.route",
        "http.response.status_code",
        "vendor=sampled",
        "service.instance.id",
        "shop-under-test",
        "deployment.environment.name",
    ] {
        assert!(
            contains(&exported, expected.as_bytes()),
            "{expected:?} in the exported span's batch"
        );
    }
    let bodies = bodies.lock().unwrap();
    assert!(
        !bodies
            .iter()
            .any(|body| contains(body, &unsampled_id.to_be_bytes())),
        "the unsampled trace is not exported"
    );
}
