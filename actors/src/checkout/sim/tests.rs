//! The simulator's runs: many seeds under the voter rule (none may break
//! an invariant), and the old rule, which the simulator must catch.
//!
//! `BAZAAR_SIM_SEEDS=N` runs N seeds instead of the default;
//! `BAZAAR_SIM_SEED=S` replays seed S alone and prints its trace.

use super::super::node::QuorumRule;
use super::{run, Shape};

/// Seeds `cargo test` runs by default (about 30 s in a debug build on two cores).
const DEFAULT_SEEDS: u64 = 2_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

/// The cluster shape of a seed: 3 to 7 nodes, 3 or 5 voters (never more
/// than the nodes), so that most runs have learners.
fn shape_of(seed: u64) -> Shape {
    let nodes = 3 + (seed % 5) as usize;
    let voters = if nodes >= 5 && (seed / 5) % 2 == 1 {
        5
    } else {
        3
    };
    Shape {
        nodes,
        voters,
        rule: QuorumRule::Voters,
        fault_ms: 6_000,
    }
}

fn replay_hint(seed: u64) -> String {
    format!(
        "replay: BAZAAR_SIM_SEED={seed} cargo test -p bazaar-actors checkout::sim -- --nocapture"
    )
}

#[test]
fn seeded_schedules_keep_every_invariant() {
    let seeds: Vec<u64> = match env_u64("BAZAAR_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("BAZAAR_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let (mut acks, mut events, mut batches) = (0, 0, 0);
    for &seed in &seeds {
        let shape = shape_of(seed);
        match run(seed, &shape) {
            Ok(stats) => {
                acks += stats.acks;
                events += stats.events;
                batches += stats.batches;
                if seeds.len() == 1 {
                    println!("seed {seed} {shape:?}: {stats:?}");
                }
            }
            Err((violation, trace)) => panic!(
                "seed {seed} ({shape:?}): {}\nlast events:\n{}\n{}",
                violation.0,
                trace.join("\n"),
                replay_hint(seed)
            ),
        }
    }
    println!(
        "{} seeds, {events} events, {acks} orders acknowledged, {batches} batches",
        seeds.len()
    );
    assert!(
        acks > 0,
        "no order was ever acknowledged: the runs prove nothing"
    );
    assert!(
        seeds.len() == 1 || batches > 0,
        "no batch of proposals was ever stepped: group commit went untested"
    );
}

/// The rule checkout had before voters: everyone votes, a quorum is a
/// majority of an expected size (3) while 4 or 5 nodes run. The simulator
/// must find an acknowledged order that a later owner lost, or two owners
/// of one epoch, or two different commits at one index.
#[test]
fn the_simulator_catches_the_old_majority_of_whoever_is_reachable_rule() {
    let found = (0..500).find_map(|seed| {
        let shape = Shape {
            nodes: 4 + (seed % 2) as usize,
            voters: 3,
            rule: QuorumRule::AnyOfExpected(3),
            fault_ms: 6_000,
        };
        run(seed, &shape)
            .err()
            .map(|(violation, _)| (seed, violation))
    });
    let (seed, violation) = found.expect("the old rule went uncaught in 500 seeds");
    println!("old rule caught at seed {seed}: {}", violation.0);
}
