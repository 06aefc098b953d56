//! The simulator's invariants, checked after every event:
//! - at most one owner per epoch;
//! - an acknowledged order stays at its index in the log of every owner of
//!   a later epoch than the one that confirmed it;
//! - no two nodes ever commit different entries at one index;
//! - one idempotency key maps to one order.

use std::collections::{BTreeMap, BTreeSet};

use super::super::log::Entry;
use super::super::model::{Order, Record};
use super::CheckoutNode;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

/// An order a client was told is confirmed.
#[derive(Debug, Clone)]
struct Ack {
    index: u64,
    order: Order,
    /// Epoch of the owner that confirmed it (it may have been appended in
    /// an earlier epoch and inherited): every owner of a later epoch holds it.
    epoch: u64,
}

/// What the checker remembers across events.
#[derive(Debug, Default)]
pub struct Checker {
    /// Owner of each epoch, as first seen.
    owners: BTreeMap<u64, String>,
    /// (node, epoch) pairs whose log was checked against the acks.
    owners_checked: BTreeSet<(String, u64)>,
    /// The committed log, as every node must agree on it.
    chosen: Vec<Entry<Record>>,
    /// Committed index each node was checked up to (per life).
    checked: BTreeMap<String, u64>,
    /// Index of each key's order in `chosen`.
    keys: BTreeMap<(String, String), u64>,
    /// Acknowledged orders by key.
    acks: BTreeMap<(String, String), Ack>,
}

impl Checker {
    /// A node restarted: its whole committed prefix is checked again. Its
    /// commit hint may be ahead of what was checked in its last life (a
    /// crash can cut a step short after the hint was stored, before the
    /// checker saw the commit), so starting from the hint could skip an
    /// entry.
    pub fn restarted(&mut self, node: &CheckoutNode) {
        self.checked.insert(node.name().to_string(), 0);
    }

    /// A client was told `order` is confirmed, by the owner of `epoch`.
    pub fn acknowledged(
        &mut self,
        order: &Order,
        epoch: u64,
        owners: &[&CheckoutNode],
    ) -> Result<(), Violation> {
        let index = order_index(order)?;
        let key = (order.user.clone(), order.idempotency_key.clone());
        if let Some(earlier) = self.acks.get(&key) {
            if earlier.order.order_id != order.order_id {
                return Err(Violation(format!(
                    "key {key:?} acknowledged as {} and as {}",
                    earlier.order.order_id, order.order_id
                )));
            }
            return Ok(());
        }
        let ack = Ack {
            index,
            order: order.clone(),
            epoch,
        };
        for owner in owners {
            check_ack_in(owner, &ack)?;
        }
        self.acks.insert(key, ack);
        Ok(())
    }

    /// Checks `nodes` (the live ones) after an event.
    pub fn check(&mut self, nodes: &[&CheckoutNode]) -> Result<(), Violation> {
        for node in nodes {
            if let Some((epoch, _)) = node.owned_epoch() {
                self.check_owner(node, epoch)?;
            }
            self.check_committed(node)?;
        }
        Ok(())
    }

    fn check_owner(&mut self, node: &CheckoutNode, epoch: u64) -> Result<(), Violation> {
        let owner = self
            .owners
            .entry(epoch)
            .or_insert_with(|| node.name().to_string());
        if owner != node.name() {
            return Err(Violation(format!(
                "epoch {epoch} owned by both {owner} and {}",
                node.name()
            )));
        }
        if self.owners_checked.insert((node.name().to_string(), epoch)) {
            for ack in self.acks.values() {
                check_ack_in(node, ack)?;
            }
        }
        Ok(())
    }

    fn check_committed(&mut self, node: &CheckoutNode) -> Result<(), Violation> {
        let checked = self.checked.entry(node.name().to_string()).or_default();
        let commit = node.log().commit();
        for entry in &node.log().entries()[*checked as usize..commit as usize] {
            let at = entry.index as usize - 1;
            match self.chosen.get(at) {
                Some(chosen) if chosen == entry => {}
                Some(chosen) => {
                    return Err(Violation(format!(
                        "{} committed {:?} at {}, another node committed {:?}",
                        node.name(),
                        entry,
                        entry.index,
                        chosen
                    )))
                }
                None => {
                    debug_assert_eq!(at, self.chosen.len());
                    if let Record::Order(order) = &entry.record {
                        let key = (order.user.clone(), order.idempotency_key.clone());
                        if let Some(other) = self.keys.insert(key.clone(), entry.index) {
                            return Err(Violation(format!(
                                "key {key:?} committed twice, at {other} and {}",
                                entry.index
                            )));
                        }
                    }
                    self.chosen.push(entry.clone());
                }
            }
        }
        *checked = (*checked).max(commit);
        Ok(())
    }

    /// At the end, after healing: every node holds every acknowledged order.
    pub fn converged(&self, nodes: &[&CheckoutNode]) -> Result<(), Violation> {
        for ack in self.acks.values() {
            for node in nodes {
                let held = node.log().committed().get(ack.index as usize - 1);
                if !matches!(held, Some(Entry { record: Record::Order(order), .. }) if *order == ack.order)
                {
                    return Err(Violation(format!(
                        "acknowledged order {} is not committed on {} after healing (commit {})",
                        ack.order.order_id,
                        node.name(),
                        node.log().commit()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Orders acknowledged so far.
    pub fn acks(&self) -> usize {
        self.acks.len()
    }
}

/// An acknowledged order must be in the log of an owner of a later epoch.
fn check_ack_in(node: &CheckoutNode, ack: &Ack) -> Result<(), Violation> {
    let Some((epoch, _)) = node.owned_epoch() else {
        return Ok(());
    };
    if epoch <= ack.epoch {
        return Ok(());
    }
    let held = node.log().entries().get(ack.index as usize - 1);
    match held {
        Some(Entry {
            record: Record::Order(order),
            ..
        }) if *order == ack.order => Ok(()),
        other => Err(Violation(format!(
            "acknowledged order {} (index {}) lost: owner {} of epoch {epoch} holds {:?} there",
            ack.order.order_id,
            ack.index,
            node.name(),
            other.map(|entry| &entry.record)
        ))),
    }
}

/// The log index an order id `o{epoch}-{index}` names.
fn order_index(order: &Order) -> Result<u64, Violation> {
    order
        .order_id
        .rsplit('-')
        .next()
        .and_then(|index| index.parse().ok())
        .ok_or_else(|| Violation(format!("malformed order id {}", order.order_id)))
}
