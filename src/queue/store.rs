//! Every SQL statement on the queue's tables (jobs, attempts, workers,
//! kinds): thin calls of the SQL functions in `migrations/`, so this worker
//! and any other client share one implementation of the queue's rules.
//! `read` holds the read-only views (job rows, attempts, statistics).

mod economy;
mod read;
mod timings;

pub use economy::{
    Placement, Postponed, create_placed_job, enqueue_due_schedules, enqueue_due_schedules_placed,
    postpone_economy, retry_placed_job,
};
pub use read::{
    Attempt, HistoryRow, JobFilter, JobRow, KindStats, Position, attempts, get_job, history,
    history_cursor, list_jobs, profile_snapshot, queue_position, queue_stats,
};
pub use timings::{
    Route, RunningState, StageTimings, likely_route, recent_run_seconds, recent_stage_timings,
    record_stage_timings, running_count, running_state, set_worker_routes,
};

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

/// Why a queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused an input; `field` names it.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl crate::db::transient::Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, StoreError::Db(e) if crate::db::transient::is_transient(e))
    }
}

/// The input field a constraint of the jobs table guards, and what it
/// asks, in the caller's words: never the constraint's or the table's name.
fn constraint_field(constraint: &str) -> (&'static str, &'static str) {
    match constraint {
        "profile_snapshot_size" => ("profile_snapshot", "too large: at most 64 KiB once stored"),
        "profile_snapshot_is_object" => ("profile_snapshot", "must be a JSON object"),
        "max_retries_range" => ("max_retries", "must be between 0 and 25"),
        "plan_generation_jobs_priority_check" => ("priority", "must be between -100 and 100"),
        "plan_generation_jobs_kind_fkey" => ("kind", "no such job kind"),
        _ => ("input", "is not accepted"),
    }
}

impl StoreError {
    /// Turns a `raise ... using column = 'x'` (SQLSTATE 22023) or a named
    /// CHECK constraint violation into an error that names the field.
    fn from_sqlx(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let code = db.code();
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match code.as_deref() {
                Some("22023") => {
                    let field = pg.and_then(|p| p.column()).unwrap_or("input").to_owned();
                    let message = db
                        .message()
                        .split_once(": ")
                        .map_or(db.message(), |(_, m)| m)
                        .to_owned();
                    return StoreError::InvalidInput { field, message };
                }
                Some("23514") | Some("23503") => {
                    let (field, message) = constraint_field(db.constraint().unwrap_or(""));
                    return StoreError::InvalidInput {
                        field: field.to_owned(),
                        message: message.to_owned(),
                    };
                }
                // jsonb cannot hold U+0000 (callers check first; this is
                // the net under them).
                Some("22P05") => {
                    return StoreError::InvalidInput {
                        field: "profile_snapshot".to_owned(),
                        message: "must not contain the NUL character (\\u0000)".to_owned(),
                    };
                }
                _ => {}
            }
        }
        StoreError::Db(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `plan_job_status`: where a job is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    sqlx::Type,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[sqlx(type_name = "plan_job_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    /// The statuses a job never leaves.
    pub const FINAL: [JobStatus; 3] = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled: nothing more will happen to the job.
    pub fn is_final(self) -> bool {
        Self::FINAL.contains(&self)
    }

    /// Pending or processing: the one job a user may have per kind.
    pub fn is_active(self) -> bool {
        !self.is_final()
    }
}

impl std::str::FromStr for JobStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownValue> {
        [
            JobStatus::Pending,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| UnknownValue {
            what: "job status",
            value: s.to_owned(),
        })
    }
}

impl PartialEq<&str> for JobStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A value of a text column that the SQL functions keep to a fixed set.
#[derive(Debug, thiserror::Error)]
#[error("unexpected {what} from the database: {value:?}")]
pub struct UnknownValue {
    what: &'static str,
    value: String,
}

/// What `fail_plan_job` did with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Pending again after a backoff; one retry spent.
    Retry,
    /// Pending again after the provider's Retry-After; no retry spent.
    Deferred,
    /// Final: not retryable, or no retry left.
    Failed,
}

impl TryFrom<String> for FailOutcome {
    type Error = UnknownValue;
    fn try_from(value: String) -> std::result::Result<Self, UnknownValue> {
        match value.as_str() {
            "retry" => Ok(FailOutcome::Retry),
            "deferred" => Ok(FailOutcome::Deferred),
            "failed" => Ok(FailOutcome::Failed),
            _ => Err(UnknownValue {
                what: "fail outcome",
                value,
            }),
        }
    }
}

/// Why the reaper took a job back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapReason {
    /// Its worker's presence lock was free.
    WorkerDead,
    /// Its lease ran out while the worker lived (stalled).
    LeaseExpired,
}

