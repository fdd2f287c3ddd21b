//! Pipeline mode: N `weekly_base_plan` (or `meal_plan`) jobs through the real handler against
//! the mock LLM (a child process, so that this process's memory is the
//! worker's alone) with a set latency, all in flight at once on one worker.
//! Reports the drain time, time to plan, tokens and cost per plan, the
//! share of calls the mock refused past its concurrency cap, and this
//! process's peak RSS.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use uuid::Uuid;

use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::dev::mock_llm::MockStats;
use crate::jobs::meal_plan;
use crate::jobs::weekly_plan::{KIND, Layout, PlanHandler};
use crate::llm::{HttpVersion, LlmClient, LlmConfig, Prices};
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
    /// How the mock child answers: time to first token, token rate, cap.
    pub mock: MockFlags,
    /// LLM_PRICE_*: the cost per plan is estimated at these.
    pub prices: Prices,
    /// Stage 2's layouts, run one after the other in this run (side by
    /// side on the same machine), each with a fresh mock.
    pub layouts: Vec<Layout>,
}

/// The mock LLM child's flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockFlags {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub tokens_per_second: f64,
    pub ttft_ms: u64,
    pub max_concurrent: usize,
}

pub async fn run(scratch: &Scratch, run: Run, json_out: bool) -> anyhow::Result<()> {
    let mut failed = 0;
    for layout in &run.layouts {
        failed += run_one(scratch, &run, *layout, json_out).await?;
    }
    if failed > 0 {
        bail!("bench: {failed} jobs failed");
    }
    Ok(())
}

/// One layout's run; returns the jobs that failed.
async fn run_one(
    scratch: &Scratch,
    run: &Run,
    layout: Layout,
    json_out: bool,
) -> anyhow::Result<usize> {
    let Run {
        jobs,
        latency_ms,
        ref kind,
        llm_in_flight,
        http,
        mock: flags,
        prices,
        ..
    } = *run;
    let kind = kind.clone();
    reset_peak_rss();
    let port = free_port()?;
    let mut mock = start_mock(port, &flags)?;
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
            meal_plan::MealPlanHandler::new(Some(client), false, false).with_layout(layout),
        )
    } else {
        Registry::new().register(
            KIND,
            PlanHandler::new(Some(client), false).with_layout(layout),
        )
    };
    let worker = scratch.start_worker(registry, settings).await?;
    let rss_before = peak_rss_kb();

    let mut events = JobEvents::open(&scratch.options).await?;
    let profile: serde_json::Value = serde_json::from_str(PROFILE)?;
    let started = Instant::now();
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, $2 from generate_series(1, $3) returning id",
    )
    .bind(&kind)
    .bind(&profile)
    .bind(jobs as i32)
    .fetch_all(&scratch.pool)
    .await?;
    let (mut completed, mut failed) = (0usize, 0usize);
    let bound = progress_bound(&flags);
    while completed + failed < jobs {
        let batch = events.next(bound).await.with_context(|| {
            let secs = bound.as_secs();
            format!("bench: no progress for {secs} s ({completed} of {jobs} completed)")
        })?;
        for ev in batch.into_iter().filter(|e| e.day.is_none()) {
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
    let stats = mock_stats(port).await;
    let _ = mock.kill().await;
    let plans = PlanFigures::read(&scratch.pool, prices, &ids).await?;

    let report = Report {
        layout,
        flags,
        plans,
        stats,
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
    Ok(failed)
}

/// The longest the bench waits for any job to move: at a realistic token
/// rate one call of a whole max_tokens answer lies between two events.
fn progress_bound(flags: &MockFlags) -> Duration {
    let base = Duration::from_secs(120) + Duration::from_millis(flags.ttft_ms);
    if flags.tokens_per_second > 0.0 {
        let max_tokens = f64::from(LlmConfig::default().max_tokens);
        base + Duration::from_secs_f64(max_tokens / flags.tokens_per_second)
    } else {
        base
    }
}

/// Time to plan and tokens per plan, from the job and attempt rows.
struct PlanFigures {
    /// Seconds from a completed job's creation to its completion, sorted.
    time_to_plan: Vec<f64>,
    /// Seconds from its creation to its first day shown (to the plan, when
    /// no day is shown before it), sorted.
    time_to_first_day: Vec<f64>,
    /// Sums over every attempt of every job (calls, tokens).
    calls: u64,
    prompt: u64,
    completion: u64,
    cache_hit: u64,
    cost_micro_usd: u64,
}

impl PlanFigures {
    async fn read(pool: &sqlx::PgPool, prices: Prices, ids: &[Uuid]) -> anyhow::Result<Self> {
        let time_to_plan: Vec<f64> = sqlx::query_scalar(
            r"select extract(epoch from completed_at - created_at)::float8
              from plan_generation_jobs where status = 'completed' and id = any($1) order by 1",
        )
        .bind(ids)
        .fetch_all(pool)
        .await?;
        let time_to_first_day: Vec<f64> = sqlx::query_scalar(
            r"select extract(epoch from coalesce(first_day_at, completed_at) - created_at)::float8
              from plan_generation_jobs where status = 'completed' and id = any($1) order by 1",
        )
        .bind(ids)
        .fetch_all(pool)
        .await?;
        // The attempts' llm_usage as the jobs record it (UsageTotals).
        let (calls, prompt, completion, cache_hit): (i64, i64, i64, i64) = sqlx::query_as(
            r"select coalesce(sum((llm_usage->>'calls')::bigint), 0)::int8,
                     coalesce(sum((llm_usage->>'prompt_tokens')::bigint), 0)::int8,
                     coalesce(sum((llm_usage->>'completion_tokens')::bigint), 0)::int8,
                     coalesce(sum((llm_usage->>'cache_hit_tokens')::bigint), 0)::int8
              from plan_job_attempts where llm_usage is not null and job_id = any($1)",
        )
        .bind(ids)
        .fetch_one(pool)
        .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(PlanFigures {
            time_to_plan,
            time_to_first_day,
            calls: n(calls),
            prompt: n(prompt),
            completion: n(completion),
            cache_hit: n(cache_hit),
            cost_micro_usd: prices.micro_usd(clamp(prompt), clamp(completion), clamp(cache_hit)),
        })
    }

    fn json(&self, plans: usize) -> serde_json::Value {
        let per = |v: u64| v as f64 / plans.max(1) as f64;
        let share = |part: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                part as f64 / of as f64
            }
        };
        json!({
            "time_to_plan_p50_s": super::percentile(&self.time_to_plan, 50.0),
            "time_to_plan_p95_s": super::percentile(&self.time_to_plan, 95.0),
            "time_to_first_day_p50_s": super::percentile(&self.time_to_first_day, 50.0),
            "time_to_first_day_p95_s": super::percentile(&self.time_to_first_day, 95.0),
            "llm_calls_per_plan": per(self.calls),
            "output_tokens_per_plan": per(self.completion),
            "input_tokens_per_plan": per(self.prompt),
            "cache_hit_tokens_per_plan": per(self.cache_hit),
            "cache_miss_tokens_per_plan": per(self.prompt.saturating_sub(self.cache_hit)),
            "cache_hit_share": share(self.cache_hit, self.prompt),
            "cost_per_plan_usd": per(self.cost_micro_usd) / 1e6,
        })
    }
}

