//! Partitions as nftables rules inside the nodes' network namespaces.
//!
//! A [`Firewall`] knows each node's namespace and address and a set of cut
//! directions: `(from, to)` means every packet from node `from` to node
//! `to` is dropped, both as it leaves `from` (its `output` chain) and as
//! it reaches `to` (its `input` chain). Every change rewrites the table
//! `inet bazaar_nemesis` of every namespace in one `nft -f` transaction per
//! namespace. Only packets between nodes are dropped: the test's client
//! reaches every gateway from the root namespace through the bridge's host
//! address, whatever the partition.
//!
//! The shapes ([`Firewall::split`], [`Firewall::isolate`],
//! [`Firewall::one_way`], [`Firewall::bridge`]) replace the whole cut set;
//! [`Firewall::heal`] empties it. [`Flapper`] toggles a random split of
//! the nodes in halves on and off every [`FLAP_PERIOD`].

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rand::seq::SliceRandom;

/// Name of the nftables table the firewall owns in each namespace.
pub const NEMESIS_TABLE: &str = "bazaar_nemesis";

/// How long a flapping partition stays on, then off.
pub const FLAP_PERIOD: Duration = Duration::from_secs(1);

/// The packet filters of a set of namespaces; see the module docs.
pub struct Firewall {
    /// Namespace of each node: `namespaces[0]` is `n1`'s.
    namespaces: Vec<String>,
    /// Address of each node inside its namespace.
    addrs: Vec<Ipv4Addr>,
    /// Directions cut now, as `(from, to)` node numbers.
    cuts: Mutex<BTreeSet<(usize, usize)>>,
}

impl Firewall {
    /// A firewall over `namespaces` and their nodes' `addrs`, nothing cut.
    pub fn new(namespaces: Vec<String>, addrs: Vec<Ipv4Addr>) -> Self {
        assert_eq!(namespaces.len(), addrs.len(), "one address per namespace");
        Self {
            namespaces,
            addrs,
            cuts: Mutex::new(BTreeSet::new()),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The directions cut now.
    pub fn cuts(&self) -> BTreeSet<(usize, usize)> {
        self.cuts.lock().expect("firewall lock").clone()
    }

    /// Nodes in different groups lose each other; every node must be in
    /// exactly one group.
    pub fn split(&self, groups: &[&[usize]]) {
        let mut seen: Vec<usize> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        seen.sort_unstable();
        let all: Vec<usize> = (1..=self.len()).collect();
        assert_eq!(seen, all, "a split puts every node in exactly one group");
        let mut cuts = BTreeSet::new();
        for (a, side) in groups.iter().enumerate() {
            for (b, other) in groups.iter().enumerate() {
                if a != b {
                    cuts.extend(
                        side.iter()
                            .flat_map(|&x| other.iter().map(move |&y| (x, y))),
                    );
                }
            }
        }
        self.apply(cuts);
    }

    /// Node `node` loses every other node, both ways.
    pub fn isolate(&self, node: usize) {
        let rest: Vec<usize> = (1..=self.len()).filter(|&i| i != node).collect();
        self.split(&[&[node], &rest]);
    }

    /// Packets from each node of `from` to each node of `to` are dropped;
    /// the other direction still flows.
    pub fn one_way(&self, from: &[usize], to: &[usize]) {
        let cuts = from
            .iter()
            .flat_map(|&x| to.iter().filter(move |&&y| y != x).map(move |&y| (x, y)))
            .collect();
        self.apply(cuts);
    }

    /// `middle` sees both sides; the nodes of `left` and `right` do not
    /// see each other.
    pub fn bridge(&self, left: &[usize], middle: usize, right: &[usize]) {
        assert!(
            !left.contains(&middle) && !right.contains(&middle),
            "the bridge node is on neither side"
        );
        let mut cuts = BTreeSet::new();
        for &x in left {
            for &y in right {
                cuts.insert((x, y));
                cuts.insert((y, x));
            }
        }
        self.apply(cuts);
    }

    /// Every node sees every other again.
    pub fn heal(&self) {
        self.apply(BTreeSet::new());
    }

    /// Makes `cuts` the directions cut, in every namespace.
    fn apply(&self, cuts: BTreeSet<(usize, usize)>) {
        let mut current = self.cuts.lock().expect("firewall lock");
        for (i, namespace) in self.namespaces.iter().enumerate() {
            let node = i + 1;
            let dropped_in: Vec<Ipv4Addr> = cuts
                .iter()
                .filter(|(_, to)| *to == node)
                .map(|(from, _)| self.addrs[from - 1])
                .collect();
            let dropped_out: Vec<Ipv4Addr> = cuts
                .iter()
                .filter(|(from, _)| *from == node)
                .map(|(_, to)| self.addrs[to - 1])
                .collect();
            nft(namespace, &ruleset(&dropped_in, &dropped_out));
        }
        *current = cuts;
    }
}

/// The `nft -f` script that replaces the nemesis table with one dropping
/// packets from `dropped_in` and to `dropped_out`. Declaring the table
/// before deleting it makes the delete succeed on the first run.
fn ruleset(dropped_in: &[Ipv4Addr], dropped_out: &[Ipv4Addr]) -> String {
    let rule = |field: &str, addrs: &[Ipv4Addr]| -> String {
        if addrs.is_empty() {
            return String::new();
        }
        let list: Vec<String> = addrs.iter().map(Ipv4Addr::to_string).collect();
        format!(" ip {field} {{ {} }} drop;", list.join(", "))
    };
    format!(
        "table inet {NEMESIS_TABLE}\n\
         delete table inet {NEMESIS_TABLE}\n\
         table inet {NEMESIS_TABLE} {{\n\
         chain input {{ type filter hook input priority 0; policy accept;{} }}\n\
         chain output {{ type filter hook output priority 0; policy accept;{} }}\n\
         }}\n",
        rule("saddr", dropped_in),
        rule("daddr", dropped_out)
    )
}

/// Runs `script` through `nft -f -` inside `namespace`; panics on failure.
fn nft(namespace: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn nft in {namespace}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .unwrap_or_else(|e| panic!("write nft script in {namespace}: {e}"));
    let output = child.wait_with_output().expect("wait for nft");
    assert!(
        output.status.success(),
        "nft in {namespace} failed ({}): {}\nscript:\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A thread toggling a random split in halves on and off every
/// [`FLAP_PERIOD`] until stopped; the network is healed when it stops.
pub struct Flapper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u32>>,
}

impl Flapper {
    /// Starts flapping the partitions of `firewall`.
    pub fn start(firewall: Arc<Firewall>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut toggles = 0;
                let mut nodes: Vec<usize> = (1..=firewall.len()).collect();
                while !stop.load(Ordering::Relaxed) {
                    if toggles % 2 == 0 {
                        nodes.shuffle(&mut rand::rng());
                        let (left, right) = nodes.split_at(nodes.len() / 2);
                        firewall.split(&[left, right]);
                    } else {
                        firewall.heal();
                    }
                    toggles += 1;
                    thread::sleep(FLAP_PERIOD);
                }
                firewall.heal();
                toggles
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops flapping, heals, and returns how many times it toggled.
    pub fn stop(mut self) -> u32 {
        self.finish()
    }

    fn finish(&mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(0),
            None => 0,
        }
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.finish();
    }
}
