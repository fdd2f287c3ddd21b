//! The notification outbox against real PostgreSQL and a mock Expo push
//! server: rows written in the job's own transaction, delivered once,
//! retried on 5xx, tokens turned off on DeviceNotRegistered, and nothing
//! lost when a sender dies between sending and marking.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use plan_worker::notify::delivery::Delivery;
use plan_worker::notify::expo::ExpoClient;
use plan_worker::notify::store;
use plan_worker::queue::store as queue;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Answers scripted per request: an HTTP status, or 200 with tickets.
#[derive(Clone, Default)]
struct MockExpo {
    script: Arc<Mutex<Vec<(u16, Value)>>>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn answer(State(m): State<MockExpo>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    m.received.lock().unwrap().push(body);
    let mut script = m.script.lock().unwrap();
    let (status, reply) = if script.len() > 1 {
        script.remove(0)
    } else {
        script[0].clone()
    };
    (StatusCode::from_u16(status).unwrap(), Json(reply))
}

async fn mock_expo(script: Vec<(u16, Value)>) -> (MockExpo, String) {
    let mock = MockExpo {
        script: Arc::new(Mutex::new(script)),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/push/send", post(answer))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, url)
}

fn ok_ticket(id: &str) -> Value {
    json!({"data": [{"status": "ok", "id": id}]})
}

fn delivery(pool: &PgPool, url: Option<String>) -> Delivery {
    Delivery {
        db: pool.clone(),
        expo: url.map(|u| ExpoClient::new(u, None).unwrap()),
        lease: Duration::from_secs(60),
    }
}

/// A finished weekly plan job of a user with `token`; returns (job, user).
async fn finished_job(pool: &PgPool, token: &str, complete: bool) -> (Uuid, Uuid) {
    let user = Uuid::new_v4();
    sqlx::query("insert into push_tokens (user_id, token) values ($1, $2)")
        .bind(user)
        .bind(token)
        .execute(pool)
        .await
        .unwrap();
    let job = queue::create_job(
        pool,
        &queue::NewJob {
            user_id: user,
            kind: "weekly_base_plan".into(),
            profile_snapshot: json!({"goal": "MAINTENANCE"}),
            max_retries: 0,
            priority: 0,
            trace_context: None,
        },
    )
    .await
    .unwrap()
    .job_id;
    let kinds = vec!["weekly_base_plan".to_owned()];
    let claimed = queue::claim(pool, "w", &kinds, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let token_of_lease = claimed[0].lease_token;
    if complete {
        assert_eq!(
            queue::complete(pool, &[(job, token_of_lease)], &[None])
                .await
                .unwrap(),
            [job]
        );
    } else {
        let failure = queue::Failure {
            error_code: "AI_QUOTA_EXCEEDED",
            user_message: "x",
            retryable: false,
            retry_after: None,
            detail: None,
            llm_usage: None,
        };
        let policy = queue::RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(1),
            max_rate_limit_deferrals: 0,
            max_retry_after: Duration::from_secs(3600),
        };
        queue::fail(pool, job, token_of_lease, &failure, policy)
            .await
            .unwrap();
    }
    (job, user)
}

async fn outbox_rows(pool: &PgPool, job: Uuid) -> Vec<(String, String, i32)> {
    sqlx::query_as("select event, status, attempts from notification_outbox where job_id = $1")
        .bind(job)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn ending_a_job_writes_exactly_one_outbox_row_in_the_same_transaction(pool: PgPool) {
    let (job, _) = finished_job(&pool, "ExponentPushToken[a]", true).await;
    assert_eq!(
        outbox_rows(&pool, job).await,
        [("plan_ready".to_owned(), "pending".to_owned(), 0)]
    );
    let (failed, _) = finished_job(&pool, "ExponentPushToken[b]", false).await;
    assert_eq!(
        outbox_rows(&pool, failed).await,
        [("plan_failed".to_owned(), "pending".to_owned(), 0)]
    );

    // A completion that rolls back leaves no row either.
    let (job2, user2) = {
        let user = Uuid::new_v4();
        let created = queue::create_job(
            &pool,
            &queue::NewJob {
                user_id: user,
                kind: "weekly_base_plan".into(),
                profile_snapshot: json!({}),
                max_retries: 0,
                priority: 0,
                trace_context: None,
            },
        )
        .await
        .unwrap();
        (created.job_id, user)
    };
    let claimed = queue::claim(
        &pool,
        "w",
        &["weekly_base_plan".to_owned()],
        1,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    queue::complete(&mut *tx, &[(job2, claimed[0].lease_token)], &[None])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        outbox_rows(&pool, job2).await.is_empty(),
        "no row for user {user2}"
    );
}

#[sqlx::test]
async fn a_500_then_a_200_delivers_the_notification_once(pool: PgPool) {
    let (mock, url) = mock_expo(vec![
        (500, json!({"errors": [{"code": "INTERNAL"}]})),
        (200, ok_ticket("t-1")),
    ])
    .await;
    let (job, _) = finished_job(&pool, "ExponentPushToken[a]", true).await;
    let d = delivery(&pool, Some(url));

    assert_eq!(d.deliver_once().await.unwrap(), 1);
    assert_eq!(
        outbox_rows(&pool, job).await[0].1,
        "pending",
        "a 500 is retried"
    );
    // The backoff has not run out: nothing is due.
    assert_eq!(d.deliver_once().await.unwrap(), 0);
    sqlx::query("update notification_outbox set next_attempt_at = now() where job_id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(d.deliver_once().await.unwrap(), 1);

    let (status, tickets): (String, Vec<String>) =
        sqlx::query_as("select status, ticket_ids from notification_outbox where job_id = $1")
            .bind(job)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), tickets), ("sent", vec!["t-1".to_owned()]));
    assert_eq!(
        d.deliver_once().await.unwrap(),
        0,
        "a sent row is never sent again"
    );
    let received = mock.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1][0]["to"], "ExponentPushToken[a]");
    assert_eq!(received[1][0]["data"]["jobId"], json!(job));
}

