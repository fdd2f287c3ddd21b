//! `bench console`: the operators' console over a job table of a given size
//! (a month of history: mostly completed, some failed and cancelled, a
//! last hour of traffic, a backlog, jobs running on two workers). Every
//! page is fetched over HTTP through the real handlers, as a signed-in
//! operator would, and timed end to end; the overview's own figure (its
//! reads, the footer's "Read in") is reported beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::percentile;
use super::scratch::Scratch;
use crate::ops::console::Console;
use crate::ops::{self, OpsState};

const TOKEN: &str = "bench-console-token-0123456789";
/// Finished in the last hour, running, and pending (a tenth of them due
/// later: retries in their backoff).
const LAST_HOUR: i64 = 3_000;
const RUNNING: i64 = 32;
const PENDING: i64 = 1_000;

pub async fn run(
    scratch: &Scratch,
    jobs: usize,
    rounds: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let t = Instant::now();
    fill(scratch, jobs as i64).await?;
    let fill_seconds = t.elapsed().as_secs_f64();
    let base = serve(scratch).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&http, &base).await?;
    let failed_job: uuid::Uuid = sqlx::query_scalar(
        "select id from plan_generation_jobs where status = 'failed' order by created_at desc limit 1",
    )
    .fetch_one(&scratch.pool)
    .await?;
    let pages = [
        ("overview", "/ops/".to_owned()),
        ("jobs, newest", "/ops/jobs".to_owned()),
        ("jobs, failed", "/ops/jobs?status=failed".to_owned()),
        (
            "jobs, failed by error code",
            "/ops/jobs?status=failed&error_code=AI_TIMEOUT".to_owned(),
        ),
        ("job", format!("/ops/jobs/{failed_job}")),
        ("workers", "/ops/workers".to_owned()),
        ("kinds", "/ops/kinds".to_owned()),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        // One unmeasured fetch: the pool's connections and the plans warm up.
        fetch(&http, &base, &cookie, path).await?;
        let mut took = Vec::with_capacity(rounds);
        let mut reads = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let body = fetch(&http, &base, &cookie, path).await?;
            took.push(started.elapsed().as_secs_f64() * 1000.0);
            if let Some(ms) = read_ms(&body) {
                reads.push(ms);
            }
        }
        took.sort_by(f64::total_cmp);
        reads.sort_by(f64::total_cmp);
        results.push(json!({
            "page": name, "path": path,
            "p50_ms": round(percentile(&took, 50.0)), "p95_ms": round(percentile(&took, 95.0)),
            "max_ms": round(took.last().copied().unwrap_or(0.0)),
            "reads_p50_ms": (!reads.is_empty()).then(|| round(percentile(&reads, 50.0))),
        }));
    }
    let out = json!({
        "bench": "console", "jobs": jobs, "rounds": rounds,
        "fill_seconds": round(fill_seconds), "pages": results,
    });
    if json_out {
        println!("{out}");
    } else {
        println!(
            "console over {jobs} jobs (filled in {fill_seconds:.1} s), {rounds} fetches per page:"
        );
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>14}",
            "page", "p50 ms", "p95 ms", "max ms", "reads p50 ms"
        );
        for r in out["pages"].as_array().into_iter().flatten() {
            println!(
                "{:<28} {:>9} {:>9} {:>9} {:>14}",
                r["page"].as_str().unwrap_or(""),
                r["p50_ms"],
                r["p95_ms"],
                r["max_ms"],
                r["reads_p50_ms"]
                    .as_f64()
                    .map_or("-".into(), |v| v.to_string())
            );
        }
    }
    Ok(())
}

