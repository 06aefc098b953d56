//! The wire codec next to its baseline: a heartbeat encoded and decoded
//! through `bazaar_cluster::codec` (protocol tag, size limit, exact-length
//! check) and through plain bincode with no limit, in the same run.

use std::hint::black_box;

use bazaar_cluster::codec;
use bazaar_cluster::membership::Heartbeat;
use bazaar_cluster::MemberInfo;
use criterion::{criterion_group, criterion_main, Criterion};

fn heartbeat() -> Heartbeat {
    Heartbeat {
        from: MemberInfo {
            name: "n1".into(),
            cluster_addr: "127.0.0.1:7071".into(),
            http_addr: "127.0.0.1:8081".into(),
            pid: 4242,
            incarnation: 1_795_813_382_173,
        },
        peers: vec!["127.0.0.1:7072".into(), "127.0.0.1:7073".into()],
    }
}

fn round_trip(c: &mut Criterion) {
    let value = heartbeat();
    let mut group = c.benchmark_group("heartbeat-round-trip");
    group.bench_function("bazaar-codec", |b| {
        b.iter(|| {
            let bytes = codec::encode(black_box(&value)).unwrap();
            codec::decode::<Heartbeat>(black_box(&bytes)).unwrap()
        })
    });
    group.bench_function("bincode-unlimited", |b| {
        let config = bincode::config::standard();
        b.iter(|| {
            let bytes = bincode::serde::encode_to_vec(black_box(&value), config).unwrap();
            let (decoded, _): (Heartbeat, usize) =
                bincode::serde::decode_from_slice(black_box(&bytes), config).unwrap();
            decoded
        })
    });
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
