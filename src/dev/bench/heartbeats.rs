//! Heartbeats: N jobs held by one worker that heartbeats every 0.5 s for a
//! set time; the share of the job table's row updates in that time that
//! were HOT (no new index entries), from `pg_stat_user_tables`.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::BENCH_KIND;
use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::queue::{Done, JobContext, Registry};

async fn counters(scratch: &Scratch) -> anyhow::Result<(i64, i64)> {
    // The view is a snapshot per transaction: start from a fresh one.
    sqlx::query("select pg_stat_clear_snapshot()")
        .execute(&scratch.pool)
        .await?;
    Ok(sqlx::query_as(
        "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname = 'plan_generation_jobs'",
    )
    .fetch_one(&scratch.pool)
    .await?)
}

pub async fn run(
    scratch: &Scratch,
    jobs: usize,
    seconds: f64,
    json_out: bool,
) -> anyhow::Result<()> {
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let registry = Registry::new().register(BENCH_KIND, move |ctx: JobContext| {
        let _ = started_tx.send(());
        async move {
            ctx.cancel.cancelled().await;
            Ok(Done::Complete)
        }
    });
    let settings = WorkerSettings {
        worker_id: Some("bench-heartbeats".into()),
        max_concurrent_jobs: jobs as u32,
        heartbeat_seconds: Some(0.5),
        ..WorkerSettings::default()
    };
    let worker = scratch.start_worker(registry, settings).await?;
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, $2)",
    )
    .bind(BENCH_KIND)
    .bind(jobs as i32)
    .execute(&scratch.pool)
    .await?;
    for _ in 0..jobs {
        tokio::time::timeout(Duration::from_secs(30), started.recv())
            .await
            .context("bench: the jobs did not all start within 30 s")?;
    }
    // Let the claims' own updates reach the statistics first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = counters(scratch).await?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    // Idle backends report their statistics about once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = counters(scratch).await?;
    worker.shutdown().await;
    let (updated, hot) = (after.0 - before.0, after.1 - before.1);
    let share = hot as f64 / updated.max(1) as f64;
    if json_out {
        println!(
            "{}",
            json!({"jobs": jobs, "seconds": seconds, "updates": updated, "hot_updates": hot, "hot_share": share})
        );
    } else {
        println!(
            "heartbeats: {jobs} jobs for {seconds} s: {updated} row updates, {hot} HOT = {:.1} %",
            share * 100.0
        );
    }
    Ok(())
}
