//! `bazaar`: the process side of Bazaar — the command line, node processes,
//! the HTTP gateway, and the local cluster launcher.
//!
//! - [`cli`]: the commands and their flags;
//! - [`config`]: every default in one place, and the cluster cookie;
//! - [`node`]: `bazaar node`, one cluster node in this process;
//! - [`gateway`]: the HTTP API every node serves;
//! - [`launcher`]: `bazaar up`, a local cluster of child processes;
//! - [`control`]: `bazaar status` and `bazaar kill`;
//! - [`voters`]: `bazaar voters add|remove`, checkout's voter set;
//! - [`demo`]: `bazaar demo`, the kill-a-node story with numbers;
//! - [`bench`]: `bazaar bench`, message throughput next to baselines;
//! - [`load`]: `bazaar load`, open-loop HTTP load on the shop;
//! - [`runtime`]: worker threads and lane busy polling, and how processes
//!   on one machine share the cores;
//! - [`telemetry`]: structured logs.

pub mod bench;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod gateway;
pub mod launcher;
pub mod load;
pub mod node;
pub mod runtime;
pub mod telemetry;
pub mod voters;
