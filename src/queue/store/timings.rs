//! Stage timings (migration 0018): written with a job's completion, read by
//! the estimates of later jobs, with the routes (source and model) that
//! workers make each kind with.

use serde_json::Value;
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

/// How a kind is made: `source` "llm" or "offline" ("" when the kind does
/// not say), `model` the LLM's ("" offline).
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub source: String,
    pub model: String,
}

/// One completed job's record, as the estimate reads it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StageTimings {
    pub attempt_seconds: f64,
    /// `[["stage", seconds], ...]` in the order run.
    pub stages: sqlx::types::Json<Vec<(String, f64)>>,
}

/// What the status of a running job needs for its estimate.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RunningState {
    pub progress: Option<String>,
    /// Seconds since the current stage began (None before the first).
    pub in_stage_seconds: Option<f64>,
    /// Seconds since the current attempt was claimed.
    pub in_attempt_seconds: f64,
    /// The route of the worker that holds it, if that worker says.
    pub source: Option<String>,
    pub model: Option<String>,
}

/// Records the stages of the attempt held under `token` (inside the
/// transaction that completes the job; a second run of that transaction
/// writes nothing twice).
pub async fn record_stage_timings(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    token: Uuid,
    route: &Route,
    stages: &[(String, f64)],
) -> sqlx::Result<()> {
    sqlx::query(
        r"insert into plan_job_stage_timings (job_id, kind, source, model, attempt_seconds, stages)
          select j.id, j.kind, $3, $4,
                 greatest(extract(epoch from now() - coalesce(j.attempt_started_at, a.started_at))::float8, 0), $5
          from plan_generation_jobs j
          left join plan_job_attempts a on a.job_id = j.id and a.attempt = j.attempt_count
          where j.id = $1 and j.lease_token = $2 and j.status = 'processing'
          on conflict (job_id) do nothing",
    )
    .bind(job_id)
    .bind(token)
    .bind(&route.source)
    .bind(&route.model)
    .bind(sqlx::types::Json(stages))
    .execute(db)
    .await?;
    Ok(())
}

/// The last `limit` records of `kind` within `window_days`, newest first,
/// of one source (and model) when given: each variant an index range scan
/// (kind + source alone reads the kind's index, skipping other sources).
pub async fn recent_stage_timings(
    db: &PgPool,
    kind: &str,
    source: Option<&str>,
    model: Option<&str>,
    limit: i32,
    window_days: f64,
) -> sqlx::Result<Vec<StageTimings>> {
    const COLUMNS: &str = "select attempt_seconds, stages from plan_job_stage_timings \
         where kind = $1 and finished_at > now() - make_interval(secs => $2 * 86400)";
    let sql = match (source, model) {
        (Some(_), Some(_)) => {
            format!("{COLUMNS} and source = $4 and model = $5 order by finished_at desc limit $3")
        }
        (Some(_), None) => {
            format!("{COLUMNS} and source = $4 order by finished_at desc limit $3")
        }
        (None, _) => format!("{COLUMNS} order by finished_at desc limit $3"),
    };
    let mut query = sqlx::query_as::<_, StageTimings>(sqlx::AssertSqlSafe(sql))
        .bind(kind)
        .bind(window_days)
        .bind(limit.max(1));
    if let Some(source) = source {
        query = query.bind(source);
        if let Some(model) = model {
            query = query.bind(model);
        }
    }
    query.fetch_all(db).await
}

/// Run times (first claim to completion) of the last `limit` completed
/// jobs of `kind` within `window_days`: the estimate of jobs whose worker
/// does not say how it makes them, while no stage timings exist.
pub async fn recent_run_seconds(
    db: &PgPool,
    kind: &str,
    limit: i32,
    window_days: f64,
) -> sqlx::Result<Vec<f64>> {
    sqlx::query_scalar(
        r"select extract(epoch from completed_at - started_at)::float8
          from plan_generation_jobs
          where kind = $1 and status = 'completed' and started_at is not null
            and completed_at > now() - make_interval(secs => $2 * 86400)
          order by completed_at desc limit $3",
    )
    .bind(kind)
    .bind(window_days)
    .bind(limit.max(1))
    .fetch_all(db)
    .await
}

/// A processing job's stage, its times and its worker's route; None when
/// the job is not processing.
pub async fn running_state(db: &PgPool, job_id: Uuid) -> sqlx::Result<Option<RunningState>> {
    sqlx::query_as::<_, RunningState>(
        r"select j.progress,
                 case when j.progress is not null
                           and j.progress_at >= coalesce(j.attempt_started_at, a.started_at)
                      then greatest(extract(epoch from now() - j.progress_at)::float8, 0) end
                     as in_stage_seconds,
                 greatest(extract(epoch from now() - coalesce(j.attempt_started_at, a.started_at, j.started_at))::float8, 0)
                     as in_attempt_seconds,
                 w.routes -> j.kind ->> 'source' as source,
                 w.routes -> j.kind ->> 'model' as model
          from plan_generation_jobs j
          left join plan_job_attempts a on a.job_id = j.id and a.attempt = j.attempt_count
          left join plan_workers w on w.id = j.worker_id
          where j.id = $1 and j.status = 'processing'",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await
}

/// The route most of the live workers' slots make `kind` with (what a
/// pending job will most likely get), if any worker says.
pub async fn likely_route(db: &PgPool, kind: &str) -> sqlx::Result<Option<Route>> {
    sqlx::query_as::<_, Route>(
        r"select coalesce(w.routes -> $1 ->> 'source', '') as source,
                 coalesce(w.routes -> $1 ->> 'model', '') as model
          from plan_workers w
          where $1 = any (w.kinds) and w.routes ? $1
          group by 1, 2
          order by sum(w.concurrency) desc, 1, 2
          limit 1",
    )
    .bind(kind)
    .fetch_optional(db)
    .await
}

/// Says how this worker makes each kind (after every registration: a
/// worker's row may have been removed and made again meanwhile).
pub async fn set_worker_routes(
    db: impl PgExecutor<'_>,
    worker_id: &str,
    routes: &Value,
) -> sqlx::Result<()> {
    sqlx::query(r"update plan_workers set routes = $2 where id = $1")
        .bind(worker_id)
        .bind(routes)
        .execute(db)
        .await?;
    Ok(())
}

/// Jobs of `kind` running now (the processing index: at most the workers'
/// slots).
pub async fn running_count(db: &PgPool, kind: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar(
        r"select count(*)::integer from plan_generation_jobs
          where status = 'processing' and kind = $1",
    )
    .bind(kind)
    .fetch_one(db)
    .await
}
