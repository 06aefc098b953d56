//! The HTTP gateway every node serves, so that the cluster looks like one
//! shop from any node.
//!
//! Routes so far:
//! - `GET /healthz`: 200 while the process runs;
//! - `GET /readyz`: 200 once the node has joined its cluster (it has seen a
//!   quorum at least once since it started), 503 before;
//! - `GET /api/cluster`: this node's membership view.
//!
//! Unknown routes get a 404 with a JSON error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bazaar_cluster::MembershipView;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// What the handlers share.
#[derive(Clone)]
pub struct GatewayState {
    view: watch::Receiver<MembershipView>,
    /// Latched: the node has seen a quorum once.
    joined: Arc<AtomicBool>,
}

impl GatewayState {
    /// State over a membership view; spawns the task that latches `joined`.
    pub fn new(view: watch::Receiver<MembershipView>) -> Self {
        let joined = Arc::new(AtomicBool::new(view.borrow().has_quorum()));
        let mut changes = view.clone();
        let latch = joined.clone();
        tokio::spawn(async move {
            while !latch.load(Ordering::Relaxed) {
                if changes.borrow_and_update().has_quorum() {
                    latch.store(true, Ordering::Relaxed);
                    tracing::info!("node joined its cluster");
                    break;
                }
                if changes.changed().await.is_err() {
                    break;
                }
            }
        });
        Self { view, joined }
    }
}

/// The gateway's routes.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/cluster", get(cluster))
        .fallback(not_found)
        .with_state(state)
}

/// A JSON error body: `{"error": "..."}`.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// What went wrong, lowercase.
    pub error: String,
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: message.to_string(),
        }),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<GatewayState>) -> Response {
    if state.joined.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not joined: no quorum seen yet",
        )
    }
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such route")
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
        }
    }
}

async fn cluster(State(state): State<GatewayState>) -> Json<ClusterReport> {
    let view = state.view.borrow().clone();
    Json(ClusterReport::from(&view))
}
