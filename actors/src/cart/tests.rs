//! The cart's actors in one process: each "node" is a backup actor, a
//! worker and a sync actor over its own store and its own membership view,
//! joined to pg groups scoped by its name, as on separate nodes. Killing a
//! node stops its actors and marks it down in the survivors' views.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::{Duration, Instant};

use bazaar_cluster::{Member, MemberInfo, MemberState, MembershipView, Voters};
use ractor::{Actor, ActorCell};
use tokio::sync::watch;

use super::backup::{CartBackup, CartBackupArgs};
use super::model::{CartChange, RequestId};
use super::owner::Owner;
use super::protocol::CartReply;
use super::store::CartStore;
use super::sync::CartSync;
use super::worker::CartWorker;
use super::{owner_of, shard_map, CartClient, CartClientError, CART_SHARDS};
use crate::service_actor::WorkerActor;

const USER: &str = "user001";
/// How long a refusal without a majority may take, in one process.
const REFUSAL_BUDGET: Duration = Duration::from_millis(100);

/// A node's membership: `(name, incarnation, state)` of every member.
type Members = Vec<(String, u64, MemberState)>;

struct TestNode {
    owner: Owner,
    view: watch::Sender<MembershipView>,
    actors: Vec<ActorCell>,
}

fn view_of(local: &str, members: &Members, expected: usize) -> MembershipView {
    let members = members
        .iter()
        .map(|(name, incarnation, state)| {
            let info = MemberInfo {
                name: name.clone(),
                cluster_addr: String::new(),
                http_addr: String::new(),
                pid: 0,
                incarnation: *incarnation,
            };
            let member = Member {
                info,
                state: *state,
                since_ms: *incarnation,
            };
            (name.clone(), member)
        })
        .collect::<BTreeMap<_, _>>();
    MembershipView {
        local: local.to_string(),
        expected,
        members,
    }
}

/// A voter set of `names`.
fn voters(names: &[&str]) -> Voters {
    Voters::new(names.iter().map(|name| name.to_string()))
}

/// Starts node `name` seeing `members`, expecting as many as `voters`.
async fn start(name: &str, members: &Members, voters: &Voters) -> TestNode {
    let expected = voters.get().len();
    let (view, receiver) = watch::channel(view_of(name, members, expected));
    let owner = Owner {
        node: name.to_string(),
        store: Arc::new(CartStore::new(CART_SHARDS)),
        view: receiver,
        voters: voters.clone(),
    };
    let backup = CartBackupArgs {
        node: owner.node.clone(),
        store: owner.store.clone(),
        view: owner.view.clone(),
        voters: owner.voters.clone(),
    };
    let (backup, _) = Actor::spawn(None, WorkerActor::<CartBackup>::default(), backup)
        .await
        .unwrap();
    let (worker, _) = Actor::spawn(None, WorkerActor::<CartWorker>::default(), owner.clone())
        .await
        .unwrap();
    let (sync, _) = Actor::spawn(None, CartSync, owner.clone()).await.unwrap();
    TestNode {
        owner,
        view,
        actors: vec![backup.get_cell(), worker.get_cell(), sync.get_cell()],
    }
}

impl TestNode {
    fn set_members(&self, members: &Members) {
        let expected = self.view.borrow().expected;
        self.view
            .send_replace(view_of(&self.owner.node, members, expected));
    }

    fn client(&self) -> CartClient {
        CartClient::with_view(self.owner.view.clone())
    }

    async fn kill(self) {
        for actor in self.actors {
            actor.stop_and_wait(None, None).await.unwrap();
        }
    }
}

/// Three nodes named `{prefix}-a`, `-b`, `-c`, all up, all voters.
async fn three(prefix: &str) -> (Vec<TestNode>, Members) {
    let members: Members = ["a", "b", "c"]
        .iter()
        .map(|n| (format!("{prefix}-{n}"), 1, MemberState::Up))
        .collect();
    let names: Vec<&str> = members.iter().map(|(name, _, _)| name.as_str()).collect();
    let voters = voters(&names);
    let mut nodes = Vec::new();
    for (name, _, _) in &members {
        nodes.push(start(name, &members, &voters).await);
    }
    (nodes, members)
}

