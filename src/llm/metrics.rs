//! Metrics of LLM calls. Labels are bounded: provider and model come from
//! configuration, status is "ok" or an error code.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use super::wire::Usage;

pub const REQUESTS_TOTAL: &str = "plan_llm_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "plan_llm_request_duration_seconds";
pub const TOKENS_TOTAL: &str = "plan_llm_tokens_total";
pub const COST_TOTAL: &str = "plan_llm_cost_microusd_total";
pub const CONCURRENCY_LIMIT: &str = "plan_llm_concurrency_limit";
pub const OVERLOAD_RETRIES: &str = "plan_llm_overload_retries_total";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "plan_llm_time_to_first_token_seconds";

/// Registers help texts; call once after installing the recorder.
pub fn describe_metrics() {
    describe_counter!(
        REQUESTS_TOTAL,
        "LLM chat completion calls by provider, model and status (ok or error code)"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one LLM HTTP exchange, from send to the end of the body"
    );
    describe_histogram!(
        TIME_TO_FIRST_TOKEN_SECONDS,
        Unit::Seconds,
        "Time from sending a streamed LLM call to its first piece of content, per provider"
    );
    describe_counter!(
        TOKENS_TOTAL,
        "LLM tokens billed, by kind: prompt, completion, and of the prompt cache_hit and cache_miss (DeepSeek's prompt_cache_*_tokens, OpenAI's cached_tokens)"
    );
    metrics::describe_gauge!(
        CONCURRENCY_LIMIT,
        "LLM calls this worker lets in flight now, per provider: halved on a 429 or 503, one \
         more per success, at most LLM_MAX_IN_FLIGHT"
    );
    describe_counter!(
        OVERLOAD_RETRIES,
        "LLM calls the provider refused as overloaded (429, 503) that waited for a place and \
         were sent again in place instead of deferring the job"
    );
    describe_counter!(
        COST_TOTAL,
        "Estimated LLM cost in micro-USD from LLM_PRICE_* settings (0 when prices are unset)"
    );
}

/// The statuses of REQUESTS_TOTAL: "ok", or the code of the failure
/// (`LlmError::code`; CANCELLED for a call dropped mid-flight).
const CALL_STATUSES: [&str; 10] = [
    "ok",
    "AI_TIMEOUT",
    "AI_RATE_LIMIT",
    "AI_UNAVAILABLE",
    "NETWORK_ERROR",
    "JSON_PARSE_ERROR",
    "AI_OUTPUT_TRUNCATED",
    "CONFIG_ERROR",
    "AI_QUOTA_EXCEEDED",
    "CANCELLED",
];

/// The labels shared by every metric of one client.
#[derive(Debug, Clone)]
pub(crate) struct LlmMetrics {
    provider: Arc<str>,
    model: Arc<str>,
    prices: super::config::Prices,
}

impl LlmMetrics {
    pub fn new(provider: &str, model: &str, prices: super::config::Prices) -> Self {
        let m = LlmMetrics {
            provider: provider.into(),
            model: model.into(),
            prices,
        };
        // Every status a call can end in exists from the start, at 0. A
        // series born at its first increment already holds it in its first
        // sample, so rate() and increase() never see it: a burst of 402s
        // would show as 0 on the dashboards (scripts/live-prometheus.sh
        // caught it). increment(0) leaves a series that exists untouched.
        for status in CALL_STATUSES {
            counter!(REQUESTS_TOTAL,
                "provider" => Arc::clone(&m.provider),
                "model" => Arc::clone(&m.model),
                "status" => status)
            .increment(0);
        }
        // Registering the handle is enough for an empty histogram to render.
        let _ = histogram!(TIME_TO_FIRST_TOKEN_SECONDS, "provider" => Arc::clone(&m.provider));
        m
    }

    pub fn request(&self, status: &'static str) {
        counter!(REQUESTS_TOTAL,
            "provider" => Arc::clone(&self.provider),
            "model" => Arc::clone(&self.model),
            "status" => status)
        .increment(1);
    }

    pub fn concurrency_limit(&self, limit: usize) {
        metrics::gauge!(CONCURRENCY_LIMIT, "provider" => Arc::clone(&self.provider))
            .set(limit as f64);
    }

    /// Shows the counter at 0 before the first retry (increment by 0 leaves
    /// other clients' counts for the provider alone).
    pub fn overload_retries_seen(&self) {
        counter!(OVERLOAD_RETRIES, "provider" => Arc::clone(&self.provider)).increment(0);
    }

    pub fn overload_retry(&self) {
        counter!(OVERLOAD_RETRIES, "provider" => Arc::clone(&self.provider)).increment(1);
    }

    pub fn duration(&self, elapsed: Duration) {
        histogram!(REQUEST_DURATION_SECONDS,
            "provider" => Arc::clone(&self.provider),
            "model" => Arc::clone(&self.model))
        .record(elapsed.as_secs_f64());
    }

    pub fn time_to_first_token(&self, elapsed: Duration) {
        histogram!(TIME_TO_FIRST_TOKEN_SECONDS, "provider" => Arc::clone(&self.provider))
            .record(elapsed.as_secs_f64());
    }

    pub fn tokens(&self, usage: &Usage) {
        let cost = self.prices.micro_usd(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cache_hit_tokens.unwrap_or(0),
        );
        counter!(COST_TOTAL,
            "provider" => Arc::clone(&self.provider),
            "model" => Arc::clone(&self.model))
        .increment(cost);
        let kinds = [
            ("prompt", Some(usage.prompt_tokens)),
            ("completion", Some(usage.completion_tokens)),
            ("cache_hit", usage.cache_hit_tokens),
            ("cache_miss", usage.cache_miss_tokens),
        ];
        for (kind, n) in kinds {
            let Some(n) = n.filter(|n| *n > 0) else {
                continue;
            };
            counter!(TOKENS_TOTAL,
                "provider" => Arc::clone(&self.provider),
                "model" => Arc::clone(&self.model),
                "kind" => kind)
            .increment(u64::from(n));
        }
    }
}

/// Counts a call that was dropped mid-flight (job cancelled or past its
/// deadline) as status CANCELLED, so every started call shows up once.
pub(crate) struct InFlightGuard<'a> {
    metrics: &'a LlmMetrics,
    finished: bool,
}

impl<'a> InFlightGuard<'a> {
    pub fn new(metrics: &'a LlmMetrics) -> Self {
        InFlightGuard {
            metrics,
            finished: false,
        }
    }

    pub fn finish(mut self, status: &'static str) {
        self.finished = true;
        self.metrics.request(status);
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics
                .request(crate::error_code::ErrorCode::Cancelled.as_str());
        }
    }
}
