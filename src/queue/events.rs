//! The queue's notification channels, the shape of a job event, and
//! [`JobEvents`]: a bounded wait on job events for the demo, the benches
//! and the tests (one LISTEN opened before the action it awaits, so no
//! status change in between is missed).

use std::collections::HashSet;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

use super::store::JobStatus;
use crate::db::listen::{ListenError, ListenSession};

/// Inserts notify here (payload: the kind); wakes dispatchers.
pub const JOBS_CHANNEL: &str = "plan_jobs";
/// Status and progress changes (payload: a JSON array of [`JobEvent`]s).
pub const EVENTS_CHANNEL: &str = "plan_job_events";

/// One element of a `plan_job_events` payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct JobEvent {
    pub id: Uuid,
    pub status: JobStatus,
    pub progress: Option<String>,
    pub error_code: Option<String>,
    /// Set on the event of a day that has landed (`jobs::days`): that day
    /// can be read; status and progress are unchanged by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u8>,
}

/// Parses a `plan_job_events` payload; an unreadable one yields nothing.
pub fn parse_job_events(payload: &str) -> Vec<JobEvent> {
    serde_json::from_str(payload).unwrap_or_default()
}

/// Why a wait on job events ended without what it waited for.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("no such job event within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// A LISTEN on `plan_job_events` with bounded waits.
pub struct JobEvents {
    session: ListenSession,
}

impl JobEvents {
    /// Starts listening; events from now on are seen.
    pub async fn open(options: &PgConnectOptions) -> Result<Self, ListenError> {
        let session =
            ListenSession::connect(options, "plan-worker job events", &[EVENTS_CHANNEL]).await?;
        Ok(Self { session })
    }

    /// The events of the next notification, waiting at most `within`.
    pub async fn next(&mut self, within: Duration) -> Result<Vec<JobEvent>, WaitError> {
        let note = tokio::time::timeout(within, self.session.recv())
            .await
            .map_err(|_| WaitError::TimedOut(within))??;
        Ok(parse_job_events(note.payload()))
    }

    /// Waits for the first event that `matches`.
    pub async fn wait_for(
        &mut self,
        matches: impl Fn(&JobEvent) -> bool,
        within: Duration,
    ) -> Result<JobEvent, WaitError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let events = self.next(left).await.map_err(|e| match e {
                WaitError::TimedOut(_) => WaitError::TimedOut(within),
                other => other,
            })?;
            if let Some(ev) = events.into_iter().find(&matches) {
                return Ok(ev);
            }
        }
    }

    /// Waits until `job` reaches `status`; returns the event.
    pub async fn wait_status(
        &mut self,
        job: Uuid,
        status: JobStatus,
        within: Duration,
    ) -> Result<JobEvent, WaitError> {
        self.wait_for(|e| e.id == job && e.status == status, within)
            .await
    }

    /// Waits until `n` distinct jobs have reached `status`.
    pub async fn wait_count(
        &mut self,
        status: JobStatus,
        n: usize,
        within: Duration,
    ) -> Result<(), WaitError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = HashSet::new();
        while seen.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let events = self.next(left).await.map_err(|e| match e {
                WaitError::TimedOut(_) => WaitError::TimedOut(within),
                other => other,
            })?;
            seen.extend(
                events
                    .into_iter()
                    .filter(|e| e.status == status)
                    .map(|e| e.id),
            );
        }
        Ok(())
    }
}
