//! A worker: the listener, the heartbeat, the completer and the dispatcher
//! under one root cancellation token, and the graceful shutdown that stops
//! claiming, lets jobs finish, gives back the rest and deregisters.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::completer::Completer;
use super::dispatcher::Dispatcher;
use super::job::Registry;
use super::lease::{self, RunningJobs};
use super::listener::{Listener, ListenerState};
use super::runner::AttemptEnv;
use super::store::{self, RetryPolicy, WorkerInfo};
use crate::config::{SettingError, WorkerSettings};
use crate::offpeak::Economy;

pub struct Worker {
    db: PgPool,
    listen_options: PgConnectOptions,
    registry: Registry,
    settings: WorkerSettings,
    economy: Arc<Economy>,
}

/// A running worker.
pub struct WorkerHandle {
    pub id: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
    pub listener: Arc<ListenerState>,
    pub running: Arc<RunningJobs>,
}

impl Worker {
    pub fn new(
        db: PgPool,
        listen_options: PgConnectOptions,
        registry: Registry,
        settings: WorkerSettings,
    ) -> Result<Self, SettingError> {
        settings.validate()?;
        if registry.kinds().is_empty() {
            return Err(SettingError {
                field: "kinds",
                message: "no job handler registered".into(),
            });
        }
        Ok(Self {
            db,
            listen_options,
            registry,
            settings,
            economy: Arc::default(),
        })
    }

    /// Places economy jobs on these windows: schedules' jobs when they are
    /// made, claimed ones found in a peak (default: no windows known).
    pub fn with_economy(mut self, economy: Economy) -> Self {
        self.economy = Arc::new(economy);
        self
    }

    /// Starts the worker on the current runtime.
    pub fn spawn(self) -> WorkerHandle {
        self.spawn_under(&CancellationToken::new())
    }

    /// Starts the worker under `parent`: cancelling it shuts the worker
    /// down gracefully, like [`WorkerHandle::request_shutdown`].
    pub fn spawn_under(self, parent: &CancellationToken) -> WorkerHandle {
        let id = self.settings.worker_id();
        let stop = parent.child_token();
        let listener = Arc::new(ListenerState::default());
        let running = Arc::new(RunningJobs::default());
        let task =
            tokio::spawn(self.run(id.clone(), stop.clone(), listener.clone(), running.clone()));
        WorkerHandle {
            id,
            stop,
            task,
            listener,
            running,
        }
    }

    async fn run(
        self,
        id: String,
        stop: CancellationToken,
        state: Arc<ListenerState>,
        running: Arc<RunningJobs>,
    ) {
        let s = &self.settings;
        tracing::info!(worker_id = %id, kinds = ?self.registry.kinds(), slots = s.max_concurrent_jobs, "worker starting");
        crate::telemetry::metrics::register_zeros(&self.registry.kinds());
        let (completer, completer_task) = Completer::spawn(self.db.clone(), s.lease());
        let completer_task = AbortOnDropHandle::new(completer_task);
        let env = Arc::new(self.attempt_env(&id, running.clone(), completer));
        let wake = Arc::new(Notify::new());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        // Background parts stop after the dispatcher has drained its jobs:
        // heartbeats and the cancel watch must go on while jobs finish.
        let background = CancellationToken::new();
        let listener = Listener {
            options: self.listen_options.clone(),
            db: self.db.clone(),
            worker: self.info(&id),
            running: running.clone(),
            wake: wake.clone(),
            events: events_tx,
            state,
            self_test_timeout: s.self_test_timeout(),
            check_every: Duration::from_secs_f64(s.notify_check_seconds),
            stop: background.clone(),
        };
        let listener_task = AbortOnDropHandle::new(tokio::spawn(listener.run()));
        let heartbeat_task = AbortOnDropHandle::new(tokio::spawn(lease::heartbeat_loop(
            self.db.clone(),
            running,
            id.clone(),
            s.lease(),
            s.heartbeat_interval(),
            background.clone(),
        )));
        let upkeep_task = AbortOnDropHandle::new(tokio::spawn(super::upkeep::run(
            self.db.clone(),
            s.job_retention(),
            self.economy.clone(),
            stop.clone(),
        )));
        let mut dispatcher = Dispatcher::new(
            id.clone(),
            s.clone(),
            self.registry.clone(),
            env,
            wake,
            events_rx,
        )
        .with_economy(self.economy.clone());
        dispatcher.run(&stop).await;
        // A retention pass in flight is one statement: rolled back, done by
        // the next worker's pass.
        drop(upkeep_task);

        tracing::info!(worker_id = %id, running = dispatcher.tasks.len(), "worker stopping: no more claims");
        dispatcher.drain(s.shutdown_grace()).await;
        drop(dispatcher);
        background.cancel();
        let _ = heartbeat_task.await;
        let _ = listener_task.await;
        if let Err(err) = store::deregister_worker(&self.db, &id).await {
            tracing::warn!(error = %err, "could not deregister; the reaper will remove the row");
        }
        drop(completer_task);
        tracing::info!(worker_id = %id, "worker stopped");
    }

    /// What every attempt of this worker shares.
    fn attempt_env(&self, id: &str, running: Arc<RunningJobs>, completer: Completer) -> AttemptEnv {
        let s = &self.settings;
        AttemptEnv {
            worker_id: id.to_owned(),
            db: self.db.clone(),
            routes: Arc::new(self.registry.routes().clone()),
            running,
            completer,
            timeout: s.job_timeout(),
            db_retry_window: s.lease(),
            policy: RetryPolicy {
                base: Duration::from_secs_f64(s.retry_base_seconds),
                max: Duration::from_secs_f64(s.retry_max_seconds),
                max_rate_limit_deferrals: s.max_rate_limit_deferrals,
                max_retry_after: Duration::from_secs_f64(s.retry_after_max_seconds),
            },
            // Two connections stay free of job statements, for the claims,
            // heartbeats and completions that keep leases alive.
            db_gate: Arc::new(tokio::sync::Semaphore::new(
                (self.db.options().get_max_connections() as usize)
                    .saturating_sub(2)
                    .max(1),
            )),
        }
    }

    fn info(&self, id: &str) -> WorkerInfo {
        WorkerInfo {
            id: id.to_owned(),
            host: hostname(),
            pid: std::process::id() as i32,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kinds: self.registry.kinds(),
            concurrency: self.settings.max_concurrent_jobs as i32,
            heartbeat: self.settings.heartbeat_interval(),
            routes: self.registry.routes_json(),
        }
    }
}

impl WorkerHandle {
    /// Graceful shutdown; waits until the worker has stopped. Safe to call
    /// on a worker that already stopped.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn request_shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits for the worker to stop (after a shutdown request or a signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }

    /// Stops everything at once with no cleanup, as a killed process would
    /// (for tests and benchmarks of crash recovery).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits until the listener is connected; false on timeout.
    pub async fn wait_listening(&self, timeout: Duration) -> bool {
        let mut rx = self.listener.connected.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|up| *up)).await,
            Ok(Ok(_))
        )
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_default()
}
