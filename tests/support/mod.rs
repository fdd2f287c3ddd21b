//! Set-up shared by the test binaries that run the plan pipeline: the mock
//! LLM, a client pointed at it, a worker with the real plan handler, and
//! the sample profiles. Each binary uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use plan_worker::config::WorkerSettings;
use plan_worker::llm::mock::MockLlm;
use plan_worker::llm::{LlmClient, LlmConfig};
use plan_worker::plan::handler::{KIND, PlanHandler};
use plan_worker::plan::mock_answers::mock_options;
use plan_worker::queue::{Registry, Worker, WorkerHandle};
use sqlx::PgPool;

pub const WAIT: Duration = Duration::from_secs(20);

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
    let registry = Registry::new().register(KIND, PlanHandler::new(llm, fallback));
    let handle = Worker::new(
        pool.clone(),
        pool.connect_options().as_ref().clone(),
        registry,
        settings,
    )
    .unwrap()
    .spawn();
    assert!(
        handle.wait_listening(WAIT).await,
        "worker {} never listened",
        handle.id
    );
    handle
}

/// Claims shaped like a Supabase user's access token.
pub fn claims(user: uuid::Uuid) -> serde_json::Value {
    let now = jsonwebtoken::get_current_timestamp();
    serde_json::json!({
        "sub": user.to_string(), "role": "authenticated", "aud": "authenticated",
        "iss": "https://ref.supabase.co/auth/v1", "exp": now + 600, "iat": now,
        "session_id": uuid::Uuid::new_v4().to_string(), "is_anonymous": false,
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
