//! Creating a plan job: the profile is validated first, so a bad profile
//! never becomes a job. The CLI and the API create jobs through here.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::plan::{ProfileError, PushToken, parse_profile};
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

/// The outbox takes the push token from the snapshot's `push_token` in SQL,
/// while apps may send `pushToken`: one validated, trimmed token is kept
/// under `push_token` and the other spelling is dropped, so the handler's
/// own parse sees one value. A kind this build does not parse may bring an
/// invalid or ambiguous token: it is dropped rather than handed to SQL.
pub fn normalize_snapshot(snapshot: &mut Value) {
    let Some(obj) = snapshot.as_object_mut() else {
        return;
    };
    let given = |key: &str| obj.get(key).filter(|v| !v.is_null());
    let token = match (given("push_token"), given("pushToken")) {
        (Some(a), Some(b)) if a != b => None,
        (a, b) => a
            .or(b)
            .and_then(Value::as_str)
            .and_then(|s| PushToken::parse(s).ok()),
    };
    obj.remove("pushToken");
    match token {
        Some(t) => obj.insert("push_token".to_owned(), Value::from(t.expose())),
        None => obj.remove("push_token"),
    };
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
        run_after: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_camel_case_push_token_is_stored_where_the_outbox_reads_it() {
        let mut v = json!({"pushToken": " ExponentPushToken[x] "});
        super::normalize_snapshot(&mut v);
        assert_eq!(v, json!({"push_token": "ExponentPushToken[x]"}));
        let mut null_first = json!({"push_token": null, "pushToken": "ExponentPushToken[y]"});
        super::normalize_snapshot(&mut null_first);
        assert_eq!(null_first, json!({"push_token": "ExponentPushToken[y]"}));
    }

    #[test]
    fn an_invalid_or_ambiguous_push_token_never_reaches_the_snapshot_sql_reads() {
        for mut v in [
            json!({"push_token": null, "pushToken": {"evil": [1, 2, 3]}}),
            json!({"push_token": 12345}),
            json!({"pushToken": "x".repeat(60_000)}),
            json!({"push_token": "ExponentPushToken[a]", "pushToken": "ExponentPushToken[b]"}),
        ] {
            super::normalize_snapshot(&mut v);
            assert_eq!(v, json!({}));
        }
    }
}
