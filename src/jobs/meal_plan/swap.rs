//! The `meal_swap` job: one meal of a saved meal plan replaced by another
//! dish of the same slot (LLM, or the recipe library), its day solved again
//! so the day stays on target, saved as the next version. The other meals
//! keep their photos; the new dish's photo follows from the images job.

use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;

use super::handler::{Inner as PlanInner, user_tag};
use super::save::{NewMealPlan, save_meal_plan};
use super::{STAGE_MEALS, STAGE_VALIDATING, store};
use crate::error_code::ErrorCode;
use crate::jobs::weekly_plan::generate::{UsageTotals, call};
use crate::jobs::weekly_plan::save::Source;
use crate::plan::foods::{FoodFilter, catalogue};
use crate::plan::meal_plan::offline::alternative;
use crate::plan::meal_plan::prompt::swap_prompt;
use crate::plan::meal_plan::{self, MealPlan};
use crate::plan::menu::{cook_day, day_targets};
use crate::plan::model::{Meal, MealImage};
use crate::plan::{Profile, Targets, parse_profile};
use crate::queue::{BoxFuture, Done, JobContext, JobError, JobHandler};

/// What a swap job's snapshot names: the plan, the day (1-7) and the meal's
/// index in that day (0-based).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
pub struct SwapRequest {
    pub meal_plan_id: Uuid,
    pub day: u8,
    pub index: usize,
}

#[derive(Clone)]
pub struct MealSwapHandler {
    inner: Arc<PlanInner>,
}

impl MealSwapHandler {
    pub fn new(plans: &super::MealPlanHandler) -> Self {
        Self {
            inner: plans.inner(),
        }
    }
}

impl JobHandler for MealSwapHandler {
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { swap(&inner, ctx).await })
    }
}

fn refuse(detail: String) -> JobError {
    JobError::new(ErrorCode::InvalidProfile, detail)
}

async fn swap(inner: &PlanInner, ctx: JobContext) -> Result<Done, JobError> {
    let req: SwapRequest = serde_json::from_value(ctx.job.profile_snapshot.clone())
        .map_err(|e| refuse(format!("swap request: {e}")))?;
    let source = {
        let _turn = ctx.db_turn().await;
        ctx.retry_db("read_swap_source", || {
            store::swap_source(&ctx.db, req.meal_plan_id)
        })
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, e.to_string()))?
    };
    let Some(source) = source.filter(|s| s.user_id == ctx.job.user_id) else {
        return Err(refuse(format!(
            "meal_plan_id: no meal plan {} of this user",
            req.meal_plan_id
        )));
    };
    let profile = parse_profile(&source.profile_snapshot)
        .map_err(|e| JobError::new(ErrorCode::InvalidProfile, e.to_string()))?;
    let targets = source.targets.0;
    let mut plan = source.plan.0;
    let Some(old) = plan
        .days
        .iter()
        .find(|d| d.day == req.day)
        .and_then(|d| d.food.meals.get(req.index))
        .cloned()
    else {
        return Err(refuse(format!("day {} has no meal {}", req.day, req.index)));
    };
    ctx.progress(STAGE_MEALS).await?;
    let (new_meal, source_kind, model, usage) = match &inner.llm {
        Some(client) => {
            let mut usage = UsageTotals::default();
            let prompt = swap_prompt(&profile, &targets, &old, &plan.dish_names());
            let (raw, model) = call(client, prompt, &user_tag(ctx.job.user_id), &mut usage).await?;
            let meal: Meal = serde_json::from_value(unwrap_meal(raw)).map_err(|e| {
                JobError::new(
                    ErrorCode::JsonParseError,
                    format!("swap: the model's json is not a meal: {e}"),
                )
            })?;
            (meal, Source::Llm, Some(model), Some(usage.to_json()))
        }
        None => (
            alternative(&profile, &plan, &old),
            Source::Offline,
            None,
            None,
        ),
    };
    ctx.progress(STAGE_VALIDATING).await?;
    {
        let _place = inner.gate.enter().await;
        replace(&mut plan, &req, new_meal, &profile, &targets)?;
    }
    let new = NewMealPlan {
        plan: &plan,
        targets: &targets,
        source: source_kind,
        model: model.as_deref(),
        usage,
        with_images: inner.with_images,
        swapped_from: Some(req.meal_plan_id),
    };
    Box::pin(save_meal_plan(&ctx, new)).await?;
    Ok(Done::CompletedInTransaction)
}

/// `{"meal": {...}}` or the meal itself.
fn unwrap_meal(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) if m.len() == 1 && !m.contains_key("name") => {
            m.into_iter().next().map(|(_, v)| v).unwrap_or_default()
        }
        other => other,
    }
}

/// Puts the new meal in place, solves its day again and checks the plan.
fn replace(
    plan: &mut MealPlan,
    req: &SwapRequest,
    mut meal: Meal,
    p: &Profile,
    t: &Targets,
) -> Result<(), JobError> {
    let day = plan
        .days
        .iter_mut()
        .find(|d| d.day == req.day)
        .expect("the day was found above");
    meal.slot = day.food.meals[req.index].slot.clone();
    meal.image = MealImage::Missing;
    day.food.meals[req.index] = meal;
    let (cat, filter, target) = (catalogue(), FoodFilter::new(p), day_targets(t));
    cook_day(&mut day.food, cat, &filter, &target).map_err(|e| {
        JobError::new(
            ErrorCode::ValidationFailed,
            format!("swap: day {}: {e}", req.day),
        )
    })?;
    for m in &mut day.food.meals {
        m.items.clear();
    }
    plan.grocery_list =
        crate::plan::menu::grocery_list_of(plan.days.iter().flat_map(|d| &d.food.meals), cat);
    let violations = meal_plan::validate(plan, p, t);
    if violations.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    Err(JobError::new(
        ErrorCode::ValidationFailed,
        format!("swap: {}", detail.join("; ")),
    ))
}
