//! Rate limits: per client IP on the auth endpoints (password guessing, sign-up floods) and per
//! user on the order endpoints (a runaway bot must not crowd everyone else out of the single
//! writer). Keyed token buckets from `governor`, in process.
//!
//! Owns the quotas and the keyed buckets; a refused request becomes `Error::RateLimited` with
//! the wait, answered 429 with `Retry-After`. Must never count a request twice or block: a
//! check is a few atomic operations. (With several instances behind a load balancer each keeps
//! its own buckets.)

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::http::Error;

/// Buckets idle for a while are dropped every this many checks, so the key sets stay small.
const PRUNE_EVERY_CHECKS: u64 = 4_096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests to `/v1/auth/*` one IP may make per minute (a burst of as many).
    pub auth_per_minute: NonZeroU32,
    /// Order requests (place, amend, cancel, cancel-all, batch) one user may make per second.
    pub orders_per_second: NonZeroU32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            auth_per_minute: NonZeroU32::new(30).expect("non-zero"),
            orders_per_second: NonZeroU32::new(50).expect("non-zero"),
        }
    }
}

pub struct Limits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    orders: DefaultKeyedRateLimiter<Uuid>,
    checks: AtomicU64,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        Limits {
            auth: RateLimiter::keyed(Quota::per_minute(config.auth_per_minute)),
            orders: RateLimiter::keyed(Quota::per_second(config.orders_per_second)),
            checks: AtomicU64::new(0),
        }
    }

    pub fn auth(&self, ip: IpAddr) -> Result<(), Error> {
        self.prune();
        refused(self.auth.check_key(&ip))
    }

    pub fn orders(&self, user: Uuid) -> Result<(), Error> {
        self.prune();
        refused(self.orders.check_key(&user))
    }

    fn prune(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS == 0 {
            self.auth.retain_recent();
            self.orders.retain_recent();
        }
    }
}

type Instant = <DefaultClock as Clock>::Instant;

/// A refusal as the error that answers 429, with the wait rounded up to whole seconds.
fn refused(checked: Result<(), governor::NotUntil<Instant>>) -> Result<(), Error> {
    checked.map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Error::RateLimited {
            retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_past_its_quota_is_told_how_long_to_wait() {
        let limits = Limits::new(LimitsConfig {
            auth_per_minute: NonZeroU32::new(2).unwrap(),
            orders_per_second: NonZeroU32::new(1).unwrap(),
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limits.auth(ip).is_ok());
        assert!(limits.auth(ip).is_ok());
        let Err(Error::RateLimited { retry_after_secs }) = limits.auth(ip) else {
            panic!("the third request in a minute is refused");
        };
        assert!((1..=30).contains(&retry_after_secs), "{retry_after_secs}");
        // Another IP has its own bucket; so does each user.
        assert!(limits.auth("192.0.2.8".parse().unwrap()).is_ok());
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(limits.orders(alice).is_ok());
        assert!(limits.orders(alice).is_err());
        assert!(limits.orders(bob).is_ok());
    }
}
