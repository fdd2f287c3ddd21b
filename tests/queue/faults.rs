//! The fault suite: three real worker processes on a throwaway PostgreSQL
//! cluster of their own, while jobs run, take `kill -9`, two PostgreSQL
//! restarts (one fast, one a crash) and terminated LISTEN connections. Then
//! every job has been completed exactly once, only the killed worker's
//! attempts were taken back, and they were taken back fast.
//!
//! The cluster is the machine's PostgreSQL binaries (`pg_config --bindir`) on
//! a free port and a temporary directory, so restarting it disturbs no other
//! test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use plan_worker::dev::mock_answers::mock_options;
use plan_worker::dev::mock_llm::MockLlm;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::support::free_port;

const JOBS: usize = 160;
const HEARTBEAT_SECONDS: f64 = 1.0;
const POLL_INTERVAL_SECONDS: f64 = 1.0;
/// Each LLM call takes this long, so that jobs are mid-flight at every fault.
const LLM_LATENCY: Duration = Duration::from_millis(700);
/// The whole suite, faults included, ends inside this.
const WHOLE_RUN: Duration = Duration::from_secs(240);

/// A PostgreSQL cluster in a temporary directory, stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// initdb refuses to run as root: as root, the cluster belongs to postgres.
    run_as: Option<&'static str>,
}

