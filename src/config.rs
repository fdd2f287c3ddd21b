//! Every setting in one place: each is a command-line flag and an environment
//! variable with a default, and `--help` lists them all with their units.

mod economy;
mod secret;

use std::fmt;
use std::time::Duration;

use clap::Args;

pub use self::economy::EconomySettings;
pub use self::secret::Secret;
use self::secret::redact_url;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The defaults of a settings group, read from its `#[arg]` attributes
/// (environment ignored), so that each default is written exactly once.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
    let matches = cmd
        .try_get_matches_from(["defaults"])
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("the defaults are valid")
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// DeepSeek's `thinking` switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Thinking {
    /// Thinking off: fast JSON.
    Off,
    On,
    /// The field is not sent (servers that do not know it, such as OpenAI).
    Omit,
}

/// Where the database is.
#[derive(Clone, Args)]
pub struct DbSettings {
    /// PostgreSQL URL for queries and migrations.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// PostgreSQL URL for the LISTEN connection; must be a direct connection,
    /// not a transaction pooler. Defaults to DATABASE_URL.
    #[arg(
        long,
        env = "LISTEN_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub listen_database_url: Option<String>,

    /// Connections in the query pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 10, global = true)]
    pub database_pool_size: u32,
}

// By hand: the URLs may carry a password.
impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSettings")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "listen_database_url",
                &self.listen_database_url.as_deref().map(redact_url),
            )
            .field("database_pool_size", &self.database_pool_size)
            .finish()
    }
}

impl DbSettings {
    pub fn listen_url(&self) -> &str {
        self.listen_database_url
            .as_deref()
            .unwrap_or(&self.database_url)
    }
}

/// How the worker claims, runs, retries and gives back jobs.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// Name of this worker in rows, logs and metrics; must be unique per
    /// process [default: host-pid-random].
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,

    /// Jobs this worker runs at once (slots).
    #[arg(long, env = "MAX_CONCURRENT_JOBS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrent_jobs: u32,

    /// Lease length in seconds; the heartbeat renews it every third of it.
    #[arg(long, env = "LEASE_SECONDS", default_value_t = 30.0)]
    pub lease_seconds: f64,

    /// Seconds between heartbeats (lease renewals and the worker's presence);
    /// a worker silent for two of them, with its presence lock free, counts
    /// as dead [default: a third of LEASE_SECONDS; at most half of it].
    #[arg(long, env = "HEARTBEAT_SECONDS")]
    pub heartbeat_seconds: Option<f64>,

    /// Fallback tick in seconds: missed notifications, reaping, stale jobs.
    #[arg(long, env = "POLL_INTERVAL_SECONDS", default_value_t = 5.0)]
    pub poll_interval_seconds: f64,

    /// Polling interval in milliseconds used instead of NOTIFY when the
    /// NOTIFY self-test fails (e.g. behind a transaction pooler).
    #[arg(long, env = "FALLBACK_POLL_MS", default_value_t = 250)]
    pub fallback_poll_ms: u64,

    /// Deadline of one attempt in seconds; past it the attempt fails as AI_TIMEOUT.
    #[arg(long, env = "JOB_TIMEOUT_SECONDS", default_value_t = 600.0)]
    pub job_timeout_seconds: f64,

    /// Backoff base in seconds: retry n waits up to base * 2^n (full jitter).
    #[arg(long, env = "RETRY_BASE_SECONDS", default_value_t = 2.0)]
    pub retry_base_seconds: f64,

    /// Backoff cap in seconds.
    #[arg(long, env = "RETRY_MAX_SECONDS", default_value_t = 300.0)]
    pub retry_max_seconds: f64,

    /// Rate-limit (429) deferrals per job that spend no retry.
    #[arg(long, env = "MAX_RATE_LIMIT_DEFERRALS", default_value_t = 10)]
    pub max_rate_limit_deferrals: i32,

    /// Seconds a pending job of a kind that no live worker handles waits
    /// (room for a rolling deploy) before it fails as CONFIG_ERROR.
    #[arg(long, env = "UNHANDLED_KIND_GRACE_SECONDS", default_value_t = 300.0)]
    pub unhandled_kind_grace_seconds: f64,

    /// The longest Retry-After a provider may impose, in seconds; longer
    /// ones are cut to this.
    #[arg(long, env = "RETRY_AFTER_MAX_SECONDS", default_value_t = 3600.0)]
    pub retry_after_max_seconds: f64,

    /// Pending jobs older than this many hours fail as STALE_JOB.
    #[arg(long, env = "STALE_PENDING_HOURS", default_value_t = 24.0)]
    pub stale_pending_hours: f64,

    /// Days after a job finished before its profile snapshot (health data,
    /// push token) is emptied; the job row and its plan stay (0: keep).
    #[arg(long, env = "PROFILE_RETENTION_DAYS", default_value_t = 30.0)]
    pub profile_retention_days: f64,

    /// Days after a job finished before it is deleted, with its attempts,
    /// idempotency keys and sent pushes; the user's plans stay (0: keep).
    #[arg(long, env = "JOB_RETENTION_DAYS", default_value_t = 30.0)]
    pub job_retention_days: f64,

    /// Seconds to let running jobs finish on SIGTERM before giving them back.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 30.0)]
    pub shutdown_grace_seconds: f64,

    /// Seconds to wait for the worker's own NOTIFY before falling back to polling.
    #[arg(long, env = "NOTIFY_SELF_TEST_SECONDS", default_value_t = 2.0)]
    pub notify_self_test_seconds: f64,

    /// After this many seconds without a notification the listener sends
    /// its own again; if that does not come back the connection is taken
    /// for dead (half-open) and replaced.
    #[arg(long, env = "NOTIFY_CHECK_SECONDS", default_value_t = 30.0)]
    pub notify_check_seconds: f64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        defaults()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingError {
    pub field: &'static str,
    pub message: String,
}

