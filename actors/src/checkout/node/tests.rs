//! Unit tests of the ownership core: a few hand-driven exchanges. The
//! simulator (`checkout::sim`) explores the schedules.

use std::collections::{BTreeSet, HashMap};

use super::super::log::{AppendReply, PromiseReply};
use super::super::protocol::VoterChange;
use super::*;

fn node(name: &str, voters: &[&str]) -> CheckoutNode {
    let config = NodeConfig {
        node: name.to_string(),
        bootstrap_voters: voters.iter().map(|v| v.to_string()).collect(),
        rule: QuorumRule::Voters,
    };
    CheckoutNode::restore(config, 0, Vec::new(), 0, HashMap::from([(1, 100)]), 0)
}

fn reachable(names: &[&str]) -> Event {
    Event::Membership {
        reachable: names.iter().map(|n| n.to_string()).collect(),
    }
}

fn sends(actions: &[Action]) -> Vec<(String, Message)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send { to, message } => Some((to.clone(), message.clone())),
            _ => None,
        })
        .collect()
}

/// Delivers every message among `nodes` until none is left.
fn settle(nodes: &mut [CheckoutNode], mut queue: Vec<(String, String, Message)>) -> Vec<Action> {
    let mut all = Vec::new();
    while let Some((from, to, message)) = queue.pop() {
        let Some(target) = nodes.iter_mut().find(|n| n.name() == to) else {
            continue;
        };
        let actions = target.step(Event::Receive { from, message });
        for (next, message) in sends(&actions) {
            queue.insert(0, (to.clone(), next, message));
        }
        all.extend(actions);
    }
    all
}

fn elect(nodes: &mut [CheckoutNode], names: &[&str]) {
    for n in nodes.iter_mut() {
        n.step(reachable(names));
    }
    let actions = nodes[0].tick(PROMOTE_GRACE_MS);
    let queue = sends(&actions)
        .into_iter()
        .map(|(to, m)| (nodes[0].name().to_string(), to, m))
        .collect();
    settle(nodes, queue);
}

#[test]
fn a_single_voter_owns_and_commits_alone() {
    let mut n1 = node("n1", &["n1"]);
    n1.step(reachable(&["n1"]));
    n1.tick(PROMOTE_GRACE_MS);
    assert_eq!(n1.owned_epoch(), Some((1, true)));
    let actions = n1.step(Event::Propose {
        id: 7,
        proposal: Proposal::SetStock {
            product_id: 1,
            stock: 5,
        },
    });
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply {
            id: 7,
            outcome: Ok(Outcome::Stock)
        }
    )));
    assert_eq!(n1.book().available(1), 5);
}

#[test]
fn learners_never_campaign_and_their_promises_do_not_count() {
    let voters = ["n1", "n2", "n3"];
    let mut n4 = node("n4", &voters);
    n4.step(reachable(&["n4", "n5", "n1", "n2", "n3"]));
    assert!(n4.tick(PROMOTE_FALLBACK_MS * 2).is_empty());
    assert!(!n4.is_voter());

    // n1 reaches only learners: no candidacy, however many nodes it sees.
    let mut n1 = node("n1", &voters);
    n1.step(reachable(&["n1", "n4", "n5"]));
    assert!(n1.tick(PROMOTE_FALLBACK_MS * 2).is_empty());
}

#[test]
fn an_owner_commits_with_a_majority_of_voters_and_learners_follow() {
    let names = ["n1", "n2", "n3", "n4"];
    let mut nodes: Vec<CheckoutNode> = names.iter().map(|n| node(n, &names[..3])).collect();
    elect(&mut nodes, &names);
    assert_eq!(nodes[0].owned_epoch(), Some((1, true)));
    assert_eq!(nodes[3].owner(), Some(("n1", 1)));
    let actions = nodes[0].step(Event::Propose {
        id: 1,
        proposal: Proposal::Voters(VoterChange::Add("n4".into())),
    });
    let queue = sends(&actions)
        .into_iter()
        .map(|(to, m)| ("n1".to_string(), to, m))
        .collect();
    let replies = settle(&mut nodes, queue);
    assert!(replies.iter().any(
        |a| matches!(a, Action::Reply { id: 1, outcome: Ok(Outcome::Voters(v)) } if v.len() == 4)
    ));
    let expected: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
    assert_eq!(nodes[0].voters(), &expected);
}

#[test]
fn a_second_voter_change_waits_for_the_first() {
    let mut n1 = node("n1", &["n1", "n2", "n3"]);
    n1.step(reachable(&["n1", "n2", "n3"]));
    n1.tick(PROMOTE_GRACE_MS);
    for peer in ["n2", "n3"] {
        n1.step(Event::Receive {
            from: peer.into(),
            message: Message::Promise {
                epoch: 1,
                reply: PromiseReply::Promised {
                    last_index: 0,
                    last_epoch: 0,
                },
            },
        });
    }
    n1.step(Event::Receive {
        from: "n2".into(),
        message: Message::Appended {
            epoch: 1,
            reply: AppendReply::Stored { last_index: 2 },
        },
    });
    assert_eq!(n1.owned_epoch(), Some((1, true)));
    n1.step(Event::Propose {
        id: 1,
        proposal: Proposal::Voters(VoterChange::Remove("n3".into())),
    });
    let actions = n1.step(Event::Propose {
        id: 2,
        proposal: Proposal::Voters(VoterChange::Remove("n2".into())),
    });
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply {
            id: 2,
            outcome: Err(CheckoutFailure::VoterChangeRefused(_))
        }
    )));
}

#[test]
fn a_voter_refuses_a_candidate_that_is_not_a_voter() {
    let mut n2 = node("n2", &["n1", "n2", "n3"]);
    let actions = n2.step(Event::Receive {
        from: "n4".into(),
        message: Message::Prepare {
            epoch: 5,
            owner_down: None,
        },
    });
    assert_eq!(
        sends(&actions),
        [(
            "n4".to_string(),
            Message::Promise {
                epoch: 5,
                reply: PromiseReply::Refused { promised: 0 }
            }
        )]
    );
    assert_eq!(n2.log().promised(), 0);
}