impl ReapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReapReason::WorkerDead => "worker_dead",
            ReapReason::LeaseExpired => "lease_expired",
        }
    }
}

impl TryFrom<String> for ReapReason {
    type Error = UnknownValue;
    fn try_from(value: String) -> std::result::Result<Self, UnknownValue> {
        match value.as_str() {
            "worker_dead" => Ok(ReapReason::WorkerDead),
            "lease_expired" => Ok(ReapReason::LeaseExpired),
            _ => Err(UnknownValue {
                what: "reap reason",
                value,
            }),
        }
    }
}

/// A request to create a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub user_id: Uuid,
    pub kind: String,
    pub profile_snapshot: Value,
    pub max_retries: i32,
    pub priority: i32,
    pub trace_context: Option<String>,
    /// Not claimed before this (None: at once).
    pub run_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow, Serialize)]
pub struct Created {
    pub job_id: Uuid,
    /// An active job of this user and kind already existed and is returned.
    pub existed: bool,
}

/// A job this worker holds under `lease_token`.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub profile_snapshot: Value,
    pub lease_token: Uuid,
    pub attempt: i32,
    pub retry_count: i32,
    pub max_retries: i32,
    pub rate_limit_deferrals: i32,
    pub trace_context: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_after: DateTime<Utc>,
    pub claimed_at: DateTime<Utc>,
}

/// What a heartbeat learned about one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct Beat {
    pub job_id: Uuid,
    pub lease_token: Uuid,
    pub held: bool,
    pub cancelled: bool,
}

/// A failed attempt, as `fail_plan_job` takes it.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub error_code: &'a str,
    pub user_message: &'a str,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    pub detail: Option<&'a str>,
    pub llm_usage: Option<&'a Value>,
}

/// The backoff and deferral settings `fail_plan_job` applies.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    pub max_rate_limit_deferrals: i32,
    /// Retry-After beyond this is cut to it.
    pub max_retry_after: Duration,
}

/// Inserts a job, or returns the user's active job of that kind.
pub async fn create_job(db: impl PgExecutor<'_>, job: &NewJob) -> Result<Created> {
    create_placed_job(db, job, None).await
}

/// Claims up to `max` due jobs of `kinds`, each with a fresh lease token.
pub async fn claim(
    db: &PgPool,
    worker_id: &str,
    kinds: &[String],
    max: usize,
    lease: Duration,
) -> Result<Vec<ClaimedJob>> {
    Ok(
        sqlx::query_as::<_, ClaimedJob>(r"select * from claim_plan_jobs($1, $2, $3, $4, true)")
            .bind(worker_id)
            .bind(kinds)
            .bind(max as i32)
            .bind(lease.as_secs_f64())
            .fetch_all(db)
            .await?,
    )
}

/// Extends the leases of the given jobs; one row per job.
pub async fn heartbeat(db: &PgPool, jobs: &[(Uuid, Uuid)], lease: Duration) -> Result<Vec<Beat>> {
    let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = jobs.iter().copied().unzip();
    Ok(
        sqlx::query_as::<_, Beat>(r"select * from heartbeat_plan_jobs($1, $2, $3, true)")
            .bind(ids)
            .bind(tokens)
            .bind(lease.as_secs_f64())
            .fetch_all(db)
            .await?,
    )
}

/// Records the stage a running job is in; false when the lease is lost.
pub async fn set_progress(db: &PgPool, job_id: Uuid, token: Uuid, stage: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, bool>(r"select set_plan_job_progress($1, $2, $3)")
            .bind(job_id)
            .bind(token)
            .bind(stage)
            .fetch_one(db)
            .await?,
    )
}

