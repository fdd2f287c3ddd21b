//! Read-only views of the queue for operators (`plan-worker jobs ...`) and
//! the API: a job with its attempts, filtered listings.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct JobSummary {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub status: String,
    pub progress: Option<String>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub attempt_count: i32,
    pub error_code: Option<String>,
    pub worker_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_after: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct JobDetail {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub summary: JobSummary,
    pub error_message: Option<String>,
    pub lease_token: Option<Uuid>,
    pub locked_until: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub rate_limit_deferrals: i32,
    pub plan_id: Option<Uuid>,
    pub trace_context: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub profile_snapshot: Value,
}

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

const SUMMARY_COLUMNS: &str = "id, user_id, kind, status::text as status, progress, retry_count, max_retries, \
     attempt_count, error_code, worker_id, created_at, run_after, updated_at";

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<String>,
    pub user_id: Option<Uuid>,
    pub kind: Option<String>,
    pub limit: i64,
}

/// Newest first, filtered.
pub async fn list_jobs(db: &PgPool, f: &JobFilter) -> sqlx::Result<Vec<JobSummary>> {
    let sql = format!(
        "select {SUMMARY_COLUMNS} from plan_generation_jobs \
         where ($1::text is null or status::text = $1) and ($2::uuid is null or user_id = $2) \
           and ($3::text is null or kind = $3) \
         order by created_at desc limit $4"
    );
    sqlx::query_as::<_, JobSummary>(sqlx::AssertSqlSafe(sql))
        .bind(&f.status)
        .bind(f.user_id)
        .bind(&f.kind)
        .bind(f.limit.clamp(1, 10_000))
        .fetch_all(db)
        .await
}

/// One job with everything an operator needs to read a stuck generation.
pub async fn get_job(db: &PgPool, id: Uuid) -> sqlx::Result<Option<JobDetail>> {
    let sql = format!(
        "select {SUMMARY_COLUMNS}, error_message, lease_token, locked_until, heartbeat_at, \
                rate_limit_deferrals, plan_id, trace_context, started_at, completed_at, profile_snapshot \
         from plan_generation_jobs where id = $1"
    );
    sqlx::query_as::<_, JobDetail>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The attempts of a job, oldest first.
pub async fn attempts(db: &PgPool, job_id: Uuid) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as::<_, Attempt>(
        r"select attempt, worker_id, started_at, finished_at, outcome, error_code, error_detail, llm_usage
          from plan_job_attempts where job_id = $1 order by attempt",
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
