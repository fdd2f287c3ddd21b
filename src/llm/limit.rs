//! Pacing of calls to one provider: a request rate (governor's GCRA) and a
//! cap on calls in flight (a semaphore).
//!
//! governor's own `until_ready` sleeps on `futures-timer` against a `quanta`
//! clock, which no test can drive. So the limiter reads a [`LimitClock`] and
//! waits through it: in production that is tokio's clock and
//! `tokio::time::sleep`; in tests a manual clock that jumps forward instead of
//! sleeping, so a 30 s wait takes no real time (tokio's paused clock would
//! do the same, but the crate does not enable tokio's `test-util`).

use std::num::NonZeroU32;
use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The time the rate limiter reads and waits on.
#[derive(Debug, Clone)]
pub(crate) enum LimitClock {
    /// Time since the client was built, on tokio's clock.
    Tokio { origin: tokio::time::Instant },
    /// Test time: starts at 0 and jumps forward by every wait.
    #[cfg(test)]
    Manual(Arc<AtomicU64>),
}

impl LimitClock {
    fn tokio() -> Self {
        LimitClock::Tokio {
            origin: tokio::time::Instant::now(),
        }
    }

    #[cfg(test)]
    pub fn manual() -> Self {
        LimitClock::Manual(Arc::new(AtomicU64::new(0)))
    }

    async fn sleep(&self, d: Duration) {
        match self {
            LimitClock::Tokio { .. } => tokio::time::sleep(d).await,
            #[cfg(test)]
            LimitClock::Manual(nanos) => {
                nanos.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }
    }
}

impl Clock for LimitClock {
    // A `Duration` since the origin: governor implements its `Reference`
    // trait for it.
    type Instant = Duration;

    fn now(&self) -> Duration {
        match self {
            LimitClock::Tokio { origin } => origin.elapsed(),
            #[cfg(test)]
            LimitClock::Manual(nanos) => Duration::from_nanos(nanos.load(Ordering::SeqCst)),
        }
    }
}

type Governor = RateLimiter<NotKeyed, InMemoryState, LimitClock, NoOpMiddleware<Duration>>;

/// The pacing of one client and its clones.
#[derive(Debug)]
pub(crate) struct Limits {
    rate: Option<Governor>,
    clock: LimitClock,
    slots: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Limits {
    /// `per_minute` 0 turns the rate limit off; `max_in_flight` must be ≥ 1.
    pub fn new(per_minute: u32, max_in_flight: usize) -> Self {
        Limits::with_clock(per_minute, max_in_flight, LimitClock::tokio())
    }

    pub(crate) fn with_clock(per_minute: u32, max_in_flight: usize, clock: LimitClock) -> Self {
        // A burst of one minute's worth: a freshly started worker with a
        // backlog may send that many at once, then one per 60/n seconds.
        let rate = NonZeroU32::new(per_minute)
            .map(|n| RateLimiter::direct_with_clock(Quota::per_minute(n), clock.clone()));
        Limits {
            rate,
            clock,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
        }
    }

    /// Waits for a free slot, then for the rate limit. Never fails.
    ///
    /// The slot comes first so that the rate cell is taken just before the
    /// request is sent: taking it first and then queueing for a slot would let
    /// calls that waited for slots go out in a burst above the rate.
    ///
    /// Cancel-safe: dropping the future while it waits holds nothing (the
    /// semaphore queue entry is removed; the rate limiter keeps no waiter
    /// state), and the slot is released when the returned permit drops.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the in-flight semaphore is never closed");
        while let Some(wait) = self.rate_wait() {
            self.clock.sleep(wait).await;
        }
        permit
    }

    /// Takes a rate cell (`None`) or says how long until one is free.
    fn rate_wait(&self) -> Option<Duration> {
        let rate = self.rate.as_ref()?;
        rate.check()
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Calls holding a slot right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.slots.available_permits()
    }

    /// The limiter's clock reading (tests check waits against it).
    #[cfg(test)]
    pub fn now(&self) -> Duration {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn the_call_past_the_per_minute_burst_waits_for_the_next_cell() {
        let limits = Limits::with_clock(2, 8, LimitClock::manual());
        drop(limits.acquire().await);
        drop(limits.acquire().await);
        assert_eq!(limits.now(), Duration::ZERO, "the burst of 2 goes at once");
        assert_eq!(limits.rate_wait(), Some(Duration::from_secs(30)));
        drop(limits.acquire().await);
        // 2 per minute replenishes one cell every 30 s.
        assert_eq!(limits.now(), Duration::from_secs(30));
        drop(limits.acquire().await);
        assert_eq!(limits.now(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_zero_rate_means_no_rate_limit() {
        let limits = Limits::with_clock(0, 1, LimitClock::manual());
        for _ in 0..1000 {
            drop(limits.acquire().await);
        }
        assert_eq!(limits.now(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_caller_past_the_cap_waits_and_a_dropped_waiter_holds_nothing() {
        let limits = Limits::with_clock(60, 1, LimitClock::manual());
        let held = limits.acquire().await;
        assert_eq!(limits.in_flight(), 1);
        assert!(
            limits.acquire().now_or_never().is_none(),
            "no slot while one is held"
        );
        drop(held);
        assert_eq!(limits.in_flight(), 0);
        let again = limits
            .acquire()
            .now_or_never()
            .expect("the slot is free again");
        assert_eq!(limits.in_flight(), 1);
        drop(again);
    }

    #[tokio::test]
    async fn the_production_clock_waits_on_tokio_time() {
        // 60 000 a minute is one cell per millisecond: a real but tiny wait.
        let limits = Limits::new(60_000, 1);
        let start = tokio::time::Instant::now();
        for _ in 0..60_001 {
            if limits.rate_wait().is_some() {
                break;
            }
        }
        drop(limits.acquire().await);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
