//! Lost workers and leases, cancellation and graceful shutdown.

use std::time::{Duration, Instant};

use plan_worker::queue::store::{self, FailOutcome, JobStatus};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::common::*;
use crate::handlers::{blocking, instant};

#[sqlx::test]
async fn a_worker_that_stops_heartbeating_loses_its_job_to_a_peer_and_its_late_complete_is_refused(
    pool: PgPool,
) {
    let job = enqueue(&pool, 3).await;
    // A stalled worker: it claims with a 1 s lease and never heartbeats.
    let kinds = vec![KIND.to_owned()];
    let stalled = store::claim(&pool, "stalled", &kinds, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(stalled.len(), 1);

    let (registry, mut starts) = instant();
    let mut s = settings("peer-e");
    s.poll_interval_seconds = 0.3;
    let mut events = JobEvents::open(&pool).await;
    let peer = start(&pool, registry, s).await;
    let (started, attempt) = next_start(&mut starts, Duration::from_secs(5)).await;
    assert_eq!((started, attempt), (job, 2));
    events.wait_status(job, "completed", WAIT).await;

    let late = store::complete(&pool, &[(job, stalled[0].lease_token)], &[None])
        .await
        .unwrap();
    assert!(
        late.is_empty(),
        "the stalled worker's completion must be refused"
    );
    let rows = attempts(&pool, job).await;
    assert_eq!(outcomes(&rows), ["lost", "completed"]);
    assert_eq!(rows[0].error_code.as_deref(), Some("WORKER_LOST"));
    assert_eq!(
        (rows[0].worker_id.as_str(), rows[1].worker_id.as_str()),
        ("stalled", "peer-e")
    );
    assert_eq!(
        job_row(&pool, job).await.retry_count,
        1,
        "a lost lease counts as an attempt"
    );
    peer.shutdown().await;
}

#[sqlx::test]
async fn a_dead_workers_job_is_taken_over_within_one_tick_long_before_its_lease_expires(
    pool: PgPool,
) {
    let (dropped_tx, _dropped) = mpsc::unbounded_channel();
    let (doomed_registry, mut doomed_starts) = blocking(dropped_tx);
    let mut s = settings("doomed");
    // Dead means: lock free and no heartbeat for two intervals (2 s here);
    // the lease (30 s) would take far longer.
    s.lease_seconds = 30.0;
    s.heartbeat_seconds = Some(1.0);
    let doomed = start(&pool, doomed_registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut doomed_starts, Duration::from_secs(2)).await;

    let (registry, mut starts) = instant();
    let mut s = settings("survivor");
    s.poll_interval_seconds = 0.5;
    let survivor = start(&pool, registry, s).await;
    let mut events = JobEvents::open(&pool).await;

    // kill -9: no cleanup runs, and the connections die with the process.
    let died = Instant::now();
    doomed.kill().await;
    terminate_backends_of(&pool, "doomed").await;
    // Two silent heartbeats (2 s) and a tick (0.5 s), with room for a
    // loaded machine: far from the 30 s lease.
    let (started, attempt) = next_start(&mut starts, Duration::from_secs(6)).await;
    assert_eq!((started, attempt), (job, 2));
    assert!(
        died.elapsed() < Duration::from_secs(6),
        "taken over in {:?}, lease is 30 s",
        died.elapsed()
    );
    events.wait_status(job, "completed", WAIT).await;

    let rows = attempts(&pool, job).await;
    assert_eq!(outcomes(&rows), ["lost", "completed"]);
    let dead_rows: i64 =
        sqlx::query_scalar("select count(*) from plan_workers where id = 'doomed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dead_rows, 0, "the dead worker's row is removed");
    survivor.shutdown().await;
}

async fn cancel_running_job(pool: PgPool, lose_notification: bool) {
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel();
    let (registry, mut starts) = blocking(dropped_tx);
    let mut s = settings(if lose_notification { "w-j2" } else { "w-j1" });
    s.lease_seconds = 1.5; // heartbeat every 0.5 s
    let worker = start(&pool, registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut starts, Duration::from_secs(2)).await;

    if lose_notification {
        sqlx::query("alter table plan_generation_jobs disable trigger plan_jobs_notify_update")
            .execute(&pool)
            .await
            .unwrap();
    }
    let cancelled = store::cancel(&pool, job, "user asked")
        .await
        .unwrap()
        .unwrap();
    assert!(cancelled.cancelled);
    assert_eq!(cancelled.previous_status, JobStatus::Processing);
    // One heartbeat (0.5 s) plus room for a loaded machine.
    let stopped = tokio::time::timeout(Duration::from_millis(1200), dropped.recv()).await;
    assert_eq!(
        stopped.expect("handler stopped within one heartbeat"),
        Some(job)
    );

    let row = job_row(&pool, job).await;
    assert_eq!(
        (row.status.as_str(), row.error_code.as_deref()),
        ("cancelled", Some("CANCELLED"))
    );
    assert_eq!(outcomes(&attempts(&pool, job).await), ["cancelled"]);
    worker.shutdown().await;
    assert_eq!(
        job_row(&pool, job).await.status,
        "cancelled",
        "nothing more was written for it"
    );
}

#[sqlx::test]
async fn cancelling_a_running_job_stops_its_handler(pool: PgPool) {
    cancel_running_job(pool, false).await;
}

#[sqlx::test]
async fn cancelling_a_running_job_stops_its_handler_within_a_heartbeat_when_the_notification_is_lost(
    pool: PgPool,
) {
    cancel_running_job(pool, true).await;
}

#[sqlx::test]
async fn graceful_shutdown_gives_running_jobs_back_unspent_and_a_peer_finishes_them(pool: PgPool) {
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel();
    let (registry, mut starts) = blocking(dropped_tx);
    let mut s = settings("leaving");
    s.shutdown_grace_seconds = 0.2;
    let leaving = start(&pool, registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut starts, Duration::from_secs(2)).await;

    let mut events = JobEvents::open(&pool).await;
    leaving.shutdown().await;
    let stopped = tokio::time::timeout(WAIT, dropped.recv())
        .await
        .expect("handler stopped");
    assert_eq!(stopped, Some(job));
    let row = job_row(&pool, job).await;
    assert_eq!((row.status.as_str(), row.retry_count), ("pending", 0));
    let registered: i64 = sqlx::query_scalar("select count(*) from plan_workers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(registered, 0, "the worker deregistered");

    let (registry, mut starts) = instant();
    let peer = start(&pool, registry, settings("peer-k")).await;
    assert_eq!(
        next_start(&mut starts, Duration::from_secs(2)).await,
        (job, 2)
    );
    events.wait_status(job, "completed", WAIT).await;
    assert_eq!(
        outcomes(&attempts(&pool, job).await),
        ["released", "completed"]
    );
    assert_eq!(job_row(&pool, job).await.retry_count, 0);
    peer.shutdown().await;
}

#[sqlx::test]
async fn a_job_that_keeps_losing_its_worker_fails_with_worker_lost_after_its_retries(pool: PgPool) {
    let job = enqueue(&pool, 2).await;
    let kinds = vec![KIND.to_owned()];
    let mut outcomes_seen = Vec::new();
    for round in 1..=3 {
        let claimed = store::claim(&pool, "crashy", &kinds, 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "round {round} claims the job");
        // The worker dies mid-job: its lease runs out (set, not waited for).
        sqlx::query("update plan_generation_jobs set locked_until = now() - interval '1 second' where id = $1")
            .bind(job)
            .execute(&pool)
            .await
            .unwrap();
        let reaped = store::reap(&pool).await.unwrap();
        assert_eq!(reaped.len(), 1);
        outcomes_seen.push(reaped[0].outcome);
    }
    assert_eq!(
        outcomes_seen,
        [FailOutcome::Retry, FailOutcome::Retry, FailOutcome::Failed]
    );
    let row = job_row(&pool, job).await;
    assert_eq!(
        (row.status.as_str(), row.error_code.as_deref()),
        ("failed", Some("WORKER_LOST"))
    );
    assert!(
        store::claim(&pool, "crashy", &kinds, 1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(attempts(&pool, job).await.len(), 3);
    let told: Vec<String> =
        sqlx::query_scalar("select event from notification_outbox where job_id = $1")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        told,
        ["plan_failed"],
        "the user is told, in the reaper's transaction"
    );
}

#[sqlx::test]
async fn a_job_still_running_at_shutdown_is_given_back_inside_the_grace_not_after_it(pool: PgPool) {
    let (dropped_tx, _dropped) = mpsc::unbounded_channel();
    let (registry, mut starts) = blocking(dropped_tx);
    let mut s = settings("orchestrated");
    // An orchestrator kills the process when this runs out: the release
    // must be in the database before then.
    s.shutdown_grace_seconds = 4.0;
    let leaving = start(&pool, registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut starts, Duration::from_secs(2)).await;
    let asked: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&pool)
        .await
        .unwrap();
    leaving.shutdown().await;
    let (status, released): (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select status::text, updated_at from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "pending", "given back");
    let after = (released - asked).num_milliseconds();
    // The jobs' time is the first 3 s; the last second is the release's.
    assert!(
        (2_500..4_000).contains(&after),
        "released {after} ms after the shutdown began: after the jobs' time, inside the 4 s grace"
    );
}
