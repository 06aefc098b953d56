//! The serving rule, pure: whether a node may serve a cart shard as its
//! owner, and whether a backup keeps the copies a node sends it.
//!
//! Both ask the node's own membership view and the cluster's voter set
//! ([`Voters`]), nothing else:
//! - an owner serves a shard only while its view reaches a strict majority
//!   of the voters and places the shard on it; without that majority it
//!   refuses at once ([`Refusal::NoMajority`]), before even looking at the
//!   shard, so a minority answers in microseconds and never waits;
//! - a backup keeps copies only while its own view reaches a majority of
//!   the voters and places the shard on the node that sent them (so not on
//!   itself): an owner whose view is not shared by its backup gets no
//!   acknowledgement through it.
//!
//! Two disjoint groups of nodes never both reach a strict majority of one
//! voter set, so the two sides of a partition never both serve carts.

use bazaar_cluster::placement::{Assignments, ShardAssignment};
use bazaar_cluster::{MembershipView, Voters};

use super::placement;
use crate::host::manifest::CART;

/// Why a node does not serve a shard as its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The node's view does not reach a strict majority of the voters.
    NoMajority,
    /// The shard is placed on another node (named, if placed at all).
    NotOwner(Option<String>),
}

impl Refusal {
    /// The refusal as a log and error text.
    pub fn reason(&self, node: &str) -> String {
        match self {
            Self::NoMajority => {
                format!("{node} does not reach a majority of the voters: carts are not served here")
            }
            Self::NotOwner(Some(owner)) => format!("{owner} owns this cart, not {node}"),
            Self::NotOwner(None) => "no node owns this cart".to_string(),
        }
    }
}

/// The holders of `shard` if `node` may serve it as its owner under
/// `view` and `voters`; `assignments` is the placement of `view`.
pub fn owner_check(
    node: &str,
    shard: u32,
    view: &MembershipView,
    assignments: &Assignments,
    voters: &Voters,
) -> Result<ShardAssignment, Refusal> {
    if !voters.reachable_majority(view) {
        return Err(Refusal::NoMajority);
    }
    let Some(holders) = holders_of(assignments, shard) else {
        return Err(Refusal::NotOwner(None));
    };
    if holders.owner != node {
        return Err(Refusal::NotOwner(Some(holders.owner)));
    }
    Ok(holders)
}

/// Whether the backup on `node` keeps copies of `shard` sent by `sender`,
/// under `node`'s `view` and `voters`; the reason when it does not.
pub fn backup_check(
    node: &str,
    shard: u32,
    sender: &str,
    view: &MembershipView,
    voters: &Voters,
) -> Result<(), String> {
    if !voters.reachable_majority(view) {
        return Err(Refusal::NoMajority.reason(node));
    }
    let owner = holders_of(&placement(view), shard).map(|holders| holders.owner);
    match owner {
        Some(owner) if owner == sender => Ok(()),
        Some(owner) if owner == node => Err(format!("{node} owns cart shard {shard} itself")),
        Some(owner) => Err(format!(
            "{sender} does not own cart shard {shard} as {node} sees it ({owner} does)"
        )),
        None => Err(format!(
            "cart shard {shard} is not placed as {node} sees it"
        )),
    }
}

