//! The simulated world: nodes with a disk, a lossy network, a failure
//! detector, clients and a nemesis, all driven by one seeded event queue.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::log::{Entry, Persist};
use super::super::model::{OrderItem, Record};
use super::super::node::{
    Action, CheckoutNode, Event, Message, NodeConfig, OrderDraft, Outcome, Proposal, QuorumRule,
    TICK_MS,
};
use super::super::protocol::{CheckoutFailure, VoterChange};
use super::checker::{Checker, Violation};

/// The cluster a run simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Nodes `n1..nN`.
    pub nodes: usize,
    /// The first `voters` nodes are the bootstrap voters.
    pub voters: usize,
    /// Who counts.
    pub rule: QuorumRule,
    /// Simulated ms of faults, before healing.
    pub fault_ms: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Orders acknowledged.
    pub acks: usize,
    /// Highest epoch reached.
    pub epochs: u64,
    /// Batches of more than one proposal stepped at once.
    pub batches: u64,
}

/// Simulated ms after healing for the cluster to converge.
const QUIET_MS: u64 = 12_000;
/// A client gives up on an attempt after this long and retries the key.
const CLIENT_TIMEOUT_MS: u64 = 1_500;
/// Clients placing orders.
const CLIENTS: usize = 3;
/// Events kept for the trace of a failing run.
const TRACE: usize = 60;

#[derive(Debug)]
enum Due {
    Deliver {
        from: usize,
        to: usize,
        message: Message,
    },
    Tick(usize),
    View(usize, Vec<String>),
    Propose {
        node: usize,
        id: u64,
        proposal: Proposal,
    },
    Answer {
        client: usize,
        id: u64,
        /// The epoch the answering owner held (0 for a client timeout).
        epoch: u64,
        outcome: Result<Outcome, CheckoutFailure>,
    },
    Client(usize),
    Nemesis,
    Restart(usize),
}

#[derive(Debug, Default, Clone)]
struct Disk {
    promised: u64,
    entries: Vec<Entry<Record>>,
    commit: u64,
}

#[derive(Debug, Default)]
struct Client {
    /// The key being placed and its attempt number.
    key: Option<(String, u32)>,
    /// Id of the current attempt.
    attempt: u64,
    /// Where to send the next attempt.
    hint: Option<usize>,
    placed: u32,
}

struct World {
    rng: ChaCha8Rng,
    shape: Shape,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Due>,
    names: Vec<String>,
    nodes: Vec<Option<CheckoutNode>>,
    disks: Vec<Disk>,
    /// Directed cuts: messages from .0 to .1 are lost.
    cut: BTreeSet<(usize, usize)>,
    view_at: Vec<u64>,
    clients: Vec<Client>,
    /// Proposal id -> client.
    ids: HashMap<u64, usize>,
    next_id: u64,
    faults: bool,
    checker: Checker,
    trace: VecDeque<String>,
    stats: Stats,
}

/// Runs one seeded schedule over `shape`; the error carries the trace.
pub fn run(seed: u64, shape: &Shape) -> Result<Stats, (Violation, Vec<String>)> {
    let mut world = World::new(seed, shape.clone());
    match world.run() {
        Ok(()) => Ok(world.stats),
        Err(violation) => Err((violation, world.trace.into_iter().collect())),
    }
}

