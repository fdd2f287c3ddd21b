//! Generation with the LLM in two stages, as the system users run today
//! does: stage 1 the week's structure, stage 2 the details; then the fixer,
//! the validator and at most one repair round.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use super::structure_cache;

use crate::error_code::ErrorCode;
use crate::llm::{ChatRequest, ChatResponse, LlmClient, LlmError, Message, Place, Usage};
use crate::plan::model::{WeekStructure, WeeklyPlan, parse_plan, parse_structure};
use crate::plan::prompt::{Prompt, details_prompt, repair_prompt, structure_prompt};
use crate::plan::validate::{Violation, validate};
use crate::plan::{Profile, Targets, fix};
use crate::queue::{JobContext, JobError};

/// Progress stages shown on the job row (and to users).
pub const STAGE_STRUCTURE: &str = "generating_structure";
pub const STAGE_DETAILS: &str = "generating_details";
pub const STAGE_VALIDATING: &str = "validating";

/// A plan the LLM made that passed the validator.
#[derive(Debug)]
pub struct Generated {
    pub plan: WeeklyPlan,
    /// A place among the plans being solved and saved (see `Gate`): held
    /// until the plan is saved.
    pub place: tokio::sync::OwnedSemaphorePermit,
    pub model: String,
    pub usage: UsageTotals,
    /// Whether the repair round was needed.
    pub repaired: bool,
}

/// Token usage summed over the calls of one attempt.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UsageTotals {
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_hit_tokens: u64,
}

impl UsageTotals {
    pub(crate) fn merge(&mut self, other: &UsageTotals) {
        self.calls += other.calls;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cache_hit_tokens += other.cache_hit_tokens;
    }

    pub(super) fn add(&mut self, u: &Usage) {
        self.calls += 1;
        self.prompt_tokens += u64::from(u.prompt_tokens);
        self.completion_tokens += u64::from(u.completion_tokens);
        self.cache_hit_tokens += u64::from(u.cache_hit_tokens.unwrap_or(0));
    }
    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

/// Runs both stages, the fixer, the validator and the repair round.
#[tracing::instrument(name = "plan.generate", skip_all)]
pub async fn with_llm(
    ctx: &JobContext,
    gate: &Gate,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
    structure_cache: Option<Duration>,
) -> Result<Generated, JobError> {
    let mut usage = UsageTotals::default();
    let user_tag = user_tag(ctx);

    ctx.progress(STAGE_STRUCTURE).await?;
    let (cache_key, cached) = cached_structure(ctx, client, p, t, structure_cache).await;
    let from_cache = cached.is_some();
    let (structure, model) = match cached {
        Some(s) => (s, client.model().to_owned()),
        None => {
            let (raw, model) = call(client, structure_prompt(p, t), &user_tag, &mut usage).await?;
            let s = parse_structure(raw).map_err(|e| invalid_output("structure", &e, &usage))?;
            (s, model)
        }
    };
    // Remembered only once the week passes the validator.
    let to_store = match (&cache_key, from_cache) {
        (Some(key), false) => Some((key.clone(), structure.clone())),
        _ => None,
    };

    ctx.progress(STAGE_DETAILS).await?;
    let (text, _) = call_text(
        client,
        details_prompt(p, t, &structure),
        &user_tag,
        &mut usage,
    )
    .await?;
    drop(structure);

    ctx.progress(STAGE_VALIDATING).await?;
    // A thousand answers may land together: they wait for the gate as the
    // model's text (kilobytes), and only those inside are parsed (a parsed
    // week is several times its text).
    let place = gate.enter().await;
    let plan = parse_plan_text(&text).map_err(|e| invalid_output("details", &e, &usage))?;
    drop(text);
    let plan = fix(plan, p, t);
    let week = Week {
        plan,
        place,
        model,
        usage,
        repaired: false,
    };
    let done = Box::pin(check_or_repair(client, gate, p, t, &user_tag, week)).await?;
    remember(ctx, to_store, &done.model, structure_cache).await;
    Ok(done)
}

/// A fixed week and what it cost so far.
pub(super) struct Week {
    pub plan: WeeklyPlan,
    pub place: tokio::sync::OwnedSemaphorePermit,
    pub model: String,
    pub usage: UsageTotals,
    /// Whether a repair was already needed (of a day).
    pub repaired: bool,
}

/// The validator on the fixed week, and one repair round of the whole week
/// when it breaks a rule.
pub(super) async fn check_or_repair(
    client: &LlmClient,
    gate: &Gate,
    p: &Profile,
    t: &Targets,
    user_tag: &str,
    week: Week,
) -> Result<Generated, JobError> {
    let Week {
        plan,
        place,
        model,
        mut usage,
        repaired,
    } = week;
    let violations = validate(&plan, p, t);
    if violations.is_empty() {
        return Ok(Generated {
            plan,
            place,
            model,
            usage,
            repaired,
        });
    }
    record_violations(&violations);
    tracing::info!(
        violations = violations.len(),
        "plan breaks rules; one repair round"
    );
    let prompt = repair_prompt(p, t, &plan, &violations);
    drop(plan);
    drop(place);
    let (text, _) = call_text(client, prompt, user_tag, &mut usage).await?;
    let place = gate.enter().await;
    self::repaired(&text, p, t, model, usage, place)
}

/// DeepSeek's user_id isolates end users; a name-based hash keeps the
/// real id out of the provider's logs.
pub(super) fn user_tag(ctx: &JobContext) -> String {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, ctx.job.user_id.as_bytes())
        .simple()
        .to_string()
}

