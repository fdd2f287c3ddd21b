//! Every metric of the service, declared once with its help text. Names are
//! in base units; labels are bounded (kind, outcome, error_code, source,
//! reason) and never carry job or user ids.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub const JOBS_CLAIMED: &str = "plan_jobs_claimed_total";
pub const JOBS_FINISHED: &str = "plan_jobs_finished_total";
pub const JOBS_RETRIED: &str = "plan_jobs_retried_total";
pub const JOBS_RELEASED: &str = "plan_jobs_released_total";
pub const JOBS_REAPED: &str = "plan_jobs_reaped_total";
pub const JOBS_EXPIRED: &str = "plan_jobs_expired_total";
pub const JOBS_UNHANDLED: &str = "plan_jobs_unhandled_total";
pub const PROFILES_SCRUBBED: &str = "plan_job_profiles_scrubbed_total";
pub const JOBS_PURGED: &str = "plan_jobs_purged_total";
pub const SCHEDULED_JOBS: &str = "plan_schedule_jobs_total";
pub const JOBS_POSTPONED: &str = "plan_jobs_postponed_total";
pub const TABLE_VACUUMS: &str = "plan_table_vacuums_total";
pub const LEASES_LOST: &str = "plan_worker_leases_lost_total";
pub const WAKEUPS: &str = "plan_worker_wakeups_total";
pub const LISTENER_RECONNECTS: &str = "plan_worker_listener_reconnects_total";
pub const DB_RETRIES: &str = "plan_worker_db_retries_total";
/// The `what` label of `DB_RETRIES`: every statement tried again.
pub const DB_RETRY_STATEMENTS: &[&str] = &[
    "connect",
    "complete",
    "fail",
    "release",
    "progress",
    "save_weekly_plan",
    "save_meal_plan",
    "read_weekly_targets",
    "read_swap_source",
];
pub const ATTEMPT_DURATION: &str = "plan_job_attempt_duration_seconds";
pub const QUEUE_WAIT: &str = "plan_job_queue_wait_seconds";
pub const JOBS_IN_FLIGHT: &str = "plan_worker_jobs_in_flight";
pub const FREE_SLOTS: &str = "plan_worker_free_slots";
pub const LISTENER_CONNECTED: &str = "plan_worker_listener_connected";
pub const NOTIFY_SELF_TEST_OK: &str = "plan_worker_notify_self_test_ok";
pub const VALIDATION_FAILURES: &str = "plan_validation_failures_total";
pub const PLANS_SAVED: &str = "plan_plans_saved_total";
pub const JOBS_QUEUED: &str = "plan_jobs_queued";
pub const OLDEST_PENDING_AGE: &str = "plan_jobs_oldest_pending_age_seconds";
pub const OLDEST_RUNNING_AGE: &str = "plan_jobs_oldest_running_age_seconds";
pub const WORKERS_LIVE: &str = "plan_workers_live";
pub const END_TO_END: &str = "plan_job_end_to_end_seconds";
pub const PICKUP_LATENCY: &str = "plan_job_pickup_latency_seconds";
pub const STAGE_DURATION: &str = "plan_job_stage_duration_seconds";
pub const SAVE_DURATION: &str = "plan_plan_save_duration_seconds";
pub const BUILD_INFO: &str = "plan_worker_build_info";
pub const LAST_SUCCESS: &str = "plan_worker_last_success_timestamp_seconds";
pub const API_RESPONSES: &str = "plan_api_responses_total";
pub const API_AUTH_FAILURES: &str = "plan_api_auth_failures_total";
pub const API_EVENT_STREAMS: &str = "plan_api_event_streams";
pub const UNSPLASH_REQUESTS: &str = "plan_unsplash_requests_total";
pub const UNSPLASH_REQUEST_DURATION: &str = "plan_unsplash_request_duration_seconds";
pub const MEAL_IMAGES: &str = "plan_meal_images_total";
pub const PUSH_DELIVERY_UP: &str = "plan_push_delivery_up";
pub const PUSH_DELIVERY_RESTARTS: &str = "plan_push_delivery_restarts_total";
pub const CONSOLE_LOGINS: &str = "plan_console_logins_total";
pub const CONSOLE_ACTIONS: &str = "plan_console_actions_total";
pub const CONSOLE_REFUSED: &str = "plan_console_refused_posts_total";