impl World {
    fn new(seed: u64, shape: Shape) -> Self {
        let names: Vec<String> = (1..=shape.nodes).map(|i| format!("n{i}")).collect();
        let voters: BTreeSet<String> = names[..shape.voters].iter().cloned().collect();
        let nodes = names
            .iter()
            .map(|name| {
                let config = NodeConfig {
                    node: name.clone(),
                    bootstrap_voters: voters.clone(),
                    rule: shape.rule.clone(),
                };
                Some(CheckoutNode::restore(config, 0, Vec::new(), 0, stock(), 0))
            })
            .collect();
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            disks: vec![Disk::default(); shape.nodes],
            cut: BTreeSet::new(),
            view_at: vec![0; shape.nodes],
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
            ids: HashMap::new(),
            next_id: 0,
            faults: true,
            checker: Checker::default(),
            trace: VecDeque::new(),
            stats: Stats::default(),
            names,
            shape,
        }
    }

    fn run(&mut self) -> Result<(), Violation> {
        for node in 0..self.shape.nodes {
            let offset = self.rng.random_range(0..TICK_MS);
            self.at(offset, Due::Tick(node));
            self.refresh_view(node, 1);
        }
        for client in 0..CLIENTS {
            self.at(300, Due::Client(client));
        }
        self.at(500, Due::Nemesis);
        let end = self.shape.fault_ms + QUIET_MS;
        while let Some(((time, _), due)) = self.queue.pop_first() {
            if time > end {
                break;
            }
            if self.faults && time >= self.shape.fault_ms {
                self.heal();
            }
            self.now = time;
            self.stats.events += 1;
            self.handle(due)?;
            let live: Vec<&CheckoutNode> = self.nodes.iter().flatten().collect();
            self.checker.check(&live)?;
        }
        let live: Vec<&CheckoutNode> = self.nodes.iter().flatten().collect();
        self.stats.acks = self.checker.acks();
        self.stats.epochs = live.iter().map(|n| n.log().promised()).max().unwrap_or(0);
        self.checker.converged(&live)
    }

    fn at(&mut self, delay: u64, due: Due) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), due);
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("[{:>6} ms] {line}", self.now));
    }

    fn handle(&mut self, due: Due) -> Result<(), Violation> {
        match due {
            Due::Deliver { from, to, message } => {
                if self.cut.contains(&(from, to)) {
                    return Ok(());
                }
                self.note(format!(
                    "{} -> {}: {message:?}",
                    self.names[from], self.names[to]
                ));
                let from = self.names[from].clone();
                self.step(to, |node| node.step(Event::Receive { from, message }))
            }
            Due::Tick(node) => {
                let next = TICK_MS + self.rng.random_range(0..5);
                self.at(next, Due::Tick(node));
                let now = self.now;
                self.step(node, |n| n.tick(now))
            }
            Due::View(node, reachable) => {
                self.note(format!("{} sees {reachable:?}", self.names[node]));
                self.step(node, |n| n.step(Event::Membership { reachable }))
            }
            Due::Propose { node, id, proposal } => {
                // Every proposal due at this node at this instant goes in
                // one batch, as the shell's group commit gathers them.
                let mut batch = vec![(id, proposal)];
                let now = self.now;
                let same: Vec<(u64, u64)> = self
                    .queue
                    .range((now, 0)..(now + 1, 0))
                    .filter(|(_, due)| matches!(due, Due::Propose { node: n, .. } if *n == node))
                    .map(|(key, _)| *key)
                    .collect();
                for key in same {
                    if let Some(Due::Propose { id, proposal, .. }) = self.queue.remove(&key) {
                        batch.push((id, proposal));
                    }
                }
                if batch.len() > 1 {
                    self.stats.batches += 1;
                }
                self.step(node, |n| n.step(Event::Propose(batch)))
            }
            Due::Answer {
                client,
                id,
                epoch,
                outcome,
            } => self.answer(client, id, epoch, outcome),
            Due::Client(client) => {
                self.attempt(client);
                Ok(())
            }
            Due::Nemesis => {
                if self.faults {
                    self.nemesis();
                    let pause = self.rng.random_range(200..1_500);
                    self.at(pause, Due::Nemesis);
                }
                Ok(())
            }
            Due::Restart(node) => {
                self.restart(node);
                Ok(())
            }
        }
    }

    /// Runs `f` on a live node and performs its actions; a rare crash cuts
    /// them short, losing what was not yet persisted or sent.
    fn step(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut CheckoutNode) -> Vec<Action>,
    ) -> Result<(), Violation> {
        let Some(core) = self.nodes[node].as_mut() else {
            return Ok(());
        };
        // The epoch whose owner answers clients in this step: the one it
        // owned before (a commit may make it step down within the step).
        let before = core.owned_epoch();
        let actions = f(core);
        let owned = before.or(core.owned_epoch()).map_or(0, |(epoch, _)| epoch);
        let crash_at = (self.faults && self.rng.random_bool(0.002))
            .then(|| self.rng.random_range(0..=actions.len()));
        for (i, action) in actions.into_iter().enumerate() {
            if crash_at == Some(i) {
                break;
            }
            self.perform(node, owned, action)?;
        }
        if crash_at.is_some() {
            self.crash(node);
        }
        Ok(())
    }

    fn perform(&mut self, node: usize, owned: u64, action: Action) -> Result<(), Violation> {
        match action {
            Action::Persist(persist) => {
                let promised = self.nodes[node].as_ref().map_or(0, |n| n.log().promised());
                let disk = &mut self.disks[node];
                match persist {
                    Persist::Nothing => {}
                    Persist::Promise(epoch) => disk.promised = disk.promised.max(epoch),
                    Persist::Replace { from, entries } => {
                        disk.promised = disk.promised.max(promised);
                        disk.entries.truncate(from as usize - 1);
                        disk.entries.extend(entries);
                    }
                }
            }
            Action::Send { to, message } => {
                let to = self
                    .names
                    .iter()
                    .position(|n| *n == to)
                    .expect("known node");
                self.transmit(node, to, message);
            }
            Action::Reply { id, outcome } => {
                if let Some(&client) = self.ids.get(&id) {
                    let delay = self.rng.random_range(1..10);
                    let epoch = owned;
                    self.at(
                        delay,
                        Due::Answer {
                            client,
                            id,
                            epoch,
                            outcome,
                        },
                    );
                }
            }
            Action::Committed(entries) => {
                // The commit hint is written without fsync: a crash may lose it.
                if self.rng.random_bool(0.5) {
                    if let Some(last) = entries.last() {
                        self.disks[node].commit = last.index;
                    }
                }
            }
            Action::RoleChanged(change) => self.note(format!("{} {change:?}", self.names[node])),
        }
        Ok(())
    }

    fn transmit(&mut self, from: usize, to: usize, message: Message) {
        if self.cut.contains(&(from, to)) || (self.faults && self.rng.random_bool(0.02)) {
            return;
        }
        let copies = if self.faults && self.rng.random_bool(0.02) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.faults && self.rng.random_bool(0.1) {
                self.rng.random_range(10..300)
            } else {
                self.rng.random_range(1..5)
            };
            let message = message.clone();
            self.at(delay, Due::Deliver { from, to, message });
        }
    }

    // ---- clients ---------------------------------------------------------

    fn attempt(&mut self, client: usize) {
        let c = &mut self.clients[client];
        let (key, tries) = c.key.get_or_insert_with(|| {
            c.placed += 1;
            (format!("k{client}-{}", c.placed), 0)
        });
        *tries += 1;
        let key = key.clone();
        self.next_id += 1;
        let id = self.next_id;
        c.attempt = id;
        let node = match c.hint.take() {
            Some(node) => node,
            None => self.rng.random_range(0..self.shape.nodes),
        };
        self.ids.insert(id, client);
        let draft = OrderDraft {
            user: format!("u{client}"),
            key,
            items: vec![OrderItem {
                product_id: 1,
                name: "p".into(),
                quantity: 1,
                price_cents: 100,
            }],
            total_cents: 100,
            payment_id: format!("pay{id}"),
            created_ms: self.now,
        };
        let proposal = Proposal::Order(draft);
        let delay = self.rng.random_range(1..5);
        self.at(delay, Due::Propose { node, id, proposal });
        // Timeouts are checked by a later attempt: an attempt still current
        // after the timeout is retried.
        self.at(
            CLIENT_TIMEOUT_MS,
            Due::Answer {
                client,
                id,
                epoch: 0,
                outcome: Err(CheckoutFailure::Unavailable("client timeout".into())),
            },
        );
    }

    fn answer(
        &mut self,
        client: usize,
        id: u64,
        epoch: u64,
        outcome: Result<Outcome, CheckoutFailure>,
    ) -> Result<(), Violation> {
        if let Ok(Outcome::Order { order, .. }) = &outcome {
            self.note(format!(
                "client {client} acknowledged {} in epoch {epoch}",
                order.order_id
            ));
            let owners: Vec<&CheckoutNode> = self.nodes.iter().flatten().collect();
            self.checker.acknowledged(order, epoch, &owners)?;
        }
        if self.clients[client].attempt != id {
            return Ok(());
        }
        let c = &mut self.clients[client];
        c.attempt = 0;
        let pause = match outcome {
            Ok(_) | Err(CheckoutFailure::Rejected(_)) => {
                c.key = None;
                self.rng.random_range(0..30)
            }
            Err(CheckoutFailure::NotOwner { owner: Some(owner) }) => {
                c.hint = self.names.iter().position(|n| *n == owner);
                2
            }
            Err(_) => self.rng.random_range(20..100),
        };
        // After healing, clients finish their keys and stop.
        if self.faults || c.key.is_some() {
            self.at(pause, Due::Client(client));
        }
        Ok(())
    }

    // ---- faults ----------------------------------------------------------

    fn nemesis(&mut self) {
        let n = self.shape.nodes;
        let pick = self.rng.random_range(0..100);
        match pick {
            0..=14 => self.cut.clear(),
            15..=34 => {
                let mut side: Vec<usize> = (0..n).filter(|_| self.rng.random_bool(0.5)).collect();
                if side.is_empty() {
                    side.push(0);
                }
                self.partition(|a, b| side.contains(&a) != side.contains(&b));
            }
            35..=49 => {
                let alone = self.owner().unwrap_or_else(|| self.rng.random_range(0..n));
                self.partition(|a, b| (a == alone) != (b == alone));
            }
            50..=59 => {
                // One-way: `deaf` hears nobody but is heard.
                let deaf = self.owner().unwrap_or_else(|| self.rng.random_range(0..n));
                self.cut = (0..n).filter(|&a| a != deaf).map(|a| (a, deaf)).collect();
            }
            60..=69 => {
                // A bridge node sees both halves, which do not see each other.
                let bridge = self.rng.random_range(0..n);
                self.partition(|a, b| a != bridge && b != bridge && (a % 2) != (b % 2));
            }
            70..=84 => {
                let node = self.rng.random_range(0..n);
                if self.nodes[node].is_some() {
                    self.crash(node);
                }
            }
            _ => self.change_voters(),
        }
        self.note(format!("nemesis: cut {:?}", self.cut));
        for node in 0..n {
            let delay = self.rng.random_range(200..1_500);
            self.refresh_view(node, delay);
        }
    }

    fn partition(&mut self, apart: impl Fn(usize, usize) -> bool) {
        let n = self.shape.nodes;
        self.cut = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|&(a, b)| a != b && apart(a, b))
            .collect();
    }

    fn owner(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.owned_epoch().is_some()))
    }

    fn change_voters(&mut self) {
        let Some(owner) = self.owner() else { return };
        let voters = self.nodes[owner]
            .as_ref()
            .map(|n| n.voters().clone())
            .unwrap_or_default();
        let learners: Vec<&String> = self.names.iter().filter(|n| !voters.contains(*n)).collect();
        let change = if (self.rng.random_bool(0.5) || voters.len() <= 2) && !learners.is_empty() {
            VoterChange::Add(learners[self.rng.random_range(0..learners.len())].clone())
        } else {
            let voters: Vec<&String> = voters.iter().collect();
            VoterChange::Remove(voters[self.rng.random_range(0..voters.len())].clone())
        };
        self.note(format!("nemesis: {change:?} at {}", self.names[owner]));
        self.next_id += 1;
        let (id, proposal) = (self.next_id, Proposal::Voters(change));
        self.at(
            1,
            Due::Propose {
                node: owner,
                id,
                proposal,
            },
        );
    }

    fn crash(&mut self, node: usize) {
        self.note(format!("{} crashed", self.names[node]));
        self.nodes[node] = None;
        let delay = self.rng.random_range(100..2_000);
        self.at(delay, Due::Restart(node));
        for other in 0..self.shape.nodes {
            let delay = self.rng.random_range(2..30);
            self.refresh_view(other, delay);
        }
    }

    fn restart(&mut self, node: usize) {
        if self.nodes[node].is_some() {
            return;
        }
        let disk = self.disks[node].clone();
        let voters: BTreeSet<String> = self.names[..self.shape.voters].iter().cloned().collect();
        let config = NodeConfig {
            node: self.names[node].clone(),
            bootstrap_voters: voters,
            rule: self.shape.rule.clone(),
        };
        let core = CheckoutNode::restore(
            config,
            disk.promised,
            disk.entries,
            disk.commit,
            stock(),
            self.now,
        );
        self.checker.restarted(&core);
        self.nodes[node] = Some(core);
        self.note(format!("{} restarted", self.names[node]));
        for other in 0..self.shape.nodes {
            let delay = self.rng.random_range(20..300);
            self.refresh_view(other, delay);
        }
    }

    /// Ends the faults: the network heals, crashed nodes come back.
    fn heal(&mut self) {
        self.faults = false;
        self.cut.clear();
        self.note("healed".into());
        for node in 0..self.shape.nodes {
            self.restart(node);
            self.refresh_view(node, 50);
        }
    }

    /// Schedules `node`'s failure detector verdict: the live nodes whose
    /// messages reach it, in placement preference order, after `delay`.
    fn refresh_view(&mut self, node: usize, delay: u64) {
        let reachable: Vec<String> = (0..self.shape.nodes)
            .filter(|&other| {
                other == node || (self.nodes[other].is_some() && !self.cut.contains(&(other, node)))
            })
            .map(|other| self.names[other].clone())
            .collect();
        // Verdicts reach a node in the order they were made.
        let at = (self.now + delay).max(self.view_at[node] + 1);
        self.view_at[node] = at;
        self.at(at - self.now, Due::View(node, reachable));
    }
}

/// One product with stock that never runs out.
fn stock() -> HashMap<u64, u32> {
    HashMap::from([(1, u32::MAX)])
}
