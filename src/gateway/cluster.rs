//! Health, readiness and the cluster report.
//!
//! Readiness counts checkout's voters, not the expected size: a node is
//! ready only while a strict majority of the voters is reachable, since
//! without one no order can commit however many other nodes answer.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bazaar_actors::checkout::protocol::CheckoutStatus;
use bazaar_actors::host::manifest::{manifest, CHECKOUT};
use bazaar_actors::host::{HostClient, ServiceStatus};
use bazaar_actors::supervision::TreeReport;
use bazaar_cluster::placement::{assign, candidates, ShardAssignment};
use bazaar_cluster::{MembershipView, Voters};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::GatewayState;

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once the node has joined (seen a quorum), while a
/// majority of checkout's voters is reachable, once every service placed
/// on it runs, and while checkout has an owner.
pub async fn readyz(State(state): State<GatewayState>) -> Response {
    if !state.joined.load(Ordering::Relaxed) {
        return ApiError::unavailable("not joined: no quorum seen yet").into_response();
    }
    if !state.voters.reachable_majority(&state.view.borrow()) {
        let voters: Vec<String> = state.voters.get().into_iter().collect();
        return ApiError::unavailable(format!(
            "no majority of the checkout voters reachable (voters: {})",
            voters.join(", ")
        ))
        .into_response();
    }
    let host = state.host.borrow().clone();
    if !host.all_running() {
        let waiting = host.waiting();
        let message = if waiting.is_empty() {
            "no service placed yet".to_string()
        } else {
            format!("services not running: {}", waiting.join(", "))
        };
        return ApiError::unavailable(message).into_response();
    }
    match state.checkout.status().await {
        Ok(status) if status.owner.is_some() => (StatusCode::OK, "ready\n").into_response(),
        _ => ApiError::unavailable("no checkout owner yet").into_response(),
    }
}

/// `/api/cluster`: this node's view of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterReport {
    /// The answering node.
    pub node: String,
    /// True if it reaches a majority of the expected size.
    pub quorum: bool,
    /// Expected cluster size.
    pub expected: usize,
    /// Every member it knows, itself included, by name.
    pub members: Vec<MemberReport>,
    /// Per reachable node: the services placed there.
    #[serde(default)]
    pub services: BTreeMap<String, Vec<ServiceStatus>>,
    /// Per reachable node: its supervision tree with restart counters.
    #[serde(default)]
    pub trees: BTreeMap<String, TreeReport>,
    /// Owner and backups of every cart shard, as this node places them.
    #[serde(default)]
    pub cart_shards: Vec<ShardAssignment>,
    /// Checkout ownership and voters as this node's replica sees it, and
    /// the learners.
    #[serde(default)]
    pub checkout: Option<CheckoutReport>,
    /// Whether this node's `POST /api/admin/kill` is enabled (nodes
    /// started by `bazaar up`): the dashboard hides its kill buttons if not.
    #[serde(default)]
    pub kill_enabled: bool,
    /// This node's recent events, oldest first (see [`super::events`]).
    #[serde(default)]
    pub events: Vec<super::events::Event>,
}

/// `checkout` in `/api/cluster`: the replica's status (owner, standby,
/// epoch, log, voters), with the learners beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutReport {
    /// This node's replica's view; its fields appear at the top level of
    /// the object. `voters` falls back to the node's bootstrap voter set
    /// while the replica reports none.
    #[serde(flatten)]
    pub status: CheckoutStatus,
    /// Nodes that run checkout but are not voters: they replicate the
    /// committed log, serve reads and forward orders, never vote or own.
    #[serde(default)]
    pub learners: Vec<String>,
}

impl CheckoutReport {
    /// `status` with the learners among the nodes placed to run checkout
    /// in `view`; `voters` is used when the status carries none.
    pub fn new(mut status: CheckoutStatus, voters: &Voters, view: &MembershipView) -> Self {
        if status.voters.is_empty() {
            status.voters = voters.get().into_iter().collect();
        }
        status.voters.sort();
        let placement = assign(&manifest(), &candidates(view));
        let learners = placement
            .members()
            .iter()
            .map(|member| &member.name)
            .filter(|name| !status.voters.contains(*name))
            .filter(|name| {
                placement
                    .roles_on(name)
                    .iter()
                    .any(|(service, _)| service == CHECKOUT)
            })
            .cloned()
            .collect();
        Self { status, learners }
    }
}

