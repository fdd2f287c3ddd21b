//! Stage 2 one day per call, for days generated in parallel. A day's
//! prompt is the person's part (the same for the seven calls of a job, so
//! the provider's cache serves it after the first) followed by what is the
//! day's own: the outlines of the week known so far, the day's outline and
//! the share of the week's training rules its session carries.
//!
//! A training day is written by two calls at once (`DayPart`): its session
//! and the rest of the day. The session alone is most of a day's tokens,
//! and the plan is ready when its longest call is.

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Prompt, compact, details_rules, exclusions_section, person_section, supplement_section,
    system_for, tag_json, tags, training_section,
};
use crate::plan::model::{Day, DayOutline, WeeklyPlan, Workout, weekday_name};
use crate::plan::nutrition::Targets;
use crate::plan::profile::Profile;
use crate::plan::training::{required_patterns, training_targets};
use crate::plan::validate::{Rule, Violation};

/// The tag that carries the day a call is for (the mock LLM reads it).
pub const DAY_TAG: &str = "day_json";

/// What one session must carry of the week's training rules. Days are
/// written apart, so the week's patterns are dealt out over its sessions
/// and each is told its share of the weekly volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionBrief {
    /// 1-based number of the session in the week.
    pub session: usize,
    pub sessions: usize,
    pub patterns: Vec<String>,
    pub sets_min: u32,
    pub sets_max: u32,
}

impl SessionBrief {
    /// The brief of the training day `day`, given the outlines before it.
    pub fn for_day(p: &Profile, known: &[DayOutline], day: &DayOutline) -> Option<Self> {
        if !day.is_training_day {
            return None;
        }
        let sessions = usize::from(p.training_days.max(1));
        let before = known
            .iter()
            .filter(|o| o.is_training_day && o.day < day.day)
            .count();
        let session = before.min(sessions - 1) + 1;
        let patterns = required_patterns()
            .iter()
            .enumerate()
            .filter(|(i, _)| i % sessions == session - 1)
            .map(|(_, pat)| pat.clone())
            .collect();
        let t = training_targets(p);
        let n = sessions as u32;
        Some(SessionBrief {
            session,
            sessions,
            patterns,
            sets_min: t.weekly_sets_min.div_ceil(n),
            sets_max: (t.weekly_sets_max / n).max(t.weekly_sets_min.div_ceil(n)),
        })
    }

    fn text(&self) -> String {
        let patterns = if self.patterns.is_empty() {
            "none of its own (the other sessions cover them)".to_owned()
        } else {
            self.patterns.join(", ")
        };
        format!(
            "- Session {s} of {n} this week. Patterns this session must include (the other \
             sessions cover the rest of the week's): {patterns}.\n\
             - Its share of the weekly volume: about {lo}-{hi} hard sets for each major group it \
             trains.\n",
            s = self.session,
            n = self.sessions,
            lo = self.sets_min,
            hi = self.sets_max,
        )
    }
}

/// What of a day one call writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayPart {
    /// The whole day (a rest day, or a training day in one call).
    Whole,
    /// A training day's `workout` object alone.
    Session,
    /// A training day without its `workout`: name, meals, recovery, reason.
    Meals,
}

