//! `/v1/schedules`: a user's periodic regeneration, one schedule per kind
//! (migration 0014's `plan_schedules`). The maintenance tick makes the
//! jobs; this module owns the schedules' SQL, read by `plan-worker
//! schedules` too. The profile is validated as job creation validates it,
//! so a schedule never holds a profile that could not become a job.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonObject, PathId};
use super::jobs::{bool_field, checked_kind, profile_of, timestamp_field};
use crate::jobs::intake;

/// The shortest and longest period (the SQL function's bounds).
pub const MIN_EVERY_SECONDS: i64 = 60;
pub const MAX_EVERY_SECONDS: i64 = 366 * 86_400;

/// A schedule as stored (the profile apart).
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ScheduleRow {
    pub user_id: Uuid,
    pub kind: String,
    /// The period as PostgreSQL writes it (`7 days`), for operators.
    pub every: String,
    pub every_seconds: i64,
    pub next_run_at: DateTime<Utc>,
    pub active: bool,
    pub runs: i32,
    pub last_job_id: Option<Uuid>,
    pub last_enqueued_at: Option<DateTime<Utc>>,
    /// Why it was switched off; for operators (it is the database's text).
    pub last_error: Option<String>,
    /// Its jobs are economy jobs: run off-peak when their deadline allows.
    pub economy: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "user_id, kind, every::text as every, \
     round(extract(epoch from every))::int8 as every_seconds, next_run_at, active, runs, \
     last_job_id, last_enqueued_at, last_error, economy, created_at, updated_at";

/// Every schedule (or one user's), soonest due first.
pub async fn list(db: impl PgExecutor<'_>, user: Option<Uuid>) -> sqlx::Result<Vec<ScheduleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from plan_schedules where $1::uuid is null or user_id = $1 \
         order by next_run_at, user_id, kind"
    )))
    .bind(user)
    .fetch_all(db)
    .await
}

pub async fn find(
    db: impl PgExecutor<'_>,
    user: Uuid,
    kind: &str,
) -> sqlx::Result<Option<ScheduleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from plan_schedules where user_id = $1 and kind = $2"
    )))
    .bind(user)
    .bind(kind)
    .fetch_optional(db)
    .await
}

/// What a schedule is to be.
pub struct NewSchedule<'a> {
    pub user: Uuid,
    pub kind: &'a str,
    pub profile: &'a Value,
    pub every_seconds: i64,
    /// None: one period from now.
    pub first_run: Option<DateTime<Utc>>,
    /// Its jobs are economy jobs.
    pub economy: bool,
}

/// Creates or replaces the user's schedule of the kind (switched on again,
/// its next run reset).
pub async fn put_schedule(
    db: impl PgExecutor<'_>,
    s: &NewSchedule<'_>,
) -> sqlx::Result<ScheduleRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from schedule_plan_regeneration($1, $2, $3, make_interval(secs => $4), $5, $6)"
    )))
    .bind(s.user)
    .bind(s.kind)
    .bind(s.profile)
    .bind(s.every_seconds as f64)
    .bind(s.first_run)
    .bind(s.economy)
    .fetch_one(db)
    .await
}

/// Removes the schedule; false when there was none.
pub async fn remove(db: impl PgExecutor<'_>, user: Uuid, kind: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("select unschedule_plan_regeneration($1, $2)")
        .bind(user)
        .bind(kind)
        .fetch_one(db)
        .await
}

