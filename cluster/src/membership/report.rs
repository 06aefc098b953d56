//! What the membership tells the outside about its changes: structured
//! log lines and Prometheus metrics.

use crate::member::{MemberEvent, MemberState, MembershipView};

/// Counts a membership change in `bazaar_membership_changes_total`.
pub(super) fn count_event(event: &MemberEvent) {
    let kind = match event {
        MemberEvent::MemberUp(_) => "up",
        MemberEvent::MemberSuspected(_) => "suspect",
        MemberEvent::MemberDown { .. } => "down",
        MemberEvent::QuorumChanged(_) => return,
    };
    metrics::counter!("bazaar_membership_changes_total", "event" => kind).increment(1);
}

/// Sets the `bazaar_members{state}` and `bazaar_quorum` gauges from `view`.
pub(super) fn record_view(view: &MembershipView) {
    for state in [MemberState::Up, MemberState::Suspect, MemberState::Down] {
        let count = view
            .members
            .values()
            .filter(|member| member.state == state)
            .count();
        metrics::gauge!("bazaar_members", "state" => state.as_str()).set(count as f64);
    }
    metrics::gauge!("bazaar_quorum").set(if view.has_quorum() { 1.0 } else { 0.0 });
}

pub(super) fn log_event(event: &MemberEvent) {
    match event {
        MemberEvent::MemberUp(info) => tracing::info!(
            member = %info.name,
            addr = %info.cluster_addr,
            incarnation = info.incarnation,
            "member up"
        ),
        MemberEvent::MemberSuspected(info) => {
            tracing::warn!(member = %info.name, "member suspected")
        }
        MemberEvent::MemberDown { info, reason } => {
            tracing::warn!(member = %info.name, reason = reason.as_str(), "member down")
        }
        MemberEvent::QuorumChanged(true) => tracing::info!("quorum gained"),
        MemberEvent::QuorumChanged(false) => tracing::warn!("quorum lost"),
    }
}
