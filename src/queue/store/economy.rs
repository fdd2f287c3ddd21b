//! The economy's statements: jobs created or retried with a deadline and
//! placed in the caller's off-peak stretches, claimed economy jobs put back
//! until the next off-peak start, and the due schedules' jobs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

use super::{Created, Enqueued, NewJob, Result, StoreError};
use crate::offpeak::{Economy, Stretches};

/// Where an economy job goes: its deadline, and the off-peak stretches
/// (None: no windows known; the job is due at once and a worker that knows
/// windows places it when it claims it).
#[derive(Debug, Clone)]
pub struct Placement {
    pub not_after: DateTime<Utc>,
    pub stretches: Option<Stretches>,
    /// The room a run needs before the deadline (ECONOMY_START_MARGIN_SECONDS).
    pub margin: Duration,
}

/// Starts and ends, as the SQL functions take them (null arrays: none).
type Arrays<'a> = (Option<&'a [DateTime<Utc>]>, Option<&'a [DateTime<Utc>]>);

fn arrays(s: Option<&Stretches>) -> Arrays<'_> {
    match s {
        Some(s) => (Some(&s.starts), Some(&s.ends)),
        None => (None, None),
    }
}

/// Inserts a job, an economy job with `placement`, or returns the user's
/// active job of that kind.
pub async fn create_placed_job(
    db: impl PgExecutor<'_>,
    job: &NewJob,
    placement: Option<&Placement>,
) -> Result<Created> {
    let (starts, ends) = arrays(placement.and_then(|p| p.stretches.as_ref()));
    sqlx::query_as::<_, Created>(
        r"select job_id, existed
          from create_plan_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(job.user_id)
    .bind(&job.profile_snapshot)
    .bind(&job.kind)
    .bind(job.max_retries)
    .bind(job.priority)
    .bind(&job.trace_context)
    .bind(job.run_after)
    .bind(placement.map(|p| p.not_after))
    .bind(starts)
    .bind(ends)
    .bind(placement.map_or(0.0, |p| p.margin.as_secs_f64()))
    .fetch_one(db)
    .await
    .map_err(StoreError::from_sqlx)
}

/// A new job from a failed or cancelled one (an economy job again, placed
/// in `economy`'s stretches, when the old one was one).
pub async fn retry_placed_job(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    economy: &Economy,
) -> Result<Created> {
    let stretches = economy.stretches(Utc::now());
    let (starts, ends) = arrays(stretches.as_ref());
    sqlx::query_as::<_, Created>(r"select job_id, existed from retry_plan_job($1, $2, $3, $4)")
        .bind(job_id)
        .bind(starts)
        .bind(ends)
        .bind(economy.start_margin.as_secs_f64())
        .fetch_one(db)
        .await
        .map_err(StoreError::from_sqlx)
}

/// A claimed job given back until an off-peak start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct Postponed {
    pub job_id: Uuid,
    pub run_after: DateTime<Utc>,
}

/// Of the claimed `jobs` (id, lease token), puts the economy jobs whose
/// deadline allows it back until the next off-peak start of `stretches`.
pub async fn postpone_economy(
    db: &PgPool,
    jobs: &[(Uuid, Uuid)],
    stretches: &Stretches,
    margin: Duration,
) -> Result<Vec<Postponed>> {
    let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = jobs.iter().copied().unzip();
    Ok(sqlx::query_as::<_, Postponed>(
        r"select job_id, run_after from postpone_economy_plan_jobs($1, $2, $3, $4, $5)",
    )
    .bind(ids)
    .bind(tokens)
    .bind(&stretches.starts)
    .bind(&stretches.ends)
    .bind(margin.as_secs_f64())
    .fetch_all(db)
    .await?)
}

/// Makes the jobs of up to `limit` due schedules (economy schedules' jobs
/// due at once, for a worker to place when it claims them).
pub async fn enqueue_due_schedules(db: &PgPool, limit: i32) -> Result<Vec<Enqueued>> {
    enqueue_due_schedules_placed(db, limit, &Economy::default(), Utc::now()).await
}

/// Makes the jobs of up to `limit` due schedules; economy schedules' jobs
/// are placed on `economy`'s windows from `now`.
pub async fn enqueue_due_schedules_placed(
    db: &PgPool,
    limit: i32,
    economy: &Economy,
    now: DateTime<Utc>,
) -> Result<Vec<Enqueued>> {
    let stretches = economy.stretches(now);
    let (starts, ends) = arrays(stretches.as_ref());
    Ok(sqlx::query_as::<_, Enqueued>(
        r"select * from enqueue_due_plan_schedules($1, $2, $3, $4, $5)",
    )
    .bind(limit)
    .bind(starts)
    .bind(ends)
    .bind(economy.max_delay.as_secs_f64())
    .bind(economy.start_margin.as_secs_f64())
    .fetch_all(db)
    .await?)
}
