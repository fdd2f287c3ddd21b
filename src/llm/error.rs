//! What can go wrong in one LLM call, and the stable code each outcome maps to.
//! Display is the attempt's internal detail: it never holds the API key (the
//! client scrubs it from every provider text it keeps).

use std::fmt;
use std::time::Duration;

use crate::error_code::ErrorCode;

use super::wire::{ApiError, Usage};

/// Longest excerpt of provider or model text kept in an error.
pub(crate) const EXCERPT_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Settings that no retry will fix: no key, a bad URL, a zero limit.
    #[error("LLM configuration error: {0}")]
    Config(String),
    /// The HTTP exchange passed its deadline and was aborted.
    #[error("LLM request timed out after {}s", after.as_secs_f64())]
    Timeout { after: Duration },
    /// Connect, TLS, reset, DNS, or the body broke off mid-read.
    #[error("network error talking to the LLM provider: {detail}")]
    Network {
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    /// The provider answered with a non-success status.
    #[error(transparent)]
    Http(Box<HttpError>),
    /// 200, but the body is not a chat completion (a proxy page, a closed
    /// connection after keep-alive lines): the provider side is broken, not
    /// the model's output.
    #[error(
        "LLM provider sent something other than a chat completion: {reason}; body: {excerpt:?}"
    )]
    BadResponse { reason: String, excerpt: String },
    /// 200 with a chat completion whose output we cannot use.
    #[error(transparent)]
    Output(Box<OutputError>),
}

// Boxed: the two detailed variants would otherwise make every
// `Result<_, LlmError>` several times larger than its Ok value.
impl From<HttpError> for LlmError {
    fn from(e: HttpError) -> Self {
        LlmError::Http(Box::new(e))
    }
}

impl From<OutputError> for LlmError {
    fn from(e: OutputError) -> Self {
        LlmError::Output(Box::new(e))
    }
}

/// A non-success HTTP answer, already classified.
#[derive(Debug, Clone, thiserror::Error)]
pub struct HttpError {
    pub status: u16,
    pub code: ErrorCode,
    pub retry_after: Option<Duration>,
    /// The OpenAI-shaped error object, when the body had one.
    pub api: Option<ApiError>,
    /// The start of the body when it was not OpenAI-shaped.
    pub excerpt: String,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LLM provider answered HTTP {} ({})",
            self.status, self.code
        )?;
        match &self.api {
            Some(api) => {
                write!(f, ": {}", api.message)?;
                for (k, v) in [
                    ("type", &api.kind),
                    ("code", &api.code),
                    ("param", &api.param),
                ] {
                    if let Some(v) = v {
                        write!(f, " {k}={v}")?;
                    }
                }
            }
            None if !self.excerpt.is_empty() => write!(f, ": {:?}", self.excerpt)?,
            None => {}
        }
        if let Some(d) = self.retry_after {
            write!(f, " (retry after {}s)", d.as_secs_f64())?;
        }
        Ok(())
    }
}

impl HttpError {
    /// Classifies a non-success status and its error body.
    pub(crate) fn classify(status: u16, api: Option<&ApiError>) -> ErrorCode {
        match status {
            429 if api.is_some_and(ApiError::is_insufficient_quota) => ErrorCode::AiQuotaExceeded,
            429 => ErrorCode::AiRateLimit,
            402 => ErrorCode::AiQuotaExceeded,
            408 => ErrorCode::AiTimeout,
            // 409 is a transient conflict at OpenAI, which its SDK retries.
            409 => ErrorCode::AiUnavailable,
            // 400/422: a request we built wrong is wrong on every retry; 401,
            // 403, 404: key or model. Other 4xx (413 too large, …) and 3xx
            // (redirects are not followed: a moved base URL is a setting to
            // fix) are ours to fix as well.
            300..=499 => ErrorCode::ConfigError,
            // 500/502/503/504 and every other 5xx (Cloudflare's 52x, …).
            _ => ErrorCode::AiUnavailable,
        }
    }
}