/// The process's own metrics (metrics-process, the names of Prometheus'
/// client libraries), read at each scrape. Those it exports on Linux.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_THREADS: &str = "process_threads";
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// Every metric name this service exports (dashboards and alert rules may
/// use only these; a test checks it).
pub const CATALOGUE: &[&str] = &[
    PROCESS_CPU_SECONDS,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_THREADS,
    PROCESS_START_TIME,
    JOBS_CLAIMED,
    JOBS_FINISHED,
    JOBS_RETRIED,
    JOBS_RELEASED,
    JOBS_REAPED,
    JOBS_EXPIRED,
    JOBS_UNHANDLED,
    PROFILES_SCRUBBED,
    JOBS_PURGED,
    SCHEDULED_JOBS,
    JOBS_POSTPONED,
    TABLE_VACUUMS,
    LEASES_LOST,
    WAKEUPS,
    LISTENER_RECONNECTS,
    DB_RETRIES,
    ATTEMPT_DURATION,
    QUEUE_WAIT,
    JOBS_IN_FLIGHT,
    FREE_SLOTS,
    LISTENER_CONNECTED,
    NOTIFY_SELF_TEST_OK,
    VALIDATION_FAILURES,
    PLANS_SAVED,
    JOBS_QUEUED,
    OLDEST_PENDING_AGE,
    OLDEST_RUNNING_AGE,
    WORKERS_LIVE,
    END_TO_END,
    PICKUP_LATENCY,
    STAGE_DURATION,
    SAVE_DURATION,
    BUILD_INFO,
    LAST_SUCCESS,
    API_RESPONSES,
    API_AUTH_FAILURES,
    API_EVENT_STREAMS,
    UNSPLASH_REQUESTS,
    UNSPLASH_REQUEST_DURATION,
    MEAL_IMAGES,
    crate::llm::metrics::REQUESTS_TOTAL,
    crate::llm::metrics::REQUEST_DURATION_SECONDS,
    crate::llm::metrics::TOKENS_TOTAL,
    crate::llm::metrics::OFFPEAK_TOKENS_TOTAL,
    crate::llm::metrics::COST_TOTAL,
    crate::llm::metrics::CONCURRENCY_LIMIT,
    crate::llm::metrics::OVERLOAD_RETRIES,
    crate::llm::metrics::TIME_TO_FIRST_TOKEN_SECONDS,
    crate::jobs::weekly_plan::structure_cache::LOOKUPS,
    crate::notify::delivery::PUSHES,
    PUSH_DELIVERY_UP,
    PUSH_DELIVERY_RESTARTS,
    CONSOLE_LOGINS,
    CONSOLE_ACTIONS,
    CONSOLE_REFUSED,
];

/// Registers help text and units; call once at start.
/// The process metrics' source; one per process, like the recorder.
fn process() -> &'static metrics_process::Collector {
    static PROCESS: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();
    PROCESS.get_or_init(metrics_process::Collector::default)
}

/// Reads the process metrics now (at each scrape: they are a snapshot).
pub fn collect_process() {
    process().collect();
}

