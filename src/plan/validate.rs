//! The rules every plan must meet before it is saved, checked on the plan's
//! content (not only its shape). An empty result means the plan is valid.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::diet::{AllergyMatcher, diet_violation};
use super::model::{Day, WeeklyPlan};
use super::nutrition::Targets;
use super::profile::{Equipment, Profile};
use super::text::{singular, words};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    SevenDays,
    DayIncomplete,
    TrainingDaysMismatch,
    AvoidedExercise,
    Diet,
    Allergy,
    KcalTarget,
    ProteinTarget,
    Equipment,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::SevenDays,
        Rule::DayIncomplete,
        Rule::TrainingDaysMismatch,
        Rule::AvoidedExercise,
        Rule::Diet,
        Rule::Allergy,
        Rule::KcalTarget,
        Rule::ProteinTarget,
        Rule::Equipment,
    ];

    /// Stable names: they go into attempt details and repair prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SevenDays => "seven_days",
            Rule::DayIncomplete => "day_incomplete",
            Rule::TrainingDaysMismatch => "training_days_mismatch",
            Rule::AvoidedExercise => "avoided_exercise",
            Rule::Diet => "diet",
            Rule::Allergy => "allergy",
            Rule::KcalTarget => "kcal_target",
            Rule::ProteinTarget => "protein_target",
            Rule::Equipment => "equipment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub day: Option<u8>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.day {
            Some(d) => write!(f, "day {d}: {}: {}", self.rule.as_str(), self.detail),
            None => write!(f, "{}: {}", self.rule.as_str(), self.detail),
        }
    }
}

/// The distinct rules broken, in a stable order (for the attempt's detail).
pub fn rules_broken(violations: &[Violation]) -> Vec<&'static str> {
    let set: BTreeSet<Rule> = violations.iter().map(|v| v.rule).collect();
    set.into_iter().map(Rule::as_str).collect()
}

/// Sleep outside this range is treated as a missing or broken recovery block.
const SLEEP_HOURS: std::ops::RangeInclusive<f64> = 6.0..=12.0;

pub fn validate(plan: &WeeklyPlan, p: &Profile, t: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    check_week(plan, p, &mut out);
    let allergies = AllergyMatcher::new(&p.allergies);
    for day in &plan.days {
        let mut v = DayViolations {
            day: day.day,
            out: &mut out,
        };
        check_complete(day, &mut v);
        check_exercises(day, p, &mut v);
        check_food(day, p, &allergies, &mut v);
        check_targets(day, t, &mut v);
    }
    out
}

/// Collects violations of one day.
struct DayViolations<'a> {
    day: u8,
    out: &'a mut Vec<Violation>,
}

impl DayViolations<'_> {
    fn push(&mut self, rule: Rule, detail: String) {
        self.out.push(Violation {
            rule,
            day: Some(self.day),
            detail,
        });
    }
}

fn check_week(plan: &WeeklyPlan, p: &Profile, out: &mut Vec<Violation>) {
    let mut numbers: Vec<u8> = plan.days.iter().map(|d| d.day).collect();
    numbers.sort_unstable();
    if numbers != [1, 2, 3, 4, 5, 6, 7] {
        out.push(Violation {
            rule: Rule::SevenDays,
            day: None,
            detail: format!("expected days 1..7 once each, got {numbers:?}"),
        });
    }
    let training = plan.days.iter().filter(|d| d.is_training_day).count();
    if training != usize::from(p.training_days) {
        out.push(Violation {
            rule: Rule::TrainingDaysMismatch,
            day: None,
            detail: format!(
                "{training} training days, the profile asks for {}",
                p.training_days
            ),
        });
    }
}

fn check_complete(day: &Day, v: &mut DayViolations) {
    let exercises = day.workout.as_ref().map_or(&[][..], |w| &w.exercises[..]);
    if day.is_training_day && exercises.is_empty() {
        v.push(Rule::DayIncomplete, "training day without exercises".into());
    }
    if !day.is_training_day && !exercises.is_empty() {
        let n = exercises.len();
        v.push(
            Rule::TrainingDaysMismatch,
            format!("rest day with {n} exercises"),
        );
    }
    for (i, e) in exercises.iter().enumerate() {
        if e.name.trim().is_empty() || e.sets == 0 || e.reps.trim().is_empty() {
            let what = format!(
                "exercise {} ({:?}) needs a name, sets and reps",
                i + 1,
                e.name
            );
            v.push(Rule::DayIncomplete, what);
        }
    }
    if day.nutrition.meals.is_empty() {
        v.push(Rule::DayIncomplete, "no meals".into());
    }
    if !SLEEP_HOURS.contains(&day.recovery.sleep_hours) {
        let h = day.recovery.sleep_hours;
        v.push(
            Rule::DayIncomplete,
            format!("recovery.sleep_hours must be 6-12, got {h}"),
        );
    }
    if day.reason.trim().is_empty() {
        v.push(Rule::DayIncomplete, "no reason".into());
    }
}

