//! A mock OpenAI-compatible chat completions server. Tests start it in
//! process ([`MockLlm::start`]); `plan-worker mock-llm` runs it with [`serve`].
//!
//! Each call is answered by the next entry of a [`Script`] (`"429,429,ok"`;
//! the last entry repeats). Content comes from a responder, a function of the
//! request: the default one, or a named one selected per call with `ok:NAME`.
//! Like the real services, the mock refuses a call without a bearer token
//! (401) and a JSON-mode call whose messages never say "json" (400).
//!
//! It can cost time like a real model (a time to first token, then tokens
//! per second), stream (`"stream": true`), report cache hits from a prefix
//! cache of the prompts it has seen, and refuse calls past a concurrency cap
//! with a 429, as DeepSeek does per account.

mod cache;
mod mode;
mod reply;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use mode::{MockMode, MockModeError, Script};

/// Builds the JSON content of an `ok` answer from the request.
pub type Responder = Arc<dyn Fn(&MockChatRequest) -> Value + Send + Sync>;

/// A chat completions request as the mock received it.
#[derive(Debug, Clone)]
pub struct MockChatRequest {
    /// 0-based number of the call since the script was set.
    pub index: usize,
    pub model: String,
    pub messages: Vec<MockMessage>,
    pub max_tokens: Option<u32>,
    pub user_id: Option<String>,
    /// The whole body, for fields the typed view leaves out.
    pub body: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MockMessage {
    pub role: String,
    #[serde(default)]
    pub content: String,
}

impl MockChatRequest {
    /// Reads a request body as the mock would (also for tests of responders).
    pub fn parse(index: usize, body: &Value) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Typed {
            model: String,
            messages: Vec<MockMessage>,
            #[serde(default)]
            max_tokens: Option<u32>,
            #[serde(default)]
            max_completion_tokens: Option<u32>,
            #[serde(default)]
            user_id: Option<String>,
        }
        let t = Typed::deserialize(body).map_err(|e| format!("Invalid Format: {e}"))?;
        Ok(MockChatRequest {
            index,
            model: t.model,
            messages: t.messages,
            max_tokens: t.max_tokens.or(t.max_completion_tokens),
            user_id: t.user_id,
            body: body.clone(),
        })
    }

    /// The content of the last user message.
    pub fn last_user_message(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
    }

    /// The content of the first system message.
    pub fn system_message(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.role == "system")
            .map(|m| m.content.as_str())
    }

    fn wants_json_object(&self) -> bool {
        self.body.pointer("/response_format/type") == Some(&json!("json_object"))
    }

    fn wants_stream(&self) -> bool {
        self.body.get("stream") == Some(&json!(true))
    }

    /// OpenAI's `stream_options.include_usage`: usage in a chunk of its own.
    fn wants_usage_chunk(&self) -> bool {
        self.body.pointer("/stream_options/include_usage") == Some(&json!(true))
    }

    fn mentions_json(&self) -> bool {
        self.messages
            .iter()
            .any(|m| m.content.to_ascii_lowercase().contains("json"))
    }
}

/// What the mock recorded about one call.
#[derive(Clone)]
pub struct ReceivedRequest {
    /// 0-based number of the call since the script was set.
    pub index: usize,
    /// The body; `Value::Null` when it was not JSON.
    pub body: Value,
    /// The Authorization header as sent (test keys only; never logged).
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The script entry that answered it.
    pub mode: MockMode,
    /// HTTP version of the exchange.
    pub version: axum::http::Version,
    /// Answers the mock had finished when this call arrived: with an
    /// in-flight cap of N, call N+1 arrives only after one answer is done.
    pub answered_before: usize,
}

impl fmt::Debug for ReceivedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedRequest")
            .field("index", &self.index)
            .field("mode", &self.mode)
            .field("has_authorization", &self.authorization.is_some())
            .field("answered_before", &self.answered_before)
            .field("body", &self.body)
            .finish()
    }
}

