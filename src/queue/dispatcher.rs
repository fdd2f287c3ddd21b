//! The dispatcher: sleeps until something may have work for it, then claims
//! up to its free slots. Wake sources, in order of importance: a NOTIFY, the
//! next scheduled `run_after`, a slot freed after a claim that filled every
//! slot, the fallback tick (which also reaps), and a listener reconnect.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::job::Registry;
use super::lease::{RunningJobs, StopReason};
use super::listener::ListenerEvent;
use super::runner::{AttemptEnv, run_attempt};
use super::store;
use super::store::ClaimedJob;
use crate::config::WorkerSettings;
use crate::offpeak::Economy;
use crate::telemetry::metrics as m;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Start,
    Notify,
    Schedule,
    Slot,
    Tick,
    Reconnect,
}

impl Wake {
    fn as_str(self) -> &'static str {
        match self {
            Wake::Start => "start",
            Wake::Notify => "notify",
            Wake::Schedule => "schedule",
            Wake::Slot => "slot",
            Wake::Tick => "tick",
            Wake::Reconnect => "reconnect",
        }
    }
}

pub struct Dispatcher {
    pub worker_id: String,
    pub settings: WorkerSettings,
    pub registry: Registry,
    pub env: Arc<AttemptEnv>,
    pub running: Arc<RunningJobs>,
    pub wake: Arc<Notify>,
    pub events: mpsc::UnboundedReceiver<ListenerEvent>,
    pub tasks: JoinSet<()>,
    kinds: Vec<String>,
    /// The last claim filled every slot, so a freed slot may find more work.
    last_claim_full: bool,
    /// When slots freed under a backlog are claimed even if fewer than
    /// `refill_batch` (see `REFILL_WAIT`).
    refill_at: Option<Instant>,
    /// Notifications are known to arrive; otherwise poll fast.
    notify_ok: bool,
    next_due: Option<Instant>,
    next_tick: Instant,
    next_maintenance: Instant,
    maintenance: Option<AbortOnDropHandle<()>>,
    /// The off-peak windows claimed economy jobs are checked against.
    economy: Arc<Economy>,
}

impl Dispatcher {
    pub fn new(
        worker_id: String,
        settings: WorkerSettings,
        registry: Registry,
        env: Arc<AttemptEnv>,
        wake: Arc<Notify>,
        events: mpsc::UnboundedReceiver<ListenerEvent>,
    ) -> Self {
        let now = Instant::now();
        Self {
            kinds: registry.kinds(),
            running: env.running.clone(),
            worker_id,
            registry,
            env,
            wake,
            events,
            tasks: JoinSet::new(),
            last_claim_full: false,
            refill_at: None,
            notify_ok: false,
            next_due: None,
            // Until the listener reports, assume notifications will work; a
            // failed connect reports Disconnected and switches to fast polling.
            next_tick: now + settings.poll_interval(),
            next_maintenance: now,
            maintenance: None,
            economy: Arc::default(),
            settings,
        }
    }

    /// Checks claimed economy jobs against these windows.
    pub fn with_economy(mut self, economy: Arc<Economy>) -> Self {
        self.economy = economy;
        self
    }

