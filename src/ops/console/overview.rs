//! The overview's figures, read on one connection: the kinds now, the last
//! hour minute by minute, the workers and the oldest due job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::store::{self, FINISHED, KindNow, OldestPending, RecentBucket, WorkerRow};
use crate::queue::store::JobStatus;

/// Below this many rows (the planner's estimate) finished jobs are
/// counted: a few milliseconds, where the estimates of a small or young
/// table are far off.
pub const COUNT_BELOW: i64 = 100_000;

/// What the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub kinds: Vec<KindNow>,
    /// Whether the kinds' finished totals were counted (else estimated).
    pub exact: bool,
    /// Finished per minute, oldest first (index 0 is 59 minutes ago):
    /// completed, failed, cancelled.
    pub per_minute: [[i64; 3]; 60],
    pub hour_completed: i64,
    pub hour_failed: i64,
    pub hour_cancelled: i64,
    /// Error codes of the jobs that failed in the last hour, most first.
    pub top_errors: Vec<(String, i64)>,
    pub workers: Vec<WorkerRow>,
    pub oldest_pending: Option<OldestPending>,
    /// How long the reads took (shown in the footer, and what the bench
    /// measures).
    pub took: Duration,
}

impl Overview {
    /// failed / (completed + failed) of the last hour, as the alert
    /// computes it (cancelled jobs are not failures); None without either.
    pub fn failure_ratio(&self) -> Option<f64> {
        let ended = self.hour_completed + self.hour_failed;
        (ended > 0).then(|| self.hour_failed as f64 / ended as f64)
    }
}

/// Reads the overview.
pub async fn load(db: &PgPool) -> sqlx::Result<Overview> {
    let started = Instant::now();
    let mut conn = db.acquire().await?;
    let mut kinds = store::kinds_now(&mut conn).await?;
    let exact = store::table_estimate(&mut conn).await? < COUNT_BELOW;
    if exact {
        for (kind, status, n) in store::finished_counts(&mut conn).await? {
            let i = FINISHED.iter().position(|s| *s == status);
            if let (Some(k), Some(i)) = (kinds.iter_mut().find(|k| k.kind == kind), i) {
                k.finished[i] = n;
            }
        }
    } else {
        let mcv = store::mcv_estimates(&mut conn).await?;
        let complete = mcv.first().is_some_and(|m| m.3 > 0.999);
        for k in &mut kinds {
            for (i, status) in FINISHED.iter().enumerate() {
                k.finished[i] = match mcv.iter().find(|m| m.0 == k.kind && m.1 == *status) {
                    Some(m) => m.2,
                    None if complete => 0,
                    // Not among the common pairs of a partial list (or
                    // never analysed): one EXPLAIN asks the planner.
                    None => store::estimate(&mut conn, &k.kind, *status).await?,
                };
            }
        }
    }
    let names: Vec<String> = kinds.iter().map(|k| k.kind.clone()).collect();
    let recent = store::last_hour(&mut conn, &names).await?;
    let workers = store::workers(&mut conn).await?;
    let oldest_pending = store::oldest_pending(&mut conn).await?;
    drop(conn);
    let mut o = Overview {
        kinds,
        exact,
        per_minute: [[0; 3]; 60],
        hour_completed: 0,
        hour_failed: 0,
        hour_cancelled: 0,
        top_errors: Vec::new(),
        workers,
        oldest_pending,
        took: Duration::ZERO,
    };
    fold_recent(&mut o, &recent);
    o.took = started.elapsed();
    Ok(o)
}

fn fold_recent(o: &mut Overview, recent: &[RecentBucket]) {
    let mut errors: BTreeMap<&str, i64> = BTreeMap::new();
    for b in recent {
        let Some(i) = FINISHED.iter().position(|s| *s == b.status) else {
            continue;
        };
        let minute = 59 - b.minutes_ago.clamp(0, 59) as usize;
        o.per_minute[minute][i] += b.jobs;
        match b.status {
            JobStatus::Completed => o.hour_completed += b.jobs,
            JobStatus::Failed => {
                o.hour_failed += b.jobs;
                *errors
                    .entry(b.error_code.as_deref().unwrap_or("NONE"))
                    .or_default() += b.jobs;
            }
            _ => o.hour_cancelled += b.jobs,
        }
    }
    let mut top: Vec<(String, i64)> = errors.into_iter().map(|(c, n)| (c.to_owned(), n)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(10);
    o.top_errors = top;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(minutes_ago: i32, status: JobStatus, code: Option<&str>, jobs: i64) -> RecentBucket {
        RecentBucket {
            minutes_ago,
            status,
            error_code: code.map(str::to_owned),
            jobs,
        }
    }

    #[test]
    fn the_last_hour_folds_into_minutes_totals_and_the_top_error_codes() {
        let mut o = Overview {
            kinds: vec![],
            exact: true,
            per_minute: [[0; 3]; 60],
            hour_completed: 0,
            hour_failed: 0,
            hour_cancelled: 0,
            top_errors: vec![],
            workers: vec![],
            oldest_pending: None,
            took: Duration::ZERO,
        };
        fold_recent(
            &mut o,
            &[
                bucket(0, JobStatus::Completed, None, 6),
                bucket(0, JobStatus::Failed, Some("AI_TIMEOUT"), 1),
                bucket(3, JobStatus::Failed, Some("AI_QUOTA_EXCEEDED"), 2),
                bucket(59, JobStatus::Failed, Some("AI_QUOTA_EXCEEDED"), 1),
                bucket(10, JobStatus::Cancelled, Some("CANCELLED"), 4),
            ],
        );
        assert_eq!(o.per_minute[59], [6, 1, 0]);
        assert_eq!(o.per_minute[56], [0, 2, 0]);
        assert_eq!(o.per_minute[0], [0, 1, 0]);
        assert_eq!(
            (o.hour_completed, o.hour_failed, o.hour_cancelled),
            (6, 4, 4)
        );
        assert_eq!(
            o.top_errors,
            vec![("AI_QUOTA_EXCEEDED".into(), 3), ("AI_TIMEOUT".into(), 1)]
        );
        assert_eq!(o.failure_ratio(), Some(0.4));
    }
}
