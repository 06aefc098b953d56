//! Login throttling: a pure core (no tokio, no clock of its own) that
//! decides, before any password is hashed, whether a login attempt may go
//! on. The gateway holds one per node and refuses with 429 and
//! `Retry-After`.
//!
//! Three keys, three policies:
//! - **(account, address): blocks.** The guesser's own key. Every admitted
//!   attempt counts as a failure until it succeeds (so concurrent guesses
//!   cannot slip past while their hashes run); after
//!   [`ThrottleConfig::free_attempts`] the pair waits an exponentially
//!   growing delay (1 s, 2 s, 4 s, … up to [`ThrottleConfig::max_delay`])
//!   between attempts. A success clears it.
//! - **address (any account): blocks, looser.** Stops one address from
//!   spraying many accounts: counts real failures only (never successes or
//!   attempts in flight, so a load generator logging many users in from
//!   127.0.0.1 is never refused), with the same backoff after
//!   [`ThrottleConfig::free_address_failures`].
//! - **account (any address): delays, never blocks.** A per-account limit
//!   that refused would let anyone lock an account's owner out by guessing
//!   from anywhere. Instead, once an account has
//!   [`ThrottleConfig::slow_account_after`] recent failures, every attempt
//!   on it waits [`ThrottleConfig::account_delay`] before hashing: a
//!   distributed guesser is slowed, the owner logs in a second late.
//!
//! Counts are forgotten [`ThrottleConfig::forget_after`] after the last
//! failure. Memory is bounded: each map holds at most
//! [`ThrottleConfig::max_keys`] keys; at the cap, forgotten keys go first,
//! then the least recently failed. Account names are keyed by at most
//! [`MAX_KEY_CHARS`] characters, so a key's size is bounded too. IPv6
//! addresses are keyed by their /64, which one host typically owns.
//!
//! The state is per gateway: three gateways give a guesser three backoff
//! schedules, which the exponential delay still keeps to a handful of
//! guesses an hour per (account, address).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Characters of an account name used as a key; longer names (which no
/// account has) share the key of their prefix.
pub const MAX_KEY_CHARS: usize = 64;

/// The policy's numbers.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Attempts an (account, address) pair may make before backing off.
    pub free_attempts: u32,
    /// Failures an address may make (any account) before backing off.
    pub free_address_failures: u32,
    /// Failures of an account (any address) after which attempts on it
    /// are delayed.
    pub slow_account_after: u32,
    /// First backoff delay; each further failure doubles it.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Delay of each attempt on an account with many failures.
    pub account_delay: Duration,
    /// A key with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Keys per map at most.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            free_attempts: 5,
            free_address_failures: 50,
            slow_account_after: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            account_delay: Duration::from_secs(1),
            forget_after: Duration::from_secs(900),
            max_keys: 10_000,
        }
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Too many attempts on this account from this address.
    AccountAddress,
    /// Too many failures from this address.
    Address,
}

impl Scope {
    /// The scope as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountAddress => "account_address",
            Self::Address => "address",
        }
    }
}

/// What to do with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on, after waiting `delay` (zero unless the account is under attack).
    Admitted {
        /// Wait before hashing.
        delay: Duration,
    },
    /// Refuse without hashing; the client may retry after `retry_after`.
    Refused {
        /// The limit that refused.
        scope: Scope,
        /// Time until the limit lets an attempt through.
        retry_after: Duration,
    },
}

/// Failures counted under one key.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Self {
            count: 0,
            last: now,
            blocked_until: now,
        }
    }

    fn forgotten(&self, config: &ThrottleConfig, now: Instant) -> bool {
        now >= self.blocked_until && now.saturating_duration_since(self.last) >= config.forget_after
    }

    /// Counts one failure; past `free`, blocks for the next backoff delay.
    fn add(&mut self, free: u32, config: &ThrottleConfig, now: Instant) {
        if self.forgotten(config, now) {
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.last = now;
        if self.count > free {
            let doublings = (self.count - free - 1).min(20);
            let delay = config.base_delay.saturating_mul(1 << doublings);
            self.blocked_until = now + delay.min(config.max_delay);
        }
    }

    fn refused_for(&self, now: Instant) -> Option<Duration> {
        (now < self.blocked_until).then(|| self.blocked_until - now)
    }
}

