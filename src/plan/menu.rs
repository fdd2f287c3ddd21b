//! From a day's meals (foods of the table, with suggested grams) to a day
//! whose every number is computed: the portion solver chooses the grams,
//! each ingredient gets its composition from the table, each meal the sums
//! of its ingredients, the day the sums of its meals. A day the solver
//! cannot place is repaired with another food of the right kind, never
//! fudged; the week's grocery list is the sum of its ingredients.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::foods::{Catalogue, Food, FoodFilter, Macros, Role};
use super::model::{GroceryItem, Ingredient, Meal, Nutrition, WeeklyPlan};
use super::nutrition::Targets;
use super::portions::{self, DayTargets, Item, Macro, Unsolvable};

/// Why a day's meals could not be made into a day within its targets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CookError {
    #[error("unknown food ids: {}", .0.join(", "))]
    UnknownFoods(Vec<String>),
    #[error("{0}")]
    Unsolvable(Unsolvable),
}

/// Repairs tried before a day is given up: each adds or drops one food.
const MAX_REPAIRS: usize = 12;

/// The day's targets as the solver takes them.
pub fn day_targets(t: &Targets) -> DayTargets {
    DayTargets {
        kcal: f64::from(t.kcal),
        protein_g: f64::from(t.protein_g),
        fat_g: f64::from(t.fat_g),
        carbs_g: f64::from(t.carbs_g),
    }
}

/// A meal's share of the day's energy by its slot.
pub fn slot_share(slot: &str) -> f64 {
    match slot {
        "breakfast" => 0.25,
        "lunch" => 0.32,
        "dinner" => 0.30,
        "snack" => 0.10,
        _ => 0.25,
    }
}

/// Ids of ingredients that are not in the table.
pub fn unknown_ids(cat: &Catalogue, meals: &[Meal]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in meals.iter().flat_map(|m| &m.ingredients) {
        if cat.get(&i.id).is_none() && !out.iter().any(|o| *o == i.id) {
            out.push(i.id.to_string());
        }
    }
    out
}

/// Solves the day's grams and fills in every number, repairing the menu
/// with foods `filter` allows when the foods as given cannot reach the
/// targets. On error the day is left as it was.
pub fn cook_day(
    n: &mut Nutrition,
    cat: &'static Catalogue,
    filter: &FoodFilter,
    t: &DayTargets,
) -> Result<(), CookError> {
    let unknown = unknown_ids(cat, &n.meals);
    if !unknown.is_empty() {
        return Err(CookError::UnknownFoods(unknown));
    }
    if is_cooked(n, cat, t) {
        // Solving again could move grams the day already had right.
        return Ok(());
    }
    let mut meals = n.meals.clone();
    let mut last = None;
    let mut dropped: Vec<String> = Vec::new();
    for _ in 0..=MAX_REPAIRS {
        let items = items_of(cat, &meals);
        let shares: Vec<f64> = meals.iter().map(|m| slot_share(&m.slot)).collect();
        match portions::solve_day(&items, &shares, t) {
            Ok(grams) => {
                write_back(&mut meals, &items, &grams);
                *n = nutrition_of(meals);
                return Ok(());
            }
            Err(err) => {
                if !repair(&mut meals, cat, filter, &err, &mut dropped) {
                    return Err(CookError::Unsolvable(err));
                }
                last = Some(err);
            }
        }
    }
    Err(CookError::Unsolvable(last.expect("at least one attempt")))
}

