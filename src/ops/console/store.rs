//! The console's SQL. The overview reads only what indexes keep small (the
//! active jobs through their partial indexes, the last hour of finished
//! jobs through the finished index kind by kind); totals of finished jobs
//! are the planner's estimates, never counts of the whole table.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::queue::store::{self, JobStatus, StoreError};

/// The statuses a job ends in, whose totals are estimated.
pub const FINISHED: [JobStatus; 3] = [
    JobStatus::Completed,
    JobStatus::Failed,
    JobStatus::Cancelled,
];

/// A kind as the overview and the kinds page show it: its switches and its
/// active jobs (exact), and its finished jobs (estimated).
#[derive(Debug, Clone, FromRow)]
pub struct KindNow {
    pub kind: String,
    pub description: String,
    pub paused: bool,
    pub max_running: Option<i32>,
    pub pending: i64,
    /// Pending and due now (not a retry waiting for its backoff).
    pub due: i64,
    pub processing: i64,
    /// Seconds the oldest due pending job has waited (0: none).
    pub oldest_pending_seconds: f64,
    /// Completed, failed and cancelled, in [`FINISHED`] order: counted
    /// when the table is small, else estimated (see `Overview::exact`).
    #[sqlx(skip)]
    pub finished: [i64; 3],
}

/// Every kind with its active jobs.
pub async fn kinds_now(db: &mut PgConnection) -> sqlx::Result<Vec<KindNow>> {
    sqlx::query_as::<_, KindNow>(
        r"select k.kind, k.description, k.paused, k.max_running,
                 count(j.id) filter (where j.status = 'pending') as pending,
                 count(j.id) filter (where j.status = 'pending' and j.run_after <= now()) as due,
                 count(j.id) filter (where j.status = 'processing') as processing,
                 coalesce(extract(epoch from now() - min(j.run_after)
                     filter (where j.status = 'pending' and j.run_after <= now())), 0)::float8
                     as oldest_pending_seconds
          from plan_job_kinds k
          left join plan_generation_jobs j on j.kind = k.kind and j.status in ('pending', 'processing')
          group by k.kind
          order by k.kind",
    )
    .fetch_all(db)
    .await
}

/// The planner's estimate of the whole table's rows (from its size on
/// disk when it was never analysed).
pub async fn table_estimate(db: &mut PgConnection) -> sqlx::Result<i64> {
    let plan: Value =
        sqlx::query_scalar("explain (format json) select 1 from plan_generation_jobs")
            .fetch_one(db)
            .await?;
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0).round() as i64)
}

/// Finished jobs by kind and status, counted: only for a small table.
pub async fn finished_counts(db: &mut PgConnection) -> sqlx::Result<Vec<(String, JobStatus, i64)>> {
    sqlx::query_as(
        r"select kind, status, count(*) from plan_generation_jobs
          where status in ('completed', 'failed', 'cancelled') group by 1, 2",
    )
    .fetch_all(db)
    .await
}

/// The planner's estimate of the jobs of `kind` in `status` (from the
/// table's statistics and its kind/status MCV list: no row is read).
pub async fn estimate(db: &mut PgConnection, kind: &str, status: JobStatus) -> sqlx::Result<i64> {
    // EXPLAIN takes no parameters, and a generic plan would estimate
    // nothing useful: the literals go in the text. Kinds are checked by
    // the table (^[a-z][a-z0-9_]*$) and checked again here.
    if !kind
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Ok(0);
    }
    let sql = format!(
        "explain (format json) select 1 from plan_generation_jobs \
         where kind = '{kind}' and status = '{}'",
        status.as_str()
    );
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(db)
        .await?;
    let rows = plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0);
    // The planner never estimates fewer than one row.
    Ok(if rows <= 1.0 { 0 } else { rows.round() as i64 })
}

/// Finished jobs of the last hour, by how many minutes ago they ended,
/// status and error code.
#[derive(Debug, Clone, FromRow)]
pub struct RecentBucket {
    /// 0 (this minute) to 59.
    pub minutes_ago: i32,
    pub status: JobStatus,
    pub error_code: Option<String>,
    pub jobs: i64,
}

/// The last hour of `kinds` through `plan_generation_jobs_finished` (kind,
/// completed_at desc): one index range per kind, however old the table.
/// The kinds are a parameter, not a join: joined, the planner sizes the
/// kinds table by its default guess and reads the whole job table instead.
pub async fn last_hour(db: &mut PgConnection, kinds: &[String]) -> sqlx::Result<Vec<RecentBucket>> {
    sqlx::query_as::<_, RecentBucket>(
        r"select least(59, floor(extract(epoch from now() - completed_at) / 60))::int4 as minutes_ago,
                 status, error_code, count(*) as jobs
          from plan_generation_jobs
          where kind = any($1) and status in ('completed', 'failed', 'cancelled')
            and completed_at > now() - interval '1 hour'
          group by 1, 2, 3",
    )
    .bind(kinds)
    .fetch_all(db)
    .await
}

