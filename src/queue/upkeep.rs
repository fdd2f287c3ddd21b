//! Upkeep on the maintenance tick: the jobs of due schedules, and the
//! retention of finished jobs. Both are safe on every worker at once: a due
//! schedule is locked while it is handled (one job per due time, whoever
//! handles it), and one worker at a time purges while the others skip.

use std::time::Duration;

use sqlx::PgPool;

use super::store;
use crate::telemetry::metrics as m;

/// Schedules handled per pass at most; more wait for the next tick.
const SCHEDULE_BATCH: i32 = 200;
/// Jobs deleted per pass at most: a first pass over years of jobs works
/// through them a tick at a time, in short transactions.
const PURGE_BATCH: i32 = 2_000;

/// One pass; failures are logged and retried at the next tick.
/// `job_retention`: delete finished jobs after it (None: keep).
pub async fn run_once(db: &PgPool, job_retention: Option<Duration>) {
    match store::enqueue_due_schedules(db, SCHEDULE_BATCH).await {
        Ok(made) => {
            for e in made.iter().filter(|e| !e.waiting) {
                tracing::info!(job_id = %e.job_id, user_id = %e.user_id, kind = %e.kind,
                    "a schedule made its job");
                metrics::counter!(m::SCHEDULED_JOBS, "kind" => e.kind.clone()).increment(1);
            }
        }
        Err(err) => tracing::warn!(error = %err, "enqueueing due schedules failed"),
    }
    if let Some(retention) = job_retention {
        match store::purge(db, retention, PURGE_BATCH, false).await {
            Ok(p) if p.jobs > 0 => {
                tracing::info!(
                    jobs = p.jobs,
                    attempts = p.attempts,
                    idempotency_keys = p.idempotency_keys,
                    outbox = p.outbox,
                    "deleted jobs past the retention period"
                );
                metrics::counter!(m::JOBS_PURGED).increment(p.jobs as u64);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "deleting old jobs failed"),
        }
    }
}
