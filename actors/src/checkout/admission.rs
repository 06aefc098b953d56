//! Admission control of the checkout owner: an order is taken only if it
//! can be confirmed before its client's deadline, so past saturation the
//! owner refuses the excess at once (503, no order placed) instead of
//! queueing work for clients that will have given up.
//!
//! Pure: the shell passes the time in ms since its start.
//!
//! The estimate is Little's law. The owner confirms orders at a measured
//! rate `X` (over the last [`RATE_WINDOW_MS`]); with `n` orders in flight
//! ahead of it, a new one is confirmed after about `max(base, n / X)`, where
//! `base` is the confirmation time of an unloaded owner (the lowest
//! recent one). It is admitted if that fits in [`BUDGET_SHARE`] of its
//! remaining budget and waits at most [`QUEUE_TARGET_MS`] beyond `base`.
//! The rate is over the span the window's confirmations cover, so a
//! ramp-up is not mistaken for a slow owner; until [`MIN_SAMPLES`] are in the window (a new or idle
//! owner), at most [`COLD_IN_FLIGHT`] orders are in flight.
//!
//! Invariants: `in_flight` counts admitted orders not yet finished (the
//! shell calls [`Admission::finished`] once per admitted order, whatever
//! its outcome); the rate and `base` only use orders that finished.

use std::collections::VecDeque;

/// The rate is measured over this window.
pub const RATE_WINDOW_MS: u64 = 1_000;
/// Share of its remaining budget an order's expected confirmation may use.
pub const BUDGET_SHARE: f64 = 0.5;
/// Longest wait beyond the unloaded confirmation time admitted whatever
/// the budget: past saturation the queue stays this short, so an
/// overloaded owner spends its time on orders that are confirmed quickly
/// (as CoDel keeps a queue at its target delay). A slow payment provider
/// raises the unloaded time, not the queue, so it is never refused for
/// that alone.
pub const QUEUE_TARGET_MS: u64 = 200;
/// Orders in flight at most while no rate is known yet.
pub const COLD_IN_FLIGHT: usize = 64;
/// Confirmations in the window before the rate is trusted.
pub const MIN_SAMPLES: usize = 16;
/// `base` forgets its lowest sample after this long.
const BASE_WINDOW_MS: u64 = 5_000;

/// Why an order was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When a retry may be admitted, in ms.
    pub retry_after_ms: u64,
    /// The expected confirmation time that did not fit, in ms.
    pub expected_ms: u64,
}

/// The owner's admission state.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// Admitted orders not yet finished.
    in_flight: usize,
    /// Finish times of confirmed orders within the rate window.
    confirmed: VecDeque<u64>,
    /// Recent confirmation times: (finished at, took), lowest kept.
    base: VecDeque<(u64, u64)>,
}

impl Admission {
    /// A fresh state: nothing in flight, no rate known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Orders admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Confirmed orders a second over the span the last window's
    /// confirmations cover, or `None` with fewer than [`MIN_SAMPLES`].
    pub fn rate_per_s(&self, now_ms: u64) -> Option<f64> {
        let mut recent = self
            .confirmed
            .iter()
            .filter(|at| now_ms.saturating_sub(**at) < RATE_WINDOW_MS);
        let oldest = *recent.next()?;
        let count = 1 + recent.count();
        if count < MIN_SAMPLES {
            return None;
        }
        let span_ms = now_ms.saturating_sub(oldest).max(10);
        Some(count as f64 * 1_000.0 / span_ms as f64)
    }

