//! `/v1/plan-jobs`: create (idempotent, one active job per user and kind),
//! status with a user-safe message, queue position and estimate, cancel,
//! retry. Job rows are read and written through `queue::store`, keys
//! through `api::store`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ApiState;
use super::auth::{Caller, Creator};
use super::error::{ApiError, FieldProblem};
use super::estimate::{self, Estimate};
use super::extract::{JsonObject, PathId, QueryMap};
use super::limits;
use super::plans::PlanView;
use super::store as api_store;
use crate::error_code::ErrorCode;
use crate::jobs::weekly_plan::{KIND, store as plans};
use crate::jobs::{KINDS, intake};
use crate::offpeak::Economy;
use crate::plan::Profile;
use crate::queue::store::{self, Created, JobRow, JobStatus, Placement, StoreError};

/// A user-safe account of a failure.
#[derive(Debug, Clone, Serialize)]
pub struct JobErrorView {
    pub code: String,
    pub message: &'static str,
    /// Whether the worker will try again by itself.
    pub retrying: bool,
}

/// What `GET /v1/plan-jobs/{id}` answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: Uuid,
    pub kind: String,
    pub status: JobStatus,
    pub progress: Option<String>,
    pub retry_count: i32,
    pub max_retries: i32,
    pub error: Option<JobErrorView>,
    /// 1 = next to be picked up; pending jobs only.
    pub queue_position: Option<i32>,
    pub estimate: Option<Estimate>,
    pub created_at: DateTime<Utc>,
    /// When a pending job may be claimed: its creation, the `runAfter` it
    /// was created with, or the time of its next retry.
    pub run_after: DateTime<Utc>,
    /// An economy job: it waits for the provider's off-peak windows when
    /// its deadline allows.
    pub economy: bool,
    /// An economy job's deadline (null for other jobs): `runAfter` is the
    /// off-peak start planned for it, or now when the deadline does not
    /// allow waiting.
    pub not_after: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub plan_id: Option<Uuid>,
    /// The saved plan, once completed.
    pub plan: Option<PlanView>,
}

pub fn error_view(status: JobStatus, code: Option<&str>) -> Option<JobErrorView> {
    let code = code?;
    let retrying = status.is_active();
    let message = match code.parse::<ErrorCode>() {
        Ok(c) if retrying => c.user_message(),
        Ok(c) => c.final_user_message(),
        Err(_) => "Something went wrong on our side. Please try again.",
    };
    Some(JobErrorView {
        code: code.to_owned(),
        message,
        retrying,
    })
}

/// The job, if the caller may see it: others' jobs do not exist for them.
pub async fn visible(state: &ApiState, caller: Caller, id: &str) -> Result<JobRow, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("job"))?;
    match store::get_job(&state.db, id).await? {
        Some(job) if caller.may_access(job.user_id) => Ok(job),
        _ => Err(ApiError::not_found("job")),
    }
}

/// The full status of a job: position and estimate while it waits or
/// runs, the plan once it is saved.
pub async fn view(state: &ApiState, job: JobRow) -> Result<JobView, ApiError> {
    let (mut position, mut eta) = (None, None);
    let settings = &state.estimate;
    match job.status {
        JobStatus::Pending => {
            if let Some(p) = store::queue_position(&state.db, job.id).await? {
                position = Some(p.ahead + 1);
                let f = estimate::for_pending_job(&state.db, &job.kind, p, settings).await?;
                eta = Some(Estimate::from(f));
            }
        }
        JobStatus::Processing => {
            let f = estimate::for_running_job(&state.db, job.id, &job.kind, settings).await?;
            eta = f.map(Estimate::from);
        }
        _ => {}
    }
    let plan = match (job.status, job.plan_id) {
        (JobStatus::Completed, Some(plan_id)) => plans::by_id(&state.db, plan_id).await?,
        _ => None,
    };
    Ok(JobView {
        error: error_view(job.status, job.error_code.as_deref()),
        job_id: job.id,
        kind: job.kind,
        status: job.status,
        progress: job.progress,
        retry_count: job.retry_count,
        max_retries: job.max_retries,
        queue_position: position,
        estimate: eta,
        created_at: job.created_at,
        run_after: job.run_after,
        economy: job.not_after.is_some(),
        not_after: job.not_after,
        started_at: job.started_at,
        completed_at: job.completed_at,
        updated_at: job.updated_at,
        plan_id: job.plan_id,
        plan,
    })
}

pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<JobView>, ApiError> {
    let job = visible(&state, caller, &id).await?;
    Ok(Json(view(&state, job).await?))
}

pub async fn active(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(q): QueryMap,
) -> Result<Json<JobView>, ApiError> {
    let user = caller.user()?;
    let kind = checked_kind(q.get("kind").map(String::as_str), "kind")?;
    let id = store::active_job_id(&state.db, user, kind).await?;
    let job = match id {
        Some(id) => store::get_job(&state.db, id).await?,
        None => None,
    };
    let job = job.ok_or_else(|| ApiError::not_found("active job"))?;
    Ok(Json(view(&state, job).await?))
}

pub fn checked_kind<'a>(kind: Option<&'a str>, field: &str) -> Result<&'a str, ApiError> {
    let kind = kind.unwrap_or(KIND);
    if KINDS.contains(&kind) {
        Ok(kind)
    } else {
        Err(ApiError::field(
            field,
            format!("unsupported kind; this service makes: {}", KINDS.join(", ")),
        ))
    }
}

/// `GET /v1/plan-jobs?limit=&before=`: the caller's generation history,
/// newest first, a page at a time (`before`: the last job of the previous
/// page, as `nextBefore` said).
pub async fn history(
    State(state): State<ApiState>,
    caller: Caller,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let limit = q.limit()?;
    let after = match q.0.get("before") {
        None => None,
        Some(b) => {
            let id: Uuid = b
                .parse()
                .map_err(|_| ApiError::field("before", "must be a job id (nextBefore)"))?;
            let at = store::history_cursor(&state.db, user, id)
                .await?
                .ok_or_else(|| {
                    ApiError::field(
                        "before",
                        "no such job of this user (finished jobs are kept JOB_RETENTION_DAYS)",
                    )
                })?;
            Some((at, id))
        }
    };
    let rows = store::history(&state.db, user, after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let jobs: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let seconds = |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| {
                from.zip(to)
                    .map(|(a, b)| (b - a).num_milliseconds().max(0) as f64 / 1000.0)
            };
            json!({
                "jobId": r.id, "kind": r.kind, "status": r.status,
                "error": error_view(r.status, r.error_code.as_deref()),
                "attempts": r.attempt_count, "createdAt": r.created_at,
                "startedAt": r.started_at, "completedAt": r.completed_at,
                "waitSeconds": seconds(Some(r.created_at), r.started_at),
                "runSeconds": seconds(r.started_at, r.completed_at),
                "planId": r.plan_id,
            })
        })
        .collect();
    Ok(Json(json!({"jobs": jobs, "nextBefore": next})))
}

/// The answer to a creation: 201 for a new job (naming the job it
/// replaced, if any), 200 for one that existed. `success` and
/// `existingJobId` are the old edge function's `create-plan-job` fields, so
/// that its clients keep working unchanged.
fn created(c: Created, replaced: Option<Uuid>) -> Response {
    let (code, body) = if c.existed {
        let body = json!({"jobId": c.job_id, "status": "existing", "success": true,
                          "existingJobId": c.job_id});
        (StatusCode::OK, body)
    } else {
        let mut body = json!({"jobId": c.job_id, "status": "created", "success": true});
        if let Some(old) = replaced {
            body["replacedJobId"] = json!(old);
        }
        (StatusCode::CREATED, body)
    };
    (
        code,
        [(header::LOCATION, format!("/v1/plan-jobs/{}", c.job_id))],
        Json(body),
    )
        .into_response()
}

/// The request's `Idempotency-Key`, if any.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

