//! The SQL interface any client uses: creation, bad input, many workers.

use std::time::Duration;

use plan_worker::queue::store::{self, StoreError};
use serde_json::json;
use sqlx::PgPool;

use crate::common::*;
use crate::handlers::instant;

#[sqlx::test]
async fn creating_a_job_twice_for_one_user_and_kind_gives_one_job_and_says_it_existed(
    pool: PgPool,
) {
    let job = new_job(3);
    let first = store::create_job(&pool, &job).await.unwrap();
    let second = store::create_job(&pool, &job).await.unwrap();
    assert!(!first.existed);
    assert!(second.existed);
    assert_eq!(first.job_id, second.job_id);
    let count: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

async fn refused_field(pool: &PgPool, job: store::NewJob) -> String {
    match store::create_job(pool, &job).await {
        Err(StoreError::InvalidInput { field, message }) => {
            assert!(!message.is_empty());
            field
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[sqlx::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_inserted(pool: PgPool) {
    let mut not_object = new_job(3);
    not_object.profile_snapshot = json!(["not", "an", "object"]);
    assert_eq!(refused_field(&pool, not_object).await, "profile_snapshot");

    let mut unknown_kind = new_job(3);
    unknown_kind.kind = "horoscope".into();
    assert_eq!(refused_field(&pool, unknown_kind).await, "kind");

    assert_eq!(refused_field(&pool, new_job(-1)).await, "max_retries");

    let count: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test]
async fn three_workers_complete_a_thousand_jobs_each_exactly_once(pool: PgPool) {
    let mut workers = Vec::new();
    for i in 0..3 {
        let (registry, _starts) = instant();
        workers.push(start(&pool, registry, settings(&format!("many-{i}"))).await);
    }
    let mut events = JobEvents::open(&pool).await;
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, 1000)",
    )
    .bind(KIND)
    .execute(&pool)
    .await
    .unwrap();
    events
        .wait_count("completed", 1000, Duration::from_secs(60))
        .await;

    let (completed, attempt_rows, completed_attempts, max_attempts): (i64, i64, i64, i32) =
        sqlx::query_as(
            "select (select count(*) from plan_generation_jobs where status = 'completed'), \
                (select count(*) from plan_job_attempts), \
                (select count(*) from plan_job_attempts where outcome = 'completed'), \
                (select max(attempt_count) from plan_generation_jobs)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (completed, attempt_rows, completed_attempts, max_attempts),
        (1000, 1000, 1000, 1)
    );
    let per_worker: Vec<i64> =
        sqlx::query_scalar("select count(*) from plan_job_attempts group by worker_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(per_worker.iter().sum::<i64>(), 1000);
    for w in workers {
        w.shutdown().await;
    }
}

/// A running attempt has no row of its own until it ends (0023): the time
/// in its stage, which the ETA reads, comes from the job row.
#[sqlx::test]
async fn a_running_attempt_s_stage_time_is_known_before_its_attempt_row_exists(pool: PgPool) {
    let job = enqueue(&pool, 1).await;
    sqlx::query("select * from claim_plan_jobs('sql-client', array[$1], 1, 30)")
        .bind(KIND)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "update plan_generation_jobs set progress = 'generating_details', \
         progress_at = now() where id = $1",
    )
    .bind(job)
    .execute(&pool)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from plan_job_attempts where job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the attempt's row is written at its end");
    let state = store::running_state(&pool, job).await.unwrap().unwrap();
    assert_eq!(state.progress.as_deref(), Some("generating_details"));
    let in_stage = state.in_stage_seconds.expect("the stage's time is known");
    assert!((0.0..60.0).contains(&in_stage), "{in_stage}");
}