/// Completes jobs held under their tokens; returns the ids completed (a
/// missing id had lost its lease).
pub async fn complete(
    db: impl PgExecutor<'_>,
    jobs: &[(Uuid, Uuid)],
    plan_ids: &[Option<Uuid>],
) -> Result<Vec<Uuid>> {
    let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = jobs.iter().copied().unzip();
    Ok(
        sqlx::query_scalar::<_, Uuid>(r"select job_id from complete_plan_jobs($1, $2, $3)")
            .bind(ids)
            .bind(tokens)
            .bind(plan_ids)
            .fetch_all(db)
            .await?,
    )
}

/// Records a failed attempt; `None` when the lease was no longer held.
pub async fn fail(
    db: &PgPool,
    job_id: Uuid,
    token: Uuid,
    failure: &Failure<'_>,
    policy: RetryPolicy,
) -> Result<Option<FailOutcome>> {
    let outcome = sqlx::query_scalar::<_, Option<String>>(
        r"select fail_plan_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(job_id)
    .bind(token)
    .bind(failure.error_code)
    .bind(failure.user_message)
    .bind(failure.retryable)
    .bind(failure.retry_after.map(|d| d.as_secs_f64()))
    .bind(failure.detail)
    .bind(policy.base.as_secs_f64())
    .bind(policy.max.as_secs_f64())
    .bind(policy.max_rate_limit_deferrals)
    .bind(failure.llm_usage)
    .fetch_one(db)
    .await?;
    outcome
        .map(FailOutcome::try_from)
        .transpose()
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(e.into())))
}

/// Records an attempt's LLM usage (inside the transaction that saves its result).
pub async fn record_usage(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    token: Uuid,
    usage: &Value,
) -> sqlx::Result<()> {
    // The attempt's row is otherwise written when the attempt ends (0023).
    sqlx::query(
        r"insert into plan_job_attempts as a (job_id, attempt, worker_id, lease_token, started_at, llm_usage)
          select j.id, j.attempt_count, coalesce(j.attempt_worker_id, j.worker_id), j.lease_token,
                 coalesce(j.attempt_started_at, j.heartbeat_at, now()), $3
          from plan_generation_jobs j
          where j.id = $1 and j.lease_token = $2 and j.attempt_count >= 1
          on conflict (job_id, attempt) do update set llm_usage = excluded.llm_usage
          where a.lease_token = excluded.lease_token",
    )
    .bind(job_id)
    .bind(token)
    .bind(usage)
    .execute(db)
    .await?;
    Ok(())
}

/// The user's pending or running job of `kind`.
pub async fn active_job_id(
    db: impl PgExecutor<'_>,
    user: Uuid,
    kind: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(r"select id from get_active_plan_job($1, $2)")
        .bind(user)
        .bind(kind)
        .fetch_optional(db)
        .await
}

/// Gives a job back without spending an attempt.
pub async fn release(db: &PgPool, job_id: Uuid, token: Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, bool>(r"select release_plan_job($1, $2)")
            .bind(job_id)
            .bind(token)
            .fetch_one(db)
            .await?,
    )
}

/// The result of a cancel request.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Cancelled {
    pub previous_status: JobStatus,
    pub cancelled: bool,
}

/// Cancels a pending or running job; `None` when there is no such job.
pub async fn cancel(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    reason: &str,
) -> Result<Option<Cancelled>> {
    Ok(sqlx::query_as::<_, Cancelled>(
        r"select previous_status, cancelled from cancel_plan_job($1, $2)",
    )
    .bind(job_id)
    .bind(reason)
    .fetch_optional(db)
    .await?)
}

/// A job taken back from a dead or stalled worker.
#[derive(Debug, Clone, FromRow)]
pub struct Reaped {
    pub job_id: Uuid,
    pub worker_id: Option<String>,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub reason: ReapReason,
    /// `Retry` (pending again) or `Failed` (no retry left).
    #[sqlx(try_from = "String")]
    pub outcome: FailOutcome,
}

