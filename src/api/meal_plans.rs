//! `/v1/meal-plans`: the user's meal plans (active, versions, one, its
//! grocery list), the swap of one meal (a `meal_swap` job, answered like a
//! created plan job), and Unsplash's download tracking for a photo the app
//! shows.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::extract::QueryMap;
use crate::images::attach::{Tracked, track_download};
use crate::images::unsplash::Photo;
use crate::jobs::meal_plan::SWAP_KIND;
use crate::jobs::meal_plan::store::{self as meals, MealPlanRow};
use crate::jobs::meal_plan::swap::SwapRequest;
use crate::queue::store::{self as queue_store, NewJob};

pub async fn active(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<MealPlanRow>, ApiError> {
    let user = caller.user()?;
    let plan = meals::active(&state.db, user)
        .await?
        .ok_or_else(|| ApiError::not_found("active meal plan"))?;
    Ok(Json(plan))
}

pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let user = caller.user()?;
    let limit = q.limit()?;
    let plans = meals::versions(&state.db, user, limit).await?;
    Ok(Json(json!({ "mealPlans": plans })))
}

/// The caller's meal plan `id`; another user's is as absent as a missing one.
async fn owned(state: &ApiState, caller: &Caller, id: &str) -> Result<MealPlanRow, ApiError> {
    let user = caller.user()?;
    // Not a UUID: no such plan, as for jobs.
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("meal plan"))?;
    match meals::by_id(&state.db, id).await? {
        Some(p) if p.user_id == user => Ok(p),
        _ => Err(ApiError::not_found("meal plan")),
    }
}

pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MealPlanRow>, ApiError> {
    Ok(Json(owned(&state, &caller, &id).await?))
}

/// Makes the caller's meal plan `id` (an older version, say) the active one.
pub async fn activate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MealPlanRow>, ApiError> {
    let user = caller.user()?;
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("meal plan"))?;
    let mut tx = state.db.begin().await?;
    meals::lock_user(&mut tx, user).await?;
    let plan = meals::activate(&mut tx, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("meal plan"))?;
    tx.commit().await?;
    tracing::info!(%user, meal_plan_id = %id, version = plan.version, "meal plan activated");
    Ok(Json(plan))
}

pub async fn grocery_list(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let plan = owned(&state, &caller, &id).await?;
    Ok(Json(json!({
        "mealPlanId": plan.meal_plan_id,
        "version": plan.version,
        "groceryList": plan.plan.get("grocery_list").cloned().unwrap_or(json!([])),
    })))
}

/// Queues the swap of meal `index` (0-based) of `day` (1-7); 202 with the
/// job, or the user's swap already running.
pub async fn swap(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, day, index)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    if let Caller::User(user) = caller {
        state.admission.check_user(user)?;
    }
    state.admission.check_queue(&state.db).await?;
    let plan = owned(&state, &caller, &id).await?;
    let day: u8 = day
        .parse()
        .ok()
        .filter(|d| (1..=7).contains(d))
        .ok_or_else(|| ApiError::field("day", "must be a whole number from 1 to 7"))?;
    let meals_of_day = plan.plan["days"]
        .as_array()
        .and_then(|days| days.iter().find(|d| d["day"] == json!(day)))
        .and_then(|d| d["meals"].as_array())
        .map_or(0, Vec::len);
    let index: usize = index
        .parse()
        .ok()
        .filter(|i| *i < meals_of_day)
        .ok_or_else(|| {
            ApiError::field(
                "index",
                format!(
                    "must be a meal of day {day}: 0 to {}",
                    meals_of_day.saturating_sub(1)
                ),
            )
        })?;
    if !plan.is_active {
        return Err(ApiError::conflict(
            "NOT_ACTIVE",
            "only the active meal plan's meals can be swapped",
        ));
    }
    let req = SwapRequest {
        meal_plan_id: plan.meal_plan_id,
        day,
        index,
    };
    let user = caller.user()?;
    let mut tx = state.db.begin().await?;
    super::limits::check_rate(&mut tx, user, state.limits.create).await?;
    let job = NewJob {
        user_id: user,
        kind: SWAP_KIND.to_owned(),
        profile_snapshot: serde_json::to_value(req).map_err(ApiError::internal)?,
        max_retries: 3,
        priority: 10,
        trace_context: crate::telemetry::logging::current_traceparent(),
        run_after: None,
    };
    let created = queue_store::create_job(&mut *tx, &job)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let status = if created.existed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    // Followed like any job: /v1/plan-jobs/{jobId} and its events.
    let body = json!({
        "jobId": created.job_id,
        "status": if created.existed { "existing" } else { "created" },
        "kind": SWAP_KIND,
    });
    Ok((status, Json(body)).into_response())
}

/// The app shows photo `photo_id` of the plan as the user's meal: the
/// server sends Unsplash's download event with its key, once per photo and
/// plan. 202 whether sent now or before.
pub async fn photo_used(
    State(state): State<ApiState>,
    caller: Caller,
    Path((id, photo_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let plan = owned(&state, &caller, &id).await?;
    let photo = plan.plan["days"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["meals"].as_array().into_iter().flatten())
        .filter_map(|m| m.get("image"))
        .find(|img| img["id"] == json!(photo_id))
        .cloned()
        .ok_or_else(|| ApiError::not_found("photo in this meal plan"))?;
    let photo: Photo = serde_json::from_value(photo).map_err(ApiError::internal)?;
    let Some(images) = &state.images else {
        return Err(ApiError::conflict(
            "IMAGES_NOT_CONFIGURED",
            "this service has no image source configured",
        ));
    };
    let tracked = track_download(
        &state.db,
        &images.client,
        images.per_hour,
        plan.meal_plan_id,
        &photo,
    )
    .await
    .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "IMAGE_SOURCE_ERROR", e.to_string()))?;
    let sent = match tracked {
        Tracked::Sent => "sent",
        Tracked::AlreadySent => "already_sent",
        Tracked::Refused => {
            // Cached before UNSPLASH_API_URL changed: not sent anywhere else.
            return Err(ApiError::conflict(
                "PHOTO_NOT_TRACKABLE",
                "this photo's download link is not on the configured image source",
            ));
        }
        Tracked::Deferred(_) => {
            return Err(ApiError::too_many(
                "IMAGES_RATE_LIMIT",
                "the image source's hourly requests are spent; call again later",
                std::time::Duration::from_secs(60),
            ));
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "photoId": photo.id, "download": sent })),
    )
        .into_response())
}
