use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn manifest() -> Manifest {
    Manifest::new()
        .replicated("catalog")
        .singleton("checkout")
        .sharded("cart", 64, 1)
        .sharded("sessions", 16, 2)
}

fn candidate(name: &str, incarnation: u64) -> Candidate {
    Candidate {
        name: name.to_owned(),
        incarnation,
    }
}

fn three() -> Vec<Candidate> {
    vec![
        candidate("n1", 100),
        candidate("n2", 200),
        candidate("n3", 300),
    ]
}

/// 1 to 8 members with unique names `n0`..`n19` and arbitrary incarnations.
fn members() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::btree_map(0u32..20, 0u64..1_000, 1..8).prop_map(|picked| {
        picked
            .into_iter()
            .map(|(id, incarnation)| candidate(&format!("n{id}"), incarnation))
            .collect()
    })
}

/// The members minus the one at `index` (modulo their count).
fn without(members: &[Candidate], index: usize) -> (String, Vec<Candidate>) {
    let removed = members[index % members.len()].name.clone();
    let rest = members
        .iter()
        .filter(|member| member.name != removed)
        .cloned()
        .collect();
    (removed, rest)
}

#[test]
fn no_members_assigns_nothing() {
    let assignments = assign(&manifest(), &[]);
    assert_eq!(assignments, Assignments::default());
    assert!(assignments.roles_on("n1").is_empty());
    assert_eq!(assignments.owner("checkout"), None);
    assert!(assignments.shard_map("cart").is_empty());
}

#[test]
fn three_nodes_get_the_expected_roles() {
    let assignments = assign(&manifest(), &three());
    assert_eq!(assignments.owner("checkout"), Some("n1"));
    assert_eq!(assignments.standby("checkout"), Some("n2"));
    assert_eq!(assignments.owner("catalog"), None);
    assert_eq!(assignments.owner("unknown"), None);
    assert!(assignments.shard_map("catalog").is_empty());
    assert_eq!(
        assignments.services().collect::<Vec<_>>(),
        ["catalog", "checkout", "cart", "sessions"]
    );

    let roles = assignments.roles_on("n1");
    assert_eq!(roles[0], ("catalog".to_owned(), Role::Replica));
    assert_eq!(roles[1], ("checkout".to_owned(), Role::Owner));
    assert_eq!(
        assignments.roles_on("n2")[1],
        ("checkout".to_owned(), Role::Standby)
    );
    assert!(assignments
        .roles_on("n3")
        .iter()
        .all(|(service, _)| service != "checkout"));
    assert!(assignments.roles_on("n4").is_empty(), "not a member");

    // 64 shards over three nodes: each owns a fair part.
    for node in ["n1", "n2", "n3"] {
        let owned = assignments
            .shard_map("cart")
            .iter()
            .filter(|assignment| assignment.owner == node)
            .count();
        assert!(
            (10..=35).contains(&owned),
            "{node} owns {owned} of 64 shards"
        );
    }
}

#[test]
fn a_single_member_has_no_standby_and_no_backups() {
    let assignments = assign(&manifest(), &[candidate("solo", 1)]);
    assert_eq!(assignments.owner("checkout"), Some("solo"));
    assert_eq!(assignments.standby("checkout"), None);
    let cart = assignments.shard_map("cart");
    assert_eq!(cart.len(), 64);
    assert!(cart
        .iter()
        .all(|a| a.owner == "solo" && a.backups.is_empty()));
    let roles = assignments.roles_on("solo");
    assert_eq!(roles.len(), 4);
    let expected_owned: Vec<u32> = (0..64).collect();
    assert_eq!(
        roles[2].1,
        Role::Shards {
            owned: expected_owned,
            backups: Vec::new()
        }
    );
}

#[test]
fn singleton_ties_on_incarnation_go_to_the_lower_name() {
    let members = [candidate("b", 5), candidate("a", 5), candidate("c", 1)];
    let assignments = assign(&Manifest::new().singleton("s"), &members);
    assert_eq!(assignments.owner("s"), Some("c"));
    assert_eq!(assignments.standby("s"), Some("a"));
}

