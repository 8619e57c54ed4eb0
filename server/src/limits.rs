//! Rate limits: per client IP on the auth endpoints (password guessing, sign-up floods) and on
//! public market-data reads (rate, and requests in flight at once), per user on the order
//! endpoints (a runaway bot must not crowd everyone else out of the single writer; each item of
//! a batch counts) and on the faucet. Keyed token buckets from `governor`, in process.
//!
//! Owns the quotas and the keyed buckets; a refused request becomes `Error::RateLimited` with
//! the wait, answered 429 with `Retry-After`. Must never count a request twice or block: a
//! check is a few atomic operations. (With several instances behind a load balancer each keeps
//! its own buckets.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use engine::units::BATCH_ITEMS_MAX;
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
    /// Orders (place, amend, cancel, cancel-all, each item of a batch) one user may send per
    /// second. A full batch may always be sent at once: the bucket holds at least
    /// `BATCH_ITEMS_MAX` items, refilled at this rate.
    pub orders_per_second: NonZeroU32,
    /// Faucet calls one user may make per minute.
    pub faucet_per_minute: NonZeroU32,
    /// Public market-data reads (book, ticker, trades, candles) one client IP may make per
    /// second (a burst of as many).
    pub reads_per_second: NonZeroU32,
    /// Public market-data reads one client IP may have in flight at once.
    pub reads_in_flight: NonZeroU32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            auth_per_minute: NonZeroU32::new(30).expect("non-zero"),
            orders_per_second: NonZeroU32::new(50).expect("non-zero"),
            faucet_per_minute: NonZeroU32::new(5).expect("non-zero"),
            reads_per_second: NonZeroU32::new(100).expect("non-zero"),
            reads_in_flight: NonZeroU32::new(16).expect("non-zero"),
        }
    }
}

pub struct Limits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    orders: DefaultKeyedRateLimiter<Uuid>,
    faucet: DefaultKeyedRateLimiter<Uuid>,
    reads: DefaultKeyedRateLimiter<IpAddr>,
    reads_in_flight: Arc<Mutex<HashMap<IpAddr, u32>>>,
    reads_in_flight_max: u32,
    checks: AtomicU64,
}

/// One client's place among its reads in flight; given back when dropped.
pub struct ReadSlot {
    ip: IpAddr,
    in_flight: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        let batch_items = NonZeroU32::new(BATCH_ITEMS_MAX as u32).expect("non-zero");
        let orders_burst = config.orders_per_second.max(batch_items);
        Limits {
            auth: RateLimiter::keyed(Quota::per_minute(config.auth_per_minute)),
            orders: RateLimiter::keyed(
                Quota::per_second(config.orders_per_second).allow_burst(orders_burst),
            ),
            faucet: RateLimiter::keyed(Quota::per_minute(config.faucet_per_minute)),
            reads: RateLimiter::keyed(Quota::per_second(config.reads_per_second)),
            reads_in_flight: Arc::default(),
            reads_in_flight_max: config.reads_in_flight.get(),
            checks: AtomicU64::new(0),
        }
    }

    pub fn auth(&self, ip: IpAddr) -> Result<(), Error> {
        self.prune();
        refused(self.auth.check_key(&ip))
    }

    /// `items` orders from `user` (1, or a batch's items).
    pub fn orders(&self, user: Uuid, items: usize) -> Result<(), Error> {
        self.prune();
        let items = u32::try_from(items.clamp(1, BATCH_ITEMS_MAX))
            .ok()
            .and_then(NonZeroU32::new)
            .expect("1..=BATCH_ITEMS_MAX");
        match self.orders.check_key_n(&user, items) {
            Ok(checked) => refused(checked),
            // Cannot happen (the bucket holds a whole batch); refusing is the safe answer.
            Err(_) => Err(Error::RateLimited {
                retry_after_secs: 1,
            }),
        }
    }

    /// A public read from `ip`: within its rate, and a place among its reads in flight (a
    /// client at its most is refused at once rather than queued).
    pub fn read(&self, ip: IpAddr) -> Result<ReadSlot, Error> {
        self.prune();
        refused(self.reads.check_key(&ip))?;
        let mut in_flight = self
            .reads_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = in_flight.entry(ip).or_insert(0);
        if *count >= self.reads_in_flight_max {
            return Err(Error::RateLimited {
                retry_after_secs: 1,
            });
        }
        *count += 1;
        Ok(ReadSlot {
            ip,
            in_flight: self.reads_in_flight.clone(),
        })
    }

    pub fn faucet(&self, user: Uuid) -> Result<(), Error> {
        self.prune();
        refused(self.faucet.check_key(&user))
    }

    fn prune(&self) {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY_CHECKS)
        {
            self.auth.retain_recent();
            self.orders.retain_recent();
            self.faucet.retain_recent();
            self.reads.retain_recent();
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
            faucet_per_minute: NonZeroU32::new(1).unwrap(),
            reads_per_second: NonZeroU32::new(1_000).unwrap(),
            reads_in_flight: NonZeroU32::new(2).unwrap(),
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
        // A whole batch fits the bucket; after it, not one more order does.
        assert!(limits.orders(alice, BATCH_ITEMS_MAX).is_ok());
        assert!(limits.orders(alice, 1).is_err());
        assert!(limits.orders(bob, 60).is_ok());
        assert!(limits.orders(bob, 60).is_err(), "each item counts");
        assert!(limits.faucet(alice).is_ok());
        assert!(limits.faucet(alice).is_err());
        assert!(limits.faucet(bob).is_ok());
        // Two reads in flight per client: a third waits for one to end.
        let first = limits.read(ip).unwrap();
        let _second = limits.read(ip).unwrap();
        assert!(limits.read(ip).is_err());
        assert!(limits.read("192.0.2.8".parse().unwrap()).is_ok());
        drop(first);
        assert!(limits.read(ip).is_ok());
    }
}
