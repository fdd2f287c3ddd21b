//! The ops endpoint after real work: the worker runs jobs through the real
//! pipeline against the mock LLM (successes, retries, final failures), then
//! `/metrics` must hold every metric of the catalogue and pass
//! `promtool check metrics`, and `/readyz` must report its checks.
//! Its own test binary: the metrics recorder is global to the process.

mod support;

use support::{WAIT, client, mock, plan_worker, profile};

use plan_worker::config::WorkerSettings;
use plan_worker::jobs::intake;
use plan_worker::ops::{self, OpsState};

use plan_worker::telemetry::metrics::{self, CATALOGUE};
use sqlx::PgPool;
use uuid::Uuid;

/// Creates a job and waits for its final status.
async fn run_job(pool: &PgPool) -> String {
    let mut events = support::JobEvents::open(pool).await;
    let job = intake::create_job(
        pool,
        &intake::weekly_plan_job(Uuid::new_v4(), profile("fat-loss-vegan-home")),
    )
    .await
    .unwrap()
    .job_id;
    events
        .wait_for(
            |e| e.id == job && ["completed", "failed"].contains(&e.status.as_str()),
            WAIT,
        )
        .await
        .status
        .to_string()
}

/// promtool from $PROMTOOL or PATH. CI must have it (scripts/promtool.sh).
fn promtool() -> Option<String> {
    if let Ok(p) = std::env::var("PROMTOOL") {
        return Some(p);
    }
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok();
    found.then(|| "promtool".to_owned())
}

#[sqlx::test]
async fn after_successes_retries_and_failures_metrics_hold_the_whole_catalogue_and_pass_promtool(
    pool: PgPool,
) {
    let handle = metrics::install();
    // 500 is retried by the job; a 503 would be waited out in the client.
    let mock = mock("500,ok").await;
    let settings = WorkerSettings {
        worker_id: Some("metrics-test".into()),
        retry_base_seconds: 0.05,
        retry_max_seconds: 0.1,
        ..WorkerSettings::default()
    };
    let worker = plan_worker(&pool, Some(client(&mock, WAIT)), false, settings).await;

    assert_eq!(run_job(&pool).await, "completed", "500 is retried, then ok");
    assert_eq!(run_job(&pool).await, "completed");
    mock.set_script("unauthorized".parse().unwrap()).unwrap();
    assert_eq!(run_job(&pool).await, "failed", "401 fails for good");
    plan_worker::queue::reaper::sample_queue(&pool).await;

    let ops = ops::router(OpsState {
        db: pool.clone(),
        metrics: handle,
        listener: Some(worker.listener.clone()),
        push: None,
        console: ops::console::Console::disabled(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, ops).await });
    let http = reqwest::Client::new();
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let missing: Vec<&str> = CATALOGUE
        .iter()
        .copied()
        .filter(|name| !text.contains(&format!("\n{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from /metrics: {missing:?}"
    );
    assert!(text.contains(r#"plan_jobs_retried_total{kind="weekly_base_plan",error_code="AI_UNAVAILABLE",deferred="false"} 1"#));
    assert!(text.contains(r#"plan_jobs_finished_total{kind="weekly_base_plan",outcome="failed",error_code="CONFIG_ERROR"} 1"#));
    assert!(text.contains(
        r#"plan_jobs_finished_total{kind="weekly_base_plan",outcome="completed",error_code=""} 2"#
    ));
    assert!(!text.contains("test-key"), "no secret in metrics");

    match promtool() {
        Some(promtool) => {
            let path =
                std::env::temp_dir().join(format!("plan-worker-metrics-{}.txt", Uuid::new_v4()));
            std::fs::write(&path, &text).unwrap();
            let out = std::process::Command::new(&promtool)
                .args(["check", "metrics"])
                .stdin(std::fs::File::open(&path).unwrap())
                .output()
                .expect("promtool runs");
            let _ = std::fs::remove_file(&path);
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must provide promtool (scripts/promtool.sh)")
        }
        None => eprintln!("promtool not found: skipped `promtool check metrics` (set PROMTOOL)"),
    }

    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["listener"]["mode"], "notify");
    assert_eq!(body["checks"]["migrations"]["ok"], true);
    worker.shutdown().await;
}