/// How the mock answers.
#[derive(Clone)]
pub struct MockLlmOptions {
    pub script: Script,
    /// Delay before every answer (on top of `slow`).
    pub latency: Duration,
    /// Mean of a random extra delay before every answer, exponentially
    /// distributed (most answers a little late, a few much later, as real
    /// providers are), capped at ten times the mean. Zero: none.
    pub jitter: Duration,
    /// Pause between the blank lines of `keepalive` (the `: keep-alive`
    /// comments of a streamed answer).
    pub keepalive_interval: Duration,
    /// Time to the first token of a content answer (on top of `latency`).
    pub ttft: Duration,
    /// Output tokens generated per second after the first (4 characters a
    /// token); 0: the whole answer at once.
    pub tokens_per_second: f64,
    /// Calls answered at once; one more gets a 429 (0: no cap).
    pub max_concurrent: usize,
    /// The Retry-After of a call refused by `max_concurrent`.
    pub retry_after: Duration,
    responder: Responder,
    responders: HashMap<String, Responder>,
}

impl fmt::Debug for MockLlmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.responders.keys().collect();
        names.sort();
        f.debug_struct("MockLlmOptions")
            .field("script", &self.script.to_string())
            .field("latency", &self.latency)
            .field("jitter", &self.jitter)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("ttft", &self.ttft)
            .field("tokens_per_second", &self.tokens_per_second)
            .field("max_concurrent", &self.max_concurrent)
            .field("retry_after", &self.retry_after)
            .field("named_responders", &names)
            .finish()
    }
}

impl Default for MockLlmOptions {
    fn default() -> Self {
        MockLlmOptions::new(Script::default())
    }
}

impl MockLlmOptions {
    pub fn new(script: Script) -> Self {
        MockLlmOptions {
            script,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            keepalive_interval: Duration::from_millis(100),
            ttft: Duration::ZERO,
            tokens_per_second: 0.0,
            max_concurrent: 0,
            retry_after: Duration::from_secs(1),
            responder: Arc::new(default_responder),
            responders: HashMap::new(),
        }
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_jitter(mut self, mean: Duration) -> Self {
        self.jitter = mean;
        self
    }

    /// This answer's delay: the latency and a draw of the jitter.
    fn delay(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let u: f64 = rand::RngExt::random_range(&mut rand::rng(), f64::EPSILON..1.0);
        let extra = (-u.ln()).min(10.0);
        self.latency + self.jitter.mul_f64(extra)
    }

    pub fn with_keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// Time to the first token of every content answer.
    pub fn with_ttft(mut self, ttft: Duration) -> Self {
        self.ttft = ttft;
        self
    }

    /// Output tokens per second (0, negative or not a number: instant).
    pub fn with_tokens_per_second(mut self, tps: f64) -> Self {
        self.tokens_per_second = if tps.is_finite() { tps.max(0.0) } else { 0.0 };
        self
    }

    /// Calls answered at once; a call past them gets a 429 (0: no cap).
    pub fn with_max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// The Retry-After sent with a refusal past `max_concurrent`.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    fn pace(&self) -> stream::Pace {
        stream::Pace {
            ttft: self.ttft,
            tokens_per_second: self.tokens_per_second,
        }
    }

    /// Replaces the default responder (used by `ok` and the other content modes).
    pub fn with_responder<F>(mut self, f: F) -> Self
    where
        F: Fn(&MockChatRequest) -> Value + Send + Sync + 'static,
    {
        self.responder = Arc::new(f);
        self
    }

    /// Registers a responder that script entries `ok:NAME` select.
    pub fn with_named_responder<F>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(&MockChatRequest) -> Value + Send + Sync + 'static,
    {
        self.responders.insert(name.to_owned(), Arc::new(f));
        self
    }

    fn check(&self, script: &Script) -> Result<(), MockError> {
        match script
            .modes()
            .iter()
            .filter_map(MockMode::responder_name)
            .find(|n| !self.responders.contains_key(*n))
        {
            Some(missing) => Err(MockError::UnknownResponder(missing.to_owned())),
            None => Ok(()),
        }
    }
}

