//! The LISTEN connection: wakes the dispatcher on `plan_jobs`, stops
//! cancelled jobs on `plan_job_events`, holds the worker's presence lock,
//! checks that its own NOTIFY comes back, and reconnects with capped,
//! jittered backoff (then asks for an immediate claim: notifications sent
//! while it was away are lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rand::RngExt;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgPool};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::lease::{RunningJobs, StopReason};
use super::store::{self, WorkerInfo};
use crate::telemetry::metrics as m;

pub const JOBS_CHANNEL: &str = "plan_jobs";
pub const EVENTS_CHANNEL: &str = "plan_job_events";
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
    pub stop: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("listener connection: {0}")]
    Db(#[from] sqlx::Error),
    #[error("listener connection closed")]
    Closed,
}

impl Listener {
    /// Runs until `stop` fires, reconnecting as needed.
    pub async fn run(self) {
        let mut failures = 0u32;
        let mut connected_before = false;
        while !self.stop.is_cancelled() {
            let result = tokio::select! {
                _ = self.stop.cancelled() => return,
                r = self.session(connected_before) => r,
            };
            if self.state.connected.send_replace(false) {
                connected_before = true;
                failures = 0;
            }
            metrics::gauge!(m::LISTENER_CONNECTED).set(0.0);
            let _ = self.events.send(ListenerEvent::Disconnected);
            self.state.backend_pid.store(0, Ordering::SeqCst);
            if let Err(err) = result {
                tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
            }
            failures = failures.saturating_add(1);
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(reconnect_delay(failures)) => {}
            }
        }
    }

    /// One connection's life: connect, register, listen, self-test, relay.
    async fn session(&self, reconnect: bool) -> Result<(), ListenError> {
        // A pool of one per session: dropping it closes the connection, and
        // PgListener's own silent reconnects are never used.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(self.options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.ignore_pool_close_event(true);
        listener.eager_reconnect(false);
        self.prepare(&mut listener).await?;
        if reconnect {
            metrics::counter!(m::LISTENER_RECONNECTS).increment(1);
        }
        let self_test_ok = self.self_test(&mut listener).await?;
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
        loop {
            match listener.try_recv().await? {
                Some(n) => self.route(n.channel(), n.payload()),
                None => return Err(ListenError::Closed),
            }
        }
    }

    /// Keepalives, presence lock and LISTENs on a fresh connection.
    async fn prepare(&self, listener: &mut PgListener) -> Result<(), ListenError> {
        // A host that vanishes without closing its socket frees the presence
        // lock after about idle + interval * count seconds.
        listener
            .execute("set tcp_keepalives_idle = 5; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3")
            .await?;
        let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
            .fetch_one(&mut *listener)
            .await?;
        store::register_worker(&mut *listener, &self.worker)
            .await
            .map_err(|e| match e {
                store::StoreError::Db(e) => ListenError::Db(e),
                other => ListenError::Db(sqlx::Error::Protocol(other.to_string())),
            })?;
        listener.listen_all([JOBS_CHANNEL, EVENTS_CHANNEL]).await?;
        self.state.backend_pid.store(pid as u32, Ordering::SeqCst);
        Ok(())
    }

    /// Sends a NOTIFY through the query pool (the path real inserts take) and
    /// waits for it on this connection.
    async fn self_test(&self, listener: &mut PgListener) -> Result<bool, ListenError> {
        let nonce = format!("{SELF_TEST_PREFIX}{}", Uuid::new_v4());
        sqlx::query("select pg_notify($1, $2)")
            .bind(JOBS_CHANNEL)
            .bind(&nonce)
            .execute(&self.db)
            .await?;
        let deadline = tokio::time::Instant::now() + self.self_test_timeout;
        loop {
            match tokio::time::timeout_at(deadline, listener.try_recv()).await {
                Err(_) => return Ok(false),
                Ok(Ok(Some(n))) if n.payload() == nonce => return Ok(true),
                Ok(Ok(Some(n))) => self.route(n.channel(), n.payload()),
                Ok(Ok(None)) => return Err(ListenError::Closed),
                Ok(Err(e)) => return Err(e.into()),
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
            if ev.status == "cancelled" && self.running.stop(ev.id, StopReason::Cancelled) {
                tracing::info!(job_id = %ev.id, "job cancelled; stopping it");
            }
        }
    }
}

/// One element of a `plan_job_events` payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct JobEvent {
    pub id: Uuid,
    pub status: String,
    pub progress: Option<String>,
    pub error_code: Option<String>,
}

/// Parses a `plan_job_events` payload; an unreadable one yields nothing.
pub fn parse_job_events(payload: &str) -> Vec<JobEvent> {
    serde_json::from_str(payload).unwrap_or_default()
}

/// Capped exponential backoff with full jitter: up to 100 ms * 2^n, at most 10 s.
fn reconnect_delay(failures: u32) -> Duration {
    let cap_ms = 100u64.saturating_mul(1 << failures.min(7)).min(10_000);
    Duration::from_millis(rand::rng().random_range(cap_ms / 2..=cap_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_backoff_grows_and_is_capped() {
        for n in 1..20 {
            let d = reconnect_delay(n);
            assert!(d <= Duration::from_secs(10), "{d:?} for {n}");
        }
        assert!(reconnect_delay(1) <= Duration::from_millis(200));
        assert!(reconnect_delay(12) >= Duration::from_secs(5));
    }
}
