//! What browsers and caches see: no /v1 answer stored or content-sniffed.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

#[sqlx::test]
async fn every_v1_answer_is_neither_stored_nor_sniffed(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = token(Uuid::new_v4());
    let answers = [
        api.create(Uuid::new_v4()).await,
        api.get("/v1/plan-jobs/active", &user).await,
        api.get("/v1/targets", &user).await,
        api.call(Method::GET, "/v1/plans", None, None).await,
        api.get("/v1/no-such-route", &user).await,
        api.call(Method::GET, "/v1/openapi.json", None, None).await,
    ];
    for a in answers {
        assert_eq!(
            header(&a.headers, "cache-control"),
            "no-store",
            "{}",
            a.status
        );
        assert_eq!(
            header(&a.headers, "x-content-type-options"),
            "nosniff",
            "{}",
            a.status
        );
    }
}
