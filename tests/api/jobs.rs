//! Creating jobs (idempotent, validated, limited), their status and
//! estimate, cancelling a running one, retrying a failed one.

use std::time::Duration;

use plan_worker::config::{ApiSettings, WorkerSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::support;

#[sqlx::test]
async fn creating_twice_gives_201_then_200_with_the_same_job(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let first = api.create(user).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["status"], "created");
    // The old edge function's answer, for its clients.
    assert_eq!(first.body["success"], true);
    assert!(first.body.get("existingJobId").is_none(), "{}", first.body);
    let id = job_id(&first);
    assert_eq!(first.headers["location"], format!("/v1/plan-jobs/{id}"));
    let second = api.create(user).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["status"], "existing");
    assert_eq!(job_id(&second), id);
    assert_eq!(second.body["success"], true);
    assert_eq!(second.body["existingJobId"], id.to_string());
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);

    let active = api.get("/v1/plan-jobs/active", &token(user)).await;
    assert_eq!(active.status, StatusCode::OK);
    assert_eq!(active.body["jobId"], id.to_string());
    let none = api
        .get("/v1/plan-jobs/active", &token(Uuid::new_v4()))
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn ten_concurrent_creations_for_one_user_make_one_job(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let answers = futures_util::future::join_all((0..10).map(|_| api.create(user))).await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    assert!(
        answers
            .iter()
            .all(|a| a.status.is_success() && job_id(a) == job_id(&answers[0]))
    );
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

#[sqlx::test]
async fn an_idempotency_key_returns_its_first_job_and_refuses_another_request(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let send = |profile: serde_json::Value| {
        api.http
            .post(format!("{}/v1/plan-jobs", api.base))
            .bearer_auth(token(user))
            .header("Idempotency-Key", "create-plan-7f3a")
            .json(&json!({ "profileSnapshot": profile }))
            .send()
    };
    let first = send(profile("muscle-gain-vegetarian-gym")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    // The job ends; the same key still names it (no second job).
    sqlx::query("select cancel_plan_job($1)")
        .bind(first["jobId"].as_str().unwrap().parse::<Uuid>().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let replay = send(profile("muscle-gain-vegetarian-gym")).await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    let replay: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(replay["jobId"], first["jobId"]);
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);

    let other = send(profile("fat-loss-vegan-home")).await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);
    let other: serde_json::Value = other.json().await.unwrap();
    assert_eq!(other["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}

#[sqlx::test]
async fn a_profile_with_three_bad_fields_gets_422_naming_all_three_and_no_job(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({"profileSnapshot": profile("invalid-three-fields")}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "INVALID_PROFILE");
    let fields: Vec<&str> = a.body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["goal", "age", "height_cm"] {
        assert!(
            fields.contains(&format!("profileSnapshot.{f}").as_str()),
            "{f} not named in {fields:?}"
        );
    }
    let missing = api
        .post("/v1/plan-jobs", &token(Uuid::new_v4()), json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["error"]["field"], "profileSnapshot");
    let kind = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({"kind": "haiku", "profileSnapshot": profile("muscle-gain-vegetarian-gym")}),
        )
        .await;
    assert_eq!(kind.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(kind.body["error"]["field"], "kind");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
}

#[sqlx::test]
async fn a_push_token_that_is_not_an_expo_token_gets_422_naming_it_and_no_job(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let cases = [
        ("pushToken", json!("x".repeat(60_000))),
        ("pushToken", json!(12345)),
        ("push_token", json!({"evil": [1, 2, 3]})),
    ];
    for (spelling, value) in cases {
        let mut p = profile("muscle-gain-vegetarian-gym");
        p[spelling] = value;
        let a = api
            .post(
                "/v1/plan-jobs",
                &token(Uuid::new_v4()),
                json!({ "profileSnapshot": p }),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{spelling}");
        assert_eq!(a.body["error"]["field"], "profileSnapshot.push_token");
        assert!(a.body.to_string().len() < 2000, "the value is not echoed");
    }
    // A null under one spelling must not let the other one through unchecked.
    let mut p = profile("muscle-gain-vegetarian-gym");
    p["push_token"] = json!(null);
    p["pushToken"] = json!({"evil": [1, 2, 3]});
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({ "profileSnapshot": p }),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["field"], "profileSnapshot.push_token");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);

    p["pushToken"] = json!(" ExponentPushToken[ok-1] ");
    let ok = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({ "profileSnapshot": p }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let stored: serde_json::Value =
        sqlx::query_scalar("select profile_snapshot from plan_generation_jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored["push_token"], "ExponentPushToken[ok-1]");
    assert!(stored.get("pushToken").is_none(), "one spelling is stored");
}

#[sqlx::test]
async fn a_body_over_the_cap_gets_413_and_bad_json_400(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let mut p = profile("muscle-gain-vegetarian-gym");
    p["notes"] = json!("x".repeat(70 * 1024));
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({"profileSnapshot": p}),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.body["error"]["code"], "PAYLOAD_TOO_LARGE");
    let bad = api
        .http
        .post(format!("{}/v1/plan-jobs", api.base))
        .bearer_auth(token(Uuid::new_v4()))
        .body("{\"profileSnapshot\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
}

#[sqlx::test]
async fn the_creation_rate_limit_answers_429_with_retry_after(pool: PgPool) {
    let s = ApiSettings {
        create_rate_limit: "2/hour".parse().unwrap(),
        ..settings()
    };
    let api = start(&pool, s).await;
    let user = Uuid::new_v4();
    for _ in 0..2 {
        let a = api.create(user).await;
        assert_eq!(a.status, StatusCode::CREATED);
        let cancel = api.act(job_id(&a), "cancel", &token(user)).await;
        assert_eq!(cancel.status, StatusCode::OK);
    }
    let limited = api.create(user).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );
    assert_eq!(limited.body["error"]["code"], "RATE_LIMITED");
    let wait = retry_after(&limited);
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 2);
    // Other users have their own allowance.
    assert_eq!(api.create(Uuid::new_v4()).await.status, StatusCode::CREATED);
}

#[sqlx::test]
async fn the_regeneration_cooldown_answers_429_until_it_has_passed(pool: PgPool) {
    let s = ApiSettings {
        regeneration_cooldown: "14d".parse().unwrap(),
        ..settings()
    };
    let api = start(&pool, s).await;
    let (recent, old) = (Uuid::new_v4(), Uuid::new_v4());
    for (user, age_days) in [(recent, 1), (old, 15)] {
        seed_plan(&pool, user, Duration::from_secs(age_days * 86_400)).await;
    }
    let a = api.create(recent).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "REGENERATION_COOLDOWN");
    let wait = retry_after(&a);
    let thirteen_days = 13 * 86_400;
    assert!(
        (thirteen_days - 60..=thirteen_days + 1).contains(&wait),
        "Retry-After {wait}"
    );
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from plan_generation_jobs where user_id = $1 and status = 'pending'",
    )
    .bind(recent)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(jobs, 0);
    assert_eq!(api.create(old).await.status, StatusCode::CREATED);
}

/// A completed job with its saved plan, made `age` ago.
async fn seed_plan(pool: &PgPool, user: Uuid, age: Duration) -> Uuid {
    let job: Uuid = sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, created_at, \
         started_at, completed_at) \
         values ($1, 'weekly_base_plan', 'completed', '{}', now() - $2 * interval '1 second', \
         now() - $2 * interval '1 second', now() - $2 * interval '1 second') returning id",
    )
    .bind(user)
    .bind(age.as_secs_f64())
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into weekly_base_plans (user_id, job_id, version, plan, targets, source, created_at) \
         values ($1, $2, 1, '{\"days\": []}', '{\"kcal\": 2500}', 'offline', now() - $3 * interval '1 second')",
    )
    .bind(user)
    .bind(job)
    .bind(age.as_secs_f64())
    .execute(pool)
    .await
    .unwrap();
    job
}

