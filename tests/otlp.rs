//! The optional OTLP exporter (`cargo test --features otlp --test otlp`):
//! a real `bazaar node` built with the feature exports the span of a
//! request to an OTLP/HTTP collector, in the trace and under the parent
//! that the request's `traceparent` named.
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

#[test]
fn a_request_span_is_exported_in_the_callers_trace() {
    let (collector_port, bodies) = collector();
    let options = Options::default()
        .expect(1)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("http://127.0.0.1:{collector_port}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let cluster = TestCluster::start_with(1, options);
    cluster.expect_within(Instant::now(), Duration::from_secs(30), "n1 ready", |c| {
        c.all_ready(&[1])
    });

    let trace_id = rand::random::<u128>() | 1;
    let parent_id = rand::random::<u64>() | 1;
    let response = reqwest::blocking::Client::new()
        .get(format!("http://{}/api/products/1", cluster.http_addr(1)))
        .header(
            "traceparent",
            format!("00-{trace_id:032x}-{parent_id:016x}-01"),
        )
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(10),
        &format!("a span of trace {trace_id:032x} under {parent_id:016x} at the collector"),
        |_| {
            bodies.lock().unwrap().iter().any(|body| {
                contains(body, &trace_id.to_be_bytes()) && contains(body, &parent_id.to_be_bytes())
            })
        },
    );
}
