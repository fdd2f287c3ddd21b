//! Creating a plan job: the profile is validated first, so a bad profile
//! never becomes a job. The CLI and the API create jobs through here.

use sqlx::PgPool;
use uuid::Uuid;

use super::{ProfileError, parse_profile};
use crate::queue::store::{self, Created, NewJob, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates the profile of a kind this build knows, then creates the job
/// (or returns the user's active one).
pub async fn create_job(db: &PgPool, job: &NewJob) -> Result<Created, IntakeError> {
    if job.kind == super::handler::KIND {
        parse_profile(&job.profile_snapshot)?;
    }
    Ok(store::create_job(db, job).await?)
}

/// Shorthand for a weekly base plan with the defaults.
pub fn weekly_plan_job(user_id: Uuid, profile: serde_json::Value) -> NewJob {
    NewJob {
        user_id,
        kind: super::handler::KIND.to_owned(),
        profile_snapshot: profile,
        max_retries: 3,
        priority: 0,
        trace_context: None,
    }
}
