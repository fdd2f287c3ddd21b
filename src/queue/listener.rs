//! The LISTEN connection: wakes the dispatcher on `plan_jobs`, stops
//! cancelled jobs on `plan_job_events`, holds the worker's presence lock,
//! checks that its own NOTIFY comes back, and reconnects with capped,
//! jittered backoff (then asks for an immediate claim: notifications sent
//! while it was away are lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::events::{EVENTS_CHANNEL, JOBS_CHANNEL, parse_job_events};
use super::lease::{RunningJobs, StopReason};
use super::store::{self, JobStatus, WorkerInfo};
use crate::db::listen::{ListenError, ListenSession, Sessions};
use crate::telemetry::metrics as m;

const SELF_TEST_PREFIX: &str = "selftest:";

/// What the dispatcher hears from the listener besides plain wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerEvent {
    /// (Re)connected; `self_test_ok` false means notifications do not arrive
    /// and the dispatcher must poll fast.
    Connected {
        self_test_ok: bool,
        reconnect: bool,
    },
    Disconnected,
}

/// Listener state shown to health checks, metrics and tests.
#[derive(Debug)]
pub struct ListenerState {
    /// Watchable, so that callers can await the connection instead of polling.
    pub connected: watch::Sender<bool>,
    pub self_test_ok: AtomicBool,
    /// Backend pid of the LISTEN connection (0 when down).
    pub backend_pid: AtomicU32,
}

impl Default for ListenerState {
    fn default() -> Self {
        Self {
            connected: watch::Sender::new(false),
            self_test_ok: AtomicBool::new(false),
            backend_pid: AtomicU32::new(0),
        }
    }
}

impl ListenerState {
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }
}

pub struct Listener {
    pub options: PgConnectOptions,
    pub db: PgPool,
    pub worker: WorkerInfo,
    pub running: Arc<RunningJobs>,
    pub wake: Arc<Notify>,
    pub events: mpsc::UnboundedSender<ListenerEvent>,
    pub state: Arc<ListenerState>,
    pub self_test_timeout: Duration,
    /// Quiet this long, the connection proves it still delivers.
    pub check_every: Duration,
    pub stop: CancellationToken,
}

impl Listener {
    /// Runs until `stop` fires, reconnecting as needed.
    pub async fn run(self) {
        // The worker's id in the name lets operators (and tests) find this
        // connection in pg_stat_activity.
        let mut sessions = Sessions::new(
            self.options.clone(),
            format!("plan-worker listener {}", self.worker.id),
            &[JOBS_CHANNEL, EVENTS_CHANNEL],
            self.stop.clone(),
        );
        let mut reconnect = false;
        while let Some(mut session) = sessions.next().await {
            let result = tokio::select! {
                _ = self.stop.cancelled() => return,
                r = self.session(&mut session, reconnect) => r,
            };
            reconnect = true;
            self.state.connected.send_replace(false);
            metrics::gauge!(m::LISTENER_CONNECTED).set(0.0);
            let _ = self.events.send(ListenerEvent::Disconnected);
            self.state.backend_pid.store(0, Ordering::SeqCst);
            if let Err(err) = result {
                tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
            }
        }
    }

    /// One connection's life: register, self-test, relay.
    async fn session(
        &self,
        session: &mut ListenSession,
        reconnect: bool,
    ) -> Result<(), ListenError> {
        store::register_worker(session.connection(), &self.worker)
            .await
            .map_err(|e| match e {
                store::StoreError::Db(e) => ListenError::Db(e),
                other => ListenError::Db(sqlx::Error::Protocol(other.to_string())),
            })?;
        store::set_worker_routes(session.connection(), &self.worker.id, &self.worker.routes)
            .await
            .map_err(ListenError::Db)?;
        self.state
            .backend_pid
            .store(session.backend_pid() as u32, Ordering::SeqCst);
        if reconnect {
            metrics::counter!(m::LISTENER_RECONNECTS).increment(1);
        }
        let self_test_ok = self.self_test(session).await?;
        self.state
            .self_test_ok
            .store(self_test_ok, Ordering::SeqCst);
        self.state.connected.send_replace(true);
        metrics::gauge!(m::LISTENER_CONNECTED).set(1.0);
        metrics::gauge!(m::NOTIFY_SELF_TEST_OK).set(if self_test_ok { 1.0 } else { 0.0 });
        if !self_test_ok {
            tracing::error!(
                timeout_ms = self.self_test_timeout.as_millis() as u64,
                "NOTIFY self-test failed: this worker's own notification did not come back \
                 (a transaction pooler or proxy in between?). Falling back to fast polling; \
                 point LISTEN_DATABASE_URL at a direct connection."
            );
        }
        let _ = self.events.send(ListenerEvent::Connected {
            self_test_ok,
            reconnect,
        });
        self.relay(session, self_test_ok).await
    }

    /// Routes notifications. A connection can look open and deliver nothing
    /// (a half-open TCP connection: no read ever fails): after a quiet
    /// `check_every`, its own NOTIFY must come back, or it is replaced. A
    /// connection that failed the first self-test (a pooler) is not checked:
    /// the dispatcher already polls fast.
    async fn relay(&self, session: &mut ListenSession, checked: bool) -> Result<(), ListenError> {
        let mut next_check = tokio::time::Instant::now() + self.check_every;
        loop {
            if !checked {
                let n = session.recv().await?;
                self.route(n.channel(), n.payload());
                continue;
            }
            match tokio::time::timeout_at(next_check, session.recv()).await {
                Ok(n) => {
                    let n = n?;
                    self.route(n.channel(), n.payload());
                }
                Err(_) => {
                    if !self.self_test(session).await? {
                        metrics::gauge!(m::NOTIFY_SELF_TEST_OK).set(0.0);
                        return Err(ListenError::Deaf(self.self_test_timeout));
                    }
                }
            }
            // Anything received proves the connection delivers.
            next_check = tokio::time::Instant::now() + self.check_every;
        }
    }

    /// Sends a NOTIFY through the query pool (the path real inserts take) and
    /// waits for it on this connection.
    async fn self_test(&self, session: &mut ListenSession) -> Result<bool, ListenError> {
        let nonce = format!("{SELF_TEST_PREFIX}{}", Uuid::new_v4());
        crate::db::store::notify(&self.db, JOBS_CHANNEL, &nonce).await?;
        let deadline = tokio::time::Instant::now() + self.self_test_timeout;
        loop {
            match tokio::time::timeout_at(deadline, session.recv()).await {
                Err(_) => return Ok(false),
                Ok(Ok(n)) if n.payload() == nonce => return Ok(true),
                Ok(Ok(n)) => self.route(n.channel(), n.payload()),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    fn route(&self, channel: &str, payload: &str) {
        match channel {
            JOBS_CHANNEL if payload.starts_with(SELF_TEST_PREFIX) => {}
            JOBS_CHANNEL if self.worker.kinds.iter().any(|k| k == payload) => {
                self.wake.notify_one()
            }
            EVENTS_CHANNEL => self.on_job_event(payload),
            _ => {}
        }
    }

    /// Stops jobs of ours that were cancelled. Events come as JSON arrays;
    /// most carry no cancellation, so a substring test comes before parsing.
    fn on_job_event(&self, payload: &str) {
        if !payload.contains("\"cancelled\"") {
            return;
        }
        for ev in parse_job_events(payload) {
            if ev.status == JobStatus::Cancelled && self.running.stop(ev.id, StopReason::Cancelled)
            {
                tracing::info!(job_id = %ev.id, "job cancelled; stopping it");
            }
        }
    }
}