/// The model answered, but not with a usable JSON object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{problem}; finish_reason={}; content: {excerpt:?}", finish_reason.as_deref().unwrap_or("none"))]
pub struct OutputError {
    pub problem: OutputProblem,
    pub finish_reason: Option<String>,
    /// The start of the content (at most 500 characters).
    pub excerpt: String,
    /// Tokens were billed even though the output is unusable.
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputProblem {
    /// No content, or only whitespace: DeepSeek's JSON mode replaces output
    /// it cannot recognise as JSON with spaces, even with finish_reason stop.
    Blank,
    /// Not parseable as JSON (the parser's message).
    NotJson(String),
    /// Valid JSON, but not an object.
    NotObject,
    /// finish_reason `length`: cut off at max_tokens.
    Truncated,
    /// finish_reason `content_filter`: the provider withheld part of the output.
    ContentFiltered,
    /// DeepSeek's finish_reason `insufficient_system_resource`: it ran out of
    /// capacity mid-answer.
    InsufficientSystemResource,
}

impl fmt::Display for OutputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputProblem::Blank => f.write_str("LLM content is blank"),
            OutputProblem::NotJson(e) => write!(f, "LLM content is not JSON ({e})"),
            OutputProblem::NotObject => f.write_str("LLM content is JSON but not an object"),
            OutputProblem::Truncated => f.write_str("LLM output was cut off at max_tokens"),
            OutputProblem::ContentFiltered => {
                f.write_str("LLM output was withheld by the content filter")
            }
            OutputProblem::InsufficientSystemResource => {
                f.write_str("LLM provider ran out of resources mid-answer")
            }
        }
    }
}

impl OutputProblem {
    pub fn code(&self) -> ErrorCode {
        match self {
            OutputProblem::Blank | OutputProblem::NotJson(_) | OutputProblem::NotObject => {
                ErrorCode::JsonParseError
            }
            OutputProblem::Truncated => ErrorCode::AiOutputTruncated,
            // The output is incomplete, like broken JSON: the spec's "invalid
            // LLM output" class, retried a bounded number of times. It is not
            // a setting (CONFIG_ERROR) and not the provider's health
            // (AI_UNAVAILABLE); with sampling at temperature 1.0 a retry
            // usually produces an unflagged plan, and if the prompt itself is
            // flagged the job still ends after max_retries with the reason in
            // the attempt's detail.
            OutputProblem::ContentFiltered => ErrorCode::JsonParseError,
            OutputProblem::InsufficientSystemResource => ErrorCode::AiUnavailable,
        }
    }
}

impl LlmError {
    /// The stable code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            LlmError::Config(_) => ErrorCode::ConfigError,
            LlmError::Timeout { .. } => ErrorCode::AiTimeout,
            LlmError::Network { .. } => ErrorCode::NetworkError,
            LlmError::Http(h) => h.code,
            LlmError::BadResponse { .. } => ErrorCode::AiUnavailable,
            LlmError::Output(o) => o.problem.code(),
        }
    }

    /// The provider's Retry-After (any status that sent one: 429, 503, …).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http(h) => h.retry_after,
            _ => None,
        }
    }

    /// The HTTP status of a non-success answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Http(h) => Some(h.status),
            _ => None,
        }
    }

    /// Tokens billed for a call whose output was unusable.
    pub fn usage(&self) -> Option<&Usage> {
        match self {
            LlmError::Output(o) => Some(&o.usage),
            _ => None,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, with `secret` scrubbed out
/// (OpenAI's 401 body echoes part of the key, and a proxy may echo headers).
pub(crate) fn excerpt(text: &str, secret: &str) -> String {
    let scrubbed;
    let text = if !secret.is_empty() && text.contains(secret) {
        scrubbed = text.replace(secret, "[redacted]");
        scrubbed.as_str()
    } else {
        text
    };
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(EXCERPT_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_design_table() {
        let quota = ApiError {
            code: Some("insufficient_quota".into()),
            ..ApiError::default()
        };
        let cases = [
            (429, None, ErrorCode::AiRateLimit),
            (429, Some(&quota), ErrorCode::AiQuotaExceeded),
            (402, None, ErrorCode::AiQuotaExceeded),
            (400, None, ErrorCode::ConfigError),
            (401, None, ErrorCode::ConfigError),
            (403, None, ErrorCode::ConfigError),
            (404, None, ErrorCode::ConfigError),
            (422, None, ErrorCode::ConfigError),
            (301, None, ErrorCode::ConfigError),
            (408, None, ErrorCode::AiTimeout),
            (500, None, ErrorCode::AiUnavailable),
            (502, None, ErrorCode::AiUnavailable),
            (503, None, ErrorCode::AiUnavailable),
            (504, None, ErrorCode::AiUnavailable),
            (529, None, ErrorCode::AiUnavailable),
        ];
        for (status, api, code) in cases {
            assert_eq!(HttpError::classify(status, api), code, "HTTP {status}");
        }
    }

    #[test]
    fn an_excerpt_is_at_most_500_characters_and_never_holds_the_key() {
        let key = "sk-live-0123456789abcdef";
        let text = format!("bad key {key} {}", "é".repeat(2000));
        let e = excerpt(&text, key);
        assert!(!e.contains(key));
        assert!(e.contains("[redacted]"));
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("short", key), "short");
    }
}