    /// The confirmation time expected for one more order, in ms: the
    /// unloaded time alone while no rate is known, `None` if nothing was
    /// confirmed lately.
    pub fn expected_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.forget(now_ms);
        let base = self.base.front().map(|(_, took)| *took);
        let Some(rate) = self.rate_per_s(now_ms) else {
            return base;
        };
        let queue = self.in_flight as f64 * 1_000.0 / rate;
        Some(base.unwrap_or(0).max(queue.ceil() as u64))
    }

    /// Admits an order with `budget_ms` left, or says why not.
    pub fn admit(&mut self, now_ms: u64, budget_ms: u64) -> Result<(), Refused> {
        let base = self.base.front().map_or(0, |(_, took)| *took);
        let allowed = ((budget_ms as f64 * BUDGET_SHARE) as u64).min(base + QUEUE_TARGET_MS);
        if let Some(expected) = self.expected_ms(now_ms) {
            if expected > allowed {
                return Err(Refused {
                    retry_after_ms: expected.saturating_sub(allowed).clamp(100, 5_000),
                    expected_ms: expected,
                });
            }
        }
        if self.rate_per_s(now_ms).is_none() && self.in_flight >= COLD_IN_FLIGHT {
            return Err(Refused {
                retry_after_ms: 1_000,
                expected_ms: 0,
            });
        }
        self.in_flight += 1;
        Ok(())
    }

    /// An admitted order finished after `took_ms`; `confirmed` if it was.
    pub fn finished(&mut self, now_ms: u64, took_ms: u64, confirmed: bool) {
        debug_assert!(self.in_flight > 0, "finished more orders than admitted");
        self.in_flight = self.in_flight.saturating_sub(1);
        if confirmed {
            self.confirmed.push_back(now_ms);
            // Only samples that beat the ones before them matter to the
            // minimum: the deque stays increasing, so its front is it.
            while self.base.back().is_some_and(|(_, took)| *took >= took_ms) {
                self.base.pop_back();
            }
            self.base.push_back((now_ms, took_ms));
        }
        self.forget(now_ms);
    }

    fn forget(&mut self, now_ms: u64) {
        while self
            .confirmed
            .front()
            .is_some_and(|at| now_ms.saturating_sub(*at) >= RATE_WINDOW_MS)
        {
            self.confirmed.pop_front();
        }
        while self
            .base
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) >= BASE_WINDOW_MS)
        {
            self.base.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_owner_admits_a_bounded_number() {
        let mut admission = Admission::new();
        for _ in 0..COLD_IN_FLIGHT {
            assert!(admission.admit(0, 5_000).is_ok());
        }
        assert!(admission.admit(0, 5_000).is_err());
        admission.finished(10, 10, false);
        assert!(admission.admit(10, 5_000).is_ok());
    }

    #[test]
    fn an_unloaded_owner_admits_what_fits_its_base_latency() {
        let mut admission = Admission::new();
        for i in 0..100 {
            admission.admit(i * 10, 5_000).unwrap();
            admission.finished(i * 10 + 8, 8, true);
        }
        // 100 orders/s, 8 ms each, nothing in flight: 8 ms expected.
        assert_eq!(admission.expected_ms(1_000), Some(8));
        assert!(admission.admit(1_000, 30).is_ok());
        let refused = admission.admit(1_000, 10).unwrap_err();
        assert!(refused.retry_after_ms >= 100);
    }

    #[test]
    fn a_saturated_owner_refuses_what_it_cannot_confirm_in_time() {
        let mut admission = Admission::new();
        // 1,000 orders/s confirmed in the last second.
        for i in 0..1_000 {
            admission.admit(i, 5_000).unwrap();
            admission.finished(i, 5, true);
        }
        // With a 2 s budget, 1 s may be spent, but the queue target
        // admits about 5 + 200 ms of work: 205 orders at 1,000/s.
        let mut admitted = 0;
        while admission.admit(1_000, 2_000).is_ok() {
            admitted += 1;
        }
        assert!(
            (180..=206).contains(&admitted),
            "admitted {admitted} at 1,000/s with a {QUEUE_TARGET_MS} ms queue target"
        );
        let refused = admission.admit(1_000, 2_000).unwrap_err();
        assert!(refused.expected_ms > QUEUE_TARGET_MS);
        // A short budget admits less.
        let mut short = admission.clone();
        for _ in 0..150 {
            short.finished(1_000, 1, false);
        }
        assert!(short.admit(1_000, 60).is_err(), "50 in flight take 50 ms");
        // As they finish, room comes back.
        for _ in 0..100 {
            admission.finished(1_001, 1, true);
        }
        assert!(admission.admit(1_001, 2_000).is_ok());
    }

    #[test]
    fn a_slow_provider_is_not_mistaken_for_a_queue() {
        let mut admission = Admission::new();
        // Every order takes 400 ms (the provider), 20 a second.
        for i in 0..40 {
            admission.admit(i * 50, 5_000).unwrap();
            admission.finished(i * 50 + 400, 400, true);
        }
        assert!(admission.admit(2_400, 5_000).is_ok());
        assert!(
            admission.admit(2_400, 500).is_err(),
            "400 ms do not fit in 250"
        );
    }

    #[test]
    fn the_rate_forgets_old_confirmations() {
        let mut admission = Admission::new();
        for i in 0..MIN_SAMPLES as u64 {
            admission.admit(i, 1_000).unwrap();
            admission.finished(i, 5, true);
        }
        assert!(admission.rate_per_s(100).is_some());
        assert_eq!(admission.rate_per_s(RATE_WINDOW_MS + 20), None);
        // The unloaded time is kept longer; then nothing is known.
        assert_eq!(admission.expected_ms(RATE_WINDOW_MS + 20), Some(5));
        assert_eq!(admission.expected_ms(20_000), None);
    }

    #[test]
    fn a_ramp_up_is_not_taken_for_a_slow_owner() {
        let mut admission = Admission::new();
        // 8 clients start at once after an idle spell; 16 orders are
        // confirmed in the first 30 ms.
        for _ in 0..8 {
            admission.admit(0, 5_000).unwrap();
        }
        for i in 0..16 {
            admission.finished(2 * i, 10, true);
            admission.admit(2 * i, 5_000).unwrap();
        }
        // About 530 orders/s with 8 in flight: 15 ms, not a second.
        let expected = admission.expected_ms(30).unwrap();
        assert!(expected < 50, "expected {expected} ms");
    }
}
