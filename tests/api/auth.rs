//! Refused callers write nothing; users see only their own jobs; the
//! operator sees all; ES256 keys come from the JWKS, refetched on rotation,
//! fetched once for many waiting tokens, not hammered while it fails, and
//! not trusted forever; anonymous users are refused unless allowed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::response::IntoResponse;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use plan_worker::api::auth::{Auth, AuthError};
use plan_worker::config::ApiSettings;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{RwLock, watch};
use uuid::Uuid;

use crate::common::*;

#[sqlx::test]
async fn bad_or_missing_tokens_get_401_and_nothing_is_written(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let body = json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")});

    let good = claims(user);
    let mut expired = good.clone();
    expired["exp"] = json!(jsonwebtoken::get_current_timestamp() - 3600);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("anon");
    let payload = sign(&good, SECRET).split('.').nth(1).unwrap().to_owned();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        (
            "bad signature",
            Some(sign(&good, "another-secret-of-the-same-length-xx")),
        ),
        ("expired", Some(sign(&expired, SECRET))),
        ("alg none", Some(alg_none)),
        ("wrong audience", Some(sign(&wrong_aud, SECRET))),
        ("crit header", Some(with_crit(&good))),
    ];
    for (case, bearer) in cases {
        let a = api
            .call(
                Method::POST,
                "/v1/plan-jobs",
                bearer.as_deref(),
                Some(body.clone()),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{case}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "UNAUTHORIZED", "{case}");
        assert!(a.headers.contains_key("www-authenticate"), "{case}");
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
    assert_eq!(count(&pool, "plan_job_idempotency_keys").await, 0);

    // The same request with the good token goes through.
    let ok = api
        .call(
            Method::POST,
            "/v1/plan-jobs",
            Some(&sign(&good, SECRET)),
            Some(body),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

/// An HS256 token whose header names an extension as critical (RFC 7515
/// section 4.1.11), which this service does not understand.
fn with_crit(claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["b64".into()]);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[sqlx::test]
async fn another_users_job_is_not_found_and_the_operator_sees_it(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let job = job_id(&api.create(alice).await);
    let path = format!("/v1/plan-jobs/{job}");

    let own = api.get(&path, &token(alice)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["status"], "pending");

    let bobs = token(bob);
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::GET, format!("{path}/events")),
        (Method::POST, format!("{path}/cancel")),
        (Method::POST, format!("{path}/retry")),
    ] {
        let a = api.call(method.clone(), &p, Some(&bobs), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method} {p}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "NOT_FOUND");
    }
    let status: String =
        sqlx::query_scalar("select status::text from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "pending", "bob's cancel touched nothing");

    let admin = api.get(&path, ADMIN).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.body["jobId"], job.to_string());
    let create_as_admin = api
        .post(
            "/v1/plan-jobs",
            ADMIN,
            json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
        )
        .await;
    assert_eq!(create_as_admin.status, StatusCode::FORBIDDEN);
    let cancelled = api.act(job, "cancel", ADMIN).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["previousStatus"], "pending");
}

/// A JWKS endpoint whose key set the test can change, counting fetches;
/// it can be made to fail, or to hold its answers until opened.
struct KeyServer {
    url: String,
    keys: Arc<RwLock<JwkSet>>,
    fetches: watch::Sender<usize>,
    failing: Arc<AtomicBool>,
    open: watch::Sender<bool>,
}

impl KeyServer {
    fn fetches(&self) -> usize {
        *self.fetches.borrow()
    }
}

