//! Generation with the days written in parallel: the structure call is
//! streamed, and each day's own call starts as soon as that day's outline
//! has arrived. Each day is fixed, checked on its own (`validate_day`) and
//! repaired alone when it breaks a rule; a day that passes is shown at once
//! (`jobs::days`). The week is then validated whole (seven days, the count
//! of training days, weekly volume and patterns) with one repair round of
//! the week, and saved atomically as in the sequential layout.
//!
//! A training day is two calls at once, its session and the rest of the
//! day (`DayPart`). Time to plan is the structure's last outline plus the
//! slowest of those calls, instead of the whole structure plus the whole
//! week in one answer.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::generate::{
    Gate, Generated, STAGE_DETAILS, STAGE_STRUCTURE, STAGE_VALIDATING, UsageTotals, Week,
    cached_structure, call_text_placed, check_or_repair, invalid_output, record_violations,
    remember, user_tag,
};
use crate::error_code::ErrorCode;
use crate::jobs::days::{day_ready, recorded_days};
use crate::llm::{ChatRequest, LlmClient, Message, Place};
use crate::plan::fix::fix_one_day;
use crate::plan::model::{Day, DayOutline, WeekStructure, WeeklyPlan, parse_structure};
use crate::plan::prompt::{
    DayPart, Prompt, day_prompt, day_repair_prompt, parse_day, parse_session, structure_prompt,
};
use crate::plan::stream::ArrayItems;
use crate::plan::validate::validate_day;
use crate::plan::{Profile, Targets, fix};
use crate::queue::{JobContext, JobError};

/// What a day's call brought back: its day (and whether it was repaired),
/// and what it cost either way.
type DayOutcome = (u8, UsageTotals, Result<(Day, bool), JobError>);

