//! The login throttle's policy, driven by a fake clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn refused(verdict: Verdict) -> Option<(Scope, Duration)> {
    match verdict {
        Verdict::Refused { scope, retry_after } => Some((scope, retry_after)),
        Verdict::Admitted { .. } => None,
    }
}

/// Fails `n` admitted attempts as `account` from `address` at `now`.
fn fail(throttle: &mut LoginThrottle, account: &str, address: IpAddr, n: u32, now: Instant) {
    for _ in 0..n {
        assert_eq!(refused(throttle.admit(account, address, now)), None);
        throttle.failed(account, address, now);
    }
}

#[test]
fn a_guesser_backs_off_exponentially_after_the_free_attempts() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    fail(
        &mut throttle,
        "user001",
        ip(1),
        config.free_attempts + 1,
        now,
    );
    let (scope, wait) = refused(throttle.admit("user001", ip(1), now)).expect("refused");
    assert_eq!((scope, wait), (Scope::AccountAddress, config.base_delay));

    let later = now + config.base_delay;
    fail(&mut throttle, "user001", ip(1), 1, later);
    let (_, wait) = refused(throttle.admit("user001", ip(1), later)).expect("refused");
    assert_eq!(wait, 2 * config.base_delay, "the delay doubles");
}

#[test]
fn concurrent_attempts_count_before_their_hashes_finish() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    let admitted = (0..16)
        .filter(|_| refused(throttle.admit("user001", ip(1), now)).is_none())
        .count();
    assert_eq!(admitted, config.free_attempts as usize + 1);
}

#[test]
fn the_owner_still_logs_in_from_another_address() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    fail(
        &mut throttle,
        "user001",
        ip(1),
        config.free_attempts + 1,
        now,
    );
    assert!(refused(throttle.admit("user001", ip(1), now)).is_some());
    assert_eq!(
        throttle.admit("user001", ip(2), now),
        Verdict::Admitted {
            delay: Duration::ZERO
        }
    );
}

#[test]
fn an_account_under_attack_is_delayed_never_refused() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    for address in 0..config.slow_account_after {
        fail(&mut throttle, "user001", ip(address as u8), 1, now);
    }
    assert_eq!(
        throttle.admit("user001", ip(200), now),
        Verdict::Admitted {
            delay: config.account_delay
        }
    );
    let forgotten = now + config.forget_after;
    assert_eq!(
        throttle.admit("user001", ip(201), forgotten),
        Verdict::Admitted {
            delay: Duration::ZERO
        }
    );
}

#[test]
fn an_address_spraying_accounts_is_refused_but_successes_never_count() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    for user in 0..1000 {
        let account = format!("user{user:03}");
        assert!(refused(throttle.admit(&account, ip(1), now)).is_none());
        throttle.succeeded(&account, ip(1));
    }
    for user in 0..=config.free_address_failures {
        fail(&mut throttle, &format!("user{user:03}"), ip(1), 1, now);
    }
    let (scope, _) = refused(throttle.admit("someone", ip(1), now)).expect("refused");
    assert_eq!(scope, Scope::Address);
}

#[test]
fn a_success_clears_the_pair() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    fail(&mut throttle, "user001", ip(1), config.free_attempts, now);
    assert!(refused(throttle.admit("user001", ip(1), now)).is_none());
    throttle.succeeded("user001", ip(1));
    fail(&mut throttle, "user001", ip(1), config.free_attempts, now);
}

#[test]
fn memory_is_bounded() {
    let config = ThrottleConfig {
        max_keys: 100,
        ..ThrottleConfig::default()
    };
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    for n in 0..10_000u32 {
        let address = IpAddr::V4(Ipv4Addr::from(n));
        let account = format!("{n}{}", "x".repeat(1000));
        throttle.admit(&account, address, now);
        throttle.failed(&account, address, now);
    }
    assert!(throttle.tracked() <= 3 * config.max_keys);
}

#[test]
fn ipv6_addresses_share_a_key_per_64() {
    let config = ThrottleConfig::default();
    let mut throttle = LoginThrottle::new(config);
    let now = Instant::now();
    let host = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last));
    fail(
        &mut throttle,
        "user001",
        host(1),
        config.free_attempts + 1,
        now,
    );
    assert!(refused(throttle.admit("user001", host(2), now)).is_some());
}
