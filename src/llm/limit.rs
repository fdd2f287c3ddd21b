//! Pacing of calls to one provider: a request rate (governor's GCRA) and a
//! cap on calls in flight that adapts to the provider (AIMD): halved when
//! the provider says it is overloaded (429 or 503), one more on each
//! success, never above `LLM_MAX_IN_FLIGHT`. DeepSeek caps concurrency per
//! account and answers 429 past it; a fixed cap above the account's would
//! turn most calls into 429s.
//!
//! governor's own `until_ready` sleeps on `futures-timer` against a `quanta`
//! clock, which no test can drive. So the limiter reads a [`LimitClock`] and
//! waits through it: in production that is tokio's clock and
//! `tokio::time::sleep`; in tests a manual clock that jumps forward instead of
//! sleeping, so a 30 s wait takes no real time (tokio's paused clock would
//! do the same, but the crate does not enable tokio's `test-util`).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::Notify;

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

/// The adaptive in-flight cap shared by a client and its clones.
#[derive(Debug)]
struct Slots {
    state: Mutex<SlotState>,
    freed: Notify,
    max: usize,
    /// The current limit, for the gauge and readers that hold no lock.
    limit: AtomicU64,
}

#[derive(Debug)]
struct SlotState {
    in_flight: usize,
    limit: usize,
    /// Bumped by every decrease: calls sent before it carry the old epoch,
    /// so a burst of 429s from one window halves the limit once, not once
    /// per refused call.
    epoch: u64,
    /// Successes since the limit last grew.
    credit: usize,
}

/// A call's place in flight; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    epoch: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.slots.state.lock().expect("slot state lock");
        s.in_flight -= 1;
        drop(s);
        self.slots.freed.notify_one();
    }
}

impl Slots {
    fn new(max: usize) -> Self {
        Slots {
            state: Mutex::new(SlotState {
                in_flight: 0,
                limit: max,
                epoch: 0,
                credit: 0,
            }),
            freed: Notify::new(),
            max,
            limit: AtomicU64::new(max as u64),
        }
    }

    async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            // Registered before the check, so a place freed in between wakes
            // this waiter (a dropped waiter passes its wake-up on).
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.state.lock().expect("slot state lock");
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Slot {
                        slots: Arc::clone(self),
                        epoch: s.epoch,
                    };
                }
            }
            freed.await;
        }
    }

    fn set_limit(&self, s: &mut SlotState, limit: usize) {
        s.limit = limit;
        self.limit.store(limit as u64, Ordering::Relaxed);
    }
}

/// The pacing of one client and its clones.
#[derive(Debug)]
pub(crate) struct Limits {
    rate: Option<Governor>,
    clock: LimitClock,
    slots: Arc<Slots>,
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
            slots: Arc::new(Slots::new(max_in_flight.max(1))),
        }
    }

    /// Waits for a free place under the current limit, then for the rate
    /// limit. Never fails.
    ///
    /// The place comes first so that the rate cell is taken just before the
    /// request is sent: taking it first and then queueing for a place would
    /// let calls that waited go out in a burst above the rate.
    ///
    /// Cancel-safe: dropping the future while it waits holds nothing, and
    /// the place is freed when the returned slot drops.
    pub async fn acquire(&self) -> Slot {
        let slot = self.slots.acquire().await;
        while let Some(wait) = self.rate_wait() {
            self.clock.sleep(wait).await;
        }
        slot
    }

    /// A call succeeded: one more place per window of successes (a window
    /// is `limit` of them, TCP's congestion avoidance), up to the
    /// configured maximum. Growing by one per success would climb back past
    /// the provider's cap within a few calls of every halving and buy a 429
    /// each time; per window, the limit spends most of its time under it.
    pub fn success(&self) -> usize {
        let mut s = self.slots.state.lock().expect("slot state lock");
        if s.limit >= self.slots.max {
            return s.limit;
        }
        s.credit += 1;
        if s.credit >= s.limit {
            s.credit = 0;
            let limit = s.limit + 1;
            self.slots.set_limit(&mut s, limit);
            drop(s);
            self.slots.freed.notify_one();
            return limit;
        }
        s.limit
    }

    /// The provider refused `slot`'s call as overloaded: the limit halves
    /// (at least 1), once per window of calls sent under the same limit.
    pub fn overloaded(&self, slot: &Slot) -> usize {
        let mut s = self.slots.state.lock().expect("slot state lock");
        if slot.epoch == s.epoch {
            s.credit = 0;
            let limit = (s.limit / 2).max(1);
            self.slots.set_limit(&mut s, limit);
            s.epoch += 1;
        }
        s.limit
    }

    /// The current in-flight limit.
    pub fn limit(&self) -> usize {
        self.slots.limit.load(Ordering::Relaxed) as usize
    }

    /// Takes a rate cell (`None`) or says how long until one is free.
    fn rate_wait(&self) -> Option<Duration> {
        let rate = self.rate.as_ref()?;
        rate.check()
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Calls holding a place right now.
    pub fn in_flight(&self) -> usize {
        self.slots.state.lock().expect("slot state lock").in_flight
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
    async fn overload_halves_the_limit_once_per_window_and_successes_grow_it_back() {
        let limits = Limits::with_clock(0, 8, LimitClock::manual());
        let window: Vec<Slot> =
            futures_util::future::join_all((0..8).map(|_| limits.acquire())).await;
        assert_eq!(limits.in_flight(), 8);
        // Eight 429s from one window: one halving, not 8 -> 0.
        for slot in &window {
            limits.overloaded(slot);
        }
        assert_eq!(limits.limit(), 4);
        drop(window);
        assert_eq!(limits.in_flight(), 0);
        let held: Vec<Slot> =
            futures_util::future::join_all((0..4).map(|_| limits.acquire())).await;
        assert!(
            limits.acquire().now_or_never().is_none(),
            "a fifth call waits under the halved limit"
        );
        limits.overloaded(&held[0]);
        assert_eq!(limits.limit(), 2, "a call of the new window halves again");
        // One more place per window: 2 successes to 3, 3 more to 4, ...
        let grown: Vec<usize> = (0..9).map(|_| limits.success()).collect();
        assert_eq!(grown, [2, 3, 3, 3, 4, 4, 4, 4, 5]);
        for _ in 0..100 {
            limits.success();
        }
        assert_eq!(limits.limit(), 8, "never above the configured maximum");
        let one = Limits::with_clock(0, 1, LimitClock::manual());
        let slot = one.acquire().await;
        assert_eq!(one.overloaded(&slot), 1, "never below one");
    }

    #[tokio::test]
    async fn a_waiter_gets_the_place_a_success_adds() {
        let limits = Arc::new(Limits::with_clock(0, 2, LimitClock::manual()));
        let a = limits.acquire().await;
        let b = limits.acquire().await;
        limits.overloaded(&a);
        drop(b);
        assert_eq!(limits.limit(), 1);
        let waiter = tokio::spawn({
            let limits = Arc::clone(&limits);
            async move { drop(limits.acquire().await) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one in flight under a limit of one");
        limits.success();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the added place wakes the waiter")
            .unwrap();
        drop(a);
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
