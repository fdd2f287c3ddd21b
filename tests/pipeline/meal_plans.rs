//! Meal plans end to end: offline and through the mock LLM, saved plans
//! recompute from the raw SR28 and IFCT files and obey the profile; the
//! targets follow the active weekly plan; a diet-breaking answer is
//! repaired; a swap replaces one meal and saves the next version.

use std::collections::HashMap;

use plan_worker::config::WorkerSettings;
use plan_worker::dev::mock_answers::ALWAYS_DIET_BREAKING;
use plan_worker::jobs::intake;
use plan_worker::jobs::meal_plan::swap::SwapRequest;
use plan_worker::jobs::meal_plan::{KIND, SWAP_KIND};
use plan_worker::llm::LlmClient;
use plan_worker::plan::meal_plan::{MealPlan, validate};
use plan_worker::plan::{parse_profile, targets};
use plan_worker::queue::WorkerHandle;
use plan_worker::queue::store::NewJob;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::nutrition::{assert_days_recompute, assert_grocery_list_sums_of};
use super::support::raw_foods;
use super::support::{JobEvents, WAIT, all_kinds_worker, client, mock, profile};
use super::{attempts, outcomes, pairs};

async fn worker(pool: &PgPool, llm: Option<LlmClient>) -> WorkerHandle {
    let settings = WorkerSettings {
        worker_id: Some(format!("meals-{}", Uuid::new_v4().simple())),
        retry_base_seconds: 0.05,
        retry_max_seconds: 0.1,
        poll_interval_seconds: 60.0,
        ..WorkerSettings::default()
    };
    all_kinds_worker(pool, llm, None, settings).await
}

/// Creates the job and waits for its final event; returns the job and status.
async fn run(pool: &PgPool, job: NewJob) -> (Uuid, String) {
    let mut events = JobEvents::open(pool).await;
    let id = intake::create_job(pool, &job).await.unwrap().job_id;
    let ev = events
        .wait_for(|e| e.id == id && e.status.is_final(), WAIT)
        .await;
    (id, ev.status.to_string())
}

#[derive(Debug, sqlx::FromRow)]
struct Saved {
    id: Uuid,
    user_id: Uuid,
    version: i32,
    is_active: bool,
    source: String,
    images: String,
    swapped_from: Option<Uuid>,
    plan: Value,
    targets: Value,
}