/// `{"ok": true, "echo": <characters in the last user message>}`.
pub fn default_responder(req: &MockChatRequest) -> Value {
    json!({"ok": true, "echo": req.last_user_message().map_or(0, |m| m.chars().count())})
}

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("mock LLM I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    BadScript(#[from] MockModeError),
    #[error("the script uses ok:{0} but no responder of that name is registered")]
    UnknownResponder(String),
    #[error("waited for {wanted} requests to the mock LLM, got {received}")]
    WaitTimedOut { wanted: usize, received: usize },
}

/// What the mock has done since it started (`GET /_mock/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockStats {
    /// Calls let through (answered or being answered, whatever the answer).
    pub calls: u64,
    /// Calls refused with a 429 because `max_concurrent` were being answered.
    pub refused: u64,
    /// Calls whose answer has been sent to its end.
    pub answered: u64,
    /// Calls being answered now, and the most there ever were at once.
    pub in_flight: u64,
    pub peak_in_flight: u64,
    /// Prompt tokens of content answers, and of those the prefix cache hits.
    pub prompt_tokens: u64,
    pub cache_hit_tokens: u64,
}

struct MockState {
    options: MockLlmOptions,
    script: Mutex<Script>,
    /// Calls since the script was (re)set.
    calls: AtomicUsize,
    answered: AtomicUsize,
    admitted: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    refused: AtomicUsize,
    prompt_tokens: AtomicU64,
    cache_hit_tokens: AtomicU64,
    cache: Mutex<cache::PrefixCache>,
    received: Mutex<Vec<ReceivedRequest>>,
    count: watch::Sender<usize>,
}

/// A call being answered; dropped when its answer is done (a streamed one
/// holds it until its last event) or the client has gone.
struct Busy(Arc<MockState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.answered.fetch_add(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test responder must not poison every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockState {
    fn new(options: MockLlmOptions) -> Result<Arc<Self>, MockError> {
        options.check(&options.script)?;
        Ok(Arc::new(MockState {
            script: Mutex::new(options.script.clone()),
            options,
            calls: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            prompt_tokens: AtomicU64::new(0),
            cache_hit_tokens: AtomicU64::new(0),
            cache: Mutex::new(cache::PrefixCache::new()),
            received: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }))
    }

    /// The next call's number and its answer, taken together so a script
    /// swap never pairs a new number with an old script.
    fn next_call(&self) -> (usize, MockMode) {
        let script = lock(&self.script);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        (n, script.mode_for(n).clone())
    }

    /// A place among the calls being answered, or `None` past the cap. The
    /// check and the count are one atomic step, so a burst cannot overshoot.
    fn admit(self: &Arc<Self>) -> Option<Busy> {
        let cap = self.options.max_concurrent;
        let before = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (cap == 0 || n < cap).then_some(n + 1)
            })
            .ok()?;
        self.admitted.fetch_add(1, Ordering::SeqCst);
        self.peak_in_flight.fetch_max(before + 1, Ordering::SeqCst);
        Some(Busy(Arc::clone(self)))
    }

    fn stats(&self) -> MockStats {
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst) as u64;
        MockStats {
            calls: n(&self.admitted),
            refused: n(&self.refused),
            answered: n(&self.answered),
            in_flight: n(&self.in_flight),
            peak_in_flight: n(&self.peak_in_flight),
            prompt_tokens: self.prompt_tokens.load(Ordering::SeqCst),
            cache_hit_tokens: self.cache_hit_tokens.load(Ordering::SeqCst),
        }
    }

    /// Looks the prompt up in the prefix cache and counts its tokens.
    fn cached_tokens(&self, req: &MockChatRequest, prompt_tokens: u32) -> u32 {
        let hit = lock(&self.cache)
            .lookup_and_insert(&req.messages)
            .min(prompt_tokens);
        self.prompt_tokens
            .fetch_add(u64::from(prompt_tokens), Ordering::SeqCst);
        self.cache_hit_tokens
            .fetch_add(u64::from(hit), Ordering::SeqCst);
        hit
    }

    fn record(&self, req: ReceivedRequest) {
        let len = {
            let mut received = lock(&self.received);
            received.push(req);
            received.len()
        };
        self.count.send_replace(len);
    }

    fn responder(&self, mode: &MockMode) -> Option<&Responder> {
        match mode.responder_name() {
            Some(name) => self.options.responders.get(name),
            None => Some(&self.options.responder),
        }
    }
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/chat/completions", post(chat))
        .route("/v1/chat/completions", post(chat))
        // Scripts that drive a worker through healthy and failing phases
        // (scripts/live-prometheus.sh) switch the answers here, as tests
        // do with `MockLlm::set_script`.
        .route("/_mock/script", axum::routing::put(put_script))
        // The bench reads how many calls were refused past the cap.
        .route("/_mock/stats", get(get_stats))
        .fallback(|| async {
            reply::invalid_request("mock LLM: only POST /chat/completions is served", None)
        })
        .with_state(state)
}

