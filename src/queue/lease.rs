//! Leases of the jobs this worker runs: the table of running jobs, why one
//! must stop, and the heartbeat that renews every lease in one statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store;
use crate::telemetry::metrics as m;

/// Why a running attempt was stopped from outside its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The job was cancelled; the cancel already closed the attempt.
    Cancelled,
    /// Another worker holds the job now; nothing more may be written.
    LeaseLost,
    /// The worker is shutting down and gives the job back.
    Shutdown,
}

/// The switch of one running attempt: the first reason set wins.
#[derive(Debug, Default)]
pub struct JobControl {
    pub cancel: CancellationToken,
    reason: OnceLock<StopReason>,
    /// The attempt is recording its outcome: its lease may legitimately be
    /// gone (completed) and must not be reported as lost.
    finishing: AtomicBool,
}

impl JobControl {
    pub fn set_finishing(&self) {
        self.finishing.store(true, Ordering::SeqCst);
    }
    fn is_finishing(&self) -> bool {
        self.finishing.load(Ordering::SeqCst)
    }
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.cancel.cancel();
    }
    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }
}

/// The attempts this worker runs, keyed by (job id, lease token): after a
/// lost lease the same worker may claim the job again, and the two attempts
/// must never be mistaken for each other.
#[derive(Debug, Default)]
pub struct RunningJobs {
    jobs: Mutex<HashMap<(Uuid, Uuid), Arc<JobControl>>>,
}

/// Removes its attempt from the running table when dropped, however the
/// attempt ends (returned, panicked, aborted).
#[derive(Debug)]
pub struct RunningGuard {
    running: Arc<RunningJobs>,
    key: (Uuid, Uuid),
    pub control: Arc<JobControl>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.running.lock().remove(&self.key);
    }
}

impl RunningJobs {
    /// Registers an attempt. An older attempt of the same job (a lease this
    /// worker lost, then claimed again) is stopped: it may write nothing more.
    pub fn insert(self: &Arc<Self>, job_id: Uuid, lease_token: Uuid) -> RunningGuard {
        let control = Arc::new(JobControl::default());
        let older: Vec<Arc<JobControl>> = {
            let mut jobs = self.lock();
            let older = jobs
                .iter()
                .filter(|((id, token), _)| *id == job_id && *token != lease_token)
                .map(|(_, c)| c.clone())
                .collect();
            jobs.insert((job_id, lease_token), control.clone());
            older
        };
        for c in older {
            c.stop(StopReason::LeaseLost);
        }
        RunningGuard {
            running: self.clone(),
            key: (job_id, lease_token),
            control,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every attempt of a job that runs here; true when one did.
    pub fn stop(&self, job_id: Uuid, reason: StopReason) -> bool {
        let controls: Vec<_> = self
            .lock()
            .iter()
            .filter(|((id, _), _)| *id == job_id)
            .map(|(_, c)| c.clone())
            .collect();
        for c in &controls {
            c.stop(reason);
        }
        !controls.is_empty()
    }

    /// Stops one attempt; true when it runs here.
    pub fn stop_attempt(&self, job_id: Uuid, lease_token: Uuid, reason: StopReason) -> bool {
        let control = self.lock().get(&(job_id, lease_token)).cloned();
        control.map(|c| c.stop(reason)).is_some()
    }

    /// Whether the attempt still runs here and is not recording its outcome.
    fn is_live(&self, job_id: Uuid, lease_token: Uuid) -> bool {
        self.lock()
            .get(&(job_id, lease_token))
            .is_some_and(|c| !c.is_finishing())
    }

    pub fn stop_all(&self, reason: StopReason) {
        let controls: Vec<_> = self.lock().values().cloned().collect();
        for c in controls {
            c.stop(reason);
        }
    }

    /// (job id, lease token) of every running attempt that is not stopping.
    pub fn leases(&self) -> Vec<(Uuid, Uuid)> {
        self.lock()
            .iter()
            .filter(|(_, c)| c.reason().is_none() && !c.is_finishing())
            .map(|(key, _)| *key)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), Arc<JobControl>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single inserts and removes), so a poisoned lock is still usable.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renews all leases every `interval` until `stop` fires. A job whose lease
/// is gone is stopped at once: cancelled, or lost to another worker.
pub async fn heartbeat_loop(
    db: PgPool,
    running: Arc<RunningJobs>,
    worker_id: String,
    lease: Duration,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        beat_once(&db, &running, lease).await;
        if let Err(err) = store::touch_worker(&db, &worker_id).await {
            tracing::warn!(error = %err, "could not update the worker's last_seen_at");
        }
    }
}

/// One heartbeat round over every running job.
pub async fn beat_once(db: &PgPool, running: &RunningJobs, lease: Duration) {
    let leases = running.leases();
    if leases.is_empty() {
        return;
    }
    match store::heartbeat(db, &leases, lease).await {
        Ok(beats) => {
            // A job that finished while the heartbeat ran is not lost.
            for beat in beats
                .into_iter()
                .filter(|b| !b.held && running.is_live(b.job_id, b.lease_token))
            {
                let (id, token) = (beat.job_id, beat.lease_token);
                if beat.cancelled {
                    tracing::info!(job_id = %id, "job was cancelled; stopping it");
                    running.stop_attempt(id, token, StopReason::Cancelled);
                } else {
                    tracing::warn!(job_id = %id, "lease lost; another worker may hold the job");
                    metrics::counter!(m::LEASES_LOST).increment(1);
                    running.stop_attempt(id, token, StopReason::LeaseLost);
                }
            }
        }
        // A failed heartbeat is retried at the next interval; the lease
        // (three intervals long) survives one or two misses.
        Err(err) => tracing::warn!(error = %err, jobs = leases.len(), "heartbeat failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_attempt_of_the_same_job_stops_the_old_one_and_outlives_its_removal() {
        let running = Arc::new(RunningJobs::default());
        let (job, t1, t2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let old = running.insert(job, t1);
        let new = running.insert(job, t2);
        assert_eq!(old.control.reason(), Some(StopReason::LeaseLost));
        assert_eq!(new.control.reason(), None);
        drop(old);
        assert_eq!(running.leases(), vec![(job, t2)], "the new attempt stays");
        assert!(running.is_live(job, t2) && !running.is_live(job, t1));
        drop(new);
        assert!(running.is_empty());
    }

    #[test]
    fn the_first_stop_reason_wins() {
        let running = Arc::new(RunningJobs::default());
        let id = Uuid::new_v4();
        let guard = running.insert(id, Uuid::new_v4());
        let control = guard.control.clone();
        assert!(running.stop(id, StopReason::Cancelled));
        assert!(running.stop(id, StopReason::Shutdown));
        assert_eq!(control.reason(), Some(StopReason::Cancelled));
        assert!(control.cancel.is_cancelled());
        assert!(
            running.leases().is_empty(),
            "a stopping job is not heartbeated"
        );
    }

    #[test]
    fn stopping_an_unknown_job_does_nothing() {
        let running = Arc::new(RunningJobs::default());
        assert!(!running.stop(Uuid::new_v4(), StopReason::Cancelled));
    }
}