#[sqlx::test]
async fn the_estimate_comes_from_recorded_durations(pool: PgPool) {
    // Ten completed jobs that ran 10, 20, ..., 100 s: median 55, and a
    // range of the fastest and the slowest (the prediction interval of ten
    // jobs), recorded before stage timings (and by a worker that names no
    // route).
    for i in 1..=10 {
        sqlx::query(
            "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, \
             started_at, completed_at) \
             values (gen_random_uuid(), 'weekly_base_plan', 'completed', '{}', \
             now() - interval '1 hour', now() - interval '1 hour' + $1 * interval '1 second')",
        )
        .bind(f64::from(i * 10))
        .execute(&pool)
        .await
        .unwrap();
    }
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    let a = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["queuePosition"], 1);
    assert_eq!(
        a.body["estimate"],
        json!({"secondsRemaining": 55, "p90SecondsRemaining": 100,
               "range": {"p10": 10, "p50": 55, "p90": 100}, "basedOnJobs": 10,
               "basis": "kind_run_times", "source": null, "model": null, "overdue": false})
    );

    // A second user's job waits behind it; one worker slot: two rounds.
    sqlx::query(
        "insert into plan_workers (id, kinds, concurrency, lock_key) \
         values ('w', '{weekly_base_plan}', 1, 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let second_user = Uuid::new_v4();
    let second = job_id(&api.create(second_user).await);
    let b = api
        .get(&format!("/v1/plan-jobs/{second}"), &token(second_user))
        .await;
    assert_eq!(b.body["queuePosition"], 2);
    assert_eq!(b.body["estimate"]["secondsRemaining"], 110);

    // Running for 20 s: the 8 jobs that ran longer had 10..80 s left:
    // 45 s at the median, the slowest's 80 s at the top of the range.
    sqlx::query(
        "update plan_generation_jobs set status = 'processing', worker_id = 'w', \
         lease_token = gen_random_uuid(), locked_until = now() + interval '30 seconds', \
         started_at = now() - interval '20 seconds' where id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let c = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(c.body["status"], "processing");
    assert_eq!(c.body["queuePosition"], serde_json::Value::Null);
    let left = c.body["estimate"]["secondsRemaining"].as_u64().unwrap();
    assert!((44..=45).contains(&left), "{left}");
    let p90 = c.body["estimate"]["p90SecondsRemaining"].as_u64().unwrap();
    assert!((79..=80).contains(&p90), "{p90}");
    assert_eq!(c.body["estimate"]["basedOnJobs"], 8);
}

#[sqlx::test]
async fn cancelling_a_running_job_stops_the_worker_and_the_status_says_cancelled(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    let mut events = support::JobEvents::open(&pool).await;

    // The LLM takes a minute: the job is surely running when cancelled.
    let mock = support::mock("slow:60000").await;
    let worker = support::plan_worker(
        &pool,
        Some(support::client(&mock, Duration::from_secs(120))),
        false,
        WorkerSettings {
            worker_id: Some("api-cancel".into()),
            shutdown_grace_seconds: 30.0,
            ..WorkerSettings::default()
        },
    )
    .await;
    events.wait_status(id, "processing", WAIT).await;

    let a = api.act(id, "cancel", &token(user)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["previousStatus"], "processing");

    // With a 30 s grace and a 60 s LLM call, only a stopped handler lets
    // the worker shut down at once.
    tokio::time::timeout(Duration::from_secs(10), worker.shutdown())
        .await
        .expect("the cancelled job kept running");
    let status = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(status.body["status"], "cancelled");
    assert_eq!(status.body["error"]["code"], "CANCELLED");
    assert_eq!(
        status.body["error"]["message"],
        "This plan generation was cancelled."
    );
    let outcome: String =
        sqlx::query_scalar("select outcome from plan_job_attempts where job_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcome, "cancelled");
    assert_eq!(count(&pool, "weekly_base_plans").await, 0);

    let again = api.act(id, "cancel", &token(user)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let retried = api.act(id, "retry", &token(user)).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    assert_ne!(job_id(&retried), id);
}

#[sqlx::test]
async fn a_failed_job_shows_a_user_safe_message_and_targets_come_from_the_one_implementation(
    pool: PgPool,
) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let id = job_id(&api.create(user).await);
    sqlx::query(
        "update plan_generation_jobs set status = 'failed', error_code = 'AI_QUOTA_EXCEEDED', \
         error_message = 'HTTP 402 from api.deepseek.com: Insufficient Balance', \
         completed_at = now() where id = $1",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let a = api.get(&format!("/v1/plan-jobs/{id}"), &token(user)).await;
    assert_eq!(a.body["status"], "failed");
    assert_eq!(a.body["error"]["code"], "AI_QUOTA_EXCEEDED");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "Plan generation is temporarily unavailable. Please try again later."
    );
    assert!(!a.body.to_string().contains("402"), "no internals shown");
    assert_eq!(a.body["estimate"], serde_json::Value::Null);

    let p = profile("muscle-gain-vegetarian-gym");
    let t = api
        .post("/v1/targets", &token(user), json!({"profileSnapshot": p}))
        .await;
    assert_eq!(t.status, StatusCode::OK);
    let expected = plan_worker::plan::targets(&plan_worker::plan::parse_profile(&p).unwrap());
    assert_eq!(t.body["targets"]["kcal"], expected.kcal);
    assert_eq!(t.body["targets"]["protein_g"], expected.protein_g);
}

#[sqlx::test]
async fn retrying_an_old_failed_job_is_held_to_the_regeneration_cooldown(pool: PgPool) {
    let s = ApiSettings {
        regeneration_cooldown: "14d".parse().unwrap(),
        ..settings()
    };
    let api = start(&pool, s).await;
    let user = Uuid::new_v4();
    let old_failed: Uuid = sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, error_code, \
         created_at, completed_at) values ($1, 'weekly_base_plan', 'failed', '{}', 'AI_TIMEOUT', \
         now() - interval '30 days', now() - interval '30 days') returning id",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    seed_plan(&pool, user, Duration::from_secs(86_400)).await;
    let a = api.act(old_failed, "retry", &token(user)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "REGENERATION_COOLDOWN");
    let pending: i64 = sqlx::query_scalar(
        "select count(*) from plan_generation_jobs where user_id = $1 and status = 'pending'",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(pending, 0, "no new version through the retry");
}

#[sqlx::test]
async fn fresh_idempotency_keys_count_against_the_creation_limit_and_stay_bounded(pool: PgPool) {
    let s = ApiSettings {
        create_rate_limit: "5/hour".parse().unwrap(),
        ..settings()
    };
    let api = start(&pool, s).await;
    let user = Uuid::new_v4();
    let mut statuses = Vec::new();
    for i in 0..12 {
        let status = api.create_with_key(user, &format!("fresh-{i}")).await;
        statuses.push(status.as_u16());
    }
    // One job created, four more requests answered with it, then 429s.
    assert_eq!(statuses[..5], [201, 200, 200, 200, 200], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
    assert_eq!(count(&pool, "plan_job_idempotency_keys").await, 5);

    // Whatever the limit, a user's keys stay capped.
    let other = Uuid::new_v4();
    sqlx::query(
        "insert into plan_job_idempotency_keys (user_id, key, request_hash, job_id, created_at) \
         select $1, 'old-' || i, repeat('a', 64), gen_random_uuid(), now() - i * interval '1 minute' \
         from generate_series(1, 150) i",
    )
    .bind(other)
    .execute(&pool)
    .await
    .unwrap();
    let unlimited = start(&pool, settings()).await;
    let res = unlimited.create_with_key(other, "newest").await;
    assert_eq!(res, StatusCode::CREATED);
    let kept: Vec<String> = sqlx::query_scalar(
        "select key from plan_job_idempotency_keys where user_id = $1 order by created_at desc",
    )
    .bind(other)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0], "newest");
    assert_eq!(kept[99], "old-99", "the oldest are forgotten first");
}

#[sqlx::test]
async fn a_nul_character_or_an_oversized_snapshot_gets_422_naming_the_users_field(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let mut p = profile("muscle-gain-vegetarian-gym");
    p["name"] = json!("Ali\u{0}ce");
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({"profileSnapshot": p}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(
        a.body["error"]["field"], "profileSnapshot.name",
        "{}",
        a.body
    );

    // Under the body limit as text, over the stored limit as jsonb: many
    // small numbers take more room stored than written.
    let mut p = profile("muscle-gain-vegetarian-gym");
    p["history"] = json!(vec![1; 25_000]);
    let a = api
        .post(
            "/v1/plan-jobs",
            &token(Uuid::new_v4()),
            json!({"profileSnapshot": p}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"]["field"], "profileSnapshot", "{}", a.body);
    let text = a.body.to_string();
    for internal in [
        "plan_generation_jobs",
        "constraint",
        "profile_snapshot_size",
    ] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
    assert_eq!(count(&pool, "plan_generation_jobs").await, 0);
}

#[sqlx::test]
async fn a_full_queue_refuses_creations_with_503_and_writes_nothing(pool: PgPool) {
    let s = ApiSettings {
        max_pending_jobs: 3,
        ..settings()
    };
    let api = start(&pool, s).await;
    for _ in 0..3 {
        assert_eq!(api.create(Uuid::new_v4()).await.status, StatusCode::CREATED);
    }
    let full = api.create(Uuid::new_v4()).await;
    assert_eq!(
        full.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        full.body
    );
    assert_eq!(full.body["error"]["code"], "QUEUE_FULL");
    assert!(retry_after(&full) >= 1);
    assert_eq!(count(&pool, "plan_generation_jobs").await, 3);
}

#[sqlx::test]
async fn one_users_burst_is_refused_in_memory_before_the_database(pool: PgPool) {
    let s = ApiSettings {
        create_burst: 2,
        ..settings()
    };
    let api = start(&pool, s).await;
    let user = Uuid::new_v4();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(api.create(user).await.status.as_u16());
    }
    assert_eq!(statuses, [201, 200, 429, 429, 429]);
    // Someone else is not slowed by it.
    assert_eq!(api.create(Uuid::new_v4()).await.status, StatusCode::CREATED);
}

#[sqlx::test]
async fn profiles_of_jobs_past_the_retention_period_are_emptied_and_cannot_be_retried(
    pool: PgPool,
) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let finished = |days: i32, status: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "insert into plan_generation_jobs (user_id, kind, status, profile_snapshot, \
                 created_at, completed_at) values ($1, 'weekly_base_plan', $3::plan_job_status, $4, \
                 now() - $2 * interval '1 day', now() - $2 * interval '1 day') returning id",
            )
            .bind(user)
            .bind(days)
            .bind(status)
            .bind(json!({"goal": "MAINTENANCE", "push_token": "ExponentPushToken[abc]"}))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let old = finished(40, "failed").await;
    let recent = finished(3, "failed").await;
    let pending = api.create(Uuid::new_v4()).await;
    assert_eq!(pending.status, StatusCode::CREATED);

    plan_worker::queue::reaper::run_once(
        &pool,
        24.0,
        Duration::from_secs(300),
        Some(Duration::from_secs(30 * 86_400)),
    )
    .await;
    let snapshot = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (serde_json::Value, bool)>(
                "select profile_snapshot, profile_scrubbed_at is not null \
                 from plan_generation_jobs where id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(snapshot(old).await, (json!({}), true));
    assert!(!snapshot(recent).await.1, "inside the period: kept");
    assert!(!snapshot(job_id(&pending)).await.1, "unfinished: kept");

    let a = api.act(old, "retry", &token(user)).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "JOB_NOT_RETRYABLE");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retention")
    );
    let b = api.act(recent, "retry", &token(user)).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
}