fn positive(field: &'static str, v: f64) -> Result<Duration, SettingError> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(SettingError {
            field,
            message: format!("must be a positive number of seconds, got {v}"),
        })
    }
}

impl WorkerSettings {
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(default_worker_id)
    }
    /// None: profiles are kept.
    pub fn profile_retention(&self) -> Option<Duration> {
        (self.profile_retention_days > 0.0)
            .then(|| Duration::from_secs_f64(self.profile_retention_days * 86_400.0))
    }

    /// None: finished jobs are kept.
    pub fn job_retention(&self) -> Option<Duration> {
        (self.job_retention_days > 0.0)
            .then(|| Duration::from_secs_f64(self.job_retention_days * 86_400.0))
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs_f64(self.lease_seconds)
    }
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_seconds
            .map_or_else(|| self.lease() / 3, Duration::from_secs_f64)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_seconds)
    }
    pub fn fallback_poll(&self) -> Duration {
        Duration::from_millis(self.fallback_poll_ms.max(10))
    }
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.job_timeout_seconds)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_seconds)
    }
    pub fn self_test_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.notify_self_test_seconds)
    }

    /// Refuses settings that would make the worker misbehave, naming the field.
    pub fn validate(&self) -> Result<(), SettingError> {
        positive("lease_seconds", self.lease_seconds)?;
        positive("poll_interval_seconds", self.poll_interval_seconds)?;
        positive("job_timeout_seconds", self.job_timeout_seconds)?;
        positive("retry_base_seconds", self.retry_base_seconds)?;
        positive("retry_max_seconds", self.retry_max_seconds)?;
        positive("stale_pending_hours", self.stale_pending_hours)?;
        positive("retry_after_max_seconds", self.retry_after_max_seconds)?;
        positive(
            "unhandled_kind_grace_seconds",
            self.unhandled_kind_grace_seconds,
        )?;
        positive("notify_self_test_seconds", self.notify_self_test_seconds)?;
        positive("notify_check_seconds", self.notify_check_seconds)?;
        if let Some(h) = self.heartbeat_seconds {
            positive("heartbeat_seconds", h)?;
            if h > self.lease_seconds / 2.0 {
                return Err(SettingError {
                    field: "heartbeat_seconds",
                    message: format!(
                        "must be at most half of LEASE_SECONDS ({}), got {h}",
                        self.lease_seconds
                    ),
                });
            }
        }
        if !(self.shutdown_grace_seconds.is_finite() && self.shutdown_grace_seconds >= 0.0) {
            return Err(SettingError {
                field: "shutdown_grace_seconds",
                message: "must be zero or more seconds".into(),
            });
        }
        if self.max_rate_limit_deferrals < 0 {
            return Err(SettingError {
                field: "max_rate_limit_deferrals",
                message: "must be zero or more".into(),
            });
        }
        Ok(())
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "worker".to_owned());
    // A restarted container keeps its hostname and PID 1: the random part
    // keeps the new process from taking the old one's row.
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_positive_lease_is_refused_naming_the_field() {
        let s = WorkerSettings {
            lease_seconds: 0.0,
            ..WorkerSettings::default()
        };
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, "lease_seconds");
    }

    #[test]
    fn the_heartbeat_runs_at_a_third_of_the_lease() {
        let s = WorkerSettings {
            lease_seconds: 30.0,
            ..WorkerSettings::default()
        };
        assert_eq!(s.heartbeat_interval(), Duration::from_secs(10));
    }
}

