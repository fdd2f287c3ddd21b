//! One JSON-mode chat completion call against an OpenAI-compatible server,
//! whole or streamed, paced by the client's limits, bounded by a deadline,
//! and mapped to [`LlmError`] when it fails.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url, redirect};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::RequestBody;
use super::config::{HttpVersion, LlmConfig};
use super::error::{HttpError, LlmError, OutputError, OutputProblem, excerpt};
use super::limit::{Limits, Slot};
use super::metrics::{InFlightGuard, LlmMetrics};
use super::stream::{SseReader, StreamError, Streamed};
use super::wire::{
    self, ApiError, ResponseFormat, StreamOptions, Thinking, Usage, WireRequest, WireResponse,
};
use crate::error_code::ErrorCode;

/// A body this large is not a chat completion; stop reading rather than
/// buffer whatever a broken proxy streams.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// A message of the conversation. Static content (a system message shared
/// by every person of a diet) is sent from one shared copy (`body`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Cow<'static, str>,
}

impl Message {
    pub fn system(content: impl Into<Cow<'static, str>>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<Cow<'static, str>>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<Cow<'static, str>>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A call's place among the calls in flight (`LlmClient::place`); dropping
/// it gives the place back.
#[derive(Debug)]
pub struct Place(Slot);

/// One call. The prompt must mention "json": JSON mode requires it, and
/// without it a model may emit whitespace until max_tokens.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Overrides the client's `max_tokens` for this call.
    pub max_tokens: Option<u32>,
    /// End-user isolation key (DeepSeek `user_id`, OpenAI
    /// `safety_identifier`). Pass a hash of the user id, never the id itself.
    pub user_id: Option<String>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }
}

/// A usable answer: the content parsed as a JSON object, and what it cost.
#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub json: Value,
    /// The content exactly as the model sent it.
    pub raw: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    /// The model that answered (as the provider names it).
    pub model: String,
    /// The provider's completion id, for support requests.
    pub id: Option<String>,
    /// Time of the HTTP exchange, without the wait for a slot or the rate limit.
    pub latency: Duration,
}

impl ChatResponse {
    /// The JSON object's text inside the content (a markdown fence around it
    /// taken off): a few kilobytes, where `json` is several times that.
    pub fn json_text(&self) -> &str {
        strip_code_fence(self.raw.trim())
    }
}

/// A client for one provider. Clones share the connection pool and limits.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    auth: HeaderValue,
    /// Kept only to scrub it from provider text that ends up in errors.
    key: String,
    model: String,
    provider: String,
    max_tokens: u32,
    temperature: Option<f32>,
    thinking: Option<bool>,
    timeout: Duration,
    overload_retries: u32,
    overload_wait_max: Duration,
    limits: Limits,
    metrics: LlmMetrics,
}

/// A response read to its end, before interpretation.
struct RawAnswer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// What an exchange brought back: a whole body (an error, a whole answer,
/// or a server that ignored `stream`), or a stream's events.
enum Exchanged {
    Whole(RawAnswer),
    Streamed(Streamed),
}

/// The model's answer, whichever way it came, before it is checked.
struct Completion {
    id: Option<String>,
    model: Option<String>,
    content: String,
    finish_reason: Option<String>,
    usage: Usage,
}

/// Where a streamed call hands its content as it arrives. Its own lifetime
/// lets each retry reborrow it for a shorter time.
type OnDelta<'f> = dyn FnMut(&str) + Send + 'f;

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("provider", &self.inner.provider)
            .field("model", &self.inner.model)
            .finish_non_exhaustive()
    }
}

/// Idle connections kept per provider host for reuse.
const MAX_IDLE_CONNECTIONS: usize = 16;

impl LlmClient {
    /// Checks the settings and builds the client; no network traffic.
    pub fn new(cfg: LlmConfig) -> Result<Self, LlmError> {
        let limits = Limits::new(cfg.requests_per_minute, cfg.max_in_flight);
        LlmClient::with_limits(cfg, limits)
    }

