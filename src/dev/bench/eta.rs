//! ETA mode: weekly_base_plan jobs through the real pipeline against the
//! mock LLM with varying delays (a latency and an exponential jitter per
//! call), arriving at random at a set share of the worker's capacity. Each
//! job's estimate is taken as the API computes it (the same functions) when
//! it is created, when it starts, at every stage it enters and every
//! `sample_ms` between, and compared with the time it actually took from
//! that moment: the share of samples whose actual remaining time falls in
//! [p10, p90] and in [p50, p90], and the error of the median.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use uuid::Uuid;

use super::percentile;
use super::pipeline::{free_port, start_mock, wait_for_port};
use super::scratch::Scratch;
use crate::api::estimate::{self, Basis, EstimateSettings, Forecast};
use crate::config::WorkerSettings;
use crate::jobs::weekly_plan::{KIND, PlanHandler};
use crate::llm::{LlmClient, LlmConfig};
use crate::queue::Registry;
use crate::queue::events::{JobEvents, WaitError};
use crate::queue::store::{self, JobStatus};

const PROFILE: &str = include_str!("../../../examples/profiles/muscle-gain-vegetarian-gym.json");

/// What to run.
pub struct Run {
    pub jobs: usize,
    /// Jobs run first so that the measured ones have history: one round of
    /// the slots at once (for the mean run time the arrivals are paced by),
    /// the rest arriving as the measured jobs do (so that the history is of
    /// the same load).
    pub warmup: usize,
    pub concurrency: u32,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Arrivals at this share of the worker's capacity (Poisson).
    pub utilization: f64,
    pub sample_ms: u64,
}

/// When in a job's life an estimate was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Phase {
    /// Pending, at its creation.
    Created,
    /// At its first stage.
    Started,
    /// Entering a later stage.
    Stage,
    /// Every `sample_ms` while pending or running.
    Tick,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Started => "started",
            Phase::Stage => "stage_entered",
            Phase::Tick => "tick",
        }
    }
}

struct Sample {
    job: Uuid,
    at: Instant,
    phase: Phase,
    forecast: Forecast,
}

/// A measured job: when it was created and, once it is, completed.
#[derive(Default)]
struct Tracked {
    /// False for the warm-up jobs that arrive like the measured ones.
    measured: bool,
    started_sampled: bool,
    last_stage: Option<String>,
    done: Option<Instant>,
    failed: bool,
}

pub async fn run(scratch: &Scratch, run: Run, json_out: bool) -> anyhow::Result<()> {
    let port = free_port()?;
    let flags = super::pipeline::MockFlags {
        latency_ms: run.latency_ms,
        jitter_ms: run.jitter_ms,
        ..Default::default()
    };
    let mut mock = start_mock(port, &flags)?;
    wait_for_port(port).await?;
    let client = LlmClient::new(LlmConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: Some("bench".into()),
        requests_per_minute: 0,
        ..LlmConfig::default()
    })?;
    let route = crate::jobs::route(Some(&client));
    let registry = Registry::new()
        .register(KIND, PlanHandler::new(Some(client), false))
        .route(KIND, route);
    let settings = WorkerSettings {
        worker_id: Some("bench-eta".into()),
        max_concurrent_jobs: run.concurrency.max(1),
        ..WorkerSettings::default()
    };
    let worker = scratch.start_worker(registry, settings).await?;
    let mut events = JobEvents::open(&scratch.options).await?;
    let profile: Value = serde_json::from_str(PROFILE)?;

    let first = run.warmup.min(run.concurrency.max(1) as usize);
    let warm = warm_up(scratch, &mut events, &profile, first).await?;
    let result = measure(scratch, &mut events, &profile, &run, warm).await;
    worker.shutdown().await;
    let _ = mock.kill().await;
    let (samples, tracked) = result?;
    let report = report(&run, warm, &samples, &tracked);
    if json_out {
        println!("{report}");
    } else {
        print_text(&report);
    }
    Ok(())
}

/// Runs `n` jobs at once to the end; returns their mean run time (seconds).
async fn warm_up(
    scratch: &Scratch,
    events: &mut JobEvents,
    profile: &Value,
    n: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for _ in 0..n {
        create(scratch, profile).await?;
    }
    let mut finished = 0;
    while finished < n {
        for ev in events.next(Duration::from_secs(120)).await? {
            if ev.status.is_final() {
                finished += 1;
            }
        }
    }
    let mean: Option<f64> = sqlx::query_scalar(
        "select avg(extract(epoch from completed_at - started_at))::float8 \
         from plan_generation_jobs where status = 'completed'",
    )
    .fetch_one(&scratch.pool)
    .await?;
    Ok(mean.unwrap_or_else(|| started.elapsed().as_secs_f64()))
}

