//! Saving a plan: one transaction inserts it (next version, active, the
//! previous active plan deactivated), completes the job fenced by the lease,
//! and records the attempt's LLM usage. If any step fails, nothing remains.

use serde_json::Value;
use uuid::Uuid;

use super::store::{self, NewPlanRow};

use crate::error_code::ErrorCode;
use crate::plan::{Targets, WeeklyPlan};
use crate::queue::store as queue_store;
use crate::queue::{JobContext, JobError};

/// Where a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Llm,
    Offline,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Llm => "llm",
            Source::Offline => "offline",
        }
    }
}

/// The plan and what is recorded with it.
pub struct NewPlan<'a> {
    pub plan: &'a WeeklyPlan,
    pub targets: &'a Targets,
    pub source: Source,
    pub model: Option<&'a str>,
    pub usage: Option<Value>,
}

pub const STAGE_SAVING: &str = "saving";

/// Saves the plan and completes the job in one transaction; returns the plan id.
#[tracing::instrument(name = "plan.save", skip_all, fields(source = new.source.as_str()))]
pub async fn save_weekly_plan(ctx: &JobContext, new: NewPlan<'_>) -> Result<Uuid, JobError> {
    let db_error =
        |e: sqlx::Error| JobError::new(ErrorCode::DbError, format!("saving the plan: {e}"));
    let user_id = ctx.job.user_id;
    let started = std::time::Instant::now();

    let mut tx = ctx.db.begin().await.map_err(db_error)?;
    // Versions are numbered per user: serialise this user's saves.
    store::lock_user(&mut tx, user_id).await.map_err(db_error)?;
    let row = NewPlanRow {
        user_id,
        job_id: ctx.job.id,
        plan: new.plan,
        targets: new.targets,
        source: new.source.as_str(),
        model: new.model,
    };
    let plan_id = store::insert_active(&mut tx, &row)
        .await
        .map_err(db_error)?;
    if let Some(usage) = &new.usage {
        queue_store::record_usage(&mut *tx, ctx.job.id, ctx.job.lease_token, usage)
            .await
            .map_err(db_error)?;
    }
    let held = ctx
        .complete_in(&mut tx, Some(plan_id))
        .await
        .map_err(|e| JobError::new(ErrorCode::DbError, e.to_string()))?;
    if !held {
        // Dropping the transaction rolls the plan back: the job is no longer ours.
        return Err(JobError::new(
            ErrorCode::WorkerLost,
            "lease lost before the plan was saved",
        ));
    }
    tx.commit().await.map_err(db_error)?;
    metrics::histogram!(crate::telemetry::metrics::SAVE_DURATION)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::telemetry::metrics::PLANS_SAVED, "kind" => ctx.job.kind.clone(), "source" => new.source.as_str())
        .increment(1);
    Ok(plan_id)
}
