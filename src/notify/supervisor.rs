//! Keeps the push delivery loop alive. A loop that panics, or ends before
//! its stop, is logged, counted and started again after a backoff; while it
//! is down `plan_push_delivery_up` is 0 and `/readyz` fails, because a
//! worker whose pushes silently stopped must not look healthy.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::telemetry::metrics::{PUSH_DELIVERY_RESTARTS, PUSH_DELIVERY_UP};

/// The loop's state, shown to `/readyz`, metrics and tests.
#[derive(Debug)]
pub struct LoopState {
    /// Watchable, so that tests can await a change instead of polling.
    pub up: watch::Sender<bool>,
    restarts: AtomicU64,
}

impl Default for LoopState {
    fn default() -> Self {
        Self {
            up: watch::Sender::new(false),
            restarts: AtomicU64::new(0),
        }
    }
}

impl LoopState {
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
        metrics::gauge!(PUSH_DELIVERY_UP).set(if up { 1.0 } else { 0.0 });
    }
}

/// Delays between restarts: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    fn delay(self, failures: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(failures.min(16)))
            .min(self.max)
    }
}

/// Runs the task `start` makes until `stop`, making a new one whenever it
/// panics or ends early. Each task runs in its own tokio task, so that a
/// panic is caught at its join instead of taking the supervisor down.
pub async fn supervise<F, Fut>(
    mut start: F,
    state: Arc<LoopState>,
    backoff: Backoff,
    stop: CancellationToken,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failures = 0;
    loop {
        let started = Instant::now();
        state.set_up(true);
        let end = tokio::spawn(start()).await;
        if stop.is_cancelled() {
            state.set_up(false);
            return;
        }
        let why = match end {
            Ok(()) => "ended by itself".to_owned(),
            Err(err) if err.is_panic() => format!("panicked: {}", panic_text(err.into_panic())),
            Err(err) => err.to_string(),
        };
        // A loop that ran well for a while starts over from the short delay;
        // one that dies at once (a poison row, say) waits longer each time.
        if started.elapsed() > backoff.max {
            failures = 0;
        }
        let delay = backoff.delay(failures);
        failures += 1;
        // Counted before it shows as down, so that whoever sees it down sees
        // the restart too.
        let restarts = state.restarts.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::counter!(PUSH_DELIVERY_RESTARTS).increment(1);
        state.set_up(false);
        tracing::error!(
            reason = %why,
            restarts,
            restart_in_seconds = delay.as_secs_f64(),
            "push delivery loop stopped; restarting it"
        );
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::mpsc;

    use super::*;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };

    /// Starts `supervise` over tasks that report their start number and
    /// then do what `behave` says for that number.
    fn spawn_supervised(
        backoff: Backoff,
        behave: fn(usize, CancellationToken) -> futures_util::future::BoxFuture<'static, ()>,
    ) -> (
        Arc<LoopState>,
        mpsc::UnboundedReceiver<usize>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let state = Arc::new(LoopState::default());
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let n = Arc::new(AtomicUsize::new(0));
        let task_stop = stop.clone();
        let start = move || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(i);
            behave(i, task_stop.clone())
        };
        let task = tokio::spawn(supervise(start, state.clone(), backoff, stop.clone()));
        (state, rx, stop, task)
    }

    #[tokio::test]
    async fn a_loop_that_panics_or_ends_is_started_again_and_counted() {
        let (state, mut started, stop, task) = spawn_supervised(QUICK, |i, stop| {
            Box::pin(async move {
                match i {
                    0 => panic!("a poison row"),
                    1 => {}
                    _ => stop.cancelled().await,
                }
            })
        });
        for i in 0..3 {
            assert_eq!(started.recv().await, Some(i));
        }
        assert_eq!(state.restarts(), 2, "one panic, one early end");
        assert!(state.is_up(), "the third run is running");
        stop.cancel();
        task.await.unwrap();
        assert!(!state.is_up());
        assert_eq!(state.restarts(), 2, "a stop is not a restart");
    }

    #[tokio::test]
    async fn the_loop_is_reported_down_until_its_restart_and_a_stop_ends_the_wait() {
        let slow = Backoff {
            first: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        };
        let (state, mut started, stop, task) =
            spawn_supervised(slow, |_, _| Box::pin(async { panic!("down") }));
        assert_eq!(started.recv().await, Some(0));
        let mut up = state.up.subscribe();
        up.wait_for(|up| !*up).await.unwrap();
        assert_eq!(state.restarts(), 1);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("a stop during the backoff ends the supervisor")
            .unwrap();
        assert!(started.try_recv().is_err(), "not started again");
    }

    #[test]
    fn restart_delays_double_up_to_the_cap() {
        let b = Backoff::DEFAULT;
        let secs: Vec<u64> = (0..8).map(|f| b.delay(f).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }
}
