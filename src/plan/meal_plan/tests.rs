use serde_json::json;

use super::offline::{MAX_PER_WEEK, generate, sketch};
use super::*;
use crate::plan::profile::{DietaryPreference, parse_profile};
use crate::plan::targets;
use crate::plan::validate::Rule;

fn profile(extra: serde_json::Value) -> Profile {
    let mut v = json!({
        "goal": "MAINTENANCE", "sex": "female", "age": 34, "height_cm": 168, "weight_kg": 63,
        "activity_level": "moderately_active", "training_days": 3, "dietary_preference": "vegetarian",
        "meals_per_day": 4
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    parse_profile(&v).unwrap()
}

fn rules(plan: &MealPlan, p: &Profile) -> Vec<Rule> {
    validate(plan, p, &targets(p))
        .into_iter()
        .map(|v| v.rule)
        .collect()
}

#[test]
fn every_diet_and_meal_count_gets_a_valid_offline_meal_plan() {
    for diet in DietaryPreference::ALL {
        for meals in [2, 3, 4, 5, 6] {
            let p = profile(json!({"dietary_preference": diet.as_str(), "meals_per_day": meals}));
            let t = targets(&p);
            let plan = generate(&p, &t);
            assert_eq!(validate(&plan, &p, &t), vec![], "{diet:?} x {meals}");
            assert_eq!(plan.days.len(), 7);
            assert!(
                plan.meals()
                    .all(|m| !m.steps.is_empty() && m.image == MealImage::Missing)
            );
        }
    }
}

#[test]
fn cuisines_time_and_allergies_are_kept() {
    let p = profile(json!({
        "dietary_preference": "vegan", "cuisine_preferences": ["Indian", "middle eastern"],
        "max_prep_minutes": 15, "allergies": ["peanuts", "gluten"]
    }));
    let t = targets(&p);
    let plan = generate(&p, &t);
    assert_eq!(validate(&plan, &p, &t), vec![]);
    for m in plan.meals() {
        assert!(m.prep_minutes.unwrap() <= 15, "{}", m.name);
        let c = m.cuisine.as_deref();
        assert!(
            matches!(
                c,
                None | Some("indian" | "middle_eastern" | "international")
            ),
            "{}: {c:?}",
            m.name
        );
    }
}

#[test]
fn no_dish_appears_more_than_twice_a_week() {
    let p = profile(
        json!({"meals_per_day": 6, "dietary_preference": "vegan", "allergies": ["soy", "tree nuts"]}),
    );
    let plan = generate(&p, &targets(&p));
    let mut counts = std::collections::HashMap::new();
    for m in plan.meals() {
        *counts.entry(m.name.clone()).or_insert(0) += 1;
    }
    assert!(counts.values().all(|n| *n <= MAX_PER_WEEK), "{counts:?}");
}

#[test]
fn a_model_answer_is_fixed_into_a_valid_plan_and_its_breaches_are_named() {
    let p = profile(json!({"max_prep_minutes": 20, "cuisine_preferences": ["italian"]}));
    let t = targets(&p);
    let answer = for_model(&sketch(&p, &t));
    assert!(answer["days"][0]["meals"][0].get("kcal").is_none());
    let plan = fix(parse_meal_plan(answer.clone()).unwrap(), &p, &t);
    assert_eq!(validate(&plan, &p, &t), vec![]);

    let mut bad = answer;
    let meal = &mut bad["days"][1]["meals"][0];
    meal["prep_minutes"] = json!(90);
    meal["cuisine"] = json!("mexican");
    meal["steps"] = json!([]);
    bad["days"][2]["meals"][0]["name"] = bad["days"][1]["meals"][1]["name"].clone();
    bad["days"][3]["meals"][0]["name"] = bad["days"][1]["meals"][1]["name"].clone();
    let plan = fix(parse_meal_plan(bad).unwrap(), &p, &t);
    let broken = rules(&plan, &p);
    for r in [
        Rule::PrepTime,
        Rule::Cuisine,
        Rule::DayIncomplete,
        Rule::DishRepeated,
    ] {
        assert!(broken.contains(&r), "{r:?} in {broken:?}");
    }
}

#[test]
fn a_missing_day_is_filled_and_weekday_names_are_read() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut answer = for_model(&sketch(&p, &t));
    answer["days"][0]["day"] = json!("Monday");
    answer["days"].as_array_mut().unwrap().remove(4);
    let plan = fix(
        parse_meal_plan(json!({"meal_plan": answer})).unwrap(),
        &p,
        &t,
    );
    let days: Vec<u8> = plan.days.iter().map(|d| d.day).collect();
    assert_eq!(days, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(validate(&plan, &p, &t), vec![]);
}

#[test]
fn the_saved_shape_has_the_documented_fields() {
    let p = profile(json!({}));
    let plan = generate(&p, &targets(&p));
    let v = serde_json::to_value(&plan).unwrap();
    let day = &v["days"][0];
    for k in ["day", "meals", "kcal", "protein_g", "fat_g", "carbs_g"] {
        assert!(day.get(k).is_some(), "day.{k}");
    }
    let meal = &day["meals"][0];
    for k in [
        "name",
        "slot",
        "cuisine",
        "ingredients",
        "steps",
        "prep_minutes",
        "cook_minutes",
        "kcal",
        "protein_g",
        "fat_g",
        "carbs_g",
        "image",
    ] {
        assert!(meal.get(k).is_some(), "meal.{k}: {meal}");
    }
    assert!(meal["image"].is_null() && meal.get("items").is_none());
    let back: MealPlan = serde_json::from_value(v).unwrap();
    assert_eq!(back, plan, "a saved plan reads back the same");
}
