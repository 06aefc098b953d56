//! `bazaar node`: one cluster node in this process.
//!
//! Startup order: validate the configuration and cookie, bind the HTTP
//! port (so a taken port fails before anything joins), write the pid file,
//! start the cluster node, serve the gateway. SIGTERM or Ctrl-C stops the
//! gateway, leaves the cluster (closing sessions, so peers see the node go
//! at once) and removes the pid file.

use std::path::PathBuf;

use anyhow::Context;
use bazaar_cluster::{ClusterNode, NodeConfig};
use tokio::net::TcpListener;

use crate::cli::NodeArgs;
use crate::config;
use crate::gateway::{self, GatewayState};

/// Runs a node until SIGTERM or Ctrl-C.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    crate::telemetry::init();
    let cookie = config::load_cookie(args.cookie_file.as_deref())?;
    let node_config = NodeConfig::new(
        &args.name,
        args.listen,
        args.advertise.clone(),
        args.http.to_string(),
        args.seeds.clone(),
        cookie,
        args.expect,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, node_config))
}

async fn serve(args: NodeArgs, node_config: NodeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let http = TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
    let _pid_file = PidFile::write(args.data_dir.join(config::PID_FILE))?;

    let node = ClusterNode::start(node_config, args.http.to_string()).await?;
    let app = gateway::router(GatewayState::new(node.watch()));
    tracing::info!(node = %args.name, http = %args.http, "gateway listening");
    axum::serve(http, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("gateway failed")?;
    tracing::info!(node = %args.name, "shutting down");
    node.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The node's pid file, removed when the node stops.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: PathBuf) -> anyhow::Result<Self> {
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write pid file {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