/// The planner's picture of the table: rows per (kind, status) from the
/// kind/status MCV list of 0019, scaled to the table's size now as the
/// planner scales it. Empty until the first ANALYZE.
/// The last value says how much of the table the list covers: at 1, a
/// pair that is not listed has no rows.
pub async fn mcv_estimates(
    db: &mut PgConnection,
) -> sqlx::Result<Vec<(String, JobStatus, i64, f64)>> {
    sqlx::query_as(
        r"select s.most_common_vals[i][1], s.most_common_vals[i][2]::plan_job_status,
                 round(s.most_common_freqs[i] * c.reltuples / greatest(c.relpages, 1)
                       * (pg_relation_size(c.oid) / current_setting('block_size')::int8))::int8,
                 (select sum(f) from unnest(s.most_common_freqs) f)
          from pg_stats_ext s
          join pg_class c on c.relname = s.tablename
          join pg_namespace n on n.oid = c.relnamespace and n.nspname = s.schemaname
          cross join lateral generate_subscripts(s.most_common_vals, 1) i
          where s.statistics_name = 'plan_generation_jobs_kind_status'
            and s.schemaname = current_schema() and c.reltuples > 0",
    )
    .fetch_all(db)
    .await
}

/// A registered worker and what it runs.
#[derive(Debug, Clone, FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub version: String,
    pub kinds: Vec<String>,
    pub concurrency: i32,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub seen_seconds_ago: f64,
    pub heartbeat_seconds: f64,
    pub running: i64,
    /// Its presence lock is held: the process is alive (see 0001's reaper).
    pub lock_held: bool,
}

/// Every registered worker, with its running jobs (the processing index,
/// by worker_id).
pub async fn workers(db: &mut PgConnection) -> sqlx::Result<Vec<WorkerRow>> {
    sqlx::query_as::<_, WorkerRow>(
        r"select w.id, w.host, w.pid, w.version, w.kinds, w.concurrency, w.started_at,
                 w.last_seen_at, extract(epoch from now() - w.last_seen_at)::float8 as seen_seconds_ago,
                 w.heartbeat_seconds,
                 (select count(*) from plan_generation_jobs j
                  where j.status = 'processing' and j.worker_id = w.id) as running,
                 exists (select 1 from pg_locks l
                         where l.locktype = 'advisory' and l.classid = 1886151020
                           and l.objid = w.lock_key::oid and l.objsubid = 2 and l.granted) as lock_held
          from plan_workers w
          order by w.id",
    )
    .fetch_all(db)
    .await
}

/// The job that has waited longest among those due.
#[derive(Debug, Clone, FromRow)]
pub struct OldestPending {
    pub id: Uuid,
    pub kind: String,
    pub waited_seconds: f64,
}

pub async fn oldest_pending(db: &mut PgConnection) -> sqlx::Result<Option<OldestPending>> {
    sqlx::query_as::<_, OldestPending>(
        r"select id, kind, extract(epoch from now() - run_after)::float8 as waited_seconds
          from plan_generation_jobs
          where status = 'pending' and run_after <= now()
          order by run_after, id
          limit 1",
    )
    .fetch_optional(db)
    .await
}