#[tracing::instrument(name = "plan.generate", skip_all, fields(layout = "parallel"))]
pub async fn with_llm(
    ctx: &JobContext,
    gate: &Gate,
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
    structure_cache: Option<Duration>,
) -> Result<Generated, JobError> {
    let user_tag = user_tag(ctx);
    ctx.progress(STAGE_STRUCTURE).await?;
    let (cache_key, cached) = cached_structure(ctx, client, p, t, structure_cache).await;
    let from_cache = cached.is_some();

    let (outlines, mut arrived) = mpsc::unbounded_channel::<DayOutline>();
    let structure_call = async {
        let mut usage = UsageTotals::default();
        let result = match cached {
            Some(s) => {
                for o in &s.days {
                    let _ = outlines.send(o.clone());
                }
                Ok((s, client.model().to_owned()))
            }
            // Boxed: the streamed call's state is large and lives only
            // for the structure's seconds, not for the job's whole run.
            None => {
                Box::pin(stream_structure(
                    client, p, t, &user_tag, &mut usage, outlines,
                ))
                .await
            }
        };
        (usage, result)
    };
    let mut structure_call = std::pin::pin!(structure_call);

    let mut usage = UsageTotals::default();
    let mut structure: Option<(WeekStructure, String)> = None;
    let mut known: Vec<DayOutline> = Vec::new();
    let mut writing = FuturesUnordered::new();
    // Days that passed their checks wait in `plan_job_days`, not here.
    let mut written: BTreeSet<u8> = BTreeSet::new();
    let mut repaired = false;
    // Outlines whose day has not started: a day starts once a call of it
    // has its place in flight, so that a day waiting behind the cap is an
    // outline here, not a future holding a call's state (a thousand jobs
    // with a dozen calls each queued held tens of MB that way).
    let mut waiting: VecDeque<DayOutline> = VecDeque::new();
    let job = Job {
        gate,
        client,
        p,
        t,
        user_tag: &user_tag,
    };
    let note = |o: DayOutline, known: &mut Vec<DayOutline>, waiting: &mut VecDeque<DayOutline>| {
        if !(1..=7).contains(&o.day) || known.iter().any(|k| k.day == o.day) {
            return;
        }
        known.push(o.clone());
        waiting.push_back(o);
    };
    loop {
        tokio::select! {
            (spent, result) = &mut structure_call, if structure.is_none() => {
                usage.merge(&spent);
                let (s, model) = result.map_err(|e| e.with_usage(Some(usage.to_json())))?;
                // Days the stream did not show (an answer shaped so the
                // scanner missed them) start now.
                for o in &s.days {
                    note(o.clone(), &mut known, &mut waiting);
                }
                structure = Some((s, model));
                ctx.progress(STAGE_DETAILS).await?;
            }
            Some(o) = arrived.recv() => note(o, &mut known, &mut waiting),
            place = client.place(), if !waiting.is_empty() => {
                let o = waiting.pop_front().expect("a day waits");
                // The week up to this day, as it had arrived when its
                // outline did: the same prompt whenever the place comes.
                let so_far = known.iter().filter(|k| k.day <= o.day).cloned().collect();
                writing.push(write_day(job, so_far, o, place));
            }
            Some((n, spent, result)) = writing.next(), if !writing.is_empty() => {
                usage.merge(&spent);
                let (day, was_repaired) = result.map_err(|e| e.with_usage(Some(usage.to_json())))?;
                repaired |= was_repaired;
                Box::pin(day_ready(ctx, n, &day)).await?;
                drop(day);
                written.insert(n);
            }
            else => break,
        }
    }
    let (structure, model) = structure.expect("the loop ends after the structure");
    let to_store = match (cache_key, from_cache) {
        (Some(key), false) => Some((key, structure.clone())),
        _ => None,
    };

    ctx.progress(STAGE_VALIDATING).await?;
    let place = gate.enter().await;
    let days: Vec<Day> = Box::pin(recorded_days::<Day>(ctx))
        .await?
        .into_iter()
        .filter(|(n, _)| written.contains(n))
        .map(|(_, day)| day)
        .collect();
    if days.len() != written.len() {
        return Err(JobError::new(
            ErrorCode::DbError,
            format!("{} of {} written days read back", days.len(), written.len()),
        ));
    }
    let plan = fix(
        WeeklyPlan {
            days,
            notes: Some(week_notes(&structure, p, t)),
            grocery_list: Vec::new(),
        },
        p,
        t,
    );
    let week = Week {
        plan,
        place,
        model,
        usage,
        repaired,
    };
    let done = Box::pin(check_or_repair(client, gate, p, t, &user_tag, week)).await?;
    remember(ctx, to_store, &done.model, structure_cache).await;
    Ok(done)
}

/// The week's notes: the structure's reasoning and the server's own
/// advice for the week (deload, injuries), which no day call writes.
fn week_notes(s: &WeekStructure, p: &Profile, t: &Targets) -> String {
    let advice = crate::plan::offline::plan_notes(p, t);
    match s.rationale.trim() {
        "" => advice,
        why => format!("{why} {advice}"),
    }
}

/// Stage 1 streamed: each day's outline goes to `outlines` as it arrives.
#[tracing::instrument(name = "llm.call", skip_all, fields(streamed = true))]
async fn stream_structure(
    client: &LlmClient,
    p: &Profile,
    t: &Targets,
    user_tag: &str,
    usage: &mut UsageTotals,
    outlines: mpsc::UnboundedSender<DayOutline>,
) -> Result<(WeekStructure, String), JobError> {
    let (system, user) = structure_prompt(p, t);
    let req =
        ChatRequest::new(vec![Message::system(system), Message::user(user)]).with_user_id(user_tag);
    let mut items = ArrayItems::new("days");
    let on_delta = move |delta: &str| {
        for item in items.feed(delta) {
            // A broken element is left to the whole answer's parse.
            if let Ok(o) = serde_json::from_str::<DayOutline>(&item) {
                let _ = outlines.send(o);
            }
        }
    };
    let resp = match Box::pin(client.chat_json_streaming(req, on_delta)).await {
        Ok(resp) => resp,
        Err(err) => {
            if let Some(u) = err.usage() {
                usage.add(u);
            }
            return Err(JobError::new(err.code(), err.to_string())
                .with_retry_after(err.retry_after())
                .with_usage(Some(usage.to_json())));
        }
    };
    usage.add(&resp.usage);
    let s = parse_structure(resp.json).map_err(|e| invalid_output("structure", &e, usage))?;
    Ok((s, resp.model))
}

