//! Repairs what can be repaired without the model: the order and set of the
//! seven days, the portions (solved from the food table, with every number
//! recomputed; the model's numbers are never kept), the grocery list, and
//! missing reasons and supplement cards. It never swaps a food the model
//! chose for a forbidden one or touches exercises, so the validator still
//! catches a broken diet, an unknown food or an avoided exercise.

use super::foods::{FoodFilter, catalogue};
use super::meals::{day_meals, day_slots};
use super::menu::{cook_day, day_targets, grocery_list};
use super::model::{Day, WeeklyPlan, weekday_name};
use super::nutrition::Targets;
use super::offline::{default_reason, rest_day, sleep_hours};
use super::profile::Profile;
use super::supplements::card;

pub fn fix(plan: WeeklyPlan, p: &Profile, t: &Targets) -> WeeklyPlan {
    let mut days = complete_week(plan.days, p, t);
    let filter = FoodFilter::new(p);
    for day in &mut days {
        fix_day(day, p, t, &filter);
    }
    let mut plan = WeeklyPlan {
        days,
        notes: plan.notes,
        grocery_list: Vec::new(),
    };
    plan.grocery_list = grocery_list(&plan, catalogue());
    plan
}

/// `fix` for one day written apart from the others (a day call's answer).
pub fn fix_one_day(mut day: Day, p: &Profile, t: &Targets) -> Day {
    fix_day(&mut day, p, t, &FoodFilter::new(p));
    day
}

/// Days 1..7 in order, each once: the first of duplicates wins, days outside
/// the week are dropped, and a missing day becomes a rest day.
fn complete_week(days: Vec<Day>, p: &Profile, t: &Targets) -> Vec<Day> {
    let mut slots: [Option<Day>; 7] = Default::default();
    for day in days {
        if let Some(slot @ None) = slots.get_mut(usize::from(day.day).wrapping_sub(1)) {
            *slot = Some(day);
        }
    }
    (1..=7u8)
        .zip(slots)
        .map(|(n, slot)| slot.unwrap_or_else(|| rest_day(p, t, n)))
        .collect()
}