/// One gateway's login throttle.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    pairs: HashMap<(String, IpAddr), Failures>,
    addresses: HashMap<IpAddr, Failures>,
    accounts: HashMap<String, Failures>,
}

impl LoginThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Decides on an attempt to log in as `account` from `address`; an
    /// admitted attempt counts against its pair until [`Self::succeeded`].
    pub fn admit(&mut self, account: &str, address: IpAddr, now: Instant) -> Verdict {
        let config = self.config;
        let pair = (account_key(account), address_key(address));
        let pair_wait = self.pairs.get(&pair).and_then(|f| f.refused_for(now));
        if let Some(retry_after) = pair_wait {
            return Verdict::Refused {
                scope: Scope::AccountAddress,
                retry_after,
            };
        }
        let address_wait = self.addresses.get(&pair.1).and_then(|f| f.refused_for(now));
        if let Some(retry_after) = address_wait {
            return Verdict::Refused {
                scope: Scope::Address,
                retry_after,
            };
        }
        let slow = self
            .accounts
            .get(&pair.0)
            .is_some_and(|f| !f.forgotten(&config, now) && f.count >= config.slow_account_after);
        entry(&mut self.pairs, pair, &config, now).add(config.free_attempts, &config, now);
        Verdict::Admitted {
            delay: if slow {
                config.account_delay
            } else {
                Duration::ZERO
            },
        }
    }

    /// Records that an admitted attempt failed (wrong password or unknown
    /// account); returns how many failures its pair has now.
    pub fn failed(&mut self, account: &str, address: IpAddr, now: Instant) -> u32 {
        let config = self.config;
        let (account, address) = (account_key(account), address_key(address));
        entry(&mut self.addresses, address, &config, now).add(
            config.free_address_failures,
            &config,
            now,
        );
        // The account never blocks: `u32::MAX` free failures.
        entry(&mut self.accounts, account.clone(), &config, now).add(u32::MAX, &config, now);
        self.pairs.get(&(account, address)).map_or(0, |f| f.count)
    }

    /// Records that an admitted attempt succeeded: its pair starts afresh.
    pub fn succeeded(&mut self, account: &str, address: IpAddr) {
        self.pairs
            .remove(&(account_key(account), address_key(address)));
    }

    /// Records that an admitted attempt ended without a verdict on the
    /// password (the service was unavailable): it no longer counts.
    pub fn abandoned(&mut self, account: &str, address: IpAddr) {
        let pair = (account_key(account), address_key(address));
        if let Some(failures) = self.pairs.get_mut(&pair) {
            failures.count = failures.count.saturating_sub(1);
        }
    }

    /// The policy's numbers.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Keys tracked, all maps together.
    pub fn tracked(&self) -> usize {
        self.pairs.len() + self.addresses.len() + self.accounts.len()
    }
}

/// The entry of `key`, making room first if the map is at the cap.
fn entry<'a, K: Hash + Eq + Clone>(
    map: &'a mut HashMap<K, Failures>,
    key: K,
    config: &ThrottleConfig,
    now: Instant,
) -> &'a mut Failures {
    if !map.contains_key(&key) && map.len() >= config.max_keys {
        map.retain(|_, failures| !failures.forgotten(config, now));
        if map.len() >= config.max_keys {
            let oldest = map
                .iter()
                .min_by_key(|(_, failures)| failures.last)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
    }
    debug_assert!(map.len() <= config.max_keys);
    map.entry(key).or_insert_with(|| Failures::new(now))
}

fn account_key(account: &str) -> String {
    account.chars().take(MAX_KEY_CHARS).collect()
}

/// IPv4 as is; IPv6 by its /64.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;