/// Returns jobs of dead workers and expired leases to pending (or fails them).
pub async fn reap(db: &PgPool) -> Result<Vec<Reaped>> {
    Ok(
        sqlx::query_as::<_, Reaped>(r"select * from reap_expired_plan_jobs()")
            .fetch_all(db)
            .await?,
    )
}

/// Fails pending jobs older than `max_age` as STALE_JOB.
pub async fn expire_stale(db: &PgPool, max_age: Duration) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar::<_, Uuid>(
        r"select job_id from expire_stale_plan_jobs(make_interval(secs => $1))",
    )
    .bind(max_age.as_secs_f64())
    .fetch_all(db)
    .await?)
}

/// A pending job failed because no live worker handles its kind.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Unhandled {
    pub job_id: Uuid,
    pub kind: String,
}

/// Fails pending jobs older than `grace` whose kind no live worker handles
/// (none while no worker is alive), as CONFIG_ERROR.
pub async fn fail_unhandled(db: &PgPool, grace: Duration) -> Result<Vec<Unhandled>> {
    Ok(sqlx::query_as::<_, Unhandled>(
        r"select job_id, kind from fail_unhandled_plan_jobs(make_interval(secs => $1))",
    )
    .bind(grace.as_secs_f64())
    .fetch_all(db)
    .await?)
}

/// Time until the next pending job of `kinds` is due, if any is scheduled.
pub async fn next_due(db: &PgPool, kinds: &[String]) -> Result<Option<Duration>> {
    let secs = sqlx::query_scalar::<_, Option<f64>>(r"select next_plan_job_due($1)")
        .bind(kinds)
        .fetch_one(db)
        .await?;
    Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// The row a worker registers, describing itself to operators.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub version: String,
    pub kinds: Vec<String>,
    pub concurrency: i32,
    /// How often it heartbeats: a worker whose heartbeats stop for two of
    /// these, and whose presence lock is free, counts as dead.
    pub heartbeat: Duration,
    /// How it makes each kind, `{kind: {source, model}}` (see [`Route`]).
    pub routes: Value,
}

/// Registers the worker and takes its presence lock on this connection;
/// refused (naming `worker_id`) while another live process holds the id.
pub async fn register_worker(conn: impl PgExecutor<'_>, w: &WorkerInfo) -> Result<i32> {
    sqlx::query_scalar::<_, i32>(r"select register_plan_worker($1, $2, $3, $4, $5, $6, $7)")
        .bind(&w.id)
        .bind(&w.host)
        .bind(w.pid)
        .bind(&w.version)
        .bind(&w.kinds)
        .bind(w.concurrency)
        .bind(w.heartbeat.as_secs_f64())
        .fetch_one(conn)
        .await
        .map_err(StoreError::from_sqlx)
}

