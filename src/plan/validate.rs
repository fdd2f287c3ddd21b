//! The rules every plan must meet before it is saved, checked on the plan's
//! content (not only its shape). An empty result means the plan is valid.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::diet::{AllergyMatcher, diet_violation};
use super::foods::{Catalogue, FoodFilter, Macros, catalogue};
use super::menu::round1;
use super::model::{Day, Meal, Nutrition, WeeklyPlan};
use super::nutrition::Targets;
use super::portions::TOLERANCE;
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
    UnknownFood,
    FatTarget,
    CarbsTarget,
    Portion,
    Numbers,
    DishRepeated,
    PrepTime,
    Cuisine,
    WarmUp,
    SessionLength,
    Prescription,
    Volume,
    MovementPattern,
    Injury,
    Supplement,
}

impl Rule {
    pub const ALL: [Rule; 24] = [
        Rule::SevenDays,
        Rule::DayIncomplete,
        Rule::TrainingDaysMismatch,
        Rule::AvoidedExercise,
        Rule::Diet,
        Rule::Allergy,
        Rule::KcalTarget,
        Rule::ProteinTarget,
        Rule::Equipment,
        Rule::UnknownFood,
        Rule::FatTarget,
        Rule::CarbsTarget,
        Rule::Portion,
        Rule::Numbers,
        Rule::DishRepeated,
        Rule::PrepTime,
        Rule::Cuisine,
        Rule::WarmUp,
        Rule::SessionLength,
        Rule::Prescription,
        Rule::Volume,
        Rule::MovementPattern,
        Rule::Injury,
        Rule::Supplement,
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
            Rule::UnknownFood => "unknown_food",
            Rule::FatTarget => "fat_target",
            Rule::CarbsTarget => "carbs_target",
            Rule::Portion => "portion",
            Rule::Numbers => "numbers",
            Rule::DishRepeated => "dish_repeated",
            Rule::PrepTime => "prep_time",
            Rule::Cuisine => "cuisine",
            Rule::WarmUp => "warm_up",
            Rule::SessionLength => "session_length",
            Rule::Prescription => "prescription",
            Rule::Volume => "volume",
            Rule::MovementPattern => "movement_pattern",
            Rule::Injury => "injury",
            Rule::Supplement => "supplement",
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
    training::check_week(plan, p, &mut out);
    let allergies = AllergyMatcher::new(&p.allergies);
    let filter = FoodFilter::new(p);
    for day in &plan.days {
        check_day(day, p, t, &allergies, &filter, &mut out);
    }
    out
}

/// The rules one day can break on its own: all but the week's (seven days,
/// the count of training days, weekly volume and movement patterns). A day
/// written apart from the others is checked with these before it is shown.
pub fn validate_day(day: &Day, p: &Profile, t: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    let allergies = AllergyMatcher::new(&p.allergies);
    check_day(day, p, t, &allergies, &FoodFilter::new(p), &mut out);
    out
}

fn check_day(
    day: &Day,
    p: &Profile,
    t: &Targets,
    allergies: &AllergyMatcher,
    filter: &FoodFilter,
    out: &mut Vec<Violation>,
) {
    let cat = catalogue();
    let mut v = DayViolations { day: day.day, out };
    check_complete(day, &mut v);
    check_exercises(day, p, &mut v);
    training::check_day(day, p, &mut v);
    check_food(&day.nutrition, p, allergies, &mut v);
    check_ingredients(&day.nutrition, cat, filter, &mut v);
    check_numbers(&day.nutrition, cat, &mut v);
    check_targets(&day.nutrition, t, &mut v);
}

/// Only the training rules (warm-ups, session minutes, prescriptions,
/// injuries, volume, patterns, supplement cards): for checks of a week's
/// sessions before its meals are solved.
pub fn training_violations(plan: &WeeklyPlan, p: &Profile) -> Vec<Violation> {
    let mut out = Vec::new();
    training::check_week(plan, p, &mut out);
    for day in &plan.days {
        let mut v = DayViolations {
            day: day.day,
            out: &mut out,
        };
        training::check_day(day, p, &mut v);
    }
    out
}

/// The food rules of one day, for other plans made of the same meals (the
/// meal plan): diet and allergy words, foods of the table the profile may
/// eat in bounded servings, numbers that recompute, targets met.
pub fn check_day_food(day: u8, n: &Nutrition, p: &Profile, t: &Targets, out: &mut Vec<Violation>) {
    let allergies = AllergyMatcher::new(&p.allergies);
    let filter = FoodFilter::new(p);
    let cat = catalogue();
    let mut v = DayViolations { day, out };
    check_food(n, p, &allergies, &mut v);
    check_ingredients(n, cat, &filter, &mut v);
    check_numbers(n, cat, &mut v);
    check_targets(n, t, &mut v);
}

/// Collects violations of one day.
pub(crate) struct DayViolations<'a> {
    day: u8,
    out: &'a mut Vec<Violation>,
}

