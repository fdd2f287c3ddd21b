//! Metrics of LLM calls. Labels are bounded: provider and model come from
//! configuration, status is "ok" or an error code.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use super::wire::Usage;

pub const REQUESTS_TOTAL: &str = "plan_llm_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "plan_llm_request_duration_seconds";
pub const TOKENS_TOTAL: &str = "plan_llm_tokens_total";
pub const OFFPEAK_TOKENS_TOTAL: &str = "plan_llm_offpeak_tokens_total";
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
    describe_counter!(
        OFFPEAK_TOKENS_TOTAL,
        "LLM tokens (prompt and completion) bought in the provider's off-peak windows \
         (LLM_PEAK_WINDOWS / LLM_OFFPEAK_WINDOWS), by provider; the share of \
         plan_llm_tokens_total{kind=~\"prompt|completion\"}"
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
        "Estimated LLM cost in micro-USD from LLM_PRICE_* settings, times \
         LLM_OFFPEAK_PRICE_FACTOR for tokens bought off-peak (0 when prices are unset)"
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
    /// The provider's off-peak windows and the price factor there.
    offpeak: Option<(crate::offpeak::OffPeak, f64)>,
}

impl LlmMetrics {
    pub fn new(provider: &str, model: &str, prices: super::config::Prices) -> Self {
        let m = LlmMetrics {
            provider: provider.into(),
            model: model.into(),
            prices,
            offpeak: None,
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
        // At 0 without windows too: the share of tokens bought off-peak
        // is then 0, not missing.
        counter!(OFFPEAK_TOKENS_TOTAL, "provider" => Arc::clone(&m.provider)).increment(0);
        m
    }

    /// Counts tokens bought in `windows` apart, at `factor` of the prices.
    pub fn with_offpeak(mut self, windows: Option<crate::offpeak::OffPeak>, factor: f64) -> Self {
        self.offpeak = windows.map(|w| (w, factor));
        self
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

    /// Counts a call's tokens and cost as bought now.
    pub fn tokens(&self, usage: &Usage) {
        self.tokens_at(usage, chrono::Utc::now());
    }

    /// Counts a call's tokens and cost as bought at `at`: off-peak ones
    /// also in OFFPEAK_TOKENS_TOTAL, at the off-peak price.
    pub fn tokens_at(&self, usage: &Usage, at: chrono::DateTime<chrono::Utc>) {
        let offpeak = self.offpeak.as_ref().filter(|(w, _)| w.contains(at));
        let prices = match offpeak {
            Some((_, factor)) => self.prices.scaled(*factor),
            None => self.prices,
        };
        if offpeak.is_some() {
            let n = u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens);
            counter!(OFFPEAK_TOKENS_TOTAL, "provider" => Arc::clone(&self.provider)).increment(n);
        }
        let cost = prices.micro_usd(
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::llm::Prices;
    use crate::offpeak::{Form, OffPeak};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn tokens_bought_off_peak_are_counted_apart_at_the_off_peak_price() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let prices = Prices {
            prompt_per_million: 1.0,
            completion_per_million: 2.0,
            cache_hit_per_million: 0.0,
        };
        let windows = OffPeak::parse("mon-fri 01:00-04:00,06:00-10:00", Form::Peak).unwrap();
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            ..Usage::default()
        };
        metrics::with_local_recorder(&recorder, || {
            let m = LlmMetrics::new("deepseek", "flash", prices).with_offpeak(Some(windows), 0.5);
            // Monday 02:00 is a peak, Monday 12:00 and Saturday 02:00 are not.
            m.tokens_at(&usage, at("2026-12-07T02:00:00Z"));
            m.tokens_at(&usage, at("2026-12-07T12:00:00Z"));
            m.tokens_at(&usage, at("2026-12-12T02:00:00Z"));
        });
        let text = handle.render();
        let offpeak = value(
            &text,
            r#"plan_llm_offpeak_tokens_total{provider="deepseek"}"#,
        );
        assert_eq!(offpeak, 3000.0, "two off-peak calls of 1,500 tokens");
        let prompt = value(
            &text,
            r#"plan_llm_tokens_total{provider="deepseek",model="flash",kind="prompt"}"#,
        );
        assert_eq!(prompt, 3000.0, "every call in the total");
        // 1000 * 1 + 500 * 2 = 2000 micro-USD at the full price, half off-peak.
        let cost = value(
            &text,
            r#"plan_llm_cost_microusd_total{provider="deepseek",model="flash"}"#,
        );
        assert_eq!(cost, 2000.0 + 1000.0 + 1000.0);
    }

    #[test]
    fn without_windows_every_token_is_bought_at_the_full_price() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let prices = Prices {
            prompt_per_million: 1.0,
            ..Prices::default()
        };
        let usage = Usage {
            prompt_tokens: 1000,
            ..Usage::default()
        };
        metrics::with_local_recorder(&recorder, || {
            let m = LlmMetrics::new("deepseek", "flash", prices).with_offpeak(None, 0.5);
            m.tokens_at(&usage, at("2026-12-12T02:00:00Z"));
        });
        let text = handle.render();
        assert_eq!(
            value(
                &text,
                r#"plan_llm_offpeak_tokens_total{provider="deepseek"}"#
            ),
            0.0
        );
        let cost = value(
            &text,
            r#"plan_llm_cost_microusd_total{provider="deepseek",model="flash"}"#,
        );
        assert_eq!(cost, 1000.0);
    }
}
