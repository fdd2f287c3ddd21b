//! What a creation request passes before any database work: a per-user
//! burst limit held in memory (one user's thousand requests a second must
//! not reach the database and slow everyone's reads), and a global cap on
//! the pending queue (`MAX_PENDING_JOBS`), counted from the database at most
//! once a second per replica and kept current with this replica's own
//! creations in between.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::error::ApiError;

/// How old the pending count may be.
const COUNT_MAX_AGE: Duration = Duration::from_secs(1);

/// Retry-After when the queue is full: about how long a full queue takes
/// to move is unknown here; a short wait spreads clients' retries.
const QUEUE_FULL_RETRY: Duration = Duration::from_secs(30);

pub struct Admission {
    /// None: no burst limit.
    per_user: Option<DefaultKeyedRateLimiter<Uuid>>,
    /// 0: no cap.
    max_pending: u64,
    pending: Mutex<Option<(Instant, u64)>>,
}

impl Admission {
    /// `burst` creation requests per user at once, one more each second
    /// (0: no limit); at most `max_pending` pending jobs (0: no cap).
    pub fn new(burst: u32, max_pending: u64) -> Arc<Self> {
        let per_user = NonZeroU32::new(burst).map(|burst| {
            DefaultKeyedRateLimiter::keyed(Quota::per_second(NonZeroU32::MIN).allow_burst(burst))
        });
        Arc::new(Admission {
            per_user,
            max_pending,
            pending: Mutex::new(None),
        })
    }

    /// 429 over the user's burst; nothing is counted against others.
    pub fn check_user(&self, user: Uuid) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_user else {
            return Ok(());
        };
        match limiter.check_key(&user) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::too_many(
                    "RATE_LIMITED",
                    "too many requests at once; slow down",
                    Duration::from_secs(wait.as_secs().max(1)),
                ))
            }
        }
    }

    /// 503 with Retry-After while the pending queue is at its cap.
    pub async fn check_queue(&self, db: &PgPool) -> Result<(), ApiError> {
        if self.max_pending == 0 {
            return Ok(());
        }
        let mut pending = self.pending.lock().await;
        let fresh = pending.filter(|(at, _)| at.elapsed() < COUNT_MAX_AGE);
        let count = match fresh {
            Some((_, n)) => n,
            None => {
                let n = super::store::pending_jobs(db).await?;
                *pending = Some((Instant::now(), n));
                if let Some(l) = &self.per_user {
                    // Users idle for a while are forgotten (the map would grow).
                    l.retain_recent();
                }
                n
            }
        };
        if count >= self.max_pending {
            return Err(ApiError {
                retry_after: Some(QUEUE_FULL_RETRY),
                ..ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "QUEUE_FULL",
                    "the service has too many plans waiting; try again shortly",
                )
            });
        }
        Ok(())
    }

    /// This replica created a job: the count stays current until refreshed.
    pub async fn created(&self) {
        if let Some((_, n)) = self.pending.lock().await.as_mut() {
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_burst_is_theirs_alone() {
        let a = Admission::new(2, 0);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(a.check_user(alice).is_ok());
        assert!(a.check_user(alice).is_ok());
        let refused = a.check_user(alice).unwrap_err();
        assert_eq!(refused.code, "RATE_LIMITED");
        assert!(refused.retry_after.unwrap() >= Duration::from_secs(1));
        assert!(a.check_user(bob).is_ok(), "bob has his own allowance");
        assert!(Admission::new(0, 0).check_user(alice).is_ok());
    }
}
