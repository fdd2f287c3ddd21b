//! The one LISTEN session type of the process, used by the worker's
//! listener, the API's event hub and the job-event waiter: a dedicated
//! connection on its own one-connection pool (dropping the session closes
//! it, so PgListener's silent reconnects, which would hide the gap in which
//! notifications are lost, never happen), server-side TCP keepalives, and
//! [`Sessions`], which reconnects with capped, jittered backoff that resets
//! once a session is listening.

use std::time::Duration;

use rand::RngExt;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::store;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("listen connection: {0}")]
    Db(#[from] sqlx::Error),
    #[error("listen connection closed")]
    Closed,
    /// Open by every sign, but its own NOTIFY did not come back: a half-open
    /// TCP connection, a server that stopped serving it.
    #[error("listen connection delivers nothing: its own NOTIFY did not come back within {0:?}")]
    Deaf(std::time::Duration),
}

/// One connection that LISTENs on a fixed set of channels.
pub struct ListenSession {
    // Kept so that the connection lives exactly as long as the session.
    _pool: PgPool,
    listener: PgListener,
    backend_pid: i32,
}

impl ListenSession {
    /// Connects, sets keepalives and LISTENs on `channels`.
    pub async fn connect(
        options: &PgConnectOptions,
        application_name: &str,
        channels: &[&str],
    ) -> Result<Self, ListenError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone().application_name(application_name))
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.ignore_pool_close_event(true);
        listener.eager_reconnect(false);
        // A host that vanishes without closing its socket is noticed (and
        // its session locks freed) after about idle + interval * count s.
        store::set_keepalives(&mut listener).await?;
        let backend_pid = store::backend_pid(&mut listener).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Self {
            _pool: pool,
            listener,
            backend_pid,
        })
    }

    /// The server process of this connection (operators find it in
    /// `pg_stat_activity`; tests terminate it).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// The connection, for statements that must run on it (session locks).
    pub fn connection(&mut self) -> &mut PgListener {
        &mut self.listener
    }

    /// The next notification; an error once the connection is gone.
    pub async fn recv(&mut self) -> Result<PgNotification, ListenError> {
        self.listener.try_recv().await?.ok_or(ListenError::Closed)
    }
}

/// Successive sessions on one set of channels until `stop` fires.
pub struct Sessions {
    options: PgConnectOptions,
    application_name: String,
    channels: Vec<&'static str>,
    stop: CancellationToken,
    failures: u32,
    started: bool,
}

impl Sessions {
    pub fn new(
        options: PgConnectOptions,
        application_name: impl Into<String>,
        channels: &[&'static str],
        stop: CancellationToken,
    ) -> Self {
        Self {
            options,
            application_name: application_name.into(),
            channels: channels.to_vec(),
            stop,
            failures: 0,
            started: false,
        }
    }

    /// The next listening session: at once the first time, after a backoff
    /// every other time. `None` once `stop` fires.
    pub async fn next(&mut self) -> Option<ListenSession> {
        loop {
            if self.started {
                self.failures = self.failures.saturating_add(1);
                tokio::select! {
                    _ = self.stop.cancelled() => return None,
                    _ = tokio::time::sleep(reconnect_delay(self.failures)) => {}
                }
            }
            self.started = true;
            let connect =
                ListenSession::connect(&self.options, &self.application_name, &self.channels);
            let result = tokio::select! {
                _ = self.stop.cancelled() => return None,
                r = connect => r,
            };
            match result {
                Ok(session) => {
                    self.failures = 0;
                    return Some(session);
                }
                Err(err) => {
                    tracing::warn!(error = %err, channels = ?self.channels, "cannot LISTEN; retrying");
                }
            }
        }
    }
}

/// Capped exponential backoff with full jitter: up to 100 ms * 2^n, at most 10 s.
pub fn reconnect_delay(failures: u32) -> Duration {
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
