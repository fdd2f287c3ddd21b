//! One attempt of one job: run the handler under the attempt's deadline and
//! stop switch, then record exactly one outcome (or nothing, when the lease
//! is no longer ours).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::completer::Completer;
use super::completer::Completion;
use super::funnel;
use super::job::{Done, JobContext, JobError, JobHandler};
use super::lease::{RunningJobs, StopReason};
use super::store::{self, ClaimedJob, FailOutcome, Failure, RetryPolicy};
use crate::db::transient;
use crate::error_code::ErrorCode;
use crate::telemetry::metrics as m;

/// What an attempt needs from its worker.
pub struct AttemptEnv {
    pub worker_id: String,
    pub db: sqlx::PgPool,
    /// How this worker makes each kind (see `Registry::route`).
    pub routes: Arc<std::collections::BTreeMap<String, store::Route>>,
    pub running: Arc<RunningJobs>,
    pub completer: Completer,
    pub timeout: Duration,
    /// How long the statements that end an attempt are tried again while
    /// the database is away (the lease: past it, the job is not ours).
    pub db_retry_window: Duration,
    pub policy: RetryPolicy,
    /// Jobs' turns at the pool's connections (see `JobContext::db_turn`).
    pub db_gate: Arc<tokio::sync::Semaphore>,
}

enum Ended {
    Returned(Result<Done, JobError>),
    Panicked(String),
    Stopped(Option<StopReason>),
    TimedOut,
}

