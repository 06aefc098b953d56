//! What the criterion benches share: under `CI` (set and not empty) they
//! run smaller and shorter, so that `cargo bench` stays quick there.

use std::time::Duration;

use criterion::Criterion;

/// True when running under CI: smaller sizes, shorter measurements.
pub fn on_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty())
}

/// Criterion's defaults, or few short samples under CI.
pub fn config() -> Criterion {
    let criterion = Criterion::default();
    if on_ci() {
        criterion
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
    } else {
        criterion
    }
}