pub async fn create(
    State(state): State<ApiState>,
    creator: Creator,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let user = creator.caller.user()?;
    state.admission.check_user(user)?;
    let key = idempotency_key(&headers)?;
    let kind = match body.get("kind") {
        None | Some(Value::Null) => KIND,
        Some(Value::String(k)) => checked_kind(Some(k), "kind")?,
        Some(_) => return Err(ApiError::field("kind", "must be a string")),
    };
    let profile = body.get("profileSnapshot").cloned().unwrap_or(Value::Null);
    profile_of(&profile)?;
    let run_after = timestamp_field(&body, "runAfter")?;
    let replace = bool_field(&body, "replace")?;
    let economy = economy_of(&body, run_after)?;
    let request_hash = {
        let mut canonical = json!({"kind": kind, "profileSnapshot": profile});
        // Only when given: the hashes of keys remembered before runAfter
        // and replace existed stay what they were.
        if let Some(t) = run_after {
            canonical["runAfter"] = json!(t);
        }
        if replace {
            canonical["replace"] = json!(true);
        }
        if let Some(e) = &economy {
            canonical["economy"] = json!(true);
            if let Some(t) = e.not_after {
                canonical["notAfter"] = json!(t);
            }
        }
        hex(&Sha256::digest(canonical.to_string().as_bytes()))
    };

    state.admission.check_queue(&state.db).await?;
    let mut tx = state.db.begin().await?;
    limits::lock_user(&mut tx, user).await?;
    if let Some(key) = &key {
        api_store::forget_expired_keys(&mut tx, user).await?;
        if let Some((job_id, hash)) = api_store::find_key(&mut tx, user, key).await? {
            if hash != request_hash {
                return Err(ApiError::conflict(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used with a different request",
                ));
            }
            tx.commit().await?;
            return Ok(created(
                Created {
                    job_id,
                    existed: true,
                },
                None,
            ));
        }
        // A fresh key is a creation request even when the user's active
        // job is the answer: it counts against the creation limit, so that
        // fresh keys cannot pile up rows.
        limits::check_rate(&mut tx, user, state.limits.create).await?;
    }
    let new = Requested {
        user,
        kind,
        profile,
        run_after,
        priority: creator.priority,
        replace,
        economy,
    };
    let (outcome, replaced) = create_unless_active(&state, &mut tx, new).await?;
    if let Some(key) = &key {
        api_store::remember_key(&mut tx, user, key, &request_hash, outcome.job_id).await?;
        api_store::cap_keys(&mut tx, user).await?;
    }
    tx.commit().await?;
    if !outcome.existed {
        state.admission.created().await;
        tracing::info!(job_id = %outcome.job_id, %user, kind, replaced_job_id = ?replaced,
            "job created through the API");
    }
    Ok(created(outcome, replaced))
}

/// A creation as the request and the caller's token ask it.
struct Requested<'a> {
    user: Uuid,
    kind: &'a str,
    profile: Value,
    run_after: Option<DateTime<Utc>>,
    /// From the token's tier (PRIORITY_BY_TIER), never from the body.
    priority: i32,
    /// Cancel the user's active job of the kind and make a new one.
    replace: bool,
    /// `"economy": true`, with the deadline asked for, if any.
    economy: Option<EconomyAsk>,
}

/// An economy request: its deadline (None: ECONOMY_MAX_DELAY_HOURS from
/// the job's earliest start).
struct EconomyAsk {
    not_after: Option<DateTime<Utc>>,
}

/// `economy` and `notAfter` of a creation, checked: a deadline only with
/// `economy: true`, and later than the job's earliest start.
fn economy_of(
    body: &serde_json::Map<String, Value>,
    run_after: Option<DateTime<Utc>>,
) -> Result<Option<EconomyAsk>, ApiError> {
    let economy = bool_field(body, "economy")?;
    let not_after = timestamp_field(body, "notAfter")?;
    if !economy {
        return match not_after {
            Some(_) => Err(ApiError::field(
                "notAfter",
                "a deadline is for economy jobs: send \"economy\": true with it",
            )),
            None => Ok(None),
        };
    }
    let earliest = run_after.map_or_else(Utc::now, |t| t.max(Utc::now()));
    if not_after.is_some_and(|t| t <= earliest) {
        return Err(ApiError::field(
            "notAfter",
            "must be later than now (and than runAfter, when given)",
        ));
    }
    Ok(Some(EconomyAsk { not_after }))
}