impl DayPart {
    /// The calls that write a day of this outline.
    pub fn of(day: &DayOutline) -> &'static [DayPart] {
        if day.is_training_day {
            &[DayPart::Session, DayPart::Meals]
        } else {
            &[DayPart::Whole]
        }
    }

    /// The part of a training day that a broken rule is in; `None` for a
    /// rule of the day as a whole (incomplete, or training on a rest day).
    pub fn owning(rule: Rule) -> Option<DayPart> {
        use Rule::*;
        match rule {
            AvoidedExercise | Equipment | WarmUp | SessionLength | Prescription | Volume
            | MovementPattern | Injury => Some(DayPart::Session),
            Diet | Allergy | KcalTarget | ProteinTarget | UnknownFood | FatTarget | CarbsTarget
            | Portion | Numbers | DishRepeated | PrepTime | Cuisine | Supplement => {
                Some(DayPart::Meals)
            }
            SevenDays | DayIncomplete | TrainingDaysMismatch => None,
        }
    }

    /// Which of a day's `parts` to write again for what it broke, and each
    /// one's share of the violations.
    pub fn to_repair(parts: &[DayPart], broken: &[Violation]) -> Vec<(DayPart, Vec<Violation>)> {
        parts
            .iter()
            .filter_map(|&part| {
                let mine: Vec<Violation> = broken
                    .iter()
                    .filter(|v| {
                        part == DayPart::Whole
                            || DayPart::owning(v.rule).is_none_or(|owner| owner == part)
                    })
                    .cloned()
                    .collect();
                (!mine.is_empty()).then_some((part, mine))
            })
            .collect()
    }

    fn answer(self) -> &'static str {
        match self {
            DayPart::Whole => {
                "Return json: one day object in the shape of a day of a stage-2 answer (not a \
                 list, no \"days\" key)."
            }
            DayPart::Session => {
                "Return json: this day's \"workout\" object only, in the shape of a day's \
                 \"workout\" in a stage-2 answer (warm_up and exercises; not the whole day). \
                 Another call writes the day's meals and recovery."
            }
            DayPart::Meals => {
                "Return json: one day object in the shape of a day of a stage-2 answer without \
                 its \"workout\" (name, is_training_day, nutrition, recovery, reason). Another \
                 call writes the session, to the outline above; fuel it and recover from it."
            }
        }
    }
}

/// One day of stage 2, or one part of it.
pub fn day_prompt(
    p: &Profile,
    t: &Targets,
    known: &[DayOutline],
    day: &DayOutline,
    part: DayPart,
) -> Prompt {
    let brief = SessionBrief::for_day(p, known, day).filter(|_| part != DayPart::Meals);
    let user = format!(
        "{}## The week decided in stage 1 (so far)\n{}\n\n\
         ## This answer: day {n} ({weekday}) only\n\
         - Its outline (follow it): {outline}\n{brief}{answer}\n{tag}",
        person_part(p, t),
        compact(&known),
        n = day.day,
        weekday = weekday_name(day.day),
        outline = compact(day),
        brief = brief.as_ref().map(SessionBrief::text).unwrap_or_default(),
        answer = part.answer(),
        tag = day_tag(day, brief.as_ref(), part),
    );
    (system_for(p.dietary_preference), user)
}

/// One day's repair (or one part's): the day as sent and what it broke.
pub fn day_repair_prompt(
    p: &Profile,
    t: &Targets,
    known: &[DayOutline],
    day: &Day,
    violations: &[Violation],
    part: DayPart,
) -> Prompt {
    let outline = DayOutline {
        is_training_day: day.is_training_day,
        ..known
            .iter()
            .find(|o| o.day == day.day)
            .cloned()
            .unwrap_or_else(|| DayOutline::of(day))
    };
    let brief = SessionBrief::for_day(p, known, &outline).filter(|_| part != DayPart::Meals);
    let list: Vec<String> = violations.iter().map(|v| format!("- {v}")).collect();
    let mut sent = day_for_model(day);
    let (what, shape) = match part {
        DayPart::Whole => ("day", "one day object in the same shape"),
        DayPart::Session => {
            sent = sent["workout"].take();
            (
                "session",
                "this day's \"workout\" object only, in the same shape",
            )
        }
        DayPart::Meals => {
            if let Some(obj) = sent.as_object_mut() {
                obj.remove("workout");
            }
            (
                "day",
                "one day object without its \"workout\", in the same shape",
            )
        }
    };
    let user = format!(
        "{}## The day below breaks these rules\n{}\n\n\
         Return the corrected {what} of day {n} as json, {shape}, changing only what is needed \
         to keep every rule.\n{brief}\
         ## The {what} to correct\n{sent}\n{tag}",
        person_part(p, t),
        list.join("\n"),
        n = day.day,
        brief = brief.as_ref().map(SessionBrief::text).unwrap_or_default(),
        sent = compact(&sent),
        tag = day_tag(&outline, brief.as_ref(), part),
    );
    (system_for(p.dietary_preference), user)
}

/// The person's part of every day call of a job, byte-identical across
/// them: it comes right after the shared system message.
fn person_part(p: &Profile, t: &Targets) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n\n",
        person_section(p, t),
        exclusions_section(p),
        training_section(p),
        supplement_section(p),
        details_rules(p, t),
        tags(p, t, None)
    )
}

