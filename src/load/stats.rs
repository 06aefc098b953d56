//! What the load saw: every request's outcome, folded into per-route
//! latency histograms, error counts by kind, per-gateway counts and a
//! per-second timeline.
//!
//! Invariants:
//! - latencies are of successful requests, in microseconds, measured
//!   from the request's scheduled start for the first request of a flow
//!   (so a late start is never hidden) and from its actual start for the
//!   requests a flow makes after it (a login, the add before a checkout);
//! - every arrival ends as exactly one [`Event::Flow`], whether it ran or
//!   could not start, so flows started + not started = arrivals;
//! - memory is bounded whatever the duration: a second of the timeline
//!   keeps its latency histogram only while requests scheduled in it may
//!   still finish ([`Stats::close_before`]); after that it keeps its
//!   counts and its p99 and max. A request finishing after its second
//!   closed (rare: later than the flow budget) still counts, without its
//!   latency in that second's p99.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::plan::Flow;

/// Label of [`Failure::Refused`].
pub const REFUSED: &str = "refused (no order placed)";

/// Highest latency recorded, in microseconds (an hour); above saturates.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// An HTTP route of the shop, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// `GET /api/products/{id}`.
    Product,
    /// `GET /api/search`.
    Search,
    /// `GET /api/cart`.
    Cart,
    /// `POST /api/cart/items`.
    AddItem,
    /// `POST /api/checkout`.
    Checkout,
    /// `POST /api/login`.
    Login,
}

impl Route {
    /// Every route, in report order.
    pub const ALL: [Route; 6] = [
        Route::Product,
        Route::Search,
        Route::Cart,
        Route::AddItem,
        Route::Checkout,
        Route::Login,
    ];

    /// Method and path template.
    pub fn name(self) -> &'static str {
        match self {
            Route::Product => "GET /api/products/{id}",
            Route::Search => "GET /api/search",
            Route::Cart => "GET /api/cart",
            Route::AddItem => "POST /api/cart/items",
            Route::Checkout => "POST /api/checkout",
            Route::Login => "POST /api/login",
        }
    }

    /// The route a flow exists to call.
    pub fn of(flow: Flow) -> Route {
        match flow {
            Flow::Browse => Route::Product,
            Flow::Search => Route::Search,
            Flow::ViewCart => Route::Cart,
            Flow::AddToCart => Route::AddItem,
            Flow::Checkout => Route::Checkout,
        }
    }

    fn index(self) -> usize {
        Route::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// The gateway answered with this non-2xx status.
    Status(u16),
    /// Nothing listens at the gateway's address (a dead node).
    ConnectRefused,
    /// The connection could not be opened for another reason.
    Connect,
    /// No complete answer within the request budget.
    Timeout,
    /// The connection broke mid-request, or the answer was unreadable.
    Transport,
    /// Not sent: the cap on outstanding requests was reached.
    NotStarted,
    /// A checkout refused with a known outcome: 503 and `"order_placed": false`.
    Refused,
}

impl Failure {
    /// Label in the report: the status code, or the transport error.
    pub fn label(self) -> String {
        match self {
            Failure::Status(status) => status.to_string(),
            Failure::ConnectRefused => "connect refused".into(),
            Failure::Connect => "connect failed".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Transport => "broken connection".into(),
            Failure::NotStarted => "not started (in-flight cap)".into(),
            Failure::Refused => REFUSED.into(),
        }
    }
}

/// What happened to one request or one arrival.
#[derive(Debug, Clone)]
pub enum Event {
    /// One HTTP request ended.
    Request {
        /// Its route.
        route: Route,
        /// Index of its gateway.
        gateway: usize,
        /// Second of the run its flow was scheduled in.
        second: u32,
        /// Latency (see the module docs), or why it failed.
        result: Result<u64, Failure>,
        /// For a failure: the answer's body or the transport error, shortened.
        detail: Option<String>,
    },
    /// One arrival ended: its flow ran to the end (`ok`), failed, or never started.
    Flow {
        /// The flow.
        flow: Flow,
        /// Index of its gateway.
        gateway: usize,
        /// Second of the run it was scheduled in.
        second: u32,
        /// Whether every request of it succeeded; `Err(NotStarted)` if none was sent.
        result: Result<(), Failure>,
    },
}

