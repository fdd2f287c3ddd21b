//! The queue review's defects, each as a deterministic test: live workers
//! are never reaped for a dropped LISTEN connection, worker ids are unique,
//! creation under REPEATABLE READ returns at once, NOTIFY payloads stay
//! under the limit, and asynchronous commit never leaks into a caller's
//! transaction.

use std::time::{Duration, Instant};

use plan_worker::queue::store::{self, StoreError, WorkerInfo};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::common::*;
use crate::handlers::{blocking, instant};

#[sqlx::test]
async fn a_live_worker_whose_listen_connection_drops_keeps_its_jobs(pool: PgPool) {
    let (dropped_tx, _dropped) = mpsc::unbounded_channel();
    let (registry, mut starts) = blocking(dropped_tx);
    let mut s = settings("survives-restarts");
    s.lease_seconds = 3.0; // heartbeat every second
    let worker = start(&pool, registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut starts, Duration::from_secs(2)).await;

    // A server restart, a proxy or a blip: the LISTEN connection (and with
    // it the presence lock) is gone, the process and its heartbeats are not.
    let mut rx = worker.listener.connected.subscribe();
    assert_eq!(terminate_backends_of(&pool, "survives-restarts").await, 1);
    let reaped = store::reap(&pool).await.unwrap();
    assert!(reaped.is_empty(), "reaped a live worker's job: {reaped:?}");
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|up| !*up))
        .await
        .expect("the listener noticed")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|up| *up))
        .await
        .expect("the listener came back")
        .unwrap();
    assert!(store::reap(&pool).await.unwrap().is_empty());
    let row = job_row(&pool, job).await;
    assert_eq!((row.status.as_str(), row.attempt_count), ("processing", 1));
    assert_eq!(outcomes(&attempts(&pool, job).await), ["running"]);
    worker.kill().await;
}

#[sqlx::test]
async fn a_dead_worker_is_taken_over_within_two_heartbeats_and_a_tick_as_worker_dead(pool: PgPool) {
    let (dropped_tx, _dropped) = mpsc::unbounded_channel();
    let (doomed_registry, mut doomed_starts) = blocking(dropped_tx);
    let mut s = settings("doomed-2");
    s.lease_seconds = 30.0;
    s.heartbeat_seconds = Some(1.0); // dead 2 s after its last heartbeat
    let doomed = start(&pool, doomed_registry, s).await;
    let job = enqueue(&pool, 3).await;
    next_start(&mut doomed_starts, Duration::from_secs(2)).await;
    let (registry, mut starts) = instant();
    let mut s = settings("survivor-2");
    s.poll_interval_seconds = 0.5;
    let survivor = start(&pool, registry, s).await;

    let died = Instant::now();
    doomed.kill().await;
    terminate_backends_of(&pool, "doomed-2").await;
    let (started, attempt) = next_start(&mut starts, Duration::from_secs(8)).await;
    assert_eq!((started, attempt), (job, 2));
    assert!(
        died.elapsed() < Duration::from_secs(8),
        "taken over after {:?}, the lease is 30 s",
        died.elapsed()
    );
    let detail: String = sqlx::query_scalar(
        "select error_detail from plan_job_attempts where job_id = $1 and attempt = 1",
    )
    .bind(job)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(detail, "worker_dead", "found dead, not by its lease");
    survivor.shutdown().await;
}

