//! The pure parts: restart intensity arithmetic and strategy selection.

use super::*;

#[test]
fn budget_allows_max_restarts_within_the_window_and_refuses_one_more() {
    let t0 = Instant::now();
    let mut log = RestartLog::new(RestartBudget::new(3, Duration::from_secs(5)));
    assert_eq!(log.record(t0), Intensity::Within(1));
    assert_eq!(
        log.record(t0 + Duration::from_secs(1)),
        Intensity::Within(2)
    );
    assert_eq!(
        log.record(t0 + Duration::from_secs(2)),
        Intensity::Within(3)
    );
    assert_eq!(
        log.record(t0 + Duration::from_secs(3)),
        Intensity::Exhausted(4)
    );
}

#[test]
fn budget_forgets_restarts_older_than_the_window() {
    let t0 = Instant::now();
    let mut log = RestartLog::new(RestartBudget::new(1, Duration::from_millis(200)));
    assert_eq!(log.record(t0), Intensity::Within(1));
    assert_eq!(
        log.record(t0 + Duration::from_millis(250)),
        Intensity::Within(1)
    );
    assert_eq!(
        log.record(t0 + Duration::from_millis(300)),
        Intensity::Exhausted(2)
    );
    assert_eq!(
        log.record(t0 + Duration::from_millis(600)),
        Intensity::Within(1)
    );
}

#[test]
fn zero_budget_escalates_on_the_first_restart() {
    let mut log = RestartLog::new(RestartBudget::new(0, Duration::ZERO));
    assert_eq!(log.record(Instant::now()), Intensity::Exhausted(1));
}

#[test]
fn default_budget_is_three_in_five_seconds() {
    assert_eq!(
        RestartBudget::default(),
        RestartBudget::new(3, Duration::from_secs(5))
    );
}

#[test]
fn strategies_name_and_select_the_affected_children() {
    assert_eq!(Strategy::OneForOne.as_str(), "one_for_one");
    assert_eq!(Strategy::OneForAll.as_str(), "one_for_all");
    assert_eq!(Strategy::RestForOne.as_str(), "rest_for_one");
    assert_eq!(Strategy::OneForOne.affected(1, 3), 1..2);
    assert_eq!(Strategy::OneForAll.affected(1, 3), 0..3);
    assert_eq!(Strategy::RestForOne.affected(1, 3), 1..3);
}
