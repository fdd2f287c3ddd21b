//! Rollback and reading any version: `GET /v1/plans/{id}`,
//! `POST /v1/plans/{id}/activate` and `POST /v1/meal-plans/{id}/activate`,
//! one active plan per user, others' plans not found.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

/// Versions 1..=n of `table` for `user`, the last active; their ids.
async fn versions(pool: &PgPool, table: &str, user: Uuid, n: i32) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for v in 1..=n {
        let id: Uuid = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "insert into {table} (user_id, version, plan, targets, source, is_active) \
             values ($1, $2, jsonb_build_object('days', '[]'::jsonb, 'v', $2), '{{\"kcal\": 2500}}', \
             'offline', $2 = $3) returning id"
        )))
        .bind(user)
        .bind(v)
        .bind(n)
        .fetch_one(pool)
        .await
        .unwrap();
        ids.push(id);
    }
    ids
}

async fn active_ids(pool: &PgPool, table: &str, user: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select id from {table} where user_id = $1 and is_active"
    )))
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn an_older_weekly_plan_is_read_and_made_active_again(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let ids = versions(&pool, "weekly_base_plans", user, 3).await;

    let first = api
        .get(&format!("/v1/plans/{}", ids[0]), &token(user))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["version"], 1);
    assert_eq!(first.body["isActive"], false);
    assert_eq!(first.body["plan"]["v"], 1);

    let back = api
        .post(
            &format!("/v1/plans/{}/activate", ids[0]),
            &token(user),
            json!({}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body["isActive"], true);
    assert_eq!(
        active_ids(&pool, "weekly_base_plans", user).await,
        vec![ids[0]]
    );
    let active = api.get("/v1/plans/active", &token(user)).await;
    assert_eq!(active.body["planId"], ids[0].to_string());

    // Activating the active one again changes nothing.
    let again = api
        .post(
            &format!("/v1/plans/{}/activate", ids[0]),
            &token(user),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        active_ids(&pool, "weekly_base_plans", user).await,
        vec![ids[0]]
    );

    // Another user's plan, or no plan at all, is not found, and nothing moves.
    let stranger = Uuid::new_v4();
    for path in [
        format!("/v1/plans/{}/activate", ids[1]),
        format!("/v1/plans/{}/activate", Uuid::new_v4()),
        "/v1/plans/not-a-uuid/activate".to_owned(),
    ] {
        let r = api.post(&path, &token(stranger), json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let r = api
        .get(&format!("/v1/plans/{}", ids[1]), &token(stranger))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        active_ids(&pool, "weekly_base_plans", user).await,
        vec![ids[0]]
    );
}

#[sqlx::test]
async fn an_older_meal_plan_is_made_active_again(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let ids = versions(&pool, "meal_plans", user, 2).await;
    let back = api
        .post(
            &format!("/v1/meal-plans/{}/activate", ids[0]),
            &token(user),
            json!({}),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body["version"], 1);
    assert_eq!(back.body["isActive"], true);
    assert_eq!(active_ids(&pool, "meal_plans", user).await, vec![ids[0]]);
    let theirs = api
        .post(
            &format!("/v1/meal-plans/{}/activate", ids[1]),
            &token(Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(active_ids(&pool, "meal_plans", user).await, vec![ids[0]]);
}

#[sqlx::test]
async fn the_generation_history_pages_newest_first_with_outcomes(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    // Five finished jobs a minute apart, the newest failed; one of another user.
    let mut ids = Vec::new();
    for i in 0..5 {
        let id: Uuid = sqlx::query_scalar(
            "insert into plan_generation_jobs (user_id, kind, profile_snapshot, status, error_code, \
             attempt_count, created_at, started_at, completed_at) values ($1, 'weekly_base_plan', \
             '{}', $2::plan_job_status, $3, 1, now() - make_interval(mins => 10 - $4), \
             now() - make_interval(mins => 10 - $4) + interval '2 seconds', \
             now() - make_interval(mins => 10 - $4) + interval '32 seconds') returning id",
        )
        .bind(user)
        .bind(if i == 4 { "failed" } else { "completed" })
        .bind(if i == 4 { Some("AI_UNAVAILABLE") } else { None })
        .bind(i)
        .fetch_one(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    api.create(Uuid::new_v4()).await;

    let first = api.get("/v1/plan-jobs?limit=2", &token(user)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let page: Vec<String> = first.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(page, vec![ids[4].to_string(), ids[3].to_string()]);
    let newest = &first.body["jobs"][0];
    assert_eq!(newest["status"], "failed");
    assert_eq!(newest["error"]["code"], "AI_UNAVAILABLE");
    assert_eq!(newest["waitSeconds"], 2.0);
    assert_eq!(newest["runSeconds"], 30.0);
    assert_eq!(first.body["nextBefore"], ids[3].to_string());

    // Page after page until the last, which says so.
    let mut seen = page;
    let mut before = first.body["nextBefore"].as_str().map(str::to_owned);
    while let Some(b) = before {
        let next = api
            .get(&format!("/v1/plan-jobs?limit=2&before={b}"), &token(user))
            .await;
        assert_eq!(next.status, StatusCode::OK, "{}", next.body);
        for j in next.body["jobs"].as_array().unwrap() {
            seen.push(j["jobId"].as_str().unwrap().to_owned());
        }
        before = next.body["nextBefore"].as_str().map(str::to_owned);
    }
    let expect: Vec<String> = ids.iter().rev().map(Uuid::to_string).collect();
    assert_eq!(
        seen, expect,
        "every job once, newest first, none of another user"
    );

    for bad in [
        "before=nope",
        &format!("before={}", Uuid::new_v4()),
        "limit=500",
    ] {
        let r = api.get(&format!("/v1/plan-jobs?{bad}"), &token(user)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
    }
}
