use super::*;
use crate::plan::foods::{FoodFilter, catalogue};
use crate::plan::menu::{cook_day, day_targets};
use crate::plan::model::{Exercise, Ingredient, Meal, Nutrition, Recovery, Workout};
use crate::plan::nutrition::targets;
use crate::plan::profile::parse_profile;
use serde_json::json;

fn profile(extra: serde_json::Value) -> Profile {
    let mut v = json!({
        "goal": "MAINTENANCE", "sex": "male", "age": 30, "height_cm": 180, "weight_kg": 80,
        "activity_level": "active", "training_days": 3, "dietary_preference": "vegetarian",
        "equipment": ["dumbbells"]
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    parse_profile(&v).unwrap()
}

fn exercise(name: &str, equipment: &str) -> Exercise {
    Exercise {
        name: name.into(),
        sets: 3,
        reps: "8-12".into(),
        rest_seconds: 90,
        equipment: equipment.into(),
        muscle_group: "chest".into(),
        rir: Some(2),
        progression: "Add a rep per set each week up to 12, then add load.".into(),
    }
}

/// A vegetarian's day of real foods, its portions solved from the table.
fn meals(t: &Targets) -> Nutrition {
    let meal = |name: &str, slot: &str, foods: &[(&str, f64)]| Meal {
        name: name.into(),
        slot: slot.into(),
        ingredients: foods
            .iter()
            .map(|(id, grams)| Ingredient {
                id: id.to_string().into(),
                grams: *grams,
                ..Ingredient::default()
            })
            .collect(),
        ..Meal::default()
    };
    let mut n = Nutrition {
        meals: vec![
            meal(
                "Breakfast: oats with milk and banana",
                "breakfast",
                &[
                    ("rolled_oats", 80.0),
                    ("milk_2pct", 250.0),
                    ("banana", 118.0),
                ],
            ),
            meal(
                "Lunch: dal with rice",
                "lunch",
                &[
                    ("toor_dal", 70.0),
                    ("rice_brown_raw", 80.0),
                    ("spinach", 80.0),
                    ("canola_oil", 10.0),
                ],
            ),
            meal(
                "Dinner: paneer curry",
                "dinner",
                &[
                    ("paneer", 150.0),
                    ("chapati", 136.0),
                    ("tomatoes", 100.0),
                    ("ghee", 10.0),
                ],
            ),
        ],
        ..Nutrition::default()
    };
    let p = profile(json!({}));
    cook_day(&mut n, catalogue(), &FoodFilter::new(&p), &day_targets(t)).expect("solvable");
    n
}

fn day(n: u8, training: bool, t: &Targets) -> Day {
    Day {
        day: n,
        name: crate::plan::model::weekday_name(n).into(),
        is_training_day: training,
        workout: training.then(|| Workout {
            focus: "Full body".into(),
            duration_minutes: 60,
            warm_up: vec![],
            exercises: vec![
                exercise("Push-up", "bodyweight"),
                exercise("Goblet squat", "dumbbells"),
            ],
        }),
        nutrition: meals(t),
        recovery: Recovery {
            sleep_hours: 8.0,
            mobility: vec!["hip flexor stretch".into()],
            supplement_card: vec![],
            notes: String::new(),
        },
        reason: "Because.".into(),
    }
}

/// The week of `day`s with the offline planner's sessions on its training
/// days, so that the training rules hold too.
fn plan(t: &Targets) -> WeeklyPlan {
    let p = profile(json!({}));
    let mut sessions =
        crate::plan::sessions::week_workouts(crate::plan::offline::split(3), &p).into_iter();
    let mut days: Vec<Day> = (1..=7).map(|n| day(n, [1, 3, 5].contains(&n), t)).collect();
    for d in days.iter_mut().filter(|d| d.is_training_day) {
        d.workout = sessions.next();
    }
    WeeklyPlan {
        days,
        ..WeeklyPlan::default()
    }
}

fn rules(v: &[Violation]) -> Vec<&'static str> {
    rules_broken(v)
}

#[test]
fn a_complete_plan_that_keeps_every_rule_has_no_violations() {
    let p = profile(json!({}));
    let t = targets(&p);
    assert_eq!(validate(&plan(&t), &p, &t), vec![]);
}

#[test]
fn a_missing_or_duplicated_day_breaks_the_seven_days_rule() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut short = plan(&t);
    short.days.pop();
    assert_eq!(rules(&validate(&short, &p, &t)), ["seven_days"]);
    let mut dup = plan(&t);
    dup.days[6].day = 6;
    let v = validate(&dup, &p, &t);
    assert_eq!(rules(&v), ["seven_days"]);
    assert!(v[0].detail.contains("[1, 2, 3, 4, 5, 6, 6]"), "{}", v[0]);
}

