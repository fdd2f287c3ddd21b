//! An API server per test, tokens, requests, and bounded waits.

use std::time::Duration;

use plan_worker::api::{self, ApiState};
use plan_worker::config::ApiSettings;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::support::{WAIT, claims, profile, sign};

pub const SECRET: &str = "a-test-secret-of-at-least-32-characters";
pub const ADMIN: &str = "operator-secret-token";

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub stop: CancellationToken,
}

/// Settings of a test API: HS256 secret, operator token, no limits unless
/// a test sets them.
pub fn settings() -> ApiSettings {
    ApiSettings {
        supabase_jwt_secret: Some(SECRET.into()),
        admin_token: Some(ADMIN.into()),
        create_rate_limit: "0/hour".parse().unwrap(),
        regeneration_cooldown: "0".parse().unwrap(),
        create_burst: 0,
        ..ApiSettings::default()
    }
}

pub async fn start(pool: &PgPool, s: ApiSettings) -> Api {
    start_with(pool, s, |state| state).await
}

/// Starts the API with a state adjusted by `adjust`, and waits until its
/// event listener is listening.
pub async fn start_with(
    pool: &PgPool,
    s: ApiSettings,
    adjust: impl FnOnce(ApiState) -> ApiState,
) -> Api {
    let stop = CancellationToken::new();
    let options = pool.connect_options().as_ref().clone();
    let state = adjust(ApiState::new(pool.clone(), options, &s, stop.clone()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(api::serve(listener, state.clone(), Duration::from_secs(10)));
    let mut listening = state.events.listening.subscribe();
    tokio::time::timeout(WAIT, listening.wait_for(|l| *l))
        .await
        .expect("the API's event listener never listened")
        .unwrap();
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        stop,
    }
}

pub fn token(user: Uuid) -> String {
    sign(&claims(user), SECRET)
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(bearer), None)
            .await
    }

    pub async fn post(&self, path: &str, bearer: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(bearer), Some(body))
            .await
    }

    /// `POST /v1/plan-jobs/{job}/{action}` (cancel, retry) as `bearer`.
    pub async fn act(&self, job: Uuid, action: &str, bearer: &str) -> Answer {
        self.post(&format!("/v1/plan-jobs/{job}/{action}"), bearer, json!({}))
            .await
    }

    /// `create`, with an `Idempotency-Key`; returns the status.
    pub async fn create_with_key(&self, user: Uuid, key: &str) -> StatusCode {
        self.http
            .post(format!("{}/v1/plan-jobs", self.base))
            .bearer_auth(token(user))
            .header("Idempotency-Key", key)
            .json(&json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Creates a weekly plan job for `user` from a sample profile.
    pub async fn create(&self, user: Uuid) -> Answer {
        self.post(
            "/v1/plan-jobs",
            &token(user),
            json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
        )
        .await
    }
}

pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

pub fn job_id(a: &Answer) -> Uuid {
    a.body["jobId"].as_str().unwrap().parse().unwrap()
}

pub fn retry_after(a: &Answer) -> u64 {
    a.headers["retry-after"].to_str().unwrap().parse().unwrap()
}