/// `PUT /_mock/script` with a script as the body (`402`, `ok,503`):
/// answers the following calls with it, counting from 0 again.
async fn put_script(State(state): State<Arc<MockState>>, body: String) -> Response {
    use axum::response::IntoResponse;
    let script = match body.trim().parse::<Script>() {
        Ok(s) => s,
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if let Err(e) = state.options.check(&script) {
        return (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    *lock(&state.script) = script;
    state.calls.store(0, Ordering::SeqCst);
    tracing::info!(script = body.trim(), "mock LLM script set");
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// `GET /_mock/stats`: [`MockStats`] as JSON.
async fn get_stats(State(state): State<Arc<MockState>>) -> axum::Json<MockStats> {
    axum::Json(state.stats())
}

async fn chat(
    State(state): State<Arc<MockState>>,
    version: axum::http::Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Refused before anything else, as a provider's gateway does: the call
    // takes no script entry and is not recorded as received.
    let Some(busy) = state.admit() else {
        let n = state.refused.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(refused = n, "mock LLM call refused: too many in flight");
        let ms = u64::try_from(state.options.retry_after.as_millis()).unwrap_or(u64::MAX);
        return reply::rate_limited_ms(ms);
    };
    let (index, mode) = state.next_call();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    state.record(ReceivedRequest {
        index,
        body: body.clone(),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        version,
        mode: mode.clone(),
        answered_before: state.answered.load(Ordering::SeqCst),
    });
    tracing::info!(call = index, mode = %mode, "mock LLM call");
    let delay = state.options.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer(&state, &mode, &headers, index, &body, busy).await
}

/// Checks in the order a real service does: auth, pacing and health, then
/// the request itself, then the model's content.
async fn answer(
    state: &MockState,
    mode: &MockMode,
    headers: &HeaderMap,
    index: usize,
    body: &Value,
    busy: Busy,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|k| !k.trim().is_empty());
    let Some(key) = bearer else {
        return reply::unauthorized(None);
    };
    if let Some(resp) = reply::early_error(mode, key) {
        return resp;
    }
    let req = match MockChatRequest::parse(index, body) {
        Ok(req) => req,
        Err(e) => return reply::invalid_request(&e, None),
    };
    if req.wants_json_object() && !req.mentions_json() {
        // OpenAI's wording; DeepSeek's guide asks for the same.
        let msg = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.";
        return reply::invalid_request(msg, Some("messages"));
    }
    if let MockMode::Slow { delay } = mode {
        tokio::time::sleep(*delay).await;
    }
    let Some(responder) = state.responder(mode) else {
        return reply::invalid_request("mock LLM: unknown responder", None);
    };
    let generated = reply::Generated::new(mode, &responder(&req));
    let prompt_tokens = reply::prompt_tokens(&req);
    let cached = state.cached_tokens(&req, prompt_tokens);
    let usage = reply::usage(prompt_tokens, generated.billed_tokens(&req), cached);
    let options = &state.options;
    if req.wants_stream() {
        let plan = stream::StreamPlan {
            pace: options.pace(),
            keepalives: match mode {
                MockMode::Keepalive { lines } => *lines,
                _ => 0,
            },
            keepalive_interval: options.keepalive_interval,
            disconnect: *mode == MockMode::Disconnect,
            usage_chunk: req.wants_usage_chunk(),
        };
        return stream::sse(&req, generated, usage, plan, busy);
    }
    let generating = options.pace().after(f64::from(generated.emitted_tokens()));
    if !generating.is_zero() {
        tokio::time::sleep(generating).await;
    }
    reply::whole(mode, &req, &generated, usage, options.keepalive_interval)
}

/// Serves the mock on `listener` until `shutdown` completes (the CLI).
pub async fn serve<F>(
    listener: TcpListener,
    options: MockLlmOptions,
    shutdown: F,
) -> Result<(), MockError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let state = MockState::new(options)?;
    serve_router(listener, router(state), shutdown).await;
    Ok(())
}

/// Streams one HTTP/2 connection may carry at once: enough for a benchmark's
/// 1,000 calls in flight (hyper's default, 200, would queue the rest).
const MAX_STREAMS: u32 = 16_384;

/// Serves `app` over HTTP/1.1 and HTTP/2 (h2c, prior knowledge) until
/// `shutdown`, then lets open exchanges finish.
async fn serve_router<F>(listener: TcpListener, app: Router, shutdown: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(MAX_STREAMS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                tokio::spawn(graceful.watch(conn));
            }
            _ = &mut shutdown => break,
        }
    }
    graceful.shutdown().await;
}