#[test]
fn the_number_of_training_days_must_match_the_profile() {
    let p = profile(json!({ "training_days": 4 }));
    let t = targets(&p);
    let v = validate(&plan(&t), &p, &t);
    assert_eq!(rules(&v), ["training_days_mismatch"]);
    assert_eq!(
        v[0].to_string(),
        "training_days_mismatch: 3 training days, the profile asks for 4"
    );
}

#[test]
fn a_rest_day_with_exercises_or_a_training_day_without_is_flagged() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut pl = plan(&t);
    pl.days[1].workout = pl.days[0].workout.clone();
    pl.days[0].workout = None;
    let v = validate(&pl, &p, &t);
    assert!(
        v.iter()
            .any(|x| x.rule == Rule::TrainingDaysMismatch && x.day == Some(2))
    );
    assert!(
        v.iter()
            .any(|x| x.rule == Rule::DayIncomplete && x.day == Some(1))
    );
}

#[test]
fn a_day_without_meals_reason_or_sleep_is_incomplete() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut pl = plan(&t);
    pl.days[3].reason = "  ".into();
    pl.days[3].recovery.sleep_hours = 0.0;
    pl.days[4].nutrition.meals.clear();
    let v = validate(&pl, &p, &t);
    let incomplete: Vec<_> = v.iter().filter(|x| x.rule == Rule::DayIncomplete).collect();
    assert_eq!(incomplete.len(), 3, "{v:?}");
}

#[test]
fn avoided_exercises_match_either_way_after_normalizing() {
    let avoided = vec![
        "Lunges".to_owned(),
        "barbell back squat".to_owned(),
        "push ups".to_owned(),
    ];
    assert_eq!(avoided_match("Walking lunge", &avoided), Some("Lunges"));
    assert_eq!(avoided_match("Squat", &avoided), Some("barbell back squat"));
    assert_eq!(avoided_match("Push-Up", &avoided), Some("push ups"));
    assert_eq!(avoided_match("Pushups", &avoided), Some("push ups"));
    assert_eq!(avoided_match("Plank", &avoided), None);
    assert_eq!(avoided_match("---", &avoided), None);
}

#[test]
fn an_avoided_exercise_in_the_plan_is_a_violation() {
    let p = profile(json!({ "avoided_exercises": ["goblet squats"] }));
    let t = targets(&p);
    let pl = plan(&t);
    let goblets = pl
        .days
        .iter()
        .filter_map(|d| d.workout.as_ref())
        .flat_map(|w| &w.exercises)
        .filter(|e| e.name == "Goblet squat")
        .count();
    assert!(goblets >= 1);
    let v = validate(&pl, &p, &t);
    assert_eq!(rules(&v), ["avoided_exercise"]);
    assert_eq!(v.len(), goblets);
}

#[test]
fn meat_in_a_vegetarian_plan_is_named_in_the_violation() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut pl = plan(&t);
    pl.days[2].nutrition.meals[1].items[0] = "Butter chicken".into();
    let v = validate(&pl, &p, &t);
    assert_eq!(rules(&v), ["diet"]);
    assert_eq!(
        v[0].to_string(),
        "day 3: diet: \"Butter chicken\" contains \"chicken\" (meat), not allowed for vegetarian"
    );
}

#[test]
fn an_allergen_in_any_food_is_a_violation_by_its_tag_and_by_its_name() {
    let p = profile(json!({ "allergies": ["dairy"] }));
    let t = targets(&p);
    let v = validate(&plan(&t), &p, &t);
    assert_eq!(rules(&v), ["allergy"]);
    let day1: Vec<String> = v
        .iter()
        .filter(|x| x.day == Some(1))
        .map(|x| x.to_string())
        .collect();
    assert!(
        day1.iter().any(|d| d.contains("Paneer contains milk")),
        "the tag: {day1:?}"
    );
    assert!(
        day1.iter().any(|d| d.contains("(allergy: dairy)")),
        "the name: {day1:?}"
    );
}

