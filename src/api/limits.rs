//! Per-user limits on creating jobs, counted in the database (through
//! `api::store`) so that every API replica enforces the same numbers: at
//! most N creations per window, and a cool-down after the user's last plan.
//! Callers hold the user's creation lock (`lock_user`), so two requests
//! cannot both pass.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use super::error::ApiError;
use crate::config::RateLimit;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub create: RateLimit,
    /// Zero: no cool-down.
    pub cooldown: Duration,
}

/// Serialises one user's creations until the transaction ends.
pub async fn lock_user(tx: &mut PgConnection, user: Uuid) -> sqlx::Result<()> {
    super::store::lock_user(tx, user).await
}

/// 429 when the user already created `count` jobs in the window; Retry-After
/// is when the oldest of them leaves it.
pub async fn check_rate(
    tx: &mut PgConnection,
    user: Uuid,
    limit: RateLimit,
) -> Result<(), ApiError> {
    if limit.count == 0 {
        return Ok(());
    }
    let wait =
        super::store::rate_window_wait(tx, user, limit.count, limit.window.as_secs_f64()).await?;
    match wait {
        Some(secs) => Err(ApiError::too_many(
            "RATE_LIMITED",
            format!(
                "at most {} plan requests per {} s; try again later",
                limit.count,
                limit.window.as_secs()
            ),
            Duration::from_secs_f64(secs.max(1.0)),
        )),
        None => Ok(()),
    }
}

/// 429 while the user's newest plan is younger than the cool-down.
pub async fn check_cooldown(
    tx: &mut PgConnection,
    user: Uuid,
    kind: &str,
    cooldown: Duration,
) -> Result<(), ApiError> {
    if cooldown.is_zero() {
        return Ok(());
    }
    // Each kind's cool-down runs from that kind's newest plan.
    let wait = if kind == crate::jobs::meal_plan::KIND {
        crate::jobs::meal_plan::store::cooldown_wait(tx, user, cooldown).await?
    } else {
        crate::jobs::weekly_plan::store::cooldown_wait(tx, user, cooldown).await?
    };
    match wait.filter(|s| *s > 0.0) {
        Some(secs) => Err(ApiError::too_many(
            "REGENERATION_COOLDOWN",
            format!(
                "a new plan can be generated {} after the last one",
                human(cooldown)
            ),
            Duration::from_secs_f64(secs),
        )),
        None => Ok(()),
    }
}

/// "14 days", "12 hours", "90 minutes", "45 seconds": the largest whole unit.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = [(86_400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(u, _)| s.is_multiple_of(*u) && s >= *u)
        .map_or((s, "second"), |(u, name)| (s / u, name));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldowns_read_in_their_largest_whole_unit() {
        assert_eq!(human(Duration::from_secs(14 * 86_400)), "14 days");
        assert_eq!(human(Duration::from_secs(12 * 3600)), "12 hours");
        assert_eq!(human(Duration::from_secs(90 * 60)), "90 minutes");
        assert_eq!(human(Duration::from_secs(86_400)), "1 day");
        assert_eq!(human(Duration::from_secs(45)), "45 seconds");
    }
}
