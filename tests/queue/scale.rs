//! The queue at scale: jobs scheduled ahead, periodic schedules made into
//! jobs exactly once, paused and capped kinds, and retention.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::handlers::instant;

async fn create_at(pool: &PgPool, run_after_secs: f64) -> Uuid {
    sqlx::query_scalar(
        "select job_id from create_plan_job(gen_random_uuid(), '{}', $1, 3, 0, null, \
         now() + make_interval(secs => $2))",
    )
    .bind(KIND)
    .bind(run_after_secs)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn a_job_scheduled_3s_ahead_starts_neither_early_nor_late(pool: PgPool) {
    let (registry, mut starts) = instant();
    // A 60 s tick: only the dispatcher's own timer can start it on time.
    let worker = start(&pool, registry, settings("w-sched")).await;
    warm_up(&pool, &mut starts).await;

    let created = Instant::now();
    let job = create_at(&pool, 3.0).await;
    let (started, _) = next_start(&mut starts, Duration::from_secs(6)).await;
    let after = created.elapsed();
    assert_eq!(started, job);
    assert!(
        after >= Duration::from_millis(2_900),
        "started early: {after:?}"
    );
    assert!(
        after < Duration::from_millis(4_000),
        "started late: {after:?}"
    );
    let early: bool =
        sqlx::query_scalar("select started_at < run_after from plan_generation_jobs where id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!early, "claimed before its run_after (database clock)");
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_run_after_over_a_year_ahead_is_refused_naming_the_field(pool: PgPool) {
    let err = sqlx::query("select create_plan_job(gen_random_uuid(), '{}', 'weekly_base_plan', 3, 0, null, now() + interval '400 days')")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("run_after"), "{err}");
}

async fn schedule_due(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let mut users = Vec::new();
    for i in 0..n {
        let user = Uuid::new_v4();
        sqlx::query(
            "select schedule_plan_regeneration($1, 'weekly_base_plan', $2, interval '7 days', \
             now() - interval '1 second')",
        )
        .bind(user)
        .bind(json!({"n": i}))
        .execute(pool)
        .await
        .unwrap();
        users.push(user);
    }
    users
}

#[sqlx::test]
async fn thirty_due_schedules_and_three_concurrent_callers_make_exactly_thirty_jobs(pool: PgPool) {
    let users = schedule_due(&pool, 30).await;
    // Three callers at once, each in a loop, as three workers' ticks would be.
    let mut callers = Vec::new();
    for _ in 0..3 {
        let pool = pool.clone();
        callers.push(tokio::spawn(async move {
            let mut made = 0usize;
            for _ in 0..5 {
                let rows = plan_worker::queue::store::enqueue_due_schedules(&pool, 7)
                    .await
                    .unwrap();
                made += rows.iter().filter(|r| !r.waiting).count();
            }
            made
        }));
    }
    let mut made = 0;
    for c in callers {
        made += c.await.unwrap();
    }
    assert_eq!(made, 30);
    let (jobs, users_with_jobs): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct user_id) from plan_generation_jobs where user_id = any ($1)",
    )
    .bind(&users)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((jobs, users_with_jobs), (30, 30));
    let (due, linked): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where next_run_at <= now()), \
                count(*) filter (where last_job_id is not null and runs = 1) from plan_schedules",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (due, linked),
        (0, 30),
        "each moved one period on and linked"
    );
    // Nothing more is due.
    let again = plan_worker::queue::store::enqueue_due_schedules(&pool, 100)
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[sqlx::test]
async fn a_schedule_waits_for_the_users_active_job_and_skips_missed_periods(pool: PgPool) {
    let user = Uuid::new_v4();
    let active: Uuid = sqlx::query_scalar("select job_id from create_plan_job($1, '{}')")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "select schedule_plan_regeneration($1, 'weekly_base_plan', '{}', interval '1 day', \
         now() - interval '10 days 1 hour')",
    )
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    let rows = plan_worker::queue::store::enqueue_due_schedules(&pool, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].waiting);
    assert_eq!(rows[0].job_id, active);

    sqlx::query("select cancel_plan_job($1)")
        .bind(active)
        .execute(&pool)
        .await
        .unwrap();
    let rows = plan_worker::queue::store::enqueue_due_schedules(&pool, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].waiting);
    assert_ne!(rows[0].job_id, active);
    // Ten missed days make one job; the next run is the next boundary.
    let left: f64 = sqlx::query_scalar(
        "select extract(epoch from next_run_at - now())::float8 from plan_schedules where user_id = $1",
    )
    .bind(user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((0.0..86_400.0).contains(&left), "{left}");
    assert!(left > 20.0 * 3600.0, "{left}: the boundary 23 h ahead");
}

#[sqlx::test]
async fn a_schedule_with_a_bad_interval_is_refused_naming_the_field(pool: PgPool) {
    let err = sqlx::query(
        "select schedule_plan_regeneration(gen_random_uuid(), 'weekly_base_plan', '{}', interval '5 seconds')",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("error returned from database: every:"),
        "{err}"
    );
}

