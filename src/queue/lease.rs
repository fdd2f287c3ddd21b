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

/// The jobs this worker holds, keyed by id.
#[derive(Debug, Default)]
pub struct RunningJobs {
    jobs: Mutex<HashMap<Uuid, (Uuid, Arc<JobControl>)>>,
}

impl RunningJobs {
    pub fn insert(&self, job_id: Uuid, lease_token: Uuid) -> Arc<JobControl> {
        let control = Arc::new(JobControl::default());
        self.lock().insert(job_id, (lease_token, control.clone()));
        control
    }

    pub fn remove(&self, job_id: Uuid) {
        self.lock().remove(&job_id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops one job if this worker runs it; true when it did.
    pub fn stop(&self, job_id: Uuid, reason: StopReason) -> bool {
        let control = self.lock().get(&job_id).map(|(_, c)| c.clone());
        control.map(|c| c.stop(reason)).is_some()
    }

    /// Whether the job is still running here and not recording its outcome.
    fn is_live(&self, job_id: Uuid) -> bool {
        self.lock()
            .get(&job_id)
            .is_some_and(|(_, c)| !c.is_finishing())
    }

    pub fn stop_all(&self, reason: StopReason) {
        let controls: Vec<_> = self.lock().values().map(|(_, c)| c.clone()).collect();
        for c in controls {
            c.stop(reason);
        }
    }

    /// (job id, lease token) of every running job whose attempt is not stopping.
    pub fn leases(&self) -> Vec<(Uuid, Uuid)> {
        self.lock()
            .iter()
            .filter(|(_, (_, c))| c.reason().is_none() && !c.is_finishing())
            .map(|(id, (token, _))| (*id, *token))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Uuid, Arc<JobControl>)>> {
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
                .filter(|b| !b.held && running.is_live(b.job_id))
            {
                if beat.cancelled {
                    tracing::info!(job_id = %beat.job_id, "job was cancelled; stopping it");
                    running.stop(beat.job_id, StopReason::Cancelled);
                } else {
                    tracing::warn!(job_id = %beat.job_id, "lease lost; another worker may hold the job");
                    metrics::counter!(m::LEASES_LOST).increment(1);
                    running.stop(beat.job_id, StopReason::LeaseLost);
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
    fn the_first_stop_reason_wins() {
        let running = RunningJobs::default();
        let id = Uuid::new_v4();
        let control = running.insert(id, Uuid::new_v4());
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
        let running = RunningJobs::default();
        assert!(!running.stop(Uuid::new_v4(), StopReason::Cancelled));
    }
}