/// The LLM provider (DeepSeek by default; any OpenAI-compatible server).
#[derive(Debug, Clone, Args)]
pub struct LlmSettings {
    /// Base URL of the chat completions API.
    #[arg(long, env = "LLM_BASE_URL", default_value = "https://api.deepseek.com")]
    pub llm_base_url: String,

    /// Model name (configuration, not a constant: providers rename models).
    #[arg(long, env = "LLM_MODEL", default_value = "deepseek-v4-flash")]
    pub llm_model: String,

    /// API key; unset means the built-in offline generator makes the plans.
    #[arg(long, env = "LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<Secret>,

    /// Deadline of one LLM call in seconds.
    #[arg(long, env = "LLM_TIMEOUT_SECONDS", default_value_t = 300.0)]
    pub llm_timeout_seconds: f64,

    /// Requests per minute to the provider (0: no limit).
    #[arg(long, env = "LLM_REQUESTS_PER_MINUTE", default_value_t = 60)]
    pub llm_requests_per_minute: u32,

    /// LLM calls in flight at once, at most: the worker adapts its cap below
    /// this to the provider (halved on a 429 or 503, one more per success).
    #[arg(long, env = "LLM_MAX_IN_FLIGHT", default_value_t = 32)]
    pub llm_max_in_flight: usize,

    /// Times a call the provider refuses as overloaded (429, 503) waits for a
    /// place and goes again before the job defers.
    #[arg(long, env = "LLM_OVERLOAD_RETRIES", default_value_t = 4)]
    pub llm_overload_retries: u32,

    /// The longest Retry-After (seconds) a call waits out in place; a longer
    /// one defers the job instead.
    #[arg(long, env = "LLM_OVERLOAD_WAIT_MAX_SECONDS", default_value_t = 10.0)]
    pub llm_overload_wait_max_seconds: f64,

    /// max_tokens of a call.
    #[arg(long, env = "LLM_MAX_TOKENS", default_value_t = 8192)]
    pub llm_max_tokens: u32,

    /// DeepSeek's thinking switch: off (fast JSON), on, or omit (for servers
    /// that do not know the field, such as OpenAI).
    #[arg(long, env = "LLM_THINKING", default_value = "off", value_enum)]
    pub llm_thinking: Thinking,

    /// Make the plan with the offline generator when the LLM failed for good.
    #[arg(long, env = "FALLBACK_TO_OFFLINE", default_value_t = false)]
    pub fallback_to_offline: bool,

    /// Hours a week's structure (training days and foci) is reused for
    /// people with the same goal, schedule, equipment, experience and
    /// restrictions, skipping the structure call; 0 turns the cache off.
    #[arg(long, env = "STRUCTURE_CACHE_HOURS", default_value_t = 168.0)]
    pub structure_cache_hours: f64,

    /// How a weekly plan's details are asked for: parallel (a call per
    /// day, started as the streamed structure shows the day; days are shown
    /// as they land) or sequential (the whole week in one call).
    #[arg(long, env = "PLAN_LAYOUT", default_value = "parallel")]
    pub plan_layout: crate::jobs::weekly_plan::Layout,

    /// HTTP to the provider: auto (HTTP/2 over TLS when offered, else
    /// HTTP/1.1), http1, or http2 (also h2c on plain http).
    #[arg(long, env = "LLM_HTTP_VERSION", default_value = "auto", value_enum)]
    pub llm_http_version: crate::llm::HttpVersion,

    /// USD per million prompt tokens (cache misses), for the cost metric.
    #[arg(long, env = "LLM_PRICE_PROMPT_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_prompt_per_million: f64,

    /// USD per million completion tokens, for the cost metric.
    #[arg(long, env = "LLM_PRICE_COMPLETION_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_completion_per_million: f64,

    /// USD per million prompt tokens served from the provider's cache.
    #[arg(long, env = "LLM_PRICE_CACHE_HIT_PER_MILLION", default_value_t = 0.0)]
    pub llm_price_cache_hit_per_million: f64,

    /// The provider's off-peak windows and economy jobs (the API, the
    /// worker and the LLM client of a process share them).
    #[command(flatten)]
    pub economy: EconomySettings,
}

