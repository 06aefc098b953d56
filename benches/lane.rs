//! Lane batching next to plain length-prefixed frames, in the same run.
//!
//! - `bazaar-lane`: N casts of a 32-byte [`BenchRequest::Payload`] built
//!   into one buffer as a lane's writer builds a batch
//!   (`frame::push_cast` around `codec::encode_tagged_into`, outside any
//!   trace, so without a trace context), and parsed
//!   back entry by entry as a lane's reader does (`frame::body_len`,
//!   `frame::parse`, `codec::decode_tagged`);
//! - `plain-frames`: the same N payloads as `u32` length + raw bytes,
//!   written and read without entry header, protocol tag or codec.
//!
//! Both sides reuse one buffer across iterations (as a lane reuses its
//! write buffer) and hand every read payload out as an owned `Vec<u8>` (as
//! a receiver gets it), so the difference is the entry header, the tag and
//! bincode. Throughput is in entries. With `CI` set, fewer sizes and a
//! shorter measurement.

mod common;

use std::hint::black_box;

use bazaar::bench::protocol::{BenchProtocol, BenchRequest, Payload};
use bazaar_cluster::codec;
use bazaar_cluster::lane::frame::{self, Entry, LEN_BYTES};
use bazaar_cluster::remote::Protocol;
use common::{config, on_ci};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Bytes of every payload, the default size of `bazaar bench`.
const PAYLOAD_BYTES: usize = 32;
/// The pid every entry is addressed to.
const PID: u64 = 42;

/// Entries per batch.
fn batch_sizes() -> &'static [usize] {
    if on_ci() {
        &[64]
    } else {
        &[64, 1024, 16_384]
    }
}

fn payloads(count: usize) -> Vec<BenchRequest> {
    (0..count)
        .map(|i| BenchRequest::Payload(Payload(vec![i as u8; PAYLOAD_BYTES])))
        .collect()
}

fn raw_payloads(count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| vec![i as u8; PAYLOAD_BYTES]).collect()
}

fn build_lane(buf: &mut Vec<u8>, requests: &[BenchRequest]) {
    buf.clear();
    for request in requests {
        frame::push_cast(buf, PID, None, |buf| {
            codec::encode_tagged_into(BenchProtocol::NAME, request, buf)
        })
        .expect("a bench payload encodes");
    }
}

fn build_plain(buf: &mut Vec<u8>, payloads: &[Vec<u8>]) {
    buf.clear();
    for payload in payloads {
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(payload);
    }
}

/// Splits the next length-prefixed body off `bytes`.
fn next_body(bytes: &[u8]) -> Option<([u8; LEN_BYTES], &[u8])> {
    let (prefix, rest) = bytes.split_first_chunk::<LEN_BYTES>()?;
    Some((*prefix, rest))
}

/// Parses and decodes every entry of a lane batch; answers how many.
fn parse_lane(mut bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some((prefix, rest)) = next_body(bytes) {
        let len = frame::body_len(prefix).expect("a lane length prefix");
        let (body, rest) = rest.split_at(len);
        let Entry::Cast { pid, payload, .. } = frame::parse(body).expect("a lane entry") else {
            panic!("expected a cast entry");
        };
        let request: BenchRequest =
            codec::decode_tagged(BenchProtocol::NAME, payload).expect("a bench request");
        black_box((pid, request));
        bytes = rest;
        count += 1;
    }
    count
}

/// Reads every plain frame into an owned payload; answers how many.
fn parse_plain(mut bytes: &[u8]) -> usize {
    let mut count = 0;
    while let Some((prefix, rest)) = next_body(bytes) {
        let len = u32::from_le_bytes(prefix) as usize;
        let (body, rest) = rest.split_at(len);
        black_box(body.to_vec());
        bytes = rest;
        count += 1;
    }
    count
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("lane-batch-build");
    for &count in batch_sizes() {
        group.throughput(Throughput::Elements(count as u64));
        let requests = payloads(count);
        let raw = raw_payloads(count);
        group.bench_with_input(BenchmarkId::new("bazaar-lane", count), &requests, |b, r| {
            let mut buf = Vec::new();
            b.iter(|| {
                build_lane(&mut buf, black_box(r));
                black_box(buf.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("plain-frames", count), &raw, |b, r| {
            let mut buf = Vec::new();
            b.iter(|| {
                build_plain(&mut buf, black_box(r));
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("lane-batch-parse");
    for &count in batch_sizes() {
        group.throughput(Throughput::Elements(count as u64));
        let mut lane = Vec::new();
        build_lane(&mut lane, &payloads(count));
        let mut plain = Vec::new();
        build_plain(&mut plain, &raw_payloads(count));
        assert_eq!(parse_lane(&lane), count);
        assert_eq!(parse_plain(&plain), count);
        group.bench_with_input(BenchmarkId::new("bazaar-lane", count), &lane, |b, bytes| {
            b.iter(|| parse_lane(black_box(bytes)))
        });
        group.bench_with_input(
            BenchmarkId::new("plain-frames", count),
            &plain,
            |b, bytes| b.iter(|| parse_plain(black_box(bytes))),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = build, parse
}
criterion_main!(benches);