/// An optional boolean field of the body (absent or null: false).
pub fn bool_field(body: &serde_json::Map<String, Value>, field: &str) -> Result<bool, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::field(field, "must be true or false")),
    }
}

/// What a replaced job says in its status and events.
const REPLACED: &str = "Replaced by a newer request.";

/// The user's active job of `kind`, or a new one within the limits; with
/// `replace`, a new one in place of the active one (cancelled in the same
/// transaction, returned second), once the limits allow it.
async fn create_unless_active(
    state: &ApiState,
    tx: &mut sqlx::PgConnection,
    new: Requested<'_>,
) -> Result<(Created, Option<Uuid>), ApiError> {
    let Requested {
        user,
        kind,
        profile,
        run_after,
        priority,
        replace,
        economy,
    } = new;
    let active = store::active_job_id(&mut *tx, user, kind).await?;
    if let (Some(job_id), false) = (active, replace) {
        let existing = Created {
            job_id,
            existed: true,
        };
        return Ok((existing, None));
    }
    // Before anything is cancelled: a refused replacement keeps the old job.
    limits::check_rate(tx, user, state.limits.create).await?;
    limits::check_cooldown(tx, user, kind, state.limits.cooldown).await?;
    if let Some(old) = active {
        // Its worker learns at its next heartbeat and stops; cancelled jobs
        // send no push, so the user hears only of the new one.
        store::cancel(&mut *tx, old, REPLACED)
            .await
            .map_err(ApiError::internal)?;
    }
    let mut job = intake::weekly_plan_job(user, profile);
    intake::normalize_snapshot(&mut job.profile_snapshot);
    job.kind = kind.to_owned();
    job.trace_context = crate::telemetry::logging::current_traceparent();
    job.run_after = run_after;
    job.priority = priority;
    let placement = economy.map(|e| placement(&state.economy, run_after, e.not_after));
    let created = store::create_placed_job(&mut *tx, &job, placement.as_ref())
        .await
        .map_err(store_error)?;
    Ok((created, active))
}

/// The profile of a request, or 422 naming every bad field, before
/// anything is written.
pub fn profile_of(snapshot: &Value) -> Result<Profile, ApiError> {
    if !snapshot.is_object() {
        return Err(ApiError::invalid(
            "INVALID_PROFILE",
            vec![FieldProblem {
                field: "profileSnapshot".into(),
                message: "required: a JSON object".into(),
            }],
        ));
    }
    crate::plan::parse_profile(snapshot).map_err(|e| {
        ApiError::invalid(
            "INVALID_PROFILE",
            e.fields
                .into_iter()
                .map(|f| FieldProblem {
                    field: format!("profileSnapshot.{}", f.field),
                    message: f.message,
                })
                .collect(),
        )
    })
}

/// The longest a job or a schedule's first run may be set ahead (the SQL
/// functions refuse more, as a likely mistake).
pub const MAX_AHEAD_DAYS: i64 = 366;

/// An optional RFC 3339 timestamp of the body, at most `MAX_AHEAD_DAYS`
/// ahead (a past time means now). Checked here, not only in SQL: a request
/// answered with the user's active job never reaches the SQL check.
pub fn timestamp_field(
    body: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let text = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ApiError::field(
                field,
                "must be an RFC 3339 timestamp string, e.g. 2026-12-24T08:00:00Z",
            ));
        }
    };
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| {
            ApiError::field(
                field,
                "must be an RFC 3339 timestamp, e.g. 2026-12-24T08:00:00Z",
            )
        })?
        .with_timezone(&Utc);
    if t > Utc::now() + chrono::Duration::days(MAX_AHEAD_DAYS) {
        return Err(ApiError::field(
            field,
            format!("at most {MAX_AHEAD_DAYS} days ahead"),
        ));
    }
    Ok(Some(t))
}

