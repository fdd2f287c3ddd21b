//! The mock over HTTP: timing, streaming, the prefix cache and the
//! concurrency cap, read back with a plain HTTP client.

use super::*;

#[test]
fn jitter_varies_each_delay_above_the_latency_and_within_its_cap() {
    let ms = Duration::from_millis;
    let o = MockLlmOptions::default()
        .with_latency(ms(100))
        .with_jitter(ms(50));
    let delays: Vec<Duration> = (0..400).map(|_| o.delay()).collect();
    assert!(delays.iter().all(|d| *d >= ms(100) && *d <= ms(600)));
    let mean = delays.iter().sum::<Duration>() / 400;
    assert!(mean > ms(135) && mean < ms(165), "{mean:?}");
    let plain = MockLlmOptions::default().with_latency(ms(100));
    assert_eq!(plain.delay(), ms(100));
}

const WAIT: Duration = Duration::from_secs(10);

/// A responder whose answer is `chars` characters of JSON-ish text: long
/// enough that its tokens take a measurable time.
fn long_answer(chars: usize) -> impl Fn(&MockChatRequest) -> Value + Send + Sync + 'static {
    move |_| json!({"text": "a".repeat(chars.saturating_sub(11))})
}

fn request(stream: bool) -> Value {
    json!({
        "model": "deepseek-v4-flash",
        "messages": [
            {"role": "system", "content": "You plan weeks. Answer with a json object."},
            {"role": "user", "content": "Plan my week"},
        ],
        "response_format": {"type": "json_object"},
        "stream": stream,
    })
}