impl Cluster {
    async fn start() -> Cluster {
        let bin = postgres_bindir();
        let dir = std::env::temp_dir().join(format!("plan-worker-faults-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let run_as = is_root().then_some("postgres");
        if let Some(user) = run_as {
            let chown = std::process::Command::new("chown")
                .args([user, dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
            run_as,
        };
        let data = cluster.data();
        cluster
            .run(
                "initdb",
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            )
            .await;
        cluster.pg_ctl(&["start"]).await;
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let log = self.dir.join("postgres.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut all = vec![
            "-D",
            &data,
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
        ];
        all.extend(args);
        self.run("pg_ctl", &all).await;
    }

    /// A clean restart: every connection is closed by the server.
    async fn restart_fast(&self) {
        self.pg_ctl(&["-m", "fast", "restart"]).await;
    }

    /// A crash: the server dies at once and recovers from its WAL on start.
    async fn crash_and_start(&self) {
        self.pg_ctl(&["-m", "immediate", "stop"]).await;
        self.pg_ctl(&["start"]).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&pg_ctl);
                c
            }
            None => std::process::Command::new(&pg_ctl),
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's server binaries: `pg_config --bindir`, else Debian's place.
fn postgres_bindir() -> PathBuf {
    let from_pg_config = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let debian = || {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        dirs.sort();
        dirs.pop()
    };
    from_pg_config
        .filter(|d| d.join("initdb").exists())
        .or_else(debian)
        .filter(|d| d.join("initdb").exists())
        .expect("the fault suite needs PostgreSQL's initdb and pg_ctl (pg_config --bindir)")
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// One `plan-worker run` process; its log is kept beside the cluster's.
struct WorkerProcess {
    id: String,
    child: Child,
}

async fn spawn_worker(cluster: &Cluster, mock: &MockLlm, id: &str, logs: &Path) -> WorkerProcess {
    let log = std::fs::File::create(logs.join(format!("{id}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_plan-worker"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", cluster.url())
        .env("DATABASE_POOL_SIZE", "6")
        .env("WORKER_ID", id)
        .env("NO_MIGRATE", "true")
        .env("MAX_CONCURRENT_JOBS", "8")
        .env("HEARTBEAT_SECONDS", HEARTBEAT_SECONDS.to_string())
        .env("LEASE_SECONDS", "20")
        .env("POLL_INTERVAL_SECONDS", POLL_INTERVAL_SECONDS.to_string())
        .env("NOTIFY_CHECK_SECONDS", "2")
        .env("RETRY_BASE_SECONDS", "0.2")
        .env("RETRY_MAX_SECONDS", "1")
        .env("METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("LLM_BASE_URL", &mock.base_url)
        .env("LLM_API_KEY", "test-key")
        .env("LLM_REQUESTS_PER_MINUTE", "0")
        .env("LLM_TIMEOUT_SECONDS", "30")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("plan-worker starts");
    WorkerProcess {
        id: id.to_owned(),
        child,
    }
}

async fn connect(cluster: &Cluster) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&cluster.url())
        .await
        .expect("the throwaway cluster answers")
}

/// Polls `query` (one bigint) on a fresh connection each time, so that the
/// poll itself survives the server's restarts, until `done` holds.
async fn wait_until(cluster: &Cluster, what: &str, query: &str, done: impl Fn(i64) -> bool) -> i64 {
    let deadline = Instant::now() + WHOLE_RUN;
    let mut last = -1;
    while Instant::now() < deadline {
        if let Ok(pool) = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .connect(&cluster.url())
            .await
        {
            if let Ok(n) = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_owned()))
                .fetch_one(&pool)
                .await
            {
                last = n;
                if done(n) {
                    pool.close().await;
                    return n;
                }
            }
            pool.close().await;
        }
        // A poll of the database's own state: nothing to await but time.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: still {last} after {WHOLE_RUN:?}");
}

fn count_processing_of(worker: &str) -> String {
    format!(
        "select count(*) from plan_generation_jobs \
         where status = 'processing' and worker_id = '{worker}'"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_restarts_and_lost_listeners_complete_every_job_exactly_once() {
    let started = Instant::now();
    let cluster = Cluster::start().await;
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-suite");
    std::fs::create_dir_all(&logs).unwrap();

    let migrate = Command::new(env!("CARGO_BIN_EXE_plan-worker"))
        .arg("migrate")
        .env("DATABASE_URL", cluster.url())
        .env("RUST_LOG", "warn")
        .status()
        .await
        .unwrap();
    assert!(migrate.success(), "migrations on the throwaway cluster");

    let mock = MockLlm::start_with(mock_options("ok".parse().unwrap()).with_latency(LLM_LATENCY))
        .await
        .unwrap();
    let pool = connect(&cluster).await;
    let profiles = [
        "muscle-gain-vegetarian-gym",
        "fat-loss-vegan-home",
        "recomposition-eggitarian-bodyweight",
    ];
    let profiles: Vec<serde_json::Value> = profiles
        .iter()
        .map(|p| crate::support::profile(p))
        .collect();
    for i in 0..JOBS {
        sqlx::query("select job_id from create_plan_job($1, $2)")
            .bind(Uuid::new_v4())
            .bind(&profiles[i % profiles.len()])
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let mut workers = Vec::new();
    for id in ["fault-a", "fault-b", "fault-c"] {
        workers.push(spawn_worker(&cluster, &mock, id, &logs).await);
    }

    // 1. kill -9 a worker holding jobs; a replacement starts at once (a new
    //    process, as an orchestrator would start it).
    wait_until(
        &cluster,
        "fault-a runs jobs",
        &count_processing_of("fault-a"),
        |n| n >= 4,
    )
    .await;
    let victim = workers.remove(0);
    let pid = victim.child.id().unwrap().to_string();
    let killed_at = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut victim = victim;
    victim.child.wait().await.unwrap();
    workers.push(spawn_worker(&cluster, &mock, "fault-d", &logs).await);
    wait_until(
        &cluster,
        "the dead worker's jobs taken back",
        &count_processing_of("fault-a"),
        |n| n == 0,
    )
    .await;
    let takeover = killed_at.elapsed();

    // 2. A fast restart while jobs run.
    wait_until(
        &cluster,
        "jobs running before the restart",
        PROCESSING,
        |n| n >= 8,
    )
    .await;
    cluster.restart_fast().await;

    // 3. The LISTEN connections of every live worker (back after the
    //    restart), terminated.
    wait_until(&cluster, "listeners back", LISTENERS, |n| n == 3).await;
    wait_until(&cluster, "jobs running again", PROCESSING, |n| n >= 8).await;
    let pool = connect(&cluster).await;
    let terminated: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity \
         where application_name like 'plan-worker listener %') t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(terminated, 3, "one listener per live worker");

    // 4. A crash of the server while jobs run.
    wait_until(&cluster, "jobs running before the crash", PROCESSING, |n| {
        n >= 8
    })
    .await;
    cluster.crash_and_start().await;

    wait_until(
        &cluster,
        "every job completed",
        "select count(*) from plan_generation_jobs where status = 'completed'",
        |n| n == JOBS as i64,
    )
    .await;

    let pool = connect(&cluster).await;
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "select status::text, count(*) from plan_generation_jobs group by 1 order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(statuses, [("completed".to_owned(), JOBS as i64)]);

    // Exactly once: one plan per job, linked both ways, one version per user.
    let plans: i64 = sqlx::query_scalar(
        "select count(*) from weekly_base_plans p join plan_generation_jobs j \
         on j.id = p.job_id and j.plan_id = p.id and j.user_id = p.user_id and p.version = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(plans, JOBS as i64, "one plan per job");
    let all_plans: i64 = sqlx::query_scalar("select count(*) from weekly_base_plans")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(all_plans, JOBS as i64, "no plan saved twice");

    // Every job: one completed attempt, none left open, its attempt rows
    // numbered 1..attempt_count.
    let bad_attempts: Vec<(Uuid, i32, i64, i64, i64)> = sqlx::query_as(
        "select j.id, j.attempt_count, count(a.*), \
                count(*) filter (where a.outcome = 'completed'), \
                count(*) filter (where a.finished_at is null) \
         from plan_generation_jobs j left join plan_job_attempts a on a.job_id = j.id \
         group by j.id, j.attempt_count \
         having count(a.*) <> j.attempt_count \
             or count(*) filter (where a.outcome = 'completed') <> 1 \
             or count(*) filter (where a.finished_at is null) <> 0 \
             or max(a.attempt) <> j.attempt_count",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(bad_attempts.is_empty(), "{bad_attempts:?}");

    // Only the killed worker lost attempts; no live worker's job was reaped.
    let lost: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select worker_id, count(*) from plan_job_attempts where outcome = 'lost' group by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        lost.keys().map(String::as_str).collect::<Vec<_>>(),
        ["fault-a"],
        "lost attempts by worker: {lost:?}"
    );
    let outcomes: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select coalesce(outcome, 'running') || ':' || coalesce(error_code, ''), count(*) \
         from plan_job_attempts group by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    // Retries were spent only on the killed worker's jobs.
    let retried: i64 = sqlx::query_scalar(
        "select coalesce(sum(retry_count), 0)::bigint from plan_generation_jobs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        retried, lost["fault-a"],
        "a retry spent only where a dead worker lost an attempt: {outcomes:?}"
    );

    // One outbox row per job, never two.
    let outbox: i64 =
        sqlx::query_scalar("select count(*) from notification_outbox where event = 'plan_ready'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outbox, JOBS as i64);
    pool.close().await;

    // Dead-worker takeover: within two heartbeat intervals and a tick (the
    // replacement's start-up and this poll's granularity on top).
    let bound = Duration::from_secs_f64(2.0 * HEARTBEAT_SECONDS + POLL_INTERVAL_SECONDS + 2.0);
    assert!(
        takeover <= bound,
        "the killed worker's jobs were taken back after {takeover:?} (bound {bound:?})"
    );
    eprintln!(
        "fault suite: {JOBS} jobs, takeover after kill -9 in {takeover:?}, attempts {outcomes:?}, \
         whole run {:?}",
        started.elapsed()
    );
    for mut w in workers {
        let _ = w.child.start_kill();
        w.child
            .wait()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", w.id));
    }
}

const LISTENERS: &str = "select count(*) from pg_stat_activity \
    where application_name like 'plan-worker listener %'";

const PROCESSING: &str = "select count(*) from plan_generation_jobs where status = 'processing'";
