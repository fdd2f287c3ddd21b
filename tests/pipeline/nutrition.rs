//! The plan's numbers, as saved: every ingredient, meal and day recomputes
//! from the raw SR28 and IFCT files; unknown foods never reach a saved plan;
//! an impossible profile fails as VALIDATION_FAILED saying why.

use std::collections::HashMap;

use plan_worker::dev::mock_answers::MADE_UP_FOOD_ID;
use plan_worker::plan::portions::TOLERANCE;
use plan_worker::plan::{parse_profile, targets};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::support::raw_foods::{self, Per100g};
use super::support::{WAIT, client, mock, profile};
use super::{attempts, outcomes, pairs, run_job, run_profile, saved_plans, worker};

async fn saved_plan(pool: &PgPool, job: uuid::Uuid) -> Value {
    sqlx::query_scalar("select plan from weekly_base_plans where job_id = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Checks the plan against the raw datasets alone: each ingredient's
/// numbers from its (source, code) and grams, each meal within 3 % of its
/// ingredients, each day within 2 % of its meals and within tolerance of
/// the targets.
pub fn assert_recomputes(plan: &Value, raw: &HashMap<(String, String), Per100g>, t: &Value) {
    assert_days_recompute(plan, |d| &d["nutrition"], raw, t)
}

/// `assert_recomputes` for days whose meals and sums sit at `food(day)`.
pub fn assert_days_recompute(
    plan: &Value,
    food: fn(&Value) -> &Value,
    raw: &HashMap<(String, String), Per100g>,
    t: &Value,
) {
    let near = |stated: f64, real: f64, rel: f64| (stated - real).abs() <= (rel * real).max(1.0);
    let days = plan["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    for day in days {
        let mut day_sum = [0.0; 4];
        for meal in food(day)["meals"].as_array().unwrap() {
            let mut sum = [0.0; 4];
            for ing in meal["ingredients"].as_array().unwrap() {
                let key = (
                    ing["source"].as_str().unwrap().to_owned(),
                    ing["code"].as_str().unwrap().to_owned(),
                );
                let r = raw
                    .get(&key)
                    .unwrap_or_else(|| panic!("{key:?} not in the raw files"));
                let g = num(&ing["grams"]) / 100.0;
                let real = [r.kcal * g, r.protein_g * g, r.fat_g * g, r.carbs_g * g];
                for (k, field) in ["kcal", "protein_g", "fat_g", "carbs_g"].iter().enumerate() {
                    assert!(
                        (num(&ing[field]) - real[k]).abs() <= 0.06,
                        "{ing}: {field} vs {}",
                        real[k]
                    );
                    sum[k] += real[k];
                }
            }
            for (k, field) in ["kcal", "protein_g", "fat_g", "carbs_g"].iter().enumerate() {
                assert!(
                    near(num(&meal[field]), sum[k], 0.03),
                    "{}: {field}",
                    meal["name"]
                );
                day_sum[k] += num(&meal[field]);
            }
        }
        let n = food(day);
        let tol = [
            TOLERANCE.kcal,
            TOLERANCE.protein,
            TOLERANCE.fat,
            TOLERANCE.carbs,
        ];
        for (k, field) in ["kcal", "protein_g", "fat_g", "carbs_g"].iter().enumerate() {
            let stated = num(&n[field]);
            assert!(
                near(stated, day_sum[k], 0.02),
                "day {}: {field}",
                day["day"]
            );
            let target = num(&t[field]);
            assert!(
                (stated - target).abs() <= target * tol[k] + 0.5,
                "day {}: {field} {stated} vs target {target}",
                day["day"]
            );
        }
    }
}

/// The grocery list is the week's ingredients summed per food.
pub fn assert_grocery_list_sums(plan: &Value) {
    assert_grocery_list_sums_of(plan, |d| &d["nutrition"])
}

pub fn assert_grocery_list_sums_of(plan: &Value, food: fn(&Value) -> &Value) {
    let mut want: HashMap<String, f64> = HashMap::new();
    for ing in plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| food(d)["meals"].as_array().unwrap())
        .flat_map(|m| m["ingredients"].as_array().unwrap())
    {
        *want
            .entry(ing["id"].as_str().unwrap().to_owned())
            .or_default() += num(&ing["grams"]);
    }
    let list = plan["grocery_list"].as_array().unwrap();
    assert_eq!(list.len(), want.len());
    for item in list {
        let id = item["id"].as_str().unwrap();
        assert!((num(&item["grams"]) - want[id]).abs() < 1e-6, "{item}");
    }
}

#[sqlx::test]
async fn saved_plans_offline_and_through_the_mock_llm_recompute_from_the_raw_datasets(
    pool: PgPool,
) {
    let raw = raw_foods::both();
    let offline = worker(&pool, None, false).await;
    let mut saved = Vec::new();
    for name in ["fat-loss-vegan-home", "maintenance-non-vegetarian-athlete"] {
        let (job, status, _) = run_job(&pool, name).await;
        assert_eq!(status, "completed", "{name}");
        saved.push((name, job));
    }
    offline.shutdown().await;
    let mock = mock("ok").await;
    let llm = worker(&pool, Some(client(&mock, WAIT)), false).await;
    for name in [
        "muscle-gain-vegetarian-gym",
        "recomposition-eggitarian-bodyweight",
    ] {
        let (job, status, _) = run_job(&pool, name).await;
        assert_eq!(status, "completed", "{name}");
        saved.push((name, job));
    }
    llm.shutdown().await;
    for (name, job) in saved {
        let plan = saved_plan(&pool, job).await;
        let t = json!(targets(&parse_profile(&profile(name)).unwrap()));
        assert_recomputes(&plan, &raw, &t);
        assert_grocery_list_sums(&plan);
    }
}

#[sqlx::test]
async fn an_unknown_food_id_from_the_model_goes_to_the_repair_round_and_never_into_the_plan(
    pool: PgPool,
) {
    let mock = mock("ok:unknown_food").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    // Every day of the week had the unknown id: each was repaired alone.
    let repairs = crate::support::day_repairs(&mock);
    assert_eq!(
        mock.request_count(),
        1 + crate::day_calls("fat-loss-vegan-home") + 7,
        "structure, days (two calls per training day), the days' meals again"
    );
    assert_eq!(repairs.len(), 7);
    assert!(
        repairs
            .iter()
            .all(|r| r.contains("unknown_food") && r.contains(MADE_UP_FOOD_ID)),
        "the model was told which id is unknown"
    );
    let plan = saved_plan(&pool, job).await;
    assert!(!plan.to_string().contains(MADE_UP_FOOD_ID));
    w.shutdown().await;
}

#[sqlx::test]
async fn a_model_that_keeps_an_unknown_food_fails_as_validation_failed(pool: PgPool) {
    let mock = mock("ok:always_unknown_food").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "failed");
    let a = attempts(&pool, job).await;
    assert_eq!(outcomes(&a), pairs(&[("failed", "VALIDATION_FAILED")]));
    assert!(
        a[0].error_detail
            .as_deref()
            .unwrap()
            .contains(MADE_UP_FOOD_ID)
    );
    assert!(saved_plans(&pool, job).await.is_empty(), "nothing saved");
    w.shutdown().await;
}

