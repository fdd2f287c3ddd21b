//! `/v1/plans` (the user's plan versions), `/v1/plans/active`, and
//! `/v1/targets`: the nutrition targets of a profile from the one
//! implementation, so the app never computes its own.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonObject, QueryMap};
use super::jobs::profile_of;

use crate::jobs::weekly_plan::store as plans;
pub use crate::jobs::weekly_plan::store::{PlanRow as PlanView, PlanVersion};

pub async fn active(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<PlanView>, ApiError> {
    let user = caller.user()?;
    let plan = plans::active(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("active plan"))?;
    Ok(Json(plan))
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let limit = q.limit()?;
    let plans = plans::versions(&state.db, user, limit).await?;
    Ok(Json(json!({ "plans": plans })))
}

/// The caller's plan `id`, any version.
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlanView>, ApiError> {
    let user = caller.user()?;
    // Not a UUID: no such plan, as for jobs.
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("plan"))?;
    let plan = plans::owned(&state.db, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan"))?;
    Ok(Json(plan))
}

/// Makes the caller's plan `id` (an older version, say) the active one.
pub async fn activate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlanView>, ApiError> {
    let user = caller.user()?;
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("plan"))?;
    let mut tx = state.db.begin().await?;
    // The lock of the save transaction: a plan being saved and a rollback
    // never both end up active.
    plans::lock_user(&mut tx, user).await?;
    let plan = plans::activate(&mut tx, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan"))?;
    tx.commit().await?;
    tracing::info!(%user, plan_id = %id, version = plan.version, "plan activated");
    Ok(Json(plan))
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
    let plan = plans::active(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("active plan"))?;
    Ok(Json(
        json!({ "targets": plan.targets, "planId": plan.plan_id }),
    ))
}
