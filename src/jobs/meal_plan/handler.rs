//! The handler of `meal_plan` jobs.

use std::sync::Arc;

use uuid::Uuid;

use super::parallel;
use super::save::{NewMealPlan, save_meal_plan};
use super::{STAGE_MEALS, STAGE_OFFLINE, STAGE_TARGETS, STAGE_VALIDATING};
use crate::error_code::ErrorCode;
use crate::jobs::weekly_plan::Layout;
use crate::jobs::weekly_plan::generate::{
    Gate, UsageTotals, call_text, invalid_output, record_violations,
};
use crate::jobs::weekly_plan::handler::fails_for_good;
use crate::jobs::weekly_plan::save::Source;
use crate::jobs::weekly_plan::store as weekly_store;
use crate::llm::LlmClient;
use crate::plan::meal_plan::prompt::{meal_plan_prompt, meal_repair_prompt};
use crate::plan::meal_plan::{self, MealPlan, fix, parse_meal_plan};
use crate::plan::{Profile, Targets, parse_profile, targets};
use crate::queue::{BoxFuture, Done, JobContext, JobError, JobHandler};

/// Makes meal plans; without an LLM client, every one offline.
#[derive(Clone)]
pub struct MealPlanHandler {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) llm: Option<LlmClient>,
    pub(crate) fallback_to_offline: bool,
    /// Photos are looked for after the save (an image source is configured).
    pub(crate) with_images: bool,
    pub(crate) gate: Gate,
    pub(crate) layout: Layout,
}

/// Meal plans solved and saved at once.
const PLACES: usize = 8;

impl MealPlanHandler {
    pub fn new(llm: Option<LlmClient>, fallback_to_offline: bool, with_images: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                llm,
                fallback_to_offline,
                with_images,
                gate: Gate::new(PLACES),
                layout: Layout::default(),
            }),
        }
    }
}

impl MealPlanHandler {
    /// Asks for the days in `layout` (see the weekly plan's).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configured before it is shared")
            .layout = layout;
        self
    }

    pub(crate) fn inner(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

impl JobHandler for MealPlanHandler {
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.handle(ctx).await })
    }
}

/// A meal plan ready to save.
pub(crate) struct Made {
    pub plan: MealPlan,
    pub source: Source,
    pub model: Option<String>,
    pub usage: Option<serde_json::Value>,
}

impl Inner {
    async fn handle(&self, ctx: JobContext) -> Result<Done, JobError> {
        let profile = parse_profile(&ctx.job.profile_snapshot)
            .map_err(|e| JobError::new(ErrorCode::InvalidProfile, e.to_string()))?;
        ctx.progress(STAGE_TARGETS).await?;
        let targets = targets_for(&ctx, &profile).await?;
        let made = self.make(&ctx, &profile, &targets).await?;
        let _place = self.gate.enter().await;
        let new = NewMealPlan {
            plan: &made.plan,
            targets: &targets,
            source: made.source,
            model: made.model.as_deref(),
            usage: made.usage,
            with_images: self.with_images,
            swapped_from: None,
        };
        Box::pin(save_meal_plan(&ctx, new)).await?;
        Ok(Done::CompletedInTransaction)
    }

    /// The week from the LLM, or offline (no key, or the LLM failed for good
    /// with the fallback on).
    async fn make(&self, ctx: &JobContext, p: &Profile, t: &Targets) -> Result<Made, JobError> {
        let Some(client) = &self.llm else {
            return offline(ctx, &self.gate, p, t, None).await;
        };
        let generated = match self.layout {
            Layout::Parallel => Box::pin(parallel::with_llm(ctx, &self.gate, client, p, t)).await,
            Layout::Sequential => Box::pin(with_llm(ctx, &self.gate, client, p, t)).await,
        };
        match generated {
            Ok(made) => Ok(made),
            Err(err) if self.fallback_to_offline && fails_for_good(ctx, &err) => {
                tracing::warn!(error_code = %err.code, detail = %err.detail, "LLM failed for good; using the offline meal planner");
                offline(ctx, &self.gate, p, t, err.llm_usage).await
            }
            Err(err) => Err(err),
        }
    }
}