async fn saved(pool: &PgPool, job: Uuid) -> Saved {
    sqlx::query_as(
        "select id, user_id, version, is_active, source, images, swapped_from, plan, targets \
         from meal_plans where job_id = $1",
    )
    .bind(job)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// What a saved plan must be for this profile, checked on the JSON: the
/// raw datasets' numbers, the grocery list, the server's own rules.
fn assert_good(plan: &Value, snapshot: &Value, t: &Value) {
    let raw = raw_foods::both();
    assert_days_recompute(plan, |d| d, &raw, t);
    assert_grocery_list_sums_of(plan, |d| d);
    let p = parse_profile(snapshot).unwrap();
    let parsed: MealPlan = serde_json::from_value(plan.clone()).unwrap();
    assert_eq!(
        validate(&parsed, &p, &serde_json::from_value(t.clone()).unwrap()),
        vec![]
    );
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for day in plan["days"].as_array().unwrap() {
        let meals = day["meals"].as_array().unwrap();
        assert_eq!(
            meals.len(),
            usize::from(p.meals_per_day),
            "day {}",
            day["day"]
        );
        for m in meals {
            *counts.entry(m["name"].as_str().unwrap()).or_default() += 1;
            assert!(!m["steps"].as_array().unwrap().is_empty(), "{}", m["name"]);
            assert!(m["prep_minutes"].is_u64() && m["cook_minutes"].is_u64());
            assert!(m["image"].is_null(), "no image source: no photo");
        }
    }
    assert!(counts.values().all(|n| *n <= 2), "{counts:?}");
}

#[sqlx::test]
async fn meal_plans_offline_and_through_the_mock_llm_complete_and_recompute_from_the_raw_datasets(
    pool: PgPool,
) {
    let mut snapshot = profile("fat-loss-vegan-home");
    snapshot["cuisine_preferences"] = json!(["indian", "asian"]);
    snapshot["max_prep_minutes"] = json!(20);
    snapshot["allergies"] = json!(["peanuts"]);
    let offline = worker(&pool, None).await;
    let (job, status) = run(
        &pool,
        intake::meal_plan_job(Uuid::new_v4(), snapshot.clone()),
    )
    .await;
    assert_eq!(status, "completed");
    offline.shutdown().await;
    let row = saved(&pool, job).await;
    assert_eq!(
        (
            row.source.as_str(),
            row.version,
            row.is_active,
            row.images.as_str()
        ),
        ("offline", 1, true, "none")
    );
    assert_good(&row.plan, &snapshot, &row.targets);
    for m in row.plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["meals"].as_array().unwrap())
    {
        assert!(m["prep_minutes"].as_u64().unwrap() <= 20, "{}", m["name"]);
        let c = m["cuisine"].as_str().unwrap_or("international");
        assert!(
            ["indian", "asian", "international"].contains(&c),
            "{}: {c}",
            m["name"]
        );
    }

    let mock = mock("ok").await;
    let llm = worker(&pool, Some(client(&mock, WAIT))).await;
    let snapshot = profile("maintenance-non-vegetarian-athlete");
    let (job, status) = run(
        &pool,
        intake::meal_plan_job(Uuid::new_v4(), snapshot.clone()),
    )
    .await;
    assert_eq!(status, "completed");
    llm.shutdown().await;
    let row = saved(&pool, job).await;
    assert_eq!(row.source, "llm");
    assert_good(&row.plan, &snapshot, &row.targets);
    let prompt = prompt_of(&mock, 0);
    assert!(prompt.contains("<meal_plan_json>") && prompt.contains("## Food exclusions"));
    let system = mock.requests_received()[0].body["messages"][0]["content"].to_string();
    assert!(
        system.contains("## Food catalogue"),
        "the catalogue leads, in the system message"
    );
    let photo_jobs: i64 =
        sqlx::query_scalar("select count(*) from plan_generation_jobs where kind = 'meal_images'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(photo_jobs, 0, "no image source: no photo jobs, no calls");
}

#[sqlx::test]
async fn a_swap_through_the_mock_llm_asks_for_a_dish_the_week_lacks_and_saves_it(pool: PgPool) {
    let mock = mock("ok").await;
    let w = worker(&pool, Some(client(&mock, WAIT))).await;
    let snapshot = profile("muscle-gain-vegetarian-gym");
    let (job, _) = run(
        &pool,
        intake::meal_plan_job(Uuid::new_v4(), snapshot.clone()),
    )
    .await;
    let first = saved(&pool, job).await;
    let swap = NewJob {
        profile_snapshot: serde_json::to_value(SwapRequest {
            meal_plan_id: first.id,
            day: 5,
            index: 0,
        })
        .unwrap(),
        ..swap_job_for(first.user_id)
    };
    let (job, status) = run(&pool, swap).await;
    assert_eq!(status, "completed");
    let prompt = prompt_of(&mock, mock.request_count() - 1);
    let old = &first.plan["days"][4]["meals"][0];
    assert!(prompt.contains("<swap_json>") && prompt.contains(old["name"].as_str().unwrap()));
    let second = saved(&pool, job).await;
    assert_eq!(
        (second.source.as_str(), second.swapped_from),
        ("llm", Some(first.id))
    );
    let new = &second.plan["days"][4]["meals"][0];
    assert_eq!(new["slot"], old["slot"]);
    assert_ne!(new["name"], old["name"]);
    assert_good(&second.plan, &snapshot, &second.targets);
    w.shutdown().await;
}

#[sqlx::test]
async fn a_meal_plan_follows_the_targets_of_the_users_active_weekly_plan(pool: PgPool) {
    let w = worker(&pool, None).await;
    let user = Uuid::new_v4();
    let weekly_profile = profile("muscle-gain-vegetarian-gym");
    let (weekly, status) = run(&pool, intake::weekly_plan_job(user, weekly_profile.clone())).await;
    assert_eq!(status, "completed");
    let weekly_targets: Value =
        sqlx::query_scalar("select targets from weekly_base_plans where job_id = $1")
            .bind(weekly)
            .fetch_one(&pool)
            .await
            .unwrap();
    // The app's newer profile weighs 6 kg more; the weekly plan still rules.
    let mut newer = weekly_profile.clone();
    newer["weight_kg"] = json!(newer["weight_kg"].as_f64().unwrap() + 6.0);
    assert_ne!(
        json!(targets(&parse_profile(&newer).unwrap())),
        weekly_targets
    );
    let (job, status) = run(&pool, intake::meal_plan_job(user, newer.clone())).await;
    assert_eq!(status, "completed");
    let row = saved(&pool, job).await;
    assert_eq!(row.targets, weekly_targets);
    assert_good(&row.plan, &newer, &row.targets);

    // A user without a weekly plan gets targets from the profile.
    let (job, _) = run(&pool, intake::meal_plan_job(Uuid::new_v4(), newer.clone())).await;
    assert_eq!(
        saved(&pool, job).await.targets,
        json!(targets(&parse_profile(&newer).unwrap()))
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn a_diet_breaking_answer_goes_to_the_repair_round_and_one_that_stays_broken_fails(
    pool: PgPool,
) {
    let mock = mock("ok:diet_breaking").await;
    let w = worker(&pool, Some(client(&mock, WAIT))).await;
    let snapshot = profile("fat-loss-vegan-home");
    let (job, status) = run(
        &pool,
        intake::meal_plan_job(Uuid::new_v4(), snapshot.clone()),
    )
    .await;
    assert_eq!(status, "completed");
    let repairs = crate::support::day_repairs(&mock);
    assert_eq!(
        mock.request_count(),
        7 + 7,
        "the days, then each day's repair"
    );
    assert_eq!(repairs.len(), 7);
    assert!(repairs.iter().all(|r| r.contains("diet")));
    assert_good(
        &saved(&pool, job).await.plan,
        &snapshot,
        &saved(&pool, job).await.targets,
    );
    w.shutdown().await;

    let mock = mock_named(ALWAYS_DIET_BREAKING).await;
    let w = worker(&pool, Some(client(&mock, WAIT))).await;
    let (job, status) = run(&pool, intake::meal_plan_job(Uuid::new_v4(), snapshot)).await;
    assert_eq!(status, "failed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("failed", "VALIDATION_FAILED")])
    );
    let none: Option<Uuid> = sqlx::query_scalar("select id from meal_plans where job_id = $1")
        .bind(job)
        .fetch_optional(&pool)
        .await
        .unwrap();
    assert_eq!(none, None, "a broken plan is never saved");
    w.shutdown().await;
}

async fn mock_named(name: &str) -> plan_worker::dev::mock_llm::MockLlm {
    mock(&format!("ok:{name}")).await
}

/// The last user message of the mock's `i`-th request.
fn prompt_of(mock: &plan_worker::dev::mock_llm::MockLlm, i: usize) -> String {
    let body = &mock.requests_received()[i].body;
    body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test]
async fn a_swap_replaces_one_meal_with_another_dish_of_its_slot_and_saves_the_next_version(
    pool: PgPool,
) {
    let w = worker(&pool, None).await;
    let snapshot = profile("recomposition-eggitarian-bodyweight");
    let (job, _) = run(
        &pool,
        intake::meal_plan_job(Uuid::new_v4(), snapshot.clone()),
    )
    .await;
    let first = saved(&pool, job).await;
    let req = SwapRequest {
        meal_plan_id: first.id,
        day: 3,
        index: 1,
    };
    let swap_job = NewJob {
        user_id: first.user_id,
        kind: SWAP_KIND.to_owned(),
        profile_snapshot: serde_json::to_value(req).unwrap(),
        max_retries: 0,
        priority: 0,
        trace_context: None,
        run_after: None,
    };
    let (job, status) = run(&pool, swap_job).await;
    assert_eq!(status, "completed");
    let second = saved(&pool, job).await;
    assert_eq!(
        (second.version, second.is_active, second.swapped_from),
        (2, true, Some(first.id))
    );
    let was_active: bool = sqlx::query_scalar("select is_active from meal_plans where id = $1")
        .bind(first.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!was_active, "one active meal plan per user");
    let old = &first.plan["days"][2]["meals"][1];
    let new = &second.plan["days"][2]["meals"][1];
    assert_eq!(old["slot"], new["slot"]);
    assert_ne!(old["name"], new["name"]);
    let week: Vec<&Value> = first.plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["meals"].as_array().unwrap())
        .map(|m| &m["name"])
        .collect();
    assert!(
        !week.contains(&&new["name"]),
        "a dish the week did not have"
    );
    for d in [0, 1, 3, 4, 5, 6] {
        assert_eq!(
            first.plan["days"][d],
            second.plan["days"][d],
            "day {} unchanged",
            d + 1
        );
    }
    assert_good(&second.plan, &snapshot, &second.targets);

    // A meal that does not exist fails at once, naming it.
    let bad = NewJob {
        profile_snapshot: json!({"meal_plan_id": second.id, "day": 2, "index": 9}),
        ..swap_job_for(second.user_id)
    };
    let (job, status) = run(&pool, bad).await;
    assert_eq!(status, "failed");
    let detail = attempts(&pool, job).await[0]
        .error_detail
        .clone()
        .unwrap_or_default();
    assert!(detail.contains("day 2 has no meal 9"), "{detail}");
    w.shutdown().await;
}

fn swap_job_for(user: Uuid) -> NewJob {
    NewJob {
        user_id: user,
        kind: SWAP_KIND.to_owned(),
        profile_snapshot: json!({}),
        max_retries: 0,
        priority: 0,
        trace_context: None,
        run_after: None,
    }
}

#[sqlx::test]
async fn a_meal_plan_job_with_a_bad_profile_is_refused_before_any_row_is_written(pool: PgPool) {
    let mut snapshot = profile("fat-loss-vegan-home");
    snapshot["cuisine_preferences"] = json!(["klingon"]);
    snapshot["max_prep_minutes"] = json!(2);
    let err = intake::create_job(&pool, &intake::meal_plan_job(Uuid::new_v4(), snapshot))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cuisine_preferences") && err.contains("max_prep_minutes"),
        "{err}"
    );
    let jobs: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs where kind = $1")
        .bind(KIND)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}