/// The cache key (when the cache is on) and the cached structure, if any.
pub(super) async fn cached_structure(
    ctx: &JobContext,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
    ttl: Option<Duration>,
) -> (Option<String>, Option<WeekStructure>) {
    let key = ttl.map(|_| structure_cache::key(p, client.model()));
    let cached = match &key {
        // A cache that cannot be read costs a call, never the job.
        Some(key) => structure_cache::get(&ctx.db, key, t.kcal, t.protein_g)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "structure cache unreadable; asking the model");
                None
            }),
        None => None,
    };
    (key, cached)
}

/// Stores a structure whose week passed; a failure costs a later call only.
pub(super) async fn remember(
    ctx: &JobContext,
    entry: Option<(String, WeekStructure)>,
    model: &str,
    ttl: Option<Duration>,
) {
    let (Some((key, structure)), Some(ttl)) = (entry, ttl) else {
        return;
    };
    if let Err(e) = structure_cache::put(&ctx.db, &key, model, &structure, ttl).await {
        tracing::warn!(error = %e, "week structure not cached");
    }
}

fn parse_plan_text(text: &str) -> Result<WeeklyPlan, serde_json::Error> {
    parse_plan(serde_json::from_str(text)?)
}

/// Bounds how many plans are being solved and saved at once. A thousand
/// answers can land together; a solved plan is several times the size of
/// the answer, and without a bound every one of them would wait for its
/// turn at the database fully solved.
#[derive(Clone)]
pub struct Gate(std::sync::Arc<tokio::sync::Semaphore>);

impl Gate {
    pub fn new(places: usize) -> Self {
        Gate(std::sync::Arc::new(tokio::sync::Semaphore::new(
            places.max(1),
        )))
    }

    pub async fn enter(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.0
            .clone()
            .acquire_owned()
            .await
            .expect("the gate is never closed")
    }
}

