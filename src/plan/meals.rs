//! The offline generator's meal library (`data/meals.json`). A dish's fit
//! for a diet or allergy is decided by the validator's own keyword check, so
//! the generator and the validator cannot disagree.

use std::sync::LazyLock;

use serde::Deserialize;

use super::diet::{AllergyMatcher, FoodCategory, categories_in, forbidden_categories};
use super::model::Meal;
use super::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Breakfast,
    Lunch,
    Dinner,
    Snack,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dish {
    pub slot: Slot,
    pub name: String,
    pub items: Vec<String>,
    pub kcal: u32,
    pub protein_g: u32,
    /// Animal products found in the name and items, worked out once at load
    /// with the validator's keyword check.
    #[serde(skip)]
    pub contains: Vec<FoodCategory>,
}

#[derive(Deserialize)]
struct Library {
    meals: Vec<Dish>,
}

static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    let mut library: Library = serde_json::from_str(include_str!("../../data/meals.json"))
        .expect("data/meals.json is valid (checked by a unit test)");
    for dish in &mut library.meals {
        let mut found: Vec<FoodCategory> = Vec::new();
        for text in std::iter::once(&dish.name).chain(&dish.items) {
            for c in categories_in(text) {
                if !found.contains(&c) {
                    found.push(c);
                }
            }
        }
        dish.contains = found;
    }
    library
});

pub fn library() -> &'static [Dish] {
    &LIBRARY.meals
}

/// The meals of a day by `meals_per_day`: a label and the kind of dish.
pub fn day_slots(meals_per_day: u8) -> &'static [(&'static str, Slot)] {
    use Slot::*;
    match meals_per_day {
        0..=2 => &[("Brunch", Lunch), ("Dinner", Dinner)],
        3 => &[
            ("Breakfast", Breakfast),
            ("Lunch", Lunch),
            ("Dinner", Dinner),
        ],
        4 => &[
            ("Breakfast", Breakfast),
            ("Lunch", Lunch),
            ("Afternoon snack", Snack),
            ("Dinner", Dinner),
        ],
        5 => &[
            ("Breakfast", Breakfast),
            ("Morning snack", Snack),
            ("Lunch", Lunch),
            ("Afternoon snack", Snack),
            ("Dinner", Dinner),
        ],
        _ => &[
            ("Breakfast", Breakfast),
            ("Morning snack", Snack),
            ("Lunch", Lunch),
            ("Afternoon snack", Snack),
            ("Dinner", Dinner),
            ("Evening snack", Snack),
        ],
    }
}

/// Whether every word of the dish fits the user's diet and allergies.
pub fn suits(d: &Dish, p: &Profile, allergies: &AllergyMatcher) -> bool {
    let forbidden = forbidden_categories(p.dietary_preference);
    !d.contains.iter().any(|c| forbidden.contains(c))
        && std::iter::once(&d.name)
            .chain(&d.items)
            .all(|t| allergies.find(t).is_none())
}

/// The most restrictive diet a dish needs: 0 vegan, 1 dairy or honey,
/// 2 eggs, 3 meat or fish.
fn tier(d: &Dish) -> usize {
    use FoodCategory::*;
    let has = |cs: &[FoodCategory]| d.contains.iter().any(|c| cs.contains(c));
    if has(&[Meat, Fish, Shellfish]) {
        3
    } else if has(&[Egg]) {
        2
    } else {
        usize::from(!d.contains.is_empty())
    }
}

/// The dishes the user can eat, interleaved from the most to the least
/// animal-based tier the diet allows. In library order the plant dishes come
/// first, and a meat eater would get a vegan week.
pub fn suitable(p: &Profile) -> Vec<&'static Dish> {
    let allergies = AllergyMatcher::new(&p.allergies);
    let mut tiers: [Vec<&'static Dish>; 4] = Default::default();
    for d in library().iter().filter(|d| suits(d, p, &allergies)) {
        tiers[tier(d)].push(d);
    }
    let longest = tiers.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| tiers.iter().rev().filter_map(move |t| t.get(i).copied()))
        .collect()
}