async fn set_paused(pool: &PgPool, paused: bool) -> bool {
    sqlx::query_scalar("select set_plan_job_kind_paused($1, $2)")
        .bind(KIND)
        .bind(paused)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_paused_kind_is_not_claimed_and_resumes_within_a_second(pool: PgPool) {
    let (registry, mut starts) = instant();
    let worker = start(&pool, registry, settings("w-pause")).await;
    warm_up(&pool, &mut starts).await;

    assert!(set_paused(&pool, true).await);
    assert!(!set_paused(&pool, true).await, "already paused: no change");
    let job = enqueue(&pool, 3).await;
    // Its insert NOTIFY wakes the worker, whose claim must pass it over:
    // nothing starts while it is paused (the worker's next tick is 60 s
    // away, so this waits out the wake-up's claim and the next-due timer).
    assert!(
        tokio::time::timeout(Duration::from_millis(1_500), starts.recv())
            .await
            .is_err(),
        "a job of a paused kind started"
    );
    let due: Option<f64> = sqlx::query_scalar("select next_plan_job_due(array[$1])")
        .bind(KIND)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(due, None, "a paused kind's jobs are not due");
    assert_eq!(job_row(&pool, job).await.status, "pending");

    let resumed = Instant::now();
    assert!(set_paused(&pool, false).await);
    let (started, _) = next_start(&mut starts, Duration::from_secs(5)).await;
    assert_eq!(started, job);
    assert!(
        resumed.elapsed() < Duration::from_secs(1),
        "{:?}",
        resumed.elapsed()
    );
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_capped_kind_never_runs_more_than_its_cap_across_workers(pool: PgPool) {
    sqlx::query("select set_plan_job_kind_max_running($1, 3)")
        .bind(KIND)
        .execute(&pool)
        .await
        .unwrap();
    for _ in 0..20 {
        enqueue(&pool, 3).await;
    }
    // Six claimers asking for 5 each, at once.
    let mut claims = Vec::new();
    for w in 0..6 {
        let pool = pool.clone();
        claims.push(tokio::spawn(async move {
            plan_worker::queue::store::claim(
                &pool,
                &format!("cap-{w}"),
                &[KIND.to_owned()],
                5,
                Duration::from_secs(30),
            )
            .await
            .unwrap()
            .len()
        }));
    }
    let mut claimed = 0;
    for c in claims {
        claimed += c.await.unwrap();
    }
    assert_eq!(claimed, 3);
    let processing: i64 =
        sqlx::query_scalar("select count(*) from plan_generation_jobs where status = 'processing'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(processing, 3);
    // At the cap the kind is not due; lifting the cap makes it due again.
    let due: Option<f64> = sqlx::query_scalar("select next_plan_job_due(array[$1])")
        .bind(KIND)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(due, None);
    sqlx::query("select set_plan_job_kind_max_running($1, null)")
        .bind(KIND)
        .execute(&pool)
        .await
        .unwrap();
    let more = plan_worker::queue::store::claim(
        &pool,
        "cap-x",
        &[KIND.to_owned()],
        50,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(more.len(), 17);
}

#[sqlx::test]
async fn retention_deletes_old_finished_jobs_and_their_rows_and_keeps_the_plans(pool: PgPool) {
    let user = Uuid::new_v4();
    let mk = |user: Uuid| {
        let pool = pool.clone();
        async move {
            let id: Uuid = sqlx::query_scalar("select job_id from create_plan_job($1, '{}')")
                .bind(user)
                .fetch_one(&pool)
                .await
                .unwrap();
            id
        }
    };
    // An old completed job with a plan, an attempt, a key and a sent push.
    let old = mk(user).await;
    let claimed = plan_worker::queue::store::claim(
        &pool,
        "r",
        &[KIND.to_owned()],
        1,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    let plan: Uuid = sqlx::query_scalar(
        "insert into weekly_base_plans (user_id, job_id, version, plan, targets, source) \
         values ($1, $2, 1, '{}', '{}', 'offline') returning id",
    )
    .bind(user)
    .bind(old)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("select complete_plan_job($1, $2, $3)")
        .bind(old)
        .bind(claimed[0].lease_token)
        .bind(plan)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into plan_job_idempotency_keys (user_id, key, request_hash, job_id) values ($1, 'k', repeat('a', 64), $2)",
    )
    .bind(user)
    .bind(old)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("update notification_outbox set status = 'sent' where job_id = $1")
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    // An old failed job whose push is still pending, a recent finished job,
    // and an old but active (pending) job: all three stay.
    let pending_push = mk(Uuid::new_v4()).await;
    sqlx::query("select cancel_plan_job($1)")
        .bind(pending_push)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("insert into notification_outbox (job_id, user_id, event) select id, user_id, 'plan_failed' from plan_generation_jobs where id = $1 on conflict do nothing")
        .bind(pending_push)
        .execute(&pool)
        .await
        .unwrap();
    let recent = mk(Uuid::new_v4()).await;
    sqlx::query("select cancel_plan_job($1)")
        .bind(recent)
        .execute(&pool)
        .await
        .unwrap();
    let active = mk(Uuid::new_v4()).await;
    sqlx::query("update plan_generation_jobs set completed_at = now() - interval '40 days' where id = any ($1)")
        .bind(vec![old, pending_push])
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "update plan_generation_jobs set created_at = now() - interval '40 days' where id = $1",
    )
    .bind(active)
    .execute(&pool)
    .await
    .unwrap();

    let thirty_days = Duration::from_secs(30 * 86_400);
    let dry = plan_worker::queue::store::purge(&pool, thirty_days, 1000, true)
        .await
        .unwrap();
    assert_eq!(
        (dry.jobs, dry.attempts, dry.idempotency_keys, dry.outbox),
        (1, 1, 1, 1)
    );
    let still: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs where id = $1")
        .bind(old)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(still, 1, "a dry run deletes nothing");

    let done = plan_worker::queue::store::purge(&pool, thirty_days, 1000, false)
        .await
        .unwrap();
    assert!(!done.skipped);
    assert_eq!(
        (done.jobs, done.attempts, done.idempotency_keys, done.outbox),
        (1, 1, 1, 1)
    );
    let left: Vec<Uuid> = sqlx::query_scalar("select id from plan_generation_jobs order by id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expect = vec![pending_push, recent, active];
    expect.sort();
    assert_eq!(left, expect);
    let (plan_left, job_link): (Uuid, Option<Uuid>) =
        sqlx::query_as("select id, job_id from weekly_base_plans where user_id = $1")
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (plan_left, job_link),
        (plan, None),
        "the plan stays, unlinked"
    );
    let orphans: i64 = sqlx::query_scalar(
        "select (select count(*) from plan_job_attempts where job_id = $1) \
              + (select count(*) from plan_job_idempotency_keys where job_id = $1) \
              + (select count(*) from notification_outbox where job_id = $1)",
    )
    .bind(old)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
}

/// Polls `probe` every 50 ms until it holds, for at most `within`.
async fn eventually(within: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Upkeep is a loop of its own: a worker whose tick is a minute away still
/// deletes a job past its retention within a couple of seconds, and keeps a
/// recent one.
#[sqlx::test]
async fn a_running_worker_deletes_jobs_past_their_retention_on_its_own(pool: PgPool) {
    let old = enqueue(&pool, 0).await;
    let recent = enqueue(&pool, 0).await;
    sqlx::query(
        "update plan_generation_jobs set status = 'completed', completed_at = now() - \
         case when id = $1 then interval '2 days' else interval '1 hour' end \
         where id = any (array[$1, $2])",
    )
    .bind(old)
    .bind(recent)
    .execute(&pool)
    .await
    .unwrap();
    let worker = start(
        &pool,
        instant().0,
        plan_worker::config::WorkerSettings {
            job_retention_days: 1.0,
            ..settings("upkeep")
        },
    )
    .await;
    let count = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from plan_generation_jobs where id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let gone = eventually(Duration::from_secs(5), async || count(old).await == 0).await;
    worker.shutdown().await;
    assert!(gone, "the job 2 days past its end was not deleted");
    assert_eq!(count(recent).await, 1, "the job of an hour ago stays");
}

/// Autovacuum visits a database once a minute; dead rows beyond the
/// threshold make the workers vacuum the table themselves, and the vacuum
/// clears them.
#[sqlx::test]
async fn dead_rows_past_the_threshold_get_the_table_vacuumed(pool: PgPool) {
    use plan_worker::queue::store::{tables_to_vacuum, vacuum};
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query(
        "insert into plan_generation_jobs (user_id, kind, profile_snapshot) \
         select gen_random_uuid(), $1, '{}' from generate_series(1, 3000)",
    )
    .bind(KIND)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("delete from plan_generation_jobs")
        .execute(&mut *conn)
        .await
        .unwrap();
    // Statistics reach other sessions when this one flushes them.
    sqlx::query("select pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("select 1").execute(&mut *conn).await.unwrap();
    let quiet = Duration::from_secs(2);
    let due = eventually(Duration::from_secs(5), async || {
        tables_to_vacuum(&pool, 2_000, 0.2, quiet)
            .await
            .unwrap()
            .contains(&"plan_generation_jobs")
    })
    .await;
    assert!(
        due,
        "3,000 dead rows over a threshold of 2,000 were not seen"
    );
    assert!(
        !tables_to_vacuum(&pool, 5_000, 0.2, quiet)
            .await
            .unwrap()
            .contains(&"plan_generation_jobs"),
        "under a threshold of 5,000 the table is left to autovacuum"
    );
    vacuum(&pool, "plan_generation_jobs").await.unwrap();
    let dead: i64 = sqlx::query_scalar(
        "select n_dead_tup from pg_stat_user_tables where relname = 'plan_generation_jobs'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dead, 0, "the vacuum cleared the dead rows");
    assert!(
        tables_to_vacuum(&pool, 2_000, 0.2, quiet)
            .await
            .unwrap()
            .is_empty(),
        "a table just vacuumed is not vacuumed again"
    );
}
