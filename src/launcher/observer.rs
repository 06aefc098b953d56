//! How `bazaar up` watches its cluster: it asks every node for its view
//! and reports each member's state as its peers see it.
//!
//! A member's state is taken from the first node, in plan order, that
//! answers and is not the member itself (a frozen node cannot report its
//! own death). A line is printed only when that state changes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gateway::ClusterReport;

/// Timeout of one poll of one node.
pub const POLL_TIMEOUT: Duration = Duration::from_millis(400);

/// Fetches `/api/cluster` from every address concurrently; `None` where
/// no answer came back in time.
pub async fn poll_all(client: &reqwest::Client, https: &[String]) -> Vec<Option<ClusterReport>> {
    let mut requests = tokio::task::JoinSet::new();
    for (index, http) in https.iter().enumerate() {
        let client = client.clone();
        let url = format!("http://{http}/api/cluster");
        requests.spawn(async move {
            let response = client.get(url).timeout(POLL_TIMEOUT).send().await.ok();
            let report = match response {
                Some(response) => response.json::<ClusterReport>().await.ok(),
                None => None,
            };
            (index, report)
        });
    }
    let mut reports = vec![None; https.len()];
    while let Some(joined) = requests.join_next().await {
        if let Ok((index, report)) = joined {
            reports[index] = report;
        }
    }
    reports
}

/// Each member's state as seen by its peers, from one round of polls.
/// `names[i]` is the node whose answer is `reports[i]`.
pub fn consensus(names: &[String], reports: &[Option<ClusterReport>]) -> BTreeMap<String, String> {
    let mut states = BTreeMap::new();
    for member in names {
        let seen = names
            .iter()
            .zip(reports)
            .filter(|(observer, _)| *observer != member)
            .find_map(|(_, report)| {
                report
                    .as_ref()?
                    .members
                    .iter()
                    .find(|candidate| &candidate.name == member)
                    .map(|candidate| candidate.state.clone())
            });
        let state = match seen {
            Some(state) => state,
            // Nobody else answers (a 1-node cluster, or all others gone):
            // the member speaks for itself if it answers at all.
            None if reports[names.iter().position(|n| n == member).unwrap_or(0)].is_some() => {
                "up".to_string()
            }
            None => "unknown".to_string(),
        };
        states.insert(member.clone(), state);
    }
    states
}

/// The observer of one `bazaar up` run.
#[derive(Debug, Default)]
pub struct Observer {
    last: BTreeMap<String, String>,
    /// The checkout owner and epoch last reported.
    owner: Option<(String, u64)>,
}

/// The checkout owner the answering nodes agree on: the one of the highest
/// epoch any of them follows.
pub fn checkout_owner(reports: &[Option<ClusterReport>]) -> Option<(String, u64)> {
    reports
        .iter()
        .flatten()
        .filter_map(|report| {
            let status = &report.checkout.as_ref()?.status;
            Some((status.owner.clone()?, status.epoch))
        })
        .max_by_key(|(_, epoch)| *epoch)
}

impl Observer {
    /// Records the checkout owner; returns a line when it changed.
    pub fn update_owner(&mut self, owner: Option<(String, u64)>) -> Option<String> {
        let (name, epoch) = owner?;
        let line = match &self.owner {
            Some((old, old_epoch)) if *old == name && *old_epoch == epoch => return None,
            Some((old, _)) => format!("checkout owner {name} (epoch {epoch}), was {old}"),
            None => format!("checkout owner {name} (epoch {epoch})"),
        };
        self.owner = Some((name, epoch));
        Some(line)
    }

    /// Records a round; returns `(member, old, new)` for every change.
    pub fn update(&mut self, states: BTreeMap<String, String>) -> Vec<(String, String, String)> {
        let mut changes = Vec::new();
        for (name, state) in &states {
            let old = self.last.get(name).cloned().unwrap_or_default();
            if !old.is_empty() && &old != state {
                changes.push((name.clone(), old, state.clone()));
            }
        }
        self.last = states;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::MemberReport;

    fn report(node: &str, states: &[(&str, &str)]) -> Option<ClusterReport> {
        Some(ClusterReport {
            node: node.into(),
            quorum: true,
            expected: 3,
            members: states
                .iter()
                .map(|(name, state)| MemberReport {
                    name: name.to_string(),
                    cluster_addr: String::new(),
                    http_addr: String::new(),
                    pid: 1,
                    incarnation: 1,
                    state: state.to_string(),
                    since_ms: 0,
                })
                .collect(),
            services: Default::default(),
            trees: Default::default(),
            cart_shards: Vec::new(),
            checkout: None,
            kill_enabled: false,
            events: Vec::new(),
        })
    }

    #[test]
    fn a_member_is_judged_by_its_peers() {
        let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        // n2 is frozen: it does not answer, n1 and n3 see it down.
        let reports = vec![
            report("n1", &[("n1", "up"), ("n2", "down"), ("n3", "up")]),
            None,
            report("n3", &[("n1", "up"), ("n2", "down"), ("n3", "up")]),
        ];
        let states = consensus(&names, &reports);
        assert_eq!(states["n2"], "down");
        assert_eq!(states["n1"], "up");

        let mut observer = Observer::default();
        let all_up = consensus(
            &names,
            &[
                report("n1", &[("n1", "up"), ("n2", "up"), ("n3", "up")]),
                report("n2", &[("n1", "up"), ("n2", "up"), ("n3", "up")]),
                report("n3", &[("n1", "up"), ("n2", "up"), ("n3", "up")]),
            ],
        );
        assert!(observer.update(all_up).is_empty());
        assert_eq!(
            observer.update(states),
            vec![("n2".to_string(), "up".to_string(), "down".to_string())]
        );
    }

    #[test]
    fn the_checkout_owner_of_the_highest_epoch_is_reported_once() {
        use bazaar_actors::checkout::protocol::CheckoutStatus;
        let with_owner = |node: &str, owner: Option<&str>, epoch: u64| {
            let mut report = report(node, &[]);
            if let Some(report) = report.as_mut() {
                let status = CheckoutStatus {
                    node: node.into(),
                    role: "follower".into(),
                    owner: owner.map(str::to_string),
                    standby: None,
                    epoch,
                    log_length: 0,
                    commit_index: 0,
                    since_ms: 0,
                    voters: Vec::new(),
                };
                report.checkout = Some(crate::gateway::CheckoutReport {
                    status,
                    learners: Vec::new(),
                });
            }
            report
        };
        let mut observer = Observer::default();
        let before = [
            with_owner("n2", Some("n1"), 1),
            with_owner("n3", Some("n1"), 1),
        ];
        assert_eq!(
            observer.update_owner(checkout_owner(&before)),
            Some("checkout owner n1 (epoch 1)".to_string())
        );
        assert_eq!(observer.update_owner(checkout_owner(&before)), None);
        // n3 still follows the dead owner while n2 took over.
        let after = [
            with_owner("n2", Some("n2"), 2),
            with_owner("n3", Some("n1"), 1),
            None,
        ];
        assert_eq!(
            observer.update_owner(checkout_owner(&after)),
            Some("checkout owner n2 (epoch 2), was n1".to_string())
        );
        assert_eq!(observer.update_owner(checkout_owner(&[None])), None);
    }
}