impl DayViolations<'_> {
    pub(crate) fn push(&mut self, rule: Rule, detail: String) {
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

/// Keywords on what the reader sees (meal names and item names): a second
/// check behind the foods' own diet classes and allergen tags.
fn check_food(n: &Nutrition, p: &Profile, allergies: &AllergyMatcher, v: &mut DayViolations) {
    let diet = p.dietary_preference;
    for meal in &n.meals {
        for text in reader_texts(meal) {
            let text = text.as_str();
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

/// The words a reader sees that the food table does not already vouch
/// for: the meal's name and its `items`, with the names of its table foods
/// taken out. A table food's diet class and allergen tags are checked by
/// `check_ingredients`; its name can hold a keyword that is no such thing
/// ("Custard apple" is a fruit, not custard), and a dish composed from
/// foods is named after them.
fn reader_texts(meal: &Meal) -> Vec<String> {
    let table_names: Vec<String> = meal
        .ingredients
        .iter()
        .filter(|i| catalogue().get(&i.id).is_some_and(|f| f.name == i.name))
        .map(|i| i.name.to_ascii_lowercase())
        .collect();
    // ASCII lowering keeps byte offsets, so the original's case survives.
    let strip = |text: &str| {
        let mut t = text.to_owned();
        for name in &table_names {
            while let Some(at) = t.to_ascii_lowercase().find(name.as_str()) {
                t.replace_range(at..at + name.len(), " ");
            }
        }
        t
    };
    std::iter::once(meal.name.as_str())
        .chain(meal.items.iter().map(String::as_str))
        .map(strip)
        .filter(|t| t.chars().any(char::is_alphabetic))
        .collect()
}

/// Every ingredient is a food of the table that the profile may eat, in a
/// serving inside the food's bounds.
fn check_ingredients(n: &Nutrition, cat: &Catalogue, filter: &FoodFilter, v: &mut DayViolations) {
    for meal in &n.meals {
        if meal.ingredients.is_empty() {
            v.push(
                Rule::DayIncomplete,
                format!("{:?} has no ingredients", meal.name),
            );
        }
        for ing in &meal.ingredients {
            let Some(food) = cat.get(&ing.id) else {
                let detail = format!("{:?} uses the unknown food id {:?}", meal.name, ing.id);
                v.push(Rule::UnknownFood, detail);
                continue;
            };
            if let Some(why) = filter.refusal(food) {
                let rule = if filter.diet_allows(food) {
                    Rule::Allergy
                } else {
                    Rule::Diet
                };
                v.push(rule, format!("{:?}: {why}", meal.name));
            }
            let slack = 1e-6;
            if ing.grams + slack < food.min_g || ing.grams > food.max_g + slack {
                let detail = format!(
                    "{:?}: {} g of {} is outside {}-{} g",
                    meal.name, ing.grams, food.name, food.min_g, food.max_g
                );
                v.push(Rule::Portion, detail);
            }
        }
    }
}

/// The numbers recompute: each ingredient from the table and its grams,
/// each meal within 3 % of its ingredients, the day within 2 % of its meals.
fn check_numbers(n: &Nutrition, cat: &Catalogue, v: &mut DayViolations) {
    let mut day_sum = Macros::default();
    for meal in &n.meals {
        // Unknown foods are reported as such; their numbers cannot be checked.
        if meal.ingredients.iter().any(|i| cat.get(&i.id).is_none()) {
            day_sum.add(meal_macros(meal));
            continue;
        }
        let mut sum = Macros::default();
        for ing in &meal.ingredients {
            let Some(food) = cat.get(&ing.id) else {
                continue;
            };
            let m = food.macros(ing.grams);
            let stated = [ing.kcal, ing.protein_g, ing.fat_g, ing.carbs_g];
            let table = [m.kcal, m.protein_g, m.fat_g, m.carbs_g];
            if stated
                .iter()
                .zip(table)
                .any(|(s, t)| (s - round1(t)).abs() > 0.051)
            {
                let detail = format!(
                    "{:?}: {} g of {} states {stated:?}, the table gives {:?}",
                    meal.name,
                    ing.grams,
                    food.name,
                    table.map(round1)
                );
                v.push(Rule::Numbers, detail);
            }
            sum.add(m);
        }
        if !close(meal_macros(meal), sum, 0.03) {
            let detail = format!(
                "{:?} states {:.0} kcal, its ingredients sum to {:.0}",
                meal.name, meal.kcal, sum.kcal
            );
            v.push(Rule::Numbers, detail);
        }
        day_sum.add(meal_macros(meal));
    }
    let stated = Macros {
        kcal: f64::from(n.kcal),
        protein_g: f64::from(n.protein_g),
        fat_g: f64::from(n.fat_g),
        carbs_g: f64::from(n.carbs_g),
    };
    if !n.meals.is_empty() && !close(stated, day_sum, 0.02) {
        let detail = format!(
            "the day states {} kcal, its meals sum to {:.0}",
            n.kcal, day_sum.kcal
        );
        v.push(Rule::Numbers, detail);
    }
}

fn meal_macros(m: &Meal) -> Macros {
    Macros {
        kcal: m.kcal,
        protein_g: m.protein_g,
        fat_g: m.fat_g,
        carbs_g: m.carbs_g,
    }
}

/// Within `rel` of each other, or within 1 unit for small amounts.
fn close(a: Macros, b: Macros, rel: f64) -> bool {
    let near = |x: f64, y: f64| (x - y).abs() <= (rel * y.abs()).max(1.0);
    near(a.kcal, b.kcal)
        && near(a.protein_g, b.protein_g)
        && near(a.fat_g, b.fat_g)
        && near(a.carbs_g, b.carbs_g)
}

/// The day inside the tolerance of its targets.
fn check_targets(n: &Nutrition, t: &Targets, v: &mut DayViolations) {
    let checks = [
        (Rule::KcalTarget, "kcal", n.kcal, t.kcal, TOLERANCE.kcal),
        (
            Rule::ProteinTarget,
            "protein_g",
            n.protein_g,
            t.protein_g,
            TOLERANCE.protein,
        ),
        (Rule::FatTarget, "fat_g", n.fat_g, t.fat_g, TOLERANCE.fat),
        (
            Rule::CarbsTarget,
            "carbs_g",
            n.carbs_g,
            t.carbs_g,
            TOLERANCE.carbs,
        ),
    ];
    for (rule, what, stated, target, tol) in checks {
        let off = (f64::from(stated) - f64::from(target)).abs();
        // Whole units are stated: allow the half unit rounding adds.
        if off > f64::from(target) * tol + 0.5 {
            let detail = format!(
                "{what} is {stated}, the target is {target} (within {:.0} %)",
                tol * 100.0
            );
            v.push(rule, detail);
        }
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

mod training;

#[cfg(test)]
mod tests;
