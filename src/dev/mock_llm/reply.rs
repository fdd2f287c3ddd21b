//! The mock's HTTP answers, shaped like DeepSeek's and OpenAI's: completion
//! envelopes with `usage` (DeepSeek's cache fields included) and
//! OpenAI-shaped error bodies.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};

use super::MockChatRequest;
use super::mode::MockMode;

/// The answer of a mode that fails before any content is generated, or
/// `None` for modes that produce content.
pub(super) fn early_error(mode: &MockMode, presented_key: &str) -> Option<Response> {
    let resp = match mode {
        MockMode::RateLimit { retry_after_secs } => {
            let mut r = rate_limited();
            set_header(&mut r, "retry-after", retry_after_secs.to_string());
            r
        }
        MockMode::RateLimitMs { retry_after_ms } => rate_limited_ms(*retry_after_ms),
        MockMode::QuotaExceeded => error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        MockMode::ServerError => error(500, "Server Error", "server_error", None),
        MockMode::BadGateway => bad_gateway(),
        MockMode::Overloaded => error(503, "Server Overloaded", "server_error", None),
        MockMode::Unauthorized => unauthorized(Some(presented_key)),
        MockMode::InsufficientBalance => error(
            402,
            "Insufficient Balance",
            "unknown_error",
            Some("invalid_request_error"),
        ),
        MockMode::Status(code) => status_error(*code),
        _ => return None,
    };
    Some(resp)
}

/// DeepSeek's 401. Like the real one it shows only the key's last characters.
pub(super) fn unauthorized(presented_key: Option<&str>) -> Response {
    let message = match presented_key {
        Some(k) if k.chars().count() > 8 => {
            let tail: String = k.chars().skip(k.chars().count() - 4).collect();
            format!("Authentication Fails, Your api key: ****{tail} is invalid")
        }
        Some(_) => "Authentication Fails, Your api key: **** is invalid".to_owned(),
        None => "Authentication Fails (no such user)".to_owned(),
    };
    error(
        401,
        &message,
        "authentication_error",
        Some("invalid_request_error"),
    )
}

/// A 400 for a request the mock cannot accept.
pub(super) fn invalid_request(message: &str, param: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
                                "param": param, "code": null}});
    json_response(StatusCode::BAD_REQUEST, &body)
}

/// The content a content mode "generates" from the model's JSON.
pub(super) struct Generated {
    pub content: String,
    pub finish_reason: &'static str,
}

impl Generated {
    pub fn new(mode: &MockMode, payload: &Value) -> Self {
        let full = payload.to_string();
        let (content, finish_reason) = match mode {
            MockMode::Blank => (" ".repeat(64), "stop"),
            MockMode::BrokenJson => (break_json(&full), "stop"),
            MockMode::Truncated => (cut(&full, 2).to_owned(), "length"),
            MockMode::ContentFilter => (cut(&full, 3).to_owned(), "content_filter"),
            MockMode::InsufficientSystemResource => {
                (cut(&full, 3).to_owned(), "insufficient_system_resource")
            }
            _ => (full, "stop"),
        };
        Generated {
            content,
            finish_reason,
        }
    }

    /// The tokens sent, at 4 characters a token: what pacing is based on.
    pub fn emitted_tokens(&self) -> u32 {
        tokens(self.content.chars().count())
    }

    /// The tokens billed: a cut-off answer is billed up to max_tokens, as a
    /// provider's is.
    pub fn billed_tokens(&self, req: &MockChatRequest) -> u32 {
        match self.finish_reason {
            "length" => req.max_tokens.unwrap_or(8192),
            _ => self.emitted_tokens(),
        }
    }
}

/// The non-streamed answer of a content mode.
pub(super) fn whole(
    mode: &MockMode,
    req: &MockChatRequest,
    generated: &Generated,
    usage: Value,
    keepalive_interval: Duration,
) -> Response {
    let body = completion(req, &generated.content, generated.finish_reason, usage);
    match mode {
        MockMode::Keepalive { lines } => keepalive(*lines, keepalive_interval, &body),
        MockMode::Disconnect => disconnect(&body),
        _ => json_response(StatusCode::OK, &body),
    }
}