#[test]
fn a_name_given_twice_keeps_its_newest_incarnation() {
    let members = [candidate("a", 1), candidate("b", 5), candidate("a", 9)];
    let assignments = assign(&Manifest::new().singleton("s"), &members);
    assert_eq!(
        assignments.members(),
        [candidate("a", 9), candidate("b", 5)]
    );
    assert_eq!(assignments.owner("s"), Some("b"));
}

#[test]
fn manifest_validation() {
    assert_eq!(manifest().validate(), Ok(()));
    let duplicate = Manifest::new().replicated("a").singleton("a");
    assert_eq!(
        duplicate.validate(),
        Err(ManifestError::DuplicateService("a".into()))
    );
    // assign keeps the first of a duplicated name.
    let assignments = assign(&duplicate, &three());
    assert_eq!(assignments.owner("a"), None);
    assert_eq!(
        assignments.roles_on("n3"),
        [("a".to_owned(), Role::Replica)]
    );

    for shards in [0, MAX_SHARDS + 1] {
        let error = Manifest::new()
            .sharded("cart", shards, 1)
            .validate()
            .unwrap_err();
        assert!(matches!(error, ManifestError::BadShardCount { .. }));
        assert!(!error.is_retryable());
    }
    let empty = assign(&Manifest::new().sharded("cart", 0, 1), &three());
    assert!(empty.shard_map("cart").is_empty());
}

#[test]
fn hashes_are_pinned() {
    // FNV-1a 64 reference vectors.
    assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    // These values must never change: every node of every version agrees.
    assert_eq!(
        Assignments::shard_of("", 64),
        (fmix64(0xcbf2_9ce4_8422_2325) % 64) as u32
    );
    let pinned: Vec<u32> = ["user001", "user002", "user100", "admin"]
        .iter()
        .map(|key| Assignments::shard_of(key, 64))
        .collect();
    assert_eq!(pinned, PINNED_SHARDS);
    assert_eq!(rendezvous_weight(7, "n1"), PINNED_WEIGHT);
    assert_eq!(Assignments::shard_of("anything", 0), 0);
    assert_eq!(Assignments::shard_of("anything", 1), 0);
}

// Cross-checked against an independent implementation of FNV-1a 64 + fmix64.
const PINNED_SHARDS: [u32; 4] = [25, 55, 4, 5];
const PINNED_WEIGHT: u64 = 0xb361_ac60_f328_405f;

