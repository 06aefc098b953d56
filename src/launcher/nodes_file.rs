//! `DIR/nodes.json`: the nodes of a running `bazaar up`, for tools that
//! attach to its cluster (`bazaar demo --attach --data-dir DIR`).
//!
//! ```json
//! {"nodes":[{"name":"n1","http":"127.0.0.1:8081","cluster":"127.0.0.1:7071","pid":4242}]}
//! ```
//!
//! Invariants: `up` rewrites the file whenever a node starts or exits
//! (`pid` is `null` while a node is dead), always by writing a temporary
//! file and renaming it, so a reader never sees half a file; it removes
//! the file when it stops, so a file present means an `up` is (or was,
//! if it was SIGKILLed) running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Name of the file in `up`'s data directory.
pub const NODES_FILE: &str = "nodes.json";

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `n1`, `n2`, ...
    pub name: String,
    /// Gateway address.
    pub http: SocketAddr,
    /// Cluster listen address.
    pub cluster: SocketAddr,
    /// Process id, `None` while the node is dead.
    pub pid: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NodesFile {
    nodes: Vec<NodeRecord>,
}

/// Path of the file in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODES_FILE)
}

/// Replaces the file in `data_dir` with `nodes`, atomically.
pub fn write(data_dir: &Path, nodes: &[NodeRecord]) -> anyhow::Result<()> {
    let target = path(data_dir);
    let temporary = data_dir.join(format!(".{NODES_FILE}.tmp"));
    let text = serde_json::to_string_pretty(&NodesFile {
        nodes: nodes.to_vec(),
    })?;
    std::fs::write(&temporary, text + "\n")
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, &target)
        .with_context(|| format!("cannot write {}", target.display()))
}

/// The nodes `up` recorded in `data_dir`.
pub fn read(data_dir: &Path) -> anyhow::Result<Vec<NodeRecord>> {
    let path = path(data_dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is `bazaar up --data-dir {}` running?",
            path.display(),
            data_dir.display()
        )
    })?;
    let file: NodesFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a nodes file", path.display()))?;
    if file.nodes.is_empty() {
        anyhow::bail!("{} lists no nodes", path.display());
    }
    Ok(file.nodes)
}

/// Removes the file, if any.
pub fn remove(data_dir: &Path) {
    let _ = std::fs::remove_file(path(data_dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_err(), "no file yet");
        let nodes = vec![
            NodeRecord {
                name: "n1".into(),
                http: "127.0.0.1:8081".parse().unwrap(),
                cluster: "127.0.0.1:7071".parse().unwrap(),
                pid: Some(42),
            },
            NodeRecord {
                name: "n2".into(),
                http: "127.0.0.1:8082".parse().unwrap(),
                cluster: "127.0.0.1:7072".parse().unwrap(),
                pid: None,
            },
        ];
        write(dir.path(), &nodes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), nodes);
        write(dir.path(), &nodes[..1]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), nodes[..1]);
        remove(dir.path());
        let err = format!("{:#}", read(dir.path()).unwrap_err());
        assert!(err.contains("is `bazaar up --data-dir"), "{err}");
    }
}
