//! Jobs for later (`runAfter`): the answers and the rows.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

fn body_with(run_after: Value) -> Value {
    json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym"), "runAfter": run_after})
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn run_after_makes_a_pending_job_due_then_and_its_status_says_so(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let at = (Utc::now() + Duration::hours(6)).to_rfc3339();
    let a = api
        .post("/v1/plan-jobs", &token(user), body_with(json!(at)))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = job_id(&a);
    let (status, run_after): (String, DateTime<Utc>) =
        sqlx::query_as("select status::text, run_after from plan_generation_jobs where id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");
    let wanted: DateTime<Utc> = at.parse().unwrap();
    assert!(
        (run_after - wanted).num_milliseconds().abs() < 1,
        "{run_after} vs {wanted}"
    );

    let s = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["status"], "pending");
    assert_eq!(time(&s.body["runAfter"]), run_after);
}

#[sqlx::test]
async fn a_past_run_after_means_now(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body_with(json!("2020-01-01T00:00:00Z")),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let late: bool = sqlx::query_scalar(
        "select run_after >= created_at from plan_generation_jobs where id = $1",
    )
    .bind(job_id(&a))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(late, "a past runAfter is now, not the past");
}

#[sqlx::test]
async fn a_bad_or_too_distant_run_after_is_refused_naming_it_and_makes_no_job(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let too_far = (Utc::now() + Duration::days(367)).to_rfc3339();
    for bad in [
        json!("tomorrow"),
        json!("2026-13-01T00:00:00Z"),
        json!(1_800_000_000),
        json!(too_far),
    ] {
        let a = api
            .post("/v1/plan-jobs", &token(user), body_with(bad.clone()))
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["field"], "runAfter", "{bad}: {}", a.body);
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
}
