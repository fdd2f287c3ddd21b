//! The meal plan: seven days of dishes with ingredients in grams from the
//! food table, steps, times and a photo per dish, and the week's grocery
//! list. A day is the weekly plan's `Nutrition` (its meals, their sums), so
//! the same portion solver, numbers and food rules apply to both kinds.
//!
//! - `offline`  the recipe library's week for a profile (no LLM)
//! - `prompt`   the LLM prompt, the repair prompt, the swap prompt
//! - `validate` the meal plan's rules on top of the food rules

pub mod offline;
pub mod prompt;
pub mod validate;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::foods::{FoodFilter, catalogue};
use super::menu::{cook_day, day_targets, grocery_list_of};
use super::model::{GroceryItem, Meal, MealImage, Nutrition};
use super::nutrition::Targets;
use super::profile::Profile;

pub use validate::{validate, validate_day};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MealPlan {
    #[serde(default)]
    pub days: Vec<MealDay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The week's ingredients summed per food (computed, never the model's).
    #[serde(default)]
    pub grocery_list: Vec<GroceryItem>,
}

/// One day: its number (1 = Monday) and its meals with their sums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MealDay {
    pub day: u8,
    #[serde(flatten)]
    pub food: Nutrition,
}

impl MealPlan {
    pub fn meals(&self) -> impl Iterator<Item = &Meal> {
        self.days.iter().flat_map(|d| &d.food.meals)
    }

    /// Distinct dish names, in the order they first appear.
    pub fn dish_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.meals() {
            if !out.contains(&m.name) {
                out.push(m.name.clone());
            }
        }
        out
    }

    /// Distinct photo searches of the week, in the order they first appear
    /// (see [`photo_query`]).
    pub fn photo_queries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for q in self.meals().map(photo_query) {
            if !out.contains(&q) {
                out.push(q);
            }
        }
        out
    }

    /// Sets every meal's photo from `photos` (by its photo query); meals
    /// without one keep `null`.
    pub fn set_images(&mut self, photos: &HashMap<String, Value>) {
        for day in &mut self.days {
            for m in &mut day.food.meals {
                if let Some(p) = photos.get(&photo_query(m)) {
                    m.image = MealImage::Photo(p.clone());
                } else if m.image.is_absent() {
                    m.image = MealImage::Missing;
                }
            }
        }
    }
}