/// Counts of one route, flow or gateway.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Successful.
    pub ok: u64,
    /// Failed, by kind.
    pub errors: BTreeMap<Failure, u64>,
}

impl Counts {
    fn add(&mut self, result: Result<(), Failure>) {
        match result {
            Ok(()) => self.ok += 1,
            Err(failure) => *self.errors.entry(failure).or_default() += 1,
        }
    }

    /// Failed, all kinds.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One second of the timeline, by scheduled time.
#[derive(Debug, Clone)]
pub struct Second {
    /// Arrivals that started.
    pub started: u64,
    /// Arrivals that could not start.
    pub not_started: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed (not-started arrivals included).
    pub errors: u64,
    /// Per gateway: (requests ok, requests failed).
    pub gateways: Vec<(u64, u64)>,
    /// Latencies of successes while the second is open.
    latencies: Option<Histogram<u64>>,
    /// p99 and max of successes, microseconds, once closed.
    pub p99_us: Option<u64>,
    /// Max latency of successes, microseconds, once closed.
    pub max_us: Option<u64>,
}

impl Second {
    fn new(gateways: usize) -> Self {
        Self {
            started: 0,
            not_started: 0,
            ok: 0,
            errors: 0,
            gateways: vec![(0, 0); gateways],
            latencies: Some(histogram(2)),
            p99_us: None,
            max_us: None,
        }
    }

    fn close(&mut self) {
        if let Some(latencies) = self.latencies.take() {
            if !latencies.is_empty() {
                self.p99_us = Some(latencies.value_at_quantile(0.99));
                self.max_us = Some(latencies.max());
            }
        }
    }
}

/// Everything the load saw.
pub struct Stats {
    /// Per route, in [`Route::ALL`] order: counts and latencies of successes.
    pub routes: Vec<(Counts, Histogram<u64>)>,
    /// Per flow, in [`Flow::ALL`] order.
    pub flows: Vec<Counts>,
    /// Per gateway: requests.
    pub gateways: Vec<Counts>,
    /// Per scheduled second.
    pub timeline: Vec<Second>,
    /// The first detail seen of each (route, failure).
    pub examples: BTreeMap<(Route, Failure), String>,
    /// Seconds before this one are closed.
    closed_before: u32,
}

impl Stats {
    /// Empty stats for `gateways` gateways.
    pub fn new(gateways: usize) -> Self {
        Self {
            routes: Route::ALL
                .iter()
                .map(|_| (Counts::default(), histogram(3)))
                .collect(),
            flows: Flow::ALL.iter().map(|_| Counts::default()).collect(),
            gateways: vec![Counts::default(); gateways],
            timeline: Vec::new(),
            examples: BTreeMap::new(),
            closed_before: 0,
        }
    }

    /// Folds in one event.
    pub fn record(&mut self, event: Event) {
        match event {
            Event::Request {
                route,
                gateway,
                second,
                result,
                detail,
            } => {
                if let (Err(failure), Some(detail)) = (result, detail) {
                    self.examples.entry((route, failure)).or_insert(detail);
                }
                let outcome = result.map(|_| ());
                let (counts, latencies) = &mut self.routes[route.index()];
                counts.add(outcome);
                if let Ok(latency_us) = result {
                    latencies.saturating_record(latency_us.max(1));
                }
                self.gateways[gateway].add(outcome);
                let closed = second < self.closed_before;
                let slot = self.second(second);
                match result {
                    Ok(latency_us) => {
                        slot.ok += 1;
                        slot.gateways[gateway].0 += 1;
                        if let (false, Some(open)) = (closed, slot.latencies.as_mut()) {
                            open.saturating_record(latency_us.max(1));
                        }
                    }
                    Err(_) => {
                        slot.errors += 1;
                        slot.gateways[gateway].1 += 1;
                    }
                }
            }
            Event::Flow {
                flow,
                gateway,
                second,
                result,
            } => {
                self.flows[flow.index()].add(result);
                let slot = self.second(second);
                if result == Err(Failure::NotStarted) {
                    slot.not_started += 1;
                    slot.errors += 1;
                    slot.gateways[gateway].1 += 1;
                    // Counted against the route the flow would have called.
                    self.routes[Route::of(flow).index()].0.add(result);
                    self.gateways[gateway].add(result);
                } else {
                    slot.started += 1;
                }
            }
        }
    }

