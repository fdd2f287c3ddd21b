//! Server-Sent Events of a real job run by the worker (offline generator).

use plan_worker::config::WorkerSettings;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;
use crate::support;

/// One SSE event: its name and JSON data.
#[derive(Debug)]
struct Frame {
    event: String,
    data: Value,
}

/// Reads SSE frames from a response, skipping keep-alive comments.
struct Frames {
    res: reqwest::Response,
    buf: String,
}

impl Frames {
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), String::new());
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(Frame {
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = self.res.chunk().await.unwrap()?;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    async fn next_within(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, self.next())
            .await
            .expect("no event in time")
    }
}

async fn subscribe(api: &Api, job: Uuid, user: Uuid) -> Frames {
    let res = api
        .http
        .get(format!("{}/v1/plan-jobs/{job}/events", api.base))
        .bearer_auth(token(user))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    Frames {
        res,
        buf: String::new(),
    }
}

#[sqlx::test]
async fn a_stream_sees_pending_then_processing_stages_then_completed(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    let mut frames = subscribe(&api, job, user).await;

    let first = frames.next_within().await.unwrap();
    assert_eq!(first.event, "status");
    assert_eq!(first.data["status"], "pending", "current state first");

    let worker = support::plan_worker(
        &pool,
        None,
        false,
        WorkerSettings {
            worker_id: Some("api-sse".into()),
            ..WorkerSettings::default()
        },
    )
    .await;
    let mut seen = vec![];
    let done = loop {
        let f = frames
            .next_within()
            .await
            .expect("stream ended before done");
        if f.event == "done" {
            break f;
        }
        assert_eq!(f.event, "status");
        seen.push((
            f.data["status"].as_str().unwrap().to_owned(),
            f.data["progress"].as_str().map(str::to_owned),
        ));
    };
    let statuses: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"processing"), "{seen:?}");
    assert_eq!(statuses.last(), Some(&"completed"), "{seen:?}");
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|s| *s == "processing"),
        "{seen:?}"
    );
    let stages: Vec<&str> = seen.iter().filter_map(|(_, p)| p.as_deref()).collect();
    for stage in ["generating_offline", "validating", "saving"] {
        assert!(stages.contains(&stage), "{stage} missing from {seen:?}");
    }
    assert_eq!(done.data["status"], "completed");
    assert!(done.data["planId"].is_string());
    assert_eq!(done.data["plan"]["source"], "offline");
    assert!(
        frames.next_within().await.is_none(),
        "the stream ends after done"
    );

    // A client that reconnects after the end gets the final state and done.
    let mut late = subscribe(&api, job, user).await;
    assert_eq!(
        late.next_within().await.unwrap().data["status"],
        "completed"
    );
    assert_eq!(late.next_within().await.unwrap().event, "done");
    worker.shutdown().await;
}

#[sqlx::test]
async fn shutdown_ends_open_streams_with_a_shutdown_event(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    let mut frames = subscribe(&api, job, user).await;
    assert_eq!(
        frames.next_within().await.unwrap().data["status"],
        "pending"
    );
    api.stop.cancel();
    let bye = frames.next_within().await.unwrap();
    assert_eq!(bye.event, "shutdown");
    assert!(
        frames.next_within().await.is_none(),
        "the stream ends cleanly"
    );
}

#[sqlx::test]
async fn a_user_may_hold_only_a_few_streams_and_the_operator_is_not_limited(pool: PgPool) {
    use plan_worker::api::events::MAX_STREAMS_PER_USER;
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    let mut open = vec![];
    for _ in 0..MAX_STREAMS_PER_USER {
        let mut f = subscribe(&api, job, user).await;
        assert_eq!(f.next_within().await.unwrap().data["status"], "pending");
        open.push(f);
    }
    let refused = api
        .get(&format!("/v1/plan-jobs/{job}/events"), &token(user))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["error"]["code"], "TOO_MANY_STREAMS");
    assert!(refused.headers.contains_key("retry-after"));

    let operator = api
        .http
        .get(format!("{}/v1/plan-jobs/{job}/events", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::OK);
    let other_user = Uuid::new_v4();
    let other_job = job_id(&api.create(other_user).await);
    let mut other = subscribe(&api, other_job, other_user).await;
    assert_eq!(other.next_within().await.unwrap().data["status"], "pending");
}

