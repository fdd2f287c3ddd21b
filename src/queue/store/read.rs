//! Read-only views of the queue: one job row shared by the API and the
//! operator commands, attempts, listings and the figures that gauges and
//! estimates are made of.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::JobStatus;

/// A job as the API and operators read it (the profile snapshot apart: it
/// is large and rarely needed; see [`profile_snapshot`]).
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct JobRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub status: JobStatus,
    pub progress: Option<String>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub attempt_count: i32,
    pub rate_limit_deferrals: i32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub worker_id: Option<String>,
    pub lease_token: Option<Uuid>,
    pub locked_until: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub plan_id: Option<Uuid>,
    pub trace_context: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_after: DateTime<Utc>,
    /// An economy job's deadline (None: an ordinary job).
    pub not_after: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Seconds since `started_at` while processing, on the database clock.
    pub running_seconds: Option<f64>,
}

impl JobRow {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

const JOB_COLUMNS: &str = "id, user_id, kind, status, progress, retry_count, max_retries, \
     attempt_count, rate_limit_deferrals, error_code, error_message, worker_id, lease_token, \
     locked_until, heartbeat_at, plan_id, trace_context, created_at, run_after, not_after, \
     started_at, completed_at, updated_at, \
     case when status = 'processing' \
          then extract(epoch from now() - started_at)::float8 end as running_seconds";

/// One attempt of a job: how an operator reads a stuck generation.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Attempt {
    pub attempt: i32,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
    pub llm_usage: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub user_id: Option<Uuid>,
    pub kind: Option<String>,
    pub limit: i64,
}

/// Newest first, filtered.
pub async fn list_jobs(db: &PgPool, f: &JobFilter) -> sqlx::Result<Vec<JobRow>> {
    let sql = format!(
        "select {JOB_COLUMNS} from plan_generation_jobs \
         where ($1::plan_job_status is null or status = $1) and ($2::uuid is null or user_id = $2) \
           and ($3::text is null or kind = $3) \
         order by created_at desc limit $4"
    );
    sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
        .bind(f.status)
        .bind(f.user_id)
        .bind(&f.kind)
        .bind(f.limit.clamp(1, 10_000))
        .fetch_all(db)
        .await
}

/// One job.
pub async fn get_job(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<JobRow>> {
    let sql = format!("select {JOB_COLUMNS} from plan_generation_jobs where id = $1");
    sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The profile a job was created with.
pub async fn profile_snapshot(db: &PgPool, id: Uuid) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar(r"select profile_snapshot from plan_generation_jobs where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The attempts of a job, oldest first.
pub async fn attempts(db: &PgPool, job_id: Uuid) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as::<_, Attempt>(
        // The running attempt has no row of its own until it ends (0023).
        r"select attempt, worker_id, started_at, finished_at, outcome, error_code, error_detail, llm_usage
          from plan_job_attempts where job_id = $1
          union all
          select j.attempt_count, j.attempt_worker_id, j.attempt_started_at, null::timestamptz, null::text,
                 null::text, null::text, null::jsonb
          from plan_generation_jobs j
          where j.id = $1 and j.status = 'processing' and j.attempt_worker_id is not null
            and not exists (select 1 from plan_job_attempts a
                            where a.job_id = j.id and a.attempt = j.attempt_count)
          order by attempt",
    )
    .bind(job_id)
    .fetch_all(db)
    .await
}

/// Queue-wide figures of one kind, for the gauges every worker samples.
#[derive(Debug, Clone, FromRow)]
pub struct KindStats {
    pub kind: String,
    pub pending: i64,
    pub processing: i64,
    /// Seconds the oldest due pending job has waited (0: none).
    pub oldest_pending_age: f64,
    /// Seconds since the oldest running job first started (0: none).
    pub oldest_running_age: f64,
    pub live_workers: i64,
}

/// One statement over the active jobs only (the partial indexes keep it
/// cheap however many finished jobs the table holds).
pub async fn queue_stats(db: &PgPool) -> sqlx::Result<Vec<KindStats>> {
    sqlx::query_as::<_, KindStats>(
        r"select k.kind,
                 count(j.id) filter (where j.status = 'pending') as pending,
                 count(j.id) filter (where j.status = 'processing') as processing,
                 coalesce(extract(epoch from now() - min(j.run_after)
                     filter (where j.status = 'pending' and j.run_after <= now())), 0)::float8 as oldest_pending_age,
                 coalesce(extract(epoch from now() - min(j.started_at)
                     filter (where j.status = 'processing')), 0)::float8 as oldest_running_age,
                 (select count(*) from plan_workers) as live_workers
          from plan_job_kinds k
          left join plan_generation_jobs j on j.kind = k.kind and j.status in ('pending', 'processing')
          group by k.kind",
    )
    .fetch_all(db)
    .await
}

/// Where a pending job stands.
#[derive(Debug, Clone, Copy, PartialEq, FromRow)]
pub struct Position {
    /// Pending jobs of its kind that are claimed before it.
    pub ahead: i32,
    /// Slots of the live workers that run its kind.
    pub worker_slots: i32,
    /// Until its `run_after` (a scheduled retry).
    pub due_in_seconds: f64,
}

/// None unless the job is pending.
pub async fn queue_position(db: &PgPool, job: Uuid) -> sqlx::Result<Option<Position>> {
    sqlx::query_as(r"select * from plan_job_queue_position($1)")
        .bind(job)
        .fetch_optional(db)
        .await
}

/// One job of a user's generation history.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub id: Uuid,
    pub kind: String,
    pub status: JobStatus,
    pub error_code: Option<String>,
    pub attempt_count: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub plan_id: Option<Uuid>,
}

/// Where a page of history starts: after the user's job `id` (None when it
/// is not theirs, or no longer kept).
pub async fn history_cursor(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("select created_at from plan_generation_jobs where id = $1 and user_id = $2")
        .bind(id)
        .bind(user)
        .fetch_optional(db)
        .await
}

/// The user's jobs, newest first, from after `(created_at, id)` when given
/// (keyset: the user index (user_id, created_at desc), never an offset).
pub async fn history(
    db: &PgPool,
    user: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<HistoryRow>> {
    let (at, id) = after.map_or((None, None), |(t, i)| (Some(t), Some(i)));
    sqlx::query_as(
        r"select id, kind, status, error_code, attempt_count, created_at, started_at,
                 completed_at, plan_id
          from plan_generation_jobs
          where user_id = $1 and ($2::timestamptz is null or (created_at, id) < ($2, $3))
          order by created_at desc, id desc
          limit $4",
    )
    .bind(user)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await
}
