//! The offline meal plan: the recipe library's dishes for the profile (its
//! diet, allergies, cuisines and time), each dish at most twice a week,
//! portions solved per day. A slot no recipe fits gets a dish composed from
//! the allowed foods by role, with plain steps.

use std::collections::HashMap;

use super::{MealDay, MealPlan};
use crate::plan::foods::{FoodFilter, Role, catalogue};
use crate::plan::meals::{Dish, Slot, compose, day_slots, suitable};
use crate::plan::menu::{cook_day, day_targets, grocery_list_of};
use crate::plan::model::{Meal, MealImage, Nutrition};
use crate::plan::nutrition::Targets;
use crate::plan::profile::Profile;

/// A dish appears at most this often in a week.
pub const MAX_PER_WEEK: usize = 2;

/// Days tried with other dishes before a day is composed from foods.
const ATTEMPTS: usize = 6;

/// Composed days tried before a day is left for the validator to report.
const COMPOSED_ATTEMPTS: usize = 12;

pub fn generate(p: &Profile, t: &Targets) -> MealPlan {
    build(p, t, true)
}

/// The week with the recipes' own grams, unsolved: what a model would send
/// (prompt examples, the mock LLM's answers).
pub fn sketch(p: &Profile, t: &Targets) -> MealPlan {
    build(p, t, false)
}

/// The recipes this profile can have, preferred cuisines first.
pub fn dishes_for(p: &Profile) -> Vec<&'static Dish> {
    let mut dishes: Vec<&'static Dish> = suitable(p)
        .into_iter()
        .filter(|d| fits_time(d, p) && fits_cuisine(d.cuisine.as_deref(), p))
        .collect();
    // Stable: the diet tiers' interleaving is kept within each group.
    dishes.sort_by_key(|d| {
        !p.cuisine_preferences
            .iter()
            .any(|c| Some(c.as_str()) == d.cuisine.as_deref())
    });
    dishes
}

pub fn fits_time(d: &Dish, p: &Profile) -> bool {
    p.max_prep_minutes.is_none_or(|max| d.prep_minutes <= max)
}

/// Any cuisine when the user named none; else theirs or a neutral dish.
pub fn fits_cuisine(cuisine: Option<&str>, p: &Profile) -> bool {
    match cuisine {
        _ if p.cuisine_preferences.is_empty() => true,
        None | Some("international") => true,
        Some(c) => p.cuisine_preferences.iter().any(|x| x == c),
    }
}

fn build(p: &Profile, t: &Targets, solve: bool) -> MealPlan {
    let dishes = dishes_for(p);
    let (cat, filter, target) = (catalogue(), FoodFilter::new(p), day_targets(t));
    let mut uses: HashMap<String, usize> = HashMap::new();
    let mut days = Vec::with_capacity(7);
    for day in 0..7usize {
        let mut chosen = None;
        for attempt in 0..ATTEMPTS {
            let mut food = Nutrition {
                meals: day_meals(&dishes, p, day, attempt, &uses),
                ..Nutrition::default()
            };
            if !solve || cook_day(&mut food, cat, &filter, &target).is_ok() {
                chosen = Some(food);
                break;
            }
        }
        let food = chosen.unwrap_or_else(|| composed_day(p, t, day, &uses, solve));
        for m in &food.meals {
            *uses.entry(m.name.clone()).or_default() += 1;
        }
        days.push(MealDay {
            day: day as u8 + 1,
            food,
        });
    }
    for d in &mut days {
        for m in &mut d.food.meals {
            m.items.clear();
            finish_steps(m);
        }
    }
    let grocery_list = grocery_list_of(days.iter().flat_map(|d| &d.food.meals), cat);
    MealPlan {
        days,
        notes: Some(notes(p, t)),
        grocery_list,
    }
}

