//! The training rules of the validator: warm-ups, session minutes, reps in
//! reserve and progression per exercise, injuries, the week's volume per
//! muscle group and its movement patterns, and supplement cards that fit
//! the person and the day.

use super::{DayViolations, Rule, Violation};
use crate::plan::exercises::{library, usable};
use crate::plan::model::{Day, WeeklyPlan};
use crate::plan::profile::Profile;
use crate::plan::supplements::{named, relevant, suits};
use crate::plan::training::{
    banned_tags, covers, injury_rules, major_groups, planned_minutes, required_patterns,
    training_targets, traits, weekly_sets,
};

/// The least a warm-up may take, in minutes.
const MIN_WARM_UP_MINUTES: u32 = 3;

pub(super) fn check_week(plan: &WeeklyPlan, p: &Profile, out: &mut Vec<Violation>) {
    if !plan
        .days
        .iter()
        .any(|d| d.workout.as_ref().is_some_and(|w| !w.exercises.is_empty()))
    {
        return;
    }
    let t = training_targets(p);
    let banned = banned_tags(&p.injuries);
    let doable: Vec<_> = library().iter().filter(|e| usable(e, p, &banned)).collect();
    let mut week = |rule, detail| {
        out.push(Violation {
            rule,
            day: None,
            detail,
        })
    };
    let sets = weekly_sets(plan);
    let level = t.experience_level.as_str();
    for group in major_groups() {
        let got = sets.get(group).copied().unwrap_or(0.0);
        // A group none of the person's exercises can train is not asked for.
        let trainable = doable
            .iter()
            .any(|e| e.group == *group || e.secondary.contains(group));
        if trainable && got < f64::from(t.weekly_sets_min) {
            week(
                Rule::Volume,
                format!(
                    "{group}: {got} hard sets this week, at {level} level the week needs {}-{} \
                     (a set counts half for an exercise's secondary groups)",
                    t.weekly_sets_min, t.weekly_sets_max
                ),
            );
        }
    }
    for (group, got) in &sets {
        if *got > f64::from(t.weekly_sets_max) {
            week(
                Rule::Volume,
                format!(
                    "{group}: {got} hard sets this week, more than the {level} level recovers \
                     from (at most {})",
                    t.weekly_sets_max
                ),
            );
        }
    }
    let patterns: Vec<String> = plan
        .days
        .iter()
        .filter_map(|d| d.workout.as_ref())
        .flat_map(|w| &w.exercises)
        .map(|e| traits(e).pattern)
        .collect();
    for required in required_patterns() {
        let examples: Vec<&str> = doable
            .iter()
            .filter(|e| covers(&e.pattern, required))
            .map(|e| e.name.as_str())
            .take(3)
            .collect();
        if !examples.is_empty() && !patterns.iter().any(|p| covers(p, required)) {
            week(
                Rule::MovementPattern,
                format!(
                    "no {required} exercise this week (for example: {})",
                    examples.join(", ")
                ),
            );
        }
    }
}

pub(super) fn check_day(day: &Day, p: &Profile, v: &mut DayViolations) {
    check_supplements(day, p, v);
    let Some(w) = day.workout.as_ref().filter(|w| !w.exercises.is_empty()) else {
        return;
    };
    let t = training_targets(p);
    let warm_up: u32 = w.warm_up.iter().map(|s| s.minutes).sum();
    let broken_step = w
        .warm_up
        .iter()
        .any(|s| s.step.trim().is_empty() || s.minutes == 0);
    if warm_up < MIN_WARM_UP_MINUTES || broken_step {
        v.push(
            Rule::WarmUp,
            format!(
                "workout.warm_up needs steps, each with its text and minutes, of at least \
                 {MIN_WARM_UP_MINUTES} minutes in all (about {} for this session); it has {} \
                 steps, {warm_up} min",
                t.warm_up_minutes,
                w.warm_up.len()
            ),
        );
    }
    let planned = planned_minutes(w);
    let (lo, hi) = (t.session_minutes_min, t.session_minutes_max);
    if planned < f64::from(lo) || planned > f64::from(hi) {
        v.push(
            Rule::SessionLength,
            format!(
                "the warm-up and sets x (work + rest) take {planned:.0} min, the session is {} \
                 min: plan {lo}-{hi} min (a rep takes about 3 s)",
                p.session_minutes
            ),
        );
    }
    let banned = banned_tags(&p.injuries);
    let rules = injury_rules(&p.injuries);
    for e in &w.exercises {
        let tr = traits(e);
        if tr.pattern != "conditioning" {
            match e.rir {
                None => v.push(
                    Rule::Prescription,
                    format!("{:?} needs \"rir\" (reps in reserve)", e.name),
                ),
                Some(r) if r < t.rir_min || r > t.rir_max => v.push(
                    Rule::Prescription,
                    format!(
                        "{:?}: rir {r}, at {} level working sets stop {}-{} reps short of failure",
                        e.name,
                        t.experience_level.as_str(),
                        t.rir_min,
                        t.rir_max
                    ),
                ),
                Some(_) => {}
            }
        }
        if e.progression
            .trim()
            .chars()
            .filter(|c| c.is_alphabetic())
            .count()
            < 10
        {
            v.push(
                Rule::Prescription,
                format!("{:?} needs a \"progression\" rule", e.name),
            );
        }
        for tag in tr.tags.iter().filter(|t| banned.contains(t.as_str())) {
            for r in rules.iter().filter(|r| r.rules_out(tag)) {
                v.push(
                    Rule::Injury,
                    format!("{:?} breaks the {} rule: {}", e.name, r.joint, r.rule),
                );
            }
        }
    }
}

/// Each card entry is one the guide gives this person (by its group, so a
/// close name of the same product passes), and pre-training entries stay
/// off rest days.
fn check_supplements(day: &Day, p: &Profile, v: &mut DayViolations) {
    let relevant = relevant(p);
    for advice in &day.recovery.supplement_card {
        let Some(entry) = named(&advice.name) else {
            v.push(
                Rule::Supplement,
                format!("{:?} is not in the supplement guide", advice.name),
            );
            continue;
        };
        if !suits(entry, p) || !relevant.iter().any(|r| r.group == entry.group) {
            v.push(
                Rule::Supplement,
                format!(
                    "{:?} is not relevant for this person (neither core for the diet nor asked \
                     for, or unsuitable)",
                    advice.name
                ),
            );
        } else if entry.training_days_only && !day.is_training_day {
            v.push(
                Rule::Supplement,
                format!("{:?} belongs on training days only", advice.name),
            );
        }
    }
}
