//! Creating a plan job: the profile is validated first, so a bad profile
//! never becomes a job. The CLI and the API create jobs through here.

use sqlx::PgPool;
use uuid::Uuid;

use crate::plan::{ProfileError, parse_profile};
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
    if super::KINDS.contains(&job.kind.as_str()) {
        parse_profile(&job.profile_snapshot)?;
    }
    let mut job = job.clone();
    normalize_snapshot(&mut job.profile_snapshot);
    Ok(store::create_job(db, &job).await?)
}

/// Spellings the SQL side reads by one name: the outbox takes the push
/// token from `push_token`, while apps may send `pushToken`.
pub fn normalize_snapshot(snapshot: &mut serde_json::Value) {
    if let Some(obj) = snapshot.as_object_mut()
        && obj.get("push_token").is_none_or(serde_json::Value::is_null)
        && let Some(token) = obj.get("pushToken").cloned()
    {
        obj.insert("push_token".to_owned(), token);
    }
}

/// Shorthand for a meal plan with the defaults.
pub fn meal_plan_job(user_id: Uuid, profile: serde_json::Value) -> NewJob {
    NewJob {
        kind: super::meal_plan::KIND.to_owned(),
        ..weekly_plan_job(user_id, profile)
    }
}

/// Shorthand for a weekly base plan with the defaults.
pub fn weekly_plan_job(user_id: Uuid, profile: serde_json::Value) -> NewJob {
    NewJob {
        user_id,
        kind: super::weekly_plan::KIND.to_owned(),
        profile_snapshot: profile,
        max_retries: 3,
        priority: 0,
        trace_context: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_camel_case_push_token_is_stored_where_the_outbox_reads_it() {
        let mut v = json!({"pushToken": "ExponentPushToken[x]"});
        super::normalize_snapshot(&mut v);
        assert_eq!(v["push_token"], "ExponentPushToken[x]");
        let mut both = json!({"push_token": "a", "pushToken": "b"});
        super::normalize_snapshot(&mut both);
        assert_eq!(both["push_token"], "a", "the snake_case one wins");
    }
}
