//! Shared pieces of the queue tests: worker start-up, job creation, and
//! waits that await database events (never sleeps), each bounded.

use std::time::Duration;

use plan_worker::config::WorkerSettings;
use plan_worker::queue::store::{self, NewJob};
use plan_worker::queue::{Registry, WorkerHandle};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

pub const KIND: &str = "weekly_base_plan";
pub const WAIT: Duration = Duration::from_secs(15);

pub use crate::support::JobEvents;

/// Settings for tests: a 60 s tick, so that only the wake source under test
/// can start a job quickly; quick retries.
pub fn settings(id: &str) -> WorkerSettings {
    WorkerSettings {
        worker_id: Some(id.to_owned()),
        poll_interval_seconds: 60.0,
        fallback_poll_ms: 100,
        retry_base_seconds: 0.05,
        retry_max_seconds: 0.2,
        shutdown_grace_seconds: 5.0,
        ..WorkerSettings::default()
    }
}

pub async fn start(pool: &PgPool, registry: Registry, settings: WorkerSettings) -> WorkerHandle {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    crate::support::start_worker(pool, registry, settings).await
}

pub fn new_job(max_retries: i32) -> NewJob {
    NewJob {
        user_id: Uuid::new_v4(),
        kind: KIND.to_owned(),
        profile_snapshot: json!({"goal": "MAINTENANCE"}),
        max_retries,
        priority: 0,
        trace_context: None,
        run_after: None,
    }
}

pub async fn enqueue(pool: &PgPool, max_retries: i32) -> Uuid {
    let created = store::create_job(pool, &new_job(max_retries))
        .await
        .expect("job created");
    assert!(!created.existed);
    created.job_id
}

/// Runs one job through the worker, so that it is listening and claiming.
pub async fn warm_up(pool: &PgPool, starts: &mut Starts) {
    let job = enqueue(pool, 3).await;
    assert_eq!(next_start(starts, WAIT).await.0, job);
}

/// What tests' handlers report: (job id, attempt) when they start.
pub type Starts = mpsc::UnboundedReceiver<(Uuid, i32)>;

pub async fn next_start(starts: &mut Starts, within: Duration) -> (Uuid, i32) {
    tokio::time::timeout(within, starts.recv())
        .await
        .unwrap_or_else(|_| panic!("no job started within {within:?}"))
        .expect("handler channel open")
}

#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub status: String,
    pub retry_count: i32,
    pub attempt_count: i32,
    pub error_code: Option<String>,
}

pub async fn job_row(pool: &PgPool, id: Uuid) -> JobRow {
    sqlx::query_as::<_, JobRow>(
        "select status::text, retry_count, attempt_count, error_code from plan_generation_jobs where id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("job row")
}

#[derive(Debug)]
pub struct AttemptRow {
    pub worker_id: String,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
}

/// The attempt history as the API reads it: the running attempt has no row
/// of its own until it ends.
pub async fn attempts(pool: &PgPool, id: Uuid) -> Vec<AttemptRow> {
    store::attempts(pool, id)
        .await
        .expect("attempt rows")
        .into_iter()
        .map(|a| AttemptRow {
            worker_id: a.worker_id,
            outcome: a.outcome,
            error_code: a.error_code,
        })
        .collect()
}

pub fn outcomes(rows: &[AttemptRow]) -> Vec<&str> {
    rows.iter()
        .map(|a| a.outcome.as_deref().unwrap_or("running"))
        .collect()
}

/// Terminates every backend whose application_name mentions `worker_id`.
pub async fn terminate_backends_of(pool: &PgPool, worker_id: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
         where application_name like '%' || $1) t",
    )
    .bind(worker_id)
    .fetch_one(pool)
    .await
    .expect("terminate")
}
