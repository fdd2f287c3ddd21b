//! The real binary: beside a worker the API has a pool of its own and the
//! push loop reports ready; `plan-worker run --no-worker` serves the API alone (no
//! worker registers, jobs stay pending) and exits cleanly on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::common::*;
use crate::support::free_port;

pub fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

/// `plan-worker run` with `args` on the test's database; returns the child
/// and its API and ops ports once the API listens.
async fn spawn_run(pool: &PgPool, args: &[&str]) -> (tokio::process::Child, u16, u16) {
    spawn_run_with(pool, args, &[], None).await
}

/// `spawn_run` with extra environment variables, and at most `nofile`
/// open file descriptors when set.
pub async fn spawn_run_with(
    pool: &PgPool,
    args: &[&str],
    env: &[(&str, &str)],
    nofile: Option<u32>,
) -> (tokio::process::Child, u16, u16) {
    let (api_port, ops_port) = (free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_plan-worker");
    let mut command = match nofile {
        // The shell lowers its own limit, then becomes plan-worker (same pid).
        Some(n) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(bin);
            c
        }
        None => tokio::process::Command::new(bin),
    };
    let mut child = command
        .arg("run")
        .args(args)
        .env("DATABASE_URL", database_url(pool))
        .env("API_ADDR", format!("127.0.0.1:{api_port}"))
        .env("METRICS_ADDR", format!("127.0.0.1:{ops_port}"))
        .env("SUPABASE_JWT_SECRET", SECRET)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The log line that says the API listens, read from the process.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("API listening") {
                return;
            }
        }
        panic!("plan-worker exited before the API listened");
    })
    .await
    .expect("the API never listened");
    // Keep reading, so that the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, api_port, ops_port)
}

#[sqlx::test]
async fn beside_a_worker_the_api_queries_through_a_pool_of_its_own(pool: PgPool) {
    let (child, api_port, ops_port) = spawn_run(&pool, &[]).await;
    let user = Uuid::new_v4();
    let mut events = crate::support::JobEvents::open(&pool).await;
    let created = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{api_port}/v1/plan-jobs"))
        .bearer_auth(token(user))
        .json(&json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: serde_json::Value = created.json().await.unwrap();
    let job: Uuid = body["jobId"].as_str().unwrap().parse().unwrap();
    events.wait_status(job, "completed", WAIT).await;
    let names: Vec<String> = sqlx::query_scalar(
        "select distinct application_name from pg_stat_activity \
         where datname = current_database() and application_name like 'plan-worker%' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(names.contains(&"plan-worker api".to_owned()), "{names:?}");
    assert!(
        names.contains(&"plan-worker".to_owned()),
        "the worker's own pool: {names:?}"
    );
    // The worker's push delivery runs under its supervisor, and says so.
    let ready: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{ops_port}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["push_delivery"]["ok"], true);
    assert_eq!(ready["checks"]["push_delivery"]["restarts"], 0);
    drop(child);
}

#[sqlx::test]
async fn run_no_worker_serves_the_api_alone_and_stops_on_sigterm(pool: PgPool) {
    let (mut child, api_port, ops_port) = spawn_run(&pool, &["--no-worker"]).await;
    let http = reqwest::Client::new();
    let user = Uuid::new_v4();
    let created = http
        .post(format!("http://127.0.0.1:{api_port}/v1/plan-jobs"))
        .bearer_auth(token(user))
        .json(&json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let ready: serde_json::Value = http
        .get(format!("http://127.0.0.1:{ops_port}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["checks"]["listener"].is_null(), "no worker listener");
    assert!(ready["checks"]["push_delivery"].is_null(), "no push loop");
    assert_eq!(
        count(&pool, "plan_workers").await,
        0,
        "no worker registered"
    );

    // SIGTERM: the process ends by itself, successfully.
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("plan-worker did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let pending: String =
        sqlx::query_scalar("select status::text from plan_generation_jobs where user_id = $1")
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, "pending", "an API-only process runs no job");
}

#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let secrets = [
        (
            "DATABASE_URL",
            "postgres://worker:hunter2-db@db.internal/app",
        ),
        (
            "LISTEN_DATABASE_URL",
            "postgres://worker:hunter2-listen@db.internal/app",
        ),
        (
            "SUPABASE_JWT_SECRET",
            "hunter2-jwt-secret-of-thirty-two-chars",
        ),
        ("ADMIN_TOKEN", "hunter2-admin"),
        ("LLM_API_KEY", "sk-hunter2"),
        ("EXPO_ACCESS_TOKEN", "hunter2-expo"),
    ];
    for args in [&["--help"][..], &["run", "--help"], &["migrate", "--help"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plan-worker"))
            .args(args)
            .envs(secrets)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
        assert!(
            !text.contains("hunter2"),
            "{args:?} prints a secret:\n{text}"
        );
    }
}

/// `plan-worker smoke` against a deployment (here `plan-worker run` with
/// its API and worker, the offline planner making the plan): it passes,
/// says each step, and leaves no row of its throwaway user behind.
#[sqlx::test]
async fn smoke_passes_against_a_running_deployment_and_cleans_up(pool: PgPool) {
    let (mut child, api_port, _) = spawn_run_with(&pool, &[], &[("LLM_API_KEY", "")], None).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plan-worker"))
        .arg("smoke")
        .arg("--api-url")
        .arg(format!("http://127.0.0.1:{api_port}"))
        .arg("--timeout-seconds")
        .arg("60")
        .env("DATABASE_URL", database_url(&pool))
        .env("SUPABASE_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let _ = child.kill().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "ok  the API answers",
        "created",
        "job completed over its event stream",
        "ok  the active plan is the new one, with 7 days",
        "ok  throwaway user deleted",
        "smoke: passed",
    ] {
        assert!(stdout.contains(step), "no {step:?} in {stdout}");
    }
    for table in [
        "plan_generation_jobs",
        "weekly_base_plans",
        "plan_job_attempts",
    ] {
        assert_eq!(count(&pool, table).await, 0, "{table} kept rows: {stdout}");
    }
}

#[sqlx::test]
async fn smoke_fails_naming_what_it_could_not_reach(pool: PgPool) {
    let port = free_port();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plan-worker"))
        .args(["smoke", "--api-url", &format!("http://127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url(&pool))
        .env("SUPABASE_JWT_SECRET", SECRET)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("api_url: cannot reach http://127.0.0.1:{port}")),
        "{stderr}"
    );
}
