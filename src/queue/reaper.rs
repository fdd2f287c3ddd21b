//! Maintenance on the fallback tick, on every worker: take back the jobs of
//! dead workers and expired leases, fail jobs that waited too long, and
//! sample the queue-wide gauges.

use std::time::Duration;

use sqlx::PgPool;

use super::store;
use crate::telemetry::metrics as m;

/// Snapshots emptied per pass at most: a first pass over years of jobs
/// works through them a tick at a time instead of in one long statement.
const SCRUB_BATCH: i32 = 500;

/// One maintenance pass; failures are logged and retried at the next tick.
/// `profile_retention`: empty finished jobs' profiles after it (None: keep).
pub async fn run_once(
    db: &PgPool,
    stale_pending_hours: f64,
    unhandled_grace: Duration,
    profile_retention: Option<Duration>,
) {
    match store::reap(db).await {
        Ok(reaped) => {
            for r in &reaped {
                tracing::warn!(
                    job_id = %r.job_id, worker_id = r.worker_id.as_deref().unwrap_or(""),
                    reason = r.reason.as_str(), outcome = ?r.outcome, error_code = "WORKER_LOST",
                    "took back a job from a lost worker"
                );
                metrics::counter!(m::JOBS_REAPED, "reason" => r.reason.as_str()).increment(1);
                if r.outcome == store::FailOutcome::Failed {
                    metrics::counter!(m::JOBS_FINISHED, "kind" => r.kind.clone(), "outcome" => "failed", "error_code" => "WORKER_LOST")
                        .increment(1);
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "reaping failed"),
    }
    let max_age = Duration::from_secs_f64(stale_pending_hours * 3600.0);
    match store::expire_stale(db, max_age).await {
        Ok(expired) if !expired.is_empty() => {
            tracing::warn!(
                jobs = expired.len(),
                error_code = "STALE_JOB",
                "failed stale pending jobs"
            );
            metrics::counter!(m::JOBS_EXPIRED).increment(expired.len() as u64);
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "expiring stale jobs failed"),
    }
    match store::fail_unhandled(db, unhandled_grace).await {
        Ok(failed) => {
            for u in &failed {
                tracing::error!(
                    job_id = %u.job_id, kind = %u.kind, error_code = "CONFIG_ERROR",
                    "no live worker handles this kind; the job failed"
                );
                metrics::counter!(m::JOBS_FINISHED, "kind" => u.kind.clone(), "outcome" => "failed", "error_code" => "CONFIG_ERROR")
                    .increment(1);
                metrics::counter!(m::JOBS_UNHANDLED, "kind" => u.kind.clone()).increment(1);
            }
        }
        Err(err) => tracing::warn!(error = %err, "failing jobs of unhandled kinds failed"),
    }
    if let Some(retention) = profile_retention {
        match store::scrub_snapshots(db, retention, SCRUB_BATCH).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    jobs = n,
                    "emptied the profiles of jobs past the retention period"
                );
                metrics::counter!(m::PROFILES_SCRUBBED).increment(n);
            }
            Err(err) => tracing::warn!(error = %err, "emptying old profiles failed"),
        }
    }
    sample_queue(db).await;
}

/// Queue depth by status and kind, oldest ages, live workers.
pub async fn sample_queue(db: &PgPool) {
    match store::queue_stats(db).await {
        Ok(stats) => {
            for s in &stats {
                let kind = s.kind.clone();
                metrics::gauge!(m::JOBS_QUEUED, "kind" => kind.clone(), "status" => "pending")
                    .set(s.pending as f64);
                metrics::gauge!(m::JOBS_QUEUED, "kind" => kind.clone(), "status" => "processing")
                    .set(s.processing as f64);
                metrics::gauge!(m::OLDEST_PENDING_AGE, "kind" => kind.clone())
                    .set(s.oldest_pending_age);
                metrics::gauge!(m::OLDEST_RUNNING_AGE, "kind" => kind).set(s.oldest_running_age);
            }
            if let Some(s) = stats.first() {
                metrics::gauge!(m::WORKERS_LIVE).set(s.live_workers as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "sampling the queue failed"),
    }
}