/// Whether the day already states exactly what its grams give, inside the
/// bounds and the tolerance.
fn is_cooked(n: &Nutrition, cat: &'static Catalogue, t: &DayTargets) -> bool {
    let Some(meals) = n
        .meals
        .iter()
        .map(|m| {
            let ingredients = m
                .ingredients
                .iter()
                .map(|i| {
                    let f = cat.get(&i.id)?;
                    let inside = i.grams >= f.min_g - 1e-9 && i.grams <= f.max_g + 1e-9;
                    inside.then(|| ingredient(f, i.grams))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Meal {
                ingredients,
                ..m.clone()
            })
        })
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let items = items_of(cat, &meals);
    let grams: Vec<f64> = meals
        .iter()
        .flat_map(|m| m.ingredients.iter().map(|i| i.grams))
        .collect();
    let recomputed = nutrition_of(meals);
    recomputed == *n
        && !n.meals.is_empty()
        && portions::misses(&items, &grams, t, &portions::ACCEPTED).is_empty()
}

fn items_of(cat: &'static Catalogue, meals: &[Meal]) -> Vec<Item<'static>> {
    meals
        .iter()
        .enumerate()
        .flat_map(|(mi, m)| {
            m.ingredients.iter().map(move |i| {
                let food = cat.get(&i.id).expect("ids were checked");
                Item {
                    food,
                    meal: mi,
                    suggested_g: if i.grams > 0.0 {
                        i.grams
                    } else {
                        (food.min_g + food.max_g) / 2.0
                    },
                }
            })
        })
        .collect()
}

/// Grams and composition into each ingredient, in `items`' order.
fn write_back(meals: &mut [Meal], items: &[Item<'static>], grams: &[f64]) {
    let mut k = 0;
    for meal in meals.iter_mut() {
        for ing in &mut meal.ingredients {
            *ing = ingredient(items[k].food, grams[k]);
            k += 1;
        }
        meal.items = meal
            .ingredients
            .iter()
            .map(|i| i.name.to_string())
            .collect();
    }
}

/// `grams` of `food`, with its composition rounded to 0.1.
pub fn ingredient(food: &'static Food, grams: f64) -> Ingredient {
    let m = food.macros(grams);
    Ingredient {
        id: Cow::Borrowed(&food.id),
        name: Cow::Borrowed(&food.name),
        source: Cow::Borrowed(food.source.as_str()),
        code: Cow::Borrowed(&food.code),
        grams,
        kcal: round1(m.kcal),
        protein_g: round1(m.protein_g),
        fat_g: round1(m.fat_g),
        carbs_g: round1(m.carbs_g),
        household: food.household(grams),
    }
}

/// Meals' numbers as the sums of their ingredients, the day's as the sums
/// of its meals.
pub fn nutrition_of(mut meals: Vec<Meal>) -> Nutrition {
    let mut day = Macros::default();
    for meal in &mut meals {
        let mut sum = Macros::default();
        for i in &meal.ingredients {
            sum.add(Macros {
                kcal: i.kcal,
                protein_g: i.protein_g,
                fat_g: i.fat_g,
                carbs_g: i.carbs_g,
            });
        }
        meal.kcal = round1(sum.kcal);
        meal.protein_g = round1(sum.protein_g);
        meal.fat_g = round1(sum.fat_g);
        meal.carbs_g = round1(sum.carbs_g);
        day.add(sum);
    }
    Nutrition {
        kcal: day.kcal.round() as u32,
        protein_g: day.protein_g.round() as u32,
        fat_g: day.fat_g.round() as u32,
        carbs_g: day.carbs_g.round() as u32,
        meals,
    }
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// One round of changes toward the targets the day missed: for each target
/// that is short, add a food rich in it; for one that is over, drop the food
/// richest in it. A dropped food is never added back. False when nothing is
/// left to try.
fn repair(
    meals: &mut [Meal],
    cat: &'static Catalogue,
    filter: &FoodFilter,
    err: &Unsolvable,
    dropped: &mut Vec<String>,
) -> bool {
    let mut changed = false;
    let mut roles_added: Vec<Role> = Vec::new();
    for miss in &err.misses {
        if miss.best < miss.target {
            let role = role_for(miss.what);
            if !roles_added.contains(&role) && add_booster(meals, cat, filter, miss.what, dropped) {
                roles_added.push(role);
                changed = true;
            }
        } else if let Some(id) = drop_richest(meals, cat, miss.what) {
            dropped.push(id);
            changed = true;
        }
    }
    changed
}

/// The role whose foods carry most of `what`.
fn role_for(what: Macro) -> Role {
    match what {
        Macro::Protein => Role::Protein,
        Macro::Fat => Role::Fat,
        Macro::Carbs | Macro::Kcal => Role::Carb,
    }
}

/// Adds the allowed food densest in `what` (not yet in the day) to the
/// main meal with the fewest ingredients, so that additions spread.
fn add_booster(
    meals: &mut [Meal],
    cat: &'static Catalogue,
    filter: &FoodFilter,
    what: Macro,
    dropped: &[String],
) -> bool {
    let used: Vec<&str> = meals
        .iter()
        .flat_map(|m| m.ingredients.iter().map(|i| i.id.as_ref()))
        .chain(dropped.iter().map(String::as_str))
        .collect();
    let role = role_for(what);
    let density = |f: &Food| match what {
        Macro::Protein => f.protein_g / f.kcal.max(1.0),
        Macro::Fat => f.fat_g / f.kcal.max(1.0),
        Macro::Carbs => f.carbs_g / f.kcal.max(1.0),
        Macro::Kcal => f.kcal,
    };
    let Some(food) = cat
        .all()
        .iter()
        .filter(|f| f.role == role && !used.contains(&f.id.as_str()) && filter.allows(f))
        .max_by(|a, b| {
            density(a)
                .total_cmp(&density(b))
                .then_with(|| b.id.cmp(&a.id))
        })
    else {
        return false;
    };
    let Some(meal) = meals
        .iter_mut()
        .filter(|m| m.slot != "snack")
        .min_by_key(|m| m.ingredients.len())
    else {
        return false;
    };
    meal.ingredients.push(Ingredient {
        id: Cow::Borrowed(&food.id),
        grams: food.min_g,
        ..Ingredient::default()
    });
    true
}

/// Drops the ingredient that brings most of `what`, from a meal that keeps
/// at least two; returns its id.
fn drop_richest(meals: &mut [Meal], cat: &'static Catalogue, what: Macro) -> Option<String> {
    let mut best: Option<(usize, usize, f64)> = None;
    for (mi, m) in meals.iter().enumerate() {
        if m.ingredients.len() <= 2 {
            continue;
        }
        for (ii, i) in m.ingredients.iter().enumerate() {
            let Some(f) = cat.get(&i.id) else { continue };
            let amount = match what {
                Macro::Kcal => f.kcal,
                Macro::Protein => f.protein_g,
                Macro::Fat => f.fat_g,
                Macro::Carbs => f.carbs_g,
            } * f.min_g;
            if best.is_none_or(|b| amount > b.2) {
                best = Some((mi, ii, amount));
            }
        }
    }
    let (mi, ii, _) = best?;
    Some(meals[mi].ingredients.remove(ii).id.into_owned())
}

/// The week's ingredients summed per food, by aisle then name.
pub fn grocery_list(plan: &WeeklyPlan, cat: &'static Catalogue) -> Vec<GroceryItem> {
    grocery_list_of(plan.days.iter().flat_map(|d| &d.nutrition.meals), cat)
}

/// The ingredients of `meals` summed per food, by aisle then name.
pub fn grocery_list_of<'a>(
    meals: impl Iterator<Item = &'a Meal>,
    cat: &'static Catalogue,
) -> Vec<GroceryItem> {
    let mut grams: BTreeMap<&str, f64> = BTreeMap::new();
    for i in meals.flat_map(|m| &m.ingredients) {
        *grams.entry(i.id.as_ref()).or_default() += i.grams;
    }
    let mut list: Vec<GroceryItem> = grams
        .into_iter()
        .filter_map(|(id, g)| {
            let f = cat.get(id)?;
            Some(GroceryItem {
                id: Cow::Borrowed(&f.id),
                name: Cow::Borrowed(&f.name),
                source: Cow::Borrowed(f.source.as_str()),
                code: Cow::Borrowed(&f.code),
                group: Cow::Borrowed(&f.group),
                grams: g,
                household: f.household(g),
            })
        })
        .collect();
    list.sort_by(|a, b| a.group.cmp(&b.group).then_with(|| a.name.cmp(&b.name)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::foods::catalogue;
    use crate::plan::profile::parse_profile;
    use serde_json::json;

    fn filter(diet: &str) -> FoodFilter {
        FoodFilter::new(
            &parse_profile(&json!({
                "goal": "MAINTENANCE", "sex": "male", "age": 30, "height_cm": 180, "weight_kg": 80,
                "activity_level": "active", "training_days": 3, "dietary_preference": diet
            }))
            .unwrap(),
        )
    }

    fn meal(slot: &str, ids: &[&str]) -> Meal {
        Meal {
            name: slot.into(),
            slot: slot.into(),
            ingredients: ids
                .iter()
                .map(|id| Ingredient {
                    id: id.to_string().into(),
                    ..Ingredient::default()
                })
                .collect(),
            ..Meal::default()
        }
    }

    const DAY: DayTargets = DayTargets {
        kcal: 2600.0,
        protein_g: 150.0,
        fat_g: 72.0,
        carbs_g: 337.0,
    };

    #[test]
    fn an_unknown_food_id_is_refused_before_anything_is_solved() {
        let mut n = Nutrition {
            meals: vec![meal("lunch", &["rice_white_raw", "moon_cheese"])],
            ..Nutrition::default()
        };
        let before = n.clone();
        let err = cook_day(&mut n, catalogue(), &filter("vegan"), &DAY).unwrap_err();
        assert_eq!(err, CookError::UnknownFoods(vec!["moon_cheese".into()]));
        assert_eq!(n, before, "the day is left as it was");
    }

    #[test]
    fn a_day_short_of_protein_is_repaired_with_an_allowed_protein_food() {
        let mut n = Nutrition {
            meals: vec![
                meal("breakfast", &["rolled_oats", "banana"]),
                meal("lunch", &["rice_white_raw", "broccoli", "olive_oil"]),
                meal("dinner", &["pasta_dry", "tomato_puree", "olive_oil"]),
            ],
            ..Nutrition::default()
        };
        let f = filter("vegan");
        cook_day(&mut n, catalogue(), &f, &DAY).expect("repaired");
        let added: Vec<&Food> = n
            .meals
            .iter()
            .flat_map(|m| &m.ingredients)
            .map(|i| catalogue().get(&i.id).unwrap())
            .filter(|food| food.role == Role::Protein)
            .collect();
        assert!(!added.is_empty(), "a protein food was added");
        assert!(added.iter().all(|food| f.allows(food)), "only vegan foods");
        assert!(
            f64::from(n.protein_g) >= DAY.protein_g * 0.95,
            "{}",
            n.protein_g
        );
        let meal_kcal: f64 = n.meals.iter().map(|m| m.kcal).sum();
        assert!(
            (f64::from(n.kcal) - meal_kcal).abs() <= 1.0,
            "the day sums its meals"
        );
    }
}
