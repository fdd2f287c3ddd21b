//! `plan-worker run`: the always-on worker with its ops endpoint, the API
//! when API_ADDR is set, and push delivery, until a signal asks it to stop
//! (a second signal exits at once). Every part runs under a child of one
//! root cancellation token; shutdown stops them in order: the API (no new
//! requests, streams say goodbye), the worker (drains its jobs), push
//! delivery, the ops endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::RunArgs;
use crate::api::ApiState;
use crate::config::DbSettings;
use crate::http_server::ConnectionLimits;
use crate::notify::delivery::Delivery;
use crate::notify::expo::ExpoClient;
use crate::notify::supervisor::{self, Backoff, LoopState};
use crate::ops::{self, OpsState};
use crate::queue::{Worker, WorkerHandle};

/// How long the API may take to end its streams and requests at shutdown.
const API_DRAIN: Duration = Duration::from_secs(10);

/// A started part: its stop switch and its task.
struct Part {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

pub async fn run(db: &DbSettings, args: RunArgs) -> anyhow::Result<()> {
    let api_addr = args.api.api_addr.clone().filter(|a| !a.trim().is_empty());
    validate(&args, api_addr.is_some())?;
    let metrics = crate::telemetry::metrics::install();
    let pool = crate::db::pool(db, db.database_pool_size).await?;
    if !args.ops.no_migrate {
        crate::db::migrate(&pool)
            .await
            .context("migrations failed")?;
    }
    let listen = crate::db::options(db.listen_url(), "LISTEN_DATABASE_URL")?;
    let root = CancellationToken::new();

    let worker = start_worker(&pool, &listen, &args, &root)?;
    // Push delivery belongs to the worker: an API-only process sends none.
    let push = match &worker {
        Some(_) => Some(start_push(&pool, &args, &root)?),
        None => None,
    };
    let ops = start_ops(&pool, metrics, worker.as_ref(), push.as_ref(), &args, &root).await?;
    // Beside a worker the API gets a pool of its own: requests must never
    // wait behind, or starve, the worker's claims and heartbeats.
    let api_pool = match (&api_addr, &worker) {
        (Some(_), Some(_)) => {
            let size = args.api.api_database_pool_size.max(1);
            Some(crate::db::named_pool(db, size, "plan-worker api").await?)
        }
        _ => None,
    };
    let api = match &api_addr {
        Some(addr) => {
            let p = api_pool.as_ref().unwrap_or(&pool);
            Some(start_api(p, &listen, addr, &args, &root).await?)
        }
        None => None,
    };
    wait_for_signal().await;
    tracing::info!("shutting down; a second signal exits at once");
    tokio::select! {
        _ = shutdown(api, worker, push, ops) => {}
        _ = wait_for_signal() => {
            root.cancel();
            anyhow::bail!("second signal: exiting without waiting for jobs");
        }
    }
    if let Some(p) = api_pool {
        p.close().await;
    }
    pool.close().await;
    Ok(())
}

/// Refuses a combination of settings that could not run, naming the setting.
fn validate(args: &RunArgs, api: bool) -> anyhow::Result<()> {
    if args.ops.no_worker && !api {
        anyhow::bail!("NO_WORKER is set but API_ADDR is not: there would be nothing to run");
    }
    if !args.ops.no_worker {
        args.worker.validate()?;
    }
    if api {
        args.api.validate()?;
    }
    // The windows are read by the API, the worker and the LLM client: one
    // error at start naming the setting, before any of them runs.
    args.llm.economy.economy()?;
    Ok(())
}

fn start_worker(
    pool: &PgPool,
    listen: &PgConnectOptions,
    args: &RunArgs,
    root: &CancellationToken,
) -> anyhow::Result<Option<WorkerHandle>> {
    if args.ops.no_worker {
        crate::telemetry::metrics::register_zeros(&[]);
        tracing::info!("NO_WORKER: serving the API only; jobs are run by other workers");
        return Ok(None);
    }
    let registry = crate::jobs::registry(&args.llm, &args.images)?;
    let worker = Worker::new(pool.clone(), listen.clone(), registry, args.worker.clone())?
        .with_economy(args.llm.economy.economy()?);
    Ok(Some(worker.spawn_under(root)))
}

async fn start_ops(
    pool: &PgPool,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    worker: Option<&WorkerHandle>,
    push: Option<&Push>,
    args: &RunArgs,
    root: &CancellationToken,
) -> anyhow::Result<Part> {
    let addr = &args.ops.metrics_addr;
    let operators = args
        .api
        .console_operators()
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
    if operators.is_empty() {
        tracing::info!("no ADMIN_TOKEN or ADMIN_TOKENS: the console at /ops/ is off");
    }
    let economy = &args.llm.economy;
    let console = args
        .ops
        .console(operators, args.llm.prices())
        .with_offpeak(economy.windows()?, economy.llm_offpeak_price_factor);
    let router = ops::router(OpsState {
        db: pool.clone(),
        metrics,
        listener: worker.map(|w| w.listener.clone()),
        push: push.map(|p| p.state.clone()),
        console: Arc::new(console),
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("METRICS_ADDR: cannot listen on {addr}"))?;
    tracing::info!(%addr, "ops endpoint listening (/metrics, /healthz, /readyz, /ops/)");
    let stop = root.child_token();
    // A cap of its own: a flood of the API must not silence the probes.
    let limits = ConnectionLimits::ops(args.ops.ops_max_connections as usize);
    let serve = crate::http_server::serve(listener, router, limits, stop.clone());
    let task = tokio::spawn(async move {
        if let Err(err) = serve.await {
            tracing::error!(error = %err, "ops endpoint failed");
        }
    });
    Ok(Part { stop, task })
}

async fn start_api(
    pool: &PgPool,
    listen: &PgConnectOptions,
    addr: &str,
    args: &RunArgs,
    root: &CancellationToken,
) -> anyhow::Result<Part> {
    let stop = root.child_token();
    let mut state = ApiState::new(pool.clone(), listen.clone(), &args.api, stop.clone())?;
    state.economy = Arc::new(args.llm.economy.economy()?);
    state.images = args
        .images
        .client()
        .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?
        .map(|client| crate::api::ImageSource {
            client,
            per_hour: args.images.unsplash_requests_per_hour,
        });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("API_ADDR: cannot listen on {addr}"))?;
    tracing::info!(%addr, "API listening (/v1, OpenAPI at /v1/openapi.json)");
    let timeout = Duration::from_secs_f64(args.api.api_request_timeout_seconds);
    let task = tokio::spawn(async move {
        if let Err(err) = crate::api::serve(listener, state, timeout).await {
            tracing::error!(error = %err, "API failed");
        }
    });
    Ok(Part { stop, task })
}

/// The push delivery loop under its supervisor, and the state it shows.
struct Push {
    part: Part,
    state: Arc<LoopState>,
}

fn start_push(pool: &PgPool, args: &RunArgs, root: &CancellationToken) -> anyhow::Result<Push> {
    let expo = match args.push.expo_url() {
        Some(url) => Some(ExpoClient::new(
            url.to_owned(),
            args.push
                .expo_access_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
        )?),
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
    let stop = root.child_token();
    let state = Arc::new(LoopState::default());
    let interval = args.push.poll_interval();
    let run_stop = stop.clone();
    let start = move || delivery.clone().run(interval, run_stop.clone());
    let task = tokio::spawn(supervisor::supervise(
        start,
        state.clone(),
        Backoff::DEFAULT,
        stop.clone(),
    ));
    Ok(Push {
        part: Part { stop, task },
        state,
    })
}

/// Stops the parts in order; each waits for the one before it.
async fn shutdown(api: Option<Part>, worker: Option<WorkerHandle>, push: Option<Push>, ops: Part) {
    if let Some(api) = &api {
        api.stop.cancel();
    }
    if let Some(worker) = &worker {
        worker.request_shutdown();
    }
    if let Some(worker) = worker {
        worker.stopped().await;
    }
    if let Some(api) = api {
        let _ = tokio::time::timeout(API_DRAIN, api.task).await;
    }
    if let Some(Push { part, .. }) = push {
        part.stop.cancel();
        let _ = part.task.await;
    }
    ops.stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), ops.task).await;
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