/// Removes the worker's row on a clean exit.
pub async fn deregister_worker(db: &PgPool, worker_id: &str) -> Result<()> {
    sqlx::query(r"delete from plan_workers where id = $1")
        .bind(worker_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A worker's own heartbeat (with its presence lock, what says it lives),
/// and the queue's clock of heartbeats (`plan_queue_clock`, migration 0010).
pub async fn touch_worker(db: &PgPool, worker_id: &str) -> Result<()> {
    sqlx::query(r"select touch_plan_worker($1)")
        .bind(worker_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A new job for a failed or cancelled one (or the user's active job).
pub async fn retry_job(db: impl PgExecutor<'_>, job_id: Uuid) -> Result<Created> {
    // Without windows here: a retried economy job is due at once, and the
    // worker that claims it in a peak puts it back until off-peak.
    retry_placed_job(db, job_id, &crate::offpeak::Economy::default()).await
}

/// Empties the profile snapshots of jobs finished more than `older_than`
/// ago, up to `limit`; returns how many.
pub async fn scrub_snapshots(db: &PgPool, older_than: Duration, limit: i32) -> Result<u64> {
    let n: i32 = sqlx::query_scalar("select scrub_plan_job_snapshots($1, $2)")
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .fetch_one(db)
        .await?;
    Ok(n.max(0) as u64)
}

/// Records what an operator did (`operator_actions`), in the caller's
/// transaction; `job_id` is None for what concerns a kind.
pub async fn record_operator_action(
    db: impl PgExecutor<'_>,
    operator: &str,
    action: &str,
    job_id: Option<Uuid>,
    detail: &Value,
) -> Result<()> {
    sqlx::query(
        "insert into operator_actions (operator, action, job_id, detail) values ($1, $2, $3, $4)",
    )
    .bind(operator)
    .bind(action)
    .bind(job_id)
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}

/// What a retention pass deleted (or, dry, would delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow, Serialize)]
pub struct Purged {
    /// Another worker held the pass; nothing was done.
    pub skipped: bool,
    pub jobs: i64,
    pub attempts: i64,
    pub idempotency_keys: i64,
    pub outbox: i64,
}

/// Deletes up to `limit` jobs finished before `older_than` ago, with their
/// attempts, idempotency keys and outbox rows; plans stay. `dry_run`
/// counts everything that would go and deletes nothing.
pub async fn purge(db: &PgPool, older_than: Duration, limit: i32, dry_run: bool) -> Result<Purged> {
    Ok(
        sqlx::query_as::<_, Purged>("select * from purge_plan_jobs($1, $2, $3)")
            .bind(older_than.as_secs_f64())
            .bind(limit)
            .bind(dry_run)
            .fetch_one(db)
            .await?,
    )
}

/// A job made by a due schedule (or, `waiting`, held back by the user's
/// active job).
#[derive(Debug, Clone, FromRow)]
pub struct Enqueued {
    pub user_id: Uuid,
    pub kind: String,
    pub job_id: Uuid,
    pub waiting: bool,
}

/// The tables the workers vacuum themselves when autovacuum lags (see
/// `upkeep`): the names are spliced into VACUUM, so only these.
pub const VACUUMED_TABLES: &[&str] = &["plan_generation_jobs", "plan_job_attempts"];

/// Of [`VACUUMED_TABLES`], those with more than `min_dead` + `share` of
/// their live rows dead and no vacuum of any kind in the last `quiet`.
pub async fn tables_to_vacuum(
    db: &PgPool,
    min_dead: i64,
    share: f64,
    quiet: Duration,
) -> Result<Vec<&'static str>> {
    let due: Vec<String> = sqlx::query_scalar(
        r"select s.relname::text from pg_stat_user_tables s
          where s.relname = any ($1) and s.schemaname = current_schema()
            and s.n_dead_tup > $2 + $3 * s.n_live_tup
            and coalesce(greatest(s.last_vacuum, s.last_autovacuum), '-infinity')
                < now() - make_interval(secs => $4)",
    )
    .bind(VACUUMED_TABLES)
    .bind(min_dead)
    .bind(share)
    .bind(quiet.as_secs_f64())
    .fetch_all(db)
    .await?;
    Ok(VACUUMED_TABLES
        .iter()
        .copied()
        .filter(|t| due.iter().any(|d| d == t))
        .collect())
}

/// VACUUM one of [`VACUUMED_TABLES`]; a vacuum already running on it (a
/// peer's, autovacuum's) makes this one skip. Needs no transaction: VACUUM
/// cannot run in one. The server's "skipping vacuum ... lock not available"
/// is expected between workers and is kept out of the logs.
pub async fn vacuum(db: &PgPool, table: &'static str) -> Result<()> {
    debug_assert!(VACUUMED_TABLES.contains(&table));
    let mut conn = db.acquire().await?;
    // Three statements: several in one message form a transaction block.
    let mut ran = sqlx::raw_sql("set client_min_messages = error")
        .execute(&mut *conn)
        .await;
    if ran.is_ok() {
        ran = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("vacuum (skip_locked) {table}")))
            .execute(&mut *conn)
            .await;
    }
    if ran.is_ok() {
        ran = sqlx::raw_sql("reset client_min_messages")
            .execute(&mut *conn)
            .await;
    }
    if ran.is_err() {
        // The setting may still be on: this connection does not go back.
        conn.detach();
    }
    ran?;
    Ok(())
}
