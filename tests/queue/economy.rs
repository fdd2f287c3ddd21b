//! Economy jobs: placed in the provider's off-peak windows when their
//! deadline allows, at once otherwise; put back by a worker that claims
//! them in a peak; made by economy schedules. The windows are built around
//! the current time (an off-peak window opening two hours from now), so
//! that the database's clock, which decides, needs no faking.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use plan_worker::offpeak::{Economy, Form, OffPeak};
use plan_worker::queue::Worker;
use plan_worker::queue::store::{self, Placement, StoreError};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::{self, KIND, WAIT};

/// Windows whose one off-peak stretch opens `hours` from now (on the
/// minute) for an hour, every day; now is a peak.
fn economy_opening_in(hours: i64) -> (Economy, DateTime<Utc>) {
    let start = (Utc::now() + chrono::Duration::hours(hours))
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    let end = start + chrono::Duration::hours(1);
    let spec = format!(
        "{:02}:{:02}-{:02}:{:02}",
        start.hour(),
        start.minute(),
        end.hour(),
        end.minute()
    );
    let economy = Economy {
        windows: Some(OffPeak::parse(&spec, Form::OffPeak).unwrap()),
        max_delay: Duration::from_secs(24 * 3600),
        start_margin: Duration::from_secs(1800),
    };
    (economy, start)
}

