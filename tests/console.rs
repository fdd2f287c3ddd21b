//! The operators' console through its real handlers: the ops router on a
//! port, real PostgreSQL, jobs made and failed through the queue's SQL
//! functions. (scripts/console-test.sh drives the same pages in a browser.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use plan_worker::ops::{self, OpsState, console::Console};
use plan_worker::queue::store::{self, Failure, NewJob, RetryPolicy};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use sqlx::PgPool;
use uuid::Uuid;

const TOKEN: &str = "alice-console-token-0123456789";
const KIND: &str = "weekly_base_plan";

/// A urlencoded form body (reqwest is built without its `form` feature).
trait FormBody {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}

struct Ops {
    base: String,
    http: reqwest::Client,
}

async fn start(db: &PgPool) -> Ops {
    let console = Console::new(
        vec![("alice".into(), TOKEN.into())],
        Duration::from_secs(600),
        false,
    );
    let app = ops::router(OpsState {
        db: db.clone(),
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        listener: None,
        push: None,
        console: Arc::new(console),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ops {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Ops {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs in; the session cookie's `name=value`.
    async fn sign_in(&self) -> String {
        let r = self
            .http
            .post(self.url("/ops/login"))
            .form_body(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn page(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(self.url(path))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, cookie: &str, path: &str, csrf: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(COOKIE, cookie)
            .header(ORIGIN, &self.base)
            .form_body(&[("csrf", csrf)])
            .send()
            .await
            .unwrap()
    }
}

/// The CSRF token of a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A job failed for good with `code`, through create, claim and fail.
async fn failed_job(db: &PgPool, code: &str) -> Uuid {
    let created = store::create_job(
        db,
        &NewJob {
            user_id: Uuid::new_v4(),
            kind: KIND.into(),
            profile_snapshot: serde_json::json!({"goal": "MUSCLE_GAIN", "push_token": "ExponentPushToken[secret-abc]"}),
            max_retries: 0,
            priority: 0,
            trace_context: None,
            run_after: None,
        },
    )
    .await
    .unwrap();
    let claimed = store::claim(
        db,
        "test-worker",
        &[KIND.into()],
        1,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let job = claimed
        .into_iter()
        .find(|j| j.id == created.job_id)
        .unwrap();
    store::fail(
        db,
        job.id,
        job.lease_token,
        &Failure {
            error_code: code,
            user_message: "It failed.",
            retryable: false,
            retry_after: None,
            detail: Some("the provider said no (internal detail)"),
            llm_usage: None,
        },
        RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_rate_limit_deferrals: 10,
            max_retry_after: Duration::from_secs(60),
        },
    )
    .await
    .unwrap();
    job.id
}

#[sqlx::test]
async fn nothing_but_the_login_form_is_served_before_signing_in(db: PgPool) {
    let c = start(&db).await;
    for path in [
        "/ops/",
        "/ops/jobs",
        "/ops/workers",
        "/ops/kinds",
        "/ops/jobs/00000000-0000-0000-0000-000000000000",
    ] {
        let r = c.http.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/ops/login", "{path}");
    }
    let r = c.http.get(c.url("/ops/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(r.text().await.unwrap().contains(r#"name="token""#));
    // Actions without a session change nothing and go to the login too.
    let job = failed_job(&db, "AI_QUOTA_EXCEEDED").await;
    let r = c
        .http
        .post(c.url(&format!("/ops/jobs/{job}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let jobs: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(jobs, 1);
}

#[sqlx::test]
async fn a_wrong_token_is_refused_after_a_delay_and_gets_no_cookie(db: PgPool) {
    let c = start(&db).await;
    let started = Instant::now();
    let r = c
        .http
        .post(c.url("/ops/login"))
        .form_body(&[("token", "alice-console-token-0123456780")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(r.headers().get(SET_COOKIE).is_none());

    let r = c
        .http
        .post(c.url("/ops/login"))
        .form_body(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ops", "Max-Age=600"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
}

#[sqlx::test]
async fn the_overview_and_the_failed_list_show_what_the_database_holds(db: PgPool) {
    let mut failed = Vec::new();
    for code in ["AI_QUOTA_EXCEEDED", "AI_QUOTA_EXCEEDED", "CONFIG_ERROR"] {
        failed.push(failed_job(&db, code).await);
    }
    let c = start(&db).await;
    let cookie = c.sign_in().await;
    let (status, html) = c.page(&cookie, "/ops/").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"href="/ops/jobs?status=failed">3</a>"#),
        "{html}"
    );
    assert!(
        html.contains("/ops/jobs?status=failed&amp;error_code=AI_QUOTA_EXCEEDED"),
        "{html}"
    );
    let top = &html[html.find(r#"id="top-errors""#).unwrap()..];
    let quota = top.find("AI_QUOTA_EXCEEDED").unwrap();
    assert!(quota < top.find("CONFIG_ERROR").unwrap(), "most first");
    assert!(top[quota..].contains(r#"<td class="num">2</td>"#));

    let (_, list) = c
        .page(
            &cookie,
            "/ops/jobs?status=failed&error_code=AI_QUOTA_EXCEEDED",
        )
        .await;
    let shown: Vec<&str> = list
        .match_indices("data-job-id=\"")
        .map(|(i, m)| &list[i + m.len()..i + m.len() + 36])
        .collect();
    // Newest first.
    assert_eq!(shown, [failed[1].to_string(), failed[0].to_string()]);

    let (status, page) = c.page(&cookie, "/ops/jobs?status=done").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("status: one of"), "{page}");
}

#[sqlx::test]
async fn the_jobs_list_pages_by_keyset_without_gaps_or_repeats(db: PgPool) {
    // 120 failed jobs, a few sharing one created_at (the id breaks the tie).
    for _ in 0..120 {
        failed_job(&db, "AI_TIMEOUT").await;
    }
    sqlx::query("update plan_generation_jobs set created_at = '2026-01-01' where id in (select id from plan_generation_jobs limit 7)")
        .execute(&db)
        .await
        .unwrap();
    let expected: Vec<Uuid> = sqlx::query_scalar("select id from plan_generation_jobs where status = 'failed' order by created_at desc, id desc")
        .fetch_all(&db)
        .await
        .unwrap();
    let c = start(&db).await;
    let cookie = c.sign_in().await;
    let mut shown = Vec::new();
    let mut path = "/ops/jobs?status=failed".to_owned();
    for _ in 0..10 {
        let (status, html) = c.page(&cookie, &path).await;
        assert_eq!(status, StatusCode::OK);
        shown.extend(
            html.match_indices("data-job-id=\"")
                .map(|(i, m)| Uuid::parse_str(&html[i + m.len()..i + m.len() + 36]).unwrap()),
        );
        let Some(at) = html.find(r#"id="older" rel="next" href=""#) else {
            break;
        };
        let rest = &html[at + r#"id="older" rel="next" href=""#.len()..];
        path = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    }
    assert_eq!(shown, expected);
}

#[sqlx::test]
async fn retry_needs_the_sessions_csrf_token_and_same_origin_and_is_audited(db: PgPool) {
    let job = failed_job(&db, "AI_QUOTA_EXCEEDED").await;
    let c = start(&db).await;
    let cookie = c.sign_in().await;
    let (_, html) = c.page(&cookie, &format!("/ops/jobs/{job}")).await;
    assert!(
        html.contains("the provider said no (internal detail)"),
        "the attempt's detail"
    );
    assert!(
        html.contains("Expone… (masked)") && !html.contains("secret-abc"),
        "push token masked"
    );
    let csrf = csrf_of(&html);

    let path = format!("/ops/jobs/{job}/retry");
    let r = c.post(&cookie, &path, "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c.post(&cookie, &path, &"ab".repeat(32)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .http
        .post(c.url(&path))
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.example")
        .form_body(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another session's token is not this one's.
    let other = c.sign_in().await;
    let (_, other_html) = c.page(&other, "/ops/").await;
    let r = c.post(&cookie, &path, &csrf_of(&other_html)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let jobs: i64 = sqlx::query_scalar("select count(*) from plan_generation_jobs")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "nothing was retried");

    let r = c.post(&cookie, &path, &csrf).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let (new_job, status): (Uuid, String) =
        sqlx::query_as("select id, status::text from plan_generation_jobs where id <> $1")
            .bind(job)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(status, "pending");
    assert!(
        location.starts_with(&format!("/ops/jobs/{new_job}?done=retried")),
        "{location}"
    );
    let (operator, detail): (String, serde_json::Value) = sqlx::query_as(
        "select operator, detail from operator_actions where action = 'retry' and job_id = $1",
    )
    .bind(job)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(operator, "alice");
    assert_eq!(detail["newJobId"], new_job.to_string());

    // Cancel the new one; a second cancel finds it final and audits nothing.
    let cancel = format!("/ops/jobs/{new_job}/cancel");
    assert_eq!(
        c.post(&cookie, &cancel, &csrf).await.status(),
        StatusCode::SEE_OTHER
    );
    let r = c.post(&cookie, &cancel, &csrf).await;
    assert!(
        r.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("done=final")
    );
    let cancels: i64 =
        sqlx::query_scalar("select count(*) from operator_actions where action = 'cancel'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(cancels, 1);
}

#[sqlx::test]
async fn kinds_pause_and_resume_from_the_console_and_say_who(db: PgPool) {
    let c = start(&db).await;
    let cookie = c.sign_in().await;
    let (_, html) = c.page(&cookie, "/ops/kinds").await;
    let csrf = csrf_of(&html);
    let r = c.post(&cookie, "/ops/kinds/meal_plan/pause", &csrf).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let paused: bool =
        sqlx::query_scalar("select paused from plan_job_kinds where kind = 'meal_plan'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(paused);
    let r = c
        .post(&cookie, "/ops/kinds/no_such_kind/pause", &csrf)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    c.post(&cookie, "/ops/kinds/meal_plan/resume", &csrf).await;
    let audit: Vec<(String, String)> =
        sqlx::query_as("select operator, action from operator_actions order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        audit,
        [
            ("alice".into(), "pause".into()),
            ("alice".into(), "resume".into())
        ]
    );
}

#[sqlx::test]
async fn without_operator_tokens_the_console_says_how_to_turn_it_on(db: PgPool) {
    let app = ops::router(OpsState {
        db,
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        listener: None,
        push: None,
        console: Console::disabled(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = reqwest::get(format!("http://{addr}/ops/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("ADMIN_TOKEN"));
}

#[sqlx::test]
async fn the_estimates_of_finished_jobs_come_from_the_kind_status_statistics(db: PgPool) {
    use plan_worker::ops::console::store;
    use plan_worker::queue::store::JobStatus;
    for _ in 0..3 {
        failed_job(&db, "AI_TIMEOUT").await;
    }
    let mut conn = db.acquire().await.unwrap();
    assert!(
        store::mcv_estimates(&mut conn).await.unwrap().is_empty(),
        "none before ANALYZE"
    );
    sqlx::query("analyze plan_generation_jobs")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mcv = store::mcv_estimates(&mut conn).await.unwrap();
    let failed = mcv
        .iter()
        .find(|m| m.0 == KIND && m.1 == JobStatus::Failed)
        .unwrap();
    assert_eq!(failed.2, 3, "{mcv:?}");
    assert!(
        failed.3 > 0.999,
        "a list this small covers the table: {mcv:?}"
    );
    assert_eq!(
        store::estimate(&mut conn, KIND, JobStatus::Failed)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store::estimate(&mut conn, "x'; drop table y; --", JobStatus::Failed)
            .await
            .unwrap(),
        0
    );
}