impl Default for LlmSettings {
    fn default() -> Self {
        defaults()
    }
}

impl LlmSettings {
    /// LLM_PRICE_*: USD per million tokens (0: unknown).
    pub fn prices(&self) -> crate::llm::Prices {
        crate::llm::Prices {
            prompt_per_million: self.llm_price_prompt_per_million,
            completion_per_million: self.llm_price_completion_per_million,
            cache_hit_per_million: self.llm_price_cache_hit_per_million,
        }
    }

    /// The client configuration, or None when no key is set (offline mode).
    pub fn client_config(&self) -> Option<crate::llm::LlmConfig> {
        let key = self
            .llm_api_key
            .as_ref()
            .map(|k| k.expose().trim())
            .filter(|k| !k.is_empty())?;
        Some(crate::llm::LlmConfig {
            base_url: self.llm_base_url.clone(),
            model: self.llm_model.clone(),
            api_key: Some(key.to_owned()),
            timeout: Duration::from_secs_f64(self.llm_timeout_seconds.max(0.001)),
            max_tokens: self.llm_max_tokens,
            thinking: match self.llm_thinking {
                Thinking::On => Some(true),
                Thinking::Omit => None,
                Thinking::Off => Some(false),
            },
            requests_per_minute: self.llm_requests_per_minute,
            max_in_flight: self.llm_max_in_flight,
            overload_retries: self.llm_overload_retries,
            overload_wait_max: Duration::from_secs_f64(self.llm_overload_wait_max_seconds.max(0.0)),
            prices: self.prices(),
            http: self.llm_http_version,
            // Checked at start (`EconomySettings::economy`); unparseable
            // here means none.
            offpeak: self.economy.windows().ok().flatten(),
            offpeak_price_factor: self.economy.llm_offpeak_price_factor,
            ..crate::llm::LlmConfig::default()
        })
    }
}

/// The HTTP API for apps (off unless API_ADDR is set).
#[derive(Debug, Clone, Args)]
pub struct ApiSettings {
    /// Address of the /v1 API for apps, e.g. 0.0.0.0:8080; unset: no API.
    #[arg(long, env = "API_ADDR")]
    pub api_addr: Option<String>,

    /// Connections of the API's own pool when the worker runs in the same
    /// process (busy apps must not take the connections that keep the
    /// worker's leases alive); API-only processes use DATABASE_POOL_SIZE.
    #[arg(long, env = "API_DATABASE_POOL_SIZE", default_value_t = 5)]
    pub api_database_pool_size: u32,

    /// Supabase's JWT secret, for HS256 tokens.
    #[arg(long, env = "SUPABASE_JWT_SECRET", hide_env_values = true)]
    pub supabase_jwt_secret: Option<Secret>,

    /// The project's JWKS URL, for ES256/RS256 tokens
    /// (https://<ref>.supabase.co/auth/v1/.well-known/jwks.json).
    #[arg(long, env = "SUPABASE_JWKS_URL")]
    pub supabase_jwks_url: Option<String>,

    /// Required `iss` of tokens (https://<ref>.supabase.co/auth/v1); unset:
    /// not checked.
    #[arg(long, env = "SUPABASE_JWT_ISSUER")]
    pub supabase_jwt_issuer: Option<String>,

    /// Seconds the JWKS is cached (an unknown `kid` refetches it sooner).
    #[arg(long, env = "JWKS_CACHE_SECONDS", default_value_t = 600)]
    pub jwks_cache_seconds: u64,

    /// Seconds since the last successful JWKS fetch after which its keys
    /// are no longer trusted while the endpoint keeps failing.
    #[arg(long, env = "JWKS_MAX_STALE_SECONDS", default_value_t = 86_400)]
    pub jwks_max_stale_seconds: u64,

    /// Accept Supabase's anonymous users (tokens with is_anonymous: true).
    #[arg(long, env = "ALLOW_ANONYMOUS_USERS", default_value_t = false)]
    pub allow_anonymous_users: bool,

    /// Operator token: may read and cancel any user's job (its actions are
    /// audited as operator "admin").
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Named operator tokens, `name=token,name=token`: each may do what
    /// ADMIN_TOKEN may, and operator_actions records which one did it.
    #[arg(long, env = "ADMIN_TOKENS", hide_env_values = true)]
    pub admin_tokens: Option<Secret>,

