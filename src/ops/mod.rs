//! `/healthz` (the process answers), `/readyz` (the database answers, the
//! listener is connected or polling covers for it, migrations are current)
//! and `/metrics`, on the internal METRICS_ADDR.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;

use crate::queue::listener::ListenerState;

#[derive(Clone)]
pub struct OpsState {
    pub db: PgPool,
    pub metrics: PrometheusHandle,
    /// None when this process runs no worker (API only).
    pub listener: Option<Arc<ListenerState>>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn render_metrics(State(s): State<OpsState>) -> impl IntoResponse {
    s.metrics.run_upkeep();
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<OpsState>) -> impl IntoResponse {
    let db =
        tokio::time::timeout(Duration::from_secs(2), crate::db::migrations_current(&s.db)).await;
    let (db_ok, migrations_ok, db_detail) = match db {
        Ok(Ok(current)) => (true, current, None),
        Ok(Err(e)) => (false, false, Some(e.to_string())),
        Err(_) => (false, false, Some("timed out after 2 s".to_owned())),
    };
    let listener = s.listener.as_ref().map(|l| {
        json!({
            "connected": l.is_connected(),
            "notify_self_test_ok": l.self_test_ok.load(Ordering::SeqCst),
            // Without working notifications the worker polls fast: degraded, still ready.
            "mode": if l.self_test_ok.load(Ordering::SeqCst) { "notify" } else { "polling" },
        })
    });
    let ready = db_ok && migrations_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": {"ok": db_ok, "detail": db_detail},
            "migrations": {"ok": migrations_ok},
            "listener": listener,
        }
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