#[sqlx::test]
async fn device_not_registered_turns_the_token_off(pool: PgPool) {
    let gone = json!({"data": [{"status": "error", "message": "not registered", "details": {"error": "DeviceNotRegistered"}}]});
    let (_mock, url) = mock_expo(vec![(200, gone)]).await;
    let (job, user) = finished_job(&pool, "ExponentPushToken[gone]", true).await;
    delivery(&pool, Some(url)).deliver_once().await.unwrap();

    let active: bool = sqlx::query_scalar("select active from push_tokens where user_id = $1")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!active);
    assert_eq!(outbox_rows(&pool, job).await[0].1, "failed");
}

#[sqlx::test]
async fn a_sender_that_dies_between_send_and_mark_loses_nothing(pool: PgPool) {
    let (mock, url) = mock_expo(vec![(200, ok_ticket("t-2"))]).await;
    let (job, _) = finished_job(&pool, "ExponentPushToken[a]", true).await;
    // The dead sender took the row (and may have sent it) but never marked it.
    let taken = store::claim_due(&pool, 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let d = delivery(&pool, Some(url));
    assert_eq!(
        d.deliver_once().await.unwrap(),
        0,
        "held by the dead sender's lease"
    );
    sqlx::query("update notification_outbox set locked_until = now() - interval '1 second' where job_id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(d.deliver_once().await.unwrap(), 1);
    assert_eq!(outbox_rows(&pool, job).await[0].1, "sent");
    assert_eq!(mock.received.lock().unwrap().len(), 1);
}

#[sqlx::test]
async fn without_push_settings_rows_are_kept_and_marked_skipped(pool: PgPool) {
    let (job, _) = finished_job(&pool, "ExponentPushToken[a]", true).await;
    delivery(&pool, None).deliver_once().await.unwrap();
    assert_eq!(
        outbox_rows(&pool, job).await,
        [("plan_ready".to_owned(), "skipped".to_owned(), 1)]
    );
}

#[sqlx::test]
async fn a_sender_whose_hold_ran_out_cannot_overwrite_the_row_another_sender_sent(pool: PgPool) {
    let (_mock, url) = mock_expo(vec![(200, ok_ticket("t-3"))]).await;
    let (job, _) = finished_job(&pool, "ExponentPushToken[a]", true).await;
    // A slow sender takes the row; its pass outlasts its hold.
    let slow = store::claim_due(&pool, 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(slow.len(), 1);
    sqlx::query("update notification_outbox set locked_until = now() - interval '1 second' where job_id = $1")
        .bind(job)
        .execute(&pool)
        .await
        .unwrap();
    let d = delivery(&pool, Some(url));
    assert_eq!(
        d.deliver_once().await.unwrap(),
        1,
        "another sender took it over"
    );
    assert_eq!(outbox_rows(&pool, job).await[0].1, "sent");

    let late = store::mark_ended(&pool, &slow[0], "failed", "late")
        .await
        .unwrap();
    assert!(!late, "the stale hold writes nothing");
    assert!(
        !store::retry_later(&pool, &slow[0], Duration::from_secs(1), "late")
            .await
            .unwrap()
    );
    assert_eq!(outbox_rows(&pool, job).await[0].1, "sent");
}
