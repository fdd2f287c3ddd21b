//! Slow and stalled clients: a flood of half-sent requests holds no more
//! than the API's connection cap, is closed at the header timeout, and
//! leaves `/healthz` answering; silent and idle connections are closed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::common::*;
use crate::process::spawn_run_with;

/// Reads until the server closes the connection; how long that took from
/// `since`. A reset counts as closed.
async fn closed_after(mut stream: TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return since.elapsed(),
            Ok(_) => {}
        }
    }
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

const STALLED: usize = 300;
const CAP: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// Room for scheduling on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

#[cfg(target_os = "linux")]
#[sqlx::test]
async fn stalled_clients_hold_at_most_the_cap_and_healthz_keeps_answering(pool: PgPool) {
    // 256 descriptors: without a cap, 300 stalled clients would take them all.
    let (child, api_port, ops_port) = spawn_run_with(
        &pool,
        &["--no-worker"],
        &[
            ("API_MAX_CONNECTIONS", "64"),
            ("API_HEADER_TIMEOUT_SECONDS", "1"),
        ],
        Some(256),
    )
    .await;
    let pid = child.id().unwrap();
    let fds_before = open_fds(pid);

    let start = Instant::now();
    let connects = (0..STALLED).map(|_| async move {
        let mut s = TcpStream::connect(("127.0.0.1", api_port)).await.unwrap();
        s.write_all(b"GET /v1/plan-jobs/active HT").await.unwrap();
        s
    });
    let stalled = tokio::time::timeout(WAIT, futures_util::future::join_all(connects))
        .await
        .expect("the stalled clients could not all connect");
    let closes: Vec<_> = stalled
        .into_iter()
        .map(|s| tokio::spawn(closed_after(s, start)))
        .collect();

    let health = tokio::time::timeout(
        MARGIN,
        reqwest::get(format!("http://127.0.0.1:{ops_port}/healthz")),
    )
    .await
    .expect("/healthz did not answer while the API was flooded")
    .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let fds = open_fds(pid);
    // The cap's connections, the /healthz one, and a few for the runtime.
    assert!(
        fds <= fds_before + CAP + 8,
        "{fds} descriptors open, {fds_before} before the flood"
    );

    // A real request queues behind the stalled ones and is served once they
    // have timed out, a cap's worth at a time.
    let batches = STALLED.div_ceil(CAP) as u32;
    let answer = tokio::time::timeout(
        HEADER_TIMEOUT * (batches + 1) + MARGIN,
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{api_port}/v1/plan-jobs/active"))
            .bearer_auth(token(Uuid::new_v4()))
            .send(),
    )
    .await
    .expect("the API did not answer once the stalled clients timed out")
    .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND, "no active job");

    let mut closed = Vec::new();
    for close in closes {
        closed.push(close.await.unwrap());
    }
    closed.sort();
    assert!(
        closed[0] >= HEADER_TIMEOUT - Duration::from_millis(50),
        "closed before the header timeout: {:?}",
        closed[0]
    );
    assert!(
        closed[CAP - 1] <= HEADER_TIMEOUT + MARGIN,
        "the first {CAP} were closed after {:?}",
        closed[CAP - 1]
    );
    assert!(
        closed[STALLED - 1] <= HEADER_TIMEOUT * (batches + 1) + MARGIN,
        "the last was closed after {:?}",
        closed[STALLED - 1]
    );
    drop(child);
}

/// An API whose connections get `header` seconds for a request head and
/// `idle` seconds without traffic.
async fn start_with_timeouts(pool: &PgPool, header: f64, idle: f64) -> Api {
    start(
        pool,
        plan_worker::config::ApiSettings {
            api_header_timeout_seconds: header,
            api_idle_timeout_seconds: idle,
            api_request_timeout_seconds: 1.0,
            sse_keepalive_seconds: 0.5,
            ..settings()
        },
    )
    .await
}

async fn connect(api: &Api) -> TcpStream {
    TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_client_that_connects_and_sends_nothing_is_closed_at_the_header_timeout(pool: PgPool) {
    let api = start_with_timeouts(&pool, 1.0, 30.0).await;
    let start = Instant::now();
    let silent = connect(&api).await;
    let after = tokio::time::timeout(WAIT, closed_after(silent, start))
        .await
        .expect("a silent client was never closed");
    assert!(
        after >= HEADER_TIMEOUT - Duration::from_millis(50),
        "{after:?}"
    );
    assert!(after <= HEADER_TIMEOUT + MARGIN, "{after:?}");
}

#[sqlx::test]
async fn an_idle_http2_connection_is_closed_at_the_idle_timeout(pool: PgPool) {
    let api = start_with_timeouts(&pool, 1.0, 3.0).await;
    let mut h2 = connect(&api).await;
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing: past
    // the header timeout, which only HTTP/1.1 heads are held to.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let start = Instant::now();
    let after = tokio::time::timeout(WAIT, closed_after(h2, start))
        .await
        .expect("an idle HTTP/2 connection was never closed");
    let idle = Duration::from_secs(3);
    assert!(after >= idle - Duration::from_millis(50), "{after:?}");
    assert!(after <= idle + MARGIN, "{after:?}");
}
