//! Answers of the mock LLM for plan prompts (tests, `plan-worker mock-llm`
//! and the pipeline bench). Every plan prompt ends with the person's profile
//! and targets as tagged JSON, so a fake model can answer like a good one:
//! the structure and the details of the offline generator's plan.

use serde_json::{Value, json};

use super::mock_llm::{MockChatRequest, MockLlmOptions, Script};
use crate::plan::foods::catalogue;
use crate::plan::meal_plan;
use crate::plan::meal_plan::prompt::{MEAL_PLAN_TAG, SWAP_TAG};
use crate::plan::model::{DayOutline, Ingredient, WeekStructure};
use crate::plan::prompt::day::{DAY_TAG, DayPart, day_for_model};
use crate::plan::prompt::for_model;
use crate::plan::{Targets, WeeklyPlan, extract_tagged_json, parse_profile};

/// The named responder whose first plan breaks a vegan or vegetarian diet
/// (the repair round then gets a good plan).
pub const DIET_BREAKING: &str = "diet_breaking";
/// The named responder that breaks the diet in every answer, repair included.
pub const ALWAYS_DIET_BREAKING: &str = "always_diet_breaking";

/// The named responder whose first plan has no warm-ups, reps in reserve
/// or progressions and no hinge (the repair round then gets a good plan).
pub const TRAINING_BREAKING: &str = "training_breaking";

/// The named responder whose first plan uses a food id that is not in the
/// table (the repair round then gets a good plan).
pub const UNKNOWN_FOOD: &str = "unknown_food";
/// The named responder that uses an unknown food id in every answer.
pub const ALWAYS_UNKNOWN_FOOD: &str = "always_unknown_food";
/// The id those answers use.
pub const MADE_UP_FOOD_ID: &str = "dragon_meat_smoked";

/// Mock options answering plan prompts, with the named responders above.
pub fn mock_options(script: Script) -> MockLlmOptions {
    MockLlmOptions::new(script)
        .with_responder(good_answer)
        .with_named_responder(DIET_BREAKING, |req| broken_answer(req, false))
        .with_named_responder(ALWAYS_DIET_BREAKING, |req| broken_answer(req, true))
        .with_named_responder(TRAINING_BREAKING, training_breaking_answer)
        .with_named_responder(UNKNOWN_FOOD, |req| unknown_food_answer(req, false))
        .with_named_responder(ALWAYS_UNKNOWN_FOOD, |req| unknown_food_answer(req, true))
}

enum Stage {
    Structure,
    Details,
    Repair,
    /// One day of stage 2, or one part of it (or its repair).
    Day(u8, DayPart),
    MealPlan,
    MealSwap,
}

fn stage(text: &str) -> Stage {
    if text.contains(&format!("<{SWAP_TAG}>")) {
        Stage::MealSwap
    } else if text.contains(&format!("<{MEAL_PLAN_TAG}>")) {
        Stage::MealPlan
    } else if let Some(day) = extract_tagged_json(text, DAY_TAG) {
        let part = match day["part"].as_str() {
            Some("session") => DayPart::Session,
            Some("meals") => DayPart::Meals,
            _ => DayPart::Whole,
        };
        Stage::Day(day["day"].as_u64().map_or(0, |d| d as u8), part)
    } else if text.contains("The plan below breaks these rules") {
        Stage::Repair
    } else if text.contains("<structure_json>") {
        Stage::Details
    } else {
        Stage::Structure
    }
}

/// The offline plan for the person in the prompt, if the prompt has one.
fn plan_for(text: &str) -> Option<WeeklyPlan> {
    let profile = parse_profile(&extract_tagged_json(text, "profile_json")?).ok()?;
    let targets: Targets =
        serde_json::from_value(extract_tagged_json(text, "targets_json")?).ok()?;
    // A model sends ids and approximate grams: the unsolved week is that.
    Some(crate::plan::offline::sketch(&profile, &targets))
}

