//! Meal photos end to end against a stand-in Unsplash: after the plan is
//! saved, the meal_images job gives every meal an attributed photo; a
//! second plan with the same dishes makes no new searches; a spent or
//! rate-limited hour defers the photos (never the plan) to the next hour.

use plan_worker::config::WorkerSettings;
use plan_worker::images::UnsplashSettings;
use plan_worker::jobs::intake;
use plan_worker::queue::WorkerHandle;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::support::{JobEvents, WAIT, all_kinds_worker, profile};
use super::unsplash::{KEY, StandIn};

async fn worker(pool: &PgPool, stand_in: &StandIn, per_hour: u32) -> WorkerHandle {
    let client = UnsplashSettings {
        unsplash_access_key: Some(KEY.into()),
        unsplash_api_url: stand_in.base_url.clone(),
        unsplash_app_name: "Meal Plans".into(),
        ..UnsplashSettings::default()
    }
    .client()
    .unwrap()
    .unwrap();
    let settings = WorkerSettings {
        worker_id: Some(format!("images-{}", Uuid::new_v4().simple())),
        poll_interval_seconds: 60.0,
        ..WorkerSettings::default()
    };
    all_kinds_worker(pool, None, Some((client, per_hour)), settings).await
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    images: String,
    images_job_id: Option<Uuid>,
    plan: Value,
}

async fn row(pool: &PgPool, job: Uuid) -> Row {
    sqlx::query_as("select images, images_job_id, plan from meal_plans where job_id = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Runs a meal plan job to completion; returns the plan's job and its
/// images job.
async fn plan(pool: &PgPool, events: &mut JobEvents) -> (Uuid, Uuid) {
    let snapshot = profile("maintenance-non-vegetarian-athlete");
    let job = intake::create_job(pool, &intake::meal_plan_job(Uuid::new_v4(), snapshot))
        .await
        .unwrap()
        .job_id;
    events.wait_status(job, "completed", WAIT).await;
    let images = row(pool, job).await.images_job_id.expect("an images job");
    (job, images)
}

fn meals(plan: &Value) -> impl Iterator<Item = &Value> {
    plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["meals"].as_array().unwrap())
}

/// Distinct photo searches of the plan (named dishes by name, composed ones
/// by main food).
fn distinct_searches(plan: &Value) -> usize {
    let parsed: plan_worker::plan::meal_plan::MealPlan =
        serde_json::from_value(plan.clone()).unwrap();
    parsed.photo_queries().len()
}

#[sqlx::test]
async fn every_meal_gets_an_attributed_photo_and_a_second_plan_with_the_same_dishes_searches_nothing(
    pool: PgPool,
) {
    let stand_in = StandIn::start().await;
    let w = worker(&pool, &stand_in, 50).await;
    let mut events = JobEvents::open(&pool).await;
    let (job, images) = plan(&pool, &mut events).await;
    events.wait_status(images, "completed", WAIT).await;
    let r = row(&pool, job).await;
    assert_eq!(r.images, "complete");
    for m in meals(&r.plan) {
        let img = &m["image"];
        assert!(
            img["url"].as_str().is_some_and(|u| !u.is_empty()),
            "{}: {img}",
            m["name"]
        );
        assert!(img["photographer"].as_str().is_some_and(|p| !p.is_empty()));
        for link in ["photographer_url", "unsplash_url"] {
            let l = img[link].as_str().unwrap();
            assert!(
                (l.contains("utm_source=Meal+Plans") || l.contains("utm_source=Meal%20Plans"))
                    && l.contains("utm_medium=referral"),
                "{link}: {l}"
            );
        }
    }
    let searched = stand_in.total_searches();
    assert_eq!(searched, distinct_searches(&r.plan), "one search per dish");

    let (job, images) = plan(&pool, &mut events).await;
    events.wait_status(images, "completed", WAIT).await;
    assert_eq!(row(&pool, job).await.images, "complete");
    assert_eq!(
        stand_in.total_searches(),
        searched,
        "the cache answered every dish"
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn a_rate_limited_image_source_defers_the_photos_to_the_next_hour_and_never_fails_the_plan(
    pool: PgPool,
) {
    let stand_in = StandIn::start().await;
    let w = worker(&pool, &stand_in, 3).await;
    let mut events = JobEvents::open(&pool).await;
    let (job, images) = plan(&pool, &mut events).await;
    let ev = events
        .wait_for(
            |e| e.id == images && e.error_code.as_deref() == Some("IMAGES_RATE_LIMIT"),
            WAIT,
        )
        .await;
    assert_eq!(ev.status.to_string(), "pending", "deferred, not failed");
    let r = row(&pool, job).await;
    assert_eq!(r.images, "pending");
    let with_photo = meals(&r.plan).filter(|m| !m["image"].is_null()).count();
    assert!(with_photo > 0, "what the three calls found is kept");
    assert!(
        meals(&r.plan).any(|m| m["image"].is_null()),
        "the rest waits"
    );
    assert_eq!(stand_in.total_searches(), 3, "the hour's budget, no more");
    let (status, retries, next_hour): (String, i32, bool) = sqlx::query_as(
        "select status::text, retry_count, run_after >= date_trunc('hour', now(), 'UTC') + interval '1 hour' - interval '1 second' \
         from plan_generation_jobs where id = $1",
    )
    .bind(images)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), retries, next_hour), ("pending", 0, true));
    let plan_status: String =
        sqlx::query_scalar("select status::text from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(plan_status, "completed");
    w.shutdown().await;

    // Unsplash's own 403 closes the hour for every worker the same way.
    let stand_in = StandIn::start().await;
    stand_in.set_rate_limited(true);
    for table in ["unsplash_rate_window", "unsplash_search_cache"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("delete from {table}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    let w = worker(&pool, &stand_in, 50).await;
    let (job, images) = plan(&pool, &mut events).await;
    events
        .wait_for(
            |e| e.id == images && e.error_code.as_deref() == Some("IMAGES_RATE_LIMIT"),
            WAIT,
        )
        .await;
    assert_eq!(row(&pool, job).await.images, "pending");
    assert!(meals(&row(&pool, job).await.plan).all(|m| m["image"].is_null()));
    w.shutdown().await;
}
