//! Drain throughput: N jobs inserted in one statement, drained by W
//! in-process workers with C slots each, timed from the insert's commit to
//! the last completion's commit.

use std::time::{Duration, Instant};

use serde_json::json;

use super::BENCH_KIND;
use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::queue::events::JobEvents;
use crate::queue::store::JobStatus;
use crate::queue::{Done, JobContext, Registry};

pub async fn run(
    scratch: &Scratch,
    jobs: usize,
    workers: usize,
    concurrency: u32,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut handles = Vec::new();
    for w in 0..workers.max(1) {
        let registry =
            Registry::new().register(BENCH_KIND, |_: JobContext| async { Ok(Done::Complete) });
        let settings = WorkerSettings {
            worker_id: Some(format!("bench-throughput-{w}")),
            max_concurrent_jobs: concurrency,
            ..WorkerSettings::default()
        };
        handles.push(scratch.start_worker(registry, settings).await?);
    }

    // Completions are counted from the job events (one notification per
    // 50 jobs): polling the table would compete with the workers.
    let mut events = JobEvents::open(&scratch.options).await?;
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, $2)",
    )
    .bind(BENCH_KIND)
    .bind(jobs as i32)
    .execute(&scratch.pool)
    .await?;
    let started = Instant::now();
    let mut completed = 0usize;
    while completed < jobs {
        let batch = events.next(Duration::from_secs(60)).await.map_err(|_| {
            anyhow::anyhow!("bench: no progress for 60 s ({completed} of {jobs} completed)")
        })?;
        completed += batch
            .iter()
            .filter(|e| e.status == JobStatus::Completed)
            .count();
    }
    let elapsed = started.elapsed();
    for h in handles {
        h.shutdown().await;
    }
    let per_second = jobs as f64 / elapsed.as_secs_f64();
    if json_out {
        println!(
            "{}",
            json!({"jobs": jobs, "workers": workers, "concurrency": concurrency,
                   "seconds": elapsed.as_secs_f64(), "jobs_per_second": per_second})
        );
    } else {
        println!(
            "throughput: {jobs} jobs drained by {workers} workers x {concurrency} slots in {:.3} s = {per_second:.0} jobs/s",
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
