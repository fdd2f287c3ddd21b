//! The handler of `weekly_base_plan` jobs: profile -> targets -> plan (LLM
//! or offline) -> fixer -> validator -> saved with the job's completion.

use std::sync::Arc;

use super::generate::{self, STAGE_VALIDATING};
use super::parallel;
use super::save::{self, NewPlan, STAGE_SAVING, Source};
use crate::error_code::ErrorCode;
use crate::llm::LlmClient;
use crate::plan::validate::validate;
use crate::plan::{Profile, Targets, generate_offline, parse_profile, targets};
use crate::queue::{BoxFuture, Done, JobContext, JobError, JobHandler};

pub const STAGE_OFFLINE: &str = "generating_offline";

/// Makes weekly base plans. Without an LLM client every plan is made by the
/// offline generator.
#[derive(Clone)]
pub struct PlanHandler {
    inner: Arc<Inner>,
}

struct Inner {
    llm: Option<LlmClient>,
    fallback_to_offline: bool,
    gate: generate::Gate,
    /// How long a week's structure is reused; None: never.
    structure_cache: Option<std::time::Duration>,
    layout: Layout,
}

/// How stage 2 is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Each day its own call, in parallel, as the structure streams in.
    #[default]
    Parallel,
    /// The whole week in one call after the whole structure.
    Sequential,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parallel" => Ok(Layout::Parallel),
            "sequential" => Ok(Layout::Sequential),
            other => Err(format!("expected parallel or sequential, got {other:?}")),
        }
    }
}

/// Plans solved and saved at once (the pool's connections are the other bound).
const PLACES: usize = 8;

impl PlanHandler {
    pub fn new(llm: Option<LlmClient>, fallback_to_offline: bool) -> Self {
        // Every rule's series exists from the start (at 0).
        for rule in crate::plan::validate::Rule::ALL {
            metrics::counter!(crate::telemetry::metrics::VALIDATION_FAILURES, "rule" => rule.as_str()).absolute(0);
        }
        Self {
            inner: Arc::new(Inner {
                llm,
                fallback_to_offline,
                gate: generate::Gate::new(PLACES),
                structure_cache: None,
                layout: Layout::default(),
            }),
        }
    }

    /// Reuses week structures for `ttl` (see `structure_cache`); zero: never.
    pub fn with_structure_cache(mut self, ttl: std::time::Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configured before it is shared")
            .structure_cache = (!ttl.is_zero()).then_some(ttl);
        self
    }
}

impl PlanHandler {
    /// Asks for stage 2 in `layout`.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("configured before it is shared")
            .layout = layout;
        self
    }
}

impl JobHandler for PlanHandler {
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.handle(ctx).await })
    }
}

impl Inner {
    async fn handle(&self, ctx: JobContext) -> Result<Done, JobError> {
        let profile = parse_profile(&ctx.job.profile_snapshot)
            .map_err(|e| JobError::new(ErrorCode::InvalidProfile, e.to_string()))?;
        let targets = targets(&profile);
        let Some(client) = &self.llm else {
            return offline(&ctx, &self.gate, &profile, &targets, None).await;
        };
        let (gate, cache) = (&self.gate, self.structure_cache);
        let generated = match self.layout {
            Layout::Parallel => {
                Box::pin(parallel::with_llm(
                    &ctx, gate, client, &profile, &targets, cache,
                ))
                .await
            }
            Layout::Sequential => {
                Box::pin(generate::with_llm(
                    &ctx, gate, client, &profile, &targets, cache,
                ))
                .await
            }
        };
        match generated {
            Ok(g) => {
                ctx.progress(STAGE_SAVING).await?;
                let new = NewPlan {
                    plan: &g.plan,
                    targets: &targets,
                    source: Source::Llm,
                    model: Some(&g.model),
                    usage: Some(g.usage.to_json()),
                };
                let _turn = ctx.db_turn().await;
                Box::pin(save::save_weekly_plan(&ctx, new)).await?;
                Ok(Done::CompletedInTransaction)
            }
            Err(err) if self.fallback_to_offline && fails_for_good(&ctx, &err) => {
                tracing::warn!(error_code = %err.code, detail = %err.detail, "LLM failed for good; using the offline generator");
                offline(&ctx, &self.gate, &profile, &targets, err.llm_usage).await
            }
            Err(err) => Err(err),
        }
    }
}

/// Whether this failure would end the job (no retry left or not retryable).
/// A 429 first spends deferrals, then retries: it ends the job only when
/// both are used up, and then the offline fallback is what it is for.
pub(crate) fn fails_for_good(ctx: &JobContext, err: &JobError) -> bool {
    let retries_spent = ctx.job.retry_count >= ctx.job.max_retries;
    match err.code {
        ErrorCode::WorkerLost => false,
        ErrorCode::AiRateLimit => {
            retries_spent && ctx.job.rate_limit_deferrals >= ctx.max_rate_limit_deferrals
        }
        _ => !err.retryable() || retries_spent,
    }
}

async fn offline(
    ctx: &JobContext,
    gate: &generate::Gate,
    profile: &Profile,
    targets: &Targets,
    usage: Option<serde_json::Value>,
) -> Result<Done, JobError> {
    ctx.progress(STAGE_OFFLINE).await?;
    let _place = gate.enter().await;
    let plan = generate_offline(profile, targets);
    ctx.progress(STAGE_VALIDATING).await?;
    let violations = validate(&plan, profile, targets);
    if !violations.is_empty() {
        // The offline planner cannot satisfy this profile (e.g. nearly every
        // exercise avoided): say which rules, do not save a bad plan.
        let detail: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
        return Err(JobError::new(
            ErrorCode::ValidationFailed,
            format!(
                "offline plan: {}; {}",
                crate::plan::foods::what_is_left(profile),
                detail.join("; ")
            ),
        ));
    }
    ctx.progress(STAGE_SAVING).await?;
    let new = NewPlan {
        plan: &plan,
        targets,
        source: Source::Offline,
        model: None,
        usage,
    };
    let _turn = ctx.db_turn().await;
    Box::pin(save::save_weekly_plan(ctx, new)).await?;
    Ok(Done::CompletedInTransaction)
}
