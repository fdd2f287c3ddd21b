//! `/healthz` (the process answers), `/readyz` (the database answers, the
//! listener is connected or polling covers for it, migrations are current,
//! the push delivery loop runs), `/metrics`, and the operators' console at
//! `/ops/` (see [`console`]), on the internal METRICS_ADDR.

pub mod console;

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

use crate::notify::supervisor::LoopState;
use crate::queue::listener::ListenerState;

#[derive(Clone)]
pub struct OpsState {
    pub db: PgPool,
    pub metrics: PrometheusHandle,
    /// None when this process runs no worker (API only).
    pub listener: Option<Arc<ListenerState>>,
    /// None when this process sends no pushes (API only).
    pub push: Option<Arc<LoopState>>,
    /// The console's sessions and settings ([`console::Console::disabled`]
    /// when no operator token is configured).
    pub console: Arc<console::Console>,
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .merge(console::router())
        .with_state(state)
}

async fn render_metrics(State(s): State<OpsState>) -> impl IntoResponse {
    crate::telemetry::metrics::collect_process();
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
        Ok(Err(e)) => {
            // The raw error (it may name hosts, users, databases) goes to
            // the log; the probe answer carries a stable code only.
            tracing::warn!(error = %e, "readiness: database check failed");
            (false, false, Some(db_failure_code(&e)))
        }
        Err(_) => (false, false, Some("timeout")),
    };
    let listener = s.listener.as_ref().map(|l| {
        json!({
            "connected": l.is_connected(),
            "notify_self_test_ok": l.self_test_ok.load(Ordering::SeqCst),
            // Without working notifications the worker polls fast: degraded, still ready.
            "mode": if l.self_test_ok.load(Ordering::SeqCst) { "notify" } else { "polling" },
        })
    });
    // Unlike the listener, nothing covers for a dead push loop: not ready.
    let push_ok = s.push.as_ref().is_none_or(|p| p.is_up());
    let push = s
        .push
        .as_ref()
        .map(|p| json!({"ok": p.is_up(), "restarts": p.restarts()}));
    let ready = db_ok && migrations_ok && push_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": {"ok": db_ok, "detail": db_detail},
            "migrations": {"ok": migrations_ok},
            "listener": listener,
            "push_delivery": push,
        }
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// What `/readyz` says of a failed database check.
fn db_failure_code(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "unreachable",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(c) if c.starts_with("28") => "auth_failed",
            Some("3D000") => "no_such_database",
            Some(c) if c.starts_with("57P") || c.starts_with("08") => "unavailable",
            _ => "database_error",
        },
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readyz_of(db: PgPool, push: Option<Arc<LoopState>>) -> (u16, serde_json::Value) {
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let app = router(OpsState {
            db,
            metrics,
            listener: None,
            push,
            console: console::Console::disabled(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let answer = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap())
    }

    #[sqlx::test]
    async fn readiness_fails_while_the_push_loop_is_down_and_says_so(db: PgPool) {
        let push = Arc::new(LoopState::default());
        let (code, body) = readyz_of(db.clone(), Some(push.clone())).await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["checks"]["push_delivery"]["ok"], false);
        assert_eq!(body["checks"]["database"]["ok"], true);

        push.up.send_replace(true);
        let (code, body) = readyz_of(db.clone(), Some(push)).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["checks"]["push_delivery"]["ok"], true);

        let (code, body) = readyz_of(db, None).await;
        assert_eq!(code, 200, "no push loop in an API-only process");
        assert!(body["checks"]["push_delivery"].is_null());
    }

    #[tokio::test]
    async fn a_failed_database_check_says_a_stable_code_never_the_raw_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Nothing listens there (the listener above is dropped).
        let db = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy(&format!(
                "postgres://secret_user:hunter2@127.0.0.1:{port}/secret_db"
            ))
            .unwrap();
        let (code, body) = readyz_of(db, None).await;
        assert_eq!(code, 503, "{body}");
        let detail = body["checks"]["database"]["detail"].as_str().unwrap();
        assert!(
            ["unreachable", "pool_timeout", "timeout"].contains(&detail),
            "{detail}"
        );
        let text = body.to_string();
        for secret in ["secret_user", "hunter2", "secret_db", "refused"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