    /// Job priority by the user's tier, `tier:priority,...` (e.g.
    /// pro:10,free:0; priorities -100 to 100, higher first). The tier is
    /// read from the token's TIER_CLAIM, never from the request; a tier not
    /// listed, or no tier, is priority 0.
    #[arg(long, env = "PRIORITY_BY_TIER")]
    pub priority_by_tier: Option<String>,

    /// Where the token carries the tier, a dotted path into its claims
    /// (Supabase's app_metadata is set by the server only, unlike
    /// user_metadata, which the user may edit).
    #[arg(long, env = "TIER_CLAIM", default_value = "app_metadata.tier")]
    pub tier_claim: String,

    /// Job creations per user per window, e.g. 10/hour, 3/minute, 50/day
    /// (0/hour: no limit).
    #[arg(long, env = "CREATE_RATE_LIMIT", default_value = "10/hour")]
    pub create_rate_limit: RateLimit,

    /// Creation requests (create, retry, swap) one user may send at once,
    /// refilled one a second; checked in memory before any database work
    /// (0: no limit).
    #[arg(long, env = "CREATE_BURST", default_value_t = 5)]
    pub create_burst: u32,

    /// Pending jobs at most, across all users; over it a creation gets 503
    /// QUEUE_FULL with Retry-After and nothing is written (0: no cap).
    #[arg(long, env = "MAX_PENDING_JOBS", default_value_t = 100_000)]
    pub max_pending_jobs: u64,

    /// Time after a user's last completed plan before they may generate a
    /// new one, e.g. 14d, 12h, 30m (0: no cool-down).
    #[arg(long, env = "REGENERATION_COOLDOWN", default_value = "14d")]
    pub regeneration_cooldown: Span,

    /// Deadline of one API request in seconds (SSE streams excepted).
    #[arg(long, env = "API_REQUEST_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub api_request_timeout_seconds: f64,

    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "SSE_KEEPALIVE_SECONDS", default_value_t = 15.0)]
    pub sse_keepalive_seconds: f64,

    /// Recent completed jobs (of the job's kind, source and model) the
    /// estimate of remaining time is computed from.
    #[arg(long, env = "ESTIMATE_SAMPLE_JOBS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub estimate_sample_jobs: u32,

    /// Only jobs completed within this many days count for estimates.
    #[arg(long, env = "ESTIMATE_WINDOW_DAYS", default_value_t = 30.0)]
    pub estimate_window_days: f64,

    /// Fewer alike jobs than this: the estimate falls back to a broader
    /// history (kind + source, kind, then ESTIMATE_DEFAULT_SECONDS).
    #[arg(long, env = "ESTIMATE_MIN_JOBS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub estimate_min_jobs: u32,

    /// A whole job's median in seconds when no history exists (the
    /// estimate then says basis "default" and basedOnJobs 0).
    #[arg(long, env = "ESTIMATE_DEFAULT_SECONDS", default_value_t = 60.0)]
    pub estimate_default_seconds: f64,

    /// Connections the API serves at once; further clients wait to be
    /// accepted.
    #[arg(long, env = "API_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub api_max_connections: u32,

    /// Seconds a client has to send a whole request head; on HTTP/1.1 also
    /// how long a kept-alive connection waits for its next request.
    #[arg(long, env = "API_HEADER_TIMEOUT_SECONDS", default_value_t = 10.0)]
    pub api_header_timeout_seconds: f64,

    /// Seconds a connection may move no byte either way before it is
    /// closed; longer than API_REQUEST_TIMEOUT_SECONDS and
    /// SSE_KEEPALIVE_SECONDS.
    #[arg(long, env = "API_IDLE_TIMEOUT_SECONDS", default_value_t = 60.0)]
    pub api_idle_timeout_seconds: f64,

    /// Web origins allowed to call the API from a browser (CORS), comma
    /// separated, e.g. https://app.example.com; unset: no CORS headers.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS")]
    pub cors_allowed_origins: Option<crate::api::cors::Origins>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        defaults()
    }
}

