//! The contract between the queue and the code that does a job: a handler
//! per kind receives a [`JobContext`] and returns [`Done`] or a [`JobError`]
//! that says what happens next.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{self, ClaimedJob, StoreError};
use crate::error_code::ErrorCode;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a successful handler did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The queue completes the job (batched with others).
    Complete,
    /// The handler completed the job itself, inside the transaction that saved
    /// its result (see [`JobContext::complete_in`]).
    CompletedInTransaction,
}

/// A failed attempt: the stable code decides retry or failure; `detail` is
/// internal (kept on the attempt row, never shown to users).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct JobError {
    pub code: ErrorCode,
    pub detail: String,
    pub retry_after: Option<Duration>,
    pub llm_usage: Option<Value>,
}

impl JobError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
            llm_usage: None,
        }
    }
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }
    pub fn with_usage(mut self, usage: Option<Value>) -> Self {
        self.llm_usage = usage;
        self
    }
    pub fn retryable(&self) -> bool {
        self.code.is_retryable()
    }
}

impl From<StoreError> for JobError {
    fn from(err: StoreError) -> Self {
        JobError::new(ErrorCode::DbError, err.to_string())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        JobError::new(ErrorCode::DbError, err.to_string())
    }
}

/// Everything a handler gets for one attempt.
#[derive(Clone)]
pub struct JobContext {
    pub job: Arc<ClaimedJob>,
    /// Fires when the attempt must stop: cancelled, lease lost, deadline or
    /// shutdown. Handlers check it between steps; the queue also aborts them.
    pub cancel: CancellationToken,
    pub db: PgPool,
    pub(crate) db_gate: Arc<tokio::sync::Semaphore>,
    /// The stage being run and since when: each `progress` call ends the
    /// previous stage, so every stage is timed without code in handlers.
    pub(crate) stage: Arc<Mutex<Option<(String, Instant)>>>,
    /// The stages ended so far and their seconds, in order: saved with the
    /// job's completion, for the estimates of later jobs.
    pub(crate) stages_done: Arc<Mutex<Vec<(String, f64)>>>,
    /// How this worker makes the job's kind, if it says.
    pub(crate) route: Option<store::Route>,
    /// Where the result came from ("llm", "offline"), once the handler says
    /// so: the funnel events report it.
    pub(crate) source: Arc<std::sync::OnceLock<&'static str>>,
    /// Rate-limit deferrals a job may take before a 429 spends retries.
    pub max_rate_limit_deferrals: i32,
    /// How long a statement is tried again while the database is away
    /// (see [`JobContext::retry_db`]).
    pub(crate) db_retry_window: Duration,
}

impl JobContext {
    pub fn id(&self) -> Uuid {
        self.job.id
    }

    /// Says where the result came from ("llm", "offline"), for the funnel
    /// events; the first call counts.
    pub fn record_source(&self, source: &'static str) {
        let _ = self.source.set(source);
    }

    /// The attempt number (1 for the first claim).
    pub fn attempt(&self) -> i32 {
        self.job.attempt
    }

    /// A turn at one of the pool's connections, for the job's next
    /// statements. Waiting here costs a few bytes; a query waiting inside
    /// the pool is a boxed future of kilobytes, and a thousand jobs reach
    /// the database at the same moment (their LLM calls end together).
    pub async fn db_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.db_gate
            .acquire()
            .await
            .expect("the gate is never closed")
    }

    /// Records the stage the job is in (shown to users); a lost lease stops
    /// the attempt.
    pub async fn progress(&self, stage: &str) -> Result<(), JobError> {
        self.end_stage();
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((stage.to_owned(), Instant::now()));
        let _turn = self.db_turn().await;
        let (id, token) = (self.job.id, self.job.lease_token);
        let held = self
            .retry_db("progress", || {
                store::set_progress(&self.db, id, token, stage)
            })
            .await?;
        if held {
            Ok(())
        } else {
            self.cancel.cancel();
            Err(JobError::new(
                ErrorCode::WorkerLost,
                "lease lost while reporting progress",
            ))
        }
    }

    /// Runs `op` again while the database is briefly away (a restart, a
    /// failover), for as long as the lease can last, so that a restart does
    /// not throw away an attempt's work. `op` must be safe to run twice:
    /// fenced by the lease token, or a transaction that runs again whole.
    pub async fn retry_db<T, E, F, Fut>(&self, what: &'static str, op: F) -> Result<T, E>
    where
        E: crate::db::transient::Transient,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        crate::db::transient::retry(self.db_retry_window, what, op).await
    }

    /// Records the duration of the stage in progress, if any.
    pub(crate) fn end_stage(&self) {
        if let Some((stage, since)) = self.stage.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let seconds = since.elapsed().as_secs_f64();
            self.stages_done
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((stage.clone(), seconds));
            metrics::histogram!(crate::telemetry::metrics::STAGE_DURATION, "kind" => self.job.kind.clone(), "stage" => stage)
                .record(seconds);
        }
    }

    /// The route this attempt's result is recorded under: `source` as the
    /// handler says (an LLM job may fall back to the offline planner); the
    /// model of the worker's route when the source is its, the configured
    /// name rather than the provider's answer, so that records and routes
    /// match (providers answer with dated names such as gpt-4o-2024-08-06).
    pub fn result_route(&self, source: &str) -> store::Route {
        let model = match &self.route {
            Some(r) if r.source == source => r.model.clone(),
            _ => String::new(),
        };
        store::Route {
            source: source.to_owned(),
            model,
        }
    }

    /// The stages of this attempt so far with their seconds, the one in
    /// progress up to now: what a completion records.
    pub fn stage_timings(&self) -> Vec<(String, f64)> {
        let mut stages = self
            .stages_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((stage, since)) = &*self.stage.lock().unwrap_or_else(|e| e.into_inner()) {
            stages.push((stage.clone(), since.elapsed().as_secs_f64()));
        }
        stages
    }

    /// Completes the job inside the caller's transaction, fenced by this
    /// attempt's lease token. `Ok(false)`: the lease is gone, roll back.
    pub async fn complete_in(
        &self,
        tx: &mut sqlx::PgConnection,
        plan_id: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let done = store::complete(tx, &[(self.job.id, self.job.lease_token)], &[plan_id]).await?;
        Ok(!done.is_empty())
    }
}

