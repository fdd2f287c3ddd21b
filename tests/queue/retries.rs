//! Exact retry semantics: limits, schedule, classification, panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use plan_worker::error_code::ErrorCode;
use plan_worker::queue::{Done, JobError};
use sqlx::PgPool;

use crate::common::*;
use crate::handlers::probe;

#[sqlx::test]
async fn max_retries_3_gives_exactly_4_attempts_then_failed_with_the_last_code(pool: PgPool) {
    let (registry, mut starts) = probe(|ctx| async move {
        let code = if ctx.attempt() < 4 {
            ErrorCode::AiUnavailable
        } else {
            ErrorCode::NetworkError
        };
        Err::<Done, _>(JobError::new(code, format!("attempt {}", ctx.attempt())))
    });
    let worker = start(&pool, registry, settings("w-g")).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    events.wait_status(job, "failed", WAIT).await;

    let mut seen = Vec::new();
    while let Ok((_, attempt)) = starts.try_recv() {
        seen.push(attempt);
    }
    assert_eq!(seen, [1, 2, 3, 4]);
    let row = job_row(&pool, job).await;
    assert_eq!((row.retry_count, row.attempt_count), (3, 4));
    assert_eq!(
        row.error_code.as_deref(),
        Some("NETWORK_ERROR"),
        "the last error code"
    );
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        ["retry", "retry", "retry", "failed"]
    );
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_retried_job_waits_for_its_run_after_and_is_woken_by_the_schedule_not_the_tick(
    pool: PgPool,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let (registry, mut starts) = probe(move |_| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                Err(JobError::new(ErrorCode::AiUnavailable, "busy")
                    .with_retry_after(Some(Duration::from_millis(1500))))
            } else {
                Ok(Done::Complete)
            }
        }
    });
    let worker = start(&pool, registry, settings("w-h")).await; // 60 s tick
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut starts, Duration::from_secs(2)).await;
    // The insert was pending too: the retry's pending carries its error code.
    events
        .wait_for(
            |e| e.id == job && e.status == "pending" && e.error_code.is_some(),
            WAIT,
        )
        .await;
    let run_after: DateTime<Utc> =
        sqlx::query_scalar("select run_after from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();

    assert_eq!(
        next_start(&mut starts, Duration::from_secs(5)).await,
        (job, 2)
    );
    events.wait_status(job, "completed", WAIT).await;
    let started: DateTime<Utc> = sqlx::query_scalar(
        "select started_at from plan_job_attempts where job_id = $1 and attempt = 2",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    let late = started - run_after;
    assert!(
        late >= chrono::Duration::zero(),
        "claimed {late} before its run_after"
    );
    assert!(
        late < chrono::Duration::milliseconds(500),
        "claimed {late} after its run_after"
    );
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_non_retryable_error_fails_the_job_at_once(pool: PgPool) {
    let (registry, _starts) = probe(|_| async {
        Err::<Done, _>(JobError::new(
            ErrorCode::ValidationFailed,
            "diet: chicken in a vegan plan",
        ))
    });
    let worker = start(&pool, registry, settings("w-i")).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    events.wait_status(job, "failed", WAIT).await;

    let row = job_row(&pool, job).await;
    assert_eq!(
        (row.retry_count, row.error_code.as_deref()),
        (0, Some("VALIDATION_FAILED"))
    );
    let rows = attempts(&pool, job).await;
    assert_eq!(outcomes(&rows), ["failed"]);
    let detail: String =
        sqlx::query_scalar("select error_detail from plan_job_attempts where job_id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        detail.contains("chicken"),
        "the internal detail is kept on the attempt"
    );
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_panicking_handler_gives_unexpected_error_the_job_is_retried_and_the_worker_lives_on(
    pool: PgPool,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let (registry, _starts) = probe(move |_| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                panic!("boom");
            }
            Ok(Done::Complete)
        }
    });
    let worker = start(&pool, registry, settings("w-l")).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    events.wait_status(job, "completed", WAIT).await;
    let rows = attempts(&pool, job).await;
    assert_eq!(outcomes(&rows), ["retry", "completed"]);
    assert_eq!(rows[0].error_code.as_deref(), Some("UNEXPECTED_ERROR"));

    let next = enqueue(&pool, 3).await;
    events.wait_status(next, "completed", WAIT).await;
    worker.shutdown().await;
}

#[sqlx::test]
async fn an_attempt_past_its_deadline_is_aborted_as_ai_timeout_and_retried(pool: PgPool) {
    let (registry, _starts) = probe(|ctx| async move {
        if ctx.attempt() == 1 {
            std::future::pending::<()>().await;
        }
        Ok(Done::Complete)
    });
    let mut s = settings("w-t");
    s.job_timeout_seconds = 0.3;
    let worker = start(&pool, registry, s).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    events.wait_status(job, "completed", WAIT).await;
    let rows = attempts(&pool, job).await;
    assert_eq!(outcomes(&rows), ["retry", "completed"]);
    assert_eq!(rows[0].error_code.as_deref(), Some("AI_TIMEOUT"));
    worker.shutdown().await;
}

