//! A long drain with retention on: jobs are fed in chunks to keep a steady
//! backlog (a million jobs inserted at once would be a different test: the
//! table's size would be set by the insert), drained by in-process workers
//! whose upkeep deletes finished jobs after `retention`, and sampled at
//! intervals: jobs/s in each interval, the hot tables' sizes, dead tuples and
//! autovacuum runs. Goals: throughput flat within 20 % over the run, and
//! the jobs table no larger at the end than after its first 100,000 jobs.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use sqlx::{FromRow, PgPool};

use super::BENCH_KIND;
use super::scratch::Scratch;
use crate::config::WorkerSettings;
use crate::queue::events::JobEvents;
use crate::queue::store::JobStatus;
use crate::queue::{Done, JobContext, Registry};

/// Jobs per insert statement.
const CHUNK: usize = 5_000;
/// The size mark of the goal: the jobs table after this many jobs.
const FIRST_MARK: usize = 100_000;

pub struct Soak {
    pub jobs: usize,
    pub workers: usize,
    pub concurrency: u32,
    /// Jobs inserted but not finished, kept at about this many.
    pub backlog: usize,
    pub retention: Duration,
    pub samples: usize,
}

/// One table's state at a sample.
#[derive(Debug, Clone, FromRow, Serialize)]
struct TableState {
    table: String,
    total_bytes: i64,
    heap_bytes: i64,
    index_bytes: i64,
    live_rows: i64,
    dead_rows: i64,
    autovacuums: i64,
    autoanalyzes: i64,
}

#[derive(Debug, Clone, Serialize)]
struct Sample {
    completed: usize,
    seconds: f64,
    /// Jobs/s since the previous sample.
    jobs_per_second: f64,
    tables: Vec<TableState>,
}

const TABLES: [&str; 3] = [
    "plan_generation_jobs",
    "plan_job_attempts",
    "notification_outbox",
];

async fn tables(db: &PgPool) -> anyhow::Result<Vec<TableState>> {
    Ok(sqlx::query_as::<_, TableState>(
        r"select c.relname::text as table, pg_total_relation_size(c.oid) as total_bytes,
                 pg_relation_size(c.oid) as heap_bytes, pg_indexes_size(c.oid) as index_bytes,
                 coalesce(s.n_live_tup, 0) as live_rows, coalesce(s.n_dead_tup, 0) as dead_rows,
                 coalesce(s.autovacuum_count, 0) as autovacuums,
                 coalesce(s.autoanalyze_count, 0) as autoanalyzes
          from pg_class c left join pg_stat_user_tables s on s.relid = c.oid
          where c.relname = any ($1) and c.relkind = 'r'
            and c.relnamespace = current_schema()::regnamespace
          order by array_position($1, c.relname::text)",
    )
    .bind(&TABLES[..])
    .fetch_all(db)
    .await?)
}

async fn insert_chunk(db: &PgPool, n: usize) -> anyhow::Result<()> {
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, $2)",
    )
    .bind(BENCH_KIND)
    .bind(n as i32)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn run(scratch: &Scratch, soak: Soak, json_out: bool) -> anyhow::Result<()> {
    let mut handles = Vec::new();
    for w in 0..soak.workers.max(1) {
        let registry =
            Registry::new().register(BENCH_KIND, |_: JobContext| async { Ok(Done::Complete) });
        let settings = WorkerSettings {
            worker_id: Some(format!("bench-soak-{w}")),
            max_concurrent_jobs: soak.concurrency,
            job_retention_days: soak.retention.as_secs_f64() / 86_400.0,
            ..WorkerSettings::default()
        };
        handles.push(scratch.start_worker(registry, settings).await?);
    }

    let db = &scratch.pool;
    let mut events = JobEvents::open(&scratch.options).await?;
    let every = (soak.jobs / soak.samples.max(1)).max(1);
    let first_mark = FIRST_MARK.min(soak.jobs / 10).max(1);
    let mut samples = vec![Sample {
        completed: 0,
        seconds: 0.0,
        jobs_per_second: 0.0,
        tables: tables(db).await?,
    }];
    let mut at_first_mark: Option<Vec<TableState>> = None;
    let started = Instant::now();
    let (mut inserted, mut completed) = (0usize, 0usize);
    let (mut last_at, mut last_done) = (started, 0usize);
    while completed < soak.jobs {
        while inserted < soak.jobs && inserted - completed < soak.backlog {
            let n = CHUNK.min(soak.jobs - inserted);
            insert_chunk(db, n).await?;
            inserted += n;
        }
        let batch = events.next(Duration::from_secs(60)).await.map_err(|_| {
            anyhow::anyhow!(
                "bench: no progress for 60 s ({completed} of {} completed)",
                soak.jobs
            )
        })?;
        completed += batch
            .iter()
            .filter(|e| e.status == JobStatus::Completed)
            .count();
        if at_first_mark.is_none() && completed >= first_mark {
            at_first_mark = Some(tables(db).await?);
        }
        if completed - last_done >= every || completed >= soak.jobs {
            let now = Instant::now();
            samples.push(Sample {
                completed,
                seconds: (now - started).as_secs_f64(),
                jobs_per_second: (completed - last_done) as f64 / (now - last_at).as_secs_f64(),
                tables: tables(db).await?,
            });
            (last_at, last_done) = (now, completed);
        }
    }
    let elapsed = started.elapsed();
    for h in handles {
        h.shutdown().await;
    }

    let report = Report::new(&samples, at_first_mark.unwrap_or_default());
    if json_out {
        println!(
            "{}",
            json!({"jobs": soak.jobs, "workers": soak.workers, "concurrency": soak.concurrency,
                   "backlog": soak.backlog, "retention_seconds": soak.retention.as_secs_f64(),
                   "seconds": elapsed.as_secs_f64(),
                   "jobs_per_second": soak.jobs as f64 / elapsed.as_secs_f64(),
                   "flatness": report.flatness, "first_mark_jobs": first_mark,
                   "jobs_table_bytes_at_first_mark": report.jobs_bytes_at_mark,
                   "jobs_table_bytes_at_end": report.jobs_bytes_at_end,
                   "goals_met": {"flat_within_20_percent": report.flat(),
                                 "no_larger_than_at_first_mark": report.no_larger()},
                   "samples": samples})
        );
    } else {
        print_table(&samples);
        println!(
            "soak: {} jobs in {:.1} s = {:.0} jobs/s; intervals spread {:.0} % around their median \
             (goal <= 20 %); jobs table {} at {first_mark} jobs, {} at the end (goal: no larger)",
            soak.jobs,
            elapsed.as_secs_f64(),
            soak.jobs as f64 / elapsed.as_secs_f64(),
            report.flatness * 100.0,
            mib(report.jobs_bytes_at_mark),
            mib(report.jobs_bytes_at_end),
        );
    }
    Ok(())
}