#[test]
fn a_food_outside_the_table_is_an_unknown_food() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut pl = plan(&t);
    pl.days[4].nutrition.meals[0].ingredients[0].id = "unicorn_steak".into();
    let v = validate(&pl, &p, &t);
    assert_eq!(rules(&v), ["unknown_food"]);
    assert!(v[0].detail.contains("\"unicorn_steak\""), "{}", v[0]);
}

#[test]
fn targets_are_met_within_tolerance_and_every_number_recomputes() {
    let p = profile(json!({}));
    let t = targets(&p);
    assert_eq!(validate(&plan(&t), &p, &t), vec![]);
    let mut pl = plan(&t);
    // A day 5 % over its kcal target, a meal that states more protein than
    // its ingredients have, an ingredient whose grams changed alone.
    pl.days[0].nutrition.kcal = t.kcal + t.kcal / 20;
    pl.days[1].nutrition.meals[0].protein_g += 10.0;
    let cat = catalogue();
    let inside = pl.days[2].nutrition.meals[1]
        .ingredients
        .iter_mut()
        .find(|i| {
            let f = cat.get(&i.id).unwrap();
            i.grams - 1.0 >= f.min_g
        })
        .expect("an ingredient above its minimum");
    inside.grams -= 1.0;
    let v = validate(&pl, &p, &t);
    assert_eq!(rules(&v), ["kcal_target", "numbers"]);
    let days: Vec<Option<u8>> = v.iter().map(|x| x.day).collect();
    assert!(days.contains(&Some(1)) && days.contains(&Some(2)) && days.contains(&Some(3)));
}

#[test]
fn a_portion_outside_the_foods_bounds_is_named() {
    let p = profile(json!({}));
    let t = targets(&p);
    let mut pl = plan(&t);
    let oats = catalogue().get("rolled_oats").unwrap();
    pl.days[3].nutrition.meals[0].ingredients[0] = crate::plan::menu::ingredient(oats, 400.0);
    let v = validate(&pl, &p, &t);
    assert!(rules(&v).contains(&"portion"), "{v:?}");
    assert!(
        v.iter().any(|x| x
            .detail
            .contains("400 g of Rolled oats is outside 30-120 g")),
        "{v:?}"
    );
}

#[test]
fn equipment_must_be_owned_with_alternatives_and_combinations_understood() {
    let p = profile(json!({ "equipment": ["dumbbells", "pull-up bar"] }));
    let gym = profile(json!({ "equipment": ["full_gym"] }));
    assert_eq!(equipment_problem("Dumbbell", &p), None);
    assert_eq!(equipment_problem("barbell or dumbbells", &p), None);
    assert_eq!(equipment_problem("Pull-up bar + bodyweight", &p), None);
    assert_eq!(equipment_problem("barbell, bench", &gym), None);
    let missing = equipment_problem("barbell, bench", &p).unwrap();
    assert!(missing.contains("needs barbell"), "{missing}");
    assert!(
        equipment_problem("hoverboard", &gym)
            .unwrap()
            .contains("unknown equipment")
    );
    assert!(equipment_problem("", &gym).is_some());
}

#[test]
fn a_table_foods_name_is_no_diet_keyword_but_a_dish_name_still_is() {
    let p = profile(json!({"dietary_preference": "vegan"}));
    let cat = catalogue();
    let apple = crate::plan::menu::ingredient(cat.get("custard_apple").unwrap(), 150.0);
    let meal = |name: &str| Meal {
        name: name.into(),
        slot: "snack".into(),
        ingredients: vec![apple.clone()],
        ..Meal::default()
    };
    let diet_hits = |name: &str| {
        let n = Nutrition {
            meals: vec![meal(name)],
            ..Nutrition::default()
        };
        let mut out = Vec::new();
        check_day_food(1, &n, &p, &targets(&p), &mut out);
        out.into_iter().filter(|v| v.rule == Rule::Diet).count()
    };
    assert_eq!(diet_hits("Custard apple (sitaphal) with lime"), 0);
    assert_eq!(
        diet_hits("Custard apple (sitaphal) custard"),
        1,
        "custard outside the food's name"
    );
}
