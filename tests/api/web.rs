//! What browsers and caches see: CORS only for the configured origins,
//! and no /v1 answer stored or content-sniffed.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

const APP: &str = "https://app.example.com";

/// The answer's headers to `method path` from `origin`, with the headers
/// of a preflight when `preflight` names the method asked for.
async fn from_origin(
    api: &Api,
    method: Method,
    path: &str,
    origin: &str,
    preflight: Option<&str>,
) -> (StatusCode, HeaderMap) {
    let mut req = api
        .http
        .request(method, format!("{}{path}", api.base))
        .header("origin", origin);
    match preflight {
        Some(asked) => {
            req = req.header("access-control-request-method", asked).header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            );
        }
        None => req = req.bearer_auth(token(Uuid::new_v4())),
    }
    let res = req.send().await.unwrap();
    (res.status(), res.headers().clone())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

#[sqlx::test]
async fn preflights_are_answered_for_the_allowed_origins_only(pool: PgPool) {
    let api = start(
        &pool,
        plan_worker::config::ApiSettings {
            cors_allowed_origins: Some(format!("{APP}, http://localhost:8081").parse().unwrap()),
            ..settings()
        },
    )
    .await;

    let (status, h) = from_origin(&api, Method::OPTIONS, "/v1/plan-jobs", APP, Some("POST")).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(header(&h, "access-control-allow-origin"), APP);
    let methods = header(&h, "access-control-allow-methods").to_lowercase();
    // PUT and DELETE: the schedules.
    for method in ["get", "post", "put", "delete"] {
        assert!(methods.contains(method), "{method} not in {methods}");
    }
    let allowed = header(&h, "access-control-allow-headers").to_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }
    assert!(!header(&h, "access-control-max-age").is_empty());

    let (status, h) = from_origin(&api, Method::GET, "/v1/plan-jobs/active", APP, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&h, "access-control-allow-origin"), APP);
    let exposed = header(&h, "access-control-expose-headers").to_lowercase();
    assert!(
        exposed.contains("retry-after") && exposed.contains("location"),
        "{exposed}"
    );

    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
    ] {
        let (status, h) =
            from_origin(&api, Method::OPTIONS, "/v1/plan-jobs", origin, Some("POST")).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{origin}: not a preflight"
        );
        assert!(h.get("access-control-allow-origin").is_none(), "{origin}");
        let (_, h) = from_origin(&api, Method::GET, "/v1/plan-jobs/active", origin, None).await;
        assert!(h.get("access-control-allow-origin").is_none(), "{origin}");
    }
}

#[sqlx::test]
async fn without_allowed_origins_there_are_no_cors_headers(pool: PgPool) {
    let api = start(&pool, settings()).await;
    for (method, preflight) in [(Method::OPTIONS, Some("POST")), (Method::GET, None)] {
        let (_, h) = from_origin(&api, method, "/v1/plan-jobs", APP, preflight).await;
        let cors: Vec<_> = h
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{cors:?}");
    }
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
