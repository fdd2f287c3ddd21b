//! How every provider outcome maps to an error code.

use super::*;

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
async fn a_running_mock_takes_a_new_script_over_http() {
    let mock = MockLlm::start("ok").await;
    let http = reqwest::Client::new();
    let put = |body: &'static str| {
        http.put(format!("{}/_mock/script", mock.base_url))
            .body(body)
            .send()
    };
    assert_eq!(put("not_a_mode").await.unwrap().status(), 400);
    assert_eq!(put("402").await.unwrap().status(), 204);
    let e = client(&mock).chat_json(prompt()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AiQuotaExceeded);
}