/// What the API answers for a schedule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub kind: String,
    pub every_seconds: i64,
    pub next_run_at: DateTime<Utc>,
    /// False once the schedule could not make a job (its profile no longer
    /// accepted): PUT it again to switch it on.
    pub active: bool,
    pub runs: i32,
    pub last_job_id: Option<Uuid>,
    pub last_enqueued_at: Option<DateTime<Utc>>,
    /// Its jobs wait for the provider's off-peak windows when their
    /// deadline allows (ECONOMY_MAX_DELAY_HOURS, at most one period).
    pub economy: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ScheduleRow> for ScheduleView {
    // `last_error` stays out: it is the database's text, not a message
    // written for users.
    fn from(r: ScheduleRow) -> Self {
        ScheduleView {
            kind: r.kind,
            every_seconds: r.every_seconds,
            next_run_at: r.next_run_at,
            active: r.active,
            runs: r.runs,
            last_job_id: r.last_job_id,
            last_enqueued_at: r.last_enqueued_at,
            economy: r.economy,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The path's kind, one this service makes, or 422 naming `kind`.
fn path_kind(kind: &str) -> Result<&str, ApiError> {
    checked_kind(Some(kind), "kind")
}

pub async fn list_own(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let schedules: Vec<ScheduleView> = list(&state.db, Some(user))
        .await?
        .into_iter()
        .map(ScheduleView::from)
        .collect();
    Ok(Json(json!({ "schedules": schedules })))
}

pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(kind): PathId,
) -> Result<Json<ScheduleView>, ApiError> {
    let user = caller.user()?;
    let kind = path_kind(&kind)?;
    let row = find(&state.db, user, kind)
        .await?
        .ok_or_else(|| ApiError::not_found("schedule"))?;
    Ok(Json(row.into()))
}

/// `PUT /v1/schedules/{kind}` with `{"everySeconds", "firstRunAt"?,
/// "economy"?, "profileSnapshot"}`: 201 for a new schedule, 200 for a replaced one.
pub async fn put(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(kind): PathId,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let user = caller.user()?;
    state.admission.check_user(user)?;
    let kind = path_kind(&kind)?;
    let every_seconds = body
        .get("everySeconds")
        .and_then(Value::as_i64)
        .filter(|s| (MIN_EVERY_SECONDS..=MAX_EVERY_SECONDS).contains(s))
        .ok_or_else(|| {
            ApiError::field(
                "everySeconds",
                format!(
                    "required: a whole number of seconds from {MIN_EVERY_SECONDS} to \
                     {MAX_EVERY_SECONDS} (366 days)"
                ),
            )
        })?;
    let first_run = timestamp_field(&body, "firstRunAt")?;
    let economy = bool_field(&body, "economy")?;
    let mut profile = body.get("profileSnapshot").cloned().unwrap_or(Value::Null);
    profile_of(&profile)?;
    intake::normalize_snapshot(&mut profile);
    let row = put_schedule(
        &state.db,
        &NewSchedule {
            user,
            kind,
            profile: &profile,
            every_seconds,
            first_run,
            economy,
        },
    )
    .await
    .map_err(sql_error)?;
    // A new row's created_at and updated_at are its one transaction's
    // now(); a replaced row keeps the created_at of an earlier one.
    let (status, what) = if row.created_at == row.updated_at {
        (StatusCode::CREATED, "created")
    } else {
        (StatusCode::OK, "replaced")
    };
    tracing::info!(%user, kind, every_seconds, "schedule {what} through the API");
    Ok((
        status,
        [(header::LOCATION, format!("/v1/schedules/{kind}"))],
        Json(ScheduleView::from(row)),
    )
        .into_response())
}

pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(kind): PathId,
) -> Result<StatusCode, ApiError> {
    let user = caller.user()?;
    let kind = path_kind(&kind)?;
    if remove(&state.db, user, kind).await? {
        tracing::info!(%user, kind, "schedule removed through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("schedule"))
    }
}

/// The SQL function's refusals (checked here first; this is the net under
/// those checks) in the request's field names.
fn sql_error(err: sqlx::Error) -> ApiError {
    if let sqlx::Error::Database(db) = &err {
        let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
        let message = || {
            db.message()
                .split_once(": ")
                .map_or(db.message(), |(_, m)| m)
                .to_owned()
        };
        match db.code().as_deref() {
            Some("22023") => {
                let field = match pg.and_then(|p| p.column()).unwrap_or("input") {
                    "profile_snapshot" => "profileSnapshot",
                    "every" => "everySeconds",
                    "first_run" => "firstRunAt",
                    other => other,
                };
                return ApiError::field(field, message());
            }
            Some("23514") if db.constraint() == Some("schedule_profile_size") => {
                return ApiError::field("profileSnapshot", "too large: at most 64 KiB once stored");
            }
            Some("22P05") => {
                return ApiError::field(
                    "profileSnapshot",
                    "must not contain the NUL character (\\u0000)",
                );
            }
            _ => {}
        }
    }
    ApiError::internal(err)
}
