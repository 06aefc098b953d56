//! The command line: `bazaar node | up | status | kill | voters | demo | bench | load`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::plan::{self as bench_plan, Workload};
use crate::config;
use crate::runtime::RuntimeArgs;

/// Bazaar: an online store built as microservices on a ractor actor cluster.
#[derive(Debug, Parser)]
#[command(name = "bazaar", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one cluster node in this process (boxed: its flags outweigh
    /// every other command's).
    Node(Box<NodeArgs>),
    /// Start a whole local cluster, restart nodes that die, stop all on Ctrl-C.
    Up(UpArgs),
    /// Show the cluster as one node sees it.
    Status(StatusArgs),
    /// SIGKILL a node started by `bazaar up`.
    Kill(KillArgs),
    /// Grow or shrink checkout's voter set, one node at a time.
    Voters(VotersArgs),
    /// Kill the checkout owner under load and report the recovery, with numbers.
    Demo(DemoArgs),
    /// Measure message throughput, local and across two processes, next to baselines.
    Bench(BenchArgs),
    /// Load the shop over HTTP at a fixed rate with a mix of user flows; report latency and errors.
    Load(crate::load::plan::LoadArgs),
    /// The far side of `bazaar bench`, started by it.
    #[command(hide = true)]
    BenchPeer(BenchPeerArgs),
}

/// Flags of `bazaar node`, each also read from an environment variable
/// (`--data-dir` from `BAZAAR_DATA_DIR`, `--seed` from `BAZAAR_SEEDS` as a
/// comma list; `--help` names them all); a flag wins over its variable.
/// The cookie comes from `BAZAAR_COOKIE` or `--cookie-file`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Node name, unique in the cluster.
    #[arg(long, env = "BAZAAR_NAME")]
    pub name: String,
    /// Address the cluster listener binds to (only this address).
    #[arg(long, env = "BAZAAR_LISTEN", default_value = "127.0.0.1:7071")]
    pub listen: SocketAddr,
    /// Address the HTTP gateway binds to.
    #[arg(long, env = "BAZAAR_HTTP", default_value = "127.0.0.1:8081")]
    pub http: SocketAddr,
    /// Cluster address of a node to join (HOST:PORT, a DNS name is
    /// resolved again on every dial, to each of its addresses); repeatable,
    /// or a comma list in BAZAAR_SEEDS.
    #[arg(long = "seed", env = "BAZAAR_SEEDS", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// Address peers must dial, when it differs from --listen (HOST:PORT).
    #[arg(long, env = "BAZAAR_ADVERTISE")]
    pub advertise: Option<String>,
    /// Directory for this node's files (pid file, checkout journal).
    #[arg(long, env = "BAZAAR_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Expected cluster size: membership readiness (`/readyz`) waits until
    /// a majority of it is reachable. Checkout and carts count voters instead.
    #[arg(long, env = "BAZAAR_EXPECT", default_value_t = 1)]
    pub expect: usize,
    /// Checkout's voters when its journal holds none yet (comma list of
    /// node names); required with --expect above 1, else this node alone.
    #[arg(long, env = "BAZAAR_VOTERS", value_delimiter = ',')]
    pub voters: Vec<String>,
    /// Requests a second one client address may make to the gateway
    /// (bursts of twice that); more are answered 429. 0: no limit.
    #[arg(long, env = "BAZAAR_RATE_LIMIT", default_value_t = crate::gateway::limits::RATE_PER_SEC,
          value_parser = crate::gateway::limits::parse_rate_limit)]
    pub rate_limit: f64,
    /// File holding the cluster cookie (instead of BAZAAR_COOKIE).
    #[arg(long, env = "BAZAAR_COOKIE_FILE")]
    pub cookie_file: Option<PathBuf>,
    /// File holding the admin password (instead of BAZAAR_ADMIN_PASSWORD).
    #[arg(long, env = "BAZAAR_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// PEM certificate of this node: turns on mutual TLS between nodes
    /// (with --tls-key and --tls-ca).
    #[arg(long, env = "BAZAAR_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "BAZAAR_TLS_KEY", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate of the CA that signs every node's certificate.
    #[arg(long, env = "BAZAAR_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// Runtime flags.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Flags of `bazaar up`.