struct Report {
    /// The largest distance of an interval's jobs/s from the median, as a
    /// share of the median; the first interval (warm-up) and the last
    /// (a partial one, draining the backlog) left out when there are more.
    flatness: f64,
    jobs_bytes_at_mark: i64,
    jobs_bytes_at_end: i64,
}

impl Report {
    fn new(samples: &[Sample], at_mark: Vec<TableState>) -> Self {
        let rates: Vec<f64> = samples.iter().skip(1).map(|s| s.jobs_per_second).collect();
        let steady = if rates.len() > 3 {
            &rates[1..rates.len() - 1]
        } else {
            &rates[..]
        };
        let jobs_bytes = |t: &[TableState]| {
            t.iter()
                .find(|t| t.table == TABLES[0])
                .map_or(0, |t| t.total_bytes)
        };
        Self {
            flatness: spread(steady),
            jobs_bytes_at_mark: jobs_bytes(&at_mark),
            jobs_bytes_at_end: samples.last().map_or(0, |s| jobs_bytes(&s.tables)),
        }
    }
    fn flat(&self) -> bool {
        self.flatness <= 0.20
    }
    fn no_larger(&self) -> bool {
        self.jobs_bytes_at_end <= self.jobs_bytes_at_mark
    }
}

/// max |x - median| / median.
fn spread(rates: &[f64]) -> f64 {
    if rates.is_empty() {
        return 0.0;
    }
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = super::percentile(&sorted, 50.0);
    if median <= 0.0 {
        return 0.0;
    }
    sorted
        .iter()
        .map(|r| (r - median).abs() / median)
        .fold(0.0, f64::max)
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_table(samples: &[Sample]) {
    println!(
        "{:>9} {:>7} {:>8} | {:>10} {:>10} {:>9} {:>9} {:>4} | {:>10} {:>9}",
        "completed",
        "s",
        "jobs/s",
        "jobs MiB",
        "index MiB",
        "live",
        "dead",
        "av",
        "attempts",
        "dead"
    );
    for s in samples {
        let (j, a) = (&s.tables[0], &s.tables[1]);
        println!(
            "{:>9} {:>7.1} {:>8.0} | {:>10.1} {:>10.1} {:>9} {:>9} {:>4} | {:>10.1} {:>9}",
            s.completed,
            s.seconds,
            s.jobs_per_second,
            j.total_bytes as f64 / 1048576.0,
            j.index_bytes as f64 / 1048576.0,
            j.live_rows,
            j.dead_rows,
            j.autovacuums,
            a.total_bytes as f64 / 1048576.0,
            a.dead_rows,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_the_widest_distance_from_the_median() {
        assert_eq!(spread(&[100.0, 100.0, 100.0]), 0.0);
        assert!((spread(&[90.0, 100.0, 125.0]) - 0.25).abs() < 1e-9);
        assert_eq!(spread(&[]), 0.0);
    }
}
