//! Stage 2 one day per call, for days generated in parallel. A day's
//! prompt is the person's part (the same for the seven calls of a job, so
//! the provider's cache serves it after the first) followed by what is the
//! day's own: the outlines of the week known so far, the day's outline and
//! the share of the week's training rules its session carries.

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    compact, details_rules, exclusions_section, person_section, supplement_section, system_for,
    tag_json, tags, training_section,
};
use crate::plan::model::{Day, DayOutline, WeeklyPlan, weekday_name};
use crate::plan::nutrition::Targets;
use crate::plan::profile::Profile;
use crate::plan::training::{required_patterns, training_targets};
use crate::plan::validate::Violation;

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

/// One day of stage 2.
pub fn day_prompt(
    p: &Profile,
    t: &Targets,
    known: &[DayOutline],
    day: &DayOutline,
) -> (String, String) {
    let brief = SessionBrief::for_day(p, known, day);
    let user = format!(
        "{}## The week decided in stage 1 (so far)\n{}\n\n\
         ## This answer: day {n} ({weekday}) only\n\
         - Its outline (follow it): {outline}\n{brief}\
         Return json: one day object in the shape of a day of a stage-2 answer (not a list, no \
         \"days\" key).\n{tag}",
        person_part(p, t),
        compact(&known),
        n = day.day,
        weekday = weekday_name(day.day),
        outline = compact(day),
        brief = brief.as_ref().map(SessionBrief::text).unwrap_or_default(),
        tag = day_tag(day, brief.as_ref()),
    );
    (system_for(p.dietary_preference).to_owned(), user)
}

/// One day's repair: the day as sent and what it broke.
pub fn day_repair_prompt(
    p: &Profile,
    t: &Targets,
    known: &[DayOutline],
    day: &Day,
    violations: &[Violation],
) -> (String, String) {
    let outline = DayOutline {
        is_training_day: day.is_training_day,
        ..known
            .iter()
            .find(|o| o.day == day.day)
            .cloned()
            .unwrap_or_else(|| DayOutline::of(day))
    };
    let brief = SessionBrief::for_day(p, known, &outline);
    let list: Vec<String> = violations.iter().map(|v| format!("- {v}")).collect();
    let user = format!(
        "{}## The day below breaks these rules\n{}\n\n\
         Return the corrected day {n} as json, one day object in the same shape, changing only \
         what is needed to keep every rule.\n{brief}\
         ## The day to correct\n{day}\n{tag}",
        person_part(p, t),
        list.join("\n"),
        n = day.day,
        brief = brief.as_ref().map(SessionBrief::text).unwrap_or_default(),
        day = compact(&day_for_model(day)),
        tag = day_tag(&outline, brief.as_ref()),
    );
    (system_for(p.dietary_preference).to_owned(), user)
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

fn day_tag(day: &DayOutline, brief: Option<&SessionBrief>) -> String {
    format!(
        "<{DAY_TAG}>{}</{DAY_TAG}>",
        tag_json(&json!({"day": day.day, "outline": day, "brief": brief}))
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
        let prompts: Vec<(String, String)> = (0..7)
            .map(|i| day_prompt(&p, &t, &week[..=i], &week[i]))
            .collect();
        let marker = "## The week decided in stage 1";
        let head = |u: &str| u[..u.find(marker).unwrap()].to_owned();
        for (system, user) in &prompts {
            assert_eq!(system, &prompts[0].0);
            assert_eq!(head(user), head(&prompts[0].1));
        }
        let (_, user) = &prompts[4];
        let tagged = crate::plan::extract_tagged_json(user, DAY_TAG).unwrap();
        assert_eq!(tagged["day"], 5);
        assert_eq!(tagged["brief"]["session"], 3);
        assert!(user.contains("day 5 (Friday) only"));
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
