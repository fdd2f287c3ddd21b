//! The `/v1` HTTP API for apps on API_ADDR: jobs (create, possibly for
//! later, status with an estimate, cancel, retry), periodic schedules,
//! plans, targets, live job events (SSE), with
//! Supabase JWT auth and per-user limits. `store` holds its own SQL
//! (idempotency keys, limits); jobs and plans are read through their stores.

pub mod admission;
pub mod auth;
pub mod cors;
pub mod error;
pub mod estimate;
pub mod events;
pub mod extract;
pub mod jobs;
mod jwks;
pub mod limits;
pub mod meal_plans;
pub mod plans;
pub mod schedules;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use self::auth::Auth;
use self::cors::Cors;
use self::error::ApiError;
use self::events::EventHub;
use self::limits::Limits;
use crate::config::ApiSettings;
use crate::http_server::ConnectionLimits;

/// Largest request body accepted (profiles are a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The OpenAPI document of `/v1`, kept in the repository and served as is.
pub const OPENAPI: &str = include_str!("../../openapi/plan-worker.v1.json");

/// What every API handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub db: PgPool,
    pub auth: Arc<Auth>,
    pub events: Arc<EventHub>,
    pub limits: Limits,
    /// Per-user bursts and the pending-queue cap, before database work.
    pub admission: Arc<admission::Admission>,
    /// What estimates are computed from.
    pub estimate: estimate::EstimateSettings,
    pub keepalive: Duration,
    /// Fired at shutdown: event streams say goodbye and end.
    pub shutdown: CancellationToken,
    /// The image source, for download tracking; None without a key.
    pub images: Option<ImageSource>,
    /// What the listener allows each client.
    pub connections: ConnectionLimits,
    /// None: no CORS_ALLOWED_ORIGINS, no CORS headers.
    pub cors: Option<Arc<Cors>>,
    /// Where economy jobs are placed (default: no windows known, so they
    /// run at once).
    pub economy: Arc<crate::offpeak::Economy>,
}

/// Unsplash and its hourly request budget (shared with the workers).
#[derive(Clone)]
pub struct ImageSource {
    pub client: crate::images::unsplash::Unsplash,
    pub per_hour: u32,
}

impl ApiState {
    /// The state for `settings`, with the process's one event listener
    /// (started here) on `listen`.
    pub fn new(
        db: PgPool,
        listen: sqlx::postgres::PgConnectOptions,
        settings: &ApiSettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("plan-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiState {
            auth: Arc::new(Auth::new(settings, http)),
            events: EventHub::start(listen, shutdown.clone()),
            limits: Limits {
                create: settings.create_rate_limit,
                cooldown: settings.regeneration_cooldown.0,
            },
            admission: admission::Admission::new(settings.create_burst, settings.max_pending_jobs),
            estimate: estimate::EstimateSettings {
                sample: settings.estimate_sample_jobs as i32,
                window_days: settings.estimate_window_days,
                min_jobs: settings.estimate_min_jobs as usize,
                default_seconds: settings.estimate_default_seconds,
            },
            keepalive: Duration::from_secs_f64(settings.sse_keepalive_seconds),
            db,
            shutdown,
            images: None,
            connections: settings.connection_limits(),
            cors: settings.cors_allowed_origins.as_ref().and_then(Cors::new),
            economy: Arc::default(),
        })
    }
}

/// The `/v1` router.
pub fn router(state: ApiState, request_timeout: Duration) -> Router {
    let cors = state.cors.clone();
    let router = Router::new()
        .route("/v1/plan-jobs", post(jobs::create).get(jobs::history))
        .route("/v1/plan-jobs/active", get(jobs::active))
        .route("/v1/plan-jobs/{id}", get(jobs::get))
        .route("/v1/plan-jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/plan-jobs/{id}/retry", post(jobs::retry))
        .route("/v1/plan-jobs/{id}/events", get(events::stream))
        .route("/v1/schedules", get(schedules::list_own))
        .route(
            "/v1/schedules/{kind}",
            put(schedules::put)
                .get(schedules::get)
                .delete(schedules::delete),
        )
        .route("/v1/plans", get(plans::list))
        .route("/v1/plans/active", get(plans::active))
        .route("/v1/plans/{id}", get(plans::get))
        .route("/v1/plans/{id}/activate", post(plans::activate))
        .route("/v1/meal-plans", get(meal_plans::list))
        .route("/v1/meal-plans/active", get(meal_plans::active))
        .route("/v1/meal-plans/{id}", get(meal_plans::get))
        .route("/v1/meal-plans/{id}/activate", post(meal_plans::activate))
        .route(
            "/v1/meal-plans/{id}/grocery-list",
            get(meal_plans::grocery_list),
        )
        .route(
            "/v1/meal-plans/{id}/days/{day}/meals/{index}/swap",
            post(meal_plans::swap),
        )
        .route(
            "/v1/meal-plans/{id}/images/{photo_id}/used",
            post(meal_plans::photo_used),
        )
        .route(
            "/v1/targets",
            get(plans::active_targets).post(plans::targets),
        )
        .route(
            "/v1/openapi.json",
            get(|| async { ([("content-type", "application/json")], OPENAPI) }),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(request_timeout, deadline));
    let router = match cors {
        Some(cors) => router.layer(middleware::from_fn_with_state(cors, cors::gate)),
        None => router,
    };
    router
        // Answers carry users' plans and profiles: no cache may keep them,
        // and no browser may read them as anything but their content type.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// Every request gets a span (continuing the caller's `traceparent`, so a
/// job created here carries the app's trace to the worker), a deadline, and
/// a count by route template.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        http.request.method = %req.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    crate::telemetry::logging::link_to_traceparent(&span, parent);
    let res = match tokio::time::timeout(limit, next.run(req).instrument(span.clone())).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "the request took too long; please try again",
        )
        .into_response(),
    };
    span.record("http.response.status_code", res.status().as_u16());
    crate::telemetry::metrics::api_response(&route, res.status().as_u16());
    res
}

/// Serves the API on `listener` within `state.connections` until
/// `state.shutdown` fires; open event streams end with a `shutdown` event
/// first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    request_timeout: Duration,
) -> std::io::Result<()> {
    let stop = state.shutdown.clone();
    let limits = state.connections;
    crate::http_server::serve(listener, router(state, request_timeout), limits, stop).await
}
