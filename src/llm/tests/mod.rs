//! The client against the mock server: one test per outcome mapping, plus
//! the request shape, keep-alive lines, limits, cancellation and metrics.
//! Waits are on the mock's signals with a bound, never bare sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::limit::{LimitClock, Limits};
use super::*;
use crate::dev::mock_llm::{MockLlm, MockLlmOptions, Script};
use crate::error_code::ErrorCode;

const KEY: &str = "sk-test-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);

/// Refusals reach the caller at once here (no overload retries in place):
/// the tests of error mapping see every answer; the retries have their own.
fn config(mock: &MockLlm) -> LlmConfig {
    LlmConfig {
        timeout: Duration::from_secs(10),
        overload_retries: 0,
        ..LlmConfig::new(&mock.base_url, KEY)
    }
}

fn client(mock: &MockLlm) -> LlmClient {
    LlmClient::new(config(mock)).unwrap()
}

fn prompt() -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("You plan training weeks. Answer with a json object."),
        Message::user("Plan my week"),
    ])
}

async fn fail(script: &str) -> LlmError {
    let mock = MockLlm::start(script).await;
    client(&mock).chat_json(prompt()).await.unwrap_err()
}

#[tokio::test]
async fn an_ok_answer_returns_the_parsed_object_with_usage_and_model() {
    let mock = MockLlm::start("ok").await;
    let resp = client(&mock).chat_json(prompt()).await.unwrap();
    assert_eq!(resp.json, json!({"ok": true, "echo": 12}));
    assert_eq!(resp.raw, resp.json.to_string());
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.model, "deepseek-v4-flash");
    assert!(resp.id.is_some());
    assert!(resp.usage.prompt_tokens > 0 && resp.usage.completion_tokens > 0);
    assert_eq!(
        resp.usage.total_tokens,
        resp.usage.prompt_tokens + resp.usage.completion_tokens
    );
    assert_eq!(
        resp.usage.cache_hit_tokens.unwrap() + resp.usage.cache_miss_tokens.unwrap(),
        resp.usage.prompt_tokens
    );
}

#[tokio::test]
async fn the_request_carries_the_bearer_json_mode_limits_thinking_and_user_id() {
    let mock = MockLlm::start("ok").await;
    let req = prompt().with_user_id("u_5f2c");
    client(&mock).chat_json(req).await.unwrap();
    let got = &mock.requests_received()[0];
    assert_eq!(
        got.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(got.content_type.as_deref(), Some("application/json"));
    let b = &got.body;
    assert_eq!(b["model"], "deepseek-v4-flash");
    assert_eq!(b["response_format"], json!({"type": "json_object"}));
    assert_eq!(b["stream"], false);
    assert_eq!(b["max_tokens"], 8192);
    assert_eq!(b["temperature"], 1.0);
    assert_eq!(b["thinking"], json!({"type": "disabled"}));
    assert_eq!(b["user_id"], "u_5f2c");
    assert_eq!(
        b["messages"][0],
        json!({"role": "system", "content": "You plan training weeks. Answer with a json object."})
    );
    assert!(b.get("max_completion_tokens").is_none() && b.get("safety_identifier").is_none());
}

#[tokio::test]
async fn unset_switches_are_omitted_and_a_call_may_override_max_tokens() {
    let mock = MockLlm::start("ok").await;
    let cfg = LlmConfig {
        thinking: None,
        temperature: None,
        ..config(&mock)
    };
    LlmClient::new(cfg)
        .unwrap()
        .chat_json(prompt().with_max_tokens(1000))
        .await
        .unwrap();
    let b = &mock.requests_received()[0].body;
    assert_eq!(b["max_tokens"], 1000);
    for absent in ["thinking", "temperature", "user_id"] {
        assert!(b.get(absent).is_none(), "{absent} was sent");
    }
}

#[tokio::test]
async fn openai_gets_max_completion_tokens_and_safety_identifier() {
    let mock = MockLlm::start("ok").await;
    let cfg = LlmConfig {
        provider: Some("openai".into()),
        thinking: None,
        ..config(&mock)
    };
    LlmClient::new(cfg)
        .unwrap()
        .chat_json(prompt().with_user_id("h1"))
        .await
        .unwrap();
    let b = &mock.requests_received()[0].body;
    assert_eq!(b["max_completion_tokens"], 8192);
    assert_eq!(b["safety_identifier"], "h1");
    assert!(b.get("max_tokens").is_none() && b.get("user_id").is_none());
}

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_or_v1_reaches_the_endpoint() {
    let mock = MockLlm::start("ok").await;
    for base in [
        format!("{}/", mock.base_url),
        format!("{}/v1", mock.base_url),
    ] {
        let cfg = LlmConfig {
            base_url: base.clone(),
            ..config(&mock)
        };
        assert!(
            LlmClient::new(cfg)
                .unwrap()
                .chat_json(prompt())
                .await
                .is_ok(),
            "{base}"
        );
    }
}

mod errors;
mod limits;
mod streaming;
