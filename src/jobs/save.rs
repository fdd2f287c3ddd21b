//! The end of every plan job: the plan's rows and the job's completion in one
//! transaction, fenced by the lease, run again whole while the database is
//! briefly away. If any step fails, nothing remains.

use std::future::Future;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error_code::ErrorCode;
use crate::queue::store::{self as queue_store, StoreError};
use crate::queue::{JobContext, JobError};

/// A kind's rows for a finished plan.
pub trait PlanRows: Sync {
    /// Names the save in errors and logs.
    const WHAT: &'static str;
    /// Names it in `plan_worker_db_retries_total` (one of `DB_RETRY_STATEMENTS`).
    const RETRY_LABEL: &'static str;
    fn source(&self) -> &'static str;
    /// Writes the rows inside the completing transaction; returns the plan id.
    fn insert<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> impl Future<Output = Result<Uuid, StoreError>> + Send + 'a;
}

/// Inserts `rows`, records the attempt's LLM usage and stage timings and
/// completes the job, in one transaction. A commit whose answer was lost and that is run again
/// finds the job no longer held and writes nothing twice.
pub async fn save_completing<R: PlanRows>(
    ctx: &JobContext,
    rows: &R,
    usage: Option<&Value>,
) -> Result<Uuid, JobError> {
    let started = std::time::Instant::now();
    let route = ctx.result_route(rows.source());
    let route = &route;
    let once = || async move {
        let mut tx = ctx.db.begin().await?;
        let id = rows.insert(&mut tx).await?;
        if let Some(usage) = usage {
            queue_store::record_usage(&mut *tx, ctx.job.id, ctx.job.lease_token, usage).await?;
        }
        // The stages up to now, saving included (its rows are written):
        // what later jobs' estimates read, committed with the completion
        // or not at all.
        let stages = ctx.stage_timings();
        let (job, token) = (ctx.job.id, ctx.job.lease_token);
        queue_store::record_stage_timings(&mut *tx, job, token, route, &stages).await?;
        if !ctx.complete_in(&mut tx, Some(id)).await? {
            // Dropping the transaction rolls the plan back.
            return Ok(None);
        }
        tx.commit().await?;
        Ok::<_, StoreError>(Some(id))
    };
    let saved = ctx
        .retry_db(R::RETRY_LABEL, once)
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, format!("{}: {e}", R::WHAT)))?;
    let Some(id) = saved else {
        return Err(JobError::new(
            ErrorCode::WorkerLost,
            format!("{}: the lease was lost first; nothing saved", R::WHAT),
        ));
    };
    metrics::histogram!(crate::telemetry::metrics::SAVE_DURATION)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::telemetry::metrics::PLANS_SAVED, "kind" => ctx.job.kind.clone(), "source" => rows.source())
        .increment(1);
    Ok(id)
}