#[sqlx::test]
async fn every_operator_action_is_audited_with_the_operators_name(pool: PgPool) {
    let s = ApiSettings {
        admin_tokens: Some("ops-alice=alice-token-0123456789,ops-bob=bob-token-0123456789".into()),
        ..settings()
    };
    let api = start(&pool, s).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    let a = api.act(job, "cancel", "alice-token-0123456789").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // The unnamed ADMIN_TOKEN still works, as "admin"; a user's own cancel
    // is not an operator action.
    let other = job_id(&api.create(Uuid::new_v4()).await);
    assert_eq!(api.act(other, "cancel", ADMIN).await.status, StatusCode::OK);
    let own_user = Uuid::new_v4();
    let own = job_id(&api.create(own_user).await);
    assert_eq!(
        api.act(own, "cancel", &token(own_user)).await.status,
        StatusCode::OK
    );

    let rows: Vec<(String, String, Uuid, serde_json::Value)> =
        sqlx::query_as("select operator, action, job_id, detail from operator_actions order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2),
        ("ops-alice", "cancel", job)
    );
    assert_eq!(rows[0].3["previousStatus"], "pending");
    assert_eq!(rows[0].3["userId"], user.to_string());
    assert_eq!((rows[1].0.as_str(), rows[1].2), ("admin", other));
}

