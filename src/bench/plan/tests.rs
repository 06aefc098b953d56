use super::*;
use crate::cli::BenchArgs;

fn args() -> BenchArgs {
    BenchArgs {
        messages: None,
        in_flight: DEFAULT_IN_FLIGHT,
        duration: DEFAULT_DURATION_SECS,
        payloads: vec![],
        workloads: vec![],
        runs: DEFAULT_RUNS,
        json: false,
        runtime: crate::runtime::RuntimeArgs {
            workers: None,
            busy_poll_us: 200,
        },
    }
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(parse_size("32"), Ok(32));
    assert_eq!(parse_size("1k"), Ok(1024));
    assert_eq!(parse_size("16K"), Ok(16 * 1024));
    assert_eq!(parse_size("1KiB"), Ok(1024));
    assert_eq!(parse_size("2m"), Ok(2 * 1024 * 1024));
    assert!(parse_size("0").is_err());
    assert!(parse_size("1g").is_err());
    assert!(parse_size("k").is_err());
    assert!(parse_size("5m").is_err());
    assert_eq!(size_label(32), "32");
    assert_eq!(size_label(16 * 1024), "16k");
    assert_eq!(size_label(1500), "1500");
}

#[test]
fn defaults_cover_every_workload_and_system() {
    let settings = Settings::from_args(&args()).unwrap();
    let groups = settings.groups();
    // 3 payloads x (3 cast-like workloads + 2 call workloads x 2 variants
    // + frozen-peer).
    assert_eq!(groups.len(), 3 * (3 + 2 * 2 + 1));
    for group in &groups {
        let systems = match group.specs[0].workload {
            Workload::FrozenPeer => 1,
            _ => 3,
        };
        assert_eq!(group.specs.len(), systems);
    }
    assert!(groups
        .iter()
        .all(|group| group.specs[0].system == System::Bazaar));
}

#[test]
fn casts_are_capped_by_bytes_unless_messages_is_given() {
    let settings = Settings::from_args(&args()).unwrap();
    assert_eq!(
        settings.messages_for(16 * 1024, None),
        CAST_BYTE_BUDGET / (16 * 1024)
    );
    assert_eq!(
        settings.messages_for(16 * 1024, None),
        CAST_BYTE_BUDGET / (16 * 1024)
    );
    assert_eq!(settings.messages_for(32, None), DEFAULT_CAST_MESSAGES);
    assert_eq!(settings.messages_for(32, Some(1)), DEFAULT_CALL_MESSAGES);
    let given = Settings::from_args(&BenchArgs {
        messages: Some(10),
        ..args()
    })
    .unwrap();
    assert_eq!(given.messages_for(16 * 1024, None), 10);
    assert_eq!(given.frozen_peer_messages(32), 10);
    assert_eq!(
        settings.frozen_peer_messages(32),
        DEFAULT_FROZEN_PEER_MESSAGES
    );
    assert_eq!(
        settings.frozen_peer_messages(16 * 1024),
        CAST_BYTE_BUDGET / (16 * 1024)
    );
}

#[test]
fn in_flight_one_means_sequential_calls_only() {
    let settings = Settings::from_args(&BenchArgs {
        in_flight: 1,
        workloads: vec![
            Workload::RemoteCall,
            Workload::LocalCast,
            Workload::RemoteCall,
        ],
        payloads: vec![32, 32],
        ..args()
    })
    .unwrap();
    assert_eq!(
        settings.workloads,
        [Workload::LocalCast, Workload::RemoteCall]
    );
    let groups = settings.groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].specs[0].in_flight, Some(1));
    assert_eq!(groups[1].specs[1].system, System::RactorCluster);
}

#[test]
fn bad_flags_are_refused() {
    assert!(Settings::from_args(&BenchArgs { runs: 0, ..args() }).is_err());
    assert!(Settings::from_args(&BenchArgs {
        duration: 0.0,
        ..args()
    })
    .is_err());
    assert!(Settings::from_args(&BenchArgs {
        messages: Some(0),
        ..args()
    })
    .is_err());
}