/// The active weekly plan's targets when the user has one (the two plans
/// then agree on every number), else computed from the profile.
pub(crate) async fn targets_for(ctx: &JobContext, p: &Profile) -> Result<Targets, JobError> {
    let _turn = ctx.db_turn().await;
    let weekly = ctx
        .retry_db("read_weekly_targets", || {
            weekly_store::active_targets(&ctx.db, ctx.job.user_id)
        })
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, format!("reading the weekly plan: {e}")))?;
    Ok(weekly.map_or_else(|| targets(p), |t| t.0))
}

async fn offline(
    ctx: &JobContext,
    gate: &Gate,
    p: &Profile,
    t: &Targets,
    usage: Option<serde_json::Value>,
) -> Result<Made, JobError> {
    ctx.progress(STAGE_OFFLINE).await?;
    let plan = {
        let _place = gate.enter().await;
        meal_plan::offline::generate(p, t)
    };
    ctx.progress(STAGE_VALIDATING).await?;
    let violations = meal_plan::validate(&plan, p, t);
    if !violations.is_empty() {
        let detail: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        return Err(JobError::new(
            ErrorCode::ValidationFailed,
            format!(
                "offline meal plan: {}; {}",
                crate::plan::foods::what_is_left(p),
                detail.join("; ")
            ),
        ));
    }
    Ok(Made {
        plan,
        source: Source::Offline,
        model: None,
        usage,
    })
}

/// One call for the week, then the fixer and the validator; one repair round.
#[tracing::instrument(name = "meal_plan.generate", skip_all)]
async fn with_llm(
    ctx: &JobContext,
    gate: &Gate,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
) -> Result<Made, JobError> {
    let mut usage = UsageTotals::default();
    let user_tag = user_tag(ctx.job.user_id);
    ctx.progress(STAGE_MEALS).await?;
    let (text, model) = call_text(client, meal_plan_prompt(p, t), &user_tag, &mut usage).await?;
    ctx.progress(STAGE_VALIDATING).await?;
    // Answers wait for the gate as text; only those inside are parsed.
    let (plan, violations) = {
        let _place = gate.enter().await;
        let sent = parse_text(&text).map_err(|e| invalid_output("meals", &e, &usage))?;
        drop(text);
        let plan = fix(sent, p, t);
        let v = meal_plan::validate(&plan, p, t);
        (plan, v)
    };
    Box::pin(repair_week(
        client,
        gate,
        p,
        t,
        &user_tag,
        (plan, violations),
        model,
        usage,
    ))
    .await
}

/// The fixed week as checked: saved as it is when it broke no rule, else
/// one repair round of the whole week.
#[allow(clippy::too_many_arguments)]
pub(super) async fn repair_week(
    client: &LlmClient,
    gate: &Gate,
    p: &Profile,
    t: &Targets,
    user_tag: &str,
    (plan, violations): (MealPlan, Vec<crate::plan::Violation>),
    model: String,
    mut usage: UsageTotals,
) -> Result<Made, JobError> {
    if violations.is_empty() {
        return Ok(made(plan, model, &usage));
    }
    record_violations(&violations);
    tracing::info!(
        violations = violations.len(),
        "meal plan breaks rules; one repair round"
    );
    let prompt = meal_repair_prompt(p, t, &plan, &violations);
    drop(plan);
    let (text, _) = call_text(client, prompt, user_tag, &mut usage).await?;
    let _place = gate.enter().await;
    let sent = parse_text(&text).map_err(|e| invalid_output("repair", &e, &usage))?;
    let plan = fix(sent, p, t);
    let violations = meal_plan::validate(&plan, p, t);
    if violations.is_empty() {
        return Ok(made(plan, model, &usage));
    }
    record_violations(&violations);
    let detail: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    Err(JobError::new(
        ErrorCode::ValidationFailed,
        format!("meal plan after repair: {}", detail.join("; ")),
    )
    .with_usage(Some(usage.to_json())))
}

pub(super) fn parse_text(text: &str) -> Result<MealPlan, serde_json::Error> {
    parse_meal_plan(serde_json::from_str(text)?)
}

pub(super) fn made(plan: MealPlan, model: String, usage: &UsageTotals) -> Made {
    Made {
        plan,
        source: Source::Llm,
        model: Some(model),
        usage: Some(usage.to_json()),
    }
}

/// DeepSeek's user_id isolates end users; a name-based hash keeps the real
/// id out of the provider's logs.
pub(crate) fn user_tag(user: Uuid) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, user.as_bytes())
        .simple()
        .to_string()
}
