//! A deterministic simulator of checkout's ownership core.
//!
//! It runs 3 to 7 [`CheckoutNode`]s, voters and learners, in one thread
//! under a seeded scheduler: messages are delayed, dropped, duplicated and
//! reordered; partitions (halves, one node isolated, one-way, a bridge
//! node seeing both sides) come and go; nodes crash, losing whatever was
//! not persisted (a crash may even cut a step's actions short), and
//! restart from their "disk"; the owner is asked for voter changes; and
//! clients place orders with idempotency keys, retried as real clients
//! retry. The [`checker`] checks the invariants after every event; at the
//! end the network heals and every node must hold every acknowledged order.
//!
//! A failure names its seed; `BAZAAR_SIM_SEED=<seed>` replays exactly that
//! run with a trace of its last events.

mod checker;
mod world;

#[cfg(test)]
mod tests;

pub use world::{run, Shape};

use super::node::CheckoutNode;
