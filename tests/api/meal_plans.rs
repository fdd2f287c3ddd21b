//! `/v1/meal-plans` and meal-plan jobs through the API: create, read the
//! active plan, the versions, one plan and its grocery list (never another
//! user's), swap one meal (its fields checked), photo tracking without an
//! image source.

use plan_worker::config::WorkerSettings;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::support::{self, JobEvents};

fn worker_settings(id: &str) -> WorkerSettings {
    WorkerSettings {
        worker_id: Some(id.into()),
        poll_interval_seconds: 60.0,
        ..WorkerSettings::default()
    }
}

#[sqlx::test]
async fn a_meal_plan_made_through_the_api_is_read_swapped_and_kept_from_other_users(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let worker = support::all_kinds_worker(&pool, None, None, worker_settings("api-meals")).await;
    let mut events = JobEvents::open(&pool).await;
    let user = Uuid::new_v4();
    let bearer = token(user);
    let mut snapshot = profile("fat-loss-vegan-home");
    snapshot["cuisinePreferences"] = json!(["Indian"]);
    let created = api
        .post(
            "/v1/plan-jobs",
            &bearer,
            json!({"kind": "meal_plan", "profileSnapshot": snapshot}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let job: Uuid = created.body["jobId"].as_str().unwrap().parse().unwrap();
    let end = events
        .wait_for(|e| e.id == job && e.status.is_final(), WAIT)
        .await;
    assert_eq!(end.status.to_string(), "completed", "{end:?}");

    let active = api.get("/v1/meal-plans/active", &bearer).await;
    assert_eq!(active.status, StatusCode::OK, "{}", active.body);
    let plan = &active.body;
    assert_eq!(plan["jobId"], json!(job));
    assert_eq!(
        (plan["version"].as_i64(), plan["images"].as_str()),
        (Some(1), Some("none"))
    );
    assert_eq!(plan["plan"]["days"].as_array().unwrap().len(), 7);
    let id = plan["mealPlanId"].as_str().unwrap().to_owned();
    let one = api.get(&format!("/v1/meal-plans/{id}"), &bearer).await;
    assert_eq!(
        (one.status, &one.body["plan"]),
        (StatusCode::OK, &plan["plan"])
    );
    let list = api
        .get(&format!("/v1/meal-plans/{id}/grocery-list"), &bearer)
        .await;
    assert_eq!(list.body["groceryList"], plan["plan"]["grocery_list"]);
    assert!(!list.body["groceryList"].as_array().unwrap().is_empty());

    // Another user sees none of it.
    let other = token(Uuid::new_v4());
    for path in [
        format!("/v1/meal-plans/{id}"),
        format!("/v1/meal-plans/{id}/grocery-list"),
    ] {
        assert_eq!(
            api.get(&path, &other).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        api.get("/v1/meal-plans/active", &other).await.status,
        StatusCode::NOT_FOUND
    );
    let swap_other = api
        .post(
            &format!("/v1/meal-plans/{id}/days/1/meals/0/swap"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(swap_other.status, StatusCode::NOT_FOUND);

    // Bad positions name their field; nothing is queued.
    for (path, field) in [
        (format!("/v1/meal-plans/{id}/days/8/meals/0/swap"), "day"),
        (format!("/v1/meal-plans/{id}/days/2/meals/9/swap"), "index"),
        (format!("/v1/meal-plans/{id}/days/x/meals/0/swap"), "day"),
    ] {
        let a = api.post(&path, &bearer, json!({})).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["field"], field, "{path}");
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);

    let old_name = plan["plan"]["days"][1]["meals"][2]["name"].clone();
    let swap = api
        .post(
            &format!("/v1/meal-plans/{id}/days/2/meals/2/swap"),
            &bearer,
            json!({}),
        )
        .await;
    assert_eq!(swap.status, StatusCode::ACCEPTED, "{}", swap.body);
    assert_eq!(
        (swap.body["kind"].as_str(), swap.body["status"].as_str()),
        (Some("meal_swap"), Some("created"))
    );
    let swap_job: Uuid = swap.body["jobId"].as_str().unwrap().parse().unwrap();
    events
        .wait_for(|e| e.id == swap_job && e.status.is_final(), WAIT)
        .await;
    let job_view = api.get(&format!("/v1/plan-jobs/{swap_job}"), &bearer).await;
    let detail: Option<String> =
        sqlx::query_scalar("select error_detail from plan_job_attempts where job_id = $1")
            .bind(swap_job)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten();
    assert_eq!(
        job_view.body["status"], "completed",
        "{} {detail:?}",
        job_view.body
    );

    let now = api.get("/v1/meal-plans/active", &bearer).await.body;
    assert_eq!(
        (now["version"].as_i64(), now["swappedFrom"].as_str()),
        (Some(2), Some(id.as_str()))
    );
    assert_ne!(now["plan"]["days"][1]["meals"][2]["name"], old_name);
    let versions = api.get("/v1/meal-plans", &bearer).await;
    let v: Vec<i64> = versions.body["mealPlans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_i64().unwrap())
        .collect();
    assert_eq!(v, [2, 1]);
    // The old version is no longer active: its meals cannot be swapped.
    let stale = api
        .post(
            &format!("/v1/meal-plans/{id}/days/1/meals/0/swap"),
            &bearer,
            json!({}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);

    // Without an image source a plan has no photos to track.
    let used = api
        .post(
            &format!("/v1/meal-plans/{id}/images/abc/used"),
            &bearer,
            json!({}),
        )
        .await;
    assert_eq!(used.status, StatusCode::NOT_FOUND, "{}", used.body);
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_photo_the_app_shows_is_tracked_with_exactly_one_download_request(pool: PgPool) {
    use crate::unsplash::{KEY, StandIn};
    let stand_in = StandIn::start().await;
    let client = plan_worker::images::UnsplashSettings {
        unsplash_access_key: Some(KEY.into()),
        unsplash_api_url: stand_in.base_url.clone(),
        ..plan_worker::images::UnsplashSettings::default()
    }
    .client()
    .unwrap()
    .unwrap();
    let source = plan_worker::api::ImageSource {
        client: client.clone(),
        per_hour: 50,
    };
    let api = start_with(&pool, settings(), move |mut s| {
        s.images = Some(source);
        s
    })
    .await;
    let worker = support::all_kinds_worker(
        &pool,
        None,
        Some((client, 50)),
        worker_settings("api-photos"),
    )
    .await;
    let mut events = JobEvents::open(&pool).await;
    let bearer = token(Uuid::new_v4());
    let created = api
        .post(
            "/v1/plan-jobs",
            &bearer,
            json!({"kind": "meal_plan", "profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
        )
        .await;
    let job: Uuid = created.body["jobId"].as_str().unwrap().parse().unwrap();
    events.wait_status(job, "completed", WAIT).await;
    let plan = api.get("/v1/meal-plans/active", &bearer).await.body;
    assert_eq!(plan["images"], "pending");
    let images: Uuid = plan["imagesJobId"].as_str().unwrap().parse().unwrap();
    events.wait_status(images, "completed", WAIT).await;
    let plan = api.get("/v1/meal-plans/active", &bearer).await.body;
    assert_eq!(plan["images"], "complete");
    let id = plan["mealPlanId"].as_str().unwrap();
    let photo = plan["plan"]["days"][0]["meals"][0]["image"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let path = format!("/v1/meal-plans/{id}/images/{photo}/used");
    let first = api.post(&path, &bearer, json!({})).await;
    assert_eq!(
        (first.status, &first.body["download"]),
        (StatusCode::ACCEPTED, &json!("sent")),
        "{}",
        first.body
    );
    let again = api.post(&path, &bearer, json!({})).await;
    assert_eq!(
        (again.status, &again.body["download"]),
        (StatusCode::ACCEPTED, &json!("already_sent"))
    );
    assert_eq!(
        stand_in.downloads(&photo),
        1,
        "one download request per photo and plan"
    );
    let other = api.post(&path, &token(Uuid::new_v4()), json!({})).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "another user's plan");
    let unknown = api
        .post(
            &format!("/v1/meal-plans/{id}/images/nope/used"),
            &bearer,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(stand_in.downloads(&photo), 1);
    worker.shutdown().await;
}
