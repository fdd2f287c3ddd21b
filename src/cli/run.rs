//! `plan-worker run`: the always-on worker with its ops endpoint, until a
//! signal asks it to stop (a second signal exits at once).

use anyhow::Context;
use sqlx::PgPool;

use super::RunArgs;
use crate::api::health::{self, OpsState};
use crate::config::DbSettings;
use crate::queue::{Registry, Worker};

pub async fn pool(db: &DbSettings, size: u32) -> anyhow::Result<PgPool> {
    let options = crate::db::options(&db.database_url, "DATABASE_URL")?;
    crate::db::connect(options, size, "plan-worker")
        .await
        .context("could not connect to DATABASE_URL")
}

pub async fn run(db: &DbSettings, args: RunArgs) -> anyhow::Result<()> {
    args.worker.validate()?;
    let metrics = crate::telemetry::metrics::install();
    let pool = pool(db, db.database_pool_size).await?;
    if !args.no_migrate {
        crate::db::migrate(&pool)
            .await
            .context("migrations failed")?;
    }
    let listen = crate::db::options(db.listen_url(), "LISTEN_DATABASE_URL")?;
    let worker = Worker::new(pool.clone(), listen, registry(), args.worker.clone())?.spawn();

    let ops = health::router(OpsState {
        db: pool.clone(),
        metrics,
        listener: Some(worker.listener.clone()),
    });
    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .with_context(|| format!("METRICS_ADDR: cannot listen on {}", args.metrics_addr))?;
    tracing::info!(addr = %args.metrics_addr, "ops endpoint listening (/metrics, /healthz, /readyz)");
    let ops_task = tokio::spawn(async move { axum::serve(listener, ops).await });

    wait_for_signal().await;
    tracing::info!("shutting down; a second signal exits at once");
    worker.request_shutdown();
    tokio::select! {
        _ = worker.stopped() => {}
        _ = wait_for_signal() => anyhow::bail!("second signal: exiting without waiting for jobs"),
    }
    ops_task.abort();
    pool.close().await;
    Ok(())
}

/// The job handlers of this build.
pub fn registry() -> Registry {
    Registry::new().register("weekly_base_plan", |_ctx: crate::queue::JobContext| async {
        Err::<crate::queue::Done, _>(crate::queue::JobError::new(
            crate::error_code::ErrorCode::ConfigError,
            "the plan pipeline is not built into this binary yet",
        ))
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
