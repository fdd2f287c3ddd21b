//! Saving a meal plan: one transaction inserts it (next version, active, the
//! previous one deactivated), queues its photos when an image source is
//! configured, records the attempt's LLM usage and completes the job fenced
//! by the lease. If any step fails, nothing remains.

use serde_json::{Value, json};
use uuid::Uuid;

use super::store::{self, NewMealPlanRow};
use super::{IMAGES_KIND, STAGE_SAVING};
use sqlx::PgConnection;

use crate::jobs::save::{PlanRows, save_completing};
use crate::jobs::weekly_plan::save::Source;
use crate::plan::Targets;
use crate::plan::meal_plan::MealPlan;
use crate::queue::store::{self as queue_store, NewJob, StoreError};
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
    ctx.record_source(new.source.as_str());
    ctx.progress(STAGE_SAVING).await?;
    let _turn = ctx.db_turn().await;
    let rows = MealRows {
        row: NewMealPlanRow {
            user_id: ctx.job.user_id,
            job_id: ctx.job.id,
            plan: new.plan,
            targets: new.targets,
            source: new.source.as_str(),
            model: new.model,
            images_pending: new.with_images,
            swapped_from: new.swapped_from,
        },
        trace_context: ctx.job.trace_context.as_deref(),
    };
    save_completing(ctx, &rows, new.usage.as_ref()).await
}

/// The meal plan and, when photos will be looked for, its images job.
struct MealRows<'a> {
    row: NewMealPlanRow<'a>,
    trace_context: Option<&'a str>,
}

impl PlanRows for MealRows<'_> {
    const WHAT: &'static str = "saving the meal plan";
    const RETRY_LABEL: &'static str = "save_meal_plan";

    fn source(&self) -> &'static str {
        self.row.source
    }

    async fn insert(&self, tx: &mut PgConnection) -> Result<Uuid, StoreError> {
        let user_id = self.row.user_id;
        store::lock_user(tx, user_id).await?;
        let id = store::insert_active(tx, &self.row).await?;
        if self.row.images_pending {
            // One images job per user finds the photos of all their pending
            // plans; an active one takes this plan too (see `images`).
            let job = NewJob {
                user_id,
                kind: IMAGES_KIND.to_owned(),
                profile_snapshot: json!({ "meal_plan_id": id }),
                max_retries: 5,
                priority: -10,
                trace_context: self.trace_context.map(str::to_owned),
                run_after: None,
            };
            let images_job = queue_store::create_job(&mut *tx, &job).await?;
            store::set_images_job(tx, id, images_job.job_id).await?;
        }
        Ok(id)
    }
}