async fn key_server() -> KeyServer {
    let keys = Arc::new(RwLock::new(JwkSet { keys: vec![] }));
    let fetches = watch::Sender::new(0);
    let failing = Arc::new(AtomicBool::new(false));
    let open = watch::Sender::new(true);
    let (k, f, fail, o) = (keys.clone(), fetches.clone(), failing.clone(), open.clone());
    let app = axum::Router::new().route(
        "/auth/v1/.well-known/jwks.json",
        axum::routing::get(move || {
            let (k, f, fail, o) = (k.clone(), f.clone(), fail.clone(), o.clone());
            async move {
                f.send_modify(|n| *n += 1);
                let _ = o.subscribe().wait_for(|open| *open).await;
                if fail.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                axum::Json(serde_json::to_value(&*k.read().await).unwrap()).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    KeyServer {
        url: format!("http://{addr}/auth/v1/.well-known/jwks.json"),
        keys,
        fetches,
        failing,
        open,
    }
}

fn jwks_settings(url: &str) -> ApiSettings {
    ApiSettings {
        supabase_jwt_secret: None,
        supabase_jwks_url: Some(url.to_owned()),
        supabase_jwt_issuer: Some("https://ref.supabase.co/auth/v1".into()),
        ..settings()
    }
}

/// A fresh P-256 key: what signs, and its public JWK under `kid`.
fn es256_key(kid: &str) -> (EncodingKey, Jwk) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let key = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    (key, jwk)
}

fn es256_token(key: &EncodingKey, kid: &str, user: Uuid) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims(user), key).unwrap()
}

#[sqlx::test]
async fn es256_tokens_are_checked_against_the_jwks_which_is_refetched_on_rotation(pool: PgPool) {
    let keys = key_server().await;
    let (k1, jwk1) = es256_key("k1");
    keys.keys.write().await.keys.push(jwk1);
    let s = jwks_settings(&keys.url);
    let auth = Auth::new(&s, reqwest::Client::new()).with_jwks_min_refetch(Duration::ZERO);
    let api = start_with(&pool, s, |mut st| {
        st.auth = Arc::new(auth);
        st
    })
    .await;
    let user = Uuid::new_v4();

    let first = api.create(Uuid::new_v4()).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED, "HS256 is off");
    let a = api
        .post(
            "/v1/plan-jobs",
            &es256_token(&k1, "k1", user),
            json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let again = api
        .get("/v1/plan-jobs/active", &es256_token(&k1, "k1", user))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(keys.fetches(), 1, "cached");

    // The project rotates to k2: a token with the new kid refetches.
    let (k2, jwk2) = es256_key("k2");
    keys.keys.write().await.keys.push(jwk2);
    let rotated = api
        .get("/v1/plan-jobs/active", &es256_token(&k2, "k2", user))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(keys.fetches(), 2);

    // A key the project never published, and k1's kid on k2's signature.
    let (k3, _) = es256_key("k3");
    let forged = api
        .get("/v1/plan-jobs/active", &es256_token(&k3, "k3", user))
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let swapped = api
        .get("/v1/plan-jobs/active", &es256_token(&k2, "k1", user))
        .await;
    assert_eq!(swapped.status, StatusCode::UNAUTHORIZED);
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

/// Polls `call` once: whether it is still waiting.
async fn pending<F: Future>(call: &mut Pin<Box<F>>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx).is_pending())).await
}

