//! Settings of one LLM client. `config.rs` at the crate root maps flags and
//! env vars onto this struct; this module owns the defaults and the checks.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::error::LlmError;

/// How to reach one OpenAI-compatible chat completions server.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL; `/chat/completions` is appended. `https://api.deepseek.com`
    /// and `https://api.deepseek.com/v1` both work (the "v1" is not a model version).
    pub base_url: String,
    /// Model name. DeepSeek renamed its models several times, so this is
    /// configuration, never a constant.
    pub model: String,
    /// Bearer token. Never printed: `Debug` redacts it.
    pub api_key: Option<String>,
    /// Deadline of one HTTP exchange (connect, headers and the whole body).
    /// No idle timeout: a busy DeepSeek sends blank keep-alive lines for minutes.
    pub timeout: Duration,
    /// Deadline of the TCP + TLS connect alone.
    pub connect_timeout: Duration,
    /// Default `max_tokens` of a call (a request may override it).
    pub max_tokens: u32,
    /// Sampling temperature; `None` omits it. DeepSeek's thinking mode ignores it.
    pub temperature: Option<f32>,
    /// DeepSeek's thinking switch: `Some(false)` sends
    /// `"thinking": {"type": "disabled"}`, `Some(true)` enables it, `None` omits
    /// the field. V4 thinks by default, which is slow and costly for JSON
    /// generation, hence `Some(false)` by default; OpenAI rejects the unknown
    /// field, so set `None` there.
    pub thinking: Option<bool>,
    /// Requests started per minute by this client (and its clones); a burst of
    /// one minute's worth is allowed. 0 turns the limit off.
    pub requests_per_minute: u32,
    /// Calls in flight at once, at most; the client adapts its cap below it
    /// to the provider (halved on 429/503, one more per success). Callers
    /// beyond the cap wait for a place.
    pub max_in_flight: usize,
    /// Times one call that the provider refuses as overloaded (429 that is
    /// not a quota, 503) waits for a place and is sent again, when the
    /// provider asks for a wait of at most `overload_wait_max`; after that
    /// (or for a longer wait) the error goes to the job, which defers.
    pub overload_retries: u32,
    pub overload_wait_max: Duration,
    /// Metric label of the provider; derived from the base URL's host when unset.
    pub provider: Option<String>,
    /// USD per million tokens, for the estimated-cost metric (0: unknown).
    pub prices: Prices,
    /// HTTP version to the provider.
    pub http: HttpVersion,
    /// The provider's off-peak windows (None: unknown, every call is
    /// counted at the full price).
    pub offpeak: Option<crate::offpeak::OffPeak>,
    /// Off-peak prices as a share of `prices` (DeepSeek: 0.5).
    pub offpeak_price_factor: f64,
}

/// How the client speaks to the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    /// HTTPS: HTTP/2 when the server offers it (ALPN), else HTTP/1.1;
    /// plain http: HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only; on plain http without upgrade (h2c prior knowledge), as
    /// the mock LLM serves it.
    Http2,
}

impl std::str::FromStr for HttpVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(HttpVersion::Auto),
            "http1" => Ok(HttpVersion::Http1),
            "http2" => Ok(HttpVersion::Http2),
            other => Err(format!("{other:?}: expected auto, http1 or http2")),
        }
    }
}

/// Provider prices in USD per million tokens. Cache hits are billed at
/// their own rate and are part of the prompt tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
    pub cache_hit_per_million: f64,
}

impl Prices {
    /// These prices times `factor` (the provider's off-peak discount).
    pub fn scaled(&self, factor: f64) -> Prices {
        Prices {
            prompt_per_million: self.prompt_per_million * factor,
            completion_per_million: self.completion_per_million * factor,
            cache_hit_per_million: self.cache_hit_per_million * factor,
        }
    }

    /// Estimated cost of a call in micro-USD.
    pub fn micro_usd(&self, prompt: u32, completion: u32, cache_hit: u32) -> u64 {
        let miss = prompt.saturating_sub(cache_hit);
        // Per million tokens, in micro-USD: tokens * price.
        let cost = f64::from(miss) * self.prompt_per_million
            + f64::from(cache_hit) * self.cache_hit_per_million
            + f64::from(completion) * self.completion_per_million;
        cost.max(0.0).round() as u64
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: "https://api.deepseek.com".to_owned(),
            model: "deepseek-v4-flash".to_owned(),
            api_key: None,
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(5),
            max_tokens: 8192,
            temperature: Some(1.0),
            thinking: Some(false),
            requests_per_minute: 60,
            max_in_flight: 32,
            overload_retries: 4,
            overload_wait_max: Duration::from_secs(10),
            provider: None,
            prices: Prices::default(),
            http: HttpVersion::Auto,
            offpeak: None,
            offpeak_price_factor: 0.5,
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("thinking", &self.thinking)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("max_in_flight", &self.max_in_flight)
            .field("overload_retries", &self.overload_retries)
            .field("overload_wait_max", &self.overload_wait_max)
            .field("provider", &self.provider)
            .finish()
    }
}