impl ApiSettings {
    /// PRIORITY_BY_TIER as (tier, priority) pairs; refused naming the field
    /// when an entry is not `tier:integer` within -100..=100 or a tier
    /// repeats.
    pub fn tier_priorities(&self) -> Result<Vec<(String, i32)>, SettingError> {
        let bad = |message: String| SettingError {
            field: "priority_by_tier",
            message,
        };
        let mut out: Vec<(String, i32)> = Vec::new();
        let listed = self.priority_by_tier.as_deref().unwrap_or("");
        for entry in listed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((tier, priority)) = entry.split_once(':') else {
                return Err(bad(format!(
                    "{entry:?}: expected tier:priority, e.g. pro:10"
                )));
            };
            let tier = tier.trim();
            let priority = priority
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|p| (-100..=100).contains(p))
                .ok_or_else(|| {
                    bad(format!(
                        "{entry:?}: the priority must be an integer from -100 to 100"
                    ))
                })?;
            if tier.is_empty() {
                return Err(bad(format!("{entry:?}: the tier is empty")));
            }
            if out.iter().any(|(t, _)| t == tier) {
                return Err(bad(format!("tier {tier:?} is listed twice")));
            }
            out.push((tier.to_owned(), priority));
        }
        if !out.is_empty()
            && self
                .tier_claim
                .split('.')
                .any(|segment| segment.trim().is_empty())
        {
            return Err(SettingError {
                field: "tier_claim",
                message: format!(
                    "{:?}: a dotted path of claim names, e.g. app_metadata.tier",
                    self.tier_claim
                ),
            });
        }
        Ok(out)
    }

    /// The operators, checked as the API checks them (ADMIN_TOKEN at least
    /// 16 characters, ADMIN_TOKENS well formed): who may use operator
    /// calls of the API and sign in to the console at /ops/.
    pub fn console_operators(&self) -> Result<Vec<(String, String)>, SettingError> {
        if let Some(admin) = self
            .admin_token
            .as_ref()
            .map(Secret::expose)
            .filter(|t| !t.is_empty())
            && admin.trim().len() < 16
        {
            return Err(SettingError {
                field: "admin_token",
                message: "ADMIN_TOKEN may read and cancel every user's jobs: use at least 16 \
                          random characters"
                    .into(),
            });
        }
        self.operators()
    }

    /// Every operator token with its name: ADMIN_TOKEN as "admin", then
    /// ADMIN_TOKENS. Names are 1-64 of [a-z0-9_.-]; tokens at least 16
    /// characters; neither may repeat.
    pub fn operators(&self) -> Result<Vec<(String, String)>, SettingError> {
        let bad = |message: String| SettingError {
            field: "admin_tokens",
            message,
        };
        let mut out: Vec<(String, String)> = Vec::new();
        if let Some(t) = self.admin_token.as_ref().map(Secret::expose).map(str::trim)
            && !t.is_empty()
        {
            out.push(("admin".to_owned(), t.to_owned()));
        }
        let listed = self.admin_tokens.as_ref().map(Secret::expose).unwrap_or("");
        for entry in listed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((name, token)) = entry.split_once('=') else {
                return Err(bad("ADMIN_TOKENS: each entry is name=token".into()));
            };
            let (name, token) = (name.trim(), token.trim());
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
            if !name_ok {
                return Err(bad(format!(
                    "ADMIN_TOKENS: operator name {name:?}: 1-64 of a-z, 0-9, _ . -"
                )));
            }
            if token.len() < 16 {
                return Err(bad(format!(
                    "ADMIN_TOKENS: the token of {name} needs at least 16 random characters"
                )));
            }
            if out.iter().any(|(n, t)| n == name || t == token) {
                return Err(bad(format!(
                    "ADMIN_TOKENS: {name} or its token is listed twice"
                )));
            }
            out.push((name.to_owned(), token.to_owned()));
        }
        Ok(out)
    }

    /// Refuses an API that could authenticate nobody, naming the setting.
    pub fn validate(&self) -> Result<(), SettingError> {
        let set = |v: Option<&str>| v.is_some_and(|s| !s.trim().is_empty());
        let secret = self.supabase_jwt_secret.as_ref().map(Secret::expose);
        if !set(secret) && !set(self.supabase_jwks_url.as_deref()) {
            return Err(SettingError {
                field: "supabase_jwt_secret",
                message: "API_ADDR is set, so SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL must be \
                          set too (users authenticate with Supabase JWTs)"
                    .into(),
            });
        }
        self.console_operators()?;
        self.tier_priorities()?;
        positive(
            "api_request_timeout_seconds",
            self.api_request_timeout_seconds,
        )?;
        positive("sse_keepalive_seconds", self.sse_keepalive_seconds)?;
        positive("estimate_window_days", self.estimate_window_days)?;
        positive("estimate_default_seconds", self.estimate_default_seconds)?;
        if self.jwks_max_stale_seconds < self.jwks_cache_seconds {
            return Err(SettingError {
                field: "jwks_max_stale_seconds",
                message: format!(
                    "must be at least JWKS_CACHE_SECONDS ({}), got {}",
                    self.jwks_cache_seconds, self.jwks_max_stale_seconds
                ),
            });
        }
        positive(
            "api_header_timeout_seconds",
            self.api_header_timeout_seconds,
        )?;
        positive("api_idle_timeout_seconds", self.api_idle_timeout_seconds)?;
        // An answer being computed, or an event stream between keep-alives,
        // moves no byte: the idle timeout must not cut them.
        let quiet = self
            .api_request_timeout_seconds
            .max(self.sse_keepalive_seconds);
        if self.api_idle_timeout_seconds <= quiet {
            return Err(SettingError {
                field: "api_idle_timeout_seconds",
                message: format!(
                    "must be longer than API_REQUEST_TIMEOUT_SECONDS and SSE_KEEPALIVE_SECONDS \
                     ({quiet} s), got {}",
                    self.api_idle_timeout_seconds
                ),
            });
        }
        Ok(())
    }

    /// What the API's listener allows each client.
    pub fn connection_limits(&self) -> crate::http_server::ConnectionLimits {
        crate::http_server::ConnectionLimits {
            max_connections: self.api_max_connections as usize,
            header_timeout: Duration::from_secs_f64(self.api_header_timeout_seconds),
            idle_timeout: Duration::from_secs_f64(self.api_idle_timeout_seconds),
        }
    }
}

