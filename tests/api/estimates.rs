//! The estimate of a job's remaining time (#16 item 2): from the recorded
//! stages of recent jobs made the same way (kind, source, model), aware of
//! the stage the job is in, honest about how many jobs it used and which.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::support;

const KIND: &str = "weekly_base_plan";
const MODEL: &str = "deepseek-v4-flash";

/// A completed job of `route` whose stages took `stages` seconds.
async fn finished(pool: &PgPool, source: &str, model: &str, stages: &[(&str, f64)]) {
    let total: f64 = stages.iter().map(|(_, s)| s).sum();
    let id: Uuid = sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, \
         started_at, completed_at) \
         values (gen_random_uuid(), $1, 'completed', '{}', \
                 now() - interval '1 hour', now() - interval '1 hour' + $2 * interval '1 second') \
         returning id",
    )
    .bind(KIND)
    .bind(total)
    .fetch_one(pool)
    .await
    .unwrap();
    let stages: Vec<(&str, f64)> = stages.to_vec();
    sqlx::query(
        "insert into plan_job_stage_timings (job_id, kind, source, model, attempt_seconds, stages) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(KIND)
    .bind(source)
    .bind(model)
    .bind(total)
    .bind(sqlx::types::Json(stages))
    .execute(pool)
    .await
    .unwrap();
}

/// An LLM job's stages: structure 5 s, details `details` s, then 1 s each.
fn llm_stages(details: f64) -> Vec<(&'static str, f64)> {
    vec![
        ("generating_structure", 5.0),
        ("generating_details", details),
        ("validating", 1.0),
        ("saving", 1.0),
    ]
}

/// A live worker `w` that says it makes weekly plans with `route`.
async fn worker(pool: &PgPool, route: Value) {
    sqlx::query(
        "insert into plan_workers (id, kinds, concurrency, lock_key, routes) \
         values ('w', '{weekly_base_plan}', 4, 1, $1)",
    )
    .bind(json!({ KIND: route }))
    .execute(pool)
    .await
    .unwrap();
}

/// Makes the job processing on `w`, claimed 5 minutes ago, in `stage`
/// since now.
async fn run_on_w(pool: &PgPool, id: Uuid, stage: Option<&str>) {
    sqlx::query(
        "with j as (
             update plan_generation_jobs set status = 'processing', worker_id = 'w',
                 lease_token = gen_random_uuid(), locked_until = now() + interval '30 seconds',
                 started_at = now() - interval '5 minutes', attempt_count = 1, progress = $2,
                 progress_at = case when $2::text is null then null else now() end
             where id = $1 returning id, lease_token)
         insert into plan_job_attempts (job_id, attempt, worker_id, lease_token, started_at)
         select id, 1, 'w', lease_token, now() - interval '5 minutes' from j",
    )
    .bind(id)
    .bind(stage)
    .execute(pool)
    .await
    .unwrap();
}

/// Moves the running job into `stage`, which began `ago` seconds ago.
async fn enter(pool: &PgPool, id: Uuid, stage: &str, ago: f64) {
    sqlx::query(
        "update plan_generation_jobs set progress = $2, \
         progress_at = greatest(now() - $3 * interval '1 second', started_at) where id = $1",
    )
    .bind(id)
    .bind(stage)
    .bind(ago)
    .execute(pool)
    .await
    .unwrap();
}

async fn estimate(api: &Api, user: Uuid, id: Uuid) -> Value {
    let a = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["estimate"].clone()
}

#[sqlx::test]
async fn an_llm_jobs_estimate_is_not_based_on_offline_jobs(pool: PgPool) {
    for _ in 0..30 {
        finished(
            &pool,
            "offline",
            "",
            &[("generating_offline", 0.01), ("validating", 0.001)],
        )
        .await;
    }
    for i in 0..6 {
        finished(&pool, "llm", MODEL, &llm_stages(20.0 + f64::from(i))).await;
    }
    worker(&pool, json!({"source": "llm", "model": MODEL})).await;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);

    let pending = estimate(&api, user, id).await;
    assert_eq!(pending["basis"], "kind_source_model", "{pending}");
    assert_eq!(pending["basedOnJobs"], 6, "the LLM jobs alone: {pending}");
    assert_eq!(pending["source"], "llm");
    assert_eq!(pending["model"], MODEL);
    let p50 = pending["secondsRemaining"].as_u64().unwrap();
    assert!((27..=30).contains(&p50), "{pending}");
    assert!(pending["range"]["p10"].as_u64() <= pending["range"]["p50"].as_u64());
    assert!(pending["range"]["p90"].as_u64() >= Some(p50));
    assert_eq!(pending["p90SecondsRemaining"], pending["range"]["p90"]);

    run_on_w(&pool, id, Some("generating_structure")).await;
    let running = estimate(&api, user, id).await;
    assert_eq!(running["basis"], "kind_source_model", "{running}");
    assert_eq!(running["basedOnJobs"], 6, "{running}");
    assert_ne!(running["secondsRemaining"], 0, "{running}");
}

