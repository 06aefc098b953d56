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
    let actions = n1.step(Event::Propose(vec![(
        7,
        Proposal::SetStock {
            product_id: 1,
            stock: 5,
        },
    )]));
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
    let actions = nodes[0].step(Event::Propose(vec![(
        1,
        Proposal::Voters(VoterChange::Add("n4".into())),
    )]));
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
    n1.step(Event::Propose(vec![(
        1,
        Proposal::Voters(VoterChange::Remove("n3".into())),
    )]));
    let actions = n1.step(Event::Propose(vec![(
        2,
        Proposal::Voters(VoterChange::Remove("n2".into())),
    )]));
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

fn draft(key: &str, quantity: u32) -> Proposal {
    Proposal::Order(OrderDraft {
        user: "ann".into(),
        key: key.into(),
        items: vec![super::super::model::OrderItem {
            product_id: 1,
            name: "lamp".into(),
            quantity,
            price_cents: 100,
        }],
        total_cents: 100 * u64::from(quantity),
        payment_id: "pay".into(),
        created_ms: 0,
    })
}

#[test]
fn a_batch_is_one_write_and_one_append_per_replica() {
    let names = ["n1", "n2", "n3"];
    let mut nodes: Vec<CheckoutNode> = names.iter().map(|n| node(n, &names)).collect();
    elect(&mut nodes, &names);
    assert_eq!(nodes[0].owned_epoch(), Some((1, true)));
    // Stock is 100: the third order would oversell and is refused, though
    // nothing of the batch is committed when it is checked.
    let batch = vec![
        (1, draft("k1", 60)),
        (2, draft("k2", 30)),
        (3, draft("k3", 20)),
        (4, draft("k1", 60)),
    ];
    let actions = nodes[0].step(Event::Propose(batch));
    let persists: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Persist(_)))
        .collect();
    assert!(
        matches!(persists[..], [Action::Persist(Persist::Replace { from: 3, ref entries })] if entries.len() == 2),
        "one write of both orders: {persists:?}"
    );
    let appends = sends(&actions);
    assert_eq!(appends.len(), 2, "one append per replica: {appends:?}");
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply {
            id: 3,
            outcome: Err(CheckoutFailure::Rejected(_))
        }
    )));
    let queue = appends
        .into_iter()
        .map(|(to, m)| ("n1".to_string(), to, m))
        .collect();
    let replies = settle(&mut nodes, queue);
    for id in [1, 2, 4] {
        assert!(
            replies
                .iter()
                .any(|a| matches!(a, Action::Reply { id: got, outcome: Ok(_) } if *got == id)),
            "proposal {id} answered: {replies:?}"
        );
    }
    assert_eq!(nodes[0].book().available(1), 10);
}

#[test]
fn two_voter_changes_in_one_batch_are_still_one_at_a_time() {
    let names = ["n1", "n2", "n3"];
    let mut nodes: Vec<CheckoutNode> = names.iter().map(|n| node(n, &names)).collect();
    elect(&mut nodes, &names);
    let batch = vec![
        (1, Proposal::Voters(VoterChange::Remove("n3".into()))),
        (2, Proposal::Voters(VoterChange::Remove("n2".into()))),
    ];
    let actions = nodes[0].step(Event::Propose(batch));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply {
            id: 2,
            outcome: Err(CheckoutFailure::VoterChangeRefused(_))
        }
    )));
}
