//! `/v1/plans` (the user's plan versions), `/v1/plans/active`, and
//! `/v1/targets`: the nutrition targets of a profile from the one
//! implementation, so the app never computes its own.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonObject, QueryMap};
use super::jobs::profile_of;

/// A saved weekly plan.
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    pub plan_id: Uuid,
    pub job_id: Uuid,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub targets: Value,
    pub plan: Value,
}

const PLAN_COLUMNS: &str =
    "id as plan_id, job_id, version, is_active, source, model, created_at, targets, plan";

pub async fn by_id(db: &PgPool, id: Uuid) -> sqlx::Result<Option<PlanView>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PLAN_COLUMNS} from weekly_base_plans where id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

async fn active_plan(db: &PgPool, user: Uuid) -> sqlx::Result<Option<PlanView>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {PLAN_COLUMNS} from weekly_base_plans where user_id = $1 and is_active"
    )))
    .bind(user)
    .fetch_optional(db)
    .await
}

pub async fn active(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<PlanView>, ApiError> {
    let user = caller.user()?;
    let plan = active_plan(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("active plan"))?;
    Ok(Json(plan))
}

/// One version in the list (without the plan body).
#[derive(Debug, Clone, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PlanVersion {
    pub plan_id: Uuid,
    pub job_id: Uuid,
    pub version: i32,
    pub is_active: bool,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    QueryMap(q): QueryMap,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let limit = match q.get("limit") {
        None => 20,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::field("limit", "must be a whole number from 1 to 100"))?,
    };
    let plans: Vec<PlanVersion> = sqlx::query_as(
        "select id as plan_id, job_id, version, is_active, source, created_at \
         from weekly_base_plans where user_id = $1 order by version desc limit $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(json!({ "plans": plans })))
}

/// The targets of a posted `{"profileSnapshot": {...}}`.
pub async fn targets(
    _caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let profile = body.get("profileSnapshot").cloned().unwrap_or(Value::Null);
    let profile = profile_of(&profile)?;
    Ok(Json(json!({ "targets": crate::plan::targets(&profile) })))
}

/// The targets the user's active plan was made for.
pub async fn active_targets(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let plan = active_plan(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("active plan"))?;
    Ok(Json(
        json!({ "targets": plan.targets, "planId": plan.plan_id }),
    ))
}