/// Seconds since the epoch, for `created`.
pub(super) fn created() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A `chat.completion` like DeepSeek's.
fn completion(req: &MockChatRequest, content: &str, finish_reason: &str, usage: Value) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "object": "chat.completion",
        "created": created(),
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
        "system_fingerprint": "fp_mock_llm",
    })
}

/// The prompt's tokens: its messages' content at 4 characters a token.
pub(super) fn prompt_tokens(req: &MockChatRequest) -> u32 {
    tokens(req.messages.iter().map(|m| m.content.chars().count()).sum())
}

/// Usage in both providers' shapes; `cached` comes from the prefix cache.
pub(super) fn usage(prompt: u32, completion_tokens: u32, cached: u32) -> Value {
    // The cache counts the role names too, so a prompt of whole units may
    // count a little more than its content's tokens.
    let hit = cached.min(prompt);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": hit},
        "completion_tokens_details": {"reasoning_tokens": 0},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": prompt - hit,
    })
}

fn tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX).max(1)
}

/// Almost JSON, as models produce it: a trailing comma before the last brace.
fn break_json(full: &str) -> String {
    match full.strip_suffix('}') {
        Some(head) => format!("{head},}}"),
        None => format!("{full},"),
    }
}

/// The first `1/parts` of `s` (at least one character), on a char boundary.
fn cut(s: &str, parts: usize) -> &str {
    let keep = (s.chars().count() / parts).max(1);
    s.char_indices().nth(keep).map_or(s, |(i, _)| &s[..i])
}

/// A 429 with OpenAI's `retry-after-ms` and the rounded-up `Retry-After`.
pub(super) fn rate_limited_ms(retry_after_ms: u64) -> Response {
    let mut r = rate_limited();
    set_header(&mut r, "retry-after-ms", retry_after_ms.to_string());
    set_header(
        &mut r,
        "retry-after",
        retry_after_ms.div_ceil(1000).to_string(),
    );
    r
}

fn rate_limited() -> Response {
    error(
        429,
        "Rate limit reached for requests",
        "requests",
        Some("rate_limit_exceeded"),
    )
}

fn status_error(code: u16) -> Response {
    let (message, kind) = match code {
        400 => ("Invalid Format", "invalid_request_error"),
        403 => ("Forbidden", "permission_error"),
        404 => ("Model Not Exist", "invalid_request_error"),
        422 => ("Invalid Parameters", "invalid_request_error"),
        500..=599 => ("Server Error", "server_error"),
        _ => ("Mock error", "invalid_request_error"),
    };
    error(code, message, kind, None)
}

fn error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    json_response(status, &body)
}

fn bad_gateway() -> Response {
    let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                </body>\r\n</html>\r\n";
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        html,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn set_header(resp: &mut Response, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Blank lines, one per `interval`, then the body: what a busy DeepSeek
/// sends on a non-streaming request while it waits to start inference.
fn keepalive(lines: u32, interval: Duration, body: &Value) -> Response {
    let last = Bytes::from(body.to_string());
    let chunks = stream::unfold(0u32, move |sent| {
        let last = last.clone();
        async move {
            if sent > lines {
                return None;
            }
            if sent == lines {
                return Some((Ok::<_, Infallible>(last), sent + 1));
            }
            tokio::time::sleep(interval).await;
            Some((Ok(Bytes::from_static(b"\n")), sent + 1))
        }
    });
    let mut resp = Response::new(Body::from_stream(chunks));
    set_header(&mut resp, "content-type", "application/json".to_owned());
    resp
}

/// Half a body, then the connection breaks: the client sees a body error.
fn disconnect(body: &Value) -> Response {
    let text = body.to_string();
    let half = Bytes::from(cut(&text, 2).to_owned());
    let chunks = stream::iter([
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "mock: connection dropped",
        )),
    ]);
    let mut resp = Response::new(Body::from_stream(chunks));
    set_header(&mut resp, "content-type", "application/json".to_owned());
    resp
}