#[sqlx::test]
async fn rate_limit_deferrals_spend_no_retry_until_their_cap(pool: PgPool) {
    let (registry, _starts) = probe(|_| async {
        Err::<Done, _>(
            JobError::new(ErrorCode::AiRateLimit, "429")
                .with_retry_after(Some(Duration::from_millis(10))),
        )
    });
    let mut s = settings("w-r");
    s.max_rate_limit_deferrals = 2;
    let worker = start(&pool, registry, s).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 1).await;
    events.wait_status(job, "failed", WAIT).await;
    // 2 deferrals (free), then 1 retry, then the final failure.
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        ["deferred", "deferred", "retry", "failed"]
    );
    let row = job_row(&pool, job).await;
    assert_eq!(
        (row.retry_count, row.error_code.as_deref()),
        (1, Some("AI_RATE_LIMIT"))
    );
    worker.shutdown().await;
}

/// Claims `job` and fails it with a 429 through the SQL interface; returns
/// the deferral's delay in seconds.
async fn defer_once(pool: &PgPool, job: uuid::Uuid, retry_after: Option<f64>) -> f64 {
    sqlx::query("update plan_generation_jobs set run_after = now() where id = $1")
        .bind(job)
        .execute(pool)
        .await
        .unwrap();
    let token: uuid::Uuid = sqlx::query_scalar(
        "select lease_token from claim_plan_jobs('sql-client', array[$1], 1, 30)",
    )
    .bind(KIND)
    .fetch_one(pool)
    .await
    .unwrap();
    let outcome: String = sqlx::query_scalar(
        "select fail_plan_job($1, $2, 'AI_RATE_LIMIT', 'busy', true, $3, null, 1, 64, 100)",
    )
    .bind(job)
    .bind(token)
    .bind(retry_after)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(outcome, "deferred");
    sqlx::query_scalar("select extract(epoch from run_after - now())::float8 from plan_generation_jobs where id = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn deferrals_grow_from_the_base_carry_jitter_and_cut_a_retry_after_of_1e12_seconds(
    pool: PgPool,
) {
    let job = enqueue(&pool, 3).await;
    // Without Retry-After: base 1 s doubling per deferral (up to 64 s),
    // each with up to a quarter more.
    let mut delays = Vec::new();
    for _ in 0..5 {
        delays.push(defer_once(&pool, job, None).await);
    }
    for (n, d) in delays.iter().enumerate() {
        let floor = 2f64.powi(n as i32);
        assert!(
            *d >= floor - 0.05 && *d <= floor * 1.25 + 0.05,
            "deferral {n}: {d} s ({delays:?})"
        );
    }
    // A wild Retry-After is cut to a day by the SQL function itself.
    let wild = defer_once(&pool, job, Some(1e12)).await;
    assert!(
        (86_400.0 - 1.0..=86_400.0 * 1.25 + 1.0).contains(&wild),
        "{wild}"
    );

    // Twenty jobs told the same Retry-After do not all come back at once.
    let mut same = Vec::new();
    for _ in 0..20 {
        let j = enqueue(&pool, 3).await;
        sqlx::query("update plan_generation_jobs set run_after = now() + interval '1 day' where id <> $1 and status = 'pending'")
            .bind(j)
            .execute(&pool)
            .await
            .unwrap();
        same.push(defer_once(&pool, j, Some(10.0)).await);
    }
    assert!(same.iter().all(|d| (9.9..=12.6).contains(d)), "{same:?}");
    let spread = same.iter().copied().fold(f64::MIN, f64::max)
        - same.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread > 0.5, "jittered: {same:?}");
}

#[sqlx::test]
async fn the_worker_cuts_a_providers_retry_after_to_retry_after_max_seconds(pool: PgPool) {
    let (registry, _starts) = probe(|_| async {
        Err::<Done, _>(
            JobError::new(ErrorCode::AiRateLimit, "429")
                .with_retry_after(Some(Duration::from_secs(1_000_000_000_000))),
        )
    });
    let mut s = settings("w-cap");
    s.retry_after_max_seconds = 120.0;
    let worker = start(&pool, registry, s).await;
    let mut events = JobEvents::open(&pool).await;
    let job = enqueue(&pool, 3).await;
    events
        .wait_for(
            |e| e.id == job && e.error_code.as_deref() == Some("AI_RATE_LIMIT"),
            WAIT,
        )
        .await;
    let wait: f64 = sqlx::query_scalar("select extract(epoch from run_after - now())::float8 from plan_generation_jobs where id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        wait > 100.0 && wait <= 150.5,
        "cut to 120 s plus jitter: {wait}"
    );
    worker.shutdown().await;
}
