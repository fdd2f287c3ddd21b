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