impl LlmConfig {
    /// A config for `base_url` with `api_key` and every other setting at its default.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        LlmConfig {
            base_url: base_url.into(),
            api_key: Some(api_key.into()),
            ..LlmConfig::default()
        }
    }

    /// The provider label: the configured one, else derived from the host.
    pub fn provider_label(&self) -> String {
        if let Some(p) = self.provider.as_deref().filter(|p| !p.trim().is_empty()) {
            return p.trim().to_owned();
        }
        let host = Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        // A bounded label set: a host name would be one value per deployment,
        // but an IP and port in a dashboard legend helps nobody.
        if host.ends_with("deepseek.com") {
            "deepseek".to_owned()
        } else if host.ends_with("openai.com") {
            "openai".to_owned()
        } else {
            "openai_compatible".to_owned()
        }
    }

    /// The chat completions URL, checked.
    pub(crate) fn endpoint(&self) -> Result<Url, LlmError> {
        let base = self.base_url.trim().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/chat/completions"))
            .map_err(|e| LlmError::Config(format!("LLM base URL {base:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "LLM base URL {base:?} must be http or https"
            )));
        }
        Ok(url)
    }

    /// The API key, trimmed; a missing or blank key is a configuration error.
    pub(crate) fn key(&self) -> Result<&str, LlmError> {
        match self.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => Ok(k),
            _ => Err(LlmError::Config("LLM API key is not set".to_owned())),
        }
    }

    /// Rejects settings that would hang or fail every call.
    pub(crate) fn check(&self) -> Result<(), LlmError> {
        if self.model.trim().is_empty() {
            return Err(LlmError::Config("LLM model is empty".to_owned()));
        }
        if self.max_in_flight == 0 {
            return Err(LlmError::Config(
                "LLM max_in_flight must be at least 1".to_owned(),
            ));
        }
        if self.timeout.is_zero() || self.max_tokens == 0 {
            return Err(LlmError::Config(
                "LLM timeout and max_tokens must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_deepseek_and_the_design() {
        let c = LlmConfig::default();
        assert_eq!(c.base_url, "https://api.deepseek.com");
        assert_eq!(c.model, "deepseek-v4-flash");
        assert_eq!(c.timeout, Duration::from_secs(300));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(
            (c.max_tokens, c.requests_per_minute, c.max_in_flight),
            (8192, 60, 32)
        );
        assert_eq!((c.temperature, c.thinking), (Some(1.0), Some(false)));
        assert_eq!(c.provider_label(), "deepseek");
    }

    #[test]
    fn the_provider_label_comes_from_the_host_unless_set() {
        let label = |url: &str| LlmConfig::new(url, "k").provider_label();
        assert_eq!(label("https://api.deepseek.com/v1"), "deepseek");
        assert_eq!(label("https://api.openai.com/v1"), "openai");
        assert_eq!(label("http://127.0.0.1:9000"), "openai_compatible");
        let named = LlmConfig {
            provider: Some("vllm".into()),
            ..LlmConfig::new("http://x", "k")
        };
        assert_eq!(named.provider_label(), "vllm");
    }

    #[test]
    fn the_endpoint_appends_chat_completions_to_any_base() {
        let ep = |url: &str| LlmConfig::new(url, "k").endpoint().unwrap().to_string();
        assert_eq!(
            ep("https://api.deepseek.com"),
            "https://api.deepseek.com/chat/completions"
        );
        assert_eq!(
            ep("https://api.deepseek.com/"),
            "https://api.deepseek.com/chat/completions"
        );
        assert_eq!(
            ep("https://api.openai.com/v1/"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert!(LlmConfig::new("api.deepseek.com", "k").endpoint().is_err());
        assert!(LlmConfig::new("ftp://host", "k").endpoint().is_err());
    }

    #[test]
    fn debug_shows_that_a_key_is_set_but_never_the_key() {
        let c = LlmConfig::new("https://api.deepseek.com", "sk-secret-123456789");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sk-secret"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }
}

#[cfg(test)]
mod price_tests {
    use super::Prices;

    #[test]
    fn cost_bills_cache_hits_at_their_own_rate_in_micro_usd() {
        let p = Prices {
            prompt_per_million: 0.28,
            completion_per_million: 0.42,
            cache_hit_per_million: 0.028,
        };
        // 1,000 prompt tokens of which 400 hit the cache, 2,000 completion:
        // 600 * 0.28 + 400 * 0.028 + 2000 * 0.42 = 168 + 11.2 + 840 = 1019.2
        assert_eq!(p.micro_usd(1000, 2000, 400), 1019);
        assert_eq!(Prices::default().micro_usd(1000, 2000, 400), 0);
    }
}
