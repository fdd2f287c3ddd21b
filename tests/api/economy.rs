//! Economy jobs through the API: `economy` and `notAfter` on creation,
//! `economy`, `notAfter` and the planned `runAfter` in the status, the
//! refusals naming the field, and economy schedules. The API's windows are
//! built around the current time: one off-peak hour two hours from now.

use std::sync::Arc;

use chrono::{DateTime, Duration, Timelike, Utc};
use plan_worker::offpeak::{Economy, Form, OffPeak};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

/// An API whose windows open an off-peak hour two hours from now; returns
/// that start.
async fn api_in_a_peak(pool: &PgPool) -> (Api, DateTime<Utc>) {
    let start = (Utc::now() + Duration::hours(2))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    let end = start + Duration::hours(1);
    let spec = format!(
        "{:02}:{:02}-{:02}:{:02}",
        start.hour(),
        start.minute(),
        end.hour(),
        end.minute()
    );
    let economy = Economy {
        windows: Some(OffPeak::parse(&spec, Form::OffPeak).unwrap()),
        max_delay: std::time::Duration::from_secs(24 * 3600),
        start_margin: std::time::Duration::from_secs(1800),
    };
    let api = start_with(pool, settings(), |mut s| {
        s.economy = Arc::new(economy);
        s
    })
    .await;
    (api, start)
}

fn body(extra: Value) -> Value {
    let mut b = json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn an_economy_job_in_a_peak_shows_its_off_peak_start_and_deadline(pool: PgPool) {
    let (api, start) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let deadline = (Utc::now() + Duration::hours(20))
        .with_nanosecond(0)
        .unwrap();
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body(json!({"economy": true, "notAfter": deadline.to_rfc3339()})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let s = api
        .get(&format!("/v1/plan-jobs/{}", job_id(&a)), &token(user))
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["status"], "pending");
    assert_eq!(s.body["economy"], true);
    assert_eq!(time(&s.body["runAfter"]), start);
    assert_eq!(time(&s.body["notAfter"]), deadline);
}

#[sqlx::test]
async fn an_economy_job_without_a_deadline_gets_the_configured_one(pool: PgPool) {
    let (api, start) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body(json!({"economy": true})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let s = api
        .get(&format!("/v1/plan-jobs/{}", job_id(&a)), &token(user))
        .await;
    assert_eq!(time(&s.body["runAfter"]), start);
    let wait = time(&s.body["notAfter"]) - Utc::now();
    assert!(
        wait > Duration::hours(23) && wait <= Duration::hours(24),
        "ECONOMY_MAX_DELAY_HOURS, got {wait}"
    );
}

#[sqlx::test]
async fn an_economy_job_whose_deadline_comes_first_starts_now(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let deadline = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body(json!({"economy": true, "notAfter": deadline})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let s = api
        .get(&format!("/v1/plan-jobs/{}", job_id(&a)), &token(user))
        .await;
    assert!(time(&s.body["runAfter"]) <= Utc::now());
    assert_eq!(s.body["economy"], true);
}

#[sqlx::test]
async fn an_ordinary_job_says_it_is_not_an_economy_job(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let a = api.create(user).await;
    let s = api
        .get(&format!("/v1/plan-jobs/{}", job_id(&a)), &token(user))
        .await;
    assert_eq!(s.body["economy"], false);
    assert_eq!(s.body["notAfter"], Value::Null);
    assert!(
        time(&s.body["runAfter"]) <= Utc::now(),
        "unaffected by the windows"
    );
}

#[sqlx::test]
async fn bad_economy_fields_are_refused_naming_the_field_and_make_no_job(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let past = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let soon = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let later = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let too_far = (Utc::now() + Duration::days(367)).to_rfc3339();
    for (extra, field) in [
        (json!({"economy": true, "notAfter": past}), "notAfter"),
        (json!({"economy": true, "notAfter": "tomorrow"}), "notAfter"),
        (json!({"economy": true, "notAfter": too_far}), "notAfter"),
        (
            json!({"economy": true, "notAfter": soon, "runAfter": later}),
            "notAfter",
        ),
        (json!({"notAfter": later}), "notAfter"),
        (json!({"economy": "yes"}), "economy"),
    ] {
        let a = api
            .post("/v1/plan-jobs", &token(user), body(extra.clone()))
            .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["field"], field, "{extra}: {}", a.body);
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
}

#[sqlx::test]
async fn economy_is_part_of_the_idempotency_keys_request(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let send = |extra: Value| {
        api.http
            .post(format!("{}/v1/plan-jobs", api.base))
            .bearer_auth(token(user))
            .header("Idempotency-Key", "economy-1")
            .json(&body(extra))
            .send()
    };
    let economy = json!({"economy": true});
    assert_eq!(
        send(economy.clone()).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(send(economy).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        send(json!({})).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

#[sqlx::test]
async fn replacing_an_economy_job_with_an_ordinary_one_runs_at_once(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let user = Uuid::new_v4();
    let first = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body(json!({"economy": true})),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let second = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            body(json!({"replace": true})),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["replacedJobId"], first.body["jobId"]);
    let s = api
        .get(&format!("/v1/plan-jobs/{}", job_id(&second)), &token(user))
        .await;
    assert_eq!(s.body["economy"], false);
    assert!(time(&s.body["runAfter"]) <= Utc::now());
}

#[sqlx::test]
async fn an_economy_schedule_says_so_and_refuses_a_bad_flag(pool: PgPool) {
    let (api, _) = api_in_a_peak(&pool).await;
    let me = token(Uuid::new_v4());
    let path = "/v1/schedules/weekly_base_plan";
    let schedule = |economy: Value| {
        json!({"everySeconds": 7 * 86_400, "economy": economy,
               "profileSnapshot": profile("muscle-gain-vegetarian-gym")})
    };
    let a = api
        .call(Method::PUT, path, Some(&me), Some(schedule(json!(true))))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["economy"], true);
    assert_eq!(api.get(path, &me).await.body["economy"], true);
    let bad = api
        .call(Method::PUT, path, Some(&me), Some(schedule(json!(1))))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert_eq!(bad.body["error"]["field"], "economy");
    // Replaced without the flag: an ordinary schedule again.
    let plain = api
        .call(Method::PUT, path, Some(&me), Some(schedule(Value::Null)))
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert_eq!(plain.body["economy"], false);
}