#[tokio::test]
async fn fifty_tokens_with_an_unknown_kid_wait_for_the_one_fetch_in_flight() {
    let keys = key_server().await;
    let (_, jwk1) = es256_key("k1");
    keys.keys.write().await.keys.push(jwk1);
    // No throttle: only the single flight keeps the waiters from fetching.
    let auth = Arc::new(
        Auth::new(&jwks_settings(&keys.url), reqwest::Client::new())
            .with_jwks_min_refetch(Duration::ZERO),
    );
    let (k9, _) = es256_key("k9");
    let bearer = || format!("Bearer {}", es256_token(&k9, "k9", Uuid::new_v4()));

    keys.open.send_replace(false);
    let first = tokio::spawn({
        let (auth, bearer) = (auth.clone(), bearer());
        async move { auth.verify(Some(&bearer)).await }
    });
    tokio::time::timeout(WAIT, keys.fetches.subscribe().wait_for(|n| *n == 1))
        .await
        .expect("the first token never fetched the JWKS")
        .unwrap();
    // The other 49 arrive while that fetch is held open.
    let bearers: Vec<String> = (0..49).map(|_| bearer()).collect();
    let mut rest: Vec<_> = bearers
        .iter()
        .map(|b| Box::pin(auth.verify(Some(b))))
        .collect();
    for call in &mut rest {
        assert!(
            pending(call).await,
            "answered without waiting for the fetch"
        );
        // A fresh task poll each, so that none is held back by tokio's budget.
        tokio::task::yield_now().await;
    }
    keys.open.send_replace(true);
    let first = tokio::time::timeout(WAIT, first).await.unwrap().unwrap();
    let rest = tokio::time::timeout(WAIT, futures_util::future::join_all(rest))
        .await
        .unwrap();
    assert_eq!(first, Err(AuthError::UnknownKey));
    assert!(
        rest.iter().all(|r| *r == Err(AuthError::UnknownKey)),
        "{rest:?}"
    );
    assert_eq!(keys.fetches(), 1, "one outbound fetch for 50 tokens");
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_asked_at_most_once_per_throttle_window() {
    let keys = key_server().await;
    keys.failing.store(true, Ordering::SeqCst);
    let (k1, _) = es256_key("k1");
    let bearers: Vec<String> = (0..50)
        .map(|_| format!("Bearer {}", es256_token(&k1, "k1", Uuid::new_v4())))
        .collect();

    // The default window (5 s): fifty tokens at once, one fetch.
    let auth = Auth::new(&jwks_settings(&keys.url), reqwest::Client::new());
    let answers = tokio::time::timeout(
        WAIT,
        futures_util::future::join_all(bearers.iter().map(|b| auth.verify(Some(b)))),
    )
    .await
    .unwrap();
    assert!(
        answers
            .iter()
            .all(|a| *a == Err(AuthError::KeysUnavailable)),
        "{answers:?}"
    );
    assert_eq!(keys.fetches(), 1);

    // After the window, the endpoint is asked again, once.
    let window = Duration::from_secs(1);
    let auth =
        Auth::new(&jwks_settings(&keys.url), reqwest::Client::new()).with_jwks_min_refetch(window);
    for b in &bearers[..10] {
        assert_eq!(auth.verify(Some(b)).await, Err(AuthError::KeysUnavailable));
    }
    assert_eq!(keys.fetches(), 2);
    // Waiting out the window is what is tested: no event marks its end.
    tokio::time::sleep(window).await;
    assert_eq!(
        auth.verify(Some(&bearers[0])).await,
        Err(AuthError::KeysUnavailable)
    );
    assert_eq!(keys.fetches(), 3);
}

#[sqlx::test]
async fn cached_keys_are_refused_once_older_than_the_stale_bound(pool: PgPool) {
    let keys = key_server().await;
    let (k1, jwk1) = es256_key("k1");
    keys.keys.write().await.keys.push(jwk1);
    let s = ApiSettings {
        // Every request tries to refresh; keys are trusted for 1 s after
        // the last successful fetch.
        jwks_cache_seconds: 0,
        jwks_max_stale_seconds: 1,
        ..jwks_settings(&keys.url)
    };
    let auth = Auth::new(&s, reqwest::Client::new()).with_jwks_min_refetch(Duration::ZERO);
    let api = start_with(&pool, s, |mut st| {
        st.auth = Arc::new(auth);
        st
    })
    .await;
    let user = Uuid::new_v4();
    let fetched = std::time::Instant::now();
    let ok = api
        .get("/v1/plan-jobs/active", &es256_token(&k1, "k1", user))
        .await;
    assert_eq!(ok.status, StatusCode::NOT_FOUND, "signed in: {}", ok.body);

    keys.failing.store(true, Ordering::SeqCst);
    let stale = api
        .get("/v1/plan-jobs/active", &es256_token(&k1, "k1", user))
        .await;
    assert!(
        fetched.elapsed() < Duration::from_secs(1),
        "too slow to test"
    );
    assert_eq!(
        stale.status,
        StatusCode::NOT_FOUND,
        "stale keys within the bound still sign in: {}",
        stale.body
    );

    // Waiting out the bound is what is tested: no event marks its end.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused = api
        .get("/v1/plan-jobs/active", &es256_token(&k1, "k1", user))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "UNAVAILABLE");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("too old"), "{message}");
    assert!(keys.fetches() >= 3, "every request tried to refresh");
}

#[sqlx::test]
async fn anonymous_users_are_refused_unless_allowed(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let mut anonymous = claims(Uuid::new_v4());
    anonymous["is_anonymous"] = json!(true);
    let bearer = sign(&anonymous, SECRET);
    let body = json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")});
    for (method, path, body) in [
        (Method::POST, "/v1/plan-jobs", Some(body.clone())),
        (Method::GET, "/v1/plan-jobs/active", None),
    ] {
        let a = api.call(method.clone(), path, Some(&bearer), body).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["code"], "ANONYMOUS_USER");
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);

    let allowing = start(
        &pool,
        ApiSettings {
            allow_anonymous_users: true,
            ..settings()
        },
    )
    .await;
    let created = allowing
        .call(Method::POST, "/v1/plan-jobs", Some(&bearer), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}
