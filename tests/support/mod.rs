//! Set-up shared by the integration test binaries: the mock LLM, a client
//! pointed at it, workers, bounded waits on job events, the sample
//! profiles and Supabase-shaped tokens. Each binary uses part of it.
#![allow(dead_code)]

pub mod raw_foods;

use std::time::Duration;

use plan_worker::config::WorkerSettings;
use plan_worker::dev::mock_answers::mock_options;
use plan_worker::dev::mock_llm::MockLlm;
use plan_worker::jobs::weekly_plan::{KIND, PlanHandler};
use plan_worker::llm::{LlmClient, LlmConfig};
use plan_worker::queue::events::{self, JobEvent};
use plan_worker::queue::store::JobStatus;
use plan_worker::queue::{Registry, Worker, WorkerHandle};
use sqlx::PgPool;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

/// A port nothing listens on at this moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sample profile from examples/profiles.
pub fn profile(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/examples/profiles/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The mock LLM answering plan prompts with `script` (e.g. "503,ok").
pub async fn mock(script: &str) -> MockLlm {
    MockLlm::start_with(mock_options(script.parse().unwrap()))
        .await
        .unwrap()
}

/// The bodies of the day repairs the mock was sent (parallel layout).
pub fn day_repairs(mock: &MockLlm) -> Vec<String> {
    mock.requests_received()
        .iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains("The day below breaks these rules"))
        .collect()
}

/// A client of the mock, with no rate limit.
pub fn client(mock: &MockLlm, timeout: Duration) -> LlmClient {
    LlmClient::new(LlmConfig {
        base_url: mock.base_url.clone(),
        api_key: Some("test-key".into()),
        timeout,
        requests_per_minute: 0,
        ..LlmConfig::default()
    })
    .unwrap()
}

/// A worker running the real plan handler, listening before it returns.
pub async fn plan_worker(
    pool: &PgPool,
    llm: Option<LlmClient>,
    fallback: bool,
    settings: WorkerSettings,
) -> WorkerHandle {
    plan_worker_laid_out(pool, llm, fallback, settings, Default::default()).await
}

/// `plan_worker` asking for stage 2 in `layout`.
pub async fn plan_worker_laid_out(
    pool: &PgPool,
    llm: Option<LlmClient>,
    fallback: bool,
    settings: WorkerSettings,
    layout: plan_worker::jobs::weekly_plan::Layout,
) -> WorkerHandle {
    let route = plan_worker::jobs::route(llm.as_ref());
    let registry = Registry::new()
        .register(KIND, PlanHandler::new(llm, fallback).with_layout(layout))
        .route(KIND, route);
    start_worker(pool, registry, settings).await
}

/// A worker running every plan kind: weekly plans, meal plans and swaps,
/// and, given an image source, the meal photos.
pub async fn all_kinds_worker(
    pool: &PgPool,
    llm: Option<LlmClient>,
    images: Option<(plan_worker::images::unsplash::Unsplash, u32)>,
    settings: WorkerSettings,
) -> WorkerHandle {
    use plan_worker::jobs::meal_plan::{
        self, MealPlanHandler, images::MealImagesHandler, swap::MealSwapHandler,
    };
    let meals = MealPlanHandler::new(llm.clone(), false, images.is_some());
    let mut registry = Registry::new()
        .register(KIND, PlanHandler::new(llm, false))
        .register(meal_plan::SWAP_KIND, MealSwapHandler::new(&meals))
        .register(meal_plan::KIND, meals);
    if let Some((client, per_hour)) = images {
        registry = registry.register(
            meal_plan::IMAGES_KIND,
            MealImagesHandler::new(client, per_hour),
        );
    }
    start_worker(pool, registry, settings).await
}

/// A worker with `registry`, listening before it returns.
pub async fn start_worker(
    pool: &PgPool,
    registry: Registry,
    settings: WorkerSettings,
) -> WorkerHandle {
    let handle = Worker::new(
        pool.clone(),
        pool.connect_options().as_ref().clone(),
        registry,
        settings,
    )
    .expect("valid settings")
    .spawn();
    assert!(
        handle.wait_listening(WAIT).await,
        "worker {} never listened",
        handle.id
    );
    handle
}

/// A LISTEN on `plan_job_events` opened before the action under test, so
/// that no status change is missed (the library's waiter; a wait that
/// fails fails the test, naming what it waited for).
pub struct JobEvents {
    inner: events::JobEvents,
}

impl JobEvents {
    pub async fn open(pool: &PgPool) -> Self {
        let inner = events::JobEvents::open(pool.connect_options().as_ref())
            .await
            .expect("test listener");
        Self { inner }
    }

    /// Waits until `job` reaches `status`; returns the event.
    pub async fn wait_status(&mut self, job: Uuid, status: &str, within: Duration) -> JobEvent {
        let status: JobStatus = status.parse().expect("a job status");
        self.inner
            .wait_status(job, status, within)
            .await
            .unwrap_or_else(|e| panic!("job {job} did not become {status}: {e}"))
    }

    /// The events of the next notification.
    pub async fn next(&mut self, within: Duration) -> Vec<JobEvent> {
        self.inner.next(within).await.expect("a job event in time")
    }

    /// Waits for the first event that `matches`.
    pub async fn wait_for(
        &mut self,
        matches: impl Fn(&JobEvent) -> bool,
        within: Duration,
    ) -> JobEvent {
        self.inner
            .wait_for(matches, within)
            .await
            .expect("the awaited job event in time")
    }

    /// Waits until `n` jobs have reached `status`.
    pub async fn wait_count(&mut self, status: &str, n: usize, within: Duration) {
        let status: JobStatus = status.parse().expect("a job status");
        self.inner
            .wait_count(status, n, within)
            .await
            .unwrap_or_else(|e| panic!("{n} jobs did not become {status}: {e}"));
    }
}

/// Claims shaped like a Supabase user's access token.
pub fn claims(user: Uuid) -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp();
    serde_json::json!({
        "sub": user.to_string(), "role": "authenticated", "aud": "authenticated",
        "iss": "https://ref.supabase.co/auth/v1", "exp": now + 600, "iat": now,
        "session_id": Uuid::new_v4().to_string(), "is_anonymous": false,
    })
}

/// An HS256 token of `claims` signed with `secret`.
pub fn sign(claims: &serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