/// Where an economy job starting no sooner than `run_after` goes: its
/// deadline (the one asked for, else ECONOMY_MAX_DELAY_HOURS on), and the
/// coming off-peak stretches of this process's windows.
pub fn placement(
    economy: &Economy,
    run_after: Option<DateTime<Utc>>,
    not_after: Option<DateTime<Utc>>,
) -> Placement {
    let now = Utc::now();
    let earliest = run_after.map_or(now, |t| t.max(now));
    let delay = chrono::Duration::from_std(economy.max_delay).unwrap_or(chrono::Duration::days(1));
    // Within the SQL function's bound however far runAfter is, and after
    // the earliest start.
    let default = (earliest + delay)
        .min(now + chrono::Duration::days(MAX_AHEAD_DAYS))
        .max(earliest + chrono::Duration::minutes(1));
    Placement {
        not_after: not_after.unwrap_or(default),
        stretches: economy.stretches(earliest),
        margin: economy.start_margin,
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidInput { field, message } => {
            // The request's spelling of the database's column names.
            let field = match field.as_str() {
                "profile_snapshot" => "profileSnapshot",
                "max_retries" => "maxRetries",
                "run_after" => "runAfter",
                "not_after" => "notAfter",
                other => other,
            };
            ApiError::field(field, message)
        }
        StoreError::Db(e) => ApiError::internal(e),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let job = visible(&state, caller, &id).await?;
    let reason = match caller {
        Caller::User(_) => "cancelled by the user",
        Caller::Admin(_) => "cancelled by an operator",
    };
    let mut tx = state.db.begin().await?;
    let outcome = store::cancel(&mut *tx, job.id, reason)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("job"))?;
    if let Caller::Admin(operator) = caller {
        let detail = json!({
            "previousStatus": outcome.previous_status.to_string(),
            "cancelled": outcome.cancelled,
            "userId": job.user_id,
        });
        store::record_operator_action(&mut *tx, operator, "cancel", Some(job.id), &detail)
            .await
            .map_err(store_error)?;
    }
    tx.commit().await?;
    if !outcome.cancelled {
        return Err(ApiError::conflict(
            "JOB_FINISHED",
            format!("the job is already {}", outcome.previous_status),
        ));
    }
    tracing::info!(job_id = %job.id, ?caller, "job cancelled through the API");
    Ok(Json(json!({
        "jobId": job.id,
        "status": "cancelled",
        "previousStatus": outcome.previous_status,
    })))
}

pub async fn retry(
    State(state): State<ApiState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let user = caller.user()?;
    state.admission.check_user(user)?;
    let job = visible(&state, caller, &id).await?;
    if !matches!(job.status, JobStatus::Failed | JobStatus::Cancelled) {
        return Err(ApiError::conflict(
            "JOB_NOT_RETRYABLE",
            format!(
                "only a failed or cancelled job can be retried; this one is {}",
                job.status
            ),
        ));
    }
    state.admission.check_queue(&state.db).await?;
    let mut tx = state.db.begin().await?;
    limits::lock_user(&mut tx, user).await?;
    let active = store::active_job_id(&mut *tx, user, &job.kind).await?;
    if active.is_none() {
        // The retry makes a new plan version like any creation: the rate
        // limit and the cool-down both apply (an old failed job must not
        // be a way around them).
        limits::check_rate(&mut tx, user, state.limits.create).await?;
        limits::check_cooldown(&mut tx, user, &job.kind, state.limits.cooldown).await?;
    }
    let outcome = store::retry_placed_job(&mut *tx, job.id, &state.economy)
        .await
        .map_err(|e| match e {
            // The job cannot run again (its profile is gone, or it changed
            // since it was read): a conflict with its state, not bad input.
            StoreError::InvalidInput { field, message } if field == "job_id" => {
                ApiError::conflict("JOB_NOT_RETRYABLE", message)
            }
            other => store_error(other),
        })?;
    tx.commit().await?;
    Ok(created(outcome, None))
}