fn placement(economy: &Economy, not_after: DateTime<Utc>) -> Placement {
    Placement {
        not_after,
        stretches: economy.stretches(Utc::now()),
        margin: economy.start_margin,
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    status: String,
    run_after: DateTime<Utc>,
    not_after: Option<DateTime<Utc>>,
    attempt_count: i32,
    started_at: Option<DateTime<Utc>>,
    due: bool,
}

async fn row(pool: &PgPool, id: Uuid) -> Row {
    sqlx::query_as(
        "select status::text, run_after, not_after, attempt_count, started_at, \
                run_after <= now() as due \
         from plan_generation_jobs where id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn claim(pool: &PgPool) -> Vec<store::ClaimedJob> {
    store::claim(
        pool,
        "economy-test",
        &[KIND.to_owned()],
        10,
        Duration::from_secs(30),
    )
    .await
    .unwrap()
}

async fn economy_job(pool: &PgPool, p: &Placement) -> Uuid {
    let created = store::create_placed_job(pool, &common::new_job(3), Some(p))
        .await
        .unwrap();
    assert!(!created.existed);
    created.job_id
}

#[sqlx::test]
async fn an_economy_job_created_in_a_peak_waits_for_the_next_off_peak_start(pool: PgPool) {
    let (economy, start) = economy_opening_in(2);
    let deadline = Utc::now() + chrono::Duration::hours(24);
    let job = economy_job(&pool, &placement(&economy, deadline)).await;
    let r = row(&pool, job).await;
    assert_eq!((r.status.as_str(), r.run_after), ("pending", start));
    assert_eq!(
        r.not_after.map(|t| t.timestamp()),
        Some(deadline.timestamp())
    );
    assert!(
        claim(&pool).await.is_empty(),
        "not claimed before its off-peak start"
    );
}

#[sqlx::test]
async fn an_economy_job_whose_deadline_does_not_allow_waiting_runs_at_once(pool: PgPool) {
    // The window opens in two hours; the plan is wanted within one.
    let (economy, _) = economy_opening_in(2);
    let job = economy_job(
        &pool,
        &placement(&economy, Utc::now() + chrono::Duration::hours(1)),
    )
    .await;
    assert!(row(&pool, job).await.due);
    // An off-peak start too close to the deadline (inside the margin) is
    // no better: the window opens at 2 h, the deadline is 2 h 10 min.
    let other = {
        let mut j = common::new_job(3);
        j.user_id = Uuid::new_v4();
        let p = placement(&economy, Utc::now() + chrono::Duration::minutes(130));
        store::create_placed_job(&pool, &j, Some(&p))
            .await
            .unwrap()
            .job_id
    };
    assert!(row(&pool, other).await.due);
    let claimed: Vec<Uuid> = claim(&pool).await.iter().map(|c| c.id).collect();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.contains(&job) && claimed.contains(&other));
}

#[sqlx::test]
async fn an_economy_job_created_off_peak_runs_at_once(pool: PgPool) {
    // Off-peak the whole day: now is off-peak.
    let economy = Economy {
        windows: Some(OffPeak::parse("00:00-24:00", Form::OffPeak).unwrap()),
        ..economy_opening_in(2).0
    };
    let job = economy_job(
        &pool,
        &placement(&economy, Utc::now() + chrono::Duration::hours(24)),
    )
    .await;
    assert!(row(&pool, job).await.due);
}

#[sqlx::test]
async fn an_ordinary_job_is_neither_placed_nor_put_back(pool: PgPool) {
    let (economy, _) = economy_opening_in(2);
    let job = common::enqueue(&pool, 3).await;
    let r = row(&pool, job).await;
    assert!(r.due && r.not_after.is_none());
    let claimed = claim(&pool).await;
    assert_eq!(claimed.len(), 1);
    let held = [(claimed[0].id, claimed[0].lease_token)];
    let stretches = economy.stretches(Utc::now()).unwrap();
    let back = store::postpone_economy(&pool, &held, &stretches, economy.start_margin)
        .await
        .unwrap();
    assert!(back.is_empty());
    assert_eq!(row(&pool, job).await.status, "processing");
}

#[sqlx::test]
async fn a_claimed_economy_job_in_a_peak_goes_back_until_off_peak_without_an_attempt(pool: PgPool) {
    let (economy, start) = economy_opening_in(2);
    // Placed with no windows known (a SQL client, an API without them):
    // due at once.
    let p = Placement {
        stretches: None,
        ..placement(&economy, Utc::now() + chrono::Duration::hours(24))
    };
    let job = economy_job(&pool, &p).await;
    let claimed = claim(&pool).await;
    assert_eq!(claimed.len(), 1);
    let held = [(job, claimed[0].lease_token)];
    let stretches = economy.stretches(Utc::now()).unwrap();
    let back = store::postpone_economy(&pool, &held, &stretches, economy.start_margin)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].run_after, start);
    let r = row(&pool, job).await;
    assert_eq!((r.status.as_str(), r.attempt_count), ("pending", 0));
    assert!(r.started_at.is_none(), "as if never claimed");
    assert!(common::attempts(&pool, job).await.is_empty());
    assert!(claim(&pool).await.is_empty());
    // The old token holds nothing any more.
    let again = store::postpone_economy(&pool, &held, &stretches, economy.start_margin)
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[sqlx::test]
async fn a_claimed_economy_job_past_what_its_deadline_allows_stays_claimed(pool: PgPool) {
    let (economy, _) = economy_opening_in(2);
    let p = Placement {
        stretches: None,
        ..placement(&economy, Utc::now() + chrono::Duration::hours(1))
    };
    let job = economy_job(&pool, &p).await;
    let claimed = claim(&pool).await;
    let held = [(job, claimed[0].lease_token)];
    let stretches = economy.stretches(Utc::now()).unwrap();
    let back = store::postpone_economy(&pool, &held, &stretches, economy.start_margin)
        .await
        .unwrap();
    assert!(back.is_empty());
    assert_eq!(row(&pool, job).await.status, "processing");
}

