//! Streamed calls (`chat_json_streaming`) against the mock: content as it
//! arrives, usage in both providers' shapes, the same errors as whole
//! answers, and the same retries in place.

use std::time::Instant;

use super::*;

/// A system prompt long enough for the provider's prefix cache (several
/// 64-token units), as the plan prompts are.
fn long_prompt(user: &str) -> ChatRequest {
    let rules = format!(
        "You plan training weeks. Answer with a json object. {}",
        "r".repeat(3000)
    );
    ChatRequest::new(vec![Message::system(rules), Message::user(user.to_owned())])
}

/// A responder whose answer is about `chars` characters long.
fn long_answer(
    chars: usize,
) -> impl Fn(&crate::dev::mock_llm::MockChatRequest) -> Value + Send + Sync {
    move |_| json!({"text": "a".repeat(chars.saturating_sub(11))})
}

async fn stream(c: &LlmClient, req: ChatRequest) -> (Result<ChatResponse, LlmError>, Vec<String>) {
    let mut deltas = Vec::new();
    let result = c
        .chat_json_streaming(req, |d| deltas.push(d.to_owned()))
        .await;
    (result, deltas)
}

#[tokio::test]
async fn content_arrives_piece_by_piece_before_the_call_returns() {
    let opts = MockLlmOptions::default()
        .with_responder(long_answer(2000))
        .with_ttft(Duration::from_millis(100))
        .with_tokens_per_second(500.0);
    let mock = MockLlm::start_with(opts).await.unwrap();
    let started = Instant::now();
    let mut arrivals = Vec::new();
    let resp = client(&mock)
        .chat_json_streaming(prompt(), |d| {
            arrivals.push((started.elapsed(), d.to_owned()))
        })
        .await
        .unwrap();
    let returned = started.elapsed();
    assert!(arrivals.len() > 100, "{} pieces", arrivals.len());
    let first = arrivals[0].0;
    // 500 tokens at 500 a second: the last pieces come a second after the first.
    assert!(
        first + Duration::from_millis(500) < returned,
        "first piece at {first:?}, returned at {returned:?}"
    );
    let joined: String = arrivals.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(joined, resp.raw);
    assert_eq!(resp.json, long_answer(2000)(&dummy_request()));
    assert_eq!(resp.finish_reason.as_deref(), Some("stop"));
    assert_eq!(resp.model, "deepseek-v4-flash");
    assert!(resp.id.is_some() && resp.latency >= Duration::from_millis(1000));
    assert_eq!(resp.usage.completion_tokens, 500);
    let body = &mock.requests_received()[0].body;
    assert_eq!(body["stream"], true);
    assert!(
        body.get("stream_options").is_none(),
        "DeepSeek always sends usage"
    );
}

fn dummy_request() -> crate::dev::mock_llm::MockChatRequest {
    crate::dev::mock_llm::MockChatRequest::parse(0, &json!({"model": "m", "messages": []})).unwrap()
}

#[tokio::test]
async fn usage_and_cache_hits_come_through_in_deepseeks_and_openais_shapes() {
    for provider in [None, Some("openai")] {
        let mock = MockLlm::start("ok").await;
        let c = LlmClient::new(LlmConfig {
            provider: provider.map(str::to_owned),
            thinking: None,
            ..config(&mock)
        })
        .unwrap();
        let (first, _) = stream(&c, long_prompt("alice")).await;
        let first = first.unwrap().usage;
        assert_eq!(first.cache_hit_tokens, Some(0), "{provider:?}");
        assert_eq!(first.cache_miss_tokens, Some(first.prompt_tokens));
        let (second, deltas) = stream(&c, long_prompt("bob")).await;
        let second = second.unwrap();
        let u = &second.usage;
        let hit = u.cache_hit_tokens.unwrap();
        assert!(hit >= 11 * 64 && hit % 64 == 0, "{provider:?}: {u:?}");
        assert_eq!(u.cache_miss_tokens, Some(u.prompt_tokens - hit));
        // The mock counts 4 characters a token.
        let expected = u32::try_from(second.raw.len().div_ceil(4)).unwrap();
        assert_eq!(u.completion_tokens, expected, "{provider:?}");
        assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
        assert_eq!(deltas.concat(), second.raw);
        let body = &mock.requests_received()[0].body;
        let asked = body.pointer("/stream_options/include_usage").cloned();
        assert_eq!(asked, provider.map(|_| json!(true)), "{provider:?}");
    }
}

#[tokio::test]
async fn a_streamed_answer_that_breaks_a_rule_fails_with_the_code_of_a_whole_one() {
    for mode in [
        "truncated",
        "content_filter",
        "insufficient_system_resource",
        "broken_json",
        "blank",
    ] {
        let mock = MockLlm::start(mode).await;
        let c = client(&mock);
        let whole = c.chat_json(prompt()).await.unwrap_err();
        let (streamed, _) = stream(&c, prompt()).await;
        let streamed = streamed.unwrap_err();
        assert_eq!(streamed.code(), whole.code(), "{mode}: {streamed}");
        let (LlmError::Output(s), LlmError::Output(w)) = (&streamed, &whole) else {
            panic!("{mode}: {streamed:?} / {whole:?}");
        };
        assert_eq!(s.problem, w.problem, "{mode}");
        assert_eq!(s.finish_reason, w.finish_reason, "{mode}");
        assert_eq!(
            s.usage.completion_tokens, w.usage.completion_tokens,
            "{mode}"
        );
    }
}

