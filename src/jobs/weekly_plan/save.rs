//! Saving a weekly plan: its next version, active, the previous active plan
//! deactivated, in the transaction that completes the job (`jobs::save`).

use serde_json::Value;
use uuid::Uuid;

use super::store::{self, NewPlanRow};

use sqlx::PgConnection;

use crate::jobs::save::{PlanRows, save_completing};
use crate::plan::{Targets, WeeklyPlan};
use crate::queue::store::StoreError;
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
    ctx.record_source(new.source.as_str());
    let row = NewPlanRow {
        user_id: ctx.job.user_id,
        job_id: ctx.job.id,
        plan: new.plan,
        targets: new.targets,
        source: new.source.as_str(),
        model: new.model,
    };
    save_completing(ctx, &row, new.usage.as_ref()).await
}

impl PlanRows for NewPlanRow<'_> {
    const WHAT: &'static str = "saving the plan";
    const RETRY_LABEL: &'static str = "save_weekly_plan";

    fn source(&self) -> &'static str {
        self.source
    }

    async fn insert(&self, tx: &mut PgConnection) -> Result<Uuid, StoreError> {
        // Versions are numbered per user: serialise this user's saves.
        store::lock_user(tx, self.user_id).await?;
        Ok(store::insert_active(tx, self).await?)
    }
}