/// Runs jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>>;
}

impl<F, Fut> JobHandler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Done, JobError>> + Send + 'static,
{
    fn run(&self, ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        Box::pin(self(ctx))
    }
}

/// Stands in for a kind this worker has no handler for.
struct NoHandler(String);

impl JobHandler for NoHandler {
    fn run(&self, _ctx: JobContext) -> BoxFuture<Result<Done, JobError>> {
        let detail = format!("no handler for job kind {:?} in this worker", self.0);
        Box::pin(async move { Err(JobError::new(ErrorCode::ConfigError, detail)) })
    }
}

/// Kind -> handler. A worker claims only the kinds registered here.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    /// How kinds are made, for the estimates (kinds without one say nothing).
    routes: std::collections::BTreeMap<String, store::Route>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(mut self, kind: impl Into<String>, handler: impl JobHandler) -> Self {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// Says how `kind` is made here (source and model): estimates of its
    /// jobs then come from jobs made the same way.
    pub fn route(mut self, kind: impl Into<String>, route: store::Route) -> Self {
        self.routes.insert(kind.into(), route);
        self
    }

    pub fn routes(&self) -> &std::collections::BTreeMap<String, store::Route> {
        &self.routes
    }

    /// `{kind: {source, model}}`, as `plan_workers.routes` holds it.
    pub fn routes_json(&self) -> Value {
        serde_json::to_value(&self.routes).unwrap_or_else(|_| Value::Object(Default::default()))
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// The handler of `kind`, or one that fails the job at once as
    /// CONFIG_ERROR (not retryable) naming the kind.
    pub fn handler_for(&self, kind: &str) -> Arc<dyn JobHandler> {
        self.get(kind)
            .unwrap_or_else(|| Arc::new(NoHandler(kind.to_owned())))
    }

    /// The kinds, sorted so that logs and rows are stable.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(kind: &str) -> JobContext {
        let now = chrono::Utc::now();
        let job = ClaimedJob {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            kind: kind.to_owned(),
            profile_snapshot: Value::Null,
            lease_token: Uuid::new_v4(),
            attempt: 1,
            retry_count: 0,
            max_retries: 3,
            rate_limit_deferrals: 0,
            trace_context: None,
            created_at: now,
            run_after: now,
            claimed_at: now,
        };
        JobContext {
            job: Arc::new(job),
            cancel: CancellationToken::new(),
            // Never connected: the stand-in handler touches no database.
            db: PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap(),
            db_gate: Arc::new(tokio::sync::Semaphore::new(1)),
            stage: Arc::default(),
            stages_done: Arc::default(),
            route: None,
            source: Arc::default(),
            max_rate_limit_deferrals: 10,
            db_retry_window: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn a_kind_without_a_handler_fails_at_once_as_a_config_error_naming_the_kind() {
        let registry =
            Registry::new().register("known", |_: JobContext| async { Ok(Done::Complete) });
        assert!(registry.get("unknown").is_none());
        let err = registry
            .handler_for("unknown")
            .run(context("unknown"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigError);
        assert!(
            !err.retryable(),
            "retrying would only wait for the same answer"
        );
        assert!(err.detail.contains("\"unknown\""), "{}", err.detail);
        let known = registry.handler_for("known").run(context("known")).await;
        assert_eq!(known.unwrap(), Done::Complete);
    }
}