fn fix_day(day: &mut Day, p: &Profile, t: &Targets, filter: &FoodFilter) {
    day.name = weekday_name(day.day).to_owned();
    // Rest days carry no workout; an empty one from the model means the same.
    if day.workout.as_ref().is_some_and(|w| w.exercises.is_empty()) {
        day.workout = None;
    }
    let n = &mut day.nutrition;
    if n.meals.is_empty() {
        n.meals = day_meals(p, usize::from(day.day) - 1);
    }
    let slots = day_slots(p.meals_per_day);
    for (i, meal) in n.meals.iter_mut().enumerate() {
        if meal.slot.trim().is_empty() {
            meal.slot = slots.get(i).map_or("snack", |(_, s)| s.as_str()).to_owned();
        }
        meal.slot = meal.slot.trim().to_lowercase();
    }
    // A day that cannot be solved stays as it is: the validator names the
    // unknown foods or the missed targets, and the repair round follows.
    let _ = cook_day(n, catalogue(), filter, &day_targets(t));
    let r = &mut day.recovery;
    if r.supplement_card.is_empty() {
        r.supplement_card = card(p, day.is_training_day);
    }
    if r.sleep_hours <= 0.0 {
        r.sleep_hours = sleep_hours(p);
    }
    if day.reason.trim().is_empty() {
        day.reason = default_reason(day, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{Meal, Nutrition, Recovery, Workout};
    use crate::plan::nutrition::targets;
    use crate::plan::offline::generate;
    use crate::plan::profile::parse_profile;
    use crate::plan::validate::{Rule, validate};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    use serde_json::json;

    fn profile(diet: &str, goal: &str, sex: &str, weight: f64) -> Profile {
        parse_profile(&json!({
            "goal": goal, "sex": sex, "age": 35, "height_cm": 172, "weight_kg": weight,
            "activity_level": "lightly_active", "training_days": 3, "dietary_preference": diet
        }))
        .unwrap()
    }

    fn bare_day(n: u8) -> Day {
        Day {
            day: n,
            name: String::new(),
            is_training_day: false,
            workout: Some(Workout::default()),
            nutrition: Nutrition::default(),
            recovery: Recovery::default(),
            reason: String::new(),
        }
    }

    #[test]
    fn days_are_ordered_deduplicated_and_completed_with_rest_days() {
        let p = profile("vegan", "MAINTENANCE", "female", 60.0);
        let t = targets(&p);
        let mut first_three = bare_day(3);
        first_three.reason = "first".into();
        let days = vec![
            bare_day(5),
            first_three,
            bare_day(3),
            bare_day(9),
            bare_day(0),
            bare_day(1),
        ];
        let fixed = fix(
            WeeklyPlan {
                days,
                ..WeeklyPlan::default()
            },
            &p,
            &t,
        );
        let numbers: Vec<u8> = fixed.days.iter().map(|d| d.day).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(fixed.days[2].reason, "first");
        assert_eq!(fixed.days[1].name, "Tuesday");
        assert!(fixed.days[1].reason.contains("rest"));
    }

    #[test]
    fn empty_parts_are_filled_from_the_offline_templates_and_the_guide() {
        let p = profile("vegan", "FAT_LOSS", "male", 85.0);
        let t = targets(&p);
        let fixed = fix(WeeklyPlan::default(), &p, &t);
        for d in &fixed.days {
            assert!(d.workout.is_none() && !d.nutrition.meals.is_empty());
            assert!(!d.recovery.supplement_card.is_empty() && d.recovery.sleep_hours > 0.0);
            assert!(!d.reason.is_empty());
        }
        let card_names: Vec<&str> = fixed.days[0]
            .recovery
            .supplement_card
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert!(!card_names.contains(&"Whey protein"), "{card_names:?}");
    }

    #[test]
    fn a_valid_plan_passes_through_unchanged() {
        let p = profile("eggitarian", "MUSCLE_GAIN", "male", 80.0);
        let t = targets(&p);
        let plan = generate(&p, &t);
        assert_eq!(fix(plan.clone(), &p, &t), plan);
    }

    fn random_grams(rng: &mut StdRng) -> f64 {
        match rng.random_range(0..5) {
            0 => 0.0,
            1 => rng.random_range(0.0..5.0),
            2 => rng.random_range(1000.0..100_000.0),
            _ => rng.random_range(10.0..300.0),
        }
    }

    /// A day as a careless model might send it: random foods the person
    /// may eat, random grams and numbers, meals in any slot.
    fn random_day(rng: &mut StdRng, p: &Profile) -> Day {
        let filter = FoodFilter::new(p);
        let foods: Vec<_> = catalogue()
            .all()
            .iter()
            .filter(|f| filter.allows(f))
            .collect();
        let mut d = bare_day(rng.random_range(0..10));
        d.nutrition.kcal = rng.random_range(0..100_000);
        d.nutrition.meals = (0..rng.random_range(0..6))
            .map(|i| Meal {
                name: format!("Meal {i}"),
                slot: ["breakfast", "lunch", "dinner", "snack", ""][rng.random_range(0..5)].into(),
                ingredients: (0..rng.random_range(1..6))
                    .map(|_| crate::plan::model::Ingredient {
                        id: foods[rng.random_range(0..foods.len())].id.clone().into(),
                        grams: random_grams(rng),
                        kcal: random_grams(rng),
                        ..Default::default()
                    })
                    .collect(),
                kcal: random_grams(rng),
                ..Meal::default()
            })
            .collect();
        d
    }

    #[test]
    fn fixed_plans_state_only_numbers_that_recompute_and_say_so_when_off_target() {
        let mut rng = StdRng::seed_from_u64(0x5eed_f1c5);
        let profiles = [
            profile("vegan", "FAT_LOSS", "female", 45.0),
            profile("vegetarian", "MUSCLE_GAIN", "male", 140.0),
            profile("non_vegetarian", "RECOMPOSITION", "female", 72.0),
        ];
        let numeric = [
            Rule::Numbers,
            Rule::KcalTarget,
            Rule::ProteinTarget,
            Rule::FatTarget,
            Rule::CarbsTarget,
            Rule::Portion,
        ];
        let (mut days, mut solved) = (0, 0);
        for case in 0..60 {
            let p = &profiles[case % profiles.len()];
            let t = targets(p);
            let given = (0..rng.random_range(0..9))
                .map(|_| random_day(&mut rng, p))
                .collect();
            let fixed = fix(
                WeeklyPlan {
                    days: given,
                    ..WeeklyPlan::default()
                },
                p,
                &t,
            );
            assert_eq!(fixed.days.len(), 7, "case {case}");
            let violations = validate(&fixed, p, &t);
            for d in &fixed.days {
                days += 1;
                let flagged = violations
                    .iter()
                    .any(|v| v.day == Some(d.day) && numeric.contains(&v.rule));
                if !flagged {
                    solved += 1;
                    let n = &d.nutrition;
                    let off = |x: u32, target: u32, tol: f64| {
                        f64::from(x.abs_diff(target)) > f64::from(target) * tol + 0.5
                    };
                    assert!(
                        !off(n.kcal, t.kcal, 0.02) && !off(n.protein_g, t.protein_g, 0.05),
                        "case {case} day {}: unflagged but off target: {n:?}",
                        d.day
                    );
                }
            }
        }
        assert!(solved * 100 >= days * 95, "{solved} of {days} days solved");
    }
}