async fn create(scratch: &Scratch, profile: &Value) -> anyhow::Result<Uuid> {
    Ok(sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         values (gen_random_uuid(), $1, $2) returning id",
    )
    .bind(KIND)
    .bind(profile)
    .fetch_one(&scratch.pool)
    .await?)
}

type Measured = (Vec<Sample>, HashMap<Uuid, Tracked>);

/// Creates `run.jobs` jobs at random (Poisson) arrivals and samples their
/// estimates until every one has finished.
async fn measure(
    scratch: &Scratch,
    events: &mut JobEvents,
    profile: &Value,
    run: &Run,
    mean_run: f64,
) -> anyhow::Result<Measured> {
    let s = EstimateSettings::default();
    let rate = f64::from(run.concurrency.max(1)) * run.utilization.clamp(0.05, 2.0) / mean_run;
    let tick = Duration::from_millis(run.sample_ms.max(50));
    // Arrivals the same in every run; the mock's delays are random.
    let mut rng = StdRng::seed_from_u64(2026);
    let mut gap = || Duration::from_secs_f64(-rng.random_range(f64::EPSILON..1.0).ln() / rate);
    let (mut samples, mut tracked) = (Vec::new(), HashMap::<Uuid, Tracked>::new());
    // The warm-up jobs not run at once arrive first, like the measured.
    let unmeasured = run.warmup.saturating_sub(run.concurrency.max(1) as usize);
    let total = run.jobs + unmeasured;
    let (mut next_arrival, mut next_tick) = (Instant::now(), Instant::now() + tick);
    let deadline =
        Instant::now() + Duration::from_secs_f64(60.0 + mean_run * (run.jobs + run.warmup) as f64);
    loop {
        let now = Instant::now();
        if tracked.len() < total && now >= next_arrival {
            let id = create(scratch, profile).await?;
            let measured = tracked.len() >= unmeasured;
            tracked.insert(
                id,
                Tracked {
                    measured,
                    ..Tracked::default()
                },
            );
            sample(scratch, id, Phase::Created, &s, &mut samples).await?;
            next_arrival = now + gap();
        }
        if now >= next_tick {
            let active: Vec<Uuid> = tracked
                .iter()
                .filter(|(_, t)| t.done.is_none())
                .map(|(id, _)| *id)
                .collect();
            for id in active {
                sample(scratch, id, Phase::Tick, &s, &mut samples).await?;
            }
            next_tick = now + tick;
        }
        if tracked.len() == total && tracked.values().all(|t| t.done.is_some()) {
            break;
        }
        if now > deadline {
            bail!("bench: the jobs did not finish in time");
        }
        let until = next_tick.min(if tracked.len() < total {
            next_arrival
        } else {
            next_tick
        });
        let wait = until.saturating_duration_since(Instant::now());
        let batch = match events.next(wait.max(Duration::from_millis(1))).await {
            Ok(batch) => batch,
            Err(WaitError::TimedOut(_)) => continue,
            Err(e) => return Err(e).context("bench: job events"),
        };
        for ev in batch {
            let Some(t) = tracked.get_mut(&ev.id) else {
                continue;
            };
            if ev.status.is_final() {
                t.done.get_or_insert_with(Instant::now);
                t.failed = ev.status != JobStatus::Completed;
                continue;
            }
            let stage = ev.progress.clone();
            if ev.status != JobStatus::Processing || stage.is_none() || stage == t.last_stage {
                continue;
            }
            let phase = if t.started_sampled {
                Phase::Stage
            } else {
                Phase::Started
            };
            t.started_sampled = true;
            t.last_stage = stage;
            sample(scratch, ev.id, phase, &s, &mut samples).await?;
        }
    }
    Ok((samples, tracked))
}

/// The job's estimate now, as its status would say it.
async fn sample(
    scratch: &Scratch,
    id: Uuid,
    phase: Phase,
    s: &EstimateSettings,
    out: &mut Vec<Sample>,
) -> anyhow::Result<()> {
    let db = &scratch.pool;
    let at = Instant::now();
    let forecast = match store::queue_position(db, id).await? {
        Some(p) => Some(estimate::for_pending_job(db, KIND, p, s).await?),
        None => estimate::for_running_job(db, id, KIND, s).await?,
    };
    if let Some(forecast) = forecast {
        out.push(Sample {
            job: id,
            at,
            phase,
            forecast,
        });
    }
    Ok(())
}