async fn post(mock: &MockLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", mock.base_url))
        .bearer_auth("sk-test-key")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `data:` payloads of an event stream, in order (comments left out).
fn data_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

/// The chunks of a streamed answer, parsed; the `[DONE]` must end it.
fn chunks(text: &str) -> Vec<Value> {
    let data = data_lines(text);
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn parsed(content: &str) -> Value {
    serde_json::from_str(content).unwrap()
}

fn streamed_content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap())
        .filter_map(|ch| ch["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn an_answer_takes_the_time_to_first_token_plus_its_tokens_at_the_rate() {
    let opts = MockLlmOptions::default()
        .with_responder(long_answer(4000))
        .with_ttft(Duration::from_millis(200))
        .with_tokens_per_second(2000.0);
    let mock = MockLlm::start_with(opts).await.unwrap();
    let started = std::time::Instant::now();
    let resp: Value = post(&mock, &request(false)).await.json().await.unwrap();
    let took = started.elapsed();
    let tokens = resp["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(tokens, 1000, "the answer is not shrunk");
    // 200 ms + 1,000 tokens at 2,000 a second.
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_millis(700) + WAIT, "{took:?}");
}

#[tokio::test]
async fn without_a_token_rate_an_answer_comes_after_the_first_token_alone() {
    let opts = MockLlmOptions::default()
        .with_responder(long_answer(400_000))
        .with_ttft(Duration::from_millis(50));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let started = std::time::Instant::now();
    let resp: Value = post(&mock, &request(false)).await.json().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp["usage"]["completion_tokens"], 100_000);
    // At any rate the mock would pace, 100,000 tokens would take minutes.
    assert!(took >= Duration::from_millis(50) && took < WAIT, "{took:?}");
}

#[tokio::test]
async fn a_streamed_answer_is_deepseeks_chunks_with_usage_in_the_last_then_done() {
    let mock = MockLlm::start_with(MockLlmOptions::default().with_responder(long_answer(100)))
        .await
        .unwrap();
    let resp = post(&mock, &request(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let chunks = chunks(&text);
    assert!(chunks.len() >= 100 / 16, "a chunk every few tokens: {text}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], chunks[0]["id"]);
        assert_eq!(c["model"], "deepseek-v4-flash");
        assert!(c["created"].as_u64().unwrap() > 0);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content = streamed_content(&chunks);
    assert_eq!(content, long_answer(100)(&dummy()).to_string());
    let (last, body) = chunks.split_last().unwrap();
    assert!(
        body.iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null() && c.get("usage").is_none())
    );
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["completion_tokens"], 25);
    assert!(last["usage"]["prompt_cache_miss_tokens"].as_u64().unwrap() > 0);
}

fn dummy() -> MockChatRequest {
    MockChatRequest::parse(0, &request(false)).unwrap()
}

#[tokio::test]
async fn with_include_usage_the_usage_comes_in_an_extra_chunk_without_choices() {
    let mock = MockLlm::start("ok").await;
    let mut body = request(true);
    body["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(&post(&mock, &body).await.text().await.unwrap());
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"].is_u64());
    let finish = rest.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(rest.iter().all(|c| c["usage"].is_null()), "{rest:?}");
    assert_eq!(
        parsed(&streamed_content(rest)),
        json!({"ok": true, "echo": 12})
    );
}

#[tokio::test]
async fn streamed_content_modes_break_the_content_as_unstreamed_ones_do() {
    for (mode, finish) in [
        ("truncated", "length"),
        ("content_filter", "content_filter"),
        (
            "insufficient_system_resource",
            "insufficient_system_resource",
        ),
        ("broken_json", "stop"),
        ("blank", "stop"),
    ] {
        let mock = MockLlm::start_with(
            MockLlmOptions::new(mode.parse().unwrap()).with_responder(long_answer(200)),
        )
        .await
        .unwrap();
        let whole: Value = post(&mock, &request(false)).await.json().await.unwrap();
        let chunks = chunks(&post(&mock, &request(true)).await.text().await.unwrap());
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], finish, "{mode}");
        assert_eq!(
            streamed_content(&chunks),
            whole["choices"][0]["message"]["content"].as_str().unwrap(),
            "{mode}"
        );
        assert_eq!(
            last["usage"]["completion_tokens"], whole["usage"]["completion_tokens"],
            "{mode}"
        );
    }
}

#[tokio::test]
async fn a_streamed_keepalive_sends_comments_before_the_first_chunk() {
    let opts = MockLlmOptions::new("keepalive:3".parse().unwrap())
        .with_keepalive_interval(Duration::from_millis(10));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let text = post(&mock, &request(true)).await.text().await.unwrap();
    assert!(text.starts_with(&": keep-alive\n\n".repeat(3)), "{text}");
    assert_eq!(text.matches(": keep-alive").count(), 3);
    assert_eq!(
        parsed(&streamed_content(&chunks(&text))),
        json!({"ok": true, "echo": 12})
    );
}

#[tokio::test]
async fn a_streamed_disconnect_breaks_off_after_some_chunks() {
    let opts = MockLlmOptions::new("disconnect".parse().unwrap()).with_responder(long_answer(200));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let mut resp = post(&mock, &request(true)).await;
    let mut got = Vec::new();
    let broke_off = loop {
        match resp.chunk().await {
            Ok(Some(b)) => got.extend_from_slice(&b),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke_off, "the stream ended cleanly");
    let text = String::from_utf8(got).unwrap();
    assert!(
        !data_lines(&text).is_empty() && !text.contains("[DONE]"),
        "{text}"
    );
}

#[tokio::test]
async fn streamed_chunks_are_paced_at_the_token_rate_after_the_first_token() {
    let opts = MockLlmOptions::default()
        .with_responder(long_answer(2000))
        .with_ttft(Duration::from_millis(100))
        .with_tokens_per_second(1000.0);
    let mock = MockLlm::start_with(opts).await.unwrap();
    let started = std::time::Instant::now();
    let mut resp = post(&mock, &request(true)).await;
    let mut first = None;
    while let Some(b) = resp.chunk().await.unwrap() {
        if first.is_none() && b.windows(7).any(|w| w == b"content") {
            first = Some(started.elapsed());
        }
    }
    let (first, total) = (first.unwrap(), started.elapsed());
    assert!(first >= Duration::from_millis(100), "{first:?}");
    // 500 tokens at 1,000 a second after the first chunk.
    assert!(total >= Duration::from_millis(600), "{total:?}");
    assert!(total < Duration::from_millis(600) + WAIT, "{total:?}");
    assert!(first < total, "{first:?} {total:?}");
}

#[tokio::test]
async fn a_repeated_prompt_hits_the_prefix_cache_in_whole_units() {
    let mock = MockLlm::start("ok").await;
    let mut body = request(false);
    body["messages"][0]["content"] = json!(format!("Answer in json. {}", "r".repeat(2000)));
    let usage = |v: Value| v["usage"].clone();
    let first = usage(post(&mock, &body).await.json().await.unwrap());
    assert_eq!(first["prompt_cache_hit_tokens"], 0);
    assert_eq!(first["prompt_cache_miss_tokens"], first["prompt_tokens"]);
    body["messages"][1]["content"] = json!("Another user");
    let second = usage(post(&mock, &body).await.json().await.unwrap());
    let hit = second["prompt_cache_hit_tokens"].as_u64().unwrap();
    // "system\n" + 2,016 characters + "\n": 7 whole units of 256 characters.
    assert_eq!(hit, 7 * 64);
    assert_eq!(second["prompt_tokens_details"]["cached_tokens"], hit);
    assert_eq!(
        hit + second["prompt_cache_miss_tokens"].as_u64().unwrap(),
        second["prompt_tokens"].as_u64().unwrap()
    );
    let stats = mock.stats();
    assert_eq!(stats.cache_hit_tokens, hit);
    assert!(stats.prompt_tokens > hit);
}

#[tokio::test]
async fn a_call_past_the_concurrency_cap_gets_a_429_with_retry_after_and_is_counted() {
    let opts = MockLlmOptions::default()
        .with_ttft(Duration::from_secs(2))
        .with_max_concurrent(1)
        .with_retry_after(Duration::from_millis(1500));
    let mock = MockLlm::start_with(opts).await.unwrap();
    let url = mock.base_url.clone();
    let held = tokio::spawn(async move {
        let mock_url = url;
        reqwest::Client::new()
            .post(format!("{mock_url}/chat/completions"))
            .bearer_auth("sk-test-key")
            .json(&request(true))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    mock.wait_for_requests(1, WAIT).await.unwrap();
    let refused = post(&mock, &request(false)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after-ms"], "1500");
    assert_eq!(refused.headers()["retry-after"], "2");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(mock.refused(), 1);
    assert_eq!(mock.request_count(), 1, "a refused call is not received");

    let text = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(post(&mock, &request(false)).await.status(), 200);
    let stats: MockStats = reqwest::get(format!("{}/_mock/stats", mock.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            stats.calls,
            stats.refused,
            stats.answered,
            stats.peak_in_flight
        ),
        (2, 1, 2, 1)
    );
    assert_eq!(stats.in_flight, 0);
}