pub fn describe() {
    process().describe();
    describe_counter!(JOBS_CLAIMED, "Jobs claimed by this worker.");
    describe_counter!(
        crate::jobs::weekly_plan::structure_cache::LOOKUPS,
        "Week structures looked up in the structure cache, by result (hit: the structure call \
         was skipped)."
    );
    describe_counter!(
        JOBS_FINISHED,
        "Jobs that reached a final state, by outcome and error code."
    );
    describe_counter!(
        JOBS_RETRIED,
        "Failed attempts scheduled for another attempt, by error code."
    );
    describe_counter!(
        JOBS_RELEASED,
        "Jobs given back on shutdown without spending an attempt."
    );
    describe_counter!(
        JOBS_REAPED,
        "Jobs taken back from a dead worker or an expired lease."
    );
    describe_counter!(JOBS_EXPIRED, "Pending jobs failed as STALE_JOB.");
    describe_counter!(
        JOBS_UNHANDLED,
        "Pending jobs failed as CONFIG_ERROR because no live worker handles their kind, by kind."
    );
    describe_counter!(
        PROFILES_SCRUBBED,
        "Finished jobs whose profile snapshot was emptied after PROFILE_RETENTION_DAYS."
    );
    describe_counter!(
        JOBS_PURGED,
        "Finished jobs deleted after JOB_RETENTION_DAYS, with their attempts, keys and pushes."
    );
    describe_counter!(
        SCHEDULED_JOBS,
        "Jobs made by periodic schedules (plan_schedules), by kind."
    );
    describe_counter!(
        JOBS_POSTPONED,
        "Economy jobs a worker claimed in a peak of its LLM_PEAK_WINDOWS/LLM_OFFPEAK_WINDOWS and \
         put back until the next off-peak start (no attempt spent), by kind."
    );
    describe_counter!(
        TABLE_VACUUMS,
        "VACUUMs the workers ran on a hot table whose dead rows autovacuum had not yet reached, by table."
    );
    describe_counter!(LEASES_LOST, "Running jobs whose lease this worker lost.");
    describe_counter!(WAKEUPS, "Dispatcher wake-ups by source.");
    describe_counter!(LISTENER_RECONNECTS, "Reconnects of the LISTEN connection.");
    describe_counter!(
        DB_RETRIES,
        "Statements that end or record an attempt, tried again while the database was unavailable, by statement."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of one attempt, by outcome."
    );
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Time from a job being due to its claim."
    );
    describe_gauge!(JOBS_IN_FLIGHT, "Jobs this worker is running.");
    describe_gauge!(FREE_SLOTS, "Free job slots of this worker.");
    describe_gauge!(LISTENER_CONNECTED, "1 when the LISTEN connection is up.");
    describe_gauge!(
        NOTIFY_SELF_TEST_OK,
        "1 when the worker's own NOTIFY came back (0: polling)."
    );
    describe_counter!(
        VALIDATION_FAILURES,
        "Validator findings on generated plans, by rule."
    );
    describe_counter!(
        PLANS_SAVED,
        "Plans saved, by kind and source (llm or offline)."
    );
    describe_gauge!(
        JOBS_QUEUED,
        "Active jobs in the whole queue by kind and status (sampled from the database)."
    );
    describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Wait of the oldest due pending job, by kind."
    );
    describe_gauge!(
        OLDEST_RUNNING_AGE,
        Unit::Seconds,
        "Age of the oldest running job since it first started."
    );
    describe_gauge!(WORKERS_LIVE, "Registered workers (queue-wide).");
    describe_histogram!(
        END_TO_END,
        Unit::Seconds,
        "Time from a job's creation to its final state."
    );
    describe_histogram!(
        PICKUP_LATENCY,
        Unit::Seconds,
        "Time from a NOTIFY wake-up to the claim's answer."
    );
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Duration of each pipeline stage."
    );
    describe_histogram!(
        SAVE_DURATION,
        Unit::Seconds,
        "Duration of the transaction that saves a plan."
    );
    describe_gauge!(BUILD_INFO, "1, labelled with the version of this build.");
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of this worker's last completed job."
    );
    describe_counter!(
        crate::notify::delivery::PUSHES,
        "Push notifications by outcome (sent, retry, failed, skipped) and Expo error code (a documented one, or other)."
    );
    describe_gauge!(
        PUSH_DELIVERY_UP,
        "1 while the push delivery loop runs (0: down, waiting to be restarted)."
    );
    describe_counter!(
        PUSH_DELIVERY_RESTARTS,
        "Restarts of the push delivery loop after it panicked or ended."
    );
    describe_counter!(
        API_RESPONSES,
        "API responses by route template and status class (2xx, 4xx, 5xx)."
    );
    describe_counter!(
        API_AUTH_FAILURES,
        "API requests refused by authentication, by reason."
    );
    describe_gauge!(API_EVENT_STREAMS, "Open SSE streams of job events.");
    describe_counter!(
        UNSPLASH_REQUESTS,
        "Requests to Unsplash by endpoint (search, download) and outcome (ok, rate_limited, error)."
    );
    describe_histogram!(
        UNSPLASH_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of one Unsplash request, by endpoint."
    );
    describe_counter!(
        MEAL_IMAGES,
        "Dishes looked up for meal images, by outcome: attached (found by a search), cached, none (no photo), deferred (hourly limit), error."
    );
    describe_counter!(
        CONSOLE_LOGINS,
        "Sign-ins to the operators' console, by outcome (ok, refused)."
    );
    describe_counter!(
        CONSOLE_ACTIONS,
        "Operator actions taken in the console, by action (retry, cancel, pause, resume)."
    );
    describe_counter!(
        CONSOLE_REFUSED,
        "Console POSTs refused, by reason: origin (another site) or csrf (token missing or wrong)."
    );
    crate::llm::describe_metrics();
}

