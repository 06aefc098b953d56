//! The command line: `bazaar node | up | status | kill`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config;

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
    /// Run one cluster node in this process.
    Node(NodeArgs),
    /// Start a whole local cluster, restart nodes that die, stop all on Ctrl-C.
    Up(UpArgs),
    /// Show the cluster as one node sees it.
    Status(StatusArgs),
    /// SIGKILL a node started by `bazaar up`.
    Kill(KillArgs),
}

/// Flags of `bazaar node`. The cookie comes from `BAZAAR_COOKIE` or `--cookie-file`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Node name, unique in the cluster.
    #[arg(long)]
    pub name: String,
    /// Address the cluster listener binds to (only this address).
    #[arg(long, default_value = "127.0.0.1:7071")]
    pub listen: SocketAddr,
    /// Address the HTTP gateway binds to.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub http: SocketAddr,
    /// Cluster address of a node to join; repeatable.
    #[arg(long = "seed")]
    pub seeds: Vec<String>,
    /// Address peers must dial, when it differs from --listen (HOST:PORT).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Directory for this node's files (pid file, later its journal).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Expected cluster size; a node needs a majority of it for quorum.
    #[arg(long, default_value_t = 1)]
    pub expect: usize,
    /// File holding the cluster cookie (instead of BAZAAR_COOKIE).
    #[arg(long)]
    pub cookie_file: Option<PathBuf>,
    /// File holding the admin password (instead of BAZAAR_ADMIN_PASSWORD).
    #[arg(long)]
    pub admin_password_file: Option<PathBuf>,
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