    /// Drops the latency histograms of the seconds before `second`,
    /// keeping their p99 and max.
    pub fn close_before(&mut self, second: u32) {
        let end = (second as usize).min(self.timeline.len());
        for slot in &mut self.timeline[self.closed_before.min(end as u32) as usize..end] {
            slot.close();
        }
        self.closed_before = self.closed_before.max(second);
    }

    /// Closes every second.
    pub fn close_all(&mut self) {
        self.close_before(self.timeline.len() as u32);
    }

    /// Requests ended so far, successes and failures (not-started included).
    pub fn requests(&self) -> (u64, u64) {
        self.routes
            .iter()
            .fold((0, 0), |(ok, errors), (counts, _)| {
                (ok + counts.ok, errors + counts.error_total())
            })
    }

    /// Arrivals ended so far.
    pub fn arrivals(&self) -> u64 {
        self.flows
            .iter()
            .map(|counts| counts.ok + counts.error_total())
            .sum()
    }

    fn second(&mut self, second: u32) -> &mut Second {
        let gateways = self.gateways.len();
        let index = second as usize;
        while self.timeline.len() <= index {
            let mut slot = Second::new(gateways);
            if (self.timeline.len() as u32) < self.closed_before {
                slot.close();
            }
            self.timeline.push(slot);
        }
        &mut self.timeline[index]
    }
}

/// A latency histogram in microseconds with `digits` significant digits.
fn histogram(digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, digits).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(route: Route, gateway: usize, second: u32, result: Result<u64, Failure>) -> Event {
        Event::Request {
            route,
            gateway,
            second,
            result,
            detail: None,
        }
    }

    #[test]
    fn outcomes_land_in_routes_gateways_and_seconds() {
        let mut stats = Stats::new(2);
        stats.record(request(Route::Product, 0, 0, Ok(1_000)));
        stats.record(request(Route::Product, 1, 1, Err(Failure::ConnectRefused)));
        stats.record(request(Route::Checkout, 0, 1, Err(Failure::Status(503))));
        stats.record(Event::Flow {
            flow: Flow::Search,
            gateway: 1,
            second: 2,
            result: Err(Failure::NotStarted),
        });
        stats.record(Event::Flow {
            flow: Flow::Browse,
            gateway: 0,
            second: 0,
            result: Ok(()),
        });
        stats.close_all();

        assert_eq!(stats.requests(), (1, 3));
        assert_eq!(stats.arrivals(), 2);
        let (product, latencies) = &stats.routes[0];
        assert_eq!(product.ok, 1);
        assert_eq!(product.errors[&Failure::ConnectRefused], 1);
        assert_eq!(latencies.len(), 1);
        assert_eq!(stats.routes[1].0.errors[&Failure::NotStarted], 1);
        assert_eq!(stats.gateways[0].ok, 1);
        assert_eq!(stats.gateways[1].error_total(), 2);
        assert_eq!(stats.timeline.len(), 3);
        assert_eq!(stats.timeline[0].started, 1);
        assert!(stats.timeline[0].p99_us.unwrap() >= 990);
        assert_eq!(stats.timeline[1].gateways, vec![(0, 1), (0, 1)]);
        assert_eq!(stats.timeline[2].not_started, 1);
        assert_eq!(stats.timeline[1].p99_us, None);
    }

    #[test]
    fn a_closed_second_keeps_counting_without_its_histogram() {
        let mut stats = Stats::new(1);
        stats.record(request(Route::Cart, 0, 0, Ok(2_000)));
        stats.close_before(1);
        let p99 = stats.timeline[0].p99_us;
        stats.record(request(Route::Cart, 0, 0, Ok(9_000_000)));
        assert_eq!(stats.timeline[0].ok, 2);
        assert_eq!(stats.timeline[0].p99_us, p99);
        // A second first seen after it was closed is born closed.
        stats.close_before(5);
        stats.record(request(Route::Cart, 0, 3, Ok(1_000)));
        assert!(stats.timeline[3].latencies.is_none());
        assert_eq!(stats.timeline[3].ok, 1);
    }
}
