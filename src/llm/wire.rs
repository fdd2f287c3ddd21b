//! JSON shapes on the wire: the chat completions request we send, the
//! response envelope, token usage (DeepSeek's and OpenAI's cache fields), the
//! OpenAI-shaped error body, and the Retry-After headers.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

/// The request body of `POST /chat/completions`, but its `messages`: the
/// body appends them (`body::RequestBody`), sharing the big static ones.
#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    pub model: &'a str,
    /// DeepSeek and most compatible servers still read `max_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// OpenAI deprecated `max_tokens` in favour of this, and o-series models
    /// reject `max_tokens`; only sent to OpenAI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    pub response_format: ResponseFormat,
    pub stream: bool,
    /// OpenAI sends usage in a streamed answer only when asked; DeepSeek
    /// always puts it in the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// DeepSeek's per-end-user isolation key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// OpenAI's name for the same idea (it superseded `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl Thinking {
    pub fn from_switch(on: bool) -> Self {
        Thinking {
            kind: if on { "enabled" } else { "disabled" },
        }
    }
}

/// A chat completion as DeepSeek and OpenAI return it (fields we read).
#[derive(Debug, Deserialize)]
pub(crate) struct WireResponse {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Vec<WireChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireChoice {
    #[serde(default)]
    pub message: Option<WireMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub content: Option<String>,
}

/// One event of a streamed answer (`chat.completion.chunk`). OpenAI's usage
/// chunk has no choices; an error mid-stream comes as `{"error": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireChunk {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Vec<WireChunkChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireChunkChoice {
    #[serde(default)]
    pub delta: Option<WireMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// Usage as sent: DeepSeek puts cache figures at the top level, OpenAI in
/// `prompt_tokens_details`; both are optional so either shape parses.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
    #[serde(default)]
    pub prompt_cache_hit_tokens: Option<u32>,
    #[serde(default)]
    pub prompt_cache_miss_tokens: Option<u32>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u32>,
}

/// Token usage of one call, one shape whatever the provider; stored on the
/// attempt row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_miss_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Self {
        let openai_cached = w.prompt_tokens_details.and_then(|d| d.cached_tokens);
        // DeepSeek's own fields first: it also fills the OpenAI one, with the same value.
        let cache_hit_tokens = w.prompt_cache_hit_tokens.or(openai_cached);
        let cache_miss_tokens = w
            .prompt_cache_miss_tokens
            .or_else(|| openai_cached.map(|hit| w.prompt_tokens.saturating_sub(hit)));
        let total_tokens = if w.total_tokens == 0 {
            w.prompt_tokens + w.completion_tokens
        } else {
            w.total_tokens
        };
        Usage {
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
            total_tokens,
            cache_hit_tokens,
            cache_miss_tokens,
            reasoning_tokens: w.completion_tokens_details.and_then(|d| d.reasoning_tokens),
        }
    }
}

/// The `error` object of an OpenAI-shaped error body. DeepSeek sends the same
/// shape, e.g. a 402 is `{"error":{"message":"Insufficient Balance",
/// "type":"unknown_error","param":null,"code":"invalid_request_error"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    /// A string in the schema; some compatible servers send a number, so it
    /// is read leniently.
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
}

impl ApiError {
    /// Parses `{"error": {...}}`; `None` for any other body (HTML from a
    /// proxy, plain text, a different JSON shape).
    pub fn from_body(body: &str) -> Option<ApiError> {
        #[derive(Deserialize)]
        struct Envelope {
            error: ApiError,
        }
        serde_json::from_str::<Envelope>(body.trim_start())
            .ok()
            .map(|e| e.error)
    }

    /// OpenAI's "You exceeded your current quota" 429: billing, not pacing.
    pub fn is_insufficient_quota(&self) -> bool {
        self.code.as_deref() == Some("insufficient_quota")
            || self.kind.as_deref() == Some("insufficient_quota")
    }
}

fn lenient_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// The delay a provider asked for: `retry-after-ms` first (OpenAI's finer
/// header, which its SDK prefers), then `Retry-After` in seconds or as an
/// HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let ms = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok());
    if let Some(ms) = ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    parse_retry_after(text("retry-after")?, now)
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`; a date
/// in the past means "now".
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at: SystemTime = chrono::DateTime::parse_from_rfc2822(value).ok()?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_of(body: &str) -> Usage {
        let resp: WireResponse = serde_json::from_str(body).unwrap();
        resp.usage.unwrap().into()
    }

    #[test]
    fn deepseek_usage_reads_its_cache_and_reasoning_fields() {
        // A real DeepSeek response (see specs/external-apis.md §1).
        let body = r#"{"id":"931809f8","object":"chat.completion","created":1739092483,"model":"deepseek-reasoner",
          "choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","reasoning_content":"Okay"},
                      "logprobs":null,"finish_reason":"stop"}],
          "usage":{"prompt_tokens":6,"completion_tokens":92,"total_tokens":98,
                   "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":81},
                   "prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":6},
          "system_fingerprint":"fp_7e73fd9a08"}"#;
        let u = usage_of(body);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (6, 92, 98)
        );
        assert_eq!(u.cache_hit_tokens, Some(0));
        assert_eq!(u.cache_miss_tokens, Some(6));
        assert_eq!(u.reasoning_tokens, Some(81));
    }

    #[test]
    fn openai_usage_reports_cache_hits_from_prompt_tokens_details() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5-mini","choices":[],
          "usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
                   "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
                   "completion_tokens_details":{"reasoning_tokens":0,"accepted_prediction_tokens":0}}}"#;
        let u = usage_of(body);
        assert_eq!(u.cache_hit_tokens, Some(1920));
        assert_eq!(u.cache_miss_tokens, Some(86));
        assert_eq!(u.reasoning_tokens, Some(0));
    }

    #[test]
    fn usage_of_a_bare_compatible_server_has_no_cache_figures() {
        let u = usage_of(r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5}}"#);
        assert_eq!(u.total_tokens, 15);
        assert_eq!(
            (u.cache_hit_tokens, u.cache_miss_tokens, u.reasoning_tokens),
            (None, None, None)
        );
        let stored = serde_json::to_value(&u).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"prompt_tokens":10,"completion_tokens":5,"total_tokens":15})
        );
        let back: Usage = serde_json::from_str(r#"{"prompt_tokens":10}"#).unwrap();
        assert_eq!(back.completion_tokens, 0);
    }

    #[test]
    fn deepseek_402_body_parses_with_null_param() {
        let body = r#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#;
        let e = ApiError::from_body(body).unwrap();
        assert_eq!(e.message, "Insufficient Balance");
        assert_eq!(e.kind.as_deref(), Some("unknown_error"));
        assert_eq!(e.param, None);
        assert_eq!(e.code.as_deref(), Some("invalid_request_error"));
        assert!(!e.is_insufficient_quota());
    }

    #[test]
    fn error_bodies_that_are_not_openai_shaped_give_none_and_numeric_codes_are_kept() {
        assert_eq!(ApiError::from_body("<html>502 Bad Gateway</html>"), None);
        assert_eq!(ApiError::from_body(r#"{"detail":"nope"}"#), None);
        assert_eq!(ApiError::from_body(""), None);
        let e = ApiError::from_body(r#"{"error":{"message":"x","code":429}}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("429"));
        let q = ApiError::from_body(
            r#"{"error":{"message":"quota","type":"insufficient_quota","code":null}}"#,
        );
        assert!(q.unwrap().is_insufficient_quota());
    }

    #[test]
    fn retry_after_reads_seconds_http_dates_and_prefers_milliseconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);

        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