/// The mock's counts (`GET /_mock/stats`); zeros if it cannot say.
async fn mock_stats(port: u16) -> MockStats {
    let url = format!("http://127.0.0.1:{port}/_mock/stats");
    let fetch = async { reqwest::get(url).await?.json::<MockStats>().await };
    match tokio::time::timeout(Duration::from_secs(10), fetch).await {
        Ok(Ok(stats)) => stats,
        _ => {
            tracing::warn!("bench: the mock LLM did not report its stats");
            MockStats::default()
        }
    }
}

/// What one pipeline run measured.
struct Report {
    layout: Layout,
    flags: MockFlags,
    plans: PlanFigures,
    stats: MockStats,
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
        let (f, st) = (&self.flags, &self.stats);
        let offered = st.calls + st.refused;
        let refused_share = if offered == 0 {
            0.0
        } else {
            st.refused as f64 / offered as f64
        };
        let mut out = json!({
            "kind": self.kind, "jobs": jobs, "llm_max_in_flight": self.llm_in_flight,
            "llm_http": format!("{:?}", self.http).to_lowercase(), "completed": completed,
            "failed": failed, "mock_latency_ms": latency_ms,
            "mock_tokens_per_second": f.tokens_per_second, "mock_ttft_ms": f.ttft_ms,
            "mock_max_concurrent": f.max_concurrent,
            "seconds": elapsed.as_secs_f64(), "jobs_per_second": jobs as f64 / elapsed.as_secs_f64(),
            "mock_calls": st.calls, "mock_refused_429": st.refused, "share_429": refused_share,
            "mock_peak_in_flight": st.peak_in_flight,
            "peak_rss_mb": peak_kb as f64 / 1024.0, "rss_before_jobs_mb": self.rss_before as f64 / 1024.0,
            "layout": format!("{:?}", self.layout).to_lowercase(),
            "run_id": Uuid::new_v4(),
        });
        let plans = self.plans.json(completed);
        if let (Some(out), Some(plans)) = (out.as_object_mut(), plans.as_object()) {
            out.extend(plans.clone());
        }
        if json_out {
            println!("{out}");
        } else {
            println!(
                "pipeline ({:?} layout): {jobs} {} jobs ({completed} completed, {failed} failed) with {latency_ms} ms mock latency in {:.2} s; peak RSS {:.1} MB",
                self.layout,
                self.kind,
                elapsed.as_secs_f64(),
                peak_kb as f64 / 1024.0
            );
            let v = |k: &str| plans[k].as_f64().unwrap_or(0.0);
            println!(
                "  first day p50 {:.1} s, p95 {:.1} s",
                v("time_to_first_day_p50_s"),
                v("time_to_first_day_p95_s"),
            );
            println!(
                "  time to plan p50 {:.1} s, p95 {:.1} s; per plan {:.1} calls, {:.0} output and {:.0} input tokens ({:.0} % cache hits), ${:.5}",
                v("time_to_plan_p50_s"),
                v("time_to_plan_p95_s"),
                v("llm_calls_per_plan"),
                v("output_tokens_per_plan"),
                v("input_tokens_per_plan"),
                v("cache_hit_share") * 100.0,
                v("cost_per_plan_usd"),
            );
            println!(
                "  mock: {} calls let through, {} refused with 429 ({:.1} % of calls), at most {} in flight",
                st.calls,
                st.refused,
                refused_share * 100.0,
                st.peak_in_flight
            );
        }
    }
}

/// The mock LLM as a child process, so that this process's memory is the
/// worker's alone.
pub(super) fn start_mock(port: u16, flags: &MockFlags) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "mock-llm",
            "--port",
            &port.to_string(),
            "--latency",
            &flags.latency_ms.to_string(),
            "--jitter",
            &flags.jitter_ms.to_string(),
            "--tokens-per-second",
            &flags.tokens_per_second.to_string(),
            "--ttft-ms",
            &flags.ttft_ms.to_string(),
            "--max-concurrent",
            &flags.max_concurrent.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("bench: cannot start the mock LLM")
}

/// Starts this process's peak RSS afresh (Linux: writing 5 to clear_refs
/// resets VmHWM), so that each layout's peak is its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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