    /// A client whose pacing runs on the given limits (tests use a manual clock).
    pub(crate) fn with_limits(cfg: LlmConfig, limits: Limits) -> Result<Self, LlmError> {
        cfg.check()?;
        let endpoint = cfg.endpoint()?;
        let key = cfg.key()?.to_owned();
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            LlmError::Config("LLM API key has characters not allowed in an HTTP header".into())
        })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            // A POST that is redirected turns into a GET; a moved base URL
            // should surface as a setting to fix, not as a confusing 404.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("plan-worker/", env!("CARGO_PKG_VERSION")))
            // An idle HTTP/1.1 connection keeps buffers grown to the last
            // response (~30 KB). After a burst of calls, keep a few for reuse
            // and close the rest rather than hold them all.
            .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS);
        let http = match cfg.http {
            HttpVersion::Auto => http,
            HttpVersion::Http1 => http.http1_only(),
            HttpVersion::Http2 => http.http2_prior_knowledge(),
        };
        let http = http
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))?;
        let provider = cfg.provider_label();
        let metrics = LlmMetrics::new(&provider, &cfg.model, cfg.prices)
            .with_offpeak(cfg.offpeak.clone(), cfg.offpeak_price_factor);
        metrics.concurrency_limit(limits.limit());
        metrics.overload_retries_seen();
        let inner = Inner {
            http,
            endpoint,
            auth,
            key,
            metrics,
            limits,
            model: cfg.model,
            provider,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            thinking: cfg.thinking,
            timeout: cfg.timeout,
            overload_retries: cfg.overload_retries,
            overload_wait_max: cfg.overload_wait_max,
        };
        Ok(LlmClient {
            inner: Arc::new(inner),
        })
    }

    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    pub fn model(&self) -> &str {
        &self.inner.model
    }

    #[cfg(test)]
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Calls holding an in-flight slot right now.
    pub fn in_flight(&self) -> usize {
        self.inner.limits.in_flight()
    }

    /// Sends one JSON-mode chat completion and returns its content as a JSON
    /// object. Waits (never fails) for an in-flight slot and the rate limit;
    /// the deadline covers only the HTTP exchange.
    ///
    /// Cancel-safe: drop the future to abort; the slot is released and the
    /// connection closed.
    #[tracing::instrument(skip_all, fields(provider = %self.inner.provider, model = %self.inner.model))]
    pub async fn chat_json(&self, req: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.call(req, None, None).await
    }

    /// Waits for a place among the calls in flight, for `chat_json_in`.
    /// A call that waits for its place this way holds neither its prompt
    /// nor the call's state until then: with a thousand jobs of a dozen
    /// calls each behind the cap, those were most of the worker's memory.
    pub async fn place(&self) -> Place {
        Place(self.inner.limits.acquire().await)
    }

    /// `chat_json` in a place already held (see `place`).
    #[tracing::instrument(skip_all, fields(provider = %self.inner.provider, model = %self.inner.model))]
    pub async fn chat_json_in(
        &self,
        place: Place,
        req: ChatRequest,
    ) -> Result<ChatResponse, LlmError> {
        self.call(req, None, Some(place.0)).await
    }

    /// `chat_json` with `stream: true`: `on_delta` gets each piece of content as it arrives.
    ///
    /// The same slot, limits, overload retries and deadline as `chat_json`
    /// (the deadline covers the whole stream), and the same checks of the
    /// finished content: a cut-off or unusable answer fails as it would
    /// whole. Content already handed over is not taken back when the call
    /// then fails; a refusal retried in place comes before any content.
    #[tracing::instrument(skip_all, fields(provider = %self.inner.provider, model = %self.inner.model, stream = true))]
    pub async fn chat_json_streaming<F>(
        &self,
        req: ChatRequest,
        on_delta: F,
    ) -> Result<ChatResponse, LlmError>
    where
        F: FnMut(&str) + Send,
    {
        let mut on_delta = on_delta;
        self.call(req, Some(&mut on_delta), None).await
    }

    /// One call, whole or streamed, retried in place while the provider
    /// refuses it as overloaded.
    async fn call<'f>(
        &self,
        req: ChatRequest,
        mut on_delta: Option<&mut OnDelta<'f>>,
        mut placed: Option<Slot>,
    ) -> Result<ChatResponse, LlmError> {
        let inner = &*self.inner;
        // The body is serialised up front and the prompt dropped: a call
        // waits minutes, and holding both copies per call adds up.
        let body = inner.request_body(&req, on_delta.is_some())?;
        drop(req);
        let mut refusals = 0u32;
        loop {
            let slot = match placed.take() {
                Some(slot) => slot,
                None => inner.limits.acquire().await,
            };
            let result = inner.send(body.clone(), on_delta.as_deref_mut()).await;
            let Err(e) = &result else {
                inner.metrics.concurrency_limit(inner.limits.success());
                return result;
            };
            if !is_overload(e) {
                return result;
            }
            inner
                .metrics
                .concurrency_limit(inner.limits.overloaded(&slot));
            drop(slot);
            let wait = e
                .retry_after()
                .unwrap_or_else(|| overload_backoff(refusals));
            if refusals >= inner.overload_retries || wait > inner.overload_wait_max {
                return result;
            }
            refusals += 1;
            inner.metrics.overload_retry();
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                limit = inner.limits.limit(),
                "provider overloaded; the call waits for a place and goes again"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// A refusal that says the provider has too much in flight: a 429 that is
/// not a spent quota, or a 503.
fn is_overload(e: &LlmError) -> bool {
    e.code() == ErrorCode::AiRateLimit || e.status() == Some(503)
}

/// Without a Retry-After: 0.5 s doubling to 8 s (the OpenAI SDK's
/// schedule), with full jitter so that refused calls do not return together.
fn overload_backoff(refusals: u32) -> Duration {
    let cap = Duration::from_millis(500)
        .saturating_mul(1 << refusals.min(4))
        .min(Duration::from_secs(8));
    cap.mul_f64(rand::random::<f64>().max(0.1))
}

impl Inner {
    /// One HTTP exchange under the deadline (a stream to its end),
    /// interpreted and counted.
    async fn send<'f>(
        &self,
        body: RequestBody,
        on_delta: Option<&mut OnDelta<'f>>,
    ) -> Result<ChatResponse, LlmError> {
        let guard = InFlightGuard::new(&self.metrics);
        let started = Instant::now();
        let mut on_delta = on_delta;
        let exchange = async {
            match on_delta.as_deref_mut() {
                None => self.exchange(body).await.map(Exchanged::Whole),
                Some(f) => self.exchange_streamed(body, started, f).await,
            }
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(LlmError::Timeout {
                after: self.timeout,
            }),
        };
        let latency = started.elapsed();
        self.metrics.duration(latency);
        let result = match answer {
            Err(e) => Err(e),
            Ok(Exchanged::Streamed(s)) => self.interpret_streamed(s, latency),
            Ok(Exchanged::Whole(a)) => {
                let result = self.interpret(a, latency);
                // A server that ignored `stream: true` sent the answer
                // whole: the caller still gets its content, in one piece.
                if let (Ok(resp), Some(f)) = (&result, on_delta) {
                    f(&resp.raw);
                }
                result
            }
        };
        match &result {
            Ok(resp) => {
                tracing::debug!(
                    latency_ms = latency.as_millis() as u64,
                    tokens = resp.usage.total_tokens,
                    "LLM call ok"
                );
                guard.finish("ok");
            }
            Err(e) => {
                tracing::debug!(error_code = e.code().as_str(), error = %e, "LLM call failed");
                guard.finish(e.code().as_str());
            }
        }
        result
    }

    fn request_body(&self, req: &ChatRequest, stream: bool) -> Result<RequestBody, LlmError> {
        RequestBody::new(&self.wire_request(req, stream), &req.messages)
            .map_err(|e| LlmError::Config(format!("request body: {e}")))
    }

    /// Sends the request and reads the whole body.
    async fn exchange(&self, body: RequestBody) -> Result<RawAnswer, LlmError> {
        let resp = self
            .http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_reqwest())
            .send()
            .await
            .map_err(network)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_body(resp).await?;
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    /// Sends the request with `stream: true` and reads the events to the
    /// end, handing content over as it comes. A refusal or a server that
    /// answers whole is read as a whole body.
    async fn exchange_streamed<'f>(
        &self,
        body: RequestBody,
        started: Instant,
        on_delta: &mut OnDelta<'f>,
    ) -> Result<Exchanged, LlmError> {
        let mut resp = self
            .http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "text/event-stream")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_reqwest())
            .send()
            .await
            .map_err(network)?;
        let is_events = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !resp.status().is_success() || !is_events {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = read_body(resp).await?;
            return Ok(Exchanged::Whole(RawAnswer {
                status,
                headers,
                body,
            }));
        }
        let mut first = true;
        let mut deliver = |piece: &str| {
            if first {
                first = false;
                self.metrics.time_to_first_token(started.elapsed());
            }
            on_delta(piece);
        };
        let mut reader = SseReader::new(MAX_BODY_BYTES);
        let stream_error = |e: StreamError| self.bad_response(e.reason, &e.text);
        while let Some(chunk) = resp.chunk().await.map_err(network)? {
            if reader.feed(&chunk, &mut deliver).map_err(stream_error)? {
                break;
            }
        }
        let streamed = reader.finish(&mut deliver).map_err(stream_error)?;
        Ok(Exchanged::Streamed(streamed))
    }

    fn wire_request<'a>(&'a self, req: &'a ChatRequest, stream: bool) -> WireRequest<'a> {
        let max = req.max_tokens.unwrap_or(self.max_tokens);
        let openai = self.provider == "openai";
        let user = req.user_id.as_deref().filter(|u| !u.is_empty());
        WireRequest {
            model: &self.model,
            max_tokens: (!openai).then_some(max),
            max_completion_tokens: openai.then_some(max),
            temperature: self.temperature,
            response_format: ResponseFormat {
                kind: "json_object",
            },
            stream,
            stream_options: (stream && openai).then_some(StreamOptions {
                include_usage: true,
            }),
            thinking: self.thinking.map(Thinking::from_switch),
            user_id: if openai { None } else { user },
            safety_identifier: if openai { user } else { None },
        }
    }

    fn interpret(&self, answer: RawAnswer, latency: Duration) -> Result<ChatResponse, LlmError> {
        if !answer.status.is_success() {
            return Err(self.http_error(&answer).into());
        }
        if answer.body.is_empty() {
            // DeepSeek closes a request that has not started inference after
            // 10 minutes; what arrives then is keep-alive lines and nothing else.
            return Err(LlmError::BadResponse {
                reason: "empty body (the connection closed after keep-alive lines)".into(),
                excerpt: String::new(),
            });
        }
        let wire: WireResponse = serde_json::from_str(&answer.body)
            .map_err(|e| self.bad_response(e.to_string(), &answer.body))?;
        let usage: Usage = wire.usage.unwrap_or_default().into();
        self.metrics.tokens(&usage);
        let Some(choice) = wire.choices.into_iter().next() else {
            return Err(self.bad_response("no choices".into(), &answer.body));
        };
        let completion = Completion {
            id: wire.id,
            model: wire.model,
            content: choice.message.and_then(|m| m.content).unwrap_or_default(),
            finish_reason: choice.finish_reason,
            usage,
        };
        self.accept(completion, latency)
    }

    /// A stream read to its end. One cut off before its finish is a broken
    /// exchange (retryable, like a body that breaks off), not the model's
    /// output.
    fn interpret_streamed(&self, s: Streamed, latency: Duration) -> Result<ChatResponse, LlmError> {
        let complete = s.is_complete();
        let usage: Usage = s.usage.unwrap_or_default().into();
        self.metrics.tokens(&usage);
        if !complete {
            return Err(self.bad_response(
                "the stream ended before its finish_reason and [DONE]".into(),
                &s.content,
            ));
        }
        let completion = Completion {
            id: s.id,
            model: s.model,
            content: s.content,
            finish_reason: s.finish_reason,
            usage,
        };
        self.accept(completion, latency)
    }

    /// The checks every answer passes, whole or streamed.
    fn accept(&self, c: Completion, latency: Duration) -> Result<ChatResponse, LlmError> {
        let json = match check_output(&c.content, c.finish_reason.as_deref()) {
            Ok(json) => json,
            Err(problem) => {
                return Err(OutputError {
                    problem,
                    finish_reason: c.finish_reason,
                    excerpt: excerpt(&c.content, &self.key),
                    usage: c.usage,
                }
                .into());
            }
        };
        Ok(ChatResponse {
            json,
            raw: c.content,
            usage: c.usage,
            finish_reason: c.finish_reason,
            model: c.model.unwrap_or_else(|| self.model.clone()),
            id: c.id,
            latency,
        })
    }

    fn http_error(&self, answer: &RawAnswer) -> HttpError {
        let body = answer.body.replace(&self.key, "[redacted]");
        let api = ApiError::from_body(&body);
        let status = answer.status.as_u16();
        HttpError {
            status,
            code: HttpError::classify(status, api.as_ref()),
            retry_after: wire::retry_after(&answer.headers, SystemTime::now()),
            excerpt: if api.is_some() {
                String::new()
            } else {
                excerpt(&body, &self.key)
            },
            api,
        }
    }

    fn bad_response(&self, reason: String, body: &str) -> LlmError {
        LlmError::BadResponse {
            reason,
            excerpt: excerpt(body, &self.key),
        }
    }
}