/// What every day of a job is written with.
#[derive(Clone, Copy)]
struct Job<'a> {
    gate: &'a Gate,
    client: &'a LlmClient,
    p: &'a Profile,
    t: &'a Targets,
    user_tag: &'a str,
}

/// One day: its calls (a training day's session and the rest of it at
/// once), its checks, and at most one repair of the parts that broke a rule.
async fn write_day(
    job: Job<'_>,
    known: Vec<DayOutline>,
    outline: DayOutline,
    place: Place,
) -> DayOutcome {
    let Job {
        gate,
        client,
        p,
        t,
        user_tag,
    } = job;
    let n = outline.day;
    let mut usage = UsageTotals::default();
    let result = async {
        let stage = format!("day {n}");
        let parts = DayPart::of(&outline);
        let prompt = |part| day_prompt(p, t, &known, &outline, part);
        let answers =
            write_parts(client, user_tag, &mut usage, parts, &prompt, Some(place)).await?;
        let (day, broken) = {
            let _place = gate.enter().await;
            let day =
                assemble(None, &answers, n).map_err(|e| invalid_output(&stage, &e, &usage))?;
            drop(answers);
            let day = fix_one_day(day, p, t);
            let broken = validate_day(&day, p, t);
            (day, broken)
        };
        if broken.is_empty() {
            return Ok((day, false));
        }
        record_violations(&broken);
        tracing::info!(
            day = n,
            violations = broken.len(),
            "day breaks rules; repairing it alone"
        );
        let again = DayPart::to_repair(parts, &broken);
        let rewrite: Vec<DayPart> = again.iter().map(|(part, _)| *part).collect();
        let prompt = |part| {
            let (_, mine) = again
                .iter()
                .find(|(q, _)| *q == part)
                .expect("a part to repair");
            day_repair_prompt(p, t, &known, &day, mine, part)
        };
        let answers = write_parts(client, user_tag, &mut usage, &rewrite, &prompt, None).await?;
        let _place = gate.enter().await;
        let day =
            assemble(Some(day), &answers, n).map_err(|e| invalid_output(&stage, &e, &usage))?;
        let day = fix_one_day(day, p, t);
        let broken = validate_day(&day, p, t);
        if broken.is_empty() {
            return Ok((day, true));
        }
        record_violations(&broken);
        let detail: Vec<String> = broken.iter().map(|v| v.to_string()).collect();
        Err(JobError::new(
            ErrorCode::ValidationFailed,
            format!("day {n} after repair: {}", detail.join("; ")),
        ))
    }
    .await;
    (n, usage, result)
}

/// The calls of a day's parts, all in flight at once (the first in
/// `first` when the caller holds a place); the first failure ends the day
/// (its other calls are dropped).
async fn write_parts<F>(
    client: &LlmClient,
    user_tag: &str,
    usage: &mut UsageTotals,
    parts: &[DayPart],
    prompt: &F,
    mut first: Option<Place>,
) -> Result<Vec<(DayPart, String)>, JobError>
where
    F: Fn(DayPart) -> Prompt + Sync,
{
    let mut calls: FuturesUnordered<_> = parts
        .iter()
        .map(|&part| {
            let place = first.take();
            async move {
                let mut spent = UsageTotals::default();
                let result =
                    call_text_placed(client, place, || prompt(part), user_tag, &mut spent).await;
                (part, spent, result)
            }
        })
        .collect();
    let mut answers = Vec::with_capacity(parts.len());
    while let Some((part, spent, result)) = calls.next().await {
        usage.merge(&spent);
        let (text, _) = result?;
        answers.push((part, text));
    }
    Ok(answers)
}