/// A correct answer to any plan prompt (stage 1, stage 2 or repair).
pub fn good_answer(req: &MockChatRequest) -> Value {
    let text = req.last_user_message().unwrap_or_default();
    let Some(plan) = plan_for(text) else {
        return json!({"error": "the mock found no <profile_json>/<targets_json> in the prompt"});
    };
    match stage(text) {
        Stage::Structure => json!(structure_of(&plan)),
        Stage::Details | Stage::Repair => for_model(&plan),
        Stage::Day(n, part) => day_answer(&plan, n, part),
        Stage::MealPlan | Stage::MealSwap => meal_answer(text),
    }
}

/// Day `n` of the week (or the part asked for), as a day call's answer.
fn day_answer(plan: &WeeklyPlan, n: u8, part: DayPart) -> Value {
    let Some(day) = plan.days.iter().find(|d| d.day == n) else {
        return json!({"error": "no such day"});
    };
    let mut day = day_for_model(day);
    match part {
        DayPart::Whole => day,
        DayPart::Session => day["workout"].take(),
        DayPart::Meals => {
            if let Some(obj) = day.as_object_mut() {
                obj.remove("workout");
            }
            day
        }
    }
}

/// A meal plan answer (the offline week, unsolved), or a swap's new dish: a
/// recipe of the slot that the week does not have.
fn meal_answer(text: &str) -> Value {
    let (Some(profile), Some(targets)) = (
        extract_tagged_json(text, "profile_json").and_then(|v| parse_profile(&v).ok()),
        extract_tagged_json(text, "targets_json")
            .and_then(|v| serde_json::from_value::<Targets>(v).ok()),
    ) else {
        return json!({"error": "the mock found no <profile_json>/<targets_json> in the prompt"});
    };
    let Some(swap) = extract_tagged_json(text, SWAP_TAG) else {
        let week = meal_plan::for_model(&meal_plan::offline::sketch(&profile, &targets));
        return match extract_tagged_json(text, DAY_TAG).and_then(|d| d["day"].as_u64()) {
            Some(n) => week["days"]
                .as_array()
                .and_then(|days| days.iter().find(|d| d["day"] == n))
                .cloned()
                .unwrap_or_else(|| json!({"error": "no such day"})),
            None => week,
        };
    };
    let avoid: Vec<String> = serde_json::from_value(swap["avoid"].clone()).unwrap_or_default();
    meal_plan::offline::dishes_for(&profile)
        .into_iter()
        .find(|d| swap["slot"] == d.slot.as_str() && !avoid.contains(&d.name))
        .map_or_else(
            || json!({"error": "no other dish of the slot"}),
            |d| meal_plan::meal_for_model(&meal_plan::offline::from_dish(d)),
        )
}

/// Like `good_answer`, but stage 2 is a week a coach would not sign: no
/// warm-ups, no reps in reserve or progressions, no hinge.
fn training_breaking_answer(req: &MockChatRequest) -> Value {
    let text = req.last_user_message().unwrap_or_default();
    match (stage(text), plan_for(text)) {
        (Stage::Details, Some(plan)) => for_model(&untrained(plan)),
        (Stage::Day(n, part), Some(plan)) if !is_repair(text) => {
            day_answer(&untrained(plan), n, part)
        }
        _ => good_answer(req),
    }
}

fn untrained(mut plan: WeeklyPlan) -> WeeklyPlan {
    for w in plan.days.iter_mut().filter_map(|d| d.workout.as_mut()) {
        w.warm_up.clear();
        w.exercises
            .retain(|e| crate::plan::training::traits(e).pattern != "hinge");
        for e in &mut w.exercises {
            e.rir = None;
            e.progression.clear();
        }
    }
    plan
}

/// A repair round's prompt, of the week or of one day.
fn is_repair(text: &str) -> bool {
    text.contains("The plan below breaks these rules")
        || text.contains("The day below breaks these rules")
}

