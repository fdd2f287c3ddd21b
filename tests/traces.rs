//! Traces: with an OTLP/HTTP endpoint set, a job's spans (the attempt, the
//! generation, each LLM call, the save) reach the collector as part of the
//! trace of the request that created the job: the app's `traceparent`
//! continued by the API's request span, stored on the job.
//! The collector is a small OTLP/HTTP receiver in this test. Its own test
//! binary: the tracing subscriber is global to the process.

mod support;

use support::{WAIT, client, mock, plan_worker, profile};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use plan_worker::api::ApiState;
use plan_worker::config::{ApiSettings, WorkerSettings};

use plan_worker::telemetry::logging::{self, TraceSettings};
use prost::Message;
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";

#[derive(Debug, Clone)]
struct ReceivedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    /// Span events: name and attributes (as text).
    events: Vec<(String, Vec<(String, String)>)>,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    arrived: Arc<Notify>,
}

async fn receive(State(c): State<Collector>, body: Bytes) -> &'static str {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut spans = c.spans.lock().unwrap();
    for span in req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
    {
        spans.push(ReceivedSpan {
            name: span.name.clone(),
            trace_id: hex(&span.trace_id),
            span_id: hex(&span.span_id),
            parent: hex(&span.parent_span_id),
            events: span
                .events
                .iter()
                .map(|e| {
                    let attrs = e
                        .attributes
                        .iter()
                        .map(|kv| {
                            let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                            (kv.key.clone(), format!("{v:?}"))
                        })
                        .collect();
                    (e.name.clone(), attrs)
                })
                .collect(),
        });
    }
    c.arrived.notify_waiters();
    ""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[sqlx::test]
async fn a_jobs_spans_reach_the_collector_in_the_trace_of_the_request_that_created_it(
    pool: PgPool,
) {
    let collector = Collector::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let telemetry = logging::init(
        plan_worker::config::LogFormat::Json,
        &TraceSettings {
            endpoint: Some(format!("http://{addr}/v1/traces")),
            service_name: "plan-worker-test".into(),
        },
    );

    let mock = mock("ok").await;
    let settings = WorkerSettings {
        worker_id: Some("traces-test".into()),
        ..WorkerSettings::default()
    };
    let worker = plan_worker(&pool, Some(client(&mock, WAIT)), false, settings).await;

    // The app's request carries its trace; the API's span continues it and
    // the job stores the API span's context.
    let secret = "trace-test-secret-of-32-characters";
    let stop = tokio_util::sync::CancellationToken::new();
    let state = ApiState::new(
        pool.clone(),
        pool.connect_options().as_ref().clone(),
        &ApiSettings {
            supabase_jwt_secret: Some(secret.into()),
            create_rate_limit: "0/hour".parse().unwrap(),
            ..ApiSettings::default()
        },
        stop.clone(),
    )
    .unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    tokio::spawn(plan_worker::api::serve(api, state, WAIT));
    let user = Uuid::new_v4();
    let token = support::sign(&support::claims(user), secret);
    let mut events = support::JobEvents::open(&pool).await;
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{api_addr}/v1/plan-jobs"))
        .bearer_auth(token)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"))
        .json(&serde_json::json!({"profileSnapshot": profile("muscle-gain-vegetarian-gym")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id: Uuid = created["jobId"].as_str().unwrap().parse().unwrap();
    events
        .wait_status(job_id, "completed", Duration::from_secs(20))
        .await;
    worker.shutdown().await;

    let training_days = profile("muscle-gain-vegetarian-gym")["training_days"]
        .as_u64()
        .unwrap() as usize;
    let wanted = [
        "http.request",
        "job.attempt",
        "plan.generate",
        "llm.call",
        "plan.save",
    ];
    let have_all = || {
        let spans = collector.spans.lock().unwrap();
        wanted
            .iter()
            .all(|w| spans.iter().any(|s| s.name == *w && s.trace_id == TRACE_ID))
    };
    let wait = async {
        loop {
            let arrived = collector.arrived.notified();
            telemetry.flush();
            if have_all() {
                return;
            }
            arrived.await;
        }
    };
    let found = tokio::time::timeout(Duration::from_secs(15), wait).await;
    let spans = collector.spans.lock().unwrap().clone();
    assert!(found.is_ok(), "spans received: {spans:?}");
    let attempt = spans
        .iter()
        .find(|s| s.name == "job.attempt" && s.trace_id == TRACE_ID)
        .unwrap();
    let request = spans
        .iter()
        .find(|s| s.name == "http.request" && s.trace_id == TRACE_ID)
        .unwrap();
    assert_eq!(
        request.parent, PARENT_SPAN,
        "the API continues the app's trace"
    );
    assert_eq!(
        attempt.parent, request.span_id,
        "the attempt is a child of the creating request's span"
    );
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name == "llm.call" && s.trace_id == TRACE_ID)
            .count(),
        1 + 7 + training_days,
        "the structure, a call per rest day and two per training day"
    );

    // The funnel: started and succeeded on the attempt's span, with the
    // kind, the source and a hash of the user, never the user id.
    let funnel: Vec<&(String, Vec<(String, String)>)> = attempt
        .events
        .iter()
        .filter(|(name, _)| name.starts_with("plan_generation_"))
        .collect();
    let names: Vec<&str> = funnel.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["plan_generation_started", "plan_generation_succeeded"],
        "{:?}",
        attempt.events
    );
    let attr = |event: usize, key: &str| {
        funnel[event]
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key} in {:?}", funnel[event]))
    };
    assert!(attr(1, "kind").contains("weekly_base_plan"));
    assert!(attr(1, "source").contains("llm"));
    let hash = plan_worker::queue::funnel::user_hash(user);
    assert!(attr(0, "user_hash").contains(&hash));
    assert!(attr(1, "user_hash").contains(&hash));
    let all = format!("{funnel:?}");
    assert!(
        !all.contains(&user.to_string()),
        "the user id leaked: {all}"
    );
}
