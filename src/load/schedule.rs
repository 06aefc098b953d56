//! The open-loop timetable: arrival `i` is due at `start + i / rate`,
//! whatever happened to the arrivals before it.
//!
//! A closed loop (send, wait for the answer, send again) slows down
//! exactly when the system does, and so never measures the requests a
//! real crowd would have sent during a stall ("coordinated omission").
//! Here the timetable is fixed: each arrival is started in its own task
//! at its due time, and its latency counts from that due time, so a
//! dispatcher that falls behind (a busy machine) shows as latency, not as
//! missing requests. Arrivals in flight are capped; an arrival due while
//! the cap is reached is not sent and counts as an error
//! ([`Failure::NotStarted`]), so a stalled cluster costs bounded memory.
//!
//! [`drive_closed`] is the closed loop of `--shoppers N`: N shoppers each
//! run one flow after another for the run's duration. It measures the
//! most the cluster confirms at that concurrency (its latency is that of
//! a crowd of exactly N, not of an arrival rate).

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::plan::{Flow, Settings};
use super::shop::Shop;
use super::stats::{Event, Failure};

/// How the timetable was kept.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// When the first arrival was due.
    pub start: Instant,
    /// From the first due time to the dispatch of the last arrival.
    pub dispatch_span: Duration,
    /// Latest an arrival was dispatched after its due time.
    pub max_dispatch_lag: Duration,
}

/// Runs the whole timetable of `settings` against `shop`; returns once
/// every arrival has ended and been reported on `events`.
pub async fn drive(settings: &Settings, shop: Arc<Shop>, events: mpsc::Sender<Event>) -> Timing {
    let period = Duration::from_secs_f64(1.0 / settings.rate);
    let arrivals = settings.arrivals();
    let permits = Arc::new(Semaphore::new(settings.max_in_flight));
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    let start = Instant::now();
    let mut max_dispatch_lag = Duration::ZERO;
    let mut last_dispatch = start;
    for arrival in 0..arrivals {
        let due = start + period.mul_f64(arrival as f64);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        last_dispatch = Instant::now();
        max_dispatch_lag = max_dispatch_lag.max(last_dispatch.saturating_duration_since(due));
        let flow = settings.mix.pick(rng.random_range(0..Flow::total_weight()));
        let gateway = (arrival % settings.gateways.len() as u64) as usize;
        let second = due.duration_since(start).as_secs() as u32;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let event = Event::Flow {
                flow,
                gateway,
                second,
                result: Err(Failure::NotStarted),
            };
            let _ = events.send(event).await;
            continue;
        };
        let shop = shop.clone();
        let events = events.clone();
        tokio::spawn(async move {
            run_and_report(&shop, &events, (flow, gateway, arrival), due, second).await;
            drop(permit);
        });
    }
    // Every arrival has ended once all permits are back.
    let all = u32::try_from(settings.max_in_flight).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Timing {
        start,
        dispatch_span: last_dispatch.duration_since(start),
        max_dispatch_lag,
    }
}

/// Runs `settings.shoppers` shoppers against `shop`, each starting its
/// next flow when the last one ended, until the run's duration is over;
/// returns once every flow has ended and been reported on `events`.
pub async fn drive_closed(
    settings: &Settings,
    shop: Arc<Shop>,
    events: mpsc::Sender<Event>,
) -> Timing {
    let shoppers = settings.shoppers.unwrap_or(1);
    let start = Instant::now();
    let end = start + settings.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for shopper in 0..shoppers {
        let shop = shop.clone();
        let events = events.clone();
        let mix = settings.mix;
        let gateways = settings.gateways.len() as u64;
        tasks.spawn(async move {
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            let mut arrival = shopper as u64;
            loop {
                let due = Instant::now();
                if due >= end {
                    break;
                }
                let flow = mix.pick(rng.random_range(0..Flow::total_weight()));
                let gateway = (arrival % gateways) as usize;
                let second = due.duration_since(start).as_secs() as u32;
                run_and_report(&shop, &events, (flow, gateway, arrival), due, second).await;
                arrival += shoppers as u64;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Timing {
        start,
        dispatch_span: start.elapsed(),
        max_dispatch_lag: Duration::ZERO,
    }
}

/// Runs one arrival (`flow` through `gateway`) and reports how it ended.
async fn run_and_report(
    shop: &Shop,
    events: &mpsc::Sender<Event>,
    (flow, gateway, arrival): (Flow, usize, u64),
    due: Instant,
    second: u32,
) {
    let result = shop.run(flow, gateway, arrival, due, second).await;
    let event = Event::Flow {
        flow,
        gateway,
        second,
        result,
    };
    // The receiver lives until every arrival has ended.
    let _ = events.send(event).await;
}
