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

fn config(mock: &MockLlm) -> LlmConfig {
    LlmConfig {
        timeout: Duration::from_secs(10),
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

#[tokio::test]
async fn a_429_with_retry_after_is_ai_rate_limit_and_carries_the_delay() {
    let e = fail("rate_limit:7").await;
    assert_eq!(e.code(), ErrorCode::AiRateLimit);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.status(), Some(429));
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_429_with_retry_after_ms_prefers_the_millisecond_header() {
    let e = fail("rate_limit_ms:1500").await;
    assert_eq!(e.code(), ErrorCode::AiRateLimit);
    // The mock also sends `Retry-After: 2`; the finer header wins.
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn a_429_for_insufficient_quota_is_ai_quota_exceeded_not_a_rate_limit() {
    let e = fail("quota_exceeded").await;
    assert_eq!(e.code(), ErrorCode::AiQuotaExceeded);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_402_insufficient_balance_is_ai_quota_exceeded_and_keeps_the_body() {
    let e = fail("insufficient_balance").await;
    assert_eq!(e.code(), ErrorCode::AiQuotaExceeded);
    assert!(!e.is_retryable());
    let LlmError::Http(h) = &e else {
        panic!("{e:?}")
    };
    let api = h.api.as_ref().unwrap();
    assert_eq!(api.message, "Insufficient Balance");
    assert_eq!(api.code.as_deref(), Some("invalid_request_error"));
    assert!(e.to_string().contains("HTTP 402"), "{e}");
}

#[tokio::test]
async fn a_500_is_ai_unavailable() {
    let e = fail("server_error").await;
    assert_eq!(
        (e.code(), e.status()),
        (ErrorCode::AiUnavailable, Some(500))
    );
}

#[tokio::test]
async fn a_503_overloaded_is_ai_unavailable() {
    let e = fail("overloaded").await;
    assert_eq!(
        (e.code(), e.status()),
        (ErrorCode::AiUnavailable, Some(503))
    );
}

#[tokio::test]
async fn a_502_html_page_from_a_proxy_is_ai_unavailable_with_a_text_excerpt() {
    let e = fail("bad_gateway").await;
    assert_eq!(
        (e.code(), e.status()),
        (ErrorCode::AiUnavailable, Some(502))
    );
    let LlmError::Http(h) = &e else {
        panic!("{e:?}")
    };
    assert!(h.api.is_none());
    assert!(h.excerpt.contains("502 Bad Gateway"));
}

#[tokio::test]
async fn a_504_is_ai_unavailable() {
    let e = fail("http:504").await;
    assert_eq!(
        (e.code(), e.status()),
        (ErrorCode::AiUnavailable, Some(504))
    );
}

#[tokio::test]
async fn a_401_is_config_error() {
    let e = fail("unauthorized").await;
    assert_eq!((e.code(), e.status()), (ErrorCode::ConfigError, Some(401)));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_403_and_a_404_are_config_errors() {
    for script in ["http:403", "http:404"] {
        assert_eq!(
            fail(script).await.code(),
            ErrorCode::ConfigError,
            "{script}"
        );
    }
}

#[tokio::test]
async fn a_400_or_422_is_config_error_because_a_wrong_request_stays_wrong() {
    for script in ["http:400", "http:422"] {
        assert_eq!(
            fail(script).await.code(),
            ErrorCode::ConfigError,
            "{script}"
        );
    }
}

#[tokio::test]
async fn a_prompt_that_never_says_json_is_refused_like_openai_does() {
    let mock = MockLlm::start("ok").await;
    let req = ChatRequest::new(vec![Message::user("Plan my week")]);
    let e = client(&mock).chat_json(req).await.unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::ConfigError, Some(400)));
    assert!(
        e.to_string().contains("must contain the word 'json'"),
        "{e}"
    );
}

#[test]
fn a_missing_or_blank_api_key_is_config_error_before_any_request() {
    let none = LlmConfig::default();
    assert_eq!(
        LlmClient::new(none).unwrap_err().code(),
        ErrorCode::ConfigError
    );
    let blank = LlmConfig::new("https://api.deepseek.com", "  ");
    assert_eq!(
        LlmClient::new(blank).unwrap_err().code(),
        ErrorCode::ConfigError
    );
    let zero_slots = LlmConfig {
        max_in_flight: 0,
        ..LlmConfig::new("http://x", "k")
    };
    assert_eq!(
        LlmClient::new(zero_slots).unwrap_err().code(),
        ErrorCode::ConfigError
    );
}

#[tokio::test]
async fn blank_content_is_json_parse_error() {
    let e = fail("blank").await;
    assert_eq!(e.code(), ErrorCode::JsonParseError);
    let LlmError::Output(o) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(o.problem, OutputProblem::Blank);
    assert_eq!(o.finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn broken_json_is_json_parse_error_with_an_excerpt_of_at_most_500_chars() {
    let big = json!({"days": (0..200).map(|d| json!({"day": d, "note": "rest and hydrate"})).collect::<Vec<_>>()});
    let opts =
        MockLlmOptions::new("broken_json".parse().unwrap()).with_responder(move |_| big.clone());
    let mock = MockLlm::start_with(opts).await.unwrap();
    let e = client(&mock).chat_json(prompt()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::JsonParseError);
    let LlmError::Output(o) = &e else {
        panic!("{e:?}")
    };
    assert!(
        matches!(o.problem, OutputProblem::NotJson(_)),
        "{:?}",
        o.problem
    );
    assert!(o.excerpt.starts_with("{\"days\""));
    assert!(o.excerpt.chars().count() <= 500);
    assert!(
        e.usage().unwrap().completion_tokens > 0,
        "billed tokens are kept"
    );
}

#[tokio::test]
async fn content_that_is_json_but_not_an_object_is_json_parse_error() {
    let opts = MockLlmOptions::new(Script::default()).with_responder(|_| json!([1, 2, 3]));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let e = client(&mock).chat_json(prompt()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::JsonParseError);
    assert!(matches!(&e, LlmError::Output(o) if o.problem == OutputProblem::NotObject));
}

#[tokio::test]
async fn finish_reason_length_is_ai_output_truncated_with_the_billed_tokens() {
    let mock = MockLlm::start("truncated").await;
    let e = client(&mock)
        .chat_json(prompt().with_max_tokens(512))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AiOutputTruncated);
    assert_eq!(e.usage().unwrap().completion_tokens, 512);
    let LlmError::Output(o) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(o.finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn insufficient_system_resource_is_ai_unavailable() {
    let e = fail("insufficient_system_resource").await;
    assert_eq!(e.code(), ErrorCode::AiUnavailable);
    assert_eq!(e.status(), None);
}

#[tokio::test]
async fn content_filter_is_json_parse_error_and_says_so() {
    let e = fail("content_filter").await;
    assert_eq!(e.code(), ErrorCode::JsonParseError);
    assert!(e.to_string().contains("content filter"), "{e}");
}

#[tokio::test]
async fn blank_keep_alive_lines_before_the_body_are_tolerated() {
    let opts = MockLlmOptions::new("keepalive:4".parse().unwrap())
        .with_keepalive_interval(Duration::from_millis(20));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let resp = client(&mock).chat_json(prompt()).await.unwrap();
    assert_eq!(resp.json["ok"], true);
    assert!(resp.latency >= Duration::from_millis(80));
}

#[tokio::test]
async fn a_body_that_breaks_off_is_network_error() {
    let e = fail("disconnect").await;
    assert_eq!(e.code(), ErrorCode::NetworkError, "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = LlmClient::new(LlmConfig::new(format!("http://{addr}"), KEY)).unwrap();
    let e = c.chat_json(prompt()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NetworkError);
    assert!(e.to_string().contains("onnect"), "{e}");
}

#[tokio::test]
async fn a_slow_answer_past_the_deadline_is_ai_timeout() {
    let mock = MockLlm::start("slow:10000").await;
    let cfg = LlmConfig {
        timeout: Duration::from_millis(200),
        ..config(&mock)
    };
    let e = LlmClient::new(cfg)
        .unwrap()
        .chat_json(prompt())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AiTimeout);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_script_answers_429_twice_then_ok_for_every_later_call() {
    let mock = MockLlm::start("429:1,429:2,ok").await;
    let c = client(&mock);
    assert_eq!(
        c.chat_json(prompt()).await.unwrap_err().retry_after(),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        c.chat_json(prompt()).await.unwrap_err().retry_after(),
        Some(Duration::from_secs(2))
    );
    for _ in 0..3 {
        assert!(c.chat_json(prompt()).await.is_ok());
    }
    let modes: Vec<String> = mock
        .requests_received()
        .iter()
        .map(|r| r.mode.to_string())
        .collect();
    assert_eq!(modes, ["rate_limit:1", "rate_limit:2", "ok", "ok", "ok"]);
}

#[tokio::test]
async fn a_named_responder_answers_only_the_calls_that_select_it() {
    let opts = MockLlmOptions::new("ok:diet_breaking,ok".parse().unwrap())
        .with_named_responder("diet_breaking", |_| json!({"meal": "chicken curry"}));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let c = client(&mock);
    assert_eq!(
        c.chat_json(prompt()).await.unwrap().json["meal"],
        "chicken curry"
    );
    assert_eq!(c.chat_json(prompt()).await.unwrap().json["ok"], true);
}

#[tokio::test]
async fn a_script_naming_an_unregistered_responder_is_refused_at_start() {
    let opts = MockLlmOptions::new("ok:nope".parse().unwrap());
    let err = MockLlm::start_with(opts).await.err().unwrap();
    assert!(err.to_string().contains("ok:nope"), "{err}");
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_display() {
    let mock = MockLlm::start("unauthorized").await;
    let cfg = config(&mock);
    let c = LlmClient::new(cfg.clone()).unwrap();
    let e = c.chat_json(prompt()).await.unwrap_err();
    let texts = [
        format!("{cfg:?}"),
        format!("{c:?}"),
        format!("{e}"),
        format!("{e:?}"),
    ];
    for t in texts {
        assert!(!t.contains(KEY), "key leaked in {t}");
    }
    // The provider shows the key's tail, as DeepSeek does; that is all.
    assert!(e.to_string().contains("****cdef"), "{e}");
}

#[tokio::test]
async fn the_in_flight_cap_holds_the_third_call_until_one_finishes() {
    let mock = MockLlm::start("slow:2000").await;
    let cfg = LlmConfig {
        max_in_flight: 2,
        ..config(&mock)
    };
    let c = LlmClient::new(cfg).unwrap();
    let calls = (0..3).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.chat_json(prompt()).await })
    });
    let handles: Vec<_> = calls.collect();
    mock.wait_for_requests(2, WAIT).await.unwrap();
    assert_eq!(c.in_flight(), 2);
    for h in handles {
        assert!(h.await.unwrap().is_ok());
    }
    let got = mock.requests_received();
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].answered_before, got[1].answered_before), (0, 0));
    assert!(
        got[2].answered_before >= 1,
        "the third call reached the server while two were in flight"
    );
}

#[tokio::test]
async fn a_dropped_call_frees_its_in_flight_slot() {
    let mock = MockLlm::start("slow:10000,ok").await;
    let cfg = LlmConfig {
        max_in_flight: 1,
        ..config(&mock)
    };
    let c = LlmClient::new(cfg).unwrap();
    let stuck = tokio::spawn({
        let c = c.clone();
        async move { c.chat_json(prompt()).await }
    });
    mock.wait_for_requests(1, WAIT).await.unwrap();
    assert_eq!(c.in_flight(), 1);
    stuck.abort();
    assert!(stuck.await.unwrap_err().is_cancelled());
    assert_eq!(c.in_flight(), 0);
    assert!(
        c.chat_json(prompt()).await.is_ok(),
        "the freed slot serves the next call"
    );
}

#[tokio::test]
async fn the_call_past_the_per_minute_rate_waits_for_the_next_cell() {
    let mock = MockLlm::start("ok").await;
    let cfg = LlmConfig {
        requests_per_minute: 2,
        ..config(&mock)
    };
    // The limiter's manual clock jumps over waits instead of sleeping.
    let limits = Limits::with_clock(2, 32, LimitClock::manual());
    let c = LlmClient::with_limits(cfg, limits).unwrap();
    c.chat_json(prompt()).await.unwrap();
    c.chat_json(prompt()).await.unwrap();
    assert_eq!(
        c.limits().now(),
        Duration::ZERO,
        "a minute's burst goes at once"
    );
    c.chat_json(prompt()).await.unwrap();
    assert_eq!(
        c.limits().now(),
        Duration::from_secs(30),
        "the third call waited for the next cell"
    );
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn waiting_for_more_requests_than_arrive_times_out_with_the_count() {
    let mock = MockLlm::start("ok").await;
    client(&mock).chat_json(prompt()).await.unwrap();
    let err = mock
        .wait_for_requests(2, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got 1"), "{err}");
}

#[tokio::test]
async fn a_call_without_a_bearer_token_is_refused_by_the_mock() {
    let mock = MockLlm::start("ok").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "json"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(mock.requests_received()[0].authorization, None);
}

// ---- metrics ---------------------------------------------------------------

type Sample = (String, Vec<(String, String)>, f64);

/// Records every counter increment and histogram sample with its labels.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<Sample>>>);

struct Handle(Capture, ::metrics::Key);

impl Handle {
    fn push(&self, v: f64) {
        let labels = self
            .1
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        self.0
            .0
            .lock()
            .unwrap()
            .push((self.1.name().to_owned(), labels, v));
    }
}

impl ::metrics::CounterFn for Handle {
    fn increment(&self, v: u64) {
        self.push(v as f64);
    }
    fn absolute(&self, v: u64) {
        self.push(v as f64);
    }
}

impl ::metrics::HistogramFn for Handle {
    fn record(&self, v: f64) {
        self.push(v);
    }
}

impl ::metrics::Recorder for Capture {
    fn describe_counter(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: ::metrics::KeyName,
        _: Option<::metrics::Unit>,
        _: ::metrics::SharedString,
    ) {
    }
    fn register_counter(
        &self,
        key: &::metrics::Key,
        _: &::metrics::Metadata<'_>,
    ) -> ::metrics::Counter {
        ::metrics::Counter::from_arc(Arc::new(Handle(self.clone(), key.clone())))
    }
    fn register_gauge(&self, _: &::metrics::Key, _: &::metrics::Metadata<'_>) -> ::metrics::Gauge {
        ::metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &::metrics::Key,
        _: &::metrics::Metadata<'_>,
    ) -> ::metrics::Histogram {
        ::metrics::Histogram::from_arc(Arc::new(Handle(self.clone(), key.clone())))
    }
}

impl Capture {
    fn find(&self, name: &str, label: (&str, &str)) -> Vec<f64> {
        let samples = self.0.lock().unwrap();
        let has = |ls: &Vec<(String, String)>| ls.iter().any(|(k, v)| k == label.0 && v == label.1);
        samples
            .iter()
            .filter(|(n, ls, _)| n == name && has(ls))
            .map(|s| s.2)
            .collect()
    }
}

// The current-thread test runtime keeps every task on this thread, so a
// thread-local recorder sees the client's metrics.
#[tokio::test]
async fn calls_record_status_duration_and_tokens_with_provider_and_model() {
    let capture = Capture::default();
    let _guard = ::metrics::set_default_local_recorder(&capture);
    let mock = MockLlm::start("429,ok").await;
    let c = client(&mock);
    c.chat_json(prompt()).await.unwrap_err();
    let ok = c.chat_json(prompt()).await.unwrap();

    assert_eq!(
        capture.find("plan_llm_requests_total", ("status", "AI_RATE_LIMIT")),
        [1.0]
    );
    assert_eq!(
        capture.find("plan_llm_requests_total", ("status", "ok")),
        [1.0]
    );
    assert_eq!(
        capture
            .find(
                "plan_llm_request_duration_seconds",
                ("model", "deepseek-v4-flash")
            )
            .len(),
        2
    );
    let prompt_tokens = capture.find("plan_llm_tokens_total", ("kind", "prompt"));
    assert_eq!(prompt_tokens, [f64::from(ok.usage.prompt_tokens)]);
    let all = capture.0.lock().unwrap();
    assert!(
        all.iter()
            .all(|(_, ls, _)| ls.contains(&("provider".into(), "openai_compatible".into())))
    );
}

#[tokio::test]
async fn a_dropped_call_is_counted_as_cancelled() {
    let capture = Capture::default();
    let _guard = ::metrics::set_default_local_recorder(&capture);
    let mock = MockLlm::start("slow:10000").await;
    let c = client(&mock);
    let call = c.chat_json(prompt());
    let waited = tokio::time::timeout(Duration::from_millis(100), call).await;
    assert!(waited.is_err());
    assert_eq!(
        capture.find("plan_llm_requests_total", ("status", "CANCELLED")),
        [1.0]
    );
}

#[test]
fn usage_round_trips_through_the_attempt_row_json() {
    let u = Usage {
        prompt_tokens: 6,
        completion_tokens: 92,
        total_tokens: 98,
        cache_hit_tokens: Some(0),
        ..Usage::default()
    };
    let v: Value = serde_json::to_value(&u).unwrap();
    assert_eq!(serde_json::from_value::<Usage>(v).unwrap(), u);
}

#[tokio::test]
async fn serve_answers_until_its_shutdown_signal_and_applies_the_latency() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let opts = MockLlmOptions::new("ok".parse().unwrap()).with_latency(Duration::from_millis(100));
    let server = tokio::spawn(crate::dev::mock_llm::serve(
        listener,
        opts,
        stop.clone().cancelled_owned(),
    ));
    let c = LlmClient::new(LlmConfig::new(base, KEY)).unwrap();
    let resp = c.chat_json(prompt()).await.unwrap();
    assert!(
        resp.latency >= Duration::from_millis(100),
        "{:?}",
        resp.latency
    );
    stop.cancel();
    // The client keeps its idle pooled connection: graceful shutdown closes it.
    tokio::time::timeout(WAIT, server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A server that answers every call with 200 and `body`.
async fn fixed_200(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || async move { body });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_200_of_only_keep_alive_lines_or_a_foreign_body_is_ai_unavailable() {
    for body in [
        "\n\n\n\n",
        "<html>captive portal</html>",
        r#"{"object":"list","data":[]}"#,
    ] {
        let c = LlmClient::new(LlmConfig::new(fixed_200(body).await, KEY)).unwrap();
        let e = c.chat_json(prompt()).await.unwrap_err();
        assert!(matches!(e, LlmError::BadResponse { .. }), "{body:?}: {e:?}");
        assert_eq!(e.code(), ErrorCode::AiUnavailable);
    }
}

#[tokio::test]
async fn http2_carries_many_calls_on_one_connection_past_hypers_default_stream_limit() {
    let mock = MockLlm::start("slow:5000").await;
    let client = LlmClient::new(LlmConfig {
        http: HttpVersion::Http2,
        max_in_flight: 300,
        requests_per_minute: 0,
        ..config(&mock)
    })
    .unwrap();
    let calls: Vec<_> = (0..300).map(|_| client.chat_json(prompt())).collect();
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    let received = mock.requests_received();
    assert_eq!(received.len(), 300);
    assert!(
        received
            .iter()
            .all(|r| r.version == axum::http::Version::HTTP_2)
    );
    // All 300 were in flight together: each arrived before any answer.
    assert!(received.iter().all(|r| r.answered_before == 0));

    let h1 = MockLlm::start("ok").await;
    let client = LlmClient::new(LlmConfig {
        http: HttpVersion::Http1,
        ..config(&h1)
    })
    .unwrap();
    client.chat_json(prompt()).await.unwrap();
    assert_eq!(
        h1.requests_received()[0].version,
        axum::http::Version::HTTP_11
    );
}