const CONSOLE_ACTION_NAMES: [&str; 4] = ["retry", "cancel", "pause", "resume"];

pub fn console_login(ok: bool) {
    let outcome = if ok { "ok" } else { "refused" };
    metrics::counter!(CONSOLE_LOGINS, "outcome" => outcome).increment(1);
}

pub fn console_action(action: &'static str) {
    metrics::counter!(CONSOLE_ACTIONS, "action" => action).increment(1);
}

pub fn console_refused(reason: &'static str) {
    metrics::counter!(CONSOLE_REFUSED, "reason" => reason).increment(1);
}

/// Routes of the API, as labelled in API_RESPONSES.
pub const API_ROUTES: &[&str] = &[
    "/v1/plan-jobs",
    "/v1/plan-jobs/active",
    "/v1/plan-jobs/{id}",
    "/v1/plan-jobs/{id}/cancel",
    "/v1/plan-jobs/{id}/retry",
    "/v1/plan-jobs/{id}/events",
    "/v1/schedules",
    "/v1/schedules/{kind}",
    "/v1/plans",
    "/v1/plans/active",
    "/v1/plans/{id}",
    "/v1/plans/{id}/activate",
    "/v1/meal-plans",
    "/v1/meal-plans/active",
    "/v1/meal-plans/{id}",
    "/v1/meal-plans/{id}/activate",
    "/v1/meal-plans/{id}/grocery-list",
    "/v1/meal-plans/{id}/days/{day}/meals/{index}/swap",
    "/v1/meal-plans/{id}/images/{photo_id}/used",
    "/v1/targets",
    "/v1/openapi.json",
];
pub const API_AUTH_FAILURE_REASONS: &[&str] = &[
    "missing",
    "malformed",
    "critical_extension",
    "algorithm",
    "unknown_key",
    "keys_unavailable",
    "keys_too_old",
    "invalid",
    "role",
    "subject",
    "anonymous",
];

/// Counts one API response (route templates only: ids never become labels).
pub fn api_response(route: &str, status: u16) {
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let route = API_ROUTES
        .iter()
        .find(|r| **r == route)
        .copied()
        .unwrap_or("other");
    metrics::counter!(API_RESPONSES, "route" => route, "class" => class).increment(1);
}

pub fn api_auth_failure(reason: &'static str) {
    metrics::counter!(API_AUTH_FAILURES, "reason" => reason).increment(1);
}

const UNSPLASH_ENDPOINTS: [&str; 2] = ["search", "download"];
const MEAL_IMAGE_OUTCOMES: [&str; 5] = ["attached", "cached", "none", "deferred", "error"];
const OUTCOMES: [&str; 3] = ["completed", "failed", "cancelled"];
const WAKE_SOURCES: [&str; 6] = ["start", "notify", "schedule", "slot", "tick", "reconnect"];