/// One member in `/api/cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberReport {
    /// Node name.
    pub name: String,
    /// Cluster address peers dial.
    pub cluster_addr: String,
    /// Gateway address.
    pub http_addr: String,
    /// Process id.
    pub pid: u32,
    /// Start time of this life of the node, ms since the Unix epoch.
    pub incarnation: u64,
    /// `up`, `suspect` or `down`.
    pub state: String,
    /// When the state last changed, ms since the Unix epoch.
    pub since_ms: u64,
}

impl From<&MembershipView> for ClusterReport {
    fn from(view: &MembershipView) -> Self {
        Self {
            node: view.local.clone(),
            quorum: view.has_quorum(),
            expected: view.expected,
            members: view
                .members
                .values()
                .map(|member| MemberReport {
                    name: member.info.name.clone(),
                    cluster_addr: member.info.cluster_addr.clone(),
                    http_addr: member.info.http_addr.clone(),
                    pid: member.info.pid,
                    incarnation: member.info.incarnation,
                    state: member.state.as_str().to_string(),
                    since_ms: member.since_ms,
                })
                .collect(),
            services: BTreeMap::new(),
            trees: BTreeMap::new(),
            cart_shards: bazaar_actors::cart::shard_map(view),
            checkout: None,
            kill_enabled: false,
            events: Vec::new(),
        }
    }
}

/// `GET /api/cluster`: members as this node sees them, and the services
/// and trees of every node that answers in time.
pub async fn cluster(State(state): State<GatewayState>) -> Json<ClusterReport> {
    let view = state.view.borrow().clone();
    let mut report = ClusterReport::from(&view);
    for node in HostClient.reports().await {
        report.services.insert(node.node.clone(), node.services);
        report.trees.insert(node.node, node.tree);
    }
    report.checkout = state
        .checkout
        .status()
        .await
        .ok()
        .map(|status| CheckoutReport::new(status, &state.voters, &view));
    report.kill_enabled = state.kill_switch;
    report.events = state.events.snapshot();
    Json(report)
}

#[cfg(test)]
mod tests {
    use bazaar_cluster::{Member, MemberInfo, MemberState};

    use super::*;

    fn view(states: &[(&str, MemberState)]) -> MembershipView {
        let members = states
            .iter()
            .enumerate()
            .map(|(i, (name, state))| {
                let info = MemberInfo {
                    name: name.to_string(),
                    cluster_addr: String::new(),
                    http_addr: String::new(),
                    pid: 0,
                    incarnation: i as u64 + 1,
                };
                let member = Member {
                    info,
                    state: *state,
                    since_ms: 0,
                };
                (name.to_string(), member)
            })
            .collect();
        MembershipView {
            local: "n1".into(),
            expected: states.len(),
            members,
        }
    }

    fn status(voters: &[&str]) -> CheckoutStatus {
        CheckoutStatus {
            node: "n1".into(),
            role: "owner".into(),
            owner: Some("n1".into()),
            standby: Some("n2".into()),
            epoch: 3,
            log_length: 7,
            commit_index: 7,
            since_ms: 0,
            voters: voters.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn learners_are_the_live_checkout_nodes_outside_the_voters() {
        use MemberState::{Down, Up};
        let view = view(&[("n1", Up), ("n2", Up), ("n3", Up), ("n4", Up), ("n5", Down)]);
        let bootstrap = Voters::new(["n3", "n1", "n2"].map(String::from));

        // The replica reports no voters yet: the node's bootstrap set.
        let report = CheckoutReport::new(status(&[]), &bootstrap, &view);
        assert_eq!(report.status.voters, ["n1", "n2", "n3"]);
        assert_eq!(report.learners, ["n4"]);

        // The replica's configuration wins; a down node is nobody's learner.
        let report = CheckoutReport::new(status(&["n4", "n1", "n5"]), &bootstrap, &view);
        assert_eq!(report.status.voters, ["n1", "n4", "n5"]);
        assert_eq!(report.learners, ["n2", "n3"]);

        // The JSON keeps the status's fields at the top of `checkout`.
        let json = serde_json::to_value(&report).expect("serializable");
        assert_eq!(json["owner"], "n1");
        assert_eq!(json["epoch"], 3);
        assert_eq!(json["voters"], serde_json::json!(["n1", "n4", "n5"]));
        assert_eq!(json["learners"], serde_json::json!(["n2", "n3"]));
        let back: CheckoutReport = serde_json::from_value(json).expect("round trip");
        assert_eq!(back.status, report.status);
    }
}