fn day_tag(day: &DayOutline, brief: Option<&SessionBrief>, part: DayPart) -> String {
    format!(
        "<{DAY_TAG}>{}</{DAY_TAG}>",
        tag_json(&json!({"day": day.day, "outline": day, "brief": brief, "part": part}))
    )
}

/// A day as the model writes it (ids and grams, no computed numbers).
pub fn day_for_model(day: &Day) -> Value {
    let week = WeeklyPlan {
        days: vec![day.clone()],
        ..WeeklyPlan::default()
    };
    super::for_model(&week)["days"][0].take()
}

/// Reads a one-day answer for day `n`. Models sometimes send the day
/// wrapped (`{"day": {...}}`, `{"days": [{...}]}`); the day's number is
/// ours, whatever the answer says.
pub fn parse_day(value: Value, n: u8) -> Result<Day, serde_json::Error> {
    let mut v = match value {
        Value::Object(mut map) if !map.contains_key("nutrition") && map.len() == 1 => {
            let (_, inner) = map.iter_mut().next().expect("one entry");
            match inner.take() {
                Value::Array(mut days) if !days.is_empty() => days.swap_remove(0),
                inner @ Value::Object(_) => inner,
                other => other,
            }
        }
        Value::Array(mut days) if !days.is_empty() => days.swap_remove(0),
        other => other,
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("day".to_owned(), json!(n));
    }
    serde_json::from_value(v)
}