/// Runs one claimed job to a recorded outcome.
pub async fn run_attempt(env: Arc<AttemptEnv>, handler: Arc<dyn JobHandler>, job: ClaimedJob) {
    let span = tracing::info_span!(
        "job.attempt",
        job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempt, worker_id = %env.worker_id,
        error_code = tracing::field::Empty
    );
    crate::telemetry::logging::link_to_traceparent(&span, job.trace_context.as_deref());
    async move {
        let job = Arc::new(job);
        // Removed from the running table when this attempt ends, however.
        let entry = env.running.insert(job.id, job.lease_token);
        let control = entry.control.clone();
        let ctx = JobContext {
            job: job.clone(),
            cancel: control.cancel.clone(),
            db: env.db.clone(),
            db_gate: env.db_gate.clone(),
            stage: Default::default(),
            stages_done: Default::default(),
            route: env.routes.get(&job.kind).cloned(),
            source: Default::default(),
            max_rate_limit_deferrals: env.policy.max_rate_limit_deferrals,
            db_retry_window: env.db_retry_window,
        };
        let stages = ctx.clone();
        let started = Instant::now();
        if job.attempt == 1 {
            funnel::started(&job);
        }
        // Own task: a panic is caught by the runtime, and abort() stops the
        // handler at its next await when the attempt must end.
        let mut task = AbortOnDropHandle::new(tokio::spawn(handler.run(ctx).in_current_span()));
        let ended = tokio::select! {
            r = &mut task => match r {
                Ok(result) => Ended::Returned(result),
                Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
                Err(_) => Ended::Stopped(control.reason()),
            },
            _ = control.cancel.cancelled() => Ended::Stopped(control.reason()),
            _ = tokio::time::sleep(env.timeout) => Ended::TimedOut,
        };
        task.abort();
        stages.end_stage();
        control.set_finishing();
        let outcome = record(&env, &job, ended, stages.source.get().copied()).await;
        drop(entry);
        metrics::histogram!(m::ATTEMPT_DURATION, "kind" => job.kind.clone(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
    }
    .instrument(span)
    .await
}

/// Writes the attempt's end; returns the outcome label for metrics.
/// `source`: where the result came from, if the handler said (funnel events).
async fn record(
    env: &AttemptEnv,
    job: &ClaimedJob,
    ended: Ended,
    source: Option<&'static str>,
) -> &'static str {
    match ended {
        Ended::Returned(Ok(Done::Complete)) => {
            match env.completer.complete(job.id, job.lease_token).await {
                Ok(Completion::Completed) => finished(job, "completed", None, source),
                Ok(Completion::LeaseLost) => lease_lost(job),
                Err(err) => {
                    // The job stays ours until the lease runs out; the reaper
                    // then retries it as WORKER_LOST.
                    tracing::error!(error = %err, "could not record the completion");
                    "error"
                }
            }
        }
        Ended::Returned(Ok(Done::CompletedInTransaction)) => {
            finished(job, "completed", None, source)
        }
        Ended::Returned(Err(err)) => fail(env, job, err, source).await,
        Ended::Panicked(msg) => {
            fail(
                env,
                job,
                JobError::new(ErrorCode::UnexpectedError, msg),
                source,
            )
            .await
        }
        Ended::TimedOut => {
            let detail = format!("attempt passed its deadline of {:?}", env.timeout);
            fail(
                env,
                job,
                JobError::new(ErrorCode::AiTimeout, detail),
                source,
            )
            .await
        }
        Ended::Stopped(Some(StopReason::Cancelled)) => {
            finished(job, "cancelled", Some(ErrorCode::Cancelled), source)
        }
        Ended::Stopped(Some(StopReason::Shutdown)) => {
            let release = || store::release(&env.db, job.id, job.lease_token);
            match transient::retry(env.db_retry_window, "release", release).await {
                Ok(true) => {
                    tracing::info!("job given back on shutdown");
                    metrics::counter!(m::JOBS_RELEASED, "kind" => job.kind.clone()).increment(1);
                    "released"
                }
                Ok(false) => lease_lost(job),
                Err(err) => {
                    tracing::error!(error = %err, "could not give the job back; its lease will expire");
                    "error"
                }
            }
        }
        Ended::Stopped(_) => lease_lost(job),
    }
}

async fn fail(
    env: &AttemptEnv,
    job: &ClaimedJob,
    err: JobError,
    source: Option<&'static str>,
) -> &'static str {
    let failure = Failure {
        error_code: err.code.as_str(),
        user_message: err.code.user_message(),
        retryable: err.retryable(),
        // A provider's Retry-After may be anything (1e12 s was seen).
        retry_after: err.retry_after.map(|d| d.min(env.policy.max_retry_after)),
        detail: Some(&err.detail),
        llm_usage: err.llm_usage.as_ref(),
    };
    tracing::Span::current().record("error_code", err.code.as_str());
    let record = || store::fail(&env.db, job.id, job.lease_token, &failure, env.policy);
    match transient::retry(env.db_retry_window, "fail", record).await {
        Ok(Some(outcome)) => {
            tracing::warn!(error_code = %err.code, ?outcome, detail = %err.detail, "attempt failed");
            match outcome {
                FailOutcome::Failed => finished(job, "failed", Some(err.code), source),
                FailOutcome::Deferred => {
                    metrics::counter!(m::JOBS_RETRIED, "kind" => job.kind.clone(), "error_code" => err.code.as_str(), "deferred" => "true").increment(1);
                    "deferred"
                }
                FailOutcome::Retry => {
                    metrics::counter!(m::JOBS_RETRIED, "kind" => job.kind.clone(), "error_code" => err.code.as_str(), "deferred" => "false").increment(1);
                    "retry"
                }
            }
        }
        Ok(None) => lease_lost(job),
        Err(db) => {
            tracing::error!(error = %db, error_code = %err.code, "could not record the failure; its lease will expire");
            "error"
        }
    }
}

fn finished(
    job: &ClaimedJob,
    outcome: &'static str,
    code: Option<ErrorCode>,
    source: Option<&'static str>,
) -> &'static str {
    funnel::ended(job, outcome, code, source);
    let code = code.map_or("", ErrorCode::as_str);
    tracing::info!(status = outcome, error_code = code, "job finished");
    metrics::counter!(m::JOBS_FINISHED, "kind" => job.kind.clone(), "outcome" => outcome, "error_code" => code)
        .increment(1);
    // created_at is the database's clock, now() this host's: fine for a
    // histogram of seconds to minutes on hosts kept in sync.
    let now = chrono::Utc::now();
    let end_to_end = (now - job.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    metrics::histogram!(m::END_TO_END, "kind" => job.kind.clone(), "outcome" => outcome)
        .record(end_to_end);
    if outcome == "completed" {
        metrics::gauge!(m::LAST_SUCCESS).set(now.timestamp() as f64);
    }
    outcome
}

fn lease_lost(job: &ClaimedJob) -> &'static str {
    tracing::warn!(job_id = %job.id, "lease lost before the outcome was recorded; nothing written");
    "lease_lost"
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    format!("handler panicked: {text}")
}
