//! A meal plan's days written in parallel: a call per day, each day fixed,
//! checked on its own (`validate_day`) and repaired alone, then shown as
//! it lands (`jobs::days`). The week is then checked whole (seven days, a
//! dish at most twice, the grocery list), with one repair round of the
//! week as in the one-call layout, and saved atomically.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::handler::{Made, repair_week, user_tag};
use super::{STAGE_MEALS, STAGE_VALIDATING};
use crate::error_code::ErrorCode;
use crate::jobs::days::day_ready;
use crate::jobs::weekly_plan::generate::{
    Gate, UsageTotals, call_text, call_text_placed, invalid_output, record_violations,
};
use crate::llm::LlmClient;
use crate::plan::meal_plan::prompt::{meal_day_prompt, meal_day_repair_prompt};
use crate::plan::meal_plan::{self, MealDay, MealPlan, fix, fix_day, parse_meal_day};
use crate::plan::{Profile, Targets};
use crate::queue::{JobContext, JobError};

#[tracing::instrument(name = "meal_plan.generate", skip_all, fields(layout = "parallel"))]
pub(crate) async fn with_llm(
    ctx: &JobContext,
    gate: &Gate,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
) -> Result<Made, JobError> {
    let user_tag = user_tag(ctx.job.user_id);
    ctx.progress(STAGE_MEALS).await?;
    let mut writing: FuturesUnordered<_> = (1..=7u8)
        .map(|n| write_day(gate, client, p, t, &user_tag, n))
        .collect();
    let mut usage = UsageTotals::default();
    let mut days: Vec<MealDay> = Vec::with_capacity(7);
    let mut model = client.model().to_owned();
    while let Some((spent, result)) = writing.next().await {
        usage.merge(&spent);
        let (day, answered_by) = result.map_err(|e| e.with_usage(Some(usage.to_json())))?;
        model = answered_by;
        Box::pin(day_ready(ctx, day.day, &day)).await?;
        days.push(day);
    }
    ctx.progress(STAGE_VALIDATING).await?;
    let (plan, violations) = {
        let _place = gate.enter().await;
        let plan = fix(
            MealPlan {
                days,
                ..MealPlan::default()
            },
            p,
            t,
        );
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

/// One day: its call, its checks and at most one repair of it alone.
async fn write_day(
    gate: &Gate,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
    user_tag: &str,
    n: u8,
) -> (UsageTotals, Result<(MealDay, String), JobError>) {
    let mut usage = UsageTotals::default();
    let result = async {
        let stage = format!("meals of day {n}");
        let prompt = || meal_day_prompt(p, t, n);
        let (text, model) = call_text_placed(client, None, prompt, user_tag, &mut usage).await?;
        let (day, broken) = {
            let _place = gate.enter().await;
            let day = parse_day_text(&text, n).map_err(|e| invalid_output(&stage, &e, &usage))?;
            let day = fix_day(day, p, t);
            let broken = meal_plan::validate_day(&day, p, t);
            (day, broken)
        };
        if broken.is_empty() {
            return Ok((day, model));
        }
        record_violations(&broken);
        let prompt = meal_day_repair_prompt(p, t, &day, &broken);
        drop(day);
        let (text, model) = call_text(client, prompt, user_tag, &mut usage).await?;
        let _place = gate.enter().await;
        let day = parse_day_text(&text, n).map_err(|e| invalid_output(&stage, &e, &usage))?;
        let day = fix_day(day, p, t);
        let broken = meal_plan::validate_day(&day, p, t);
        if broken.is_empty() {
            return Ok((day, model));
        }
        record_violations(&broken);
        let detail: Vec<String> = broken.iter().map(|v| v.to_string()).collect();
        Err(JobError::new(
            ErrorCode::ValidationFailed,
            format!("meals of day {n} after repair: {}", detail.join("; ")),
        ))
    }
    .await;
    (usage, result)
}

fn parse_day_text(text: &str, n: u8) -> Result<MealDay, serde_json::Error> {
    parse_meal_day(serde_json::from_str(text)?, n)
}
