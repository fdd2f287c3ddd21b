//! Drain throughput: N jobs inserted in one statement, drained by W
//! in-process workers with C slots each, timed from the insert's commit to
//! the last completion's commit.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::BENCH_KIND;
use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::queue::{Done, JobContext, Registry, Worker};

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
        let handle = Worker::new(
            scratch.pool.clone(),
            scratch.options.clone(),
            registry,
            settings,
        )?
        .spawn();
        if !handle.wait_listening(Duration::from_secs(10)).await {
            bail!("bench: worker {w} did not start listening");
        }
        handles.push(handle);
    }

    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, $2)",
    )
    .bind(BENCH_KIND)
    .bind(jobs as i32)
    .execute(&scratch.pool)
    .await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from plan_generation_jobs where status = 'completed'",
        )
        .fetch_one(&scratch.pool)
        .await?;
        if done as usize >= jobs {
            break;
        }
        if Instant::now() > deadline {
            bail!("bench: only {done} of {jobs} jobs completed within 600 s");
        }
        // Polling costs the database a count per round: keep it coarse.
        tokio::time::sleep(Duration::from_millis(10)).await;
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