#[sqlx::test]
async fn a_worker_in_a_peak_puts_a_due_economy_job_back_until_off_peak(pool: PgPool) {
    let (economy, start) = economy_opening_in(2);
    let (registry, mut starts) = crate::handlers::instant();
    let handle = Worker::new(
        pool.clone(),
        pool.connect_options().as_ref().clone(),
        registry,
        common::settings("economy-worker"),
    )
    .unwrap()
    .with_economy(economy.clone())
    .spawn();
    assert!(handle.wait_listening(WAIT).await);
    let mut events = common::JobEvents::open(&pool).await;
    let p = Placement {
        stretches: None,
        ..placement(&economy, Utc::now() + chrono::Duration::hours(24))
    };
    let job = economy_job(&pool, &p).await;
    let pending = |e: &plan_worker::queue::events::JobEvent| {
        e.id == job && e.status == plan_worker::queue::store::JobStatus::Pending
    };
    events.wait_for(pending, WAIT).await; // created
    events.wait_for(pending, WAIT).await; // claimed, then put back
    let r = row(&pool, job).await;
    assert_eq!(
        (r.status.as_str(), r.run_after, r.attempt_count),
        ("pending", start, 0)
    );
    // An ordinary job still runs at once beside it.
    let ordinary = common::enqueue(&pool, 3).await;
    assert_eq!(common::next_start(&mut starts, WAIT).await.0, ordinary);
    assert!(starts.try_recv().is_err(), "the economy job never started");
    handle.shutdown().await;
}

#[sqlx::test]
async fn a_due_economy_schedule_makes_an_economy_job_placed_off_peak(pool: PgPool) {
    let (economy, start) = economy_opening_in(2);
    let (saver, ordinary) = (Uuid::new_v4(), Uuid::new_v4());
    for (user, flag) in [(saver, true), (ordinary, false)] {
        sqlx::query(
            "select schedule_plan_regeneration($1, 'weekly_base_plan', $2, interval '7 days', \
             now() - interval '1 second', $3)",
        )
        .bind(user)
        .bind(json!({"goal": "MAINTENANCE"}))
        .bind(flag)
        .execute(&pool)
        .await
        .unwrap();
    }
    let made = store::enqueue_due_schedules_placed(&pool, 10, &economy, Utc::now())
        .await
        .unwrap();
    assert_eq!(made.len(), 2);
    let job_of = |user| made.iter().find(|m| m.user_id == user).unwrap().job_id;
    let r = row(&pool, job_of(saver)).await;
    assert_eq!(r.run_after, start);
    let wait = r.not_after.unwrap() - Utc::now();
    assert!(
        wait > chrono::Duration::hours(23) && wait <= chrono::Duration::hours(24),
        "ECONOMY_MAX_DELAY_HOURS from now, got {wait}"
    );
    let r = row(&pool, job_of(ordinary)).await;
    assert!(r.due && r.not_after.is_none());
}

#[sqlx::test]
async fn a_retried_economy_job_is_an_economy_job_again(pool: PgPool) {
    let (economy, start) = economy_opening_in(2);
    let job = economy_job(
        &pool,
        &placement(&economy, Utc::now() + chrono::Duration::hours(10)),
    )
    .await;
    store::cancel(&pool, job, "test").await.unwrap();
    let again = store::retry_placed_job(&pool, job, &economy).await.unwrap();
    let r = row(&pool, again.job_id).await;
    assert_eq!(r.run_after, start);
    let wait = r.not_after.unwrap() - Utc::now();
    assert!(
        wait > chrono::Duration::hours(9),
        "as long as the first had, got {wait}"
    );
    // An ordinary job's retry stays ordinary.
    let plain = common::enqueue(&pool, 3).await;
    store::cancel(&pool, plain, "test").await.unwrap();
    let plain_again = store::retry_placed_job(&pool, plain, &economy)
        .await
        .unwrap();
    let r = row(&pool, plain_again.job_id).await;
    assert!(r.due && r.not_after.is_none());
}

#[sqlx::test]
async fn a_deadline_before_the_earliest_start_is_refused_naming_not_after(pool: PgPool) {
    let (economy, _) = economy_opening_in(2);
    let err = store::create_placed_job(
        &pool,
        &common::new_job(3),
        Some(&placement(
            &economy,
            Utc::now() - chrono::Duration::minutes(1),
        )),
    )
    .await
    .unwrap_err();
    match err {
        StoreError::InvalidInput { field, .. } => assert_eq!(field, "not_after"),
        other => panic!("expected not_after refused, got {other}"),
    }
}
