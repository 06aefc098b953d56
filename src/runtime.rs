//! How a `bazaar` process runs: the worker threads of its async runtime and
//! how long its lanes busy-poll, and how a command that starts several
//! processes on one machine shares the cores between them.
//!
//! A runtime with more worker threads than its share of the cores loses
//! to wake-ups: an idle worker parks, a task scheduled for it wakes it
//! through the kernel, and on a virtual machine each such wake-up costs
//! tens of microseconds (measured with `bazaar bench` on a 2-core VM:
//! 64 calls in flight between two processes made 165k round trips/s with
//! 2 workers each, 367k/s with 1). So `bazaar up` and `bazaar bench` give
//! each process it starts `cores / processes` workers (at least one),
//! while a lone `bazaar node` takes every core. `--workers` overrides both.

use anyhow::Context;
use clap::Args;
use tokio::runtime::Runtime;

/// Runtime flags, shared by `node`, `up`, `bench` and `bench-peer`.
#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct RuntimeArgs {
    /// Worker threads of the async runtime [default: every core for `node`;
    /// `up` and `bench` split the cores between the processes they start].
    #[arg(long, env = "BAZAAR_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Microseconds a lane keeps polling its socket after traffic before
    /// it sleeps (lower latency for CPU while messages flow; 0: never poll).
    #[arg(long, env = "BAZAAR_BUSY_POLL_US", default_value_t = default_busy_poll_us())]
    pub busy_poll_us: u64,
}

fn default_busy_poll_us() -> u64 {
    bazaar_cluster::lane::DEFAULT_BUSY_POLL.as_micros() as u64
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// Workers each of `processes` processes gets when they share the cores.
pub fn share_of_cores(processes: usize) -> usize {
    (cores() / processes.max(1)).max(1)
}

impl RuntimeArgs {
    /// Worker threads: `--workers` if given, else `default`.
    pub fn workers_or(&self, default: usize) -> usize {
        self.workers.map_or(default, usize::from)
    }

    /// Builds the runtime with [`workers_or`](Self::workers_or)`(default)`
    /// threads and sets this process's lane busy-poll window.
    pub fn start(&self, default_workers: usize) -> anyhow::Result<Runtime> {
        bazaar_cluster::lane::set_busy_poll(std::time::Duration::from_micros(self.busy_poll_us));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers_or(default_workers))
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    }

    /// Flags for one of `processes` `bazaar` processes started on this
    /// machine: `--workers` as given, else its share of the cores.
    pub fn child_flags(&self, processes: usize) -> Vec<String> {
        vec![
            "--workers".into(),
            self.workers_or(share_of_cores(processes)).to_string(),
            "--busy-poll-us".into(),
            self.busy_poll_us.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(workers: Option<u16>) -> RuntimeArgs {
        RuntimeArgs {
            workers,
            busy_poll_us: 50,
        }
    }

    #[test]
    fn children_share_the_cores_unless_workers_are_given() {
        let shared = share_of_cores(3).to_string();
        assert_eq!(
            args(None).child_flags(3),
            ["--workers", shared.as_str(), "--busy-poll-us", "50"]
        );
        assert_eq!(args(Some(4)).child_flags(3)[1], "4");
        assert_eq!(share_of_cores(usize::MAX), 1);
        assert_eq!(share_of_cores(0), cores());
    }
}