#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = config::DEFAULT_NODES)]
    pub nodes: usize,
    /// Directory holding the cookie and one directory per node.
    #[arg(long, default_value = config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HTTP port of n1; node i listens on this + i - 1.
    #[arg(long, default_value_t = config::DEFAULT_HTTP_PORT)]
    pub http_port: u16,
    /// Cluster port of n1; node i listens on this + i - 1.
    #[arg(long, default_value_t = config::DEFAULT_CLUSTER_PORT)]
    pub cluster_port: u16,
    /// Seconds before a dead node is started again; 0 never restarts.
    #[arg(long, default_value_t = config::DEFAULT_RESPAWN_AFTER_SECS)]
    pub respawn_after: u64,
    /// Mutual TLS between nodes, with a throwaway CA and certificates
    /// generated into DIR/tls.
    #[arg(long)]
    pub tls: bool,
    /// Checkout's voters (comma list of node names); default: the first
    /// min(N, 5) nodes.
    #[arg(long, value_delimiter = ',')]
    pub voters: Vec<String>,
    /// `--rate-limit` of every node: requests a second per client address
    /// (0: no limit, to benchmark from this machine) [default: the node's].
    #[arg(long, value_parser = crate::gateway::limits::parse_rate_limit)]
    pub rate_limit: Option<f64>,
    /// Replace the cluster cookie kept in DIR/cookie with a new one. Tokens
    /// are signed with a key derived from the cookie, so this signs every
    /// user out; without it `up` keeps the cookie (and the admin password)
    /// of an existing data dir, and sessions survive a restart.
    #[arg(long)]
    pub rotate_cookie: bool,
    /// Runtime flags, passed to every node.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Flags of `bazaar status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Gateway of the node to ask.
    #[arg(long, default_value = config::DEFAULT_STATUS_URL)]
    pub at: String,
    /// Print the raw JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `bazaar kill`.
#[derive(Debug, Args, Clone)]
pub struct KillArgs {
    /// Name of the node to kill (`n2`).
    pub node: String,
    /// Data directory given to `bazaar up`.
    #[arg(long, default_value = config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// `bazaar voters add|remove NODE`.
#[derive(Debug, Args, Clone)]
pub struct VotersArgs {
    /// The change.
    #[command(subcommand)]
    pub change: VotersCommand,
}

/// One change of checkout's voter set.
#[derive(Debug, Subcommand, Clone)]
pub enum VotersCommand {
    /// Make NODE, a running member, a voter.
    Add(VoterTarget),
    /// Make the voter NODE a learner (it may be down).
    Remove(VoterTarget),
}

/// Which node to change, and where and how to ask. The admin password
/// comes from `DIR/admin-password` with --data-dir, else from
/// BAZAAR_ADMIN_PASSWORD, else from ./bazaar-data/admin-password.
#[derive(Debug, Args, Clone)]
pub struct VoterTarget {
    /// The node (`n4`).
    pub node: String,
    /// Gateway of the node to ask.
    #[arg(long, default_value = config::DEFAULT_STATUS_URL)]
    pub at: String,
    /// Data directory given to `bazaar up` (for its admin-password file).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Flags of `bazaar bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Messages per measurement [default: 200000 per cast or fan-in run (at most
    /// 256 MiB of payload), 20000 per sequential call run, 100000 per pipelined call run].
    #[arg(long)]
    pub messages: Option<u64>,
    /// Calls in flight in the pipelined call variants (1: sequential only).
    #[arg(long, default_value_t = bench_plan::DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Stop each measurement after this many seconds if --messages is not reached first.
    #[arg(long, default_value_t = bench_plan::DEFAULT_DURATION_SECS)]
    pub duration: f64,
    /// Payload size in bytes (32, 1k, 16k); repeatable [default: 32, 1k, 16k].
    #[arg(long = "payload", value_parser = bench_plan::parse_size)]
    pub payloads: Vec<usize>,
    /// Workload to run; repeatable [default: all].
    #[arg(long = "workload", value_enum)]
    pub workloads: Vec<Workload>,
    /// Repeat each measurement this many times; the report shows the median and min/max.
    #[arg(long, default_value_t = bench_plan::DEFAULT_RUNS)]
    pub runs: usize,
    /// Print JSON on stdout instead of a table (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Runtime flags, of this process and of the peer it starts.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Flags of the hidden `bazaar bench-peer`.
#[derive(Debug, Args, Clone)]
pub struct BenchPeerArgs {
    /// Address to listen on; port 0 picks free ports for the cluster and TCP listeners.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Runtime flags, as the driver passes them.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Flags of `bazaar demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Number of nodes of the demo cluster.
    #[arg(long, default_value_t = config::DEFAULT_NODES)]
    pub nodes: usize,
    /// Data directory of the demo cluster (or of the cluster to attach to).
    #[arg(long, default_value = config::DEFAULT_DEMO_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HTTP port of n1 (node i: this + i - 1).
    #[arg(long, default_value_t = config::DEFAULT_DEMO_HTTP_PORT)]
    pub http_port: u16,
    /// Cluster port of n1 (node i: this + i - 1).
    #[arg(long, default_value_t = config::DEFAULT_DEMO_CLUSTER_PORT)]
    pub cluster_port: u16,
    /// Use the cluster `bazaar up` runs in --data-dir instead of starting
    /// one, at the nodes it records in DIR/nodes.json (--nodes and the
    /// ports are then ignored).
    #[arg(long)]
    pub attach: bool,
    /// Seconds of load before the kill.
    #[arg(long, default_value_t = 3.0)]
    pub load_secs: f64,
    /// Leave the demo cluster running at the end.
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variables of `bazaar node` a deployment sets, with values.
    const NODE_ENV: [(&str, &str); 10] = [
        ("BAZAAR_NAME", "bazaar-checkout-1"),
        ("BAZAAR_LISTEN", "10.0.0.2:7071"),
        ("BAZAAR_HTTP", "10.0.0.2:8081"),
        ("BAZAAR_SEEDS", "bazaar-seeds:7071,10.0.0.9:7071"),
        ("BAZAAR_ADVERTISE", "bazaar-checkout-1.bazaar-seeds:7071"),
        ("BAZAAR_DATA_DIR", "/var/lib/bazaar"),
        ("BAZAAR_EXPECT", "3"),
        ("BAZAAR_VOTERS", "a,b,c"),
        ("BAZAAR_WORKERS", "2"),
        ("BAZAAR_BUSY_POLL_US", "0"),
    ];

