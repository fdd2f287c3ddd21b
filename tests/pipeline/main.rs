//! End-to-end tests of the plan pipeline: real PostgreSQL, the real worker
//! and handler, and the LLM faked only at the HTTP boundary by the mock
//! OpenAI-compatible server.

#[path = "../support/mod.rs"]
mod support;
#[path = "../support/unsplash.rs"]
mod unsplash;

mod meal_images;
mod meal_plans;
mod nutrition;

use std::time::Duration;

use plan_worker::config::WorkerSettings;
use plan_worker::jobs::intake::{self, IntakeError};
use plan_worker::llm::LlmClient;
use plan_worker::queue::WorkerHandle;
use plan_worker::queue::events::parse_job_events;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use support::{WAIT, client, mock, plan_worker, profile};

async fn worker(pool: &PgPool, llm: Option<LlmClient>, fallback: bool) -> WorkerHandle {
    plan_worker(pool, llm, fallback, settings()).await
}

fn settings() -> WorkerSettings {
    WorkerSettings {
        worker_id: Some(format!("pipeline-{}", Uuid::new_v4().simple())),
        retry_base_seconds: 0.05,
        retry_max_seconds: 0.1,
        poll_interval_seconds: 60.0,
        ..WorkerSettings::default()
    }
}

/// A worker whose weekly plans ask for the whole week in one call.
async fn sequential_worker(pool: &PgPool, llm: LlmClient) -> WorkerHandle {
    let layout = plan_worker::jobs::weekly_plan::Layout::Sequential;
    support::plan_worker_laid_out(pool, Some(llm), false, settings(), layout).await
}

/// Creates a job and waits for its final status, collecting progress stages.
async fn run_job(pool: &PgPool, profile_name: &str) -> (Uuid, String, Vec<String>) {
    run_snapshot(pool, profile(profile_name)).await
}

/// `run_job` for a profile snapshot of the test's own.
async fn run_profile(pool: &PgPool, snapshot: Value) -> (Uuid, String) {
    let (job, status, _) = run_snapshot(pool, snapshot).await;
    (job, status)
}

async fn run_snapshot(pool: &PgPool, snapshot: Value) -> (Uuid, String, Vec<String>) {
    let mut events = PgListener::connect_with(pool).await.unwrap();
    events.listen("plan_job_events").await.unwrap();
    let job = intake::create_job(pool, &intake::weekly_plan_job(Uuid::new_v4(), snapshot))
        .await
        .unwrap()
        .job_id;
    let mut stages = Vec::new();
    let wait = async {
        loop {
            let note = events.recv().await.unwrap();
            for ev in parse_job_events(note.payload())
                .into_iter()
                .filter(|e| e.id == job && e.day.is_none())
            {
                if let Some(p) = ev.progress {
                    stages.push(p);
                }
                if ["completed", "failed", "cancelled"].contains(&ev.status.as_str()) {
                    return ev.status;
                }
            }
        }
    };
    let status = tokio::time::timeout(WAIT, wait)
        .await
        .expect("job finished in time");
    (job, status.to_string(), stages)
}

#[derive(Debug, sqlx::FromRow)]
struct Attempt {
    outcome: Option<String>,
    error_code: Option<String>,
    error_detail: Option<String>,
    llm_usage: Option<Value>,
}

/// The day calls of a sample profile's week: one per rest day, two (the
/// session and the rest of the day) per training day.
fn day_calls(name: &str) -> usize {
    7 + profile(name)["training_days"].as_u64().unwrap() as usize
}