/// Like `good_answer`, but stage 2 (and with `always`, the repair too) puts
/// chicken in every meal.
fn broken_answer(req: &MockChatRequest, always: bool) -> Value {
    let text = req.last_user_message().unwrap_or_default();
    match (stage(text), plan_for(text)) {
        (Stage::MealPlan, _) => broken_meal_answer(text, always),
        (Stage::Details, Some(plan)) => for_model(&with_chicken(plan)),
        (Stage::Day(n, part), Some(plan)) if always || !is_repair(text) => {
            day_answer(&with_chicken(plan), n, part)
        }
        (Stage::Repair, Some(plan)) if always => for_model(&with_chicken(plan)),
        _ => good_answer(req),
    }
}

/// Like `good_answer`, but stage 2 (and with `always`, the repair too) adds
/// a food that is not in the table to the first meal of every day.
fn unknown_food_answer(req: &MockChatRequest, always: bool) -> Value {
    let text = req.last_user_message().unwrap_or_default();
    match (stage(text), plan_for(text)) {
        (Stage::Details, Some(plan)) => for_model(&with_unknown_food(plan)),
        (Stage::Day(n, part), Some(plan)) if always || !is_repair(text) => {
            day_answer(&with_unknown_food(plan), n, part)
        }
        (Stage::Repair, Some(plan)) if always => for_model(&with_unknown_food(plan)),
        _ => good_answer(req),
    }
}

/// A meal plan with chicken in every meal; only the repair (unless
/// `always`) is right.
fn broken_meal_answer(text: &str, always: bool) -> Value {
    let mut answer = meal_answer(text);
    if is_meal_repair(text) && !always {
        return answer;
    }
    if answer.get("meals").is_some() {
        // A day call's answer: one day.
        answer = json!({"days": [answer]});
        add_chicken(&mut answer);
        return answer["days"][0].take();
    }
    add_chicken(&mut answer);
    answer
}

fn is_meal_repair(text: &str) -> bool {
    text.contains("The meal plan below breaks these rules")
        || text.contains("The day below breaks these rules")
}

fn add_chicken(answer: &mut Value) {
    let chicken = catalogue()
        .all()
        .iter()
        .find(|f| f.group == "poultry")
        .expect("the food table has poultry");
    for day in answer["days"].as_array_mut().into_iter().flatten() {
        for meal in day["meals"].as_array_mut().into_iter().flatten() {
            if let Some(list) = meal["ingredients"].as_array_mut() {
                list.push(json!({"id": chicken.id, "grams": 120}));
            }
        }
    }
}

fn with_unknown_food(mut plan: WeeklyPlan) -> WeeklyPlan {
    for day in &mut plan.days {
        if let Some(meal) = day.nutrition.meals.first_mut() {
            meal.ingredients.push(Ingredient {
                id: MADE_UP_FOOD_ID.into(),
                grams: 100.0,
                ..Ingredient::default()
            });
        }
    }
    plan
}

fn with_chicken(mut plan: WeeklyPlan) -> WeeklyPlan {
    let chicken = catalogue()
        .all()
        .iter()
        .find(|f| f.group == "poultry")
        .expect("the food table has poultry");
    for day in &mut plan.days {
        for meal in &mut day.nutrition.meals {
            meal.name = format!("Grilled chicken with {}", meal.name);
            meal.ingredients.push(Ingredient {
                id: chicken.id.as_str().into(),
                grams: 120.0,
                ..Ingredient::default()
            });
        }
    }
    plan
}

