//! `plan-worker run`: the always-on worker with its ops endpoint, until a
//! signal asks it to stop (a second signal exits at once).

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

use super::RunArgs;
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::api::health::{self, OpsState};
use crate::config::{DbSettings, LlmSettings};
use crate::llm::LlmClient;
use crate::notify::delivery::Delivery;
use crate::notify::expo::ExpoClient;
use crate::plan::handler::PlanHandler;
use crate::queue::{Registry, Worker};

pub async fn pool(db: &DbSettings, size: u32) -> anyhow::Result<PgPool> {
    let options = crate::db::options(&db.database_url, "DATABASE_URL")?;
    crate::db::connect(options, size, "plan-worker")
        .await
        .context("could not connect to DATABASE_URL")
}

pub async fn run(db: &DbSettings, args: RunArgs) -> anyhow::Result<()> {
    let api_addr = args.api.api_addr.clone().filter(|a| !a.trim().is_empty());
    if args.no_worker && api_addr.is_none() {
        anyhow::bail!("NO_WORKER is set but API_ADDR is not: there would be nothing to run");
    }
    if !args.no_worker {
        args.worker.validate()?;
    }
    if api_addr.is_some() {
        args.api.validate()?;
    }
    let metrics = crate::telemetry::metrics::install();
    let pool = pool(db, db.database_pool_size).await?;
    if !args.no_migrate {
        crate::db::migrate(&pool)
            .await
            .context("migrations failed")?;
    }
    let listen = crate::db::options(db.listen_url(), "LISTEN_DATABASE_URL")?;
    let worker = if args.no_worker {
        crate::telemetry::metrics::register_zeros(&[]);
        tracing::info!("NO_WORKER: serving the API only; jobs are run by other workers");
        None
    } else {
        Some(
            Worker::new(
                pool.clone(),
                listen.clone(),
                registry(&args.llm)?,
                args.worker.clone(),
            )?
            .spawn(),
        )
    };

    let ops = health::router(OpsState {
        db: pool.clone(),
        metrics,
        listener: worker.as_ref().map(|w| w.listener.clone()),
    });
    let listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .with_context(|| format!("METRICS_ADDR: cannot listen on {}", args.metrics_addr))?;
    tracing::info!(addr = %args.metrics_addr, "ops endpoint listening (/metrics, /healthz, /readyz)");
    let ops_task = tokio::spawn(async move { axum::serve(listener, ops).await });

    let api_stop = CancellationToken::new();
    let api_task = match &api_addr {
        Some(addr) => {
            let state = ApiState::new(pool.clone(), listen.clone(), &args.api, api_stop.clone())?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("API_ADDR: cannot listen on {addr}"))?;
            tracing::info!(%addr, "API listening (/v1, OpenAPI at /v1/openapi.json)");
            let timeout = Duration::from_secs_f64(args.api.api_request_timeout_seconds);
            Some(tokio::spawn(crate::api::serve(listener, state, timeout)))
        }
        None => None,
    };

    // Push delivery belongs to the worker: an API-only process sends none.
    let push_stop = CancellationToken::new();
    let push_task = match &worker {
        Some(_) => {
            let expo = match args.expo_push_url.clone().filter(|u| !u.trim().is_empty()) {
                Some(url) => Some(ExpoClient::new(url, args.expo_access_token.clone())?),
                None => {
                    tracing::info!(
                        "EXPO_PUSH_URL is not set: push notifications are kept in the outbox as skipped"
                    );
                    None
                }
            };
            let delivery = Delivery {
                db: pool.clone(),
                expo,
                lease: Duration::from_secs(60),
            };
            let interval = Duration::from_secs_f64(args.push_poll_seconds.max(0.1));
            Some(tokio::spawn(delivery.run(interval, push_stop.clone())))
        }
        None => None,
    };

    wait_for_signal().await;
    tracing::info!("shutting down; a second signal exits at once");
    // The API stops taking requests and ends its event streams first.
    api_stop.cancel();
    if let Some(worker) = &worker {
        worker.request_shutdown();
    }
    let drained = async {
        if let Some(worker) = worker {
            worker.stopped().await;
        }
        if let Some(api) = api_task {
            let _ = tokio::time::timeout(Duration::from_secs(10), api).await;
        }
    };
    tokio::select! {
        _ = drained => {}
        _ = wait_for_signal() => anyhow::bail!("second signal: exiting without waiting for jobs"),
    }
    push_stop.cancel();
    if let Some(push) = push_task {
        let _ = push.await;
    }
    ops_task.abort();
    pool.close().await;
    Ok(())
}

/// The job handlers of this build: weekly plans through the LLM when a key
/// is set, else through the offline generator.
pub fn registry(llm: &LlmSettings) -> anyhow::Result<Registry> {
    let client = match llm.client_config() {
        Some(cfg) => {
            let client = LlmClient::new(cfg)
                .map_err(|e| anyhow::anyhow!("LLM_API_KEY/LLM_BASE_URL: {e}"))?;
            tracing::info!(
                provider = client.provider(),
                model = client.model(),
                "plans are generated by the LLM"
            );
            Some(client)
        }
        None => {
            tracing::info!(
                "LLM_API_KEY is not set: plans are generated by the built-in offline generator"
            );
            None
        }
    };
    let handler = PlanHandler::new(client, llm.fallback_to_offline);
    Ok(Registry::new().register(crate::plan::handler::KIND, handler))
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