/// After the database was unreachable for everyone (no heartbeat from any
/// worker for a while), a silent worker whose presence lock is free is not
/// dead yet: its heartbeats and listener are on their way back. Silence
/// counts again from the end of the gap.
#[sqlx::test]
async fn after_a_gap_in_everyones_heartbeats_a_silent_worker_gets_two_intervals_to_come_back(
    pool: PgPool,
) {
    let options = pool.connect_options().as_ref().clone();
    let mut listen = PgConnection::connect_with(&options).await.unwrap();
    store::register_worker(&mut listen, &info("outage"))
        .await
        .unwrap();
    let job = enqueue(&pool, 3).await;
    let kinds = vec![KIND.to_owned()];
    let claimed = store::claim(&pool, "outage", &kinds, 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // The outage: the server dropped the listener (the lock is free) and
    // nobody could heartbeat for 10 s (1 s intervals).
    listen.close().await.unwrap();
    let outage = "update plan_workers set last_seen_at = now() - interval '10 s'; \
                  update plan_queue_clock set last_beat_at = now() - interval '10 s', \
                                              resumed_at = now() - interval '1 hour'";
    sqlx::raw_sql(outage).execute(&pool).await.unwrap();
    let reaped = store::reap(&pool).await.unwrap();
    assert!(
        reaped.is_empty(),
        "reaped at the end of an outage: {reaped:?}"
    );
    assert_eq!(job_row(&pool, job).await.status, "processing");

    // Two intervals later the worker still has not come back: now it is dead.
    sqlx::raw_sql(
        "update plan_queue_clock set resumed_at = now() - interval '3 s', last_beat_at = now()",
    )
    .execute(&pool)
    .await
    .unwrap();
    let reaped = store::reap(&pool).await.unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].reason, store::ReapReason::WorkerDead);

    // A worker's heartbeat after a gap starts the grace; one without a gap
    // leaves it be.
    store::register_worker(
        &mut PgConnection::connect_with(&options).await.unwrap(),
        &info("back"),
    )
    .await
    .unwrap();
    sqlx::raw_sql("update plan_queue_clock set last_beat_at = now() - interval '5 s', resumed_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    store::touch_worker(&pool, "back").await.unwrap();
    let recent: bool =
        sqlx::query_scalar("select resumed_at > now() - interval '1 s' from plan_queue_clock")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(recent, "a heartbeat after 5 s of silence is a resumption");
    sqlx::raw_sql("update plan_queue_clock set resumed_at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    store::touch_worker(&pool, "back").await.unwrap();
    let untouched: bool = sqlx::query_scalar(
        "select resumed_at < now() - interval '59 minutes' from plan_queue_clock",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(untouched, "heartbeats a second apart are no gap");
}

fn info(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        host: "test".into(),
        pid: 1,
        version: "test".into(),
        kinds: vec![KIND.into()],
        concurrency: 1,
        heartbeat: Duration::from_secs(1),
        routes: serde_json::json!({}),
    }
}

#[sqlx::test]
async fn an_id_held_by_a_live_process_is_refused_and_freed_when_that_process_is_gone(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let mut first = PgConnection::connect_with(&options).await.unwrap();
    let mut second = PgConnection::connect_with(&options).await.unwrap();
    store::register_worker(&mut first, &info("twin"))
        .await
        .unwrap();
    match store::register_worker(&mut second, &info("twin")).await {
        Err(StoreError::InvalidInput { field, message }) => {
            assert_eq!(field, "worker_id");
            assert!(message.contains("live process"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    first.close().await.unwrap();
    store::register_worker(&mut second, &info("twin"))
        .await
        .unwrap();
    let defaults = (
        settings("x").worker_id.is_some(),
        plan_worker::config::WorkerSettings::default(),
    );
    assert!(defaults.0);
    assert_ne!(
        defaults.1.worker_id(),
        plan_worker::config::WorkerSettings::default().worker_id(),
        "two processes on one host with one pid still get two ids"
    );
}

#[sqlx::test]
async fn creating_a_job_under_repeatable_read_after_another_session_did_fails_at_once_with_40001(
    pool: PgPool,
) {
    let job = new_job(3);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("set transaction isolation level repeatable read")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select 1").execute(&mut *tx).await.unwrap(); // the snapshot
    store::create_job(&pool, &job).await.unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), store::create_job(&mut *tx, &job))
        .await
        .expect("returned instead of looping")
        .unwrap_err();
    match err {
        StoreError::Db(sqlx::Error::Database(db)) => {
            assert_eq!(db.code().as_deref(), Some("40001"))
        }
        other => panic!("expected a serialization failure, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[sqlx::test]
async fn sixty_rows_with_the_longest_progress_and_error_code_update_in_one_statement(pool: PgPool) {
    let mut events = JobEvents::open(&pool).await;
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}'::jsonb from generate_series(1, 60)",
    )
    .bind(KIND)
    .execute(&pool)
    .await
    .unwrap();
    let progress = "p".repeat(64);
    let code = format!("A{}", "B".repeat(63));
    sqlx::query("update plan_generation_jobs set progress = $1, error_code = $2")
        .bind(&progress)
        .bind(&code)
        .execute(&pool)
        .await
        .expect("the notifications fit");
    let mut seen = std::collections::HashSet::new();
    while seen.len() < 60 {
        for ev in events.next(WAIT).await {
            if ev.progress.as_deref() == Some(progress.as_str()) {
                assert_eq!(ev.error_code.as_deref(), Some(code.as_str()));
                seen.insert(ev.id);
            }
        }
    }
}

async fn synchronous_commit_after(tx: &mut PgConnection, call: &str) -> String {
    sqlx::query(sqlx::AssertSqlSafe(call.to_owned()))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query_scalar("show synchronous_commit")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_claim_or_heartbeat_inside_a_callers_transaction_keeps_its_commit_durable(pool: PgPool) {
    enqueue(&pool, 3).await;
    let nil = Uuid::nil();
    for call in [
        format!("select * from claim_plan_jobs('client', array['{KIND}'], 1, 30)"),
        format!(
            "select * from heartbeat_plan_jobs(array['{nil}']::uuid[], array['{nil}']::uuid[], 30)"
        ),
        format!("select * from heartbeat_plan_job('{nil}', '{nil}', 30)"),
    ] {
        let mut tx = pool.begin().await.unwrap();
        assert_eq!(
            synchronous_commit_after(&mut tx, &call).await,
            "on",
            "{call}"
        );
        tx.rollback().await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    let asked = format!("select * from claim_plan_jobs('worker', array['{KIND}'], 1, 30, true)");
    assert_eq!(
        synchronous_commit_after(&mut tx, &asked).await,
        "off",
        "the worker asks for it"
    );
    tx.rollback().await.unwrap();
}

/// The claim's `enable_sort = off` reached its UPDATE trigger, whose one sort
/// then cost enough for JIT: every claim compiled the trigger's query for
/// ~750 ms. A later `create or replace` of any of these functions drops its
/// settings, so they are checked in the catalogue.
#[sqlx::test]
async fn the_queues_hot_functions_never_compile_with_jit_and_the_triggers_keep_their_sorts(
    pool: PgPool,
) {
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        r"select p.proname::text, coalesce(p.proconfig, '{}') from pg_proc p
          where p.proname = any (array['claim_plan_jobs', 'heartbeat_plan_jobs', 'complete_plan_jobs',
                                       'reap_expired_plan_jobs', 'plan_jobs_notify_insert',
                                       'plan_jobs_notify_update'])
          order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "one version of each: {rows:?}");
    for (name, config) in rows {
        assert!(config.contains(&"jit=off".to_owned()), "{name}: {config:?}");
        if name.starts_with("plan_jobs_notify") {
            for setting in ["enable_sort=on", "enable_nestloop=on"] {
                assert!(config.contains(&setting.to_owned()), "{name}: {config:?}");
            }
        }
        // A batch paired with its rows by nested loop is quadratic whenever
        // the statistics predate the batch (0015).
        if matches!(name.as_str(), "heartbeat_plan_jobs" | "complete_plan_jobs") {
            assert!(
                config.contains(&"enable_nestloop=off".to_owned()),
                "{name}: {config:?}"
            );
        }
    }
}

/// A pending job of `kind`, created `minutes` ago.
async fn old_job_of(pool: &PgPool, kind: &str, minutes: i32) -> Uuid {
    sqlx::query_scalar(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot, created_at) \
         values (gen_random_uuid(), $1, '{}', now() - make_interval(mins => $2)) returning id",
    )
    .bind(kind)
    .bind(minutes)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_job_of_a_kind_no_live_worker_handles_fails_as_config_error_after_the_grace(
    pool: PgPool,
) {
    // No live worker: nothing is failed (every job waits alike).
    let orphan = old_job_of(&pool, "meal_plan", 10).await;
    assert!(
        store::fail_unhandled(&pool, Duration::from_secs(300))
            .await
            .unwrap()
            .is_empty()
    );

    let (registry, _starts) = blocking(mpsc::unbounded_channel().0);
    let mut s = settings("handles-one-kind");
    s.poll_interval_seconds = 0.2;
    s.unhandled_kind_grace_seconds = 60.0;
    let worker = start(&pool, registry, s).await;
    let fresh = old_job_of(&pool, "meal_plan", 0).await;
    let mut events = crate::common::JobEvents::open(&pool).await;
    let ev = events.wait_status(orphan, "failed", WAIT).await;
    assert_eq!(ev.error_code.as_deref(), Some("CONFIG_ERROR"));
    let (message, outbox): (String, i64) = sqlx::query_as(
        "select error_message, (select count(*) from notification_outbox o where o.job_id = j.id) \
         from plan_generation_jobs j where id = $1",
    )
    .bind(orphan)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(message, "No live worker handles jobs of kind meal_plan.");
    assert_eq!(outbox, 1, "the user is told (meal_plan notifies on finish)");
    // Within its grace, and of a handled kind: untouched.
    assert_eq!(job_row(&pool, fresh).await.status, "pending");
    let handled = old_job_of(&pool, KIND, 10).await;
    assert!(
        store::fail_unhandled(&pool, Duration::from_secs(60))
            .await
            .unwrap()
            .iter()
            .all(|u| u.job_id != handled)
    );
    worker.shutdown().await;
}

/// A HOT update is possible only when no indexed column changes (index
/// keys, INCLUDE columns, predicates). Before 0009 the processing index was
/// keyed by locked_until, which every heartbeat sets: no heartbeat could be
/// HOT. How many are HOT then depends on room on the page, which pruning
/// makes when no snapshot still sees the old versions, so that share is
/// measured by `bench heartbeats` (99.6 %, BENCHMARKS.md), not here under
/// the load of parallel tests.
#[sqlx::test]
async fn no_index_of_the_jobs_table_holds_a_column_a_heartbeat_sets(pool: PgPool) {
    let defs: Vec<String> = sqlx::query_scalar(
        "select pg_get_indexdef(indexrelid) from pg_index \
         where indrelid = 'plan_generation_jobs'::regclass",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(defs.len() >= 5, "{defs:?}");
    for def in &defs {
        for column in ["locked_until", "heartbeat_at", "progress", "updated_at"] {
            assert!(!def.contains(column), "{column} is indexed: {def}");
        }
    }
    // And a heartbeat sets no other column than those.
    let body: String =
        sqlx::query_scalar("select prosrc from pg_proc where proname = 'heartbeat_plan_jobs'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let set = body
        .split(" set ")
        .nth(1)
        .and_then(|s| s.split(" from ").next())
        .unwrap_or("");
    assert!(
        set.contains("locked_until") && !set.contains("status") && !set.contains("worker_id"),
        "{set}"
    );
}