#[sqlx::test]
async fn days_written_in_parallel_arrive_as_day_events_before_done(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    let mut frames = subscribe(&api, job, user).await;
    assert_eq!(
        frames.next_within().await.unwrap().data["status"],
        "pending"
    );

    let mock = support::mock("ok").await;
    let worker = support::plan_worker(
        &pool,
        Some(support::client(&mock, WAIT)),
        false,
        WorkerSettings {
            worker_id: Some("api-sse-days".into()),
            ..WorkerSettings::default()
        },
    )
    .await;
    let mut days = vec![];
    let done = loop {
        let f = frames
            .next_within()
            .await
            .expect("stream ended before done");
        match f.event.as_str() {
            "done" => break f,
            "day" => {
                assert_eq!(f.data["jobId"], job.to_string());
                assert_eq!(f.data["attempt"], 1);
                let day = f.data["day"].as_u64().unwrap();
                assert_eq!(f.data["dayPlan"]["day"], day, "the day's own JSON");
                assert!(f.data["dayPlan"]["nutrition"]["kcal"].as_u64().unwrap() > 0);
                days.push(day);
            }
            other => assert_eq!(other, "status"),
        }
    };
    days.sort_unstable();
    assert_eq!(
        days,
        [1, 2, 3, 4, 5, 6, 7],
        "each day once, all before done"
    );
    assert_eq!(done.data["status"], "completed");
    assert_eq!(done.data["plan"]["source"], "llm");
    worker.shutdown().await;
}

#[sqlx::test]
async fn a_client_connecting_mid_job_gets_the_days_so_far_then_each_new_one(pool: PgPool) {
    let api = start(&pool, settings()).await;
    let user = Uuid::new_v4();
    let job = job_id(&api.create(user).await);
    // A worker holds the job and has shown days 1 and 2 (as jobs::days
    // records them).
    sqlx::query(
        "update plan_generation_jobs set status = 'processing', lease_token = gen_random_uuid(), \
         worker_id = 'w', attempt_count = 1, started_at = now(), heartbeat_at = now(), \
         locked_until = now() + interval '1 hour', progress = 'generating_details', days_ready = 2 \
         where id = $1",
    )
    .bind(job)
    .execute(&pool)
    .await
    .unwrap();
    let day = |n: i16| {
        sqlx::query(
            "insert into plan_job_days (job_id, day, attempt, content) \
             values ($1, $2, 1, jsonb_build_object('day', $2))",
        )
        .bind(job)
        .bind(n)
    };
    day(1).execute(&pool).await.unwrap();
    day(2).execute(&pool).await.unwrap();

    let mut frames = subscribe(&api, job, user).await;
    let mut first = vec![];
    for _ in 0..3 {
        let f = frames.next_within().await.unwrap();
        first.push((f.event.clone(), f.data["day"].as_u64()));
    }
    assert_eq!(
        first,
        [
            ("day".to_owned(), Some(1)),
            ("day".to_owned(), Some(2)),
            ("status".to_owned(), None)
        ],
        "the days so far, then the state"
    );
    day(3).execute(&pool).await.unwrap();
    let note = serde_json::json!([{"id": job, "status": "processing",
        "progress": "generating_details", "error_code": null, "day": 3}]);
    sqlx::query("select pg_notify('plan_job_events', $1)")
        .bind(note.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let next = frames.next_within().await.unwrap();
    assert_eq!(
        (next.event.as_str(), next.data["day"].as_u64()),
        ("day", Some(3))
    );
    assert_eq!(next.data["dayPlan"]["day"], 3);
}