/// The job table: `jobs` rows in all, then VACUUM ANALYZE as autovacuum
/// would have done long before a month of history.
async fn fill(scratch: &Scratch, jobs: i64) -> anyhow::Result<()> {
    let db = &scratch.pool;
    let history = (jobs - LAST_HOUR - RUNNING - PENDING).max(0);
    // A month of finished jobs: 90 % completed, 7 % failed over four
    // codes, 3 % cancelled; three weekly plans to one meal plan. Inserted
    // in slices, each its own transaction, as traffic would have.
    let slice = 200_000;
    let mut done = 0;
    while done < history {
        let n = slice.min(history - done);
        sqlx::query(FINISHED_SQL)
            .bind(n)
            .bind("30 days")
            .execute(db)
            .await
            .context("bench console: filling the history")?;
        done += n;
    }
    sqlx::query(FINISHED_SQL)
        .bind(LAST_HOUR.min(jobs))
        .bind("1 hour")
        .execute(db)
        .await?;
    for (i, id) in ["bench-console-1", "bench-console-2"].iter().enumerate() {
        sqlx::query(
            "insert into plan_workers (id, host, pid, version, kinds, concurrency, lock_key) \
             values ($1, 'bench', $2, 'bench', array['weekly_base_plan', 'meal_plan'], 16, \
                     nextval('plan_worker_lock_keys'))",
        )
        .bind(id)
        .bind(i as i32 + 1)
        .execute(db)
        .await?;
    }
    sqlx::query(
        r"insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, created_at,
              run_after, started_at, worker_id, lease_token, locked_until, heartbeat_at,
              attempt_count, progress)
          select gen_random_uuid(), 'weekly_base_plan', 'processing', '{}', now() - interval '1 minute',
                 now() - interval '1 minute', now() - interval '30 seconds',
                 case when g % 2 = 0 then 'bench-console-1' else 'bench-console-2' end,
                 gen_random_uuid(), now() + interval '1 hour', now(), 1, 'stage1'
          from generate_series(1, $1) g",
    )
    .bind(RUNNING)
    .execute(db)
    .await?;
    sqlx::query(
        r"insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, created_at, run_after)
          select gen_random_uuid(), case when g % 4 = 0 then 'meal_plan' else 'weekly_base_plan' end,
                 'pending', '{}', now() - interval '5 minutes',
                 now() + case when g % 10 = 0 then interval '1 minute' else -random() * interval '5 minutes' end
          from generate_series(1, $1) g",
    )
    .bind(PENDING)
    .execute(db)
    .await?;
    sqlx::query("vacuum (analyze) plan_generation_jobs")
        .execute(db)
        .await?;
    Ok(())
}

/// `$1` finished jobs created over the last `$2` (an interval's text),
/// ended 40 s after.
const FINISHED_SQL: &str = r"
insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, created_at, run_after,
    started_at, completed_at, updated_at, error_code, error_message, attempt_count)
select gen_random_uuid(), case when g % 4 = 0 then 'meal_plan' else 'weekly_base_plan' end,
       status, '{}', at, at, at + interval '5 seconds', at + interval '40 seconds',
       at + interval '40 seconds',
       case status when 'failed' then (array['AI_TIMEOUT', 'AI_QUOTA_EXCEEDED', 'JSON_PARSE_ERROR',
                                            'VALIDATION_FAILED'])[1 + g % 4]
                   when 'cancelled' then 'CANCELLED' end,
       case when status <> 'completed' then 'It did not work out.' end,
       1
from (
    -- In the select list, so that random() is drawn for every row.
    select g, now() - interval '40 seconds' - random() * $2::text::interval as at,
           case when g % 100 < 7 then 'failed' when g % 100 < 10 then 'cancelled'
                else 'completed' end::plan_job_status as status
    from generate_series(1, $1) g
) r";

async fn serve(scratch: &Scratch) -> anyhow::Result<String> {
    let console = Console::new(
        vec![("bench".into(), TOKEN.into())],
        Duration::from_secs(3600),
        false,
    );
    let app = ops::router(OpsState {
        db: scratch.pool.clone(),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        listener: None,
        push: None,
        console: Arc::new(console),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/ops/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await?;
    let Some(cookie) = r.headers().get("set-cookie") else {
        bail!("bench console: sign-in refused ({})", r.status());
    };
    Ok(cookie.to_str()?.split(';').next().unwrap_or("").to_owned())
}

async fn fetch(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
) -> anyhow::Result<String> {
    let r = http
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    if !status.is_success() {
        bail!("bench console: {path} answered {status}: {body}");
    }
    Ok(body)
}

/// The overview's "Read in X ms." figure.
fn read_ms(body: &str) -> Option<f64> {
    let at = body.find("Read in ")? + "Read in ".len();
    body[at..].split(' ').next()?.parse().ok()
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
