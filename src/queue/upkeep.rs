//! Upkeep, a loop of its own on every worker, once a second: the jobs of
//! due schedules, the retention of finished jobs, and a look at the hot
//! tables' dead rows. All of it is safe on every
//! worker at once: a due schedule is locked while it is handled (one job per
//! due time, whoever handles it), one worker at a time purges while the
//! others skip, and a VACUUM already running makes another skip. Apart from
//! the dispatcher's tick, so that neither a claim nor the reaper ever waits
//! for a retention pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::store;
use crate::offpeak::Economy;
use crate::telemetry::metrics as m;

/// Schedules handled per pass at most; more wait for the next pass.
const SCHEDULE_BATCH: i32 = 200;
/// Jobs deleted per transaction: short transactions, short locks.
const PURGE_BATCH: i32 = 2_000;
/// A pass deletes batch after batch while full ones come back, for at most
/// this long: a busy queue finishes thousands of jobs a second, more than
/// one batch per pass could keep up with; a first pass over years of jobs
/// works through them this long at a time.
const PURGE_BUDGET: Duration = Duration::from_secs(30);
/// How often a pass runs. Each is a few index reads when there is nothing
/// to do; often, so that retention deletes a second's worth of jobs at a
/// time (the table's size follows its peak of live rows) and dead rows are
/// vacuumed before they pile up.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop`, the first pass at once.
pub async fn run(
    db: PgPool,
    job_retention: Option<Duration>,
    economy: Arc<Economy>,
    stop: CancellationToken,
) {
    loop {
        run_once(&db, job_retention, &economy).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// One pass; failures are logged and retried at the next tick.
/// `job_retention`: delete finished jobs after it (None: keep); economy
/// schedules' jobs are placed on `economy`'s windows.
pub async fn run_once(db: &PgPool, job_retention: Option<Duration>, economy: &Economy) {
    let made = store::enqueue_due_schedules_placed(db, SCHEDULE_BATCH, economy, Utc::now()).await;
    match made {
        Ok(made) => {
            for e in made.iter().filter(|e| !e.waiting) {
                tracing::info!(job_id = %e.job_id, user_id = %e.user_id, kind = %e.kind,
                    "a schedule made its job");
                metrics::counter!(m::SCHEDULED_JOBS, "kind" => e.kind.clone()).increment(1);
            }
        }
        Err(err) => tracing::warn!(error = %err, "enqueueing due schedules failed"),
    }
    if let Some(retention) = job_retention {
        purge(db, retention).await;
    }
    vacuum(db).await;
}

/// While a long retention pass runs, dead rows are looked at this often.
const VACUUM_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Dead rows the jobs tables may carry beyond [`VACUUM_DEAD_SHARE`] of
/// their live rows before a worker vacuums them.
const VACUUM_MIN_DEAD: i64 = 20_000;
const VACUUM_DEAD_SHARE: f64 = 0.2;
/// Not again within this long after any vacuum: the statistics that count
/// dead rows lag behind a vacuum by a moment.
const VACUUM_QUIET: Duration = Duration::from_secs(2);

/// Autovacuum looks at each database once a minute (`autovacuum_naptime`,
/// a server setting no table can change): a queue finishing thousands of
/// jobs a second leaves hundreds of thousands of dead rows in that time,
/// every claim walks past them, and the table grows. So the workers vacuum
/// the two hot tables themselves when dead rows pile up; the per-table
/// autovacuum settings (0014) cover the rest.
async fn vacuum(db: &PgPool) {
    let due =
        match store::tables_to_vacuum(db, VACUUM_MIN_DEAD, VACUUM_DEAD_SHARE, VACUUM_QUIET).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the tables' dead rows");
                return;
            }
        };
    for table in due {
        let started = Instant::now();
        match store::vacuum(db, table).await {
            Ok(()) => {
                tracing::info!(table, seconds = started.elapsed().as_secs_f64(), "vacuumed");
                metrics::counter!(m::TABLE_VACUUMS, "table" => table).increment(1);
            }
            Err(err) => tracing::warn!(error = %err, table, "vacuum failed"),
        }
    }
}

async fn purge(db: &PgPool, retention: Duration) {
    let started = Instant::now();
    let mut vacuum_checked = started;
    let mut total = store::Purged {
        skipped: false,
        jobs: 0,
        attempts: 0,
        idempotency_keys: 0,
        outbox: 0,
    };
    loop {
        match store::purge(db, retention, PURGE_BATCH, false).await {
            Ok(p) => {
                total.jobs += p.jobs;
                total.attempts += p.attempts;
                total.idempotency_keys += p.idempotency_keys;
                total.outbox += p.outbox;
                metrics::counter!(m::JOBS_PURGED).increment(p.jobs as u64);
                if p.skipped || p.jobs < i64::from(PURGE_BATCH) || started.elapsed() > PURGE_BUDGET
                {
                    break;
                }
                if vacuum_checked.elapsed() > VACUUM_CHECK_EVERY {
                    vacuum(db).await;
                    vacuum_checked = Instant::now();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "deleting old jobs failed");
                break;
            }
        }
    }
    if total.jobs > 0 {
        tracing::info!(
            jobs = total.jobs,
            attempts = total.attempts,
            idempotency_keys = total.idempotency_keys,
            outbox = total.outbox,
            seconds = started.elapsed().as_secs_f64(),
            "deleted jobs past the retention period"
        );
    }
}
