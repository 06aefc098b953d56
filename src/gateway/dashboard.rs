//! The dashboard: one page served by every gateway at `/`, plain HTML and
//! JavaScript embedded in the binary (no build step), polling
//! `/api/cluster` every second; and the kill switch its buttons use.
//!
//! The kill switch (`POST /api/admin/kill`, admin token) exists only on
//! nodes started by `bazaar up`, which are all local processes: it sends
//! SIGKILL to the pid the membership view lists for that node.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::account::Admin;
use super::error::{ApiError, ApiJson};
use super::GatewayState;

/// The page.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
/// Its script.
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
/// A node killing itself answers first, then dies after this long.
const SELF_KILL_DELAY: Duration = Duration::from_millis(100);

impl GatewayState {
    /// Enables `POST /api/admin/kill` (for nodes started by `bazaar up`).
    pub fn with_kill_switch(mut self, enabled: bool) -> Self {
        self.kill_switch = enabled;
        self
    }
}

/// `GET /`: the dashboard page.
pub async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

/// `GET /dashboard.js`: the dashboard's script.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DASHBOARD_JS,
    )
}

/// Body of `POST /api/admin/kill`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillRequest {
    /// The node to kill.
    pub node: String,
}

/// Answer of `POST /api/admin/kill`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Killed {
    /// The node killed.
    pub node: String,
    /// Its process id.
    pub pid: u32,
}

/// `POST /api/admin/kill`: SIGKILLs a node of a `bazaar up` cluster.
pub async fn kill_node(
    State(state): State<GatewayState>,
    Admin(admin): Admin,
    ApiJson(request): ApiJson<KillRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.kill_switch {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "kill is only available in clusters started by bazaar up",
        ));
    }
    let (pid, local) = {
        let view = state.view.borrow();
        let member = view
            .members
            .get(&request.node)
            .ok_or_else(|| ApiError::not_found(format!("no node {}", request.node)))?;
        (member.info.pid, view.local == request.node)
    };
    tracing::warn!(admin = %admin.sub, node = %request.node, pid, "killing node on request");
    if local {
        tokio::spawn(async move {
            tokio::time::sleep(SELF_KILL_DELAY).await;
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        });
    } else {
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|err| {
            ApiError::unprocessable(format!("cannot kill {} (pid {pid}): {err}", request.node))
        })?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Killed {
            node: request.node,
            pid,
        }),
    ))
}
