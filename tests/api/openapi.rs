//! The OpenAPI document: served as kept in the repository, and it
//! describes exactly the routes the router serves.

use std::collections::BTreeSet;

use plan_worker::telemetry::metrics::API_ROUTES;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::common::*;

#[sqlx::test]
async fn the_served_document_is_the_repository_file_and_lists_every_route(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let res = api
        .http
        .get(format!("{}/v1/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "no token needed");
    let served = res.text().await.unwrap();
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/plan-worker.v1.json"
    ))
    .unwrap();
    assert_eq!(served, file);

    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routed: BTreeSet<&str> = API_ROUTES.iter().copied().collect();
    assert_eq!(documented, routed);
    for route in API_ROUTES.iter().filter(|r| r.contains("{id}")) {
        let a = api
            .call(
                reqwest::Method::GET,
                &route.replace("{id}", "not-a-uuid"),
                Some(&token(uuid::Uuid::new_v4())),
                None,
            )
            .await;
        assert!(
            matches!(
                a.status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{route}: {}",
            a.status
        );
        assert!(a.body["error"]["code"].is_string(), "{route}: JSON error");
    }
}