/// Exports 0 for every series known at start, so that rates and alerts see
/// a series before its first event.
pub fn register_zeros(kinds: &[String]) {
    use crate::error_code::ErrorCode;
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for source in WAKE_SOURCES {
        metrics::counter!(WAKEUPS, "source" => source).absolute(0);
    }
    for reason in ["worker_dead", "lease_expired"] {
        metrics::counter!(JOBS_REAPED, "reason" => reason).absolute(0);
    }
    metrics::counter!(PROFILES_SCRUBBED).absolute(0);
    for result in ["hit", "miss"] {
        metrics::counter!(crate::jobs::weekly_plan::structure_cache::LOOKUPS, "result" => result)
            .absolute(0);
    }
    metrics::counter!(JOBS_PURGED).absolute(0);
    for table in crate::queue::store::VACUUMED_TABLES {
        metrics::counter!(TABLE_VACUUMS, "table" => *table).absolute(0);
    }
    for kind in kinds {
        metrics::counter!(SCHEDULED_JOBS, "kind" => kind.clone()).absolute(0);
        metrics::counter!(JOBS_POSTPONED, "kind" => kind.clone()).absolute(0);
    }
    for what in DB_RETRY_STATEMENTS {
        metrics::counter!(DB_RETRIES, "what" => *what).absolute(0);
    }
    for outcome in ["sent", "retry", "failed", "skipped"] {
        metrics::counter!(crate::notify::delivery::PUSHES, "outcome" => outcome, "error" => "")
            .absolute(0);
    }
    for route in API_ROUTES {
        for class in ["2xx", "4xx", "5xx"] {
            metrics::counter!(API_RESPONSES, "route" => *route, "class" => class).absolute(0);
        }
    }
    for reason in API_AUTH_FAILURE_REASONS {
        metrics::counter!(API_AUTH_FAILURES, "reason" => *reason).absolute(0);
    }
    metrics::gauge!(API_EVENT_STREAMS).set(0.0);
    for outcome in ["ok", "refused"] {
        metrics::counter!(CONSOLE_LOGINS, "outcome" => outcome).absolute(0);
    }
    for action in CONSOLE_ACTION_NAMES {
        metrics::counter!(CONSOLE_ACTIONS, "action" => action).absolute(0);
    }
    for reason in ["origin", "csrf"] {
        metrics::counter!(CONSOLE_REFUSED, "reason" => reason).absolute(0);
    }
    for endpoint in UNSPLASH_ENDPOINTS {
        for outcome in ["ok", "rate_limited", "error"] {
            metrics::counter!(UNSPLASH_REQUESTS, "endpoint" => endpoint, "outcome" => outcome)
                .absolute(0);
        }
        // Registering the handle is enough for an empty histogram to render.
        let _ = metrics::histogram!(UNSPLASH_REQUEST_DURATION, "endpoint" => endpoint);
    }
    for outcome in MEAL_IMAGE_OUTCOMES {
        metrics::counter!(MEAL_IMAGES, "outcome" => outcome).absolute(0);
    }
    for c in [
        LEASES_LOST,
        LISTENER_RECONNECTS,
        JOBS_EXPIRED,
        PUSH_DELIVERY_RESTARTS,
    ] {
        metrics::counter!(c).absolute(0);
    }
    // Registered without a value of its own: the supervisor may have set it.
    metrics::gauge!(PUSH_DELIVERY_UP).increment(0.0);
    for kind in kinds {
        metrics::counter!(JOBS_CLAIMED, "kind" => kind.clone()).absolute(0);
        metrics::counter!(JOBS_UNHANDLED, "kind" => kind.clone()).absolute(0);
        metrics::counter!(JOBS_RELEASED, "kind" => kind.clone()).absolute(0);
        metrics::counter!(JOBS_FINISHED, "kind" => kind.clone(), "outcome" => "completed", "error_code" => "").absolute(0);
        for code in ErrorCode::ALL {
            for outcome in &OUTCOMES[1..] {
                metrics::counter!(JOBS_FINISHED, "kind" => kind.clone(), "outcome" => *outcome, "error_code" => code.as_str())
                    .absolute(0);
            }
            if code.is_retryable() {
                metrics::counter!(JOBS_RETRIED, "kind" => kind.clone(), "error_code" => code.as_str(), "deferred" => "false")
                    .absolute(0);
            }
        }
        metrics::counter!(JOBS_RETRIED, "kind" => kind.clone(), "error_code" => "AI_RATE_LIMIT", "deferred" => "true")
            .absolute(0);
    }
}

/// Buckets of job-level durations (seconds): attempts run from milliseconds
/// (offline) to the 600 s deadline (LLM).
const JOB_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets of queue waits: the pickup path is milliseconds; backlog minutes.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
];

/// Installs the global recorder and returns the handle that renders
/// `/metrics`. Safe to call more than once (tests): later calls build a
/// handle that is not installed.
pub fn install() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), JOB_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), WAIT_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(PICKUP_LATENCY.into()), WAIT_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(END_TO_END.into()), JOB_BUCKETS))
        .and_then(|b| {
            let ttft = crate::llm::metrics::TIME_TO_FIRST_TOKEN_SECONDS;
            b.set_buckets_for_metric(Matcher::Full(ttft.into()), JOB_BUCKETS)
        })
        .expect("static buckets are valid");
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_ok() {
        describe();
    }
    handle
}