/// Reads the body to its end, dropping the blank keep-alive lines a busy
/// DeepSeek sends before the JSON instead of buffering them.
async fn read_body(mut resp: reqwest::Response) -> Result<String, LlmError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        let chunk = if buf.is_empty() {
            chunk.trim_ascii_start()
        } else {
            &chunk[..]
        };
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(LlmError::BadResponse {
                reason: format!("body larger than {MAX_BODY_BYTES} bytes"),
                excerpt: String::new(),
            });
        }
        buf.extend_from_slice(chunk);
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The JSON object in the content, or why there is none. finish_reason is
/// checked first: a cut-off answer may still parse by accident.
fn check_output(content: &str, finish_reason: Option<&str>) -> Result<Value, OutputProblem> {
    match finish_reason {
        Some("length") => return Err(OutputProblem::Truncated),
        Some("insufficient_system_resource") => {
            return Err(OutputProblem::InsufficientSystemResource);
        }
        Some("content_filter") => return Err(OutputProblem::ContentFiltered),
        _ => {}
    }
    let text = strip_code_fence(content.trim());
    if text.is_empty() {
        return Err(OutputProblem::Blank);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(OutputProblem::NotObject),
        Err(e) => Err(OutputProblem::NotJson(e.to_string())),
    }
}

/// Compatible servers without a real JSON mode often wrap the object in a
/// markdown fence; accepting it costs nothing and saves a retry.
fn strip_code_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let Some(body) = rest.strip_suffix("```") else {
        return text;
    };
    // Drop the info string ("json") on the opening line.
    body.split_once('\n').map_or("", |(_, b)| b).trim()
}

fn network(e: reqwest::Error) -> LlmError {
    if e.is_builder() {
        return LlmError::Config(format!("cannot build the LLM request: {e}"));
    }
    let mut detail = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        detail.push_str(": ");
        detail.push_str(&c.to_string());
        cause = c.source();
    }
    LlmError::Network { detail, source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_object_is_unwrapped_and_plain_text_is_left_alone() {
        assert_eq!(strip_code_fence("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(strip_code_fence("{\"a\":1}"), "{\"a\":1}");
        assert_eq!(strip_code_fence("```json {\"a\":1}"), "```json {\"a\":1}");
    }

    #[test]
    fn finish_reason_length_wins_over_content_that_happens_to_parse() {
        assert_eq!(
            check_output("{\"a\":1}", Some("length")),
            Err(OutputProblem::Truncated)
        );
    }

    #[test]
    fn a_json_array_is_not_an_object() {
        assert_eq!(
            check_output("[1,2]", Some("stop")),
            Err(OutputProblem::NotObject)
        );
    }
}