/// A mock running in this process on 127.0.0.1 and a free port; stops when dropped.
pub struct MockLlm {
    /// `http://127.0.0.1:PORT`, ready for `LlmConfig::base_url`.
    pub base_url: String,
    state: Arc<MockState>,
    stop: CancellationToken,
}

impl MockLlm {
    /// Starts a mock answering with `script` (e.g. `"429,429,ok"`).
    ///
    /// # Panics
    /// On a bad script or when no port can be bound: it is a test helper.
    pub async fn start(script: &str) -> MockLlm {
        let script = script.parse().unwrap_or_else(|e| panic!("{e}"));
        MockLlm::start_with(MockLlmOptions::new(script))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn start_with(options: MockLlmOptions) -> Result<MockLlm, MockError> {
        let state = MockState::new(options)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let app = router(Arc::clone(&state));
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(serve_router(listener, app, shutdown));
        Ok(MockLlm {
            base_url,
            state,
            stop,
        })
    }

    /// Every request received so far, in arrival order.
    pub fn requests_received(&self) -> Vec<ReceivedRequest> {
        lock(&self.state.received).clone()
    }

    pub fn request_count(&self) -> usize {
        *self.state.count.borrow()
    }

    /// Waits until at least `n` requests have arrived, at most `within`.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        within: Duration,
    ) -> Result<Vec<ReceivedRequest>, MockError> {
        let mut rx = self.state.count.subscribe();
        match tokio::time::timeout(within, rx.wait_for(|count| *count >= n)).await {
            Ok(Ok(_)) => Ok(self.requests_received()),
            _ => Err(MockError::WaitTimedOut {
                wanted: n,
                received: self.request_count(),
            }),
        }
    }

    /// Calls refused with a 429 past `max_concurrent` so far.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Counts since the start, as `GET /_mock/stats` reports them.
    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    /// Answers the following calls with `script`, counting calls from 0 again.
    pub fn set_script(&self, script: Script) -> Result<(), MockError> {
        self.state.options.check(&script)?;
        let mut current = lock(&self.state.script);
        *current = script;
        self.state.calls.store(0, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests;