/// The internal operations listener.
#[derive(Debug, Clone, Args)]
pub struct OpsSettings {
    /// Address of /metrics, /healthz and /readyz (keep it internal).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,

    /// Do not apply migrations at start.
    #[arg(long, env = "NO_MIGRATE", default_value_t = false)]
    pub no_migrate: bool,

    /// Run only the API (API_ADDR), no worker: for an API-only container.
    #[arg(long, env = "NO_WORKER", default_value_t = false)]
    pub no_worker: bool,

    /// Connections the ops listener serves at once, apart from the API's,
    /// so that a flood on one does not starve the other.
    #[arg(long, env = "OPS_MAX_CONNECTIONS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub ops_max_connections: u32,

    /// Minutes an operator stays signed in to the console (/ops/) after
    /// signing in with an operator token.
    #[arg(long, env = "OPS_CONSOLE_SESSION_MINUTES", default_value_t = 480, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub ops_console_session_minutes: u64,

    /// Mark the console's session cookie Secure (sent over HTTPS only):
    /// set it when the ops listener is reached through a TLS proxy.
    #[arg(long, env = "OPS_CONSOLE_SECURE_COOKIE", default_value_t = false)]
    pub ops_console_secure_cookie: bool,
}

impl OpsSettings {
    /// The console of this process, for `operators` (see
    /// [`ApiSettings::console_operators`]).
    pub fn console(
        &self,
        operators: Vec<(String, String)>,
        prices: crate::llm::Prices,
    ) -> crate::ops::console::Console {
        crate::ops::console::Console::new(
            operators,
            Duration::from_secs(self.ops_console_session_minutes * 60),
            self.ops_console_secure_cookie,
        )
        .with_prices(prices)
    }
}

/// Push notifications from the outbox to Expo.
#[derive(Debug, Clone, Args)]
pub struct PushSettings {
    /// Expo push API URL (https://exp.host/--/api/v2/push/send); unset: push
    /// notifications are not sent and outbox rows are marked skipped.
    #[arg(long, env = "EXPO_PUSH_URL")]
    pub expo_push_url: Option<String>,

    /// Expo access token, when push security is enabled for the project.
    #[arg(long, env = "EXPO_ACCESS_TOKEN", hide_env_values = true)]
    pub expo_access_token: Option<Secret>,

    /// Seconds between passes of the push delivery loop.
    #[arg(long, env = "PUSH_POLL_SECONDS", default_value_t = 2.0)]
    pub push_poll_seconds: f64,
}

impl PushSettings {
    /// The Expo endpoint, unless push is off.
    pub fn expo_url(&self) -> Option<&str> {
        self.expo_push_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.push_poll_seconds.max(0.1))
    }
}

/// `count/unit`: at most `count` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window: Duration,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("expected count/unit such as 10/hour, got {s:?}"))?;
        let count = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a whole number"))?;
        let window = match unit.trim() {
            "second" | "s" => 1,
            "minute" | "m" => 60,
            "hour" | "h" => 3600,
            "day" | "d" => 86_400,
            other => {
                return Err(format!(
                    "unknown unit {other:?}: use second, minute, hour or day"
                ));
            }
        };
        Ok(RateLimit {
            count,
            window: Duration::from_secs(window),
        })
    }
}

