//! How a worker learns of work: NOTIFY, reconnect, the fallback tick, and
//! fast polling when notifications do not arrive.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::common::*;
use crate::handlers::instant;

#[sqlx::test]
async fn an_inserted_job_starts_at_once_by_notify_not_at_the_60s_tick(pool: PgPool) {
    let (registry, mut starts) = instant();
    let worker = start(&pool, registry, settings("w-a")).await;
    let mut events = JobEvents::open(&pool).await;

    let inserted = Instant::now();
    let job = enqueue(&pool, 3).await;
    // Well under a second on a quiet server (see BENCHMARKS.md); the bound
    // leaves room for the other tests' NOTIFYing commits, which share the
    // cluster-wide notify lock, and still proves it was not the tick.
    let (started, attempt) = next_start(&mut starts, Duration::from_secs(5)).await;
    assert!(inserted.elapsed() < Duration::from_secs(5));
    assert_eq!((started, attempt), (job, 1));

    events.wait_status(job, "completed", WAIT).await;
    let row = job_row(&pool, job).await;
    assert_eq!(row.status, "completed");
    assert_eq!(outcomes(&attempts(&pool, job).await), ["completed"]);
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_job_inserted_while_the_listener_is_down_starts_right_after_the_reconnect(pool: PgPool) {
    let (registry, mut starts) = instant();
    let worker = start(&pool, registry, settings("w-b")).await;
    warm_up(&pool, &mut starts).await;
    // The insert sends no notification, so only the claim that follows a
    // reconnect can find it before the 60 s tick.
    sqlx::query("alter table plan_generation_jobs disable trigger plan_jobs_notify_insert")
        .execute(&pool)
        .await
        .unwrap();
    let job = insert_unnoticed(&pool, &mut starts).await;

    let old_pid = worker.listener.backend_pid.load(Ordering::SeqCst);
    let killed: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(old_pid as i32)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed);

    let (started, _) = next_start(&mut starts, Duration::from_secs(5)).await;
    assert_eq!(started, job);
    assert_ne!(
        worker.listener.backend_pid.load(Ordering::SeqCst),
        old_pid,
        "a new LISTEN connection"
    );
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_job_whose_notify_never_came_is_picked_up_by_the_fallback_tick(pool: PgPool) {
    let (registry, mut starts) = instant();
    let mut s = settings("w-c");
    s.poll_interval_seconds = 1.0;
    let worker = start(&pool, registry, s).await;
    warm_up(&pool, &mut starts).await;
    sqlx::query("alter table plan_generation_jobs disable trigger plan_jobs_notify_insert")
        .execute(&pool)
        .await
        .unwrap();

    let job = enqueue(&pool, 3).await;
    let (started, _) = next_start(&mut starts, Duration::from_secs(3)).await;
    assert_eq!(started, job);
    worker.shutdown().await;
}

#[sqlx::test]
async fn the_notify_self_test_detects_a_deaf_listener_and_switches_to_fast_polling(pool: PgPool) {
    // The listener goes to another (migrated) database, as through a pooler
    // that drops notifications: it never hears the worker's own NOTIFY.
    let other = format!("deaf_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {other}")))
        .execute(&pool)
        .await
        .unwrap();
    let other_opts = pool.connect_options().as_ref().clone().database(&other);
    let other_pool = sqlx::PgPool::connect_with(other_opts.clone())
        .await
        .unwrap();
    plan_worker::db::migrate(&other_pool).await.unwrap();

    let (registry, mut starts) = instant();
    let mut s = settings("w-p");
    s.notify_self_test_seconds = 0.5;
    let worker = plan_worker::queue::Worker::new(pool.clone(), other_opts, registry, s)
        .unwrap()
        .spawn();
    assert!(worker.wait_listening(WAIT).await);
    assert!(
        !worker.listener.self_test_ok.load(Ordering::SeqCst),
        "the self-test must fail"
    );

    // With a 60 s tick, only fast polling can start this job in time.
    let job = enqueue(&pool, 3).await;
    let (started, _) = next_start(&mut starts, Duration::from_secs(2)).await;
    assert_eq!(started, job);

    worker.shutdown().await;
    other_pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database {other} with (force)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

/// Runs one job through the worker, so that its start-up claim is behind it
/// and only the wake source under test can find the next job.
/// Inserts a job (its NOTIFY disabled by the caller) that nothing picks up
/// within 300 ms. A claim round already in flight may end by reading the
/// next due job and so find it through the schedule wake; that is correct,
/// but not the case under test, so try again, at most three times.
async fn insert_unnoticed(pool: &PgPool, starts: &mut Starts) -> uuid::Uuid {
    for _ in 0..3 {
        let job = enqueue(pool, 3).await;
        match tokio::time::timeout(Duration::from_millis(300), starts.recv()).await {
            Err(_) => return job,
            Ok(started) => assert_eq!(started.map(|s| s.0), Some(job)),
        }
    }
    panic!("something keeps waking the worker although no NOTIFY is sent");
}

/// Sends `signal` (STOP or CONT) to a PostgreSQL backend process.
fn signal_backend(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[sqlx::test]
async fn a_listen_connection_that_delivers_nothing_is_found_by_its_own_notify_and_replaced(
    pool: PgPool,
) {
    let (registry, mut starts) = instant();
    let mut s = settings("w-halfopen");
    s.notify_check_seconds = 0.5;
    s.notify_self_test_seconds = 0.5;
    let worker = start(&pool, registry, s).await;
    warm_up(&pool, &mut starts).await;
    // A stopped backend keeps its socket open and sends nothing: from the
    // worker's side exactly a half-open connection, where no read fails.
    let old_pid = worker.listener.backend_pid.load(Ordering::SeqCst);
    let mut up = worker.listener.connected.subscribe();
    signal_backend(old_pid, "STOP");
    let noticed = tokio::time::timeout(Duration::from_secs(5), up.wait_for(|c| !*c)).await;
    // Let the old backend go (it sees its client gone and exits, freeing
    // the worker's presence lock) whatever the outcome.
    signal_backend(old_pid, "CONT");
    noticed
        .expect("the deaf connection was noticed within a check and a self-test")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), up.wait_for(|c| *c))
        .await
        .expect("a new LISTEN connection")
        .unwrap();
    assert_ne!(worker.listener.backend_pid.load(Ordering::SeqCst), old_pid);
    // Notifications work again: a new job starts by NOTIFY, not the 60 s tick.
    let job = enqueue(&pool, 3).await;
    let (started, _) = next_start(&mut starts, Duration::from_secs(5)).await;
    assert_eq!(started, job);
    worker.shutdown().await;
}