/// The repair round's answer, fixed and checked: the plan, or the rules it
/// still breaks.
fn repaired(
    text: &str,
    p: &Profile,
    t: &Targets,
    model: String,
    usage: UsageTotals,
    place: tokio::sync::OwnedSemaphorePermit,
) -> Result<Generated, JobError> {
    let plan = fix(
        parse_plan_text(text).map_err(|e| invalid_output("repair", &e, &usage))?,
        p,
        t,
    );
    let violations = validate(&plan, p, t);
    if violations.is_empty() {
        return Ok(Generated {
            plan,
            place,
            model,
            usage,
            repaired: true,
        });
    }
    record_violations(&violations);
    let detail: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    Err(JobError::new(
        ErrorCode::ValidationFailed,
        format!("after repair: {}", detail.join("; ")),
    )
    .with_usage(Some(usage.to_json())))
}

#[tracing::instrument(name = "llm.call", skip_all)]
pub(crate) async fn call(
    client: &LlmClient,
    prompt: Prompt,
    user_tag: &str,
    usage: &mut UsageTotals,
) -> Result<(Value, String), JobError> {
    let resp = exchange(client, None, move || prompt, user_tag, usage).await?;
    Ok((resp.json, resp.model))
}

/// `call`, keeping the answer's JSON text instead of its parsed value.
#[tracing::instrument(name = "llm.call", skip_all)]
pub(crate) async fn call_text(
    client: &LlmClient,
    prompt: Prompt,
    user_tag: &str,
    usage: &mut UsageTotals,
) -> Result<(String, String), JobError> {
    let resp = exchange(client, None, move || prompt, user_tag, usage).await?;
    Ok((resp.json_text().to_owned(), resp.model))
}

/// `call_text` with the prompt made once the call has its place in flight
/// (see `LlmClient::place`), in `place` when the caller already holds one.
#[tracing::instrument(name = "llm.call", skip_all)]
pub(crate) async fn call_text_placed<P>(
    client: &LlmClient,
    place: Option<Place>,
    prompt: P,
    user_tag: &str,
    usage: &mut UsageTotals,
) -> Result<(String, String), JobError>
where
    P: FnOnce() -> Prompt + Send,
{
    let resp = exchange(client, place, prompt, user_tag, usage).await?;
    Ok((resp.json_text().to_owned(), resp.model))
}

/// One JSON-mode call, its usage added to the attempt's. The prompt is
/// made once the call has its place in flight and moved into the request
/// (a call waits for seconds to minutes, and a thousand waiting jobs must
/// not each keep a copy); the call's future is boxed only then, so that a
/// waiting call is a few bytes and the job's own future stays small.
async fn exchange<P>(
    client: &LlmClient,
    place: Option<Place>,
    prompt: P,
    user_tag: &str,
    usage: &mut UsageTotals,
) -> Result<ChatResponse, JobError>
where
    P: FnOnce() -> Prompt + Send,
{
    let place = match place {
        Some(place) => place,
        None => client.place().await,
    };
    let (system, user) = prompt();
    let req =
        ChatRequest::new(vec![Message::system(system), Message::user(user)]).with_user_id(user_tag);
    match Box::pin(client.chat_json_in(place, req)).await {
        Ok(resp) => {
            usage.add(&resp.usage);
            Ok(resp)
        }
        Err(err) => {
            if let Some(u) = err.usage() {
                usage.add(u);
            }
            Err(llm_error(&err, usage))
        }
    }
}

fn llm_error(err: &LlmError, usage: &UsageTotals) -> JobError {
    JobError::new(err.code(), err.to_string())
        .with_retry_after(err.retry_after())
        .with_usage(Some(usage.to_json()))
}

pub(crate) fn invalid_output(
    stage: &str,
    err: &serde_json::Error,
    usage: &UsageTotals,
) -> JobError {
    JobError::new(
        ErrorCode::JsonParseError,
        format!("{stage}: the model's json is not a plan: {err}"),
    )
    .with_usage(Some(usage.to_json()))
}

pub(crate) fn record_violations(violations: &[Violation]) {
    for v in violations {
        metrics::counter!(crate::telemetry::metrics::VALIDATION_FAILURES, "rule" => v.rule.as_str()).increment(1);
    }
}