#[sqlx::test]
async fn a_job_whose_route_has_no_history_says_default_rather_than_borrow_another_sources(
    pool: PgPool,
) {
    for _ in 0..10 {
        finished(&pool, "offline", "", &[("generating_offline", 0.01)]).await;
    }
    worker(&pool, json!({"source": "llm", "model": MODEL})).await;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    let e = estimate(&api, user, id).await;
    assert_eq!(e["basis"], "default", "{e}");
    assert_eq!(e["basedOnJobs"], 0);
    // ESTIMATE_DEFAULT_SECONDS (60): p10 half, p90 double.
    assert_eq!(e["range"], json!({"p10": 30, "p50": 60, "p90": 120}));
}

#[sqlx::test]
async fn too_few_jobs_of_the_model_fall_back_to_the_source_and_say_so(pool: PgPool) {
    for _ in 0..3 {
        finished(&pool, "llm", MODEL, &llm_stages(20.0)).await;
    }
    for _ in 0..4 {
        finished(&pool, "llm", "another-model", &llm_stages(40.0)).await;
    }
    worker(&pool, json!({"source": "llm", "model": MODEL})).await;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    let e = estimate(&api, user, id).await;
    assert_eq!(e["basis"], "kind_source", "{e}");
    assert_eq!(e["basedOnJobs"], 7, "every LLM job, of both models: {e}");
    assert_eq!(e["model"], MODEL, "the route estimated for");
}

#[sqlx::test]
async fn a_stage_aware_estimate_shrinks_as_stages_advance(pool: PgPool) {
    for i in 0..10 {
        finished(&pool, "llm", MODEL, &llm_stages(20.0 + f64::from(i))).await;
    }
    worker(&pool, json!({"source": "llm", "model": MODEL})).await;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    run_on_w(&pool, id, Some("generating_structure")).await;
    let mut last = u64::MAX;
    for stage in [
        "generating_structure",
        "generating_details",
        "validating",
        "saving",
    ] {
        enter(&pool, id, stage, 0.0).await;
        let e = estimate(&api, user, id).await;
        let p50 = e["secondsRemaining"].as_u64().unwrap();
        assert!(p50 < last, "{stage}: {p50} s, not less than {last} s: {e}");
        assert_eq!(e["basedOnJobs"], 10, "{stage}: {e}");
        assert_eq!(e["overdue"], false);
        last = p50;
    }
    assert_eq!(last, 1, "saving takes a second");
}

#[sqlx::test]
async fn based_on_jobs_counts_the_jobs_that_were_still_in_the_stage_and_overdue_says_so(
    pool: PgPool,
) {
    // Details took 10, 20, ..., 120 s.
    for i in 1..=12 {
        finished(&pool, "llm", MODEL, &llm_stages(f64::from(i) * 10.0)).await;
    }
    worker(&pool, json!({"source": "llm", "model": MODEL})).await;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    run_on_w(&pool, id, Some("generating_structure")).await;

    // 45 s into details: 8 jobs (50..120 s) were still there.
    enter(&pool, id, "generating_details", 45.0).await;
    let e = estimate(&api, user, id).await;
    assert_eq!(e["basedOnJobs"], 8, "{e}");
    assert_eq!(e["overdue"], false);
    // Those had 5..75 s of details left, then 2 s: median 42.
    let p50 = e["secondsRemaining"].as_u64().unwrap();
    assert!((41..=42).contains(&p50), "{e}");

    // 118 s in: fewer than ESTIMATE_MIN_JOBS lasted as long. The stage is
    // overdue; the 5 slowest (80..120 s) ran 0..40 s past the 5th, then 2 s.
    enter(&pool, id, "generating_details", 118.0).await;
    let late = estimate(&api, user, id).await;
    assert_eq!(late["overdue"], true, "{late}");
    assert_eq!(late["basedOnJobs"], 5);
    assert_eq!(late["secondsRemaining"], 22);
}

#[sqlx::test]
async fn a_real_job_records_its_stages_and_route_with_its_completion(pool: PgPool) {
    let mock = support::mock("ok").await;
    let client = support::client(&mock, Duration::from_secs(30));
    let worker = support::plan_worker(&pool, Some(client), false, Default::default()).await;
    let api = start(&pool, settings()).await;
    let mut events = support::JobEvents::open(&pool).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    events.wait_status(id, "completed", WAIT).await;
    let routes: Value = sqlx::query_scalar("select routes from plan_workers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(routes, json!({KIND: {"source": "llm", "model": MODEL}}));
    worker.shutdown().await;

    let (source, model, stages): (String, String, sqlx::types::Json<Vec<(String, f64)>>) =
        sqlx::query_as(
            "select source, model, stages from plan_job_stage_timings where job_id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((source.as_str(), model.as_str()), ("llm", MODEL));
    let names: Vec<&str> = stages.0.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "generating_structure",
            "generating_details",
            "validating",
            "saving"
        ]
    );
    assert!(stages.0.iter().all(|(_, s)| *s >= 0.0));
}
