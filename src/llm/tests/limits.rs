//! Scripts, secrets, the in-flight cap, cancellation and metrics.

use super::*;

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
async fn overloaded_answers_wait_for_a_place_and_go_again_with_the_limit_halved() {
    let mock = MockLlm::start("rate_limit_ms:150,overloaded,ok").await;
    let c = LlmClient::new(LlmConfig {
        overload_retries: 4,
        max_in_flight: 8,
        ..config(&mock)
    })
    .unwrap();
    let started = std::time::Instant::now();
    assert!(
        c.chat_json(prompt()).await.is_ok(),
        "the caller sees no refusal"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the 429's Retry-After was waited out"
    );
    assert_eq!(mock.request_count(), 3);
    // 8 -> 4 (429) -> 2 (503); one success is half a window of two.
    assert_eq!(c.limits().limit(), 2);
    assert!(c.chat_json(prompt()).await.is_ok());
    assert_eq!(
        c.limits().limit(),
        3,
        "a window of two successes: one more place"
    );
}

#[tokio::test]
async fn a_refusal_asking_for_a_long_wait_or_past_the_retries_goes_to_the_caller() {
    let mock = MockLlm::start("rate_limit:30,ok").await;
    let c = LlmClient::new(LlmConfig {
        overload_retries: 4,
        overload_wait_max: Duration::from_secs(10),
        ..config(&mock)
    })
    .unwrap();
    let e = c.chat_json(prompt()).await.unwrap_err();
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_secs(30)),
        "the job defers"
    );
    assert_eq!(mock.request_count(), 1);

    let mock = MockLlm::start("rate_limit_ms:10").await;
    let c = LlmClient::new(LlmConfig {
        overload_retries: 2,
        ..config(&mock)
    })
    .unwrap();
    let e = c.chat_json(prompt()).await.unwrap_err();
    assert_eq!(e.code(), crate::error_code::ErrorCode::AiRateLimit);
    assert_eq!(mock.request_count(), 3, "the call and two retries");
    let quota = MockLlm::start("quota_exceeded,ok").await;
    let c = LlmClient::new(LlmConfig {
        overload_retries: 4,
        ..config(&quota)
    })
    .unwrap();
    assert!(
        c.chat_json(prompt()).await.is_err(),
        "a spent quota is no overload"
    );
    assert_eq!(quota.request_count(), 1);
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
pub(super) struct Capture(Arc<Mutex<Vec<Sample>>>);

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
        // A zero increment only makes the series exist (LlmMetrics::new).
        if v > 0 {
            self.push(v as f64);
        }
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
    pub(super) fn find(&self, name: &str, label: (&str, &str)) -> Vec<f64> {
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