/// What to search a meal's photo by. A named dish (a recipe or the
/// model's, with a cuisine) by its name. A dish composed from foods is named
/// after all of them, a name no one else's week has: it is searched by its
/// main food and the kind of meal ("tofu bowl"), which many weeks share and
/// the search cache then answers.
pub fn photo_query(m: &Meal) -> String {
    if m.cuisine.is_some() {
        return m.name.clone();
    }
    let main = m
        .ingredients
        .first()
        .map(|i| {
            let name = i.name.split(',').next().unwrap_or(&i.name);
            name.split('(').next().unwrap_or(name).trim().to_lowercase()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| m.name.to_lowercase());
    let kind = match m.slot.as_str() {
        "breakfast" => "breakfast",
        "snack" => "snack",
        _ => "bowl",
    };
    format!("{main} {kind}")
}

/// Parses a model's meal-plan answer, unwrapping `{"meal_plan": {...}}` or a
/// bare list of days. Day numbers may be names ("Monday").
pub fn parse_meal_plan(value: Value) -> Result<MealPlan, serde_json::Error> {
    let mut raw: RawPlan = serde_json::from_value(super::model::unwrap_days(value))?;
    let days = raw
        .days
        .drain(..)
        .map(|d| {
            let day = day_number(&d.day).ok_or_else(|| {
                serde::de::Error::custom(format!("day: expected 1-7 or a weekday, got {}", d.day))
            })?;
            Ok(MealDay {
                day,
                food: Nutrition {
                    meals: d.meals,
                    ..Nutrition::default()
                },
            })
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()?;
    Ok(MealPlan {
        days,
        notes: raw.notes,
        grocery_list: Vec::new(),
    })
}

/// What a model sends: days of meals; every number is the server's.
#[derive(Deserialize)]
struct RawPlan {
    #[serde(default)]
    days: Vec<RawDay>,
    #[serde(default)]
    notes: Option<String>,
}

#[derive(Deserialize)]
struct RawDay {
    day: Value,
    #[serde(default)]
    meals: Vec<Meal>,
}

fn day_number(v: &Value) -> Option<u8> {
    if let Some(n) = v.as_u64() {
        return (1..=7).contains(&n).then_some(n as u8);
    }
    let s = v.as_str()?.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (1..=7).contains(&n).then_some(n);
    }
    super::model::WEEKDAYS
        .iter()
        .position(|w| s.len() >= 3 && w.to_ascii_lowercase().starts_with(&s))
        .map(|i| i as u8 + 1)
}

/// Orders and completes the week (a missing day comes from the offline
/// planner), tidies each meal (slot spelling, names), solves every day's
/// portions, marks every photo `null` and sums the grocery list. A day the
/// solver cannot place is left for the validator to report.
pub fn fix(plan: MealPlan, p: &Profile, t: &Targets) -> MealPlan {
    let mut slots: [Option<MealDay>; 7] = Default::default();
    for day in plan.days {
        if let Some(slot @ None) = slots.get_mut(usize::from(day.day).wrapping_sub(1)) {
            *slot = Some(day);
        }
    }
    let mut offline_week: Option<MealPlan> = None;
    let mut days = Vec::with_capacity(7);
    for (i, slot) in slots.into_iter().enumerate() {
        let day = match slot {
            Some(d) if !d.food.meals.is_empty() => d,
            _ => {
                let week = offline_week.get_or_insert_with(|| offline::generate(p, t));
                week.days[i].clone()
            }
        };
        days.push(day);
    }
    let filter = FoodFilter::new(p);
    for day in &mut days {
        fix_meals(day, t, &filter);
    }
    let cat = catalogue();
    let grocery_list = grocery_list_of(days.iter().flat_map(|d| &d.food.meals), cat);
    MealPlan {
        days,
        notes: plan.notes,
        grocery_list,
    }
}

/// `fix` for one day written apart from the others.
pub fn fix_day(mut day: MealDay, p: &Profile, t: &Targets) -> MealDay {
    fix_meals(&mut day, t, &FoodFilter::new(p));
    day
}

/// Tidies a day's meals (slot spelling, names, cuisines), solves its
/// portions and marks every photo `null`.
fn fix_meals(day: &mut MealDay, t: &Targets, filter: &FoodFilter) {
    for m in &mut day.food.meals {
        m.name = m.name.trim().to_owned();
        m.slot = m.slot.trim().to_ascii_lowercase();
        m.cuisine = m
            .cuisine
            .take()
            .map(|c| c.to_ascii_lowercase().replace([' ', '-'], "_"));
        m.steps.retain(|s| !s.trim().is_empty());
        if m.image.is_absent() {
            m.image = MealImage::Missing;
        }
    }
    // An unsolvable day stays as sent; the validator names what it misses.
    let _ = cook_day(&mut day.food, catalogue(), filter, &day_targets(t));
    for m in &mut day.food.meals {
        m.items.clear();
    }
}

/// Reads a one-day answer for day `n` (`{"day", "meals"}`, or wrapped in
/// `{"days": [...]}`); the day's number is ours.
pub fn parse_meal_day(value: Value, n: u8) -> Result<MealDay, serde_json::Error> {
    let mut day = match value {
        Value::Object(map) if map.contains_key("days") => {
            let mut plan = parse_meal_plan(Value::Object(map))?;
            plan.days.truncate(1);
            plan.days.pop()
        }
        mut other => {
            if let Some(obj) = other.as_object_mut() {
                obj.insert("day".to_owned(), serde_json::json!(n));
            }
            parse_meal_plan(serde_json::json!({ "days": [other] }))?
                .days
                .pop()
        }
    }
    .ok_or_else(|| serde::de::Error::custom("no day in the answer"))?;
    day.day = n;
    Ok(day)
}

/// A plan as the model writes it: dishes with ingredient ids and
/// approximate grams, steps and times; none of the server's numbers.
pub fn for_model(plan: &MealPlan) -> Value {
    let days: Vec<Value> = plan
        .days
        .iter()
        .map(|d| {
            let meals: Vec<Value> = d.food.meals.iter().map(meal_for_model).collect();
            serde_json::json!({"day": d.day, "meals": meals})
        })
        .collect();
    serde_json::json!({ "days": days })
}

pub fn meal_for_model(m: &Meal) -> Value {
    let ingredients: Vec<Value> = m
        .ingredients
        .iter()
        .map(|i| serde_json::json!({"id": i.id, "grams": i.grams}))
        .collect();
    serde_json::json!({
        "name": m.name,
        "slot": m.slot,
        "cuisine": m.cuisine,
        "ingredients": ingredients,
        "steps": m.steps,
        "prep_minutes": m.prep_minutes,
        "cook_minutes": m.cook_minutes,
    })
}

#[cfg(test)]
mod tests;