    fn node_args(argv: &[&str]) -> Result<NodeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["bazaar", "node"].iter().chain(argv))?;
        match cli.command {
            Command::Node(args) => Ok(*args),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// One test, so that no other test of this binary sees the variables.
    #[test]
    fn node_flags_come_from_the_environment_and_flags_win() {
        for (key, value) in NODE_ENV {
            std::env::set_var(key, value);
        }
        let from_env = node_args(&[]);
        let overridden = node_args(&["--name", "x", "--seed", "h:1", "--expect", "1"]);
        std::env::set_var("BAZAAR_EXPECT", "three");
        let malformed = node_args(&[]);
        for (key, _) in NODE_ENV {
            std::env::remove_var(key);
        }
        let missing_name = node_args(&["--data-dir", "d"]);

        let args = from_env.expect("parse from the environment");
        assert_eq!(args.name, "bazaar-checkout-1");
        assert_eq!(args.listen.to_string(), "10.0.0.2:7071");
        assert_eq!(args.http.to_string(), "10.0.0.2:8081");
        assert_eq!(args.seeds, ["bazaar-seeds:7071", "10.0.0.9:7071"]);
        assert_eq!(
            args.advertise.as_deref(),
            Some("bazaar-checkout-1.bazaar-seeds:7071")
        );
        assert_eq!(args.data_dir, PathBuf::from("/var/lib/bazaar"));
        assert_eq!(args.expect, 3);
        assert_eq!(args.voters, ["a", "b", "c"]);
        assert_eq!(args.runtime.workers, Some(2));
        assert_eq!(args.runtime.busy_poll_us, 0);

        let args = overridden.expect("parse flags over the environment");
        assert_eq!(args.name, "x");
        assert_eq!(args.seeds, ["h:1"]);
        assert_eq!(args.expect, 1);
        assert_eq!(args.voters, ["a", "b", "c"], "unset flags still read");

        let error = malformed.expect_err("BAZAAR_EXPECT=three is no number");
        assert!(error.to_string().contains("three"), "{error}");
        let error = missing_name.expect_err("no --name and no BAZAAR_NAME");
        assert!(error.to_string().contains("--name"), "{error}");
    }
}