fn check_exercises(day: &Day, p: &Profile, v: &mut DayViolations) {
    let Some(workout) = &day.workout else { return };
    for e in &workout.exercises {
        if let Some(avoided) = avoided_match(&e.name, &p.avoided_exercises) {
            let detail = format!("{:?} matches the avoided exercise {avoided:?}", e.name);
            v.push(Rule::AvoidedExercise, detail);
        }
        if let Some(problem) = equipment_problem(&e.equipment, p) {
            v.push(Rule::Equipment, format!("{:?}: {problem}", e.name));
        }
    }
}

fn check_food(day: &Day, p: &Profile, allergies: &AllergyMatcher, v: &mut DayViolations) {
    let diet = p.dietary_preference;
    for meal in &day.nutrition.meals {
        for text in std::iter::once(&meal.name).chain(&meal.items) {
            if let Some(hit) = diet_violation(text, diet) {
                let detail = format!(
                    "{text:?} contains {:?} ({}), not allowed for {}",
                    hit.keyword,
                    hit.category,
                    diet.as_str()
                );
                v.push(Rule::Diet, detail);
            }
            if let Some(hit) = allergies.find(text) {
                let detail = format!(
                    "{text:?} contains {:?} (allergy: {})",
                    hit.keyword, hit.category
                );
                v.push(Rule::Allergy, detail);
            }
        }
    }
}

fn check_targets(day: &Day, t: &Targets, v: &mut DayViolations) {
    let n = &day.nutrition;
    let meal_kcal: u64 = n.meals.iter().map(|m| u64::from(m.kcal)).sum();
    let meal_protein: u64 = n.meals.iter().map(|m| u64::from(m.protein_g)).sum();
    if n.kcal != t.kcal {
        v.push(
            Rule::KcalTarget,
            format!("kcal is {}, the target is {}", n.kcal, t.kcal),
        );
    }
    if meal_kcal != u64::from(n.kcal) {
        v.push(
            Rule::KcalTarget,
            format!("meals sum to {meal_kcal} kcal, the day says {}", n.kcal),
        );
    }
    if n.protein_g != t.protein_g {
        let detail = format!(
            "protein_g is {}, the target is {}",
            n.protein_g, t.protein_g
        );
        v.push(Rule::ProteinTarget, detail);
    }
    if meal_protein != u64::from(n.protein_g) {
        let detail = format!(
            "meals sum to {meal_protein} g protein, the day says {}",
            n.protein_g
        );
        v.push(Rule::ProteinTarget, detail);
    }
}

/// Lowercase, punctuation and spaces removed, each word singular:
/// "Push-Ups" and "pushup" both become "pushup".
fn squash(name: &str) -> String {
    words(name).iter().map(|w| singular(w)).collect()
}

/// The avoided entry that `name` matches: either contains the other, after
/// normalizing ("Walking lunges" matches "lunge"; "Squat" matches "barbell squats").
pub fn avoided_match<'a>(name: &str, avoided: &'a [String]) -> Option<&'a str> {
    let n = squash(name);
    if n.is_empty() {
        return None;
    }
    avoided
        .iter()
        .find(|a| {
            let a = squash(a);
            !a.is_empty() && (n.contains(&a) || a.contains(&n))
        })
        .map(String::as_str)
}

/// Why an exercise's `equipment` text is not usable by this user, if it is
/// not. "/" and "or" separate alternatives (one must be available); ",",
/// "+", "&" and "and" join items that are all needed.
pub fn equipment_problem(equipment: &str, p: &Profile) -> Option<String> {
    if equipment.trim().is_empty() {
        return Some("no equipment stated (use \"bodyweight\" for none)".into());
    }
    let lower = equipment.to_lowercase();
    let alternatives: Vec<&str> = lower.split('/').flat_map(|a| a.split(" or ")).collect();
    let problems: Vec<String> = alternatives
        .iter()
        .filter_map(|alt| all_available(alt, p).err())
        .collect();
    if problems.len() < alternatives.len() {
        None
    } else {
        Some(problems.join("; "))
    }
}

fn all_available(items: &str, p: &Profile) -> Result<(), String> {
    let parts = items
        .split([',', '+', '&'])
        .flat_map(|s| s.split(" and "))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    for item in parts {
        match Equipment::from_loose(item) {
            None => return Err(format!("unknown equipment {item:?}")),
            Some(e) if !p.has_equipment(e) => {
                return Err(format!(
                    "needs {}, which the user does not have",
                    e.as_str()
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
