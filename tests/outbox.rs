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

type Respond = Arc<dyn Fn(&Value) -> (u16, Value) + Send + Sync>;

/// Answers scripted per request (an HTTP status, or 200 with tickets), or
/// computed from the request by `respond`.
#[derive(Clone, Default)]
struct MockExpo {
    script: Arc<Mutex<Vec<(u16, Value)>>>,
    respond: Option<Respond>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn answer(State(m): State<MockExpo>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    m.received.lock().unwrap().push(body.clone());
    let (status, reply) = match &m.respond {
        Some(respond) => respond(&body),
        None => {
            let mut script = m.script.lock().unwrap();
            if script.len() > 1 {
                script.remove(0)
            } else {
                script[0].clone()
            }
        }
    };
    (StatusCode::from_u16(status).unwrap(), Json(reply))
}

async fn mock_expo(script: Vec<(u16, Value)>) -> (MockExpo, String) {
    serve_mock(MockExpo {
        script: Arc::new(Mutex::new(script)),
        ..Default::default()
    })
    .await
}

/// A mock Expo that answers each request as `respond` says.
async fn mock_expo_with(
    respond: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static,
) -> (MockExpo, String) {
    serve_mock(MockExpo {
        respond: Some(Arc::new(respond)),
        ..Default::default()
    })
    .await
}

/// Expo's answer to a good request: one ok ticket per message, in order.
fn ok_tickets(body: &Value) -> (u16, Value) {
    let tickets: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!({"status": "ok", "id": format!("id-{}", m["to"].as_str().unwrap())}))
        .collect();
    (200, json!({ "data": tickets }))
}

async fn serve_mock(mock: MockExpo) -> (MockExpo, String) {
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
    add_token(pool, user, token, 0).await;
    let job = job_of(pool, user, json!({"goal": "MAINTENANCE"}), complete).await;
    (job, user)
}

/// Registers a token for `user`, `age_s` seconds old.
async fn add_token(pool: &PgPool, user: Uuid, token: &str, age_s: i64) {
    sqlx::query(
        "insert into push_tokens (user_id, token, created_at) \
         values ($1, $2, now() - make_interval(secs => $3))",
    )
    .bind(user)
    .bind(token)
    .bind(age_s as f64)
    .execute(pool)
    .await
    .unwrap();
}