async fn attempts(pool: &PgPool, job: Uuid) -> Vec<Attempt> {
    sqlx::query_as("select outcome, error_code, error_detail, llm_usage from plan_job_attempts where job_id = $1 order by attempt")
        .bind(job)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn outcomes(a: &[Attempt]) -> Vec<(String, String)> {
    a.iter()
        .map(|a| {
            (
                a.outcome.clone().unwrap_or_default(),
                a.error_code.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn job_code(pool: &PgPool, job: Uuid) -> (i32, Option<String>) {
    sqlx::query_as("select retry_count, error_code from plan_generation_jobs where id = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn saved_plans(pool: &PgPool, job: Uuid) -> Vec<(String, Option<String>, bool)> {
    sqlx::query_as("select source, model, is_active from weekly_base_plans where job_id = $1")
        .bind(job)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[sqlx::test]
async fn a_good_answer_is_saved_with_the_jobs_completion_and_every_stage_is_reported(pool: PgPool) {
    let mock = mock("ok").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, stages) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    assert_eq!(
        stages,
        [
            "generating_structure",
            "generating_details",
            "validating",
            "saving"
        ]
    );
    let plans = saved_plans(&pool, job).await;
    assert_eq!(plans.len(), 1);
    assert_eq!((plans[0].0.as_str(), plans[0].2), ("llm", true));
    let a = attempts(&pool, job).await;
    assert_eq!(outcomes(&a), pairs(&[("completed", "")]));
    let usage = a[0]
        .llm_usage
        .as_ref()
        .expect("usage recorded on the attempt");
    let calls = 1 + day_calls("fat-loss-vegan-home");
    assert_eq!(
        usage["calls"], calls,
        "the structure, a call per rest day and two per training day"
    );
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    let (ready, first_day): (i16, bool) = sqlx::query_as(
        "select days_ready, first_day_at between created_at and completed_at \
         from plan_generation_jobs where id = $1",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((ready, first_day), (7, true));
    let plan_id: Option<Uuid> =
        sqlx::query_scalar("select plan_id from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(plan_id.is_some(), "the job points at its plan");
    assert_eq!(mock.request_count(), calls);
    w.shutdown().await;
}

#[sqlx::test]
async fn the_sequential_layout_asks_for_the_whole_week_in_one_call(pool: PgPool) {
    let mock = mock("ok").await;
    let w = sequential_worker(&pool, client(&mock, WAIT)).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    assert_eq!(mock.request_count(), 2, "structure and details");
    assert!(
        mock.requests_received()[1]
            .body
            .to_string()
            .contains("structure_json")
    );
    let ready: i16 =
        sqlx::query_scalar("select days_ready from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ready, 0, "no day is shown before the week");
    assert_eq!(saved_plans(&pool, job).await.len(), 1);
    w.shutdown().await;
}

#[sqlx::test]
async fn each_day_is_announced_with_its_number_before_the_job_completes(pool: PgPool) {
    let mock = mock("ok").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let mut events = PgListener::connect_with(&pool).await.unwrap();
    events.listen("plan_job_events").await.unwrap();
    let job = intake::create_job(
        &pool,
        &intake::weekly_plan_job(Uuid::new_v4(), profile("muscle-gain-vegetarian-gym")),
    )
    .await
    .unwrap()
    .job_id;
    let mut days = Vec::new();
    let wait = async {
        loop {
            let note = events.recv().await.unwrap();
            for ev in parse_job_events(note.payload())
                .into_iter()
                .filter(|e| e.id == job)
            {
                if let Some(d) = ev.day {
                    days.push(d);
                }
                if ev.status.is_final() {
                    return ev.status;
                }
            }
        }
    };
    let status = tokio::time::timeout(WAIT, wait)
        .await
        .expect("job finished in time");
    assert_eq!(status.as_str(), "completed");
    days.sort_unstable();
    assert_eq!(
        days,
        [1, 2, 3, 4, 5, 6, 7],
        "every day once, before completion"
    );
    let (plan,): (Value,) = sqlx::query_as("select plan from weekly_base_plans where job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    let shown = plan_worker::jobs::days::ready_days(&pool, job)
        .await
        .unwrap();
    assert_eq!(shown.len(), 7);
    for d in shown {
        let saved = &plan["days"][usize::from(d.day) - 1];
        assert_eq!(d.content["nutrition"]["kcal"], saved["nutrition"]["kcal"]);
        assert_eq!(d.content["workout"], saved["workout"], "day {}", d.day);
    }
    w.shutdown().await;
}

#[sqlx::test]
async fn two_429s_defer_the_job_after_retry_after_without_spending_a_retry(pool: PgPool) {
    let mock = mock("rate_limit_ms:300,rate_limit_ms:300,ok").await;
    // A Retry-After longer than a call waits out in place defers the job.
    let llm = LlmClient::new(plan_worker::llm::LlmConfig {
        base_url: mock.base_url.clone(),
        api_key: Some("test-key".into()),
        timeout: WAIT,
        requests_per_minute: 0,
        overload_wait_max: Duration::from_millis(100),
        ..Default::default()
    })
    .unwrap();
    let w = worker(&pool, Some(llm), false).await;
    let (job, status, _) = run_job(&pool, "muscle-gain-vegetarian-gym").await;
    assert_eq!(status, "completed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[
            ("deferred", "AI_RATE_LIMIT"),
            ("deferred", "AI_RATE_LIMIT"),
            ("completed", "")
        ])
    );
    assert_eq!(job_code(&pool, job).await.0, 0, "no retry spent");
    let gaps: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from b.started_at - a.finished_at)::float8 from plan_job_attempts a \
         join plan_job_attempts b on b.job_id = a.job_id and b.attempt = a.attempt + 1 where a.job_id = $1",
    )
    .bind(job)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        gaps.iter().all(|g| *g >= 0.29),
        "Retry-After honoured: {gaps:?}"
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn a_second_person_with_the_same_schedule_reuses_the_week_structure(pool: PgPool) {
    use plan_worker::jobs::weekly_plan::{KIND, PlanHandler};
    let mock = mock("ok").await;
    let handler = PlanHandler::new(Some(client(&mock, WAIT)), false)
        .with_structure_cache(Duration::from_secs(3600));
    let settings = WorkerSettings {
        worker_id: Some(format!("pipeline-{}", Uuid::new_v4().simple())),
        ..WorkerSettings::default()
    };
    let registry = plan_worker::queue::Registry::new().register(KIND, handler);
    let w = support::start_worker(&pool, registry, settings).await;

    let first = profile("fat-loss-vegan-home");
    assert_eq!(run_profile(&pool, first.clone()).await.1, "completed");
    let first_calls = 1 + day_calls("fat-loss-vegan-home");
    assert_eq!(
        mock.request_count(),
        first_calls,
        "structure and seven days"
    );
    // Someone else: other body, diet and allergies, same schedule and limits.
    let mut second = first.clone();
    second["weight_kg"] = serde_json::json!(101);
    second["age"] = serde_json::json!(58);
    second["dietary_preference"] = serde_json::json!("vegetarian");
    second["allergies"] = serde_json::json!(["peanuts"]);
    let (job, status) = run_profile(&pool, second).await;
    assert_eq!(status, "completed");
    let second_calls = first_calls + day_calls("fat-loss-vegan-home");
    assert_eq!(mock.request_count(), second_calls, "the day calls only");
    let day = mock.requests_received()[first_calls].body.to_string();
    assert!(
        day.contains("day_json") && day.contains("The week decided in stage 1"),
        "the cached structure went into stage 2"
    );
    let (hits, stored): (i64, serde_json::Value) =
        sqlx::query_as("select hits, days from plan_structure_cache")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(hits, 1);
    let text = stored.to_string();
    assert!(
        !text.contains("kcal") && !text.contains("rationale"),
        "{text}"
    );
    let targets: (i64,) = sqlx::query_as(
        "select (plan->'days'->0->'nutrition'->>'kcal')::bigint from weekly_base_plans where job_id = $1",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(targets.0 > 0);
    // A different schedule misses.
    let mut third = first.clone();
    third["training_days"] = serde_json::json!(5);
    assert_eq!(run_profile(&pool, third).await.1, "completed");
    assert_eq!(mock.request_count(), second_calls + 1 + 7 + 5);
    w.shutdown().await;
}

#[sqlx::test]
async fn short_429s_and_503s_are_waited_out_in_place_without_deferring_the_job(pool: PgPool) {
    let mock = mock("rate_limit_ms:200,overloaded,ok").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "muscle-gain-vegetarian-gym").await;
    assert_eq!(status, "completed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("completed", "")])
    );
    assert_eq!(
        mock.request_count(),
        2 + 1 + day_calls("muscle-gain-vegetarian-gym"),
        "two refusals sent again, then the structure and seven days"
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn an_llm_call_past_its_deadline_is_ai_timeout_and_retried(pool: PgPool) {
    // The deadline is well above a good answer's time, which a debug build
    // of the mock on a busy machine can take a few hundred ms to make for
    // each of a week's dozen calls at once.
    let mock = mock("slow:30000,ok").await;
    let w = worker(
        &pool,
        Some(client(&mock, Duration::from_millis(2500))),
        false,
    )
    .await;
    let (job, status, _) = run_job(&pool, "maintenance-non-vegetarian-athlete").await;
    assert_eq!(status, "completed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("retry", "AI_TIMEOUT"), ("completed", "")])
    );
    assert_eq!(job_code(&pool, job).await.0, 1);
    w.shutdown().await;
}

#[sqlx::test]
async fn a_401_is_config_error_and_fails_the_job_at_once(pool: PgPool) {
    let mock = mock("unauthorized").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "failed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("failed", "CONFIG_ERROR")])
    );
    assert_eq!(mock.request_count(), 1);
    assert!(saved_plans(&pool, job).await.is_empty());
    w.shutdown().await;
}

#[sqlx::test]
async fn a_402_is_ai_quota_exceeded_and_fails_the_job_at_once(pool: PgPool) {
    let mock = mock("insufficient_balance").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "failed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("failed", "AI_QUOTA_EXCEEDED")])
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn broken_json_is_retried(pool: PgPool) {
    let mock = mock("broken_json,ok").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "recomposition-eggitarian-bodyweight").await;
    assert_eq!(status, "completed");
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        pairs(&[("retry", "JSON_PARSE_ERROR"), ("completed", "")])
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn a_diet_breaking_plan_is_repaired_in_one_round(pool: PgPool) {
    let mock = mock("ok:diet_breaking").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    let repairs = support::day_repairs(&mock);
    assert_eq!(
        repairs.len(),
        7,
        "every day had chicken: each repaired alone, a training day's meals without its session"
    );
    assert_eq!(
        mock.request_count(),
        1 + day_calls("fat-loss-vegan-home") + 7
    );
    assert!(
        repairs
            .iter()
            .all(|r| !r.contains("## The session to correct")),
        "no session is written again for a diet"
    );
    assert!(
        repairs.iter().all(|r| r.contains("diet")),
        "the violations were sent back to the model"
    );
    assert_eq!(saved_plans(&pool, job).await.len(), 1);
    w.shutdown().await;
}

#[sqlx::test]
async fn in_the_sequential_layout_a_diet_breaking_week_is_repaired_in_one_round(pool: PgPool) {
    let mock = mock("ok:diet_breaking").await;
    let w = sequential_worker(&pool, client(&mock, WAIT)).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    assert_eq!(mock.request_count(), 3, "structure, details, repair");
    let repair = &mock.requests_received()[2];
    assert!(repair.body.to_string().contains("diet"));
    assert_eq!(saved_plans(&pool, job).await.len(), 1);
    w.shutdown().await;
}

#[sqlx::test]
async fn a_week_a_coach_would_not_sign_is_sent_back_rule_by_rule_and_saved_repaired(pool: PgPool) {
    let mock = mock("ok:training_breaking").await;
    let w = sequential_worker(&pool, client(&mock, WAIT)).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    assert_eq!(mock.request_count(), 3, "structure, details, repair");
    let repair = mock.requests_received()[2].body.to_string();
    for rule in ["warm_up", "prescription", "movement_pattern"] {
        assert!(repair.contains(rule), "{rule} was sent back to the model");
    }
    assert_signed_sessions(&pool, job).await;
    w.shutdown().await;
}

#[sqlx::test]
async fn a_day_a_coach_would_not_sign_is_repaired_alone(pool: PgPool) {
    let mock = mock("ok:training_breaking").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "completed");
    let training_days = day_calls("fat-loss-vegan-home") - 7;
    let repairs = support::day_repairs(&mock);
    assert_eq!(
        repairs.len(),
        training_days,
        "only the training days broke rules"
    );
    assert!(
        repairs
            .iter()
            .all(|r| r.contains("## The session to correct")),
        "only their sessions are written again"
    );
    assert_eq!(
        mock.request_count(),
        1 + day_calls("fat-loss-vegan-home") + training_days
    );
    for rule in ["warm_up", "prescription"] {
        assert!(
            repairs.iter().all(|r| r.contains(rule)),
            "{rule} was sent back"
        );
    }
    assert_signed_sessions(&pool, job).await;
    w.shutdown().await;
}

/// The saved week's sessions have warm-ups and progressions.
async fn assert_signed_sessions(pool: &PgPool, job: Uuid) {
    let (plan,): (serde_json::Value,) =
        sqlx::query_as("select plan from weekly_base_plans where job_id = $1")
            .bind(job)
            .fetch_one(pool)
            .await
            .unwrap();
    let sessions: Vec<&serde_json::Value> = plan["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["workout"].as_object().map(|_| &d["workout"]))
        .collect();
    assert!(!sessions.is_empty());
    for session in sessions {
        assert!(
            !session["warm_up"].as_array().unwrap().is_empty(),
            "{session}"
        );
        for e in session["exercises"].as_array().unwrap() {
            assert!(
                e["progression"].as_str().is_some_and(|p| !p.is_empty()),
                "{e}"
            );
        }
    }
}

#[sqlx::test]
async fn a_plan_still_breaking_the_diet_after_repair_fails_as_validation_failed_naming_the_rule(
    pool: PgPool,
) {
    let mock = mock("ok:always_diet_breaking").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (job, status, _) = run_job(&pool, "fat-loss-vegan-home").await;
    assert_eq!(status, "failed");
    let a = attempts(&pool, job).await;
    assert_eq!(outcomes(&a), pairs(&[("failed", "VALIDATION_FAILED")]));
    let detail = a[0].error_detail.as_deref().unwrap();
    assert!(
        detail.contains("diet") && detail.contains("chicken"),
        "{detail}"
    );
    assert!(saved_plans(&pool, job).await.is_empty(), "nothing saved");
    w.shutdown().await;
}

#[sqlx::test]
async fn with_fallback_on_a_final_llm_failure_the_offline_plan_is_saved(pool: PgPool) {
    let mock = mock("unauthorized").await;
    let w = worker(&pool, Some(client(&mock, WAIT)), true).await;
    let (job, status, _) = run_job(&pool, "teen-muscle-gain-kettlebell").await;
    assert_eq!(status, "completed");
    assert_eq!(saved_plans(&pool, job).await[0].0, "offline");
    w.shutdown().await;
}

#[sqlx::test]
async fn with_fallback_persistent_429s_that_spend_deferrals_and_retries_end_in_the_offline_plan(
    pool: PgPool,
) {
    let mock = mock("rate_limit:0").await;
    let settings = WorkerSettings {
        worker_id: Some(format!("pipeline-{}", Uuid::new_v4().simple())),
        retry_base_seconds: 0.05,
        retry_max_seconds: 0.1,
        poll_interval_seconds: 60.0,
        max_rate_limit_deferrals: 2,
        ..WorkerSettings::default()
    };
    let w = plan_worker(&pool, Some(client(&mock, WAIT)), true, settings).await;
    let mut job = intake::weekly_plan_job(Uuid::new_v4(), profile("fat-loss-vegan-home"));
    job.max_retries = 1;
    let mut events = support::JobEvents::open(&pool).await;
    let id = intake::create_job(&pool, &job).await.unwrap().job_id;
    events.wait_status(id, "completed", WAIT).await;
    assert_eq!(
        outcomes(&attempts(&pool, id).await),
        pairs(&[
            ("deferred", "AI_RATE_LIMIT"),
            ("deferred", "AI_RATE_LIMIT"),
            ("retry", "AI_RATE_LIMIT"),
            ("completed", "")
        ]),
        "two deferrals, one retry, then the last 429 falls back"
    );
    assert_eq!(saved_plans(&pool, id).await[0].0, "offline");
    w.shutdown().await;
}

#[sqlx::test]
async fn without_an_llm_the_offline_generator_makes_the_plan_and_versions_count_up(pool: PgPool) {
    let w = worker(&pool, None, false).await;
    let user = Uuid::new_v4();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let mut events = PgListener::connect_with(&pool).await.unwrap();
        events.listen("plan_job_events").await.unwrap();
        let job = intake::create_job(
            &pool,
            &intake::weekly_plan_job(user, profile("fat-loss-vegan-home")),
        )
        .await
        .unwrap()
        .job_id;
        let wait = async {
            loop {
                let n = events.recv().await.unwrap();
                if parse_job_events(n.payload())
                    .iter()
                    .any(|e| e.id == job && e.status == "completed")
                {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, wait).await.unwrap();
        jobs.push(job);
    }
    let rows: Vec<(i32, bool, String)> =
        sqlx::query_as("select version, is_active, source from weekly_base_plans where user_id = $1 order by version")
            .bind(user)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (1, false, "offline".to_owned()),
            (2, true, "offline".to_owned())
        ]
    );
    w.shutdown().await;
}

#[sqlx::test]
async fn a_profile_with_three_bad_fields_is_refused_before_a_job_exists_naming_all_three(
    pool: PgPool,
) {
    let job = intake::weekly_plan_job(Uuid::new_v4(), profile("invalid-three-fields"));
    let err = intake::create_job(&pool, &job).await.unwrap_err();
    let IntakeError::Profile(p) = err else {
        panic!("expected a profile error, got {err:?}")
    };
    let mut fields: Vec<&str> = p.fields.iter().map(|f| f.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["age", "goal", "height_cm"]);
    let count: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test]
async fn day_calls_start_while_the_structure_is_still_streaming(pool: PgPool) {
    use plan_worker::dev::mock_answers::mock_options;
    use plan_worker::dev::mock_llm::MockLlm;
    // 400 tokens/s: the week's outline takes about a second to stream.
    let options = mock_options("ok".parse().unwrap()).with_tokens_per_second(400.0);
    let mock = MockLlm::start_with(options).await.unwrap();
    let w = worker(&pool, Some(client(&mock, WAIT)), false).await;
    let (_, status, _) = run_job(&pool, "muscle-gain-vegetarian-gym").await;
    assert_eq!(status, "completed");
    let calls = mock.requests_received();
    assert_eq!(calls.len(), 1 + day_calls("muscle-gain-vegetarian-gym"));
    assert_eq!(calls[0].body["stream"], true, "the structure is streamed");
    let first_day = &calls[1];
    assert!(first_day.body.to_string().contains("day_json"));
    assert_eq!(
        first_day.answered_before, 0,
        "day 1's call arrived before the structure's answer had ended"
    );
    w.shutdown().await;
}
