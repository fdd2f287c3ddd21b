//! Days shown as they land. A plan whose days are written in parallel
//! reports each day once it has passed its own checks: the day's JSON is
//! kept in `plan_job_days`, the job's `days_ready` counts it, and a
//! `plan_job_events` notification carrying the day's number tells the API's
//! event streams to send it. The week is still validated and saved
//! atomically at the end; a day shown here is a preview of it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::error_code::ErrorCode;
use crate::queue::events::EVENTS_CHANNEL;
use crate::queue::{JobContext, JobError};

/// Records day `day` of the attempt `ctx` holds; a lost lease stops the
/// attempt, as a lost progress report does.
/// `content` is bound as JSON as it is (no `Value` copy of a day waits for
/// the database turn).
pub async fn day_ready<T: Serialize + Sync>(
    ctx: &JobContext,
    day: u8,
    content: &T,
) -> Result<(), JobError> {
    let _turn = ctx.db_turn().await;
    let (id, token, attempt) = (ctx.job.id, ctx.job.lease_token, ctx.attempt());
    let held = ctx
        .retry_db("day_ready", || {
            record(&ctx.db, id, token, attempt, day, content)
        })
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, format!("recording day {day}: {e}")))?;
    if held {
        Ok(())
    } else {
        Err(JobError::new(
            ErrorCode::WorkerLost,
            "lease lost while reporting a finished day",
        ))
    }
}

/// One transaction: fenced by the lease, so a worker that lost its job
/// cannot show days of a plan that will not be saved. Safe to run twice.
async fn record<T: Serialize + Sync>(
    db: &PgPool,
    job: Uuid,
    token: Uuid,
    attempt: i32,
    day: u8,
    content: &T,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let progress: Option<Option<String>> = sqlx::query_scalar(
        "select progress from plan_generation_jobs \
         where id = $1 and lease_token = $2 and status = 'processing' for update",
    )
    .bind(job)
    .bind(token)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(progress) = progress else {
        return Ok(false);
    };
    sqlx::query("delete from plan_job_days where job_id = $1 and attempt <> $2")
        .bind(job)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into plan_job_days (job_id, day, attempt, content) values ($1, $2, $3, $4) \
         on conflict (job_id, day) do update \
         set attempt = excluded.attempt, content = excluded.content, created_at = now()",
    )
    .bind(job)
    .bind(i16::from(day))
    .bind(attempt)
    .bind(sqlx::types::Json(content))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update plan_generation_jobs \
         set days_ready = (select count(*) from plan_job_days where job_id = $1), \
             first_day_at = coalesce(first_day_at, now()) \
         where id = $1",
    )
    .bind(job)
    .execute(&mut *tx)
    .await?;
    let event = json!([{"id": job, "status": "processing", "progress": progress,
                        "error_code": null, "day": day}]);
    sqlx::query("select pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(event.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// The days this attempt has recorded, in day order, read back for the
/// week's end. The days wait here instead of in the worker's memory: a
/// thousand jobs with half their week written held tens of MB of days.
pub async fn recorded_days<T: DeserializeOwned + Send + Unpin + 'static>(
    ctx: &JobContext,
) -> Result<Vec<(u8, T)>, JobError> {
    let _turn = ctx.db_turn().await;
    let (id, attempt) = (ctx.job.id, ctx.attempt());
    ctx.retry_db("recorded_days", || async move {
        let rows: Vec<(i16, sqlx::types::Json<T>)> = sqlx::query_as(
            "select day, content from plan_job_days where job_id = $1 and attempt = $2 \
             order by day",
        )
        .bind(id)
        .bind(attempt)
        .fetch_all(&ctx.db)
        .await?;
        Ok(rows.into_iter().map(|(d, c)| (d as u8, c.0)).collect())
    })
    .await
    .map_err(|e: sqlx::Error| JobError::new(ErrorCode::DbError, format!("reading the days: {e}")))
}

/// A day of a job as the event streams send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyDay {
    pub day: u8,
    pub attempt: i32,
    pub content: Value,
}

/// The job's days of its latest attempt, in day order.
pub async fn ready_days(db: &PgPool, job: Uuid) -> Result<Vec<ReadyDay>, sqlx::Error> {
    let rows = sqlx::query(
        "select day, attempt, content from plan_job_days d \
         where job_id = $1 and attempt = (select max(attempt) from plan_job_days where job_id = $1) \
         order by day",
    )
    .bind(job)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReadyDay {
                day: r.try_get::<i16, _>("day")? as u8,
                attempt: r.try_get("attempt")?,
                content: r.try_get("content")?,
            })
        })
        .collect()
}