/// The day's dishes: for each slot the least used recipe that is still
/// allowed this week and not already eaten today, rotated by day and attempt.
fn day_meals(
    dishes: &[&'static Dish],
    p: &Profile,
    day: usize,
    attempt: usize,
    uses: &HashMap<String, usize>,
) -> Vec<Meal> {
    let mut meals: Vec<Meal> = Vec::new();
    for (i, (label, slot)) in day_slots(p.meals_per_day).iter().enumerate() {
        let used = |name: &str| uses.get(name).copied().unwrap_or(0);
        let mut pool: Vec<&'static Dish> = dishes
            .iter()
            .copied()
            .filter(|d| d.slot == *slot)
            .filter(|d| used(&d.name) < MAX_PER_WEEK && !meals.iter().any(|m| m.name == d.name))
            .collect();
        // Fresh dishes first; the rotation picks among the least used.
        let least = pool.iter().map(|d| used(&d.name)).min().unwrap_or(0);
        pool.retain(|d| used(&d.name) == least);
        let seed = day * 3 + i + attempt * 5;
        let meal = match pool.get(seed % pool.len().max(1)) {
            Some(d) => from_dish(d),
            None => composed(p, *slot, label, seed, uses, &meals),
        };
        meals.push(meal);
    }
    meals
}

fn composed_day(
    p: &Profile,
    t: &Targets,
    day: usize,
    uses: &HashMap<String, usize>,
    solve: bool,
) -> Nutrition {
    let (cat, filter, target) = (catalogue(), FoodFilter::new(p), day_targets(t));
    let mut last = Nutrition::default();
    for attempt in 0..COMPOSED_ATTEMPTS {
        let mut meals: Vec<Meal> = Vec::new();
        for (i, (label, slot)) in day_slots(p.meals_per_day).iter().enumerate() {
            let m = composed(p, *slot, label, day * 5 + attempt * 7 + i, uses, &meals);
            meals.push(m);
        }
        let mut food = Nutrition {
            meals,
            ..Nutrition::default()
        };
        if !solve || cook_day(&mut food, cat, &filter, &target).is_ok() {
            return food;
        }
        last = food;
    }
    last
}

pub fn from_dish(d: &'static Dish) -> Meal {
    Meal {
        name: d.name.clone(),
        slot: d.slot.as_str().to_owned(),
        cuisine: d.cuisine.clone(),
        ingredients: d.unsolved_ingredients(),
        steps: d.steps.clone(),
        prep_minutes: Some(d.prep_minutes),
        cook_minutes: Some(d.cook_minutes),
        image: MealImage::Missing,
        ..Meal::default()
    }
}

/// A dish composed from foods by role, named by its foods, not yet used
/// twice this week nor today.
fn composed(
    p: &Profile,
    slot: Slot,
    label: &str,
    seed: usize,
    uses: &HashMap<String, usize>,
    today: &[Meal],
) -> Meal {
    let mut meal = compose(p, slot, label, seed);
    for k in 1..12 {
        let name = dish_name(&meal.name);
        let free = uses.get(&name).copied().unwrap_or(0) < MAX_PER_WEEK
            && !today.iter().any(|m| m.name == name);
        if free {
            break;
        }
        meal = compose(p, slot, label, seed + k * 11);
    }
    meal.name = dish_name(&meal.name);
    let (prep, cook) = match slot {
        Slot::Breakfast => (5, 5),
        Slot::Lunch | Slot::Dinner => (10, 20),
        Slot::Snack => (5, 0),
    };
    meal.prep_minutes = Some(prep);
    meal.cook_minutes = Some(cook);
    meal.steps = composed_steps(&meal, slot);
    meal.image = MealImage::Missing;
    meal
}

/// `compose` names a dish "Label: foods"; a meal plan's dish is the foods.
fn dish_name(name: &str) -> String {
    name.split_once(": ")
        .map_or(name, |(_, rest)| rest)
        .to_owned()
}

fn composed_steps(meal: &Meal, slot: Slot) -> Vec<String> {
    let cat = catalogue();
    let names = |role: Role| -> Vec<String> {
        meal.ingredients
            .iter()
            .filter_map(|i| cat.get(&i.id))
            .filter(|f| f.role == role)
            .map(|f| f.name.to_lowercase())
            .collect()
    };
    let mut steps = Vec::new();
    let veg = names(Role::Vegetable);
    if !veg.is_empty() {
        steps.push(format!(
            "Wash and chop the {}; steam or sauté until just tender.",
            veg.join(" and ")
        ));
    }
    for c in names(Role::Carb) {
        steps.push(format!(
            "Prepare the {c}: cook it through if it is raw, or warm it."
        ));
    }
    for pr in names(Role::Protein) {
        steps.push(format!(
            "Prepare the {pr}: cook raw meat, fish, eggs or legumes through; serve ready-to-eat foods as they are."
        ));
    }
    let rest: Vec<String> = [Role::Fruit, Role::Dairy, Role::Fat, Role::Flavor]
        .into_iter()
        .flat_map(names)
        .collect();
    let verb = if slot == Slot::Snack {
        "Serve"
    } else {
        "Plate everything"
    };
    if rest.is_empty() {
        steps.push(format!("{verb} together and eat while fresh."));
    } else {
        steps.push(format!("{verb} with the {}.", rest.join(" and ")));
    }
    steps
}

/// A food the solver added to a recipe (to reach protein, say) is not in
/// its steps: say how to serve it.
fn finish_steps(m: &mut Meal) {
    let cat = catalogue();
    let Some(dish) = crate::plan::meals::library()
        .iter()
        .find(|d| d.name == m.name)
    else {
        return;
    };
    for i in &m.ingredients {
        if dish.ingredients.iter().any(|r| r.id == i.id) {
            continue;
        }
        if let Some(f) = cat.get(&i.id) {
            m.steps.push(format!(
                "Serve with the {} on the side.",
                f.name.to_lowercase()
            ));
        }
    }
}

fn notes(p: &Profile, t: &Targets) -> String {
    format!(
        "{} meals a day at about {} kcal, {} g protein, {} g fat and {} g carbohydrate; every \
         amount is solved from the food table, each dish at most twice a week.",
        p.meals_per_day, t.kcal, t.protein_g, t.fat_g, t.carbs_g
    )
}

/// Another dish for `old`'s slot: a recipe the week does not have yet,
/// else one it has once (never `old` itself), nearest in energy to `old`;
/// else a dish composed from the allowed foods.
pub fn alternative(p: &Profile, plan: &MealPlan, old: &Meal) -> Meal {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for m in plan.meals() {
        *uses.entry(m.name.clone()).or_default() += 1;
    }
    let cat = catalogue();
    let kcal_of = |d: &Dish| -> f64 {
        d.ingredients
            .iter()
            .filter_map(|i| cat.get(&i.id).map(|f| f.macros(i.grams).kcal))
            .sum()
    };
    let slot_dishes: Vec<&'static Dish> = dishes_for(p)
        .into_iter()
        .filter(|d| d.slot.as_str() == old.slot && d.name != old.name)
        .collect();
    for allowed in 0..MAX_PER_WEEK {
        let best = slot_dishes
            .iter()
            .filter(|d| uses.get(&d.name).copied().unwrap_or(0) == allowed)
            .min_by(|a, b| {
                (kcal_of(a) - old.kcal)
                    .abs()
                    .total_cmp(&(kcal_of(b) - old.kcal).abs())
            });
        if let Some(d) = best {
            return from_dish(d);
        }
    }
    let slot = match old.slot.as_str() {
        "breakfast" => Slot::Breakfast,
        "snack" => Slot::Snack,
        "dinner" => Slot::Dinner,
        _ => Slot::Lunch,
    };
    uses.insert(old.name.clone(), MAX_PER_WEEK);
    composed(p, slot, "", uses.len(), &uses, &[])
}