fn structure_of(plan: &WeeklyPlan) -> WeekStructure {
    WeekStructure {
        days: plan.days.iter().map(DayOutline::of).collect(),
        rationale: "Training days spread through the week with rest between hard sessions."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{
        details_prompt, fix, parse_plan, parse_structure, structure_prompt, targets, validate,
    };

    /// 500 profiles of the matrix (every training day count, session
    /// length, level, equipment set, injury and avoided set) through the
    /// offline planner and through both stages of the mock model: every
    /// week keeps every training rule.
    #[test]
    fn a_matrix_of_500_profiles_keeps_every_training_rule_offline_and_through_the_model() {
        use crate::dev::bench::nutrition::matrix_profile;
        use crate::plan::validate::training_violations;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7ea1);
        let mut injured = 0;
        for i in 0..500 {
            let mut v = matrix_profile(i, &mut rng);
            v["training_days"] = json!(i % 7 + 1);
            let p = parse_profile(&v).unwrap();
            injured += usize::from(!p.injuries.is_empty());
            let t = targets(&p);
            let offline = crate::plan::offline::sketch(&p, &t);
            let broken = training_violations(&offline, &p);
            assert!(broken.is_empty(), "offline, profile {i} {v}: {broken:?}");

            let (_, user) = structure_prompt(&p, &t);
            let structure = parse_structure(good_answer(&request(user))).unwrap();
            let (_, user) = details_prompt(&p, &t, &structure);
            let tt = crate::plan::training::training_targets(&p);
            let volume = format!(
                "{}-{} hard sets per week",
                tt.weekly_sets_min, tt.weekly_sets_max
            );
            assert!(
                user.contains(&volume),
                "the prompt states the person's volume"
            );
            let model = parse_plan(good_answer(&request(user))).unwrap();
            let sessions =
                |w: &WeeklyPlan| w.days.iter().map(|d| d.workout.clone()).collect::<Vec<_>>();
            assert!(
                sessions(&model) == sessions(&offline),
                "profile {i}: the round trip through the model keeps the sessions"
            );
            assert!(
                training_violations(&model, &p).is_empty(),
                "model, profile {i}"
            );
        }
        assert!(injured > 150, "{injured} injured profiles");
    }

    #[test]
    fn a_week_without_warm_ups_prescriptions_or_a_hinge_is_named_rule_by_rule() {
        let raw = std::fs::read_to_string("examples/profiles/fat-loss-vegan-home.json").unwrap();
        let p = parse_profile(&serde_json::from_str(&raw).unwrap()).unwrap();
        let t = targets(&p);
        let (_, user) = structure_prompt(&p, &t);
        let structure = parse_structure(good_answer(&request(user))).unwrap();
        let (_, user) = details_prompt(&p, &t, &structure);
        let plan = parse_plan(training_breaking_answer(&request(user))).unwrap();
        let rules = crate::plan::validate::rules_broken(
            &crate::plan::validate::training_violations(&plan, &p),
        );
        for rule in ["warm_up", "prescription", "movement_pattern"] {
            assert!(rules.contains(&rule), "{rule} in {rules:?}");
        }
    }

    fn request(user: String) -> MockChatRequest {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": user}]});
        MockChatRequest::parse(0, &body).unwrap()
    }

    #[test]
    fn the_mock_answers_both_stages_with_a_plan_that_passes_the_validator() {
        let raw = std::fs::read_to_string("examples/profiles/fat-loss-vegan-home.json").unwrap();
        let profile = parse_profile(&serde_json::from_str(&raw).unwrap()).unwrap();
        let t = targets(&profile);
        let (_, user) = structure_prompt(&profile, &t);
        let structure = parse_structure(good_answer(&request(user))).unwrap();
        assert_eq!(structure.days.len(), 7);
        let (_, user) = details_prompt(&profile, &t, &structure);
        let answer = good_answer(&request(user.clone()));
        assert!(
            answer["days"][0]["nutrition"]["meals"][0]["ingredients"][0]["kcal"].is_null(),
            "the mock answers like a model: ids and grams, no numbers"
        );
        let plan = fix(parse_plan(answer).unwrap(), &profile, &t);
        assert_eq!(validate(&plan, &profile, &t), vec![]);
        let broken = fix(
            parse_plan(broken_answer(&request(user), false)).unwrap(),
            &profile,
            &t,
        );
        let rules: Vec<_> = validate(&broken, &profile, &t)
            .into_iter()
            .map(|v| v.rule)
            .collect();
        assert!(
            rules.contains(&crate::plan::Rule::Diet),
            "chicken breaks a vegan diet: {rules:?}"
        );
    }
}
