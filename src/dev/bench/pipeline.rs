//! Pipeline mode: N `weekly_base_plan` (or `meal_plan`) jobs through the real handler against
//! the mock LLM (a child process, so that this process's memory is the
//! worker's alone) with a set latency, all in flight at once on one worker.
//! Reports the drain time and this process's peak RSS.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use uuid::Uuid;

use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::jobs::meal_plan;
use crate::jobs::weekly_plan::{KIND, PlanHandler};
use crate::llm::{HttpVersion, LlmClient, LlmConfig};
use crate::queue::Registry;
use crate::queue::events::JobEvents;
use crate::queue::store::JobStatus;

const PROFILE: &str = include_str!("../../../examples/profiles/muscle-gain-vegetarian-gym.json");

/// What to run.
pub struct Run {
    pub jobs: usize,
    pub latency_ms: u64,
    /// weekly_base_plan or meal_plan.
    pub kind: String,
    pub llm_in_flight: usize,
    pub http: HttpVersion,
}

pub async fn run(scratch: &Scratch, run: Run, json_out: bool) -> anyhow::Result<()> {
    let Run {
        jobs,
        latency_ms,
        kind,
        llm_in_flight,
        http,
    } = run;
    let port = free_port()?;
    let mut mock = start_mock(port, latency_ms, 0)?;
    wait_for_port(port).await?;

    let client = LlmClient::new(LlmConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: Some("bench".into()),
        requests_per_minute: 0,
        max_in_flight: llm_in_flight,
        http,
        ..LlmConfig::default()
    })?;
    let settings = WorkerSettings {
        worker_id: Some("bench-pipeline".into()),
        max_concurrent_jobs: jobs.max(1) as u32,
        ..WorkerSettings::default()
    };
    let registry = if kind == meal_plan::KIND {
        Registry::new().register(
            meal_plan::KIND,
            meal_plan::MealPlanHandler::new(Some(client), false, false),
        )
    } else {
        Registry::new().register(KIND, PlanHandler::new(Some(client), false))
    };
    let worker = scratch.start_worker(registry, settings).await?;
    let rss_before = peak_rss_kb();

    let mut events = JobEvents::open(&scratch.options).await?;
    let profile: serde_json::Value = serde_json::from_str(PROFILE)?;
    let started = Instant::now();
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, $2 from generate_series(1, $3)",
    )
    .bind(&kind)
    .bind(&profile)
    .bind(jobs as i32)
    .execute(&scratch.pool)
    .await?;
    let (mut completed, mut failed) = (0usize, 0usize);
    while completed + failed < jobs {
        let batch = events
            .next(Duration::from_secs(120))
            .await
            .with_context(|| {
                format!("bench: no progress for 120 s ({completed} of {jobs} completed)")
            })?;
        for ev in batch {
            match ev.status {
                JobStatus::Completed => completed += 1,
                JobStatus::Failed => failed += 1,
                _ => {}
            }
        }
    }
    let elapsed = started.elapsed();
    let peak_kb = peak_rss_kb();
    worker.shutdown().await;
    let _ = mock.kill().await;

    let report = Report {
        kind,
        jobs,
        llm_in_flight,
        http,
        completed,
        failed,
        latency_ms,
        elapsed,
        peak_kb,
        rss_before,
    };
    report.print(json_out);
    if failed > 0 {
        bail!("bench: {failed} jobs failed");
    }
    Ok(())
}

/// What one pipeline run measured.
struct Report {
    kind: String,
    jobs: usize,
    llm_in_flight: usize,
    http: HttpVersion,
    completed: usize,
    failed: usize,
    latency_ms: u64,
    elapsed: Duration,
    peak_kb: u64,
    rss_before: u64,
}

impl Report {
    fn print(&self, json_out: bool) {
        let (jobs, completed, failed, latency_ms) =
            (self.jobs, self.completed, self.failed, self.latency_ms);
        let (elapsed, peak_kb) = (self.elapsed, self.peak_kb);
        let out = json!({
            "kind": self.kind, "jobs": jobs, "llm_max_in_flight": self.llm_in_flight,
            "llm_http": format!("{:?}", self.http).to_lowercase(), "completed": completed,
            "failed": failed, "mock_latency_ms": latency_ms,
            "seconds": elapsed.as_secs_f64(), "jobs_per_second": jobs as f64 / elapsed.as_secs_f64(),
            "peak_rss_mb": peak_kb as f64 / 1024.0, "rss_before_jobs_mb": self.rss_before as f64 / 1024.0,
            "run_id": Uuid::new_v4(),
        });
        if json_out {
            println!("{out}");
        } else {
            println!(
                "pipeline: {jobs} {} jobs ({completed} completed, {failed} failed) with {latency_ms} ms mock latency in {:.2} s; peak RSS {:.1} MB",
                self.kind,
                elapsed.as_secs_f64(),
                peak_kb as f64 / 1024.0
            );
        }
    }
}

/// The mock LLM as a child process, so that this process's memory is the
/// worker's alone.
pub(super) fn start_mock(
    port: u16,
    latency_ms: u64,
    jitter_ms: u64,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "mock-llm",
            "--port",
            &port.to_string(),
            "--latency",
            &latency_ms.to_string(),
            "--jitter",
            &jitter_ms.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("bench: cannot start the mock LLM")
}

/// This process's peak resident set size (VmHWM), in KiB; 0 where unknown.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(super) async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("bench: the mock LLM did not listen on port {port} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
