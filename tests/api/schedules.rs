//! Jobs for later (`runAfter`) and periodic schedules (`/v1/schedules`):
//! the answers, the rows, and that a user sees only their own.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
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

#[sqlx::test]
async fn run_after_is_part_of_the_idempotency_keys_request(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let at = (Utc::now() + Duration::hours(3)).to_rfc3339();
    let send = |run_after: Value| {
        api.http
            .post(format!("{}/v1/plan-jobs", api.base))
            .bearer_auth(token(user))
            .header("Idempotency-Key", "later-1")
            .json(&body_with(run_after))
            .send()
    };
    assert_eq!(send(json!(at)).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(send(json!(at)).await.unwrap().status(), StatusCode::OK);
    let other = (Utc::now() + Duration::hours(4)).to_rfc3339();
    assert_eq!(
        send(json!(other)).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(Value::Null).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

fn schedule_body(every: i64) -> Value {
    json!({"everySeconds": every, "profileSnapshot": profile("muscle-gain-vegetarian-gym")})
}

async fn put(api: &Api, path: &str, bearer: &str, body: Value) -> Answer {
    api.call(Method::PUT, path, Some(bearer), Some(body)).await
}

async fn delete(api: &Api, path: &str, bearer: &str) -> Answer {
    api.call(Method::DELETE, path, Some(bearer), None).await
}

#[sqlx::test]
async fn a_schedule_is_created_read_replaced_listed_and_deleted(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let me = token(user);
    let path = "/v1/schedules/weekly_base_plan";
    assert_eq!(api.get(path, &me).await.status, StatusCode::NOT_FOUND);

    let first_run = (Utc::now() + Duration::days(2)).to_rfc3339();
    let mut body = schedule_body(7 * 86_400);
    body["firstRunAt"] = json!(first_run);
    let created = put(&api, path, &me, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers["location"], path);
    assert_eq!(created.body["kind"], "weekly_base_plan");
    assert_eq!(created.body["everySeconds"], 7 * 86_400);
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["runs"], 0);
    let wanted: DateTime<Utc> = first_run.parse().unwrap();
    let next = time(&created.body["nextRunAt"]);
    assert!(
        (next - wanted).num_milliseconds().abs() < 1,
        "{next} vs {wanted}"
    );

    let read = api.get(path, &me).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body, created.body);

    // Without firstRunAt: one period from now.
    let replaced = put(&api, path, &me, schedule_body(3_600)).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["everySeconds"], 3_600);
    let next = time(&replaced.body["nextRunAt"]);
    let expected = Utc::now() + Duration::hours(1);
    assert!((next - expected).num_seconds().abs() < 60, "{next}");
    let (every, snapshot): (f64, Value) = sqlx::query_as(
        "select extract(epoch from every)::float8, profile_snapshot from plan_schedules \
         where user_id = $1 and kind = 'weekly_base_plan'",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(every, 3_600.0);
    assert!(snapshot.is_object());

    let meal = put(&api, "/v1/schedules/meal_plan", &me, schedule_body(86_400)).await;
    assert_eq!(meal.status, StatusCode::CREATED, "{}", meal.body);
    let all = api.get("/v1/schedules", &me).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let kinds: Vec<&str> = all.body["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["weekly_base_plan", "meal_plan"],
        "soonest due first"
    );

    let gone = delete(&api, path, &me).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(path, &me).await.status, StatusCode::NOT_FOUND);
    let again = delete(&api, path, &me).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    assert_eq!(count(&pool, "plan_schedules").await, 1);
}

#[sqlx::test]
async fn another_users_schedule_is_not_visible_nor_removable(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let (owner, other) = (token(Uuid::new_v4()), token(Uuid::new_v4()));
    let path = "/v1/schedules/meal_plan";
    assert_eq!(
        put(&api, path, &owner, schedule_body(86_400)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(api.get(path, &other).await.status, StatusCode::NOT_FOUND);
    let list = api.get("/v1/schedules", &other).await;
    assert_eq!(list.body["schedules"], json!([]));
    assert_eq!(
        delete(&api, path, &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(api.get(path, &owner).await.status, StatusCode::OK);
    // An operator token acts as no user here.
    assert_eq!(api.get(path, ADMIN).await.status, StatusCode::FORBIDDEN);
}

#[sqlx::test]
async fn bad_schedules_are_refused_naming_the_field_and_store_nothing(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let me = token(Uuid::new_v4());
    let unknown = put(&api, "/v1/schedules/haiku", &me, schedule_body(86_400)).await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert_eq!(unknown.body["error"]["field"], "kind");
    for (method, what) in [(Method::GET, "get"), (Method::DELETE, "delete")] {
        let a = api
            .call(method, "/v1/schedules/haiku", Some(&me), None)
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["field"], "kind", "{what}");
    }

    let path = "/v1/schedules/weekly_base_plan";
    for (body, field) in [
        (schedule_body(59), "everySeconds"),
        (schedule_body(366 * 86_400 + 1), "everySeconds"),
        (
            json!({"everySeconds": "7 days", "profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
            "everySeconds",
        ),
        (
            json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
            "everySeconds",
        ),
        (json!({"everySeconds": 3600}), "profileSnapshot"),
        (
            json!({"everySeconds": 3600, "profileSnapshot": profile("invalid-three-fields")}),
            "",
        ),
        (
            json!({"everySeconds": 3600, "firstRunAt": "soon", "profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
            "firstRunAt",
        ),
        (
            json!({"everySeconds": 3600, "firstRunAt": (Utc::now() + Duration::days(400)).to_rfc3339(),
                   "profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
            "firstRunAt",
        ),
    ] {
        let a = put(&api, path, &me, body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        let named = a.body["error"]["field"].as_str().unwrap();
        if field.is_empty() {
            assert!(named.starts_with("profileSnapshot."), "{named}");
        } else {
            assert_eq!(named, field, "{}", a.body);
        }
    }
    assert_eq!(count(&pool, "plan_schedules").await, 0);
}

#[sqlx::test]
async fn a_due_schedule_makes_its_job_and_the_schedule_names_it(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let me = token(user);
    let mut body = schedule_body(86_400);
    body["firstRunAt"] = json!("2020-01-01T00:00:00Z");
    let a = put(&api, "/v1/schedules/weekly_base_plan", &me, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    // What the maintenance tick does.
    let made = plan_worker::queue::store::enqueue_due_schedules(&pool, 10)
        .await
        .unwrap();
    assert_eq!(made.len(), 1);
    let s = api.get("/v1/schedules/weekly_base_plan", &me).await;
    assert_eq!(s.body["runs"], 1, "{}", s.body);
    assert_eq!(s.body["lastJobId"], made[0].job_id.to_string());
    assert!(time(&s.body["nextRunAt"]) > Utc::now());
    let job = api
        .get(&format!("/v1/plan-jobs/{}", made[0].job_id), &me)
        .await;
    assert_eq!(job.status, StatusCode::OK, "{}", job.body);
}
