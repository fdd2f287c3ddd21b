use super::*;
use crate::plan::nutrition::targets;
use crate::plan::profile::parse_profile;
use crate::plan::validate::validate;
use serde_json::{Value, json};

const GOALS: [&str; 4] = ["MUSCLE_GAIN", "FAT_LOSS", "MAINTENANCE", "RECOMPOSITION"];
const DIETS: [&str; 4] = ["vegan", "vegetarian", "eggitarian", "non_vegetarian"];

fn equipment_sets() -> [Value; 4] {
    [
        json!(["bodyweight"]),
        json!(["dumbbells"]),
        json!(["resistance_bands", "pull_up_bar"]),
        json!(["full_gym"]),
    ]
}

fn profile(goal: &str, diet: &str, equipment: &Value, days: u8, extra: Value) -> Profile {
    let mut v = json!({
        "goal": goal, "sex": if days.is_multiple_of(2) { "female" } else { "male" }, "age": 20 + days * 7,
        "height_cm": 170, "weight_kg": 72, "activity_level": "moderately_active",
        "training_days": days, "dietary_preference": diet, "equipment": equipment
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    parse_profile(&v).unwrap()
}

fn assert_valid(p: &Profile, label: &str) {
    let t = targets(p);
    let plan = generate(p, &t);
    let violations = validate(&plan, p, &t);
    assert!(violations.is_empty(), "{label}: {violations:#?}");
}

#[test]
fn every_goal_diet_equipment_and_training_day_combination_passes_the_validator() {
    let mut checked = 0;
    for goal in GOALS {
        for diet in DIETS {
            for equipment in &equipment_sets() {
                for days in 1..=7 {
                    let p = profile(goal, diet, equipment, days, json!({}));
                    assert_valid(&p, &format!("{goal} {diet} {equipment} {days} days"));
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 4 * 4 * 7);
}

#[test]
fn every_meals_per_day_and_session_length_passes_the_validator() {
    for meals in 2..=6 {
        for minutes in [15, 30, 60, 180] {
            let extra = json!({ "meals_per_day": meals, "session_minutes": minutes });
            let p = profile(
                "FAT_LOSS",
                "eggitarian",
                &json!(["dumbbells", "bench"]),
                4,
                extra,
            );
            assert_valid(&p, &format!("{meals} meals, {minutes} minutes"));
        }
    }
}

#[test]
fn allergies_avoided_exercises_and_injuries_are_respected() {
    let extra = json!({
        "allergies": ["peanuts", "dairy", "gluten", "shellfish"],
        "avoided_exercises": ["burpees", "push-ups", "deadlift"],
        "injuries": ["left knee (ACL)", "lower back pain"],
        "meals_per_day": 5
    });
    for diet in DIETS {
        for equipment in &equipment_sets() {
            let p = profile("RECOMPOSITION", diet, equipment, 5, extra.clone());
            assert_valid(&p, &format!("{diet} {equipment}"));
        }
    }
}

#[test]
fn the_same_profile_always_gives_the_same_plan() {
    let p = profile("MUSCLE_GAIN", "vegan", &json!(["full_gym"]), 5, json!({}));
    let t = targets(&p);
    assert_eq!(generate(&p, &t), generate(&p, &t));
}

#[test]
fn training_days_follow_the_spread_and_split() {
    let p = profile("MAINTENANCE", "vegan", &json!(["full_gym"]), 4, json!({}));
    let t = targets(&p);
    let plan = generate(&p, &t);
    let training: Vec<u8> = plan
        .days
        .iter()
        .filter(|d| d.is_training_day)
        .map(|d| d.day)
        .collect();
    assert_eq!(training, [1, 2, 4, 5]);
    let foci: Vec<&str> = plan
        .days
        .iter()
        .filter_map(|d| d.workout.as_ref())
        .map(|w| w.focus.as_str())
        .collect();
    assert_eq!(
        foci,
        ["Upper body", "Lower body", "Upper body", "Lower body"]
    );
    assert!(plan.days[2].workout.is_none());
    assert!(
        plan.days[2].reason.contains("after the Lower body session"),
        "{}",
        plan.days[2].reason
    );
}

#[test]
fn a_floor_clamped_plan_says_so_in_its_notes() {
    let mut p = profile("FAT_LOSS", "vegan", &json!(["bodyweight"]), 3, json!({}));
    p.sex = crate::plan::profile::Sex::Female;
    p.weight_kg = 45.0;
    p.height_cm = 150.0;
    p.age = 70;
    p.activity_level = crate::plan::profile::ActivityLevel::Sedentary;
    let t = targets(&p);
    assert!(t.clamped_to_floor);
    assert!(
        generate(&p, &t)
            .notes
            .unwrap()
            .contains("1200 kcal minimum")
    );
}
