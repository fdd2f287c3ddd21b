//! Pickup latency: one job at a time, from the insert's commit (the moment
//! the insert call returns) to the start of its handler.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::scratch::Scratch;
use super::{BENCH_KIND, percentile};
use crate::config::WorkerSettings;
use crate::queue::store::{self, NewJob};
use crate::queue::{Done, JobContext, Registry};

const WARMUP: usize = 20;

pub async fn run(scratch: &Scratch, jobs: usize, json_out: bool) -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Uuid, Instant)>();
    let registry = Registry::new().register(BENCH_KIND, move |ctx: JobContext| {
        let _ = tx.send((ctx.id(), Instant::now()));
        async { Ok(Done::Complete) }
    });
    let settings = WorkerSettings {
        worker_id: Some("bench-latency".into()),
        ..WorkerSettings::default()
    };
    let worker = scratch.start_worker(registry, settings).await?;

    let mut samples = Vec::with_capacity(jobs);
    for i in 0..WARMUP + jobs {
        let job = NewJob {
            user_id: Uuid::new_v4(),
            kind: BENCH_KIND.into(),
            profile_snapshot: json!({}),
            max_retries: 0,
            priority: 0,
            trace_context: None,
            run_after: None,
        };
        let created = store::create_job(&scratch.pool, &job).await?;
        let committed = Instant::now();
        let (id, started) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("bench: a job did not start within 10 s")?
            .context("bench: handler gone")?;
        if id != created.job_id {
            bail!("bench: expected job {} to start, got {id}", created.job_id);
        }
        if i >= WARMUP {
            // The handler can start before the client has read the commit's
            // acknowledgement; that counts as zero.
            samples.push(started.saturating_duration_since(committed).as_secs_f64() * 1000.0);
        }
    }
    worker.shutdown().await;

    samples.sort_by(f64::total_cmp);
    let out = json!({
        "jobs": jobs,
        "p50_ms": percentile(&samples, 50.0),
        "p95_ms": percentile(&samples, 95.0),
        "p99_ms": percentile(&samples, 99.0),
        "max_ms": samples.last().copied().unwrap_or(0.0),
    });
    if json_out {
        println!("{out}");
    } else {
        println!(
            "latency over {jobs} jobs (insert commit -> handler start): p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            out["p50_ms"].as_f64().unwrap_or(0.0),
            out["p95_ms"].as_f64().unwrap_or(0.0),
            out["p99_ms"].as_f64().unwrap_or(0.0),
            out["max_ms"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(())
}