/// A day from its parts' answers, over `base` when a repair rewrites only
/// some: a session answer is the workout, a meals answer the rest of the
/// day, a whole answer all of it.
fn assemble(
    base: Option<Day>,
    answers: &[(DayPart, String)],
    n: u8,
) -> Result<Day, serde_json::Error> {
    let mut day = base;
    let mut session = None;
    for (part, text) in answers {
        let value = serde_json::from_str(text)?;
        match part {
            DayPart::Whole => day = Some(parse_day(value, n)?),
            DayPart::Session => session = Some(parse_session(value)?),
            DayPart::Meals => {
                let mut meals = parse_day(value, n)?;
                meals.is_training_day = true;
                meals.workout = day.take().and_then(|d| d.workout);
                day = Some(meals);
            }
        }
    }
    let mut day = day.ok_or_else(|| {
        <serde_json::Error as serde::de::Error>::custom("a day needs its meals or the whole day")
    })?;
    if let Some(workout) = session {
        day.is_training_day = true;
        day.workout = Some(workout);
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(parts: &[(DayPart, serde_json::Value)]) -> Vec<(DayPart, String)> {
        parts.iter().map(|(p, v)| (*p, v.to_string())).collect()
    }

    fn workout(focus: &str) -> serde_json::Value {
        json!({"focus": focus, "duration_minutes": 45,
               "exercises": [{"name": "Squat", "sets": 3, "reps": "8"}]})
    }

    fn meals(name: &str) -> serde_json::Value {
        json!({"day": 9, "name": name, "is_training_day": false, "reason": "r",
               "nutrition": {"meals": [{"name": "Oats", "slot": "breakfast", "ingredients": []}]}})
    }

    #[test]
    fn a_fixed_day_read_back_from_its_recorded_json_is_the_same_day() {
        let raw = include_str!("../../../examples/profiles/muscle-gain-vegetarian-gym.json");
        let p = crate::plan::parse_profile(&serde_json::from_str(raw).unwrap()).unwrap();
        let t = crate::plan::targets(&p);
        let plan = crate::plan::offline::generate(&p, &t);
        for day in &plan.days {
            let recorded = serde_json::to_value(day).unwrap();
            let back: Day = serde_json::from_value(recorded).unwrap();
            assert_eq!(&back, day, "day {}", day.day);
        }
    }

    #[test]
    fn a_training_day_is_its_session_and_its_meals_in_either_order() {
        for order in [[0, 1], [1, 0]] {
            let parts = [
                (DayPart::Session, workout("Legs")),
                (DayPart::Meals, meals("Leg day")),
            ];
            let parts = answers(&[parts[order[0]].clone(), parts[order[1]].clone()]);
            let day = assemble(None, &parts, 3).unwrap();
            assert_eq!((day.day, day.name.as_str()), (3, "Leg day"));
            assert!(day.is_training_day, "a session makes it a training day");
            assert_eq!(day.workout.unwrap().focus, "Legs");
            assert_eq!(day.nutrition.meals.len(), 1);
        }
    }

    #[test]
    fn a_repair_of_one_part_keeps_the_other() {
        let first = assemble(
            None,
            &answers(&[
                (DayPart::Session, workout("Legs")),
                (DayPart::Meals, meals("Leg day")),
            ]),
            2,
        )
        .unwrap();
        let session_again = assemble(
            Some(first.clone()),
            &answers(&[(DayPart::Session, workout("Pull"))]),
            2,
        )
        .unwrap();
        assert_eq!(session_again.workout.as_ref().unwrap().focus, "Pull");
        assert_eq!(session_again.name, "Leg day");
        let meals_again =
            assemble(Some(first), &answers(&[(DayPart::Meals, meals("Fed"))]), 2).unwrap();
        assert_eq!(meals_again.workout.as_ref().unwrap().focus, "Legs");
        assert_eq!(meals_again.name, "Fed");
        assert!(assemble(None, &answers(&[(DayPart::Session, workout("x"))]), 2).is_err());
        assert!(assemble(None, &[(DayPart::Meals, "{".to_owned())], 2).is_err());
    }
}