/// A job of `user` with `snapshot`, written straight through the queue's
/// store (as any SQL client could), then completed or failed for good.
async fn job_of(pool: &PgPool, user: Uuid, snapshot: Value, complete: bool) -> Uuid {
    let job = queue::create_job(
        pool,
        &queue::NewJob {
            user_id: user,
            kind: "weekly_base_plan".into(),
            profile_snapshot: snapshot,
            max_retries: 0,
            priority: 0,
            trace_context: None,
            run_after: None,
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
    job
}

/// The row of `job`: status, last_error and ticket ids.
async fn outcome(pool: &PgPool, job: Uuid) -> (String, Option<String>, Vec<String>) {
    sqlx::query_as(
        "select status, last_error, ticket_ids from notification_outbox where job_id = $1",
    )
    .bind(job)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// How many messages each request to the mock carried.
fn request_sizes(mock: &MockExpo) -> Vec<usize> {
    let received = mock.received.lock().unwrap();
    received
        .iter()
        .map(|b| b.as_array().unwrap().len())
        .collect()
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
                run_after: None,
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

#[sqlx::test]
async fn a_user_with_150_tokens_gets_the_newest_ten_and_the_loop_survives(pool: PgPool) {
    let (mock, url) = mock_expo_with(ok_tickets).await;
    let user = Uuid::new_v4();
    for i in 0..150 {
        add_token(&pool, user, &format!("ExponentPushToken[t{i}]"), i).await;
    }
    let job = job_of(&pool, user, json!({}), true).await;
    let d = delivery(&pool, Some(url));
    assert_eq!(d.deliver_once().await.unwrap(), 1);

    let (status, _, tickets) = outcome(&pool, job).await;
    assert_eq!(status, "sent");
    assert_eq!(tickets.len(), store::MAX_TOKENS_PER_USER as usize);
    let received = mock.received.lock().unwrap().clone();
    let mut sent: Vec<&str> = received[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    sent.sort();
    let mut newest: Vec<String> = (0..10)
        .map(|i| format!("ExponentPushToken[t{i}]"))
        .collect();
    newest.sort();
    assert_eq!(sent, newest, "the ten newest devices");
}

#[sqlx::test]
async fn messages_go_out_in_requests_of_at_most_100_whatever_the_rows(pool: PgPool) {
    let (mock, url) = mock_expo_with(ok_tickets).await;
    // 15 users with 7 devices each: 105 messages, so one row spans two requests.
    let mut jobs = Vec::new();
    for u in 0..15 {
        let user = Uuid::new_v4();
        for i in 0..7 {
            add_token(&pool, user, &format!("ExponentPushToken[u{u}d{i}]"), i).await;
        }
        jobs.push(job_of(&pool, user, json!({}), true).await);
    }
    assert_eq!(delivery(&pool, Some(url)).deliver_once().await.unwrap(), 15);
    let sizes = request_sizes(&mock);
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 105);
    for job in jobs {
        let (status, _, tickets) = outcome(&pool, job).await;
        assert_eq!((status.as_str(), tickets.len()), ("sent", 7));
    }
}

#[sqlx::test]
async fn a_ticket_list_of_the_wrong_length_retries_only_its_request_with_a_clear_reason(
    pool: PgPool,
) {
    // Short for the request with the "short" token, long for the one with
    // "long"; right for the others.
    let (_mock, url) = mock_expo_with(|body| {
        let (status, mut answer) = ok_tickets(body);
        let to: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["to"].as_str().unwrap())
            .collect();
        let tickets = answer["data"].as_array_mut().unwrap();
        if to.iter().any(|t| t.contains("short")) {
            tickets.pop();
        } else if to.iter().any(|t| t.contains("long")) {
            tickets.push(json!({"status": "ok", "id": "extra"}));
        }
        (status, answer)
    })
    .await;
    // 11 users with 10 devices: requests of 100 and 10 messages.
    let mut jobs = Vec::new();
    for u in 0..11 {
        let user = Uuid::new_v4();
        for i in 0..10 {
            let name = match (u, i) {
                (0, 0) => "short".to_owned(),
                (10, 0) => "long".to_owned(),
                _ => format!("u{u}d{i}"),
            };
            add_token(&pool, user, &format!("ExponentPushToken[{name}]"), i).await;
        }
        jobs.push(job_of(&pool, user, json!({}), true).await);
    }
    delivery(&pool, Some(url)).deliver_once().await.unwrap();
    let (status, error, _) = outcome(&pool, jobs[0]).await;
    assert_eq!(status, "pending", "retried");
    assert_eq!(
        error.as_deref(),
        Some("Expo answered 99 tickets for 100 messages")
    );
    let (status, error, _) = outcome(&pool, jobs[10]).await;
    assert_eq!(status, "pending");
    assert_eq!(
        error.as_deref(),
        Some("Expo answered 11 tickets for 10 messages")
    );
}

#[sqlx::test]
async fn a_request_refused_for_one_bad_message_still_delivers_the_others(pool: PgPool) {
    let (mock, url) = mock_expo_with(|body| {
        let bad = body
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["to"] == "ExponentPushToken[bad]");
        if bad {
            let why = "\"to\" ExponentPushToken[bad] is not a valid push token";
            (
                400,
                json!({"errors": [{"code": "VALIDATION_ERROR", "message": why}]}),
            )
        } else {
            ok_tickets(body)
        }
    })
    .await;
    let (good1, _) = finished_job(&pool, "ExponentPushToken[good1]", true).await;
    let (bad, _) = finished_job(&pool, "ExponentPushToken[bad]", true).await;
    let (good2, _) = finished_job(&pool, "ExponentPushToken[good2]", true).await;
    delivery(&pool, Some(url)).deliver_once().await.unwrap();

    assert_eq!(outcome(&pool, good1).await.0, "sent");
    assert_eq!(outcome(&pool, good2).await.0, "sent");
    let (status, error, _) = outcome(&pool, bad).await;
    assert_eq!(status, "failed", "a 400 does not resolve itself");
    assert!(error.unwrap().starts_with("HTTP 400"));
    let sizes = request_sizes(&mock);
    assert_eq!(sizes[0], 3, "one request first");
    assert!(
        sizes.len() <= 5,
        "halves, not one request per row: {sizes:?}"
    );
}

#[sqlx::test]
async fn a_token_that_is_not_an_expo_token_is_never_sent(pool: PgPool) {
    let (mock, url) = mock_expo_with(ok_tickets).await;
    // Written by SQL clients, past the API's validation.
    let user = Uuid::new_v4();
    add_token(&pool, user, r#"{"evil": [1, 2, 3]}"#, 0).await;
    add_token(&pool, user, "ExponentPushToken[fine]", 1).await;
    let mixed = job_of(&pool, user, json!({"push_token": "not-a-token"}), true).await;
    let only_bad = job_of(
        &pool,
        Uuid::new_v4(),
        json!({"push_token": {"evil": [1, 2, 3]}}),
        true,
    )
    .await;
    delivery(&pool, Some(url)).deliver_once().await.unwrap();

    let received = mock.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].as_array().unwrap().len(), 1);
    assert_eq!(received[0][0]["to"], "ExponentPushToken[fine]");
    assert_eq!(outcome(&pool, mixed).await.0, "sent");
    let (status, error, _) = outcome(&pool, only_bad).await;
    assert_eq!(status, "skipped");
    assert_eq!(error.as_deref(), Some("no valid push token for this user"));
}

#[sqlx::test]
async fn expos_free_text_never_becomes_a_metric_label(pool: PgPool) {
    // The only test of this binary that installs the global recorder.
    let metrics = plan_worker::telemetry::metrics::install();
    let leak = json!({"data": [{"status": "error",
        "message": "\"ExponentPushToken[leak]\" is not a registered push notification recipient"}]});
    let (_mock, url) = mock_expo(vec![(200, leak)]).await;
    let (job, _) = finished_job(&pool, "ExponentPushToken[leak]", true).await;
    delivery(&pool, Some(url)).deliver_once().await.unwrap();

    let (status, error, _) = outcome(&pool, job).await;
    assert_eq!(status, "failed");
    assert!(
        error.unwrap().contains("not a registered"),
        "the text goes to last_error"
    );
    let text = metrics.render();
    assert!(!text.contains("leak"), "{text}");
    // Other tests of this binary may count failures too: the label is what matters.
    assert!(
        text.contains(r#"plan_push_notifications_total{outcome="failed",error="other"} "#),
        "{text}"
    );
}
