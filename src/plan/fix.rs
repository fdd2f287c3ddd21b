//! Repairs what can be repaired without the model: the order and set of the
//! seven days, the exact targets, and missing reasons and supplement cards.
//! It never touches food choices or exercises, so the validator still
//! catches a broken diet or an avoided exercise.

use super::meals::day_meals;
use super::model::{Day, WeeklyPlan, weekday_name};
use super::nutrition::Targets;
use super::offline::{default_reason, rest_day, sleep_hours};
use super::profile::Profile;
use super::scale::scale_meals;
use super::supplements::card;

pub fn fix(plan: WeeklyPlan, p: &Profile, t: &Targets) -> WeeklyPlan {
    let mut days = complete_week(plan.days, p, t);
    for day in &mut days {
        fix_day(day, p, t);
    }
    WeeklyPlan {
        days,
        notes: plan.notes,
    }
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

fn fix_day(day: &mut Day, p: &Profile, t: &Targets) {
    day.name = weekday_name(day.day).to_owned();
    // Rest days carry no workout; an empty one from the model means the same.
    if day.workout.as_ref().is_some_and(|w| w.exercises.is_empty()) {
        day.workout = None;
    }
    let n = &mut day.nutrition;
    if n.meals.is_empty() {
        n.meals = day_meals(p, usize::from(day.day) - 1);
    }
    n.kcal = t.kcal;
    n.protein_g = t.protein_g;
    scale_meals(&mut n.meals, t.kcal, t.protein_g);
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
        let fixed = fix(WeeklyPlan { days, notes: None }, &p, &t);
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

    fn random_amount(rng: &mut StdRng) -> u32 {
        match rng.random_range(0..6) {
            0 => 0,
            1 => u32::MAX - rng.random_range(0..1000),
            2 => rng.random_range(0..10),
            3 => rng.random_range(0..100_000_000),
            _ => rng.random_range(50..1500),
        }
    }

    fn random_day(rng: &mut StdRng) -> Day {
        let mut d = bare_day(rng.random_range(0..10));
        d.nutrition.kcal = random_amount(rng);
        d.nutrition.protein_g = random_amount(rng);
        d.nutrition.meals = (0..rng.random_range(0..8))
            .map(|i| Meal {
                name: format!("Meal {i}: rice and beans"),
                items: vec!["rice".into(), "beans".into()],
                kcal: random_amount(rng),
                protein_g: random_amount(rng),
            })
            .collect();
        d
    }

    #[test]
    fn fixed_plans_always_meet_the_targets_exactly_for_arbitrary_meals() {
        let mut rng = StdRng::seed_from_u64(0x5eed_f1c5);
        let profiles = [
            profile("vegan", "FAT_LOSS", "female", 45.0),
            profile("vegetarian", "MUSCLE_GAIN", "male", 140.0),
            profile("non_vegetarian", "RECOMPOSITION", "female", 72.0),
        ];
        let checked = [Rule::SevenDays, Rule::KcalTarget, Rule::ProteinTarget];
        for case in 0..3000 {
            let p = &profiles[case % profiles.len()];
            let t = targets(p);
            let days = (0..rng.random_range(0..12))
                .map(|_| random_day(&mut rng))
                .collect();
            let fixed = fix(WeeklyPlan { days, notes: None }, p, &t);
            for d in &fixed.days {
                let kcal: u64 = d.nutrition.meals.iter().map(|m| u64::from(m.kcal)).sum();
                let protein: u64 = d
                    .nutrition
                    .meals
                    .iter()
                    .map(|m| u64::from(m.protein_g))
                    .sum();
                assert_eq!(
                    (kcal, protein),
                    (u64::from(t.kcal), u64::from(t.protein_g)),
                    "case {case}"
                );
            }
            let broken: Vec<_> = validate(&fixed, p, &t)
                .into_iter()
                .filter(|v| checked.contains(&v.rule))
                .collect();
            assert!(broken.is_empty(), "case {case}: {broken:?}");
        }
    }
}
