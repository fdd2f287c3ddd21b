//! The offline planner's recipes (`data/recipes.json`): dishes as foods of
//! the table with typical grams (the portion solver then sets the grams of
//! each day). Which diets and allergies a recipe suits follows from its
//! foods' diet classes and allergen tags, so the planner and the validator
//! cannot disagree. A slot with no suitable recipe gets a dish composed
//! from the allowed foods by role (a protein, a carbohydrate, vegetables, a
//! fat), so that even a very restricted profile gets every meal.

use std::sync::LazyLock;

use serde::Deserialize;

use super::diet::AllergyMatcher;
use super::foods::{Catalogue, DietClass, Food, FoodFilter, Role, catalogue};
use super::model::{Ingredient, Meal};
use super::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Breakfast,
    Lunch,
    Dinner,
    Snack,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Breakfast => "breakfast",
            Slot::Lunch => "lunch",
            Slot::Dinner => "dinner",
            Slot::Snack => "snack",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecipeItem {
    pub id: String,
    pub grams: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dish {
    pub slot: Slot,
    pub name: String,
    #[serde(default)]
    pub cuisine: Option<String>,
    /// Hands-on minutes, then minutes on the heat (or in the oven).
    #[serde(default)]
    pub prep_minutes: u32,
    #[serde(default)]
    pub cook_minutes: u32,
    #[serde(default)]
    pub steps: Vec<String>,
    pub ingredients: Vec<RecipeItem>,
}

impl Dish {
    /// The recipe's foods with its typical grams, before any solving.
    pub fn unsolved_ingredients(&'static self) -> Vec<Ingredient> {
        self.ingredients
            .iter()
            .map(|r| Ingredient {
                id: std::borrow::Cow::Borrowed(r.id.as_str()),
                grams: r.grams,
                ..Ingredient::default()
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Library {
    recipes: Vec<Dish>,
}

static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../data/recipes.json"))
        .expect("data/recipes.json is valid (checked by a unit test)")
});

pub fn library() -> &'static [Dish] {
    &LIBRARY.recipes
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

/// Whether every food of the dish is allowed and its name passes the
/// allergy keywords (a second check).
pub fn suits(d: &Dish, cat: &Catalogue, filter: &FoodFilter, allergies: &AllergyMatcher) -> bool {
    d.ingredients
        .iter()
        .all(|i| cat.get(&i.id).is_some_and(|f| filter.allows(f)))
        && allergies.find(&d.name).is_none()
}

/// The most restrictive diet class among the dish's foods.
fn tier(d: &Dish, cat: &Catalogue) -> usize {
    d.ingredients
        .iter()
        .filter_map(|i| cat.get(&i.id))
        .map(|f| match f.diet {
            DietClass::Vegan => 0,
            DietClass::Vegetarian => 1,
            DietClass::Eggitarian => 2,
            DietClass::Fish | DietClass::Meat => 3,
        })
        .max()
        .unwrap_or(0)
}

/// The dishes the user can eat, interleaved from the most to the least
/// animal-based tier the diet allows. In library order the plant dishes come
/// first, and a meat eater would get a vegan week.
pub fn suitable(p: &Profile) -> Vec<&'static Dish> {
    let cat = catalogue();
    let filter = FoodFilter::new(p);
    let allergies = AllergyMatcher::new(&p.allergies);
    let mut tiers: [Vec<&'static Dish>; 4] = Default::default();
    for d in library()
        .iter()
        .filter(|d| suits(d, cat, &filter, &allergies))
    {
        tiers[tier(d, cat)].push(d);
    }
    let longest = tiers.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| tiers.iter().rev().filter_map(move |t| t.get(i).copied()))
        .collect()
}

/// A day's meals with the recipes' grams (the portion solver sets the
/// day's). `day_index` rotates the dishes so the week has variety; a slot
/// with no suitable recipe gets a composed dish.
pub fn day_meals(p: &Profile, day_index: usize) -> Vec<Meal> {
    day_meals_from(&suitable(p), p, day_index)
}

/// `day_meals` from an already filtered list (the week's planner filters once).
pub fn day_meals_from(dishes: &[&'static Dish], p: &Profile, day_index: usize) -> Vec<Meal> {
    let slots = day_slots(p.meals_per_day);
    let mut meals: Vec<Meal> = Vec::with_capacity(slots.len());
    for (i, (label, slot)) in slots.iter().enumerate() {
        let of_slot: Vec<&'static Dish> =
            dishes.iter().copied().filter(|d| d.slot == *slot).collect();
        let used = |d: &&Dish| meals.iter().any(|m| m.name.ends_with(&d.name));
        // Prefer a dish not yet eaten today (two snacks should differ).
        let fresh: Vec<&'static Dish> = of_slot.iter().copied().filter(|d| !used(d)).collect();
        let pool = if fresh.is_empty() {
            &of_slot[..]
        } else {
            &fresh[..]
        };
        let meal = match pool.get((day_index + i) % pool.len().max(1)) {
            Some(d) => Meal {
                name: format!("{label}: {}", d.name),
                slot: slot.as_str().to_owned(),
                ingredients: d.unsolved_ingredients(),
                ..Meal::default()
            },
            None => compose(p, *slot, label, day_index + i),
        };
        meals.push(meal);
    }
    meals
}

/// The roles a composed dish of `slot` is made of.
pub fn roles(slot: Slot) -> &'static [Role] {
    match slot {
        Slot::Breakfast => &[Role::Carb, Role::Protein, Role::Fruit, Role::Fat],
        Slot::Lunch | Slot::Dinner => &[
            Role::Protein,
            Role::Carb,
            Role::Vegetable,
            Role::Vegetable,
            Role::Fat,
        ],
        Slot::Snack => &[Role::Fruit, Role::Protein],
    }
}

/// A dish from the allowed foods by role, rotating with `seed`.
pub fn compose(p: &Profile, slot: Slot, label: &str, seed: usize) -> Meal {
    let cat = catalogue();
    let filter = FoodFilter::new(p);
    let mut picked: Vec<&'static Food> = Vec::new();
    for (k, role) in roles(slot).iter().enumerate() {
        let pool: Vec<&'static Food> = cat
            .all()
            .iter()
            .filter(|f| f.role == *role && filter.allows(f) && !picked.contains(f))
            .collect();
        if let Some(f) = pool.get((seed * 7 + k * 3) % pool.len().max(1)) {
            picked.push(f);
        }
    }
    let names: Vec<&str> = picked.iter().map(|f| f.name.as_str()).collect();
    let name = match names.as_slice() {
        [] => "Meal".to_owned(),
        [one] => (*one).to_owned(),
        [first, rest @ ..] => format!("{first} with {}", rest.join(", ")),
    };
    Meal {
        name: format!("{label}: {name}"),
        slot: slot.as_str().to_owned(),
        ingredients: picked
            .iter()
            .map(|f| Ingredient {
                id: std::borrow::Cow::Borrowed(f.id.as_str()),
                grams: (f.min_g + f.max_g) / 2.0,
                ..Ingredient::default()
            })
            .collect(),
        ..Meal::default()
    }
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
    fn every_recipe_uses_only_foods_of_the_table() {
        let cat = catalogue();
        for d in library() {
            for i in &d.ingredients {
                assert!(
                    cat.get(&i.id).is_some(),
                    "{}: unknown food {}",
                    d.name,
                    i.id
                );
                assert!(i.grams > 0.0, "{}: {}", d.name, i.id);
            }
        }
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
        assert_eq!(monday[0].slot, "breakfast");
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
