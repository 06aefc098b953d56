//! Where each node of a local cluster lives: names, ports, directories,
//! and the check that every port is free before anything starts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bazaar_cluster::listener::tls::TlsFiles;

/// One node of the local cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    /// `n1`, `n2`, ...
    pub name: String,
    /// Cluster listen address.
    pub cluster: SocketAddr,
    /// Gateway address.
    pub http: SocketAddr,
    /// The node's own data directory.
    pub data_dir: PathBuf,
    /// Its TLS material under `bazaar up --tls`.
    pub tls: Option<TlsFiles>,
    /// Runtime flags ([`crate::runtime::RuntimeArgs::child_flags`]).
    pub runtime: Vec<String>,
    /// Checkout's bootstrap voters, the same on every node.
    pub voters: Vec<String>,
    /// `--rate-limit` of the gateway (0: none); `None` keeps the node's default.
    pub rate_limit: Option<f64>,
}

/// Most voters `up` makes by default: a majority of 5 survives two losses,
/// and more voters only slow every commit.
pub const MAX_DEFAULT_VOTERS: usize = 5;

/// Node i (1-based) is `n{i}` on cluster port `cluster_port + i - 1` and
/// HTTP port `http_port + i - 1`, with data in `data_dir/n{i}`.
pub fn plan(
    nodes: usize,
    data_dir: &Path,
    http_port: u16,
    cluster_port: u16,
) -> anyhow::Result<Vec<NodePlan>> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let port = |first: u16, index: usize, flag: &str| -> anyhow::Result<u16> {
        u16::try_from(first as usize + index)
            .ok()
            .filter(|port| *port != 0)
            .with_context(|| format!("{flag} {first} leaves no room for {nodes} nodes"))
    };
    let mut plans = Vec::with_capacity(nodes);
    for index in 0..nodes {
        let name = format!("n{}", index + 1);
        plans.push(NodePlan {
            cluster: SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                port(cluster_port, index, "--cluster-port")?,
            )),
            http: SocketAddr::from((Ipv4Addr::LOCALHOST, port(http_port, index, "--http-port")?)),
            data_dir: data_dir.join(&name),
            tls: None,
            runtime: Vec::new(),
            voters: Vec::new(),
            rate_limit: None,
            name,
        });
    }
    let voters: Vec<String> = plans
        .iter()
        .take(MAX_DEFAULT_VOTERS)
        .map(|plan| plan.name.clone())
        .collect();
    for plan in &mut plans {
        plan.voters = voters.clone();
    }
    let mut ports: Vec<u16> = plans
        .iter()
        .flat_map(|plan| [plan.cluster.port(), plan.http.port()])
        .collect();
    ports.sort_unstable();
    if ports.windows(2).any(|pair| pair[0] == pair[1]) {
        bail!("--http-port and --cluster-port ranges overlap");
    }
    Ok(plans)
}

/// Fails with the first address already taken, naming its node and role.
pub fn check_ports_free(plans: &[NodePlan]) -> anyhow::Result<()> {
    for plan in plans {
        for (addr, role) in [(plan.cluster, "cluster"), (plan.http, "http")] {
            if let Err(err) = TcpListener::bind(addr) {
                bail!(
                    "port {} ({role} port of {}) is not available: {err}",
                    addr.port(),
                    plan.name
                );
            }
        }
    }
    Ok(())
}

impl NodePlan {
    /// Arguments of `bazaar node` for this node, with every other node as seed.
    pub fn node_args(&self, all: &[NodePlan]) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--name".into(),
            self.name.clone(),
            "--listen".into(),
            self.cluster.to_string(),
            "--http".into(),
            self.http.to_string(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--expect".into(),
            all.len().to_string(),
            "--voters".into(),
            self.voters.join(","),
        ];
        for other in all.iter().filter(|other| other.name != self.name) {
            args.push("--seed".into());
            args.push(other.cluster.to_string());
        }
        if let Some(rate) = self.rate_limit {
            args.push("--rate-limit".into());
            args.push(rate.to_string());
        }
        if let Some(tls) = &self.tls {
            args.extend(super::tls::node_flags(tls));
        }
        args.extend(self.runtime.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_consecutive_ports_and_their_own_dirs() {
        let plans = plan(3, Path::new("/d"), 8081, 7071).unwrap();
        assert_eq!(plans[2].name, "n3");
        assert_eq!(plans[2].cluster.to_string(), "127.0.0.1:7073");
        assert_eq!(plans[2].http.to_string(), "127.0.0.1:8083");
        assert_eq!(plans[2].data_dir, Path::new("/d/n3"));
        let args = plans[0].node_args(&plans);
        assert!(args.windows(2).any(|w| w == ["--seed", "127.0.0.1:7072"]));
        assert!(!args.windows(2).any(|w| w == ["--seed", "127.0.0.1:7071"]));
        assert!(args.windows(2).any(|w| w == ["--voters", "n1,n2,n3"]));
        assert!(!args.iter().any(|arg| arg == "--rate-limit"));
        let mut unlimited = plans[1].clone();
        unlimited.rate_limit = Some(0.0);
        let args = unlimited.node_args(&plans);
        assert!(args.windows(2).any(|w| w == ["--rate-limit", "0"]));
        let seven = plan(7, Path::new("/d"), 8081, 7071).unwrap();
        assert_eq!(seven[6].voters, ["n1", "n2", "n3", "n4", "n5"]);
    }

    #[test]
    fn bad_port_ranges_are_refused() {
        assert!(plan(0, Path::new("/d"), 8081, 7071).is_err());
        assert!(plan(3, Path::new("/d"), 65535, 7071).is_err());
        assert!(plan(3, Path::new("/d"), 7072, 7071).is_err());
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let plans = plan(1, Path::new("/d"), port, port.wrapping_add(100)).unwrap();
        let err = check_ports_free(&plans).unwrap_err().to_string();
        assert!(
            err.contains(&format!("port {port} (http port of n1)")),
            "{err}"
        );
    }
}