/// Reads a session call's answer: the workout bare, wrapped
/// (`{"workout": {...}}`) or inside a whole day.
pub fn parse_session(value: Value) -> Result<Workout, serde_json::Error> {
    let v = match value {
        Value::Object(mut map) if !map.contains_key("exercises") => match map.remove("workout") {
            Some(inner) => inner,
            None => Value::Object(map),
        },
        other => other,
    };
    serde_json::from_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::nutrition::targets;
    use crate::plan::profile::parse_profile;

    fn profile(days: u8) -> Profile {
        let raw = include_str!("../../../examples/profiles/fat-loss-vegan-home.json");
        let mut v: Value = serde_json::from_str(raw).unwrap();
        v["training_days"] = json!(days);
        parse_profile(&v).unwrap()
    }

    fn outline(day: u8, training: bool) -> DayOutline {
        DayOutline {
            day,
            is_training_day: training,
            focus: if training { "Full body" } else { "Rest" }.into(),
            kcal: 2000,
            protein_g: 120,
        }
    }

    #[test]
    fn the_week_s_patterns_are_dealt_out_so_that_every_one_has_a_session() {
        for days in 1..=7u8 {
            let p = profile(days);
            let week: Vec<DayOutline> = (1..=7).map(|d| outline(d, d <= days)).collect();
            let mut dealt: Vec<String> = Vec::new();
            for d in &week {
                let brief = SessionBrief::for_day(&p, &week, d);
                assert_eq!(brief.is_some(), d.is_training_day);
                if let Some(b) = brief {
                    assert_eq!(b.session, usize::from(d.day));
                    assert!(b.sets_min <= b.sets_max);
                    dealt.extend(b.patterns);
                }
            }
            dealt.sort();
            let mut all = required_patterns().to_vec();
            all.sort();
            assert_eq!(dealt, all, "{days} training days");
        }
    }

    #[test]
    fn the_seven_calls_of_a_job_share_everything_before_the_week_so_far() {
        let p = profile(3);
        let t = targets(&p);
        let week: Vec<DayOutline> = (1..=7).map(|d| outline(d, d % 2 == 1)).collect();
        let prompts: Vec<Prompt> = (0..7)
            .flat_map(|i| {
                DayPart::of(&week[i])
                    .iter()
                    .map(|&part| day_prompt(&p, &t, &week[..=i], &week[i], part))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            prompts.len(),
            11,
            "four training days in two parts, three rest days"
        );
        let marker = "## The week decided in stage 1";
        let head = |u: &str| u[..u.find(marker).unwrap()].to_owned();
        for (system, user) in &prompts {
            assert_eq!(system, &prompts[0].0);
            assert_eq!(head(user), head(&prompts[0].1));
        }
        // Day 5 trains: its session call has the brief, its meals call not.
        let (_, session) = &prompts[6];
        let tagged = crate::plan::extract_tagged_json(session, DAY_TAG).unwrap();
        assert_eq!(tagged["day"], 5);
        assert_eq!(tagged["part"], "session");
        assert_eq!(tagged["brief"]["session"], 3);
        assert!(session.contains("day 5 (Friday) only"));
        assert!(session.contains("this day's \"workout\" object only"));
        let (_, meals) = &prompts[7];
        let tagged = crate::plan::extract_tagged_json(meals, DAY_TAG).unwrap();
        assert_eq!(
            (tagged["day"].clone(), tagged["part"].clone()),
            (json!(5), json!("meals"))
        );
        assert!(tagged["brief"].is_null() && !meals.contains("Patterns this session"));
        assert!(meals.contains("without its \"workout\""));
    }

    fn violation(rule: Rule) -> Violation {
        Violation {
            rule,
            day: Some(1),
            detail: rule.as_str().into(),
        }
    }

    #[test]
    fn every_rule_of_a_day_belongs_to_a_part_or_to_the_whole_day() {
        let session = [DayPart::Session, DayPart::Meals];
        for rule in Rule::ALL {
            let again: Vec<DayPart> = DayPart::to_repair(&session, &[violation(rule)])
                .into_iter()
                .map(|(part, _)| part)
                .collect();
            match DayPart::owning(rule) {
                Some(part) => assert_eq!(again, vec![part], "{rule:?}"),
                None => assert_eq!(again, session.to_vec(), "{rule:?}"),
            }
            let whole = DayPart::to_repair(&[DayPart::Whole], &[violation(rule)]);
            assert_eq!(whole.len(), 1, "a rest day is written again whole");
        }
        let both = DayPart::to_repair(
            &session,
            &[
                violation(Rule::WarmUp),
                violation(Rule::Diet),
                violation(Rule::Volume),
            ],
        );
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].1.len(), 2, "the session gets its own two rules");
        assert_eq!(both[1].1, vec![violation(Rule::Diet)]);
    }

    #[test]
    fn a_part_s_repair_sends_that_part_only() {
        let p = profile(3);
        let t = targets(&p);
        let plan = crate::plan::offline::sketch(&p, &t);
        let day = plan.days.iter().find(|d| d.is_training_day).unwrap();
        let known: Vec<DayOutline> = plan.days.iter().map(DayOutline::of).collect();
        let broken = [violation(Rule::WarmUp)];
        let (_, user) = day_repair_prompt(&p, &t, &known, day, &broken, DayPart::Session);
        let sent = user.split("## The session to correct\n").nth(1).unwrap();
        let sent: Value = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
        assert!(sent["exercises"].is_array() && sent.get("nutrition").is_none());
        let (_, user) = day_repair_prompt(&p, &t, &known, day, &broken, DayPart::Meals);
        let sent = user.split("## The day to correct\n").nth(1).unwrap();
        let sent: Value = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
        assert!(sent.get("workout").is_none() && sent["nutrition"]["meals"].is_array());
        assert!(user.contains("The day below breaks these rules"));
    }

    #[test]
    fn a_session_answer_is_read_bare_wrapped_or_inside_a_day() {
        let workout = json!({"focus": "Legs", "duration_minutes": 50, "exercises": [
            {"name": "Squat", "sets": 3, "reps": "8"}]});
        for answer in [
            workout.clone(),
            json!({"workout": workout.clone()}),
            json!({"day": 2, "workout": workout.clone(), "nutrition": {"meals": []}}),
        ] {
            let w = parse_session(answer.clone()).unwrap_or_else(|e| panic!("{answer}: {e}"));
            assert_eq!((w.focus.as_str(), w.exercises.len()), ("Legs", 1));
        }
        assert!(parse_session(json!("no session")).is_err());
    }

    #[test]
    fn a_day_answer_is_read_bare_wrapped_or_in_a_list_and_keeps_its_number() {
        let day =
            json!({"day": 9, "name": "x", "is_training_day": false, "nutrition": {"meals": []}});
        for answer in [
            day.clone(),
            json!({"day": day.clone()}),
            json!({"days": [day.clone()]}),
            json!([day.clone()]),
        ] {
            let d = parse_day(answer.clone(), 3).unwrap_or_else(|e| panic!("{answer}: {e}"));
            assert_eq!(d.day, 3);
        }
        assert!(parse_day(json!("no day"), 3).is_err());
    }
}
