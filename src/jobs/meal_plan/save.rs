//! Saving a meal plan: one transaction inserts it (next version, active, the
//! previous one deactivated), queues its photos when an image source is
//! configured, records the attempt's LLM usage and completes the job fenced
//! by the lease. If any step fails, nothing remains.

use serde_json::{Value, json};
use uuid::Uuid;

use super::store::{self, NewMealPlanRow};
use super::{IMAGES_KIND, STAGE_SAVING};
use crate::error_code::ErrorCode;
use crate::jobs::weekly_plan::save::Source;
use crate::plan::Targets;
use crate::plan::meal_plan::MealPlan;
use crate::queue::store::{self as queue_store, NewJob};
use crate::queue::{JobContext, JobError};

pub struct NewMealPlan<'a> {
    pub plan: &'a MealPlan,
    pub targets: &'a Targets,
    pub source: Source,
    pub model: Option<&'a str>,
    pub usage: Option<Value>,
    pub with_images: bool,
    pub swapped_from: Option<Uuid>,
}

#[tracing::instrument(name = "meal_plan.save", skip_all, fields(source = new.source.as_str()))]
pub async fn save_meal_plan(ctx: &JobContext, new: NewMealPlan<'_>) -> Result<Uuid, JobError> {
    let db_error =
        |e: sqlx::Error| JobError::new(ErrorCode::DbError, format!("saving the meal plan: {e}"));
    ctx.progress(STAGE_SAVING).await?;
    let _turn = ctx.db_turn().await;
    let user_id = ctx.job.user_id;
    let started = std::time::Instant::now();
    let mut tx = ctx.db.begin().await.map_err(db_error)?;
    store::lock_user(&mut tx, user_id).await.map_err(db_error)?;
    let row = NewMealPlanRow {
        user_id,
        job_id: ctx.job.id,
        plan: new.plan,
        targets: new.targets,
        source: new.source.as_str(),
        model: new.model,
        images_pending: new.with_images,
        swapped_from: new.swapped_from,
    };
    let id = store::insert_active(&mut tx, &row)
        .await
        .map_err(db_error)?;
    if new.with_images {
        // One images job per user finds the photos of all their pending
        // plans; an active one takes this plan too (see `images`).
        let job = NewJob {
            user_id,
            kind: IMAGES_KIND.to_owned(),
            profile_snapshot: json!({ "meal_plan_id": id }),
            max_retries: 5,
            priority: -10,
            trace_context: ctx.job.trace_context.clone(),
        };
        let images_job = queue_store::create_job(&mut *tx, &job)
            .await
            .map_err(|e| JobError::new(ErrorCode::DbError, format!("queueing the photos: {e}")))?;
        store::set_images_job(&mut tx, id, images_job.job_id)
            .await
            .map_err(db_error)?;
    }
    if let Some(usage) = &new.usage {
        queue_store::record_usage(&mut *tx, ctx.job.id, ctx.job.lease_token, usage)
            .await
            .map_err(db_error)?;
    }
    let held = ctx
        .complete_in(&mut tx, Some(id))
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, e.to_string()))?;
    if !held {
        return Err(JobError::new(
            ErrorCode::WorkerLost,
            "lease lost before the meal plan was saved",
        ));
    }
    tx.commit().await.map_err(db_error)?;
    metrics::histogram!(crate::telemetry::metrics::SAVE_DURATION)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::telemetry::metrics::PLANS_SAVED, "kind" => ctx.job.kind.clone(), "source" => new.source.as_str())
        .increment(1);
    Ok(id)
}