proptest! {
    #[test]
    fn deterministic_and_independent_of_member_order(
        members in members(),
        seed in any::<u64>(),
    ) {
        let expected = assign(&manifest(), &members);
        let mut shuffled = members.clone();
        // A deterministic shuffle driven by the seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (rendezvous_weight(i as u32, &seed.to_string()) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        prop_assert_eq!(assign(&manifest(), &shuffled), expected);
    }

    #[test]
    fn every_service_is_fully_placed(members in members()) {
        let assignments = assign(&manifest(), &members);
        let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
        let n = members.len();

        for (service, shards, backups) in [("cart", 64u32, 1usize), ("sessions", 16, 2)] {
            let map = assignments.shard_map(service);
            prop_assert_eq!(map.len(), shards as usize);
            for (index, assignment) in map.iter().enumerate() {
                prop_assert_eq!(assignment.shard, index as u32);
                prop_assert!(names.contains(assignment.owner.as_str()));
                prop_assert_eq!(assignment.backups.len(), backups.min(n - 1));
                let distinct: BTreeSet<&str> =
                    assignment.backups.iter().map(String::as_str).collect();
                prop_assert_eq!(distinct.len(), assignment.backups.len());
                prop_assert!(!distinct.contains(assignment.owner.as_str()));
                prop_assert!(distinct.is_subset(&names));
            }
        }

        let oldest = members.iter().min_by_key(|m| (m.incarnation, &m.name)).unwrap();
        prop_assert_eq!(assignments.owner("checkout"), Some(oldest.name.as_str()));
        prop_assert_eq!(assignments.standby("checkout").is_some(), n >= 2);
        prop_assert_ne!(assignments.standby("checkout"), assignments.owner("checkout"));

        // roles_on agrees with the maps, and the replicated service is everywhere.
        let mut owners = 0;
        let mut standbys = 0;
        for name in &names {
            let roles = assignments.roles_on(name);
            prop_assert_eq!(&roles[0], &("catalog".to_owned(), Role::Replica));
            for (service, role) in &roles {
                match role {
                    Role::Owner => owners += 1,
                    Role::Standby => standbys += 1,
                    Role::Shards { owned, backups } => {
                        let map = assignments.shard_map(service);
                        for shard in owned {
                            prop_assert_eq!(&map[*shard as usize].owner, name);
                        }
                        for shard in backups {
                            prop_assert!(map[*shard as usize].backups.contains(&name.to_string()));
                        }
                    }
                    Role::Replica => {}
                }
            }
        }
        prop_assert_eq!(owners, 1);
        prop_assert_eq!(standbys, usize::from(n >= 2));
    }

    #[test]
    fn removing_a_member_moves_only_what_it_held(members in members(), index in any::<usize>()) {
        let (removed, rest) = without(&members, index);
        let before = assign(&manifest(), &members);
        let after = assign(&manifest(), &rest);

        for service in ["cart", "sessions"] {
            for (old, new) in before.shard_map(service).iter().zip(after.shard_map(service)) {
                let mut old_holders: Vec<&String> =
                    std::iter::once(&old.owner).chain(&old.backups).collect();
                if !old_holders.contains(&&removed) {
                    prop_assert_eq!(old, &new, "shard untouched by {} moved", removed);
                    continue;
                }
                if old.owner != removed {
                    prop_assert_eq!(&old.owner, &new.owner);
                }
                // The survivors keep their order; the next in rank fills the gap.
                old_holders.retain(|holder| **holder != removed);
                let new_holders: Vec<&String> =
                    std::iter::once(&new.owner).chain(&new.backups).collect();
                prop_assert_eq!(&new_holders[..old_holders.len()], &old_holders[..]);
            }
        }

        let old_owner = before.owner("checkout").unwrap();
        if old_owner == removed {
            // The standby takes over.
            prop_assert_eq!(after.owner("checkout"), before.standby("checkout"));
        } else {
            prop_assert_eq!(after.owner("checkout"), Some(old_owner));
        }
        for member in &rest {
            prop_assert_eq!(&after.roles_on(&member.name)[0].1, &Role::Replica);
        }
        prop_assert!(after.roles_on(&removed).is_empty());
    }

    #[test]
    fn adding_a_member_moves_shards_only_to_it(members in members(), index in any::<usize>()) {
        let (added, rest) = without(&members, index);
        let before = assign(&manifest(), &rest);
        let after = assign(&manifest(), &members);
        for (old, new) in before.shard_map("cart").iter().zip(after.shard_map("cart")) {
            if old.owner != new.owner {
                prop_assert_eq!(&new.owner, &added);
            }
        }
    }
}

#[test]
fn candidates_are_the_reachable_members() {
    use crate::member::{Member, MemberInfo, MemberState, MembershipView};
    let member = |name: &str, state| {
        let info = MemberInfo {
            name: name.into(),
            cluster_addr: String::new(),
            http_addr: String::new(),
            pid: 1,
            incarnation: 7,
        };
        (
            name.to_string(),
            Member {
                info,
                state,
                since_ms: 0,
            },
        )
    };
    let view = MembershipView {
        local: "a".into(),
        expected: 3,
        members: [
            member("a", MemberState::Up),
            member("b", MemberState::Suspect),
            member("c", MemberState::Down),
        ]
        .into_iter()
        .collect(),
    };
    let names: Vec<String> = candidates(&view).into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
}
