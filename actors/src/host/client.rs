//! `HostClient`: asks service hosts for their reports.

use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote;

use super::protocol::{HostProtocol, HostReply, HostRequest, NodeReport, NODE_GROUP};

/// Timeout of one report call: `/api/cluster` answers within it even when
/// a host is busy starting services.
const REPORT_TIMEOUT: Duration = Duration::from_millis(300);

/// A client of the nodes' service hosts.
#[derive(Debug, Clone, Default)]
pub struct HostClient;

impl HostClient {
    /// Reports of every reachable node, asked concurrently; a node that does
    /// not answer in time is left out.
    pub async fn reports(&self) -> Vec<NodeReport> {
        let mut calls = tokio::task::JoinSet::new();
        for host in directory::members::<HostProtocol>(NODE_GROUP) {
            calls.spawn(
                async move { remote::call(&host, HostRequest::Report, REPORT_TIMEOUT).await },
            );
        }
        let mut reports = Vec::new();
        while let Some(joined) = calls.join_next().await {
            if let Ok(Ok(HostReply::Report(report))) = joined {
                reports.push(*report);
            }
        }
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        reports
    }
}