/// Coverage of one group of samples.
fn coverage(samples: &[(&Sample, f64)]) -> Value {
    let n = samples.len();
    if n == 0 {
        return json!({"samples": 0});
    }
    let share = |f: &dyn Fn(&Forecast, f64) -> bool| {
        samples.iter().filter(|(s, a)| f(&s.forecast, *a)).count() as f64 / n as f64
    };
    // The API's whole seconds, rounded up.
    let up = |x: f64| x.max(0.0).ceil();
    let mut errors: Vec<f64> = samples
        .iter()
        .map(|(s, a)| (s.forecast.p50 - a).abs())
        .collect();
    errors.sort_by(f64::total_cmp);
    let mut actual: Vec<f64> = samples.iter().map(|(_, a)| *a).collect();
    actual.sort_by(f64::total_cmp);
    json!({
        "samples": n,
        "in_p10_p90": share(&|f, a| f.p10 <= a && a <= f.p90),
        "in_p50_p90": share(&|f, a| f.p50 <= a && a <= f.p90),
        "at_most_p90": share(&|f, a| a <= f.p90),
        "below_p50": share(&|f, a| a < f.p50),
        "in_p10_p90_api_seconds": share(&|f, a| up(f.p10) <= up(a) && up(a) <= up(f.p90)),
        "in_p50_p90_api_seconds": share(&|f, a| up(f.p50) <= up(a) && up(a) <= up(f.p90)),
        "p50_abs_error_median_s": percentile(&errors, 50.0),
        "p50_abs_error_p90_s": percentile(&errors, 90.0),
        "actual_remaining_median_s": percentile(&actual, 50.0),
        "overdue_share": samples.iter().filter(|(s, _)| s.forecast.overdue).count() as f64 / n as f64,
    })
}

fn report(
    run: &Run,
    warm_mean: f64,
    samples: &[Sample],
    tracked: &HashMap<Uuid, Tracked>,
) -> Value {
    let ok = |id: &Uuid| {
        tracked
            .get(id)
            .is_some_and(|t| t.measured && !t.failed && t.done.is_some())
    };
    // Each sample with the time the job actually still took.
    let measured: Vec<(&Sample, f64)> = samples
        .iter()
        .filter(|s| ok(&s.job))
        .filter_map(|s| {
            let done = tracked.get(&s.job)?.done?;
            Some((s, done.saturating_duration_since(s.at).as_secs_f64()))
        })
        .collect();
    let mut phases = serde_json::Map::new();
    for phase in [Phase::Created, Phase::Started, Phase::Stage, Phase::Tick] {
        let group: Vec<(&Sample, f64)> = measured
            .iter()
            .filter(|(s, _)| s.phase == phase)
            .copied()
            .collect();
        phases.insert(phase.name().into(), coverage(&group));
    }
    let mut bases: HashMap<&'static str, usize> = HashMap::new();
    for (s, _) in &measured {
        *bases.entry(basis_name(s.forecast.basis)).or_default() += 1;
    }
    let failed = tracked.values().filter(|t| t.measured && t.failed).count();
    json!({
        "kind": KIND, "jobs": run.jobs, "warmup_jobs": run.warmup, "failed": failed,
        "concurrency": run.concurrency, "mock_latency_ms": run.latency_ms,
        "mock_jitter_mean_ms": run.jitter_ms, "utilization": run.utilization,
        "sample_ms": run.sample_ms, "warmup_mean_run_s": warm_mean,
        "all": coverage(&measured), "by_phase": phases, "bases": bases,
    })
}

fn basis_name(b: Basis) -> &'static str {
    match b {
        Basis::KindSourceModel => "kind_source_model",
        Basis::KindSource => "kind_source",
        Basis::Kind => "kind",
        Basis::KindRunTimes => "kind_run_times",
        Basis::Default => "default",
    }
}

fn print_text(r: &Value) {
    println!(
        "eta: {} {} jobs ({} failed) after {} warm-up jobs, {} slots, mock {} ms + jitter mean {} ms, utilization {}",
        r["jobs"],
        r["kind"].as_str().unwrap_or(""),
        r["failed"],
        r["warmup_jobs"],
        r["concurrency"],
        r["mock_latency_ms"],
        r["mock_jitter_mean_ms"],
        r["utilization"]
    );
    let line = |name: &str, c: &Value| {
        println!(
            "  {name:<14} {:>6} samples: actual in [p10,p90] {:>5.1} %, in [p50,p90] {:>5.1} %, <= p90 {:>5.1} %; |p50 - actual| median {:.2} s, p90 {:.2} s",
            c["samples"],
            c["in_p10_p90"].as_f64().unwrap_or(0.0) * 100.0,
            c["in_p50_p90"].as_f64().unwrap_or(0.0) * 100.0,
            c["at_most_p90"].as_f64().unwrap_or(0.0) * 100.0,
            c["p50_abs_error_median_s"].as_f64().unwrap_or(0.0),
            c["p50_abs_error_p90_s"].as_f64().unwrap_or(0.0),
        );
    };
    line("all", &r["all"]);
    if let Some(phases) = r["by_phase"].as_object() {
        for (name, c) in phases {
            line(name, c);
        }
    }
    println!("  bases: {}", r["bases"]);
}