/// A day's meals at their library size (the caller scales them to the
/// targets). `day_index` rotates the dishes so the week has variety. A slot
/// with no suitable dish borrows one from any slot; with none at all the day
/// gets no meals and the validator reports it.
pub fn day_meals(p: &Profile, day_index: usize) -> Vec<Meal> {
    day_meals_from(&suitable(p), p, day_index)
}

/// `day_meals` from an already filtered list (the week's planner filters once).
pub fn day_meals_from(dishes: &[&Dish], p: &Profile, day_index: usize) -> Vec<Meal> {
    let slots = day_slots(p.meals_per_day);
    let mut meals: Vec<Meal> = Vec::with_capacity(slots.len());
    for (i, (label, slot)) in slots.iter().enumerate() {
        let of_slot: Vec<&Dish> = dishes.iter().copied().filter(|d| d.slot == *slot).collect();
        let pool = if of_slot.is_empty() {
            dishes
        } else {
            &of_slot[..]
        };
        let used = |d: &&Dish| meals.iter().any(|m| m.name.ends_with(&d.name));
        // Prefer a dish not yet eaten today (two snacks should differ).
        let fresh: Vec<&Dish> = pool.iter().copied().filter(|d| !used(d)).collect();
        let pool = if fresh.is_empty() { pool } else { &fresh[..] };
        if let Some(d) = pool.get((day_index + i) % pool.len().max(1)) {
            meals.push(Meal {
                name: format!("{label}: {}", d.name),
                items: d.items.clone(),
                kcal: d.kcal,
                protein_g: d.protein_g,
            });
        }
    }
    meals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::profile::{DietaryPreference, parse_profile};
    use serde_json::json;

    fn profile(diet: &str, allergies: &[&str], meals_per_day: u8) -> Profile {
        parse_profile(&json!({
            "goal": "MAINTENANCE", "sex": "female", "age": 30, "height_cm": 165, "weight_kg": 60,
            "activity_level": "active", "training_days": 3, "dietary_preference": diet,
            "allergies": allergies, "meals_per_day": meals_per_day
        }))
        .unwrap()
    }

    #[test]
    fn every_diet_has_at_least_three_dishes_for_every_slot() {
        for diet in DietaryPreference::ALL {
            let p = profile(diet.as_str(), &[], 4);
            let dishes = suitable(&p);
            for slot in [Slot::Breakfast, Slot::Lunch, Slot::Dinner, Slot::Snack] {
                let n = dishes.iter().filter(|d| d.slot == slot).count();
                assert!(n >= 3, "{diet:?} {slot:?}: {n}");
            }
        }
    }

    #[test]
    fn a_vegan_with_many_allergies_still_gets_a_meal_in_every_slot() {
        let p = profile(
            "vegan",
            &["gluten", "soy", "peanuts", "tree nuts", "sesame"],
            6,
        );
        for day in 0..7 {
            let meals = day_meals(&p, day);
            assert_eq!(meals.len(), 6, "day {day}");
        }
    }

    #[test]
    fn meals_follow_meals_per_day_and_vary_across_the_week() {
        let p = profile("non_vegetarian", &[], 3);
        let monday = day_meals(&p, 0);
        let names: Vec<&str> = monday.iter().map(|m| m.name.as_str()).collect();
        assert!(names[0].starts_with("Breakfast: ") && names[2].starts_with("Dinner: "));
        assert_ne!(monday, day_meals(&p, 1));
    }

    #[test]
    fn two_snacks_in_a_day_are_different_dishes() {
        let p = profile("vegetarian", &[], 6);
        let meals = day_meals(&p, 2);
        let snacks: Vec<&str> = meals
            .iter()
            .filter(|m| m.name.contains("snack"))
            .map(|m| m.name.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(snacks.len(), 3);
        assert!(snacks[0] != snacks[1] && snacks[1] != snacks[2] && snacks[0] != snacks[2]);
    }
}