/// A length of time written as a number and a unit: 90s, 30m, 12h, 14d (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Span(Duration::ZERO));
        }
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{s:?} has no unit: write e.g. 14d, 12h, 30m or 90s"))?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("{s:?} does not start with a whole number"))?;
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => return Err(format!("unknown unit {other:?}: use s, m, h or d")),
        };
        Ok(Span(Duration::from_secs(n.saturating_mul(unit_secs))))
    }
}

#[cfg(test)]
mod api_settings_tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags_and_ignore_the_environment() {
        let w = WorkerSettings::default();
        assert_eq!((w.max_concurrent_jobs, w.lease_seconds), (16, 30.0));
        let l = LlmSettings::default();
        assert_eq!(l.llm_thinking, Thinking::Off);
        assert!(l.llm_api_key.is_none());
        let a = ApiSettings::default();
        assert_eq!(a.create_rate_limit.count, 10);
        assert_eq!(a.regeneration_cooldown.0.as_secs(), 14 * 86_400);
    }

    #[test]
    fn rate_limits_and_spans_parse_and_name_what_is_wrong() {
        let r: RateLimit = "10/hour".parse().unwrap();
        assert_eq!((r.count, r.window), (10, Duration::from_secs(3600)));
        assert_eq!("3/m".parse::<RateLimit>().unwrap().window.as_secs(), 60);
        assert!(
            "ten/hour"
                .parse::<RateLimit>()
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            "10/week"
                .parse::<RateLimit>()
                .unwrap_err()
                .contains("unknown unit")
        );
        assert_eq!("14d".parse::<Span>().unwrap().0.as_secs(), 14 * 86_400);
        assert_eq!("0".parse::<Span>().unwrap().0, Duration::ZERO);
        assert!("14".parse::<Span>().unwrap_err().contains("no unit"));
        assert!("2w".parse::<Span>().unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn an_idle_timeout_that_would_cut_answers_or_streams_is_refused() {
        let ok = ApiSettings {
            supabase_jwt_secret: Some("s".into()),
            ..ApiSettings::default()
        };
        ok.validate().unwrap();
        for idle in [0.0, 10.0, 15.0] {
            let s = ApiSettings {
                api_idle_timeout_seconds: idle,
                ..ok.clone()
            };
            assert_eq!(
                s.validate().unwrap_err().field,
                "api_idle_timeout_seconds",
                "{idle}"
            );
        }
    }

    #[test]
    fn a_stale_bound_shorter_than_the_cache_is_refused() {
        let s = ApiSettings {
            supabase_jwt_secret: Some("s".into()),
            jwks_cache_seconds: 600,
            jwks_max_stale_seconds: 599,
            ..ApiSettings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "jwks_max_stale_seconds");
    }

    #[test]
    fn an_api_without_any_way_to_authenticate_is_refused() {
        let err = ApiSettings::default().validate().unwrap_err();
        assert_eq!(err.field, "supabase_jwt_secret");
        let ok = ApiSettings {
            supabase_jwt_secret: Some("s".into()),
            ..ApiSettings::default()
        };
        ok.validate().unwrap();
        let weak_operator = ApiSettings {
            admin_token: Some("admin".into()),
            ..ok
        };
        assert_eq!(weak_operator.validate().unwrap_err().field, "admin_token");
    }

    #[test]
    fn named_operator_tokens_are_parsed_and_bad_ones_refused_naming_the_setting() {
        let with = |tokens: &str| ApiSettings {
            supabase_jwt_secret: Some("s".repeat(32).as_str().into()),
            admin_token: Some("admin-token-0123456789".into()),
            admin_tokens: Some(tokens.into()),
            ..ApiSettings::default()
        };
        let ops = with("alice=alice-token-0123456789, bob=bob-token-01234567890")
            .operators()
            .unwrap();
        let names: Vec<&str> = ops.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["admin", "alice", "bob"]);
        for bad in [
            "alice",
            "Alice=alice-token-0123456789",
            "alice=short",
            "alice=alice-token-0123456789,alice=other-token-0123456789",
            "bob=admin-token-0123456789",
        ] {
            let err = with(bad).validate().unwrap_err();
            assert_eq!(err.field, "admin_tokens", "{bad}");
            assert!(
                !err.message.contains("token-0123456789"),
                "{bad}: {}",
                err.message
            );
        }
    }
}