/// A token whose app_metadata says `tier` (Supabase's server-set metadata).
fn tier_token(user: Uuid, tier: Option<&str>) -> String {
    let mut claims = support::claims(user);
    if let Some(tier) = tier {
        claims["app_metadata"] = json!({"provider": "email", "tier": tier});
    }
    support::sign(&claims, SECRET)
}

async fn priority_of(pool: &PgPool, job: Uuid) -> i32 {
    sqlx::query_scalar("select priority::int4 from plan_generation_jobs where id = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_jobs_priority_comes_from_the_tier_in_the_token_never_from_the_body(pool: PgPool) {
    let api = start(
        &pool,
        ApiSettings {
            priority_by_tier: Some("pro:10, free:0".into()),
            ..settings()
        },
    )
    .await;
    let body = json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym"), "priority": 100});
    for (tier, expected) in [
        (Some("pro"), 10),
        (Some("free"), 0),
        (Some("gold"), 0),
        (None, 0),
    ] {
        let user = Uuid::new_v4();
        let answer = api
            .post("/v1/plan-jobs", &tier_token(user, tier), body.clone())
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{tier:?}: {}",
            answer.body
        );
        assert_eq!(
            priority_of(&pool, job_id(&answer)).await,
            expected,
            "{tier:?}"
        );
    }

    // The claim's path is a setting: a tier at the token's top level.
    let api = start(
        &pool,
        ApiSettings {
            priority_by_tier: Some("pro:7".into()),
            tier_claim: "plan".into(),
            ..settings()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let mut claims = support::claims(user);
    claims["plan"] = json!("pro");
    let answer = api
        .post("/v1/plan-jobs", &support::sign(&claims, SECRET), body)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(priority_of(&pool, job_id(&answer)).await, 7);
}

#[test]
fn a_bad_priority_by_tier_is_refused_at_start_naming_the_setting() {
    for bad in ["pro", "pro:ten", "pro:101", "pro:1,pro:2", ":5"] {
        let s = ApiSettings {
            priority_by_tier: Some(bad.into()),
            ..settings()
        };
        let err = s.validate().unwrap_err();
        assert_eq!(err.field, "priority_by_tier", "{bad}: {err:?}");
    }
    let s = ApiSettings {
        priority_by_tier: Some("pro:10".into()),
        tier_claim: "app_metadata..tier".into(),
        ..settings()
    };
    assert_eq!(s.validate().unwrap_err().field, "tier_claim");
}

#[sqlx::test]
async fn replace_cancels_the_active_job_and_creates_the_new_one_in_one_go(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let old = job_id(&api.create(user).await);
    let body = |replace: Value| json!({"profileSnapshot": profile("fat-loss-vegan-home"), "replace": replace});

    let new = api
        .post("/v1/plan-jobs", &token(user), body(json!(true)))
        .await;
    assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
    assert_eq!(new.body["status"], "created");
    assert_eq!(new.body["replacedJobId"], old.to_string());
    let new_id = job_id(&new);
    assert_ne!(new_id, old);
    let (status, message): (String, Option<String>) = sqlx::query_as(
        "select status::text, error_message from plan_generation_jobs where id = $1",
    )
    .bind(old)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), message.as_deref()),
        ("cancelled", Some("Replaced by a newer request."))
    );
    let pushes: i64 =
        sqlx::query_scalar("select count(*) from notification_outbox where job_id = $1")
            .bind(old)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pushes, 0, "a replaced job sends no push");
    let active = api.get("/v1/plan-jobs/active", &token(user)).await;
    assert_eq!(active.body["jobId"], new_id.to_string());

    // Without an active job, replace is a plain creation.
    let other = Uuid::new_v4();
    let plain = api
        .post("/v1/plan-jobs", &token(other), body(json!(true)))
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert!(plain.body.get("replacedJobId").is_none(), "{}", plain.body);

    // Not a boolean: refused by name, nothing written.
    let before = count(&pool, "plan_generation_jobs").await;
    let bad = api
        .post("/v1/plan-jobs", &token(user), body(json!("yes")))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.to_string().contains("replace"), "{}", bad.body);
    assert_eq!(count(&pool, "plan_generation_jobs").await, before);
}

#[sqlx::test]
async fn a_replacement_the_limits_refuse_keeps_the_active_job(pool: PgPool) {
    let api = start(
        &pool,
        ApiSettings {
            create_rate_limit: "1/hour".parse().unwrap(),
            ..settings()
        },
    )
    .await;
    let user = Uuid::new_v4();
    let old = job_id(&api.create(user).await);
    let refused = api
        .post(
            "/v1/plan-jobs",
            &token(user),
            json!({"profileSnapshot": profile("fat-loss-vegan-home"), "replace": true}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    let status: String =
        sqlx::query_scalar("select status::text from plan_generation_jobs where id = $1")
            .bind(old)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        status, "pending",
        "the refused replacement cancelled nothing"
    );
    assert_eq!(count(&pool, "plan_generation_jobs").await, 1);
}