/// Index of `user`'s owner and backup among `nodes`, in `nodes[0]`'s view.
fn holders(nodes: &[TestNode], user: &str) -> (usize, usize) {
    let view = nodes[0].owner.view.borrow().clone();
    let shard = super::shard_of(user);
    let holders = shard_map(&view)
        .into_iter()
        .find(|h| h.shard == shard)
        .unwrap();
    let index = |name: &str| nodes.iter().position(|n| n.owner.node == name).unwrap();
    (index(&holders.owner), index(&holders.backups[0]))
}

fn add(product_id: u64, quantity: u32) -> CartChange {
    CartChange::Add {
        product_id,
        quantity,
    }
}

#[tokio::test]
async fn a_change_is_acknowledged_once_the_backup_has_it() {
    let (nodes, _) = three("ack").await;
    let (owner, backup) = holders(&nodes, USER);
    let other = 3 - owner - backup;

    let cart = nodes[other]
        .client()
        .change(USER, add(7, 2), RequestId(1))
        .await
        .unwrap();
    assert_eq!(cart.items, BTreeMap::from([(7, 2)]));
    assert_eq!(nodes[owner].owner.store.cart(USER), cart);
    assert_eq!(
        nodes[backup].owner.store.cart(USER),
        cart,
        "acked before the backup had it"
    );
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_retried_change_is_applied_once_even_after_failover() {
    let (mut nodes, mut members) = three("retry").await;
    let (owner, backup) = holders(&nodes, USER);
    let first = nodes[backup]
        .client()
        .change(USER, add(7, 2), RequestId(1))
        .await
        .unwrap();
    let again = nodes[backup]
        .client()
        .change(USER, add(7, 2), RequestId(1))
        .await
        .unwrap();
    assert_eq!(again, first, "a retry on the same owner changes nothing");

    // The owner dies; the survivors see it down.
    let dead = nodes.remove(owner);
    members
        .iter_mut()
        .filter(|(name, _, _)| *name == dead.owner.node)
        .for_each(|member| member.2 = MemberState::Down);
    dead.kill().await;
    for node in &nodes {
        node.set_members(&members);
    }

    // The answer was lost; the client retries through another node.
    let retried = nodes[1]
        .client()
        .change(USER, add(7, 2), RequestId(1))
        .await
        .unwrap();
    assert_eq!(retried.items, BTreeMap::from([(7, 2)]));
    assert_eq!(retried.version, 1, "the retry was applied twice");
    let next = nodes[0]
        .client()
        .change(USER, add(8, 1), RequestId(2))
        .await
        .unwrap();
    assert_eq!(next.version, 2);
    // Both survivors hold it: the promoted backup acked with the new backup.
    for node in &nodes {
        assert_eq!(
            node.owner.store.cart(USER),
            next,
            "{} lags",
            node.owner.node
        );
    }
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_restarted_owner_pulls_its_shards_before_serving() {
    let (mut nodes, mut members) = three("restart").await;
    let (owner, _) = holders(&nodes, USER);
    let name = nodes[owner].owner.node.clone();
    nodes[owner]
        .client()
        .change(USER, add(7, 2), RequestId(1))
        .await
        .unwrap();

    let dead = nodes.remove(owner);
    dead.kill().await;
    let down = |members: &mut Members, state| {
        for member in members.iter_mut().filter(|m| m.0 == name) {
            member.2 = state;
            member.1 += 1;
        }
    };
    down(&mut members, MemberState::Down);
    for node in &nodes {
        node.set_members(&members);
    }
    let changed = nodes[0]
        .client()
        .change(USER, add(8, 1), RequestId(2))
        .await
        .unwrap();

    // Back with an empty store and a new incarnation: it owns the shard
    // again, and must not answer from its empty store.
    down(&mut members, MemberState::Up);
    let back = start(&name, &members, &nodes[0].owner.voters).await;
    for node in &nodes {
        node.set_members(&members);
    }
    assert_eq!(
        owner_of(&back.owner.view.borrow(), USER),
        Some(name.clone())
    );
    match back.owner.get(USER).await {
        CartReply::Cart(cart) => assert_eq!(cart, changed),
        other => panic!("restarted owner answered {other:?}"),
    }
    back.kill().await;
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_node_without_a_majority_of_voters_refuses_at_once() {
    let members: Members = vec![("lone-a".to_string(), 1, MemberState::Up)];
    let node = start("lone-a", &members, &voters(&["lone-a", "lone-b", "lone-c"])).await;
    match node.owner.get(USER).await {
        CartReply::NoMajority(reason) => assert!(reason.contains("majority"), "{reason}"),
        other => panic!("a lone node answered {other:?}"),
    }
    let started = Instant::now();
    let refused = node.client().change(USER, add(1, 1), RequestId(1)).await;
    let took = started.elapsed();
    assert!(
        matches!(refused, Err(CartClientError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(took < REFUSAL_BUDGET, "the refusal took {took:?}");
    node.kill().await;
}

#[tokio::test]
async fn a_minority_refuses_at_once_through_any_of_its_nodes() {
    // Voters a, b, c; c and the non-voter d see only each other.
    let names = ["minor-a", "minor-b", "minor-c", "minor-d"];
    let members: Members = names
        .iter()
        .map(|name| {
            let state = if name.ends_with('a') || name.ends_with('b') {
                MemberState::Down
            } else {
                MemberState::Up
            };
            (name.to_string(), 1, state)
        })
        .collect();
    let voters = voters(&names[..3]);
    let c = start(names[2], &members, &voters).await;
    let d = start(names[3], &members, &voters).await;
    // A user whose owner, as d sees it, is c: d's client asks c first.
    let user = (0..100)
        .map(|i| format!("user{i:03}"))
        .find(|user| owner_of(&d.owner.view.borrow(), user).as_deref() == Some(names[2]))
        .expect("some user is owned by c");
    for node in [&c, &d] {
        let started = Instant::now();
        let refused = node.client().change(&user, add(1, 1), RequestId(1)).await;
        let took = started.elapsed();
        assert!(
            matches!(refused, Err(CartClientError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(
            took < REFUSAL_BUDGET,
            "{}: the refusal took {took:?}",
            node.owner.node
        );
    }
    assert!(c.owner.store.is_empty() && d.owner.store.is_empty());
    c.kill().await;
    d.kill().await;
}

#[tokio::test]
async fn a_bridge_backup_acknowledges_only_the_owner_it_sees() {
    // b sees everyone; a and c each see only b: both reach a majority.
    let (nodes, members) = three("bridge").await;
    let name = |i: usize| nodes[i].owner.node.clone();
    let cut = |hidden: usize| {
        let mut view = members.clone();
        view[hidden].2 = MemberState::Down;
        view
    };
    nodes[0].set_members(&cut(2));
    nodes[2].set_members(&cut(0));
    // A user that a owns in its view, while b sees c as the owner.
    let user = (0..1000)
        .map(|i| format!("user{i:03}"))
        .find(|user| {
            owner_of(&nodes[0].owner.view.borrow(), user) == Some(name(0))
                && owner_of(&nodes[1].owner.view.borrow(), user) == Some(name(2))
        })
        .expect("some user is owned by a in a's view and by c in b's");
    match nodes[0].owner.change(&user, add(1, 1), RequestId(1)).await {
        CartReply::Unavailable(reason) => assert!(reason.contains("does not own"), "{reason}"),
        other => panic!("a got {other:?} through a backup that sees c as the owner"),
    }
    match nodes[2].owner.change(&user, add(2, 1), RequestId(2)).await {
        CartReply::Cart(cart) => assert_eq!(cart.items, BTreeMap::from([(2, 1)])),
        other => panic!("c, the owner b sees, got {other:?}"),
    }
    assert_eq!(
        nodes[1].owner.store.cart(&user).items,
        BTreeMap::from([(2, 1)])
    );
    for node in nodes {
        node.kill().await;
    }
}

#[tokio::test]
async fn a_node_that_does_not_own_the_shard_names_the_owner() {
    let (nodes, members) = three("redirect").await;
    let (owner, backup) = holders(&nodes, USER);
    match nodes[backup].owner.get(USER).await {
        CartReply::NotOwner { owner: named } => {
            assert_eq!(named.as_deref(), Some(nodes[owner].owner.node.as_str()))
        }
        other => panic!("a backup answered {other:?}"),
    }
    // A client whose view is stale (the owner seems down) is redirected.
    let mut stale = members.clone();
    stale[owner].2 = MemberState::Down;
    let (_keep, view) = watch::channel(view_of("client", &stale, 3));
    let cart = CartClient::with_view(view)
        .change(USER, add(3, 1), RequestId(9))
        .await
        .unwrap();
    assert_eq!(nodes[owner].owner.store.cart(USER), cart);
    for node in nodes {
        node.kill().await;
    }
}
