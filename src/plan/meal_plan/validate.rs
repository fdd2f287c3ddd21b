//! The rules a meal plan meets before it is saved: the food rules of the
//! weekly plan on every day (diet, allergies, foods of the table in bounded
//! servings, numbers that recompute, targets met) and the meal plan's own:
//! seven days, `meals_per_day` dishes a day with steps and times, a dish at
//! most twice a week, the user's cuisines and preparation time, a grocery
//! list that equals the ingredients.

use std::collections::BTreeMap;

use super::offline::{MAX_PER_WEEK, fits_cuisine};
use super::{MealDay, MealPlan};
use crate::plan::foods::catalogue;
use crate::plan::meals::day_slots;
use crate::plan::menu::grocery_list_of;
use crate::plan::nutrition::Targets;
use crate::plan::profile::Profile;
use crate::plan::validate::{Rule, Violation, check_day_food};

const SLOTS: [&str; 4] = ["breakfast", "lunch", "dinner", "snack"];

pub fn validate(plan: &MealPlan, p: &Profile, t: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    let week = |rule, detail: String| Violation {
        rule,
        day: None,
        detail,
    };
    let mut numbers: Vec<u8> = plan.days.iter().map(|d| d.day).collect();
    numbers.sort_unstable();
    if numbers != [1, 2, 3, 4, 5, 6, 7] {
        out.push(week(
            Rule::SevenDays,
            format!("days must be 1 to 7, each once; got {numbers:?}"),
        ));
    }
    for d in &plan.days {
        check_day(d, p, t, &mut out);
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in plan.meals() {
        *counts.entry(m.name.trim().to_lowercase()).or_default() += 1;
    }
    for (name, n) in counts.into_iter().filter(|(_, n)| *n > MAX_PER_WEEK) {
        out.push(week(
            Rule::DishRepeated,
            format!("{name:?} appears {n} times, at most {MAX_PER_WEEK} a week"),
        ));
    }
    if plan.grocery_list != grocery_list_of(plan.meals(), catalogue()) {
        out.push(week(
            Rule::Numbers,
            "the grocery list is not the sum of the week's ingredients".to_owned(),
        ));
    }
    out
}

/// The rules one day can break on its own: all but the week's (seven
/// days, a dish at most twice, the grocery list).
pub fn validate_day(d: &MealDay, p: &Profile, t: &Targets) -> Vec<Violation> {
    let mut out = Vec::new();
    check_day(d, p, t, &mut out);
    out
}

fn check_day(d: &MealDay, p: &Profile, t: &Targets, out: &mut Vec<Violation>) {
    let per_day = day_slots(p.meals_per_day).len();
    let mut push = |rule, detail: String| {
        out.push(Violation {
            rule,
            day: Some(d.day),
            detail,
        })
    };
    let meals = &d.food.meals;
    if meals.len() != per_day {
        push(
            Rule::DayIncomplete,
            format!("{} meals, the profile asks for {per_day}", meals.len()),
        );
    }
    for m in meals {
        if m.name.trim().is_empty() {
            push(Rule::DayIncomplete, "a meal has no name".to_owned());
        }
        if !SLOTS.contains(&m.slot.as_str()) {
            push(
                Rule::DayIncomplete,
                format!("{:?}: slot {:?} is not one of {SLOTS:?}", m.name, m.slot),
            );
        }
        if m.steps.is_empty() {
            push(Rule::DayIncomplete, format!("{:?} has no steps", m.name));
        }
        match (m.prep_minutes, m.cook_minutes) {
            (Some(prep), Some(_)) => {
                if let Some(max) = p.max_prep_minutes.filter(|max| prep > *max) {
                    push(
                        Rule::PrepTime,
                        format!("{:?} takes {prep} min to prepare, at most {max}", m.name),
                    );
                }
            }
            _ => push(
                Rule::DayIncomplete,
                format!("{:?} has no prep_minutes or cook_minutes", m.name),
            ),
        }
        if !fits_cuisine(m.cuisine.as_deref(), p) {
            push(
                Rule::Cuisine,
                format!(
                    "{:?} is {}, the user chose {}",
                    m.name,
                    m.cuisine.as_deref().unwrap_or(""),
                    p.cuisine_preferences.join(", ")
                ),
            );
        }
    }
    check_day_food(d.day, &d.food, p, t, out);
}