#[sqlx::test]
async fn a_profile_whose_diet_and_allergies_leave_too_little_fails_saying_what_made_it_impossible(
    pool: PgPool,
) {
    let mut p = profile("fat-loss-vegan-home");
    p["allergies"] = json!(IMPOSSIBLE_ALLERGIES);
    let w = worker(&pool, None, false).await;
    let (job, status) = run_profile(&pool, p).await;
    assert_eq!(status, "failed");
    let a = attempts(&pool, job).await;
    assert_eq!(outcomes(&a), pairs(&[("failed", "VALIDATION_FAILED")]));
    let detail = a[0].error_detail.as_deref().unwrap();
    assert!(
        detail.contains("the diet vegan with the allergies"),
        "{detail}"
    );
    assert!(detail.contains("protein"), "{detail}");
    w.shutdown().await;
}

#[sqlx::test]
async fn a_vegan_allergic_to_soy_gluten_tree_nuts_and_peanuts_still_gets_a_plan(pool: PgPool) {
    let mut p = profile("fat-loss-vegan-home");
    p["allergies"] = json!(["soy", "gluten", "tree nuts", "peanuts"]);
    let w = worker(&pool, None, false).await;
    let (job, status) = run_profile(&pool, p).await;
    assert_eq!(status, "completed");
    let plan = saved_plan(&pool, job).await.to_string().to_lowercase();
    for banned in ["tofu", "soy", "wheat", "almond", "peanut", "cashew"] {
        assert!(!plan.contains(banned), "{banned} in the plan");
    }
    w.shutdown().await;
}

/// Allergies that leave a vegan no food dense enough in protein.
const IMPOSSIBLE_ALLERGIES: &[&str] = &[
    "soy",
    "gluten",
    "tree nuts",
    "peanuts",
    "lentils",
    "beans",
    "chickpeas",
    "peas",
    "dal",
    "seeds",
    "quinoa",
    "gram",
    "edamame",
    "mung",
    "moong",
    "urad",
    "rajma",
    "lobia",
    "chana",
];