/// The jobs page's filters; every one optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobsFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    pub error_code: Option<String>,
    pub user_id: Option<Uuid>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// The page starts after this job (keyset: created_at desc, id desc).
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// One line of the jobs page.
#[derive(Debug, Clone, FromRow)]
pub struct JobLine {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub status: JobStatus,
    pub error_code: Option<String>,
    pub attempt_count: i32,
    pub progress: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Newest first, at most `limit`. The statement holds only the filters
/// given, and the status as a literal: a prepared `status = $1` with a
/// generic plan could not use the partial index of its status.
pub async fn jobs(db: &PgPool, f: &JobsFilter, limit: i64) -> sqlx::Result<Vec<JobLine>> {
    let mut q = QueryBuilder::<Postgres>::new(
        "select id, user_id, kind, status, error_code, attempt_count, progress, created_at, \
         completed_at from plan_generation_jobs where true",
    );
    if let Some(s) = f.status {
        // From the enum: one of five fixed words.
        q.push(format!(" and status = '{}'", s.as_str()));
    }
    if let Some(k) = &f.kind {
        q.push(" and kind = ").push_bind(k.clone());
    }
    if let Some(c) = &f.error_code {
        q.push(" and error_code = ").push_bind(c.clone());
    }
    if let Some(u) = f.user_id {
        q.push(" and user_id = ").push_bind(u);
    }
    if let Some(t) = f.from {
        q.push(" and created_at >= ").push_bind(t);
    }
    if let Some(t) = f.to {
        q.push(" and created_at < ").push_bind(t);
    }
    if let Some((at, id)) = f.after {
        q.push(" and (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" order by created_at desc, id desc limit ")
        .push_bind(limit.clamp(1, 500));
    q.build_query_as::<JobLine>().fetch_all(db).await
}

/// A saved plan as the job page shows it.
#[derive(Debug, Clone, FromRow)]
pub struct SavedPlan {
    pub id: Uuid,
    pub version: i32,
    pub plan: Value,
    pub targets: Value,
    pub source: String,
    pub model: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// The plan a job saved: a weekly plan, or a meal plan for the meal kinds.
pub async fn saved_plan(db: &PgPool, kind: &str, plan_id: Uuid) -> sqlx::Result<Option<SavedPlan>> {
    let table = if kind == crate::jobs::meal_plan::KIND || kind == crate::jobs::meal_plan::SWAP_KIND
    {
        "meal_plans"
    } else {
        "weekly_base_plans"
    };
    let sql = format!(
        "select id, version, plan, targets, source, model, is_active, created_at \
         from {table} where id = $1"
    );
    sqlx::query_as::<_, SavedPlan>(sqlx::AssertSqlSafe(sql))
        .bind(plan_id)
        .fetch_optional(db)
        .await
}

/// An entry of the operator audit.
#[derive(Debug, Clone, FromRow)]
pub struct Action {
    pub at: DateTime<Utc>,
    pub operator: String,
    pub action: String,
    pub detail: Value,
}

/// What operators did to a job, newest first.
pub async fn actions_on(db: &PgPool, job_id: Uuid) -> sqlx::Result<Vec<Action>> {
    sqlx::query_as::<_, Action>(
        r"select at, operator, action, detail from operator_actions
          where job_id = $1 order by at desc, id desc limit 50",
    )
    .bind(job_id)
    .fetch_all(db)
    .await
}

/// The latest operator actions on kinds (pause, resume, cap).
pub async fn kind_actions(db: &mut PgConnection) -> sqlx::Result<Vec<Action>> {
    sqlx::query_as::<_, Action>(
        r"select at, operator, action, detail from operator_actions
          where job_id is null order by id desc limit 20",
    )
    .fetch_all(db)
    .await
}

/// What came of a console action, for the page it returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Cancelled {
        previous: JobStatus,
    },
    /// The job was already final.
    NotCancelled {
        status: JobStatus,
    },
    KindPaused {
        changed: bool,
    },
    KindResumed {
        changed: bool,
    },
}

/// Retries a failed or cancelled job and audits it, in one transaction:
/// the new job, or the user's job of that kind already active.
pub async fn retry(
    db: &PgPool,
    operator: &str,
    job_id: Uuid,
) -> Result<store::Created, StoreError> {
    let mut tx = db.begin().await?;
    let created = store::retry_job(&mut *tx, job_id).await?;
    let detail = serde_json::json!({
        "newJobId": created.job_id, "existed": created.existed, "via": "console",
    });
    store::record_operator_action(&mut *tx, operator, "retry", Some(job_id), &detail).await?;
    tx.commit().await?;
    Ok(created)
}

/// Cancels a pending or running job and audits it; None: no such job.
pub async fn cancel(db: &PgPool, operator: &str, job_id: Uuid) -> Result<Option<Done>, StoreError> {
    let reason = format!("cancelled by operator {operator}");
    let mut tx = db.begin().await?;
    let Some(c) = store::cancel(&mut *tx, job_id, &reason).await? else {
        return Ok(None);
    };
    if !c.cancelled {
        // Nothing changed: nothing to audit.
        return Ok(Some(Done::NotCancelled {
            status: c.previous_status,
        }));
    }
    let detail = serde_json::json!({
        "previousStatus": c.previous_status.to_string(), "reason": reason, "via": "console",
    });
    store::record_operator_action(&mut *tx, operator, "cancel", Some(job_id), &detail).await?;
    tx.commit().await?;
    Ok(Some(Done::Cancelled {
        previous: c.previous_status,
    }))
}

/// Pauses or resumes a kind (the rule is 0014's SQL function) and audits
/// it, in one transaction.
pub async fn set_paused(
    db: &PgPool,
    operator: &str,
    kind: &str,
    paused: bool,
) -> Result<Done, StoreError> {
    let mut tx = db.begin().await?;
    let changed: bool = sqlx::query_scalar("select set_plan_job_kind_paused($1, $2)")
        .bind(kind)
        .bind(paused)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("22023") => {
                StoreError::InvalidInput {
                    field: "kind".into(),
                    message: d.message().to_owned(),
                }
            }
            _ => StoreError::Db(e),
        })?;
    let action = if paused { "pause" } else { "resume" };
    let detail = serde_json::json!({"kind": kind, "changed": changed, "via": "console"});
    store::record_operator_action(&mut *tx, operator, action, None, &detail).await?;
    tx.commit().await?;
    Ok(if paused {
        Done::KindPaused { changed }
    } else {
        Done::KindResumed { changed }
    })
}
