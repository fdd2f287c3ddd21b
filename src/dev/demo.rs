//! `plan-worker demo`: enqueue the sample profiles on DATABASE_URL, run them
//! through an in-process worker (the offline generator unless an LLM key is
//! set), show each job's status live, then say where to look.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use uuid::Uuid;

use crate::config::{DbSettings, LlmSettings, WorkerSettings};
use crate::jobs::{intake, registry};
use crate::ops::{self, OpsState};
use crate::queue::Worker;
use crate::queue::events::JobEvents;
use crate::queue::store::JobStatus;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Jobs to run (the sample profiles, repeated).
    #[arg(long, default_value_t = 5)]
    pub jobs: usize,
    /// Address of /metrics during the demo.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,
    #[command(flatten)]
    pub llm: LlmSettings,
    #[command(flatten)]
    pub images: crate::images::settings::UnsplashSettings,
}

/// The sample profiles shipped in examples/profiles (valid ones).
const SAMPLES: [(&str, &str); 5] = [
    (
        "fat-loss-vegan-home",
        include_str!("../../examples/profiles/fat-loss-vegan-home.json"),
    ),
    (
        "maintenance-non-vegetarian-athlete",
        include_str!("../../examples/profiles/maintenance-non-vegetarian-athlete.json"),
    ),
    (
        "muscle-gain-vegetarian-gym",
        include_str!("../../examples/profiles/muscle-gain-vegetarian-gym.json"),
    ),
    (
        "recomposition-eggitarian-bodyweight",
        include_str!("../../examples/profiles/recomposition-eggitarian-bodyweight.json"),
    ),
    (
        "teen-muscle-gain-kettlebell",
        include_str!("../../examples/profiles/teen-muscle-gain-kettlebell.json"),
    ),
];

struct Row {
    profile: String,
    status: JobStatus,
    progress: String,
}

pub async fn demo(db: &DbSettings, args: DemoArgs) -> anyhow::Result<()> {
    let metrics = crate::telemetry::metrics::install();
    let pool = crate::db::pool(db, 10).await?;
    crate::db::migrate(&pool)
        .await
        .context("migrations failed")?;
    let listen = crate::db::options(db.listen_url(), "LISTEN_DATABASE_URL")?;
    let settings = WorkerSettings {
        worker_id: Some(format!("demo-{}", std::process::id())),
        ..WorkerSettings::default()
    };
    let worker = Worker::new(
        pool.clone(),
        listen.clone(),
        registry(&args.llm, &args.images)?,
        settings,
    )?
    .spawn();
    let ops = ops::router(OpsState {
        db: pool.clone(),
        metrics,
        listener: Some(worker.listener.clone()),
        push: None,
        console: ops::console::Console::disabled(),
    });
    let ops_listener = tokio::net::TcpListener::bind(&args.metrics_addr)
        .await
        .with_context(|| format!("metrics-addr: cannot listen on {}", args.metrics_addr))?;
    let ops_task = tokio::spawn(async move { axum::serve(ops_listener, ops).await });
    if !worker.wait_listening(Duration::from_secs(10)).await {
        bail!("the worker did not start listening on LISTEN_DATABASE_URL");
    }

    let mut events = JobEvents::open(&listen).await?;
    let mut rows = enqueue_samples(&pool, args.jobs).await?;
    let started = Instant::now();
    follow(&mut events, &mut rows).await?;
    let elapsed = started.elapsed();
    worker.shutdown().await;
    ops_task.abort();
    let done = rows
        .values()
        .filter(|r| r.status == JobStatus::Completed)
        .count();
    println!(
        "\n{done} of {} plans completed in {:.2} s.\n",
        rows.len(),
        elapsed.as_secs_f64()
    );
    where_to_look(&rows, &args.metrics_addr);
    Ok(())
}

/// One job per sample profile, cycling, for `n` jobs.
async fn enqueue_samples(pool: &sqlx::PgPool, n: usize) -> anyhow::Result<BTreeMap<Uuid, Row>> {
    let mut rows = BTreeMap::new();
    // Weekly plans and meal plans in turn.
    for (i, (name, text)) in SAMPLES.iter().cycle().take(n).enumerate() {
        let snapshot = serde_json::from_str(text)?;
        let (job, label) = if i % 2 == 0 {
            (
                intake::weekly_plan_job(Uuid::new_v4(), snapshot),
                (*name).to_owned(),
            )
        } else {
            (
                intake::meal_plan_job(Uuid::new_v4(), snapshot),
                format!("{name} [meals]"),
            )
        };
        let created = intake::create_job(pool, &job).await?;
        rows.insert(
            created.job_id,
            Row {
                profile: label,
                status: JobStatus::Pending,
                progress: String::new(),
            },
        );
    }
    Ok(rows)
}

/// Shows the jobs' events as they come until every job is final.
async fn follow(events: &mut JobEvents, rows: &mut BTreeMap<Uuid, Row>) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    render(rows, tty, true);
    while rows.values().any(|r| !r.status.is_final()) {
        let batch = events
            .next(Duration::from_secs(60))
            .await
            .context("no progress for 60 s")?;
        let mut changed = false;
        for ev in batch {
            if let Some(row) = rows.get_mut(&ev.id) {
                row.status = ev.status;
                row.progress = ev.progress.unwrap_or_default();
                changed = true;
                if !tty {
                    println!(
                        "{}  {:<38} {:<10} {}",
                        ev.id,
                        row.profile,
                        row.status.as_str(),
                        row.progress
                    );
                }
            }
        }
        if changed && tty {
            render(rows, tty, false);
        }
    }
    Ok(())
}

fn where_to_look(rows: &BTreeMap<Uuid, Row>, metrics_addr: &str) {
    println!("Where to look:");
    println!("  plan-worker jobs list                  the jobs, newest first");
    if let Some(id) = rows.keys().next() {
        println!("  plan-worker jobs show {id}   one job and its attempts");
    }
    println!("  psql: select user_id, version, source from weekly_base_plans;");
    println!("  psql: select user_id, version, source, images from meal_plans;");
    println!(
        "  http://{}/metrics   (served while `plan-worker run` runs)",
        metrics_addr
    );
    println!(
        "  docker compose up: Grafana http://localhost:3000, Prometheus http://localhost:9090, Jaeger http://localhost:16686"
    );
}

/// Redraws the table in place on a terminal; prints it once otherwise.
fn render(rows: &BTreeMap<Uuid, Row>, tty: bool, first: bool) {
    let mut out = std::io::stdout().lock();
    if tty && !first {
        // Move the cursor up over the previous table (header + rows).
        let _ = write!(out, "\x1b[{}A", rows.len() + 1);
    }
    if tty || first {
        // Erase each line before drawing it, on a terminal only: piped, the
        // table is plain text.
        let erase = if tty { "\x1b[2K" } else { "" };
        let _ = writeln!(
            out,
            "{erase}{:<36}  {:<38} {:<10} progress",
            "job", "profile", "status"
        );
        for (id, r) in rows {
            let _ = writeln!(
                out,
                "{erase}{id}  {:<38} {:<10} {}",
                r.profile,
                r.status.as_str(),
                r.progress
            );
        }
    }
    let _ = out.flush();
}