/// Owner and backups of `shard` in `assignments`.
fn holders_of(assignments: &Assignments, shard: u32) -> Option<ShardAssignment> {
    assignments
        .shard_map(CART)
        .into_iter()
        .find(|holders| holders.shard == shard)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bazaar_cluster::{Member, MemberInfo, MemberState};

    use super::*;

    /// `local`'s view: `up` reachable, every other name in `down` down.
    fn view(local: &str, up: &[&str], down: &[&str]) -> MembershipView {
        let member = |name: &&str, state| {
            let info = MemberInfo {
                name: name.to_string(),
                cluster_addr: String::new(),
                http_addr: String::new(),
                pid: 0,
                incarnation: 1,
            };
            let member = Member {
                info,
                state,
                since_ms: 1,
            };
            (name.to_string(), member)
        };
        let members: BTreeMap<String, Member> = up
            .iter()
            .map(|name| member(name, MemberState::Up))
            .chain(down.iter().map(|name| member(name, MemberState::Down)))
            .collect();
        MembershipView {
            local: local.to_string(),
            // The expected size that let both sides of a 2|2 split serve.
            expected: 3,
            members,
        }
    }

    fn voters(names: &[&str]) -> Voters {
        Voters::new(names.iter().map(|name| name.to_string()))
    }

    /// Shards `node` serves under `view`.
    fn served(node: &str, view: &MembershipView, voters: &Voters) -> Vec<u32> {
        let assignments = placement(view);
        (0..super::super::CART_SHARDS)
            .filter(|&shard| owner_check(node, shard, view, &assignments, voters).is_ok())
            .collect()
    }

    #[test]
    fn two_sides_of_a_split_never_both_serve() {
        // Four nodes, voters n1..n3: every 2|2 split.
        let voters = voters(&["n1", "n2", "n3"]);
        let all = ["n1", "n2", "n3", "n4"];
        for partner in ["n2", "n3", "n4"] {
            let left = ["n1", partner];
            let right: Vec<&str> = all.iter().copied().filter(|n| !left.contains(n)).collect();
            let side_serves = |side: &[&str], other: &[&str]| {
                side.iter()
                    .any(|node| !served(node, &view(node, side, other), &voters).is_empty())
            };
            let (l, r) = (side_serves(&left, &right), side_serves(&right, &left));
            assert!(!(l && r), "both sides of {left:?} | {right:?} serve carts");
            assert!(l || r, "neither side of {left:?} | {right:?} serves carts");
            // Each side still has its membership quorum of 3: the old rule
            // let both serve.
            assert!(view("n1", &left, &right).has_quorum());
            assert!(view(right[0], &right, &left).has_quorum());
        }
    }

    #[test]
    fn a_majority_of_voters_serves_every_shard_once() {
        let voters = voters(&["n1", "n2", "n3"]);
        let (up, down) = (["n1", "n2", "n4"], ["n3"]);
        let mut owners = vec![0; super::super::CART_SHARDS as usize];
        for node in up {
            for shard in served(node, &view(node, &up, &down), &voters) {
                owners[shard as usize] += 1;
            }
        }
        assert!(owners.iter().all(|&count| count == 1), "{owners:?}");
    }

    #[test]
    fn a_minority_refuses_before_looking_at_the_shard() {
        let voters = voters(&["n1", "n2", "n3"]);
        let minority = view("n3", &["n3", "n4"], &["n1", "n2"]);
        let assignments = placement(&minority);
        for shard in 0..super::super::CART_SHARDS {
            for node in ["n3", "n4"] {
                assert_eq!(
                    owner_check(node, shard, &minority, &assignments, &voters),
                    Err(Refusal::NoMajority)
                );
            }
        }
        // No voter set known yet: no majority either.
        let everyone = view("n1", &["n1", "n2", "n3"], &[]);
        assert_eq!(
            owner_check("n1", 0, &everyone, &placement(&everyone), &Voters::new([])),
            Err(Refusal::NoMajority)
        );
    }

    #[test]
    fn a_backup_keeps_copies_only_from_the_owner_it_sees() {
        let voters = voters(&["n1", "n2", "n3"]);
        let all = ["n1", "n2", "n3"];
        let full = view("n2", &all, &[]);
        let map = placement(&full).shard_map(CART);
        let holders = map.iter().find(|h| h.backups[0] == "n2").unwrap();
        let stranger = all
            .iter()
            .find(|n| **n != holders.owner && **n != "n2")
            .unwrap();
        let shard = holders.shard;
        assert_eq!(
            backup_check("n2", shard, &holders.owner, &full, &voters),
            Ok(())
        );
        // A bridge: n2 sees both sides; the side that believes it owns the
        // shard but is not the owner n2 sees gets no acknowledgement.
        let refused = backup_check("n2", shard, stranger, &full, &voters).unwrap_err();
        assert!(refused.contains("does not own"), "{refused}");
        // Copies of a shard the backup owns itself are refused.
        let own = map.iter().find(|h| h.owner == "n2").unwrap();
        let refused = backup_check("n2", own.shard, "n1", &full, &voters).unwrap_err();
        assert!(refused.contains("itself"), "{refused}");
        // A backup without a majority keeps nothing.
        let cut = view("n2", &["n2", "n4"], &["n1", "n3"]);
        let sender = holders_of(&placement(&cut), shard).unwrap().owner;
        let refused = backup_check("n2", shard, &sender, &cut, &voters).unwrap_err();
        assert!(refused.contains("majority"), "{refused}");
    }
}
