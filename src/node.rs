//! `bazaar node`: one cluster node in this process.
//!
//! Startup order: validate the configuration and cookie, bind the HTTP
//! port (so a taken port fails before anything joins), write the pid file,
//! install the metrics recorder, start the cluster node, serve the gateway
//! (with `GET /metrics`). SIGTERM or Ctrl-C stops the
//! gateway, leaves the cluster (closing sessions, so peers see the node go
//! at once) and removes the pid file.

use std::path::PathBuf;

use anyhow::Context;
use bazaar_actors::auth::model::{hash_password, TokenKey, DEMO_PASSWORD};
use bazaar_actors::context::{ServiceContext, Snapshots};
use bazaar_cluster::config::is_valid_name;
use bazaar_cluster::listener::tls::TlsFiles;
use bazaar_cluster::{ClusterNode, NodeConfig, Voters};
use tokio::net::TcpListener;

use crate::cli::NodeArgs;
use crate::config;
use crate::gateway::{self, GatewayState};

/// Runs a node until SIGTERM or Ctrl-C.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let _telemetry = crate::telemetry::init(&args.name);
    let cookie = config::load_cookie(args.cookie_file.as_deref())?;
    let token_key = TokenKey::derive(cookie.expose());
    let admin_password = config::load_admin_password(args.admin_password_file.as_deref())?;
    let mut node_config = NodeConfig::new(
        &args.name,
        args.listen,
        args.advertise.clone(),
        args.http.to_string(),
        args.seeds.clone(),
        cookie,
        args.expect,
    )?;
    if let (Some(cert), Some(key), Some(ca)) = (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        node_config = node_config.with_tls(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        });
    }
    let runtime = args.runtime.start(crate::runtime::cores())?;
    runtime.block_on(serve(args, node_config, token_key, admin_password))
}

async fn serve(
    args: NodeArgs,
    node_config: NodeConfig,
    token_key: TokenKey,
    admin_password: Option<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let http = TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", args.http))?;
    let _pid_file = PidFile::write(args.data_dir.join(config::PID_FILE))?;
    let metrics = gateway::metrics::install().context("cannot install the metrics recorder")?;

    let node = ClusterNode::start(node_config, args.http.to_string()).await?;
    let (demo_password_hash, admin_password_hash) = hash_seed_passwords(admin_password).await?;
    if admin_password_hash.is_none() {
        tracing::warn!("no admin password configured: admin routes are unusable on this node");
    }
    let voters = Voters::new(bootstrap_voters(&args)?);
    // Filled by the catalog and search services, read by the gateway.
    let snapshots = Snapshots::default();
    let ctx = ServiceContext {
        node: args.name.clone(),
        workers: ServiceContext::default_workers(),
        token_key: token_key.clone(),
        demo_password_hash,
        admin_password_hash,
        data_dir: args.data_dir.clone(),
        view: node.watch(),
        voters: voters.clone(),
        snapshots: snapshots.clone(),
    };
    let host = bazaar_actors::host::start(ctx, node.watch())
        .await
        .context("cannot start the service host")?;
    let app = gateway::router(
        GatewayState::new(node.watch(), host.status.clone(), voters, token_key)
            .with_metrics(metrics)
            .with_snapshots(snapshots)
            .with_kill_switch(std::env::var_os(config::LAUNCHED_BY_UP_ENV).is_some())
            .with_rate_limit(args.rate_limit),
    );
    tracing::info!(node = %args.name, http = %args.http, "gateway listening");
    gateway::serve::serve(http, app, shutdown_signal()).await;
    tracing::info!(node = %args.name, "shutting down");
    let _ = host
        .actor
        .stop_and_wait(Some("shutdown".into()), None)
        .await;
    node.shutdown().await;
    Ok(())
}

/// Checkout's bootstrap voters: `--voters`, or this node alone in a
/// cluster of one. A multi-node cluster must name them: guessing would let
/// each node believe itself a majority.
fn bootstrap_voters(args: &NodeArgs) -> anyhow::Result<Vec<String>> {
    if let Some(bad) = args.voters.iter().find(|voter| !is_valid_name(voter)) {
        anyhow::bail!("--voters names {bad:?}, which is not a valid node name");
    }
    if !args.voters.is_empty() {
        return Ok(args.voters.clone());
    }
    if args.expect > 1 {
        anyhow::bail!("--voters is required when --expect is above 1 (e.g. --voters n1,n2,n3)");
    }
    Ok(vec![args.name.clone()])
}

/// Hashes the demo users' shared password and the admin password on the
/// blocking pool (argon2 takes tens of milliseconds by design).
async fn hash_seed_passwords(
    admin_password: Option<String>,
) -> anyhow::Result<(String, Option<String>)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let demo = hash_password(DEMO_PASSWORD)?;
        let admin = admin_password
            .map(|password| hash_password(&password))
            .transpose()?;
        Ok((demo, admin))
    })
    .await
    .context("password hashing task failed")?
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
