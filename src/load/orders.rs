//! What a run did to checkout: confirmed orders a second and their
//! latency (from the load's own histograms), orders refused with a known
//! outcome, and, read from every gateway's `/metrics` before and after the
//! run, journal fsyncs per confirmed order and the owner's mean batch.
//!
//! The counters are summed over the nodes the load was pointed at, so
//! fsyncs per order counts the owner's and the followers' writes alike
//! (3 voters, one write each per batch: 3 / batch size).

use serde::Serialize;

/// `bazaar_checkout_journal_syncs_total`: durable journal transactions.
const SYNCS: &str = "bazaar_checkout_journal_syncs_total";
/// Sum and count of `bazaar_checkout_batch_proposals`, the proposals per batch.
const BATCH_SUM: &str = "bazaar_checkout_batch_proposals_sum";
const BATCH_COUNT: &str = "bazaar_checkout_batch_proposals_count";
/// `bazaar_orders_confirmed_total`.
const CONFIRMED: &str = "bazaar_orders_confirmed_total";

/// The checkout counters of the nodes behind the gateways, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    syncs: f64,
    batch_sum: f64,
    batch_count: f64,
    confirmed: f64,
    /// Gateways whose `/metrics` answered.
    nodes: usize,
}

impl Counters {
    /// Reads every gateway's `/metrics`; one that does not answer counts nothing.
    pub async fn scrape(client: &reqwest::Client, gateways: &[String]) -> Self {
        let mut counters = Self::default();
        for gateway in gateways {
            let text = match client.get(format!("{gateway}/metrics")).send().await {
                Ok(response) if response.status().is_success() => response.text().await,
                _ => continue,
            };
            if let Ok(text) = text {
                counters.add(&text);
            }
        }
        counters
    }

    /// Adds the samples of one Prometheus text exposition.
    fn add(&mut self, text: &str) {
        self.nodes += 1;
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            // Labels are summed over: the name ends at `{`.
            let name = name.split('{').next().unwrap_or(name);
            match name {
                SYNCS => self.syncs += value,
                BATCH_SUM => self.batch_sum += value,
                BATCH_COUNT => self.batch_count += value,
                CONFIRMED => self.confirmed += value,
                _ => {}
            }
        }
    }
}

/// The checkout part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutReport {
    /// Orders the load saw confirmed (201).
    pub confirmed: u64,
    /// Confirmed orders a second over the run.
    pub orders_per_s: f64,
    /// Checkouts refused with `"order_placed": false` (a known outcome).
    pub refused: u64,
    /// Checkout latency percentiles of successes, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Journal fsyncs of every node per order the nodes confirmed (absent
    /// if `/metrics` could not be read or nothing was confirmed).
    pub fsyncs_per_order: Option<f64>,
    /// Mean proposals per batch at the owner.
    pub mean_batch: Option<f64>,
    /// Nodes whose counters were read.
    pub nodes_scraped: usize,
}

impl CheckoutReport {
    /// The report from the load's counts and the counters around the run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        confirmed: u64,
        refused: u64,
        seconds: f64,
        percentiles: (Option<f64>, Option<f64>, Option<f64>),
        before: &Counters,
        after: &Counters,
    ) -> Self {
        let scraped = before.nodes == after.nodes && after.nodes > 0;
        let orders = after.confirmed - before.confirmed;
        let batches = after.batch_count - before.batch_count;
        Self {
            confirmed,
            orders_per_s: round(confirmed as f64 / seconds.max(1e-9)),
            refused,
            p50_ms: percentiles.0,
            p99_ms: percentiles.1,
            p999_ms: percentiles.2,
            fsyncs_per_order: (scraped && orders > 0.0)
                .then(|| round((after.syncs - before.syncs) / orders)),
            mean_batch: (scraped && batches > 0.0)
                .then(|| round((after.batch_sum - before.batch_sum) / batches)),
            nodes_scraped: after.nodes,
        }
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_over_nodes_and_labels() {
        let mut counters = Counters::default();
        counters.add(
            "# TYPE bazaar_checkout_journal_syncs_total counter\n\
             bazaar_checkout_journal_syncs_total 10\n\
             bazaar_checkout_batch_proposals_sum 30\n\
             bazaar_checkout_batch_proposals_count 10\n\
             bazaar_orders_confirmed_total{node=\"n1\"} 30\n\
             bazaar_orders_confirmed_totals 999\n",
        );
        counters.add("bazaar_checkout_journal_syncs_total 10\n");
        let report = CheckoutReport::new(
            30,
            0,
            1.0,
            (None, None, None),
            &Counters {
                nodes: 2,
                ..Counters::default()
            },
            &counters,
        );
        assert_eq!(report.fsyncs_per_order, Some(0.67));
        assert_eq!(report.mean_batch, Some(3.0));
        assert_eq!(report.orders_per_s, 30.0);
    }
}
