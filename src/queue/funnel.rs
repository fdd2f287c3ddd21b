//! Funnel events for analytics, safe to ship anywhere: a job's first start
//! and its end, as log lines of their own target (`plan_worker::funnel`) and,
//! inside the attempt's span, as span events of its trace. They carry the
//! kind, the outcome, the error code, where the plan came from (llm or
//! offline), the attempts and the seconds from creation, and the user only
//! as a hash: never a profile field, a push token or the user id itself.

use sha2::{Digest, Sha256};

use super::store::ClaimedJob;
use crate::error_code::ErrorCode;

pub const TARGET: &str = "plan_worker::funnel";

/// A stable pseudonym of a user: the first 16 hex digits of SHA-256 over a
/// fixed prefix and the id. The same user has the same hash in every event
/// and every process, so a pipeline can count users and join their
/// events, but not tell who they are.
pub fn user_hash(user: uuid::Uuid) -> String {
    let digest = Sha256::digest(format!("plan-worker-funnel:{user}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// `plan_generation_started`, at a job's first attempt.
pub fn started(job: &ClaimedJob) {
    let wait = (job.claimed_at - job.created_at).num_milliseconds().max(0) as f64 / 1000.0;
    tracing::info!(
        target: TARGET,
        event = "plan_generation_started",
        kind = %job.kind,
        user_hash = %user_hash(job.user_id),
        wait_seconds = wait,
        "plan_generation_started"
    );
}

/// `plan_generation_succeeded` or `plan_generation_failed` (a cancellation
/// is a failure with CANCELLED), when a job ends for good; attempts that
/// will be tried again are not an end.
pub fn ended(
    job: &ClaimedJob,
    outcome: &'static str,
    code: Option<ErrorCode>,
    source: Option<&'static str>,
) {
    let event = match outcome {
        "completed" => "plan_generation_succeeded",
        "failed" | "cancelled" => "plan_generation_failed",
        _ => return,
    };
    let seconds = (chrono::Utc::now() - job.created_at)
        .num_milliseconds()
        .max(0) as f64
        / 1000.0;
    tracing::info!(
        target: TARGET,
        event = event,
        kind = %job.kind,
        user_hash = %user_hash(job.user_id),
        outcome = outcome,
        error_code = code.map_or("", ErrorCode::as_str),
        source = source.unwrap_or(""),
        attempts = job.attempt,
        seconds = seconds,
        "{event}"
    );
}

#[cfg(test)]
mod tests {
    use super::user_hash;

    #[test]
    fn a_users_hash_is_stable_short_and_does_not_contain_the_id() {
        let user: uuid::Uuid = "5b9c3a52-7e0f-4f57-9d1e-2b8c0a8f3c11".parse().unwrap();
        let h = user_hash(user);
        assert_eq!(h, user_hash(user));
        assert_eq!(h.len(), 16);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!h.contains("5b9c3a52"));
        assert_ne!(h, user_hash(uuid::Uuid::new_v4()));
    }
}