    /// Claims and runs jobs until `stop` fires; running jobs are left to
    /// [`Dispatcher::drain`].
    pub async fn run(&mut self, stop: &CancellationToken) {
        // The first claim waits for the listener: registered and listening
        // first, so a job inserted meanwhile is found by that claim or
        // announced by its NOTIFY (a failed connect falls back to polling).
        let mut wake: Option<Wake> = None;
        loop {
            if let Some(source) = wake.take() {
                metrics::counter!(m::WAKEUPS, "source" => source.as_str()).increment(1);
                tracing::debug!(source = source.as_str(), "dispatcher woke");
                let woke = Instant::now();
                let claimed = self.claim_round().await;
                if source == Wake::Notify && claimed > 0 {
                    metrics::histogram!(m::PICKUP_LATENCY).record(woke.elapsed().as_secs_f64());
                }
            }
            let due = self.next_due.unwrap_or_else(far_future);
            let refill_at = self.refill_at.unwrap_or_else(far_future);
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                Some(ev) = self.events.recv() => wake = self.on_listener_event(ev),
                _ = self.wake.notified() => wake = Some(Wake::Notify),
                Some(_) = self.tasks.join_next() => {
                    self.reap_finished();
                    self.update_slot_gauges();
                    if self.last_claim_full { wake = self.on_slot_freed() }
                }
                _ = tokio::time::sleep_until(refill_at), if self.refill_at.is_some() => {
                    self.refill_at = None;
                    wake = Some(Wake::Slot);
                }
                _ = tokio::time::sleep_until(due) => {
                    self.next_due = None;
                    wake = Some(Wake::Schedule);
                }
                _ = tokio::time::sleep_until(self.next_tick) => {
                    self.on_tick();
                    wake = Some(Wake::Tick);
                }
            }
        }
    }

    fn on_listener_event(&mut self, ev: ListenerEvent) -> Option<Wake> {
        match ev {
            ListenerEvent::Connected {
                self_test_ok,
                reconnect,
            } => {
                self.notify_ok = self_test_ok;
                self.next_tick = Instant::now() + self.tick_interval();
                Some(if reconnect {
                    Wake::Reconnect
                } else {
                    Wake::Start
                })
            }
            ListenerEvent::Disconnected => {
                // Until the listener is back, only polling finds new work.
                self.notify_ok = false;
                self.next_tick = self.next_tick.min(Instant::now() + self.tick_interval());
                None
            }
        }
    }

    fn tick_interval(&self) -> Duration {
        if self.notify_ok {
            self.settings.poll_interval()
        } else {
            self.settings.fallback_poll()
        }
    }

    /// Under a backlog, slots free one job at a time, and a claim per freed
    /// slot costs the claim's fixed part (about half a millisecond) for
    /// every job: the freed slots are claimed together once half of them
    /// is free, or `REFILL_WAIT` after the first, whichever is sooner (a
    /// quarter drained 50,000 no-op jobs a fifth slower than a half).
    fn on_slot_freed(&mut self) -> Option<Wake> {
        let free = (self.settings.max_concurrent_jobs as usize).saturating_sub(self.tasks.len());
        let batch = (self.settings.max_concurrent_jobs as usize / 2).max(1);
        if free >= batch {
            return Some(Wake::Slot);
        }
        if free > 0 && self.refill_at.is_none() {
            self.refill_at = Some(Instant::now() + REFILL_WAIT);
        }
        None
    }

    /// Joins every attempt that has ended. `JoinSet::len` counts ended but
    /// unjoined tasks, so without this a claim would see too few free slots
    /// and claim one job at a time.
    fn reap_finished(&mut self) {
        while self.tasks.try_join_next().is_some() {}
    }

    /// Claims up to the free slots and starts an attempt per job; returns
    /// how many it claimed.
    async fn claim_round(&mut self) -> usize {
        self.refill_at = None;
        self.reap_finished();
        let slots = self.settings.max_concurrent_jobs as usize;
        let free = slots.saturating_sub(self.tasks.len());
        if free == 0 {
            self.last_claim_full = true;
            return 0;
        }
        let lease = self.settings.lease();
        let jobs = match store::claim(&self.env.db, &self.worker_id, &self.kinds, free, lease).await
        {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(error = %err, "claim failed; the next wake-up tries again");
                return 0;
            }
        };
        self.last_claim_full = jobs.len() == free;
        let jobs = self.postpone_in_peak(jobs).await;
        let claimed = jobs.len();
        for job in jobs {
            let wait = (job.claimed_at - job.run_after.max(job.created_at))
                .num_milliseconds()
                .max(0);
            metrics::histogram!(m::QUEUE_WAIT, "kind" => job.kind.clone())
                .record(wait as f64 / 1000.0);
            metrics::counter!(m::JOBS_CLAIMED, "kind" => job.kind.clone()).increment(1);
            // Claims ask only for registered kinds; should one slip through
            // anyway, it fails at once instead of waiting out its lease.
            let handler = self.registry.handler_for(&job.kind);
            self.tasks
                .spawn(run_attempt(self.env.clone(), handler, job));
        }
        self.update_slot_gauges();
        if claimed < free {
            // Nothing more is due now: learn when the next scheduled job is.
            self.refresh_next_due().await;
        }
        claimed
    }

    /// In a peak of this worker's windows, the claimed economy jobs whose
    /// deadline allows waiting go back until the next off-peak start (no
    /// attempt spent); the others are returned to run. Retries and
    /// deferrals land wherever their backoff puts them, and the windows
    /// may have changed since a job was placed: this is where that is
    /// put right, on the windows of the worker that would buy the tokens.
    async fn postpone_in_peak(&self, jobs: Vec<ClaimedJob>) -> Vec<ClaimedJob> {
        let now = chrono::Utc::now();
        if jobs.is_empty() || !self.economy.is_peak(now) {
            return jobs;
        }
        // A week without off-peak time has nothing to wait for.
        let Some(stretches) = self.economy.stretches(now).filter(|s| !s.starts.is_empty()) else {
            return jobs;
        };
        let held: Vec<_> = jobs.iter().map(|j| (j.id, j.lease_token)).collect();
        let margin = self.economy.start_margin;
        let postponed = match store::postpone_economy(&self.env.db, &held, &stretches, margin).await
        {
            Ok(p) => p,
            Err(err) => {
                // Nothing was put back: run them rather than hold them.
                tracing::warn!(error = %err, "could not postpone economy jobs; they run now");
                return jobs;
            }
        };
        let (back, run): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .partition(|j| postponed.iter().any(|p| p.job_id == j.id));
        for (job, p) in back.iter().filter_map(|j| {
            let p = postponed.iter().find(|p| p.job_id == j.id)?;
            Some((j, p))
        }) {
            tracing::info!(job_id = %job.id, kind = %job.kind, run_after = %p.run_after,
                "economy job claimed in a peak: postponed to the next off-peak start");
            metrics::counter!(m::JOBS_POSTPONED, "kind" => job.kind.clone()).increment(1);
        }
        run
    }

    async fn refresh_next_due(&mut self) {
        match store::next_due(&self.env.db, &self.kinds).await {
            // A job that is due yet was not claimed is being claimed by a
            // peer right now (SKIP LOCKED); a short floor avoids spinning.
            Ok(due) => {
                self.next_due = due.map(|d| Instant::now() + d.max(Duration::from_millis(5)))
            }
            Err(err) => tracing::warn!(error = %err, "could not read the next scheduled job"),
        }
    }

    /// The fallback tick; reaping and stale expiry run at the normal poll
    /// interval even while polling fast, in a task of their own so that a
    /// wake-up never waits behind maintenance. Jobs the reaper puts back
    /// are announced by the requeue NOTIFY.
    fn on_tick(&mut self) {
        let now = Instant::now();
        self.next_tick = now + self.tick_interval();
        let busy = self.maintenance.as_ref().is_some_and(|m| !m.is_finished());
        if now < self.next_maintenance || busy {
            return;
        }
        self.next_maintenance = now + self.settings.poll_interval();
        let db = self.env.db.clone();
        let stale_hours = self.settings.stale_pending_hours;
        let grace = Duration::from_secs_f64(self.settings.unhandled_kind_grace_seconds);
        let retention = self.settings.profile_retention();
        self.maintenance = Some(AbortOnDropHandle::new(tokio::spawn(async move {
            super::reaper::run_once(&db, stale_hours, grace, retention).await;
        })));
    }

    fn update_slot_gauges(&self) {
        let in_flight = self.tasks.len();
        metrics::gauge!(m::JOBS_IN_FLIGHT).set(in_flight as f64);
        metrics::gauge!(m::FREE_SLOTS)
            .set((self.settings.max_concurrent_jobs as usize).saturating_sub(in_flight) as f64);
    }

    /// Shutdown, all of it inside `grace` (an orchestrator kills the process
    /// when its own grace, Kubernetes' 30 s by default, runs out): running
    /// jobs may finish until the last quarter of it (at most its last 5 s),
    /// then the rest are stopped and give their jobs back in that time.
    pub async fn drain(&mut self, grace: Duration) {
        let started = Instant::now();
        let release_room = (grace / 4).min(Duration::from_secs(5));
        let deadline = started + grace - release_room;
        while !self.tasks.is_empty() {
            tokio::select! {
                _ = self.tasks.join_next() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if self.tasks.is_empty() {
            return;
        }
        tracing::info!(
            jobs = self.tasks.len(),
            "grace period over; giving running jobs back"
        );
        self.running.stop_all(StopReason::Shutdown);
        // Releasing is one short statement per job; it must end in the grace.
        let bound = (started + grace).max(Instant::now() + Duration::from_millis(500));
        while !self.tasks.is_empty() {
            tokio::select! {
                _ = self.tasks.join_next() => {}
                _ = tokio::time::sleep_until(bound) => {
                    tracing::error!(jobs = self.tasks.len(), "jobs did not stop; their leases will expire");
                    self.tasks.abort_all();
                    return;
                }
            }
        }
    }
}

/// How long a freed slot may wait for others to free under a backlog: short
/// beside any real job, long beside a claim.
const REFILL_WAIT: Duration = Duration::from_millis(2);

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