#[tokio::test]
async fn keep_alive_comments_before_the_chunks_are_ignored() {
    let opts = MockLlmOptions::new("keepalive:3".parse().unwrap())
        .with_keepalive_interval(Duration::from_millis(20));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let (resp, deltas) = stream(&client(&mock), prompt()).await;
    let resp = resp.unwrap();
    assert_eq!(resp.json, json!({"ok": true, "echo": 12}));
    assert!(!deltas.is_empty() && deltas.iter().all(|d| !d.contains("keep-alive")));
}

#[tokio::test]
async fn a_429_from_the_concurrency_cap_is_retried_in_place_and_the_call_succeeds() {
    let opts = MockLlmOptions::default()
        .with_ttft(Duration::from_millis(1500))
        .with_max_concurrent(1)
        .with_retry_after(Duration::from_millis(300));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let c = LlmClient::new(LlmConfig {
        overload_retries: 10,
        ..config(&mock)
    })
    .unwrap();
    let first = {
        let c = c.clone();
        tokio::spawn(async move { c.chat_json_streaming(prompt(), |_| {}).await })
    };
    mock.wait_for_requests(1, WAIT).await.unwrap();
    let (second, deltas) = stream(&c, prompt()).await;
    assert_eq!(
        second.unwrap().json["ok"],
        true,
        "the caller sees no refusal"
    );
    assert!(!deltas.is_empty());
    assert!(mock.refused() >= 1, "the second call was refused first");
    assert_eq!(mock.request_count(), 2, "then let through once");
    assert!(
        tokio::time::timeout(WAIT, first)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn a_stream_that_breaks_off_is_a_retryable_network_error() {
    let opts = MockLlmOptions::new("disconnect".parse().unwrap()).with_responder(long_answer(400));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let (e, _) = stream(&client(&mock), prompt()).await;
    let e = e.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NetworkError, "{e}");
    assert!(e.is_retryable());
}

/// A server answering every call with an event stream of `body`.
async fn events_200(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(move || async move { ([("content-type", "text/event-stream")], body) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_stream_that_ends_without_its_finish_is_a_retryable_bad_response() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"{\\\"ok\\\":\"}}]}\n\n";
    let c = LlmClient::new(LlmConfig::new(events_200(body).await, KEY)).unwrap();
    let (e, deltas) = stream(&c, prompt()).await;
    let e = e.unwrap_err();
    assert!(matches!(e, LlmError::BadResponse { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(deltas, ["{\"ok\":"]);
}

#[tokio::test]
async fn a_server_that_ignores_stream_and_answers_whole_still_hands_over_the_content() {
    let body = r#"{"id":"c","model":"m","choices":[{"message":{"content":"{\"a\":1}"},"finish_reason":"stop"}],
                  "usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(move || async move { ([("content-type", "application/json")], body) });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = LlmClient::new(LlmConfig::new(base, KEY)).unwrap();
    let (resp, deltas) = stream(&c, prompt()).await;
    assert_eq!(resp.unwrap().json, json!({"a": 1}));
    assert_eq!(deltas, ["{\"a\":1}"]);
}

#[tokio::test]
async fn the_deadline_covers_the_whole_stream() {
    let opts = MockLlmOptions::default()
        .with_responder(long_answer(4000))
        .with_tokens_per_second(100.0);
    let mock = MockLlm::start_with(opts).await.unwrap();
    let c = LlmClient::new(LlmConfig {
        timeout: Duration::from_millis(500),
        ..config(&mock)
    })
    .unwrap();
    let (e, deltas) = stream(&c, prompt()).await;
    assert_eq!(e.unwrap_err().code(), ErrorCode::AiTimeout);
    assert!(!deltas.is_empty(), "the stream had started");
}

#[tokio::test]
async fn a_streamed_call_records_its_time_to_first_token_and_usual_metrics() {
    let capture = super::limits::Capture::default();
    let _guard = ::metrics::set_default_local_recorder(&capture);
    let opts = MockLlmOptions::default().with_ttft(Duration::from_millis(50));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let resp = client(&mock)
        .chat_json_streaming(prompt(), |_| {})
        .await
        .unwrap();
    let ttft = capture.find(
        crate::llm::metrics::TIME_TO_FIRST_TOKEN_SECONDS,
        ("provider", "openai_compatible"),
    );
    assert_eq!(ttft.len(), 1);
    assert!(
        ttft[0] >= 0.05 && ttft[0] <= resp.latency.as_secs_f64(),
        "{ttft:?}"
    );
    assert_eq!(
        capture.find("plan_llm_requests_total", ("status", "ok")),
        [1.0]
    );
    assert_eq!(
        capture.find("plan_llm_tokens_total", ("kind", "completion")),
        [f64::from(resp.usage.completion_tokens)]
    );
    assert_eq!(
        capture
            .find(
                "plan_llm_request_duration_seconds",
                ("provider", "openai_compatible")
            )
            .len(),
        1
    );
}
